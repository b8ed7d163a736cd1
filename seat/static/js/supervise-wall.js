// @ts-check
/**
 * The supervisors' live wall (监控墙): booths by region, the queue by skill, clerks with their time
 * in state, live calls with a silent monitor, open alerts. Everything arrives over /ws/supervisor
 * (docs/protocol.md, "Supervisor"): `welcome` carries a snapshot, `wall.*` pushes are deltas applied
 * here. Nothing polls: times in state and waits tick locally from the server's timestamps, and
 * the snapshot is read again only after a reconnect (the protocol client reconnects with backoff).
 */
import { BACKOFF_MS, CLOSE, ProtocolClient } from "./protocol.js";
import { EN, REASON, STATUS, clock, itemName, label, tr, when } from "./console-text.js";
import { closeMonitor, monitoredCall, openMonitor, rejoinMonitor } from "./supervise-monitor.js";

/** @typedef {import("./protocol.js").Message} Message */
/**
 * @typedef {{booth_id: number, name: string, region: string, online: boolean, status: string, node: string | null,
 *   last_seen: number | null, devices: Record<string, string>}} Booth
 * @typedef {{clerk_id: number, name: string, status: string, reason: string | null, since: number,
 *   skills: string[], regions: string[], online: boolean}} Clerk
 * @typedef {{call_id: string, booth_id: number, booth_name: string, region: string, item_code: string,
 *   item_name_zh: string, item_name_en: string, skill: string, priority: number, enqueued_at: number,
 *   offered_to: number | null}} QueueEntry
 * @typedef {{call_id: string, booth_id: number, booth_name: string, region: string, clerk_id: number | null,
 *   clerk_name: string, item_code: string, item_name_zh: string, item_name_en: string, started_at: number,
 *   media_node: string | null}} LiveCall
 * @typedef {{id: number, kind: string, status: string, message: string, case_number: string | null,
 *   booth_name: string | null, region_code: string | null, created_at: string | null}} Alert
 */

const ALERTS_API = "/api/supervise/alerts?status=open";
const ALERTS_SHOWN = 5;
const BOOTH_STATUS = /** @type {Record<string, [string, string]>} */ ({
  idle: ["空闲", "Idle"], queued: ["排队中", "Waiting"], in_call: ["通话中", "In call"], offline: ["离线", "Offline"],
});
const DEVICE = /** @type {Record<string, [string, string]>} */ ({
  camera: ["摄像头", "Camera"], doc_camera: ["高拍仪", "Document camera"], printer: ["打印机", "Printer"],
  id_reader: ["身份证读卡器", "ID reader"], microphone: ["麦克风", "Microphone"], speaker: ["扬声器", "Speaker"],
});
const DEVICE_STATE = /** @type {Record<string, [string, string]>} */ ({
  ok: ["正常", "OK"], paper_out: ["缺纸", "out of paper"], error: ["故障", "fault"], missing: ["未连接", "missing"],
  busy: ["占用", "busy"],
});
const ALERT_KIND = /** @type {Record<string, [string, string]>} */ ({
  red: ["红灯", "Red"], yellow: ["黄灯", "Yellow"], blue: ["蓝灯", "Blue"],
});
const CLERK_ORDER = ["in_call", "ringing", "wrap_up", "available", "not_ready"];
const PRIORITY = /** @type {Record<number, [string, string]>} */ ({ 1: ["绿色通道", "Priority"], 2: ["预约", "Appointment"] });

const labels = JSON.parse(document.getElementById("wall-labels")?.textContent || "{}");
/** @type {Record<string, [string, string]>} */
const SKILL = labels.skills ?? {};
/** @type {Record<string, [string, string]>} */
const REASONS = { ...REASON, ...(labels.reasons ?? {}) };

const state = {
  connected: false,
  offset: 0, // server clock - this clock, seconds (every time on the wall is the server's)
  /** @type {string[] | null} */ scope: null,
  /** @type {Map<string, {code: string, name_zh: string, name_en: string}>} */ regions: new Map(),
  /** @type {Map<number, Booth>} */ booths: new Map(),
  /** @type {Map<number, Clerk>} */ clerks: new Map(),
  /** @type {Map<string, QueueEntry>} */ queue: new Map(),
  /** @type {Map<string, LiveCall>} */ calls: new Map(),
  /** @type {Map<number, Alert>} */ alerts: new Map(),
  /** @type {Set<string>} */ invited: new Set(),
  alertsAvailable: true,
};
/** @type {ProtocolClient | null} */
let client = null;
let renderQueued = false;

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const serverNow = () => Date.now() / 1000 + state.offset;

/**
 * An element with text and attributes (text only: names come from the records and are never HTML).
 * @param {string} tag @param {Record<string, string>} [attrs] @param {(Node | string | null | undefined)[]} [children]
 */
function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

/** A span whose text counts up from `since` (server seconds), updated by `tick`. @param {number} since @param {string} [cls] */
const ticking = (since, cls = "mono") => el("span", { class: cls, "data-since": String(since) }, [clock(serverNow() - since)]);

/** @param {string} code */
const regionName = (code) => {
  const r = state.regions.get(code);
  return r ? (EN ? r.name_en || r.name_zh : r.name_zh || r.name_en) : code;
};
/** @param {string} skill */
const skillName = (skill) => label(SKILL, skill, skill);

// ------------------------------------------------------------------ applying the server's word
/** @param {any} wall the `wall` of `welcome` or of the `wall.snapshot` ack */
function applySnapshot(wall) {
  state.offset = (wall.now ?? Date.now() / 1000) - Date.now() / 1000;
  state.scope = wall.scope ?? null;
  state.regions = new Map((wall.regions ?? []).map((/** @type {any} */ r) => [r.code, r]));
  state.booths = new Map((wall.booths ?? []).map((/** @type {Booth} */ b) => [b.booth_id, b]));
  state.clerks = new Map((wall.clerks ?? []).map((/** @type {Clerk} */ c) => [c.clerk_id, c]));
  state.queue = new Map((wall.queue ?? []).map((/** @type {QueueEntry} */ q) => [q.call_id, q]));
  state.calls = new Map((wall.calls ?? []).map((/** @type {LiveCall} */ c) => [c.call_id, c]));
  for (const id of state.invited) if (!state.calls.has(id)) state.invited.delete(id);
  render(); // at once: a page (or a test) that saw the snapshot arrive sees it drawn
}

/** @param {Message} m */
function onPush(m) {
  switch (m.type) {
    case "wall.booth": {
      const known = state.booths.get(m.booth_id);
      const base = known ?? { booth_id: m.booth_id, name: m.name ?? "", region: m.region ?? "", devices: {}, last_seen: null, node: null };
      state.booths.set(m.booth_id, m.state
        ? { ...base, online: true, status: m.state.status, node: m.state.node ?? null, name: m.state.name || base.name,
          region: m.state.region || base.region, last_seen: serverNow() }
        : { ...base, online: false, status: "offline", node: null, last_seen: m.last_seen ?? serverNow() });
      break;
    }
    case "wall.devices": {
      const booth = state.booths.get(m.booth_id);
      if (booth) booth.devices = { ...booth.devices, ...m.devices };
      break;
    }
    case "wall.clerk": {
      if (m.status === "offline") state.clerks.delete(m.clerk_id);
      else {
        const known = state.clerks.get(m.clerk_id);
        state.clerks.set(m.clerk_id, {
          clerk_id: m.clerk_id, name: m.name || known?.name || "", status: m.status, reason: m.reason ?? null,
          since: m.since ?? serverNow(), skills: m.skills ?? known?.skills ?? [], regions: m.regions ?? known?.regions ?? [],
          online: true,
        });
      }
      // A clerk no longer ringing holds no offer (a decline is told only this way).
      if (m.status !== "ringing") for (const q of state.queue.values()) if (q.offered_to === m.clerk_id) q.offered_to = null;
      break;
    }
    case "wall.queue":
      if (m.entry) {
        state.queue.set(m.call_id, m.entry);
        state.calls.delete(m.call_id); // a transferred call waits again
      } else state.queue.delete(m.call_id);
      break;
    case "wall.call":
      if (m.status === "active") {
        state.queue.delete(m.call_id);
        state.calls.set(m.call_id, /** @type {LiveCall} */ (m));
      } else {
        state.calls.delete(m.call_id);
        state.invited.delete(m.call_id);
        if (monitoredCall() === m.call_id) {
          closeMonitor(client, { told: tr("通话已结束，监听已停止。", "The call ended; monitoring stopped.") });
        }
      }
      break;
    case "wall.alert": {
      const alert = m.alert;
      if (alert && alert.status === "open") state.alerts.set(alert.id, alert);
      else if (alert) state.alerts.delete(alert.id);
      break;
    }
    case "call.invite":
      state.invited.add(m.call_id);
      notify(tr(`${m.clerk_name || "工作人员"} 邀请监督${m.note ? `：${m.note}` : "。"}`,
        `${m.clerk_name || "A clerk"} asks a supervisor to join${m.note ? `: ${m.note}` : "."}`), "warn");
      break;
    default:
      return;
  }
  scheduleRender();
}

async function loadAlerts() {
  try {
    const response = await fetch(ALERTS_API, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) {
      // 404 until the alerts API is deployed; the panel then says so and pushes still count.
      state.alertsAvailable = response.status !== 404 ? state.alertsAvailable : false;
      scheduleRender();
      return;
    }
    const body = await response.json();
    state.alertsAvailable = true;
    state.alerts = new Map((body.alerts ?? []).filter((/** @type {Alert} */ a) => a.status === "open")
      .map((/** @type {Alert} */ a) => [a.id, a]));
  } catch (err) {
    console.warn("wall: alerts not loaded", err);
  }
  scheduleRender();
}

// ------------------------------------------------------------------ rendering
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    render();
  });
}

function render() {
  renderTiles();
  renderCalls();
  renderQueue();
  renderClerks();
  renderAlerts();
  renderBooths();
  document.body.dataset.calls = String(state.calls.size);
  document.body.dataset.waiting = String(state.queue.size);
}

function longestWait() {
  let oldest = Infinity;
  for (const q of state.queue.values()) oldest = Math.min(oldest, q.enqueued_at);
  return oldest;
}

function renderTiles() {
  const booths = [...state.booths.values()];
  const clerks = [...state.clerks.values()];
  $("tile-booths").textContent = `${booths.filter((b) => b.online).length} / ${booths.length}`;
  $("tile-clerks").textContent = `${clerks.filter((c) => c.status === "available").length} / ${clerks.length}`;
  $("tile-waiting").textContent = String(state.queue.size);
  const oldest = longestWait();
  const longest = $("tile-longest");
  if (Number.isFinite(oldest)) longest.dataset.since = String(oldest);
  else delete longest.dataset.since;
  longest.textContent = Number.isFinite(oldest) ? clock(serverNow() - oldest) : "—";
  $("tile-calls").textContent = String(state.calls.size);
  $("tile-alerts").textContent = state.alertsAvailable || state.alerts.size ? String(state.alerts.size) : "—";
  $("tile-alerts").closest(".tile")?.classList.toggle("tile-warn", state.alerts.size > 0);
}

function renderCalls() {
  const rows = [...state.calls.values()].sort((a, b) => a.started_at - b.started_at);
  const monitoring = monitoredCall();
  $("calls-rows").replaceChildren(...(rows.length ? rows.map((call) => {
    const button = el("button", {
      type: "button", class: "btn btn-primary btn-monitor", "data-call-id": call.call_id,
      "aria-label": tr(`监听 ${call.booth_name} 的通话`, `Monitor the call at ${call.booth_name}`),
    }, [tr("监听", "Monitor")]);
    /** @type {HTMLButtonElement} */ (button).disabled = monitoring !== null;
    button.addEventListener("click", () => startMonitor(call.call_id));
    const invited = state.invited.has(call.call_id)
      ? el("span", { class: "badge badge-invite" }, [tr("邀请监督", "Invited")]) : null;
    return el("tr", { "data-call-id": call.call_id }, [
      el("td", {}, [el("strong", {}, [call.booth_name || `#${call.booth_id}`]), el("br"),
        el("span", { class: "sub" }, [regionName(call.region)])]),
      el("td", {}, [itemName({ name_zh: call.item_name_zh, name_en: call.item_name_en, code: call.item_code }), " ", invited]),
      el("td", {}, [call.clerk_name || "—"]),
      el("td", { class: "num" }, [ticking(call.started_at)]),
      el("td", { class: "actions" }, [button]),
    ]);
  }) : [el("tr", {}, [el("td", { colspan: "5", class: "empty" }, [tr("当前没有通话", "No calls in progress")])])]));
}

function renderQueue() {
  /** @type {Map<string, QueueEntry[]>} */
  const bySkill = new Map();
  for (const q of state.queue.values()) {
    if (!bySkill.has(q.skill)) bySkill.set(q.skill, []);
    bySkill.get(q.skill)?.push(q);
  }
  const groups = [...bySkill.entries()].sort((a, b) => b[1].length - a[1].length || a[0].localeCompare(b[0]));
  $("queue-groups").replaceChildren(...(groups.length ? groups.map(([skill, entries]) => {
    entries.sort((a, b) => b.priority - a.priority || a.enqueued_at - b.enqueued_at);
    const oldest = Math.min(...entries.map((q) => q.enqueued_at));
    const priority = entries.filter((q) => q.priority > 0).length;
    return el("article", { class: "queue-group", "data-skill": skill }, [
      el("header", { class: "queue-group-head" }, [
        el("h3", {}, [skillName(skill)]),
        el("span", { class: "queue-stats" }, [
          el("span", {}, [tr(`${entries.length} 人等待`, `${entries.length} waiting`)]),
          el("span", {}, [tr("最长 ", "longest "), ticking(oldest)]),
          priority ? el("span", { class: "badge badge-priority" }, [tr(`优先 ${priority}`, `${priority} priority`)]) : null,
        ]),
      ]),
      el("ol", { class: "queue-list" }, entries.map((q) => {
        const ringing = q.offered_to != null ? state.clerks.get(q.offered_to) : null;
        const pair = PRIORITY[q.priority];
        return el("li", { "data-call-id": q.call_id }, [
          el("span", { class: "q-booth" }, [q.booth_name || `#${q.booth_id}`]),
          el("span", { class: "q-item" }, [itemName({ name_zh: q.item_name_zh, name_en: q.item_name_en, code: q.item_code })]),
          pair ? el("span", { class: q.priority === 2 ? "badge badge-appointment" : "badge badge-priority" }, [tr(pair[0], pair[1])]) : null,
          q.offered_to != null ? el("span", { class: "badge badge-ringing" },
            [tr(`振铃：${ringing?.name || q.offered_to}`, `Ringing: ${ringing?.name || q.offered_to}`)]) : null,
          ticking(q.enqueued_at, "mono q-wait"),
        ]);
      })),
    ]);
  }) : [el("p", { class: "empty" }, [tr("没有排队的来电", "Nobody is waiting")])]));
}

function renderClerks() {
  const clerks = [...state.clerks.values()].sort((a, b) =>
    CLERK_ORDER.indexOf(a.status) - CLERK_ORDER.indexOf(b.status) || a.since - b.since);
  $("clerk-rows").replaceChildren(...(clerks.length ? clerks.map((c) => {
    const reason = c.status === "not_ready" && c.reason ? ` · ${label(REASONS, c.reason)}` : "";
    return el("tr", { "data-clerk-id": String(c.clerk_id), "data-status": c.status }, [
      el("td", {}, [c.name || `#${c.clerk_id}`, c.online ? null : el("span", { class: "sub" }, [tr("（掉线）", " (disconnected)")])]),
      el("td", {}, [el("span", { class: "pill", "data-status": c.status }, [label(STATUS, c.status) + reason])]),
      el("td", { class: "num" }, [ticking(c.since)]),
      el("td", { class: "sub" }, [c.skills.map(skillName).join(tr("、", ", "))]),
    ]);
  }) : [el("tr", {}, [el("td", { colspan: "4", class: "empty" }, [tr("没有已登录的工作人员", "No clerk is signed in")])])]));
}

function renderAlerts() {
  const alerts = [...state.alerts.values()];
  for (const kind of ["red", "yellow", "blue"]) $(`alerts-${kind}`).textContent = String(alerts.filter((a) => a.kind === kind).length);
  const newest = alerts.sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)) || b.id - a.id).slice(0, ALERTS_SHOWN);
  const empty = state.alertsAvailable ? tr("没有待处理的预警", "No open alerts") : tr("预警服务尚未启用", "Alerts are not available yet");
  $("alert-list").replaceChildren(...(newest.length ? newest.map((a) => el("li", { class: "alert-item", "data-kind": a.kind }, [
    el("span", { class: "badge alert-badge", "data-kind": a.kind }, [label(ALERT_KIND, a.kind)]),
    el("span", { class: "alert-text" }, [
      el("strong", {}, [a.message || "—"]),
      el("span", { class: "sub" }, [[a.case_number, a.booth_name, when(a.created_at)].filter(Boolean).join(" · ")]),
    ]),
  ])) : [el("li", { class: "empty" }, [empty])]));
}

/** @param {Booth} b */
function deviceProblems(b) {
  return Object.entries(b.devices ?? {}).filter(([, s]) => s !== "ok");
}

function renderBooths() {
  /** @type {Map<string, Booth[]>} */
  const byRegion = new Map([...state.regions.keys()].map((code) => [code, []]));
  for (const b of state.booths.values()) {
    if (!byRegion.has(b.region)) byRegion.set(b.region, []);
    byRegion.get(b.region)?.push(b);
  }
  $("booth-regions").replaceChildren(...[...byRegion.entries()].map(([code, booths]) => {
    booths.sort((a, b) => Number(b.online) - Number(a.online) || a.name.localeCompare(b.name, "zh"));
    const online = booths.filter((b) => b.online).length;
    const inCall = booths.filter((b) => b.status === "in_call").length;
    return el("section", { class: "region", "data-region": code, "aria-label": regionName(code) }, [
      el("h3", {}, [regionName(code), el("span", { class: "region-stats" }, [
        tr(`在线 ${online}/${booths.length} · 通话 ${inCall}`, `${online}/${booths.length} online · ${inCall} in call`)])]),
      booths.length ? el("ul", { class: "booth-grid" }, booths.map((b) => {
        const problems = deviceProblems(b);
        const devices = !Object.keys(b.devices ?? {}).length ? el("span", { class: "sub" }, [tr("设备未上报", "Devices not reported")])
          : problems.length ? el("span", { class: "device-warn" }, [problems.map(([name, s]) =>
            `${label(DEVICE, name)}${tr("", " ")}${label(DEVICE_STATE, s)}`).join(tr("、", ", "))])
            : el("span", { class: "device-ok" }, [tr("设备正常", "Devices OK")]);
        const seen = b.online ? null : el("span", { class: "sub" }, [b.last_seen
          ? tr(`最后在线 ${whenUnix(b.last_seen)}`, `Last seen ${whenUnix(b.last_seen)}`) : tr("从未上线", "Never seen")]);
        return el("li", { class: "booth", "data-booth-id": String(b.booth_id), "data-status": b.status }, [
          el("span", { class: "booth-name" }, [b.name]),
          el("span", { class: "pill", "data-status": b.status }, [label(BOOTH_STATUS, b.status)]),
          devices, seen,
        ]);
      })) : el("p", { class: "empty" }, [tr("本区域没有办事亭", "No booths in this region")]),
    ]);
  }));
}

/** @param {number} seconds server Unix time */
function whenUnix(seconds) {
  return when(new Date((seconds - state.offset) * 1000).toISOString());
}

/** Every second: the ticking times only (no request, no re-render). */
function tick() {
  const now = serverNow();
  for (const node of document.querySelectorAll("[data-since]")) {
    node.textContent = clock(now - Number(/** @type {HTMLElement} */ (node).dataset.since));
  }
}

// ------------------------------------------------------------------ notices and the connection
let noticeTimer = 0;
/** @param {string} text @param {"ok" | "warn" | "error"} tone */
function notify(text, tone) {
  const box = $("notice");
  box.textContent = text;
  box.dataset.tone = tone;
  clearTimeout(noticeTimer);
  noticeTimer = window.setTimeout(() => { box.textContent = ""; delete box.dataset.tone; }, 10000);
}

/** @param {string} text @param {"warn" | "error" | "ok"} tone @param {boolean} [login] */
function banner(text, tone, login = false) {
  const box = $("conn-banner");
  box.hidden = !text;
  box.dataset.tone = tone;
  $("conn-text").textContent = text;
  $("conn-login").hidden = !login;
}

/** @param {boolean} connected */
function setConnected(connected) {
  state.connected = connected;
  document.body.dataset.connected = String(connected);
  $("live-text").textContent = connected ? tr("实时更新中", "Live") : tr("连接中断", "Disconnected");
}

/** @param {string} callId */
async function startMonitor(callId) {
  const call = state.calls.get(callId);
  if (!client || !call) return;
  try {
    await openMonitor(client, call, { regionName: regionName(call.region), onClosed: () => scheduleRender() });
  } catch (err) {
    notify(tr("无法开始监听：", "Could not start monitoring: ") + String(/** @type {any} */ (err)?.code ?? err), "error");
  }
  scheduleRender();
}

async function connect() {
  for (let attempt = 0; ; attempt += 1) {
    try {
      client = await ProtocolClient.connect("supervisor", { onPush });
      break;
    } catch (err) {
      const code = /** @type {any} */ (err)?.reply?.code;
      if (code === CLOSE.UNAUTHORIZED || code === CLOSE.FORBIDDEN) {
        banner(tr("登录已失效，请重新登录。", "Your session has ended; please log in again."), "error", true);
        return;
      }
      const delay = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
      banner(tr(`无法连接服务器，${delay / 1000} 秒后重试…`, `Cannot reach the server; retrying in ${delay / 1000} s…`), "warn");
      await new Promise((resolve) => setTimeout(resolve, delay)); // the backoff itself
    }
  }
  banner("", "ok");
  applySnapshot(/** @type {any} */ (client.welcome).wall);
  setConnected(true);
  client.on("reconnecting", (m) => {
    setConnected(false);
    banner(tr(`连接中断，正在重新连接（第 ${m.attempt} 次）…`, `Connection lost; reconnecting (attempt ${m.attempt})…`), "warn");
  });
  client.on("reconnected", (m) => {
    applySnapshot(m.welcome.wall);
    setConnected(true);
    document.body.dataset.reconnects = String(Number(document.body.dataset.reconnects ?? 0) + 1);
    banner(tr("已重新连接，数据已刷新。", "Reconnected; the wall is up to date."), "ok");
    setTimeout(() => { if (state.connected) banner("", "ok"); }, 5000); // a confirmation, then out of the way
    loadAlerts();
    const callId = monitoredCall();
    if (callId && client) {
      if (state.calls.has(callId)) rejoinMonitor(client).catch(() => closeMonitor(client));
      else closeMonitor(client, { told: tr("通话已结束，监听已停止。", "The call ended; monitoring stopped.") });
    }
  });
  client.on("closed", (m) => {
    setConnected(false);
    if (m.code === CLOSE.UNAUTHORIZED || m.code === CLOSE.FORBIDDEN) banner(tr("登录已失效，请重新登录。", "Your session has ended; please log in again."), "error", true);
    else banner(tr("连接已关闭，请刷新页面。", "The connection is closed; reload the page."), "error");
  });
  document.body.dataset.ready = "true";
}

setConnected(false);
setInterval(tick, 1000);
connect();
loadAlerts();
// For the browser tests and support staff: the live state, read-only by convention.
/** @type {any} */ (window).supervisorWall = { get client() { return client; }, state };
