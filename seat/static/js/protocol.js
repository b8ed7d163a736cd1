// @ts-check
/**
 * The one browser client of the cloudseat signaling protocol (docs/protocol.md), shared by the
 * kiosk, the clerk console and the supervisor console. Plain ES module, no dependencies.
 *
 *   const client = await ProtocolClient.connect("booth", { token, onPush: show });
 *   const { call_id } = await client.request("call.request", { item_code: "SB-001" });
 *   const connected = await client.waitFor("call.connected", (m) => m.call_id === call_id, 60000);
 *
 * It pairs replies with requests by `id`, sends the heartbeat the server's `welcome` asks for and
 * reconnects after a drop with backoff. It never resumes a call by itself: the page listens for
 * `reconnected` and decides (a booth sends `call.request` with `resume_call_id`).
 */

export const SUBPROTOCOL = "cloudseat.v1";
export const TOKEN_PREFIX = "token."; // a browser cannot set headers on a WebSocket
export const ROLES = Object.freeze(["booth", "seat", "supervisor"]);

/** WebSocket close codes (RFC 6455 and cloudseat's 4000 range). */
export const CLOSE = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001, // the server is shutting down
  ABNORMAL: 1006, // no close frame; also what a browser reports for a refused upgrade (HTTP 403)
  POLICY: 1008, // flooding, or a client too slow to read its messages
  TOO_BIG: 1009, // a frame over 64 KiB
  TRY_AGAIN: 1013, // server full
  HEARTBEAT: 4000, // no heartbeat within 2 x heartbeat_s
  REPLACED: 4001, // the same booth or clerk connected again elsewhere
  UNAUTHORIZED: 4401,
  FORBIDDEN: 4403,
});

/**
 * Wait `delayMs` before a reconnect attempt, cut short when the browser says its network is back:
 * a kiosk back from a 10 s outage should not sit out the rest of an 8 s backoff.
 * @param {number} delayMs @returns {Promise<void>}
 */
function backoff(delayMs) {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      globalThis.removeEventListener?.("online", done);
      resolve();
    };
    const timer = setTimeout(done, delayMs);
    globalThis.addEventListener?.("online", done);
  });
}

/** After these the client does not reconnect (4001: reconnecting would fight the newer socket). */
export const FINAL_CLOSE_CODES = Object.freeze([CLOSE.REPLACED, CLOSE.UNAUTHORIZED, CLOSE.FORBIDDEN]);
/** Delay before each reconnect attempt; the last one repeats. */
export const BACKOFF_MS = Object.freeze([1000, 2000, 4000, 8000, 15000]);

const BACKLOG_MAX = 100;
const REPLY_TYPES = new Set(["ack", "error", "pong"]); // `pong` answers a `ping` that had an id

/**
 * @typedef {{type: string, [field: string]: any}} Message  any frame from the server
 * @typedef {{type: "welcome", role: string, node: string, heartbeat_s: number, [field: string]: any}} Welcome
 * @typedef {{type: "ice.servers", ice_servers: RTCIceServer[], ice_transport_policy: RTCIceTransportPolicy, expires_at: number | null}} IceServers
 * @typedef {(message: Message) => void} Listener
 * @typedef {{type: string, predicate: (m: Message) => boolean, resolve: Listener, reject: (e: ProtocolError) => void}} Waiter
 */

/** The server refused a request (`code` is stable, see docs/protocol.md), or the socket failed. */
export class ProtocolError extends Error {
  /** @param {string} code @param {string} message @param {Message | null} [reply] */
  constructor(code, message, reply = null) {
    super(`${code}: ${message}`);
    this.name = "ProtocolError";
    this.code = code;
    this.reply = reply;
  }
}

/** `https://host` -> `wss://host/ws/<role>`. @param {string} baseUrl @param {string} role */
export function socketUrl(baseUrl, role) {
  const url = new URL(`/ws/${role}`, baseUrl);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

export class ProtocolClient {
  /** @param {string} role @param {string} url @param {string[]} protocols @param {number} openTimeoutMs */
  constructor(role, url, protocols, openTimeoutMs) {
    this.role = role;
    this.url = url;
    this.protocols = protocols;
    this.openTimeoutMs = openTimeoutMs;
    /** @type {Welcome | null} the latest `welcome` (replaced on every reconnect) */
    this.welcome = null;
    /** @type {IceServers | null} the latest `ice.servers` (sent after every `welcome`, and before a TURN credential expires) */
    this.ice = null;
    /** @type {((ice: IceServers) => void)[]} */
    this._iceWaiters = [];
    /** @type {WebSocket | null} */
    this.ws = null;
    /** @type {number | null} close code of the last drop */
    this.closeCode = null;
    this.closed = false; // true once close() was called or the client gave up
    this._finished = false;
    this.heartbeat = true;
    /** @type {Map<string, Set<Listener>>} */
    this._listeners = new Map();
    /** @type {Map<string, {resolve: Listener, reject: (e: ProtocolError) => void, timer: number}>} */
    this._pending = new Map();
    /** @type {Message[]} pushes not yet taken by waitFor */
    this._backlog = [];
    /** @type {Set<Waiter>} */
    this._waiters = new Set();
    this._nextId = 1;
    this._attempt = 0;
    this._lastHeard = 0;
    this._heartbeatTimer = 0;
  }

  /**
   * Open the socket for `role` and resolve after `welcome`. A booth passes its `token`; the
   * consoles rely on the session cookie the login page set. Rejects with ProtocolError
   * `connect_failed` when the upgrade is refused (the browser only sees close code 1006).
   * @param {"booth" | "seat" | "supervisor"} role
   * @param {{token?: string, baseUrl?: string, onPush?: Listener, heartbeat?: boolean, timeoutMs?: number}} [options]
   */
  static async connect(role, { token, baseUrl = location.origin, onPush, heartbeat = true, timeoutMs = 10000 } = {}) {
    if (!ROLES.includes(role)) throw new TypeError(`role must be one of ${ROLES.join(", ")}`);
    const protocols = token ? [SUBPROTOCOL, TOKEN_PREFIX + token] : [SUBPROTOCOL];
    const client = new ProtocolClient(role, socketUrl(baseUrl, role), protocols, timeoutMs);
    client.heartbeat = heartbeat;
    if (onPush) client.on("*", onPush);
    await client._open();
    return client;
  }

  /**
   * Send a request; resolve with its `ack`, reject with ProtocolError on `error` (or `timeout`,
   * `disconnected` when the socket is down or drops before the reply).
   * @param {string} type @param {Record<string, any>} [fields] @param {{timeoutMs?: number}} [options]
   * @returns {Promise<Message>}
   */
  request(type, fields = {}, { timeoutMs = 10000 } = {}) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || !this.welcome) {
      return Promise.reject(new ProtocolError("disconnected", "the socket is not open"));
    }
    const id = `r${this._nextId++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(id);
        reject(new ProtocolError("timeout", `no reply to ${type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this._pending.set(id, { resolve, reject, timer });
      ws.send(JSON.stringify({ ...fields, type, id }));
    });
  }

  /**
   * Listen to pushes of `type` (`"*"`: every push), or to the client's own events
   * `reconnecting` {attempt, delay_ms, code}, `reconnected` {welcome} and `closed` {code}.
   * @param {string} type @param {Listener} fn @returns {() => void} a function that removes it
   */
  on(type, fn) {
    if (!this._listeners.has(type)) this._listeners.set(type, new Set());
    this._listeners.get(type)?.add(fn);
    return () => this.off(type, fn);
  }

  /** @param {string} type @param {Listener} fn */
  off(type, fn) {
    this._listeners.get(type)?.delete(fn);
  }

  /**
   * The oldest push of `type` (matching `predicate`) not yet taken by an earlier waitFor, or the
   * next one to arrive. Client events (`reconnected` ...) can be awaited too.
   * @param {string} type @param {(m: Message) => boolean} [predicate] @param {number} [timeoutMs]
   * @returns {Promise<Message>}
   */
  waitFor(type, predicate = () => true, timeoutMs = 10000) {
    const index = this._backlog.findIndex((m) => m.type === type && predicate(m));
    if (index >= 0) return Promise.resolve(this._backlog.splice(index, 1)[0]);
    if (this.closed) return Promise.reject(new ProtocolError("closed", `closed before ${type} arrived`));
    return new Promise((resolve, reject) => {
      /** @type {Waiter} */
      const waiter = {
        type,
        predicate,
        resolve: (m) => { clearTimeout(timer); resolve(m); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      };
      const timer = setTimeout(() => {
        this._waiters.delete(waiter);
        reject(new ProtocolError("timeout", `no ${type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this._waiters.add(waiter);
    });
  }

  /** Close for good (no reconnect); resolves once the socket is closed. @returns {Promise<void>} */
  close() {
    this.closed = true;
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) {
      this._dropped(ws, CLOSE.NORMAL);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      ws.addEventListener("close", () => resolve());
      ws.close(CLOSE.NORMAL);
    });
  }

  // ------------------------------------------------------------------ internals
  /** Open one socket; resolve with its welcome, reject if it closes first. @returns {Promise<Welcome>} */
  _open() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url, this.protocols);
      this.ws = ws;
      let welcomed = false;
      const timer = setTimeout(() => ws.close(), this.openTimeoutMs);
      ws.onmessage = (event) => {
        this._lastHeard = Date.now();
        /** @type {Message} */
        let message;
        try {
          message = JSON.parse(event.data);
        } catch {
          return; // the server only sends JSON objects
        }
        if (!welcomed && message.type === "welcome") {
          welcomed = true;
          clearTimeout(timer);
          this.welcome = /** @type {Welcome} */ (message);
          if (this.heartbeat) this._startHeartbeat(this.welcome.heartbeat_s);
          resolve(this.welcome);
        }
        if (message.type === "ice.servers") this._setIce(/** @type {IceServers} */ (message));
        this._dispatch(message);
      };
      ws.onclose = (event) => {
        clearTimeout(timer);
        if (welcomed) {
          this._dropped(ws, event.code);
        } else {
          reject(new ProtocolError("connect_failed", `socket closed (${event.code}) before welcome`,
            { type: "close", code: event.code, reason: event.reason }));
        }
      };
    });
  }

  /**
   * The ICE servers and policy for a new RTCPeerConnection: the latest `ice.servers`, waiting
   * for the first one (it follows `welcome`) at most `timeoutMs`; then none, `all`.
   * @param {number} [timeoutMs] @returns {Promise<IceServers>}
   */
  iceConfig(timeoutMs = 5000) {
    if (this.ice) return Promise.resolve(this.ice);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        console.warn("protocol: no ice.servers from the server; using no ICE servers");
        resolve({ type: "ice.servers", ice_servers: [], ice_transport_policy: "all", expires_at: null });
      }, timeoutMs);
      this._iceWaiters.push((ice) => { clearTimeout(timer); resolve(ice); });
    });
  }

  /** @param {IceServers} ice */
  _setIce(ice) {
    this.ice = ice;
    for (const waiter of this._iceWaiters.splice(0)) waiter(ice);
  }

  /** @param {Message} message */
  _dispatch(message) {
    const pending = message.re != null && REPLY_TYPES.has(message.type) ? this._pending.get(message.re) : undefined;
    if (pending) {
      this._pending.delete(message.re);
      clearTimeout(pending.timer);
      if (message.type === "error") pending.reject(new ProtocolError(message.code, message.message, message));
      else pending.resolve(message);
      return;
    }
    this._deliver(message, true);
  }

  /** Hand a push or client event to a waiter (or the backlog) and to listeners. @param {Message} message @param {boolean} isPush */
  _deliver(message, isPush) {
    const waiter = [...this._waiters].find((w) => w.type === message.type && w.predicate(message));
    if (waiter) {
      this._waiters.delete(waiter);
      waiter.resolve(message);
    } else {
      this._backlog.push(message);
      if (this._backlog.length > BACKLOG_MAX) this._backlog.shift();
    }
    const listeners = [...(this._listeners.get(message.type) ?? []), ...(isPush ? this._listeners.get("*") ?? [] : [])];
    for (const fn of listeners) {
      try {
        fn(message);
      } catch (err) {
        console.error("protocol listener failed", err); // one broken listener must not stop the others
      }
    }
  }

  /** @param {number} heartbeatS */
  _startHeartbeat(heartbeatS) {
    this._stopHeartbeat();
    const periodMs = heartbeatS * 1000;
    this._heartbeatTimer = setInterval(() => {
      const ws = this.ws;
      if (!ws || ws.readyState !== WebSocket.OPEN) return;
      if (Date.now() - this._lastHeard > 3 * periodMs) {
        // The server answers every ping; silence this long means a dead link the browser missed.
        ws.onclose = null;
        ws.onmessage = null;
        ws.close(CLOSE.HEARTBEAT, "server silent");
        this._dropped(ws, CLOSE.HEARTBEAT);
        return;
      }
      ws.send('{"type":"ping"}');
    }, periodMs);
  }

  _stopHeartbeat() {
    clearInterval(this._heartbeatTimer);
    this._heartbeatTimer = 0;
  }

  /** The welcomed socket `ws` closed with `code`: fail what waits on it, then reconnect or stop. @param {WebSocket | null} ws @param {number} code */
  _dropped(ws, code) {
    if (ws !== this.ws) return; // an older socket, already replaced
    this._stopHeartbeat();
    this.closeCode = code;
    for (const pending of this._pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(new ProtocolError("disconnected", `socket closed (${code}) before the reply`));
    }
    this._pending.clear();
    if (this.closed || FINAL_CLOSE_CODES.includes(code)) this._finish(code);
    else this._reconnect(code);
  }

  /** @param {number} code */
  async _reconnect(code) {
    while (!this.closed) {
      const delayMs = BACKOFF_MS[Math.min(this._attempt, BACKOFF_MS.length - 1)];
      this._attempt += 1;
      this._deliver({ type: "reconnecting", attempt: this._attempt, delay_ms: delayMs, code }, false);
      await backoff(delayMs);
      if (this.closed) break;
      try {
        const welcome = await this._open();
        this._attempt = 0;
        this._deliver({ type: "reconnected", welcome }, false);
        return;
      } catch (err) {
        code = err instanceof ProtocolError && err.reply ? err.reply.code : CLOSE.ABNORMAL;
        if (FINAL_CLOSE_CODES.includes(code)) break;
      }
    }
    this._finish(code);
  }

  /** @param {number} code */
  _finish(code) {
    if (this._finished) return;
    this._finished = true;
    this.closed = true;
    this._stopHeartbeat();
    this.closeCode = code;
    this._deliver({ type: "closed", code }, false);
    for (const waiter of this._waiters) waiter.reject(new ProtocolError("closed", `closed (${code}) before ${waiter.type}`));
    this._waiters.clear();
  }
}
