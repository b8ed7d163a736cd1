// @ts-check
/**
 * WebRTC for a call: one peer connection from this page to the call's media hub, shared by the
 * kiosk, the clerk console and (later) the supervisor's silent monitor. See docs/protocol.md,
 * "Media": the party always offers, the hub answers with complete SDP (no trickle ICE), so the
 * offer goes out only once ICE gathering is complete.
 *
 *   const media = await joinCallMedia(client, callId, {
 *     role: "clerk",
 *     localTracks: { camera, audio },
 *     onRemoteTrack: (name, publisher, track) => show(name, publisher, track),
 *   });
 *   await media.framesDecoded();   // {"booth-face": 312, "booth-document": 95}
 *   media.close();
 *
 * Publishing is one `sendonly` m-line per local track, named in `rtc.offer`'s `tracks` (mid ->
 * face|document|camera|audio). Receiving is one `recvonly` m-line ("slot") per remote track the
 * role wants; the hub fills slots in whatever order parties publish, and the `rtc.offer` ack and
 * later `rtc.slots` pushes say which remote track each slot carries. `onRemoteTrack` reports a
 * remote track by its name whenever the slot carrying it changes (`track` null: it went away).
 *
 * Reconnecting: a peer connection does not survive the socket that set it up (the hub replaces a
 * party's peer on its next offer, and a dropped kiosk has to be assumed to have lost its network
 * path too). After the protocol client's `reconnected`, a NEW peer connection is set up: by
 * itself for the clerk (`resume: "auto"`), by the page calling `restart()` once it has resumed the
 * call: the booth after `call.request` `resume_call_id`, and a monitor after sending `monitor.join`
 * again (a supervisor's `welcome` names no call, so both use `resume: "manual"`).
 * No module state: everything lives on the `CallMedia` object.
 */

/** @typedef {import("./protocol.js").ProtocolClient} ProtocolClient */
/** @typedef {"booth" | "clerk" | "monitor"} MediaRole */
/** @typedef {"face" | "document" | "camera" | "audio"} TrackName */
/** @typedef {"booth" | "clerk"} Publisher */
/** @typedef {{mid: string, kind: string, publisher: Publisher | null, track: TrackName | null}} Slot */
/** @typedef {"connecting" | "connected" | "reconnecting" | "failed" | "closed"} MediaState */
/**
 * @typedef {object} JoinOptions
 * @property {MediaRole} role
 * @property {Partial<Record<TrackName, MediaStreamTrack | null>>} [localTracks] what this party publishes
 * @property {(name: TrackName, publisher: Publisher, track: MediaStreamTrack | null) => void} [onRemoteTrack]
 * @property {(state: MediaState, media: CallMedia) => void} [onStateChange]
 * @property {RTCIceServer[]} [iceServers] default: the socket's latest `ice.servers` (time-limited TURN credentials)
 * @property {RTCIceTransportPolicy} [iceTransportPolicy] default: the socket's `ice.servers` policy
 * @property {"auto" | "manual"} [resume] who restarts the peer after the socket reconnected
 * @property {number} [offerTimeoutMs]
 */
/**
 * @typedef {object} InboundStats
 * @property {string} mid
 * @property {string} kind
 * @property {Publisher | null} publisher
 * @property {TrackName | null} track
 * @property {string} codec the negotiated codec's MIME type ("video/VP8"), once media flows
 * @property {number} framesDecoded video only (0 for audio)
 * @property {number} framesReceived
 * @property {number} frameWidth
 * @property {number} frameHeight
 * @property {number} packetsReceived
 * @property {number} packetsLost
 * @property {number} bytesReceived
 */

/** What each role publishes, in m-line order (the hub's default order when `tracks` is missing). */
export const PUBLISHES = Object.freeze({
  booth: Object.freeze(["face", "document", "audio"]),
  clerk: Object.freeze(["camera", "audio"]),
  monitor: Object.freeze([]),
});

/** How many slots each role offers to receive (docs/protocol.md's table). */
export const RECEIVES = Object.freeze({
  booth: Object.freeze({ video: 1, audio: 1 }), // the clerk's camera and voice
  clerk: Object.freeze({ video: 2, audio: 1 }), // the booth's face, document and voice
  monitor: Object.freeze({ video: 3, audio: 2 }), // everything
});

/** @type {Record<TrackName, "video" | "audio">} */
export const KIND_OF = Object.freeze({ face: "video", document: "video", camera: "video", audio: "audio" });

/** The hub forwards encoded media and prefers VP8, then H.264 (media/hub.py). */
export const VIDEO_CODEC_ORDER = Object.freeze(["video/VP8", "video/rtx", "video/H264"]);

const GATHER_TIMEOUT_MS = 5000;
const OFFER_TIMEOUT_MS = 20000;
const FAILED_RETRY_MS = 2000;
/**
 * The browser's video codecs ordered VP8, its RTX, H.264; the rest (VP9, AV1, FEC) dropped:
 * the hub forwards without transcoding only what it and the other party both speak.
 * @param {RTCRtpCodec[]} codecs @returns {RTCRtpCodec[]}
 */
export function orderVideoCodecs(codecs) {
  const rank = (/** @type {RTCRtpCodec} */ c) => VIDEO_CODEC_ORDER.findIndex((m) => m.toLowerCase() === c.mimeType.toLowerCase());
  return codecs.filter((c) => rank(c) >= 0).sort((a, b) => rank(a) - rank(b));
}

/** VP8 first on a video transceiver (best effort: older browsers lack setCodecPreferences). @param {RTCRtpTransceiver} transceiver */
export function preferVp8(transceiver) {
  if (typeof transceiver.setCodecPreferences !== "function" || typeof RTCRtpReceiver.getCapabilities !== "function") return;
  const capabilities = RTCRtpReceiver.getCapabilities("video");
  if (!capabilities) return;
  const ordered = orderVideoCodecs(capabilities.codecs);
  if (!ordered.some((c) => c.mimeType.toLowerCase() === "video/vp8")) return;
  try {
    transceiver.setCodecPreferences(ordered);
  } catch (err) {
    console.warn("media: codec preferences refused", err);
  }
}

/**
 * Resolve once ICE gathering is complete, or after `timeoutMs` (then the offer carries the
 * candidates found so far: better late media than none).
 * @param {RTCPeerConnection} pc @param {number} [timeoutMs] @returns {Promise<void>}
 */
export function iceGatheringComplete(pc, timeoutMs = GATHER_TIMEOUT_MS) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    };
    const check = () => { if (pc.iceGatheringState === "complete") done(); };
    const timer = setTimeout(done, timeoutMs);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

/** `booth-face`, `clerk-camera` ... (the recording's and the stats' name). @param {string} publisher @param {string} track */
export const trackKey = (publisher, track) => `${publisher}-${track}`;

/** Stop every track (a page's cameras at the end of a call). @param {Iterable<MediaStreamTrack | null | undefined>} tracks */
export function stopTracks(tracks) {
  for (const track of tracks) track?.stop();
}

/**
 * Connect this page's media for a live call; resolves once the hub's answer is applied (the
 * media itself follows within a moment). Rejects with the protocol's `ProtocolError` when the
 * hub refuses (`call_not_found`, `bad_track`, `media_unavailable` ...).
 * @param {ProtocolClient} client @param {string} callId @param {JoinOptions} options
 * @returns {Promise<CallMedia>}
 */
export async function joinCallMedia(client, callId, options) {
  const media = new CallMedia(client, callId, options);
  try {
    await media.connect();
  } catch (err) {
    media.close();
    throw err;
  }
  return media;
}

/**
 * Media starts and stops of one page, run one after another so a hang-up never overtakes the
 * connect it ends. A failed step marks `body[data-media=failed]` and does not block the next.
 */
export class MediaSteps {
  /** @param {string} label how failures are logged */
  constructor(label) {
    this.label = label;
    /** @type {Promise<void>} */
    this.queue = Promise.resolve();
  }

  /** Queue a step (a start). @param {() => Promise<void>} step */
  run(step) {
    this.queue = this.queue.then(step).catch((err) => {
      console.warn(`${this.label} failed`, err);
      document.body.dataset.media = "failed";
    });
    return this.queue;
  }

  /** Queue a cleanup (a stop): it runs even when the step before it failed. @param {() => Promise<void>} step */
  cleanup(step) {
    this.queue = this.queue.then(step, step);
    return this.queue;
  }
}

/** One party's media in one call: its current peer connection, its slots, its remote tracks. */
export class CallMedia {
  /** @param {ProtocolClient} client @param {string} callId @param {JoinOptions} options */
  constructor(client, callId, { role, localTracks = {}, onRemoteTrack, onStateChange, iceServers, iceTransportPolicy,
    resume = "auto", offerTimeoutMs = OFFER_TIMEOUT_MS }) {
    if (!(role in PUBLISHES)) throw new TypeError(`role must be one of ${Object.keys(PUBLISHES).join(", ")}`);
    this.client = client;
    this.callId = callId;
    /** @type {MediaRole} */
    this.role = role;
    /** @type {[TrackName, MediaStreamTrack][]} what this party sends, in m-line order */
    this.local = PUBLISHES[role]
      .map((name) => /** @type {[TrackName, MediaStreamTrack | null | undefined]} */ ([name, localTracks[name]]))
      .filter((entry) => entry[1] != null && entry[1].kind === KIND_OF[entry[0]])
      .map((entry) => /** @type {[TrackName, MediaStreamTrack]} */ (entry));
    /** Explicit ICE servers and policy; left undefined, each new peer takes the socket's `ice.servers`. */
    this.iceServers = iceServers;
    this.iceTransportPolicy = iceTransportPolicy;
    this.resume = resume;
    this.offerTimeoutMs = offerTimeoutMs;
    this.onRemoteTrack = onRemoteTrack ?? (() => {});
    this.onStateChange = onStateChange ?? (() => {});
    /** @type {RTCPeerConnection | null} */
    this.pc = null;
    /** How many peer connections were set up (1 after the first connect, 2 after a restart ...). */
    this.generation = 0;
    /** @type {MediaState} */
    this.state = "connecting";
    /** True once the socket dropped after the current peer was set up: a restart is due. */
    this.stale = false;
    this.closed = false;
    /** @type {Map<string, RTCRtpTransceiver>} receive transceivers by mid */
    this._receivers = new Map();
    /** @type {Map<string, Slot>} by mid */
    this.slots = new Map();
    /** @type {Map<string, MediaStreamTrack>} remote tracks by `publisher-track` */
    this.remote = new Map();
    /** @type {Promise<void> | null} */
    this._connecting = null;
    this._failedTimer = 0;
    // Slot lists arrive in the ack and in pushes; a push can land while the answer is being
    // applied, so the newest list wins: pushes are numbered and remembered.
    this._pushes = 0;
    /** @type {Slot[]} */
    this._lastPushed = [];
    /** @type {(() => void)[]} */
    this._unsubscribe = [
      client.on("rtc.slots", (m) => {
        if (m.call_id !== this.callId || this.closed) return;
        this._pushes += 1;
        this._lastPushed = m.slots ?? [];
        this._applySlots(this._lastPushed);
      }),
      client.on("reconnecting", () => {
        if (!this.closed) this.stale = true;
      }),
      client.on("reconnected", ({ welcome }) => this._onReconnected(welcome)),
      // A fresh TURN credential: the live peer uses it for its next ICE restart.
      client.on("ice.servers", (m) => {
        if (!this.pc || this.closed || this.iceServers) return;
        try {
          this.pc.setConfiguration({ ...this.pc.getConfiguration(), iceServers: m.ice_servers });
        } catch (err) {
          console.warn("media: could not renew the ICE servers of the live peer", err);
        }
      }),
      client.on("closed", () => this.close()),
    ];
  }

  /** Set up a new peer connection (replacing the current one once the hub answered it). */
  connect() {
    if (this.closed) return Promise.reject(new Error("media closed"));
    // One negotiation at a time: a restart asked for meanwhile waits for it, then runs.
    const previous = this._connecting ?? Promise.resolve();
    const run = previous.catch(() => {}).then(() => this._negotiate());
    this._connecting = run;
    run.finally(() => { if (this._connecting === run) this._connecting = null; }).catch(() => {});
    return run;
  }

  /** Tear the peer down and set up a new one (after the call was resumed on a new socket). */
  restart() {
    this.stale = false;
    this._setState("reconnecting");
    return this.connect();
  }

  /** The remote track of `publisher`'s `name` (e.g. "booth", "document"), if a slot carries it. @param {Publisher} publisher @param {TrackName} name */
  remoteTrack(publisher, name) {
    return this.remote.get(trackKey(publisher, name)) ?? null;
  }

  /**
   * getStats of every receive slot: frames decoded, size, packets.
   * @returns {Promise<InboundStats[]>}
   */
  async stats() {
    const out = [];
    for (const [mid, transceiver] of this._receivers) {
      const slot = this.slots.get(mid);
      /** @type {any} */
      let inbound = null;
      let codec = "";
      try {
        const report = await transceiver.receiver.getStats();
        report.forEach((s) => { if (s.type === "inbound-rtp") inbound = s; });
        codec = inbound?.codecId ? report.get(inbound.codecId)?.mimeType ?? "" : "";
      } catch {
        // a closed peer has no stats
      }
      out.push({
        mid,
        kind: transceiver.receiver.track.kind,
        publisher: slot?.publisher ?? null,
        track: slot?.track ?? null,
        codec,
        framesDecoded: inbound?.framesDecoded ?? 0,
        framesReceived: inbound?.framesReceived ?? 0,
        frameWidth: inbound?.frameWidth ?? 0,
        frameHeight: inbound?.frameHeight ?? 0,
        packetsReceived: inbound?.packetsReceived ?? 0,
        packetsLost: inbound?.packetsLost ?? 0,
        bytesReceived: inbound?.bytesReceived ?? 0,
      });
    }
    return out;
  }

  /** Frames decoded so far on this peer, per remote video by name: {"booth-face": 312, ...}. @returns {Promise<Record<string, number>>} */
  async framesDecoded() {
    /** @type {Record<string, number>} */
    const out = {};
    for (const s of await this.stats()) {
      if (s.kind === "video" && s.publisher && s.track) out[trackKey(s.publisher, s.track)] = s.framesDecoded;
    }
    return out;
  }

  /** Hang up this party's media (the local tracks stay with their owner). Idempotent. */
  close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this._failedTimer);
    for (const off of this._unsubscribe) off();
    this._dropPeer();
    this._applySlots([]);
    this._setState("closed");
  }

  // ------------------------------------------------------------------ internals
  async _negotiate() {
    if (this.closed) throw new Error("media closed");
    const ice = this.iceServers ? null : await this.client.iceConfig();
    if (this.closed) throw new Error("media closed");
    const pc = new RTCPeerConnection({
      iceServers: this.iceServers ?? ice?.ice_servers ?? [],
      iceTransportPolicy: this.iceTransportPolicy ?? ice?.ice_transport_policy ?? "all",
      bundlePolicy: "max-bundle",
    });
    /** @type {[TrackName, RTCRtpTransceiver][]} */
    const sending = [];
    /** @type {Map<string, RTCRtpTransceiver>} */
    const receiving = new Map();
    /** @type {RTCRtpTransceiver[]} */
    const receivers = [];
    try {
      for (const [name, track] of this.local) {
        const transceiver = pc.addTransceiver(track, { direction: "sendonly", streams: [new MediaStream([track])] });
        if (track.kind === "video") preferVp8(transceiver);
        sending.push([name, transceiver]);
      }
      const wanted = RECEIVES[this.role];
      for (const kind of /** @type {("video" | "audio")[]} */ (["video", "audio"])) {
        for (let i = 0; i < wanted[kind]; i += 1) {
          const transceiver = pc.addTransceiver(kind, { direction: "recvonly" });
          if (kind === "video") preferVp8(transceiver);
          receivers.push(transceiver);
        }
      }
      await pc.setLocalDescription(await pc.createOffer());
      await iceGatheringComplete(pc);
      for (const transceiver of receivers) receiving.set(String(transceiver.mid), transceiver);
      const tracks = Object.fromEntries(sending.map(([name, t]) => [String(t.mid), name]));
      const ack = await this.client.request("rtc.offer", {
        call_id: this.callId,
        sdp: pc.localDescription?.sdp ?? "",
        ...(sending.length ? { tracks } : {}),
      }, { timeoutMs: this.offerTimeoutMs });
      if (this.closed) throw new Error("media closed");
      const pushesBeforeAnswer = this._pushes;
      await pc.setRemoteDescription({ type: "answer", sdp: ack.sdp });
      if (this.closed) throw new Error("media closed");
      this._dropPeer();
      this.pc = pc;
      this._receivers = receiving;
      this.generation += 1;
      this._watch(pc);
      // A push that came while the answer was applied is newer than the ack's list.
      this._applySlots(this._pushes > pushesBeforeAnswer ? this._lastPushed : ack.slots ?? []);
      if (pc.connectionState === "connected") this._setState("connected");
    } catch (err) {
      pc.close();
      if (!this.closed) this._setState(this.pc?.connectionState === "connected" ? "connected" : "failed");
      throw err;
    }
  }

  /** @param {RTCPeerConnection} pc */
  _watch(pc) {
    pc.addEventListener("connectionstatechange", () => {
      if (pc !== this.pc || this.closed) return;
      if (pc.connectionState === "connected") this._setState("connected");
      else if (pc.connectionState === "failed") {
        this._setState("failed");
        // ICE failed under a live socket (a network path change): try a new peer, gently.
        clearTimeout(this._failedTimer);
        this._failedTimer = window.setTimeout(() => {
          if (!this.closed && this.pc === pc && this.client.ws?.readyState === WebSocket.OPEN) {
            this.restart().catch((err) => console.warn("media: restart after failure failed", err));
          }
        }, FAILED_RETRY_MS);
      }
    });
  }

  /** @param {any} welcome */
  _onReconnected(welcome) {
    if (this.closed || this.resume !== "auto") return;
    if (welcome?.call?.call_id !== this.callId) {
      this.close(); // the call ended while the socket was down
      return;
    }
    this.restart().catch((err) => console.warn("media: restart after reconnect failed", err));
  }

  _dropPeer() {
    const pc = this.pc;
    this.pc = null;
    if (pc) pc.close();
  }

  /** Apply a slot list (the ack's or an `rtc.slots` push) and report what changed by name. @param {Slot[]} slots */
  _applySlots(slots) {
    this.slots = new Map(slots.map((s) => [String(s.mid), { ...s, mid: String(s.mid) }]));
    /** @type {Map<string, MediaStreamTrack>} */
    const now = new Map();
    for (const slot of this.slots.values()) {
      const transceiver = this._receivers.get(slot.mid);
      if (slot.publisher && slot.track && transceiver && !this.closed) now.set(trackKey(slot.publisher, slot.track), transceiver.receiver.track);
    }
    const before = this.remote;
    this.remote = now;
    for (const [key, track] of now) {
      if (before.get(key) !== track) this._report(key, track);
    }
    for (const key of before.keys()) {
      if (!now.has(key)) this._report(key, null);
    }
  }

  /** @param {string} key @param {MediaStreamTrack | null} track */
  _report(key, track) {
    const cut = key.indexOf("-");
    const publisher = /** @type {Publisher} */ (key.slice(0, cut));
    const name = /** @type {TrackName} */ (key.slice(cut + 1));
    try {
      this.onRemoteTrack(name, publisher, track);
    } catch (err) {
      console.error("media: onRemoteTrack failed", err);
    }
  }

  /** @param {MediaState} state */
  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    try {
      this.onStateChange(state, this);
    } catch (err) {
      console.error("media: onStateChange failed", err);
    }
  }
}
