// @ts-check
/**
 * The clerk console (云坐席工作台). One state, driven by the seat socket's pushes (docs/protocol.md):
 * `presence.state` says which screen shows (idle, ringing, in call, wrap-up); `offer`, `call.ended`,
 * `chat.message` and `peer.*` fill them; `welcome` (also after a reconnect) restores a live call.
 * The staff APIs under /api/seat give the checklist, the transfer directory and the history.
 * The media integration fills #face-video, #doc-video and #self-video; nothing here touches them.
 */
import { ProtocolClient, CLOSE } from "./protocol.js";
import {
  CASE_STATUS, END_REASON, EN, REASON, REVOKED, STATUS, clock, duration, errorText, itemName, label, tr, when,
} from "./console-text.js";
import { startConsoleMedia, stopConsoleMedia } from "./console-media.js";
import { closeDocuments, documentsPush, openDocuments } from "./console-decision.js";
import { el, requestJson } from "./dom.js";

/** @typedef {import("./protocol.js").Message} Message */
/** @typedef {{code: string, name_zh: string, name_en: string}} Item */
/** @typedef {{id: number, name: string, region: string, region_name?: string, region_name_zh?: string, region_name_en?: string}} Booth */
/** @typedef {{call_id: string, item: Item, booth: Booth, startedAt: number, endedAt?: number, endReason?: string}} Call */

const $ = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id));

const store = {
  /** @param {string} key @param {any} fallback */
  get(key, fallback) {
    try {
      const raw = sessionStorage.getItem(`cloudseat.${key}`);
      return raw == null ? fallback : JSON.parse(raw);
    } catch {
      return fallback;
    }
  },
  /** @param {string} key @param {any} value */
  set(key, value) {
    try {
      if (value == null) sessionStorage.removeItem(`cloudseat.${key}`);
      else sessionStorage.setItem(`cloudseat.${key}`, JSON.stringify(value));
    } catch {
      /* storage full or disabled: the console works without it */
    }
  },
};

const state = {
  status: "offline",
  /** @type {string | null} */ reason: null,
  since: Date.now(),
  connected: false,
  /** @type {(Message & {receivedAt: number}) | null} */ offer: null,
  /** @type {Call | null} */ call: null,
  /** @type {Call | null} */ lastCall: store.get("lastCall", null),
  wrapSince: Date.now(),
  view: "work",
  shown: "",
  /** @type {Set<string>} calls this clerk declined once (the server refuses a second decline) */
  declined: new Set(/** @type {string[]} */ (store.get("declined", []))),
  sound: store.get("sound", true),
};

/** @type {ProtocolClient | null} */
let client = null;

// ------------------------------------------------------------------ small helpers
/** @param {string} text @param {"info" | "error" | "ok"} [tone] */
function notify(text, tone = "info") {
  const el = $("notice");
  el.textContent = text;
  el.dataset.tone = tone;
  el.classList.toggle("show", Boolean(text));
}

/** @param {string} type @param {Record<string, any>} [fields] */
async function send(type, fields = {}) {
  if (!client) throw Object.assign(new Error("not connected"), { code: "disconnected" });
  return client.request(type, fields);
}

/** @param {string} path */
const api = (path) => requestJson("GET", path);

/** @param {Booth} booth */
const regionName = (booth) => (EN ? booth.region_name_en : booth.region_name_zh) || booth.region_name || booth.region || "";

let audio = /** @type {AudioContext | null} */ (null);
function ring() {
  if (!state.sound) return;
  try {
    audio ??= new AudioContext();
    const now = audio.currentTime;
    for (const [i, freq] of [[0, 880], [1, 660]]) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, now + i * 0.25);
      gain.gain.exponentialRampToValueAtTime(0.2, now + i * 0.25 + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + i * 0.25 + 0.22);
      osc.connect(gain).connect(audio.destination);
      osc.start(now + i * 0.25);
      osc.stop(now + i * 0.25 + 0.24);
    }
  } catch {
    /* no audio output: the visual card is the cue */
  }
}

// ------------------------------------------------------------------ state changes
/** @param {string} status @param {string | null} reason */
function setStatus(status, reason) {
  if (status !== state.status || reason !== state.reason) state.since = Date.now();
  const was = state.status;
  state.status = status;
  state.reason = reason ?? null;
  if (status === "in_call" && !state.call && state.offer) startCall(state.offer);
  if (status !== "ringing") state.offer = null;
  if (status === "wrap_up") {
    if (state.call) finishCall(state.call, "transferred");
    if (was !== "wrap_up") state.wrapSince = Date.now();
  }
  if (status !== "in_call" && status !== "wrap_up" && state.call) {
    state.call = null;
    stopConsoleMedia();
  }
  render();
}

/** @param {{call_id: string, item: Item, booth: Booth}} from @param {number} [startedAt] */
function startCall(from, startedAt = Date.now()) {
  state.call = { call_id: from.call_id, item: from.item, booth: from.booth, startedAt };
  $("chat-log").replaceChildren();
  for (const line of store.get(`chat.${from.call_id}`, [])) appendChat(line.sender, line.text, false);
  $("peer-status").textContent = "";
  loadChecklist(from.item.code);
  startConsoleMedia(client, from.call_id);
  openDocuments(from.call_id, from.item.code);
}

/** @param {Call} call @param {string} reason */
function finishCall(call, reason) {
  state.lastCall = { ...call, endedAt: Date.now(), endReason: reason };
  store.set("lastCall", state.lastCall);
  store.set(`chat.${call.call_id}`, null);
  state.call = null;
  stopConsoleMedia();
  closeDocuments();
}

/** A `welcome` (first or after a reconnect): the server's word on state and on a live call. @param {Message} welcome */
async function applyWelcome(welcome) {
  const live = welcome.call;
  if (live && (!state.call || state.call.call_id !== live.call_id)) {
    // A reload or a reconnect in a call: fetch what the welcome leaves out (names, start time).
    const placeholder = { call_id: live.call_id, item: { code: live.item_code, name_zh: live.item_code, name_en: live.item_code },
      booth: { id: live.booth_id, name: "", region: "" } };
    startCall(placeholder);
    try {
      const detail = await api(`/api/seat/calls/${live.call_id}`);
      if (state.call && state.call.call_id === live.call_id) {
        state.call.item = detail.item;
        state.call.booth = detail.booth;
        if (detail.answered_at) state.call.startedAt = Date.parse(detail.answered_at);
      }
    } catch (err) {
      notify(errorText(err), "error");
    }
  }
  setStatus(welcome.state.status, welcome.state.reason);
  await restoreAfterReload(welcome);
}

/**
 * A reload (a language switch, F5), a crashed or reopened tab closes the socket, and the server
 * signs a clerk who was available or not ready in afresh as not ready / signed_in. Put back the
 * state this clerk had moments ago in this browser; a live call or wrap-up the server keeps by
 * itself. When nothing is put back, say why the clerk is not ready instead of leaving them to
 * wonder (the server's "signed_in" alone reads as if they had just logged in).
 * The state is kept in localStorage (not sessionStorage) so that a reopened tab finds it too.
 * @param {Message} welcome
 */
async function restoreAfterReload(welcome) {
  const kept = leftState.take(welcome.clerk?.id);
  if (welcome.state.status !== "not_ready" || welcome.state.reason !== "signed_in") return;
  if (!kept) {
    notify(tr("您已登录，当前为暂停状态，不会收到来电。准备好后请点击“空闲”。",
      "You are signed in and not ready: no calls ring here. Choose \"Available\" when you are ready."), "info");
    return;
  }
  const away = Math.round((Date.now() - kept.at) / 1000);
  if (away * 1000 > RESTORE_WITHIN_MS) {
    notify(tr(`页面离开了 ${away} 秒，为避免错过来电已暂停接听。准备好后请点击“空闲”。`,
      `The console was away for ${away} s, so you were set to not ready to avoid missed calls. Choose "Available" when ready.`), "info");
    return;
  }
  try {
    if (kept.status === "available") await send("presence.set", { status: "available" });
    else if (kept.status === "not_ready" && PAUSE_REASONS.includes(kept.reason)) {
      await send("presence.set", { status: "not_ready", reason: kept.reason });
    } else if (kept.status === "not_ready" && kept.reason === "missed_offer") {
      notify(tr("刷新前有来电超时未接，您仍为暂停状态。准备好后请点击“空闲”。",
        "A call went unanswered before the reload; you are still not ready. Choose \"Available\" when ready."), "info");
    }
  } catch (err) {
    notify(tr("未能恢复刷新前的状态：", "Could not restore your state from before the reload: ") + errorText(err), "error");
  }
}
const RESTORE_WITHIN_MS = 60000;
const PAUSE_REASONS = ["break", "training", "meeting", "other"]; // what presence.set accepts
/** The clerk's state when the page went away, for the next page of the same clerk in this browser. */
const leftState = {
  key: "cloudseat.leftState",
  /** @param {any} value */
  save(value) {
    try { localStorage.setItem(this.key, JSON.stringify(value)); } catch { /* storage disabled: no restore */ }
  },
  /** The kept state of `clerkId`, once (it is removed). @param {number | undefined} clerkId */
  take(clerkId) {
    let kept = null;
    try {
      kept = JSON.parse(localStorage.getItem(this.key) ?? "null");
      localStorage.removeItem(this.key);
    } catch { /* unreadable: nothing to restore */ }
    return kept && kept.clerk === clerkId ? kept : null;
  },
};
let loggingOut = false;
document.querySelector("form[action='/logout']")?.addEventListener("submit", () => { loggingOut = true; });
window.addEventListener("pagehide", () => {
  if (!loggingOut && state.connected && ["available", "not_ready"].includes(state.status)) {
    leftState.save({ clerk: client?.welcome?.clerk?.id, status: state.status, reason: state.reason, at: Date.now() });
  }
});

// ------------------------------------------------------------------ pushes
/** @param {Message} m */
function onPush(m) {
  switch (m.type) {
    case "presence.state":
      setStatus(m.status, m.reason);
      break;
    case "offer":
      state.offer = { ...m, receivedAt: Date.now() };
      state.view = "work";
      if (!state.declined.has(m.call_id)) notify("");
      ring();
      render();
      break;
    case "offer.revoked":
      if (state.offer?.call_id === m.call_id) state.offer = null;
      notify(label(REVOKED, m.reason, tr("来电已撤回。", "The call was withdrawn.")), "info");
      render();
      break;
    case "call.ended":
      if (state.call?.call_id === m.call_id) finishCall(state.call, m.reason);
      else if (state.lastCall?.call_id === m.call_id) {
        state.lastCall.endReason = m.reason;
        store.set("lastCall", state.lastCall);
      }
      notify(tr("通话已结束：", "Call ended: ") + label(END_REASON, m.reason), "info");
      render();
      break;
    case "chat.message":
      if (state.call?.call_id === m.call_id) appendChat(m.sender, m.text);
      break;
    case "peer.left":
      if (state.call?.call_id === m.call_id) $("peer-status").textContent = tr("居民端连接中断，等待重连…", "The booth dropped; waiting for it to return…");
      break;
    case "peer.rejoined":
      if (state.call?.call_id === m.call_id) $("peer-status").textContent = tr("居民端已重新连接", "The booth is back");
      break;
    default:
      documentsPush(m); // material.added, print.result
      break;
  }
}

// ------------------------------------------------------------------ rendering
const VIEWS = ["idle", "ringing", "call", "wrapup", "history"];

function currentView() {
  if (state.status === "ringing" && state.offer) return "ringing";
  if (state.status === "in_call" && state.call) return "call";
  if (state.view === "history") return "history";
  if (state.status === "wrap_up") return "wrapup";
  return "idle";
}

function render() {
  const view = currentView();
  for (const name of VIEWS) $(`view-${name}`).hidden = name !== view;
  document.body.dataset.view = view;
  document.body.dataset.status = state.status;
  renderState();
  if (view === "idle") renderIdle();
  if (view === "ringing") renderOffer();
  if (view === "call") renderCall();
  if (view === "wrapup") renderWrapup();
  $("show-work").setAttribute("aria-pressed", String(view !== "history"));
  $("show-history").setAttribute("aria-pressed", String(view === "history"));
  if (view !== state.shown) {
    const was = state.shown;
    state.shown = view;
    if (view === "ringing") $("offer-accept").focus();
    else if (view === "call") $("chat-input").focus();
    else if (view === "wrapup") $("wrapup-note").focus();
    else if (view === "history") loadHistory();
    if (was === "ringing" && view !== "call") $("decline-form").hidden = true;
  }
  tick();
}

function renderState() {
  const pill = $("state-pill");
  pill.dataset.status = state.connected ? state.status : "offline";
  document.body.dataset.connected = String(state.connected);
  const reason = state.status === "not_ready" && state.reason ? `（${label(REASON, state.reason)}）` : "";
  $("state-label").textContent = state.connected
    ? label(STATUS, state.status) + (EN && reason ? ` (${label(REASON, state.reason)})` : EN ? "" : reason)
    : tr("未连接", "Disconnected");
  const canSwitch = state.connected && ["available", "not_ready", "offline"].includes(state.status);
  $("go-available").disabled = !canSwitch;
  $("go-not-ready").disabled = !canSwitch;
  $("pause-reason").disabled = !canSwitch;
  $("go-available").setAttribute("aria-pressed", String(state.status === "available"));
  $("go-not-ready").setAttribute("aria-pressed", String(state.status === "not_ready"));
  if (state.status === "not_ready" && state.reason && $("pause-reason").querySelector(`option[value="${state.reason}"]`)) {
    $("pause-reason").value = state.reason;
  }
}

function renderIdle() {
  const title = $("idle-title");
  const text = $("idle-text");
  if (!state.connected) {
    title.textContent = tr("正在连接服务器…", "Connecting to the server…");
    text.textContent = "";
  } else if (state.status === "available") {
    title.textContent = tr("空闲 · 等待来电", "Available · waiting for calls");
    text.textContent = tr("有居民呼叫您的业务时会在这里响铃。", "A resident calling for your skills rings here.");
  } else if (state.status === "wrap_up") {
    title.textContent = tr("话后整理中", "In wrap-up");
    text.textContent = tr("请回到工作台完成话后整理。", "Go back to the workspace to finish wrap-up.");
  } else {
    title.textContent = tr("暂停接听", "Not ready");
    text.textContent = state.reason === "missed_offer"
      ? tr("刚才的来电超时未接。准备好后请点击“空闲”。", "You missed a call. Choose \"Available\" when you are ready.")
      : tr("您当前不会收到来电。准备好后请点击“空闲”。", "You receive no calls now. Choose \"Available\" when you are ready.");
  }
}

function renderOffer() {
  const offer = state.offer;
  if (!offer) return;
  $("offer-item").textContent = itemName(offer.item);
  $("offer-booth").textContent = offer.booth.name;
  $("offer-region").textContent = regionName(offer.booth);
  const badges = $("offer-badges");
  badges.replaceChildren();
  if (offer.transfer_note) badges.append(el("span", { class: "badge badge-transfer", text: tr("转接", "Transferred") }));
  if (offer.priority === 2) badges.append(el("span", { class: "badge badge-appointment", text: tr("预约", "Appointment") }));
  else if (offer.priority === 1 && !offer.transfer_note) badges.append(el("span", { class: "badge badge-priority", text: tr("绿色通道", "Priority") }));
  $("offer-note").hidden = !offer.transfer_note;
  $("offer-note-text").textContent = offer.transfer_note || "";
  const declined = state.declined.has(offer.call_id);
  $("offer-decline").disabled = declined;
  $("decline-help").hidden = !declined;
  if (declined) $("decline-form").hidden = true;
}

function renderCall() {
  const call = state.call;
  if (!call) return;
  $("call-item").textContent = itemName(call.item);
  $("call-booth").textContent = call.booth.name;
  $("call-region").textContent = regionName(call.booth);
}

function renderWrapup() {
  const last = state.lastCall;
  $("wrapup-item").textContent = last ? itemName(last.item) : "—";
  $("wrapup-booth").textContent = last ? last.booth.name : "—";
  $("wrapup-duration").textContent = last && last.endedAt ? duration((last.endedAt - last.startedAt) / 1000) : "—";
  $("wrapup-reason").textContent = last?.endReason ? label(END_REASON, last.endReason) : "—";
}

/** Once a second: every live counter. */
function tick() {
  const now = Date.now();
  $("state-time").textContent = clock((now - state.since) / 1000);
  const offer = state.offer;
  if (offer && state.status === "ringing") {
    const elapsed = (now - offer.receivedAt) / 1000;
    const left = Math.max(0, offer.expires_in_s - elapsed);
    $("offer-countdown").textContent = String(Math.ceil(left));
    $("offer-bar").style.width = `${Math.min(100, (left / offer.expires_in_s) * 100)}%`;
    $("offer-waited").textContent = duration(offer.waited_s + elapsed);
  }
  if (state.call) $("call-timer").textContent = clock((now - state.call.startedAt) / 1000);
  if (state.status === "wrap_up") $("wrapup-timer").textContent = clock((now - state.wrapSince) / 1000);
}

/** @param {string} sender @param {string} text @param {boolean} [keep] */
function appendChat(sender, text, keep = true) {
  const mine = sender === "clerk";
  const line = el("div", { class: mine ? "chat-line mine" : "chat-line theirs" }, [
    el("span", { class: "chat-who", text: mine ? tr("我", "Me") : tr("居民", "Resident") }),
    el("span", { class: "chat-text", text }),
  ]);
  const log = $("chat-log");
  log.append(line);
  log.scrollTop = log.scrollHeight;
  if (keep && state.call) {
    const key = `chat.${state.call.call_id}`;
    store.set(key, [...store.get(key, []), { sender, text }].slice(-200));
  }
}

/** @param {string} code */
async function loadChecklist(code) {
  const list = $("checklist");
  list.replaceChildren(el("li", { class: "empty", text: tr("加载中…", "Loading…") }));
  try {
    const item = await api(`/api/seat/items/${encodeURIComponent(code)}`);
    if (state.call && state.call.item.code === code && !state.call.item.name_zh) state.call.item = item;
    list.replaceChildren(...item.materials.map((/** @type {any} */ m) => el("li", { class: "material" }, [
      el("span", { class: m.mandatory ? "badge badge-required" : "badge badge-optional",
        text: m.mandatory ? tr("必交", "Required") : tr("选交", "If applicable") }),
      el("span", { class: "material-name", text: EN ? m.name_en : m.name_zh }),
      ...((EN ? m.note_en : m.note_zh) ? [el("span", { class: "material-note", text: EN ? m.note_en : m.note_zh })] : []),
    ])));
    if (!item.materials.length) list.replaceChildren(el("li", { class: "empty", text: tr("本事项无需材料。", "No materials needed.") }));
  } catch (err) {
    list.replaceChildren(el("li", { class: "empty", text: errorText(err) }));
  }
}

async function loadHistory() {
  const body = $("history-rows");
  try {
    const { calls } = await api("/api/seat/history?limit=50");
    if (!calls.length) {
      body.replaceChildren(el("tr", {}, [el("td", { colspan: "7", class: "empty", text: tr("暂无记录。", "No calls yet.") })]));
      return;
    }
    body.replaceChildren(...calls.map((/** @type {any} */ c) => el("tr", { "data-call-id": c.call_id }, [
      el("td", { class: "mono", text: when(c.answered_at || c.queued_at) }),
      el("td", { text: itemName(c.item) }),
      el("td", { text: `${c.booth.name}（${EN ? c.booth.region_name_en : c.booth.region_name_zh}）` }),
      el("td", { class: "num", text: duration(c.wait_s) }),
      el("td", { class: "num", text: duration(c.duration_s) }),
      el("td", { text: label(END_REASON, c.outcome, c.outcome || "—") }),
      el("td", { class: "mono", text: c.case ? `${c.case.number} · ${label(CASE_STATUS, c.case.status)}` : "—" }),
    ])));
  } catch (err) {
    body.replaceChildren(el("tr", {}, [el("td", { colspan: "7", class: "empty", text: errorText(err) })]));
  }
}

// ------------------------------------------------------------------ actions
/** @param {HTMLButtonElement} button @param {() => Promise<any>} work */
async function busy(button, work) {
  button.disabled = true;
  try {
    return await work();
  } catch (err) {
    notify(errorText(err), "error");
    return undefined;
  } finally {
    button.disabled = false;
    render();
  }
}

$("go-available").addEventListener("click", () => busy($("go-available"), async () => {
  await send("presence.set", { status: "available" });
  notify("");
}));
$("go-not-ready").addEventListener("click", () => busy($("go-not-ready"), async () => {
  await send("presence.set", { status: "not_ready", reason: $("pause-reason").value });
  notify("");
}));
$("sound-toggle").setAttribute("aria-pressed", String(state.sound));
$("sound-toggle").addEventListener("click", () => {
  state.sound = !state.sound;
  store.set("sound", state.sound);
  $("sound-toggle").setAttribute("aria-pressed", String(state.sound));
});
$("show-work").addEventListener("click", () => { state.view = "work"; render(); });
$("show-history").addEventListener("click", () => { state.view = "history"; render(); });
$("history-refresh").addEventListener("click", () => loadHistory());

$("offer-accept").addEventListener("click", () => busy($("offer-accept"), async () => {
  const offer = state.offer;
  if (!offer) return;
  const ack = await send("offer.accept", { call_id: offer.call_id });
  if (!state.call) startCall(offer);
  if (state.call) state.call.booth = { ...state.call.booth, id: ack.booth_id };
  notify("");
}));
$("offer-decline").addEventListener("click", () => {
  $("decline-form").hidden = false;
  $("decline-reason").focus();
});
$("decline-cancel").addEventListener("click", () => {
  $("decline-form").hidden = true;
  $("offer-decline").focus();
});
$("decline-form").addEventListener("submit", (/** @type {SubmitEvent} */ event) => {
  event.preventDefault();
  const offer = state.offer;
  const reason = $("decline-reason").value.trim();
  if (!offer) return;
  if (!reason) {
    notify(errorText({ code: "reason_required" }), "error");
    $("decline-reason").focus();
    return;
  }
  const submit = /** @type {HTMLButtonElement} */ (event.submitter ?? $("decline-form").querySelector("[type=submit]"));
  busy(submit, async () => {
    try {
      await send("offer.decline", { call_id: offer.call_id, reason });
    } catch (err) {
      if (/** @type {any} */ (err).code !== "decline_used") throw err;
    }
    state.declined.add(offer.call_id);
    store.set("declined", [...state.declined].slice(-50));
    $("decline-reason").value = "";
    $("decline-form").hidden = true;
    notify(tr("已拒接，来电回到队列。", "Declined; the call is back in the queue."), "info");
  });
});

$("end-call").addEventListener("click", () => busy($("end-call"), async () => {
  if (state.call) await send("call.end", { call_id: state.call.call_id });
}));

$("chat-form").addEventListener("submit", (/** @type {SubmitEvent} */ event) => {
  event.preventDefault();
  const input = $("chat-input");
  const text = input.value.trim();
  const call = state.call;
  if (!text || !call) return;
  busy($("chat-form").querySelector("button"), async () => {
    await send("chat.send", { call_id: call.call_id, text });
    input.value = "";
    if (state.call?.call_id === call.call_id) appendChat("clerk", text);
    input.focus();
  });
});

$("wrapup-form").addEventListener("submit", (/** @type {SubmitEvent} */ event) => {
  event.preventDefault();
  busy($("wrapup-done"), async () => {
    await send("wrapup.done", { note: $("wrapup-note").value.trim() });
    $("wrapup-note").value = "";
    state.lastCall = null;
    store.set("lastCall", null);
    notify(tr("话后整理已完成，您已切换为空闲。", "Wrap-up done; you are available."), "ok");
  });
});

// Transfer dialog: to another skill's queue, or to a named clerk online who holds the item's skill.
/** @type {any} */
let directory = null;
function transferKind() {
  return /** @type {HTMLInputElement} */ (document.querySelector("input[name=transfer-kind]:checked")).value;
}
function syncTransferKind() {
  $("transfer-skill-row").hidden = transferKind() !== "skill";
  $("transfer-clerk-row").hidden = transferKind() !== "clerk";
}
for (const radio of document.querySelectorAll("input[name=transfer-kind]")) radio.addEventListener("change", syncTransferKind);

$("open-transfer").addEventListener("click", async () => {
  const call = state.call;
  if (!call) return;
  $("transfer-error").hidden = true;
  $("transfer-dialog").showModal();
  try {
    directory = await api("/api/seat/directory");
  } catch (err) {
    showDialogError("transfer-error", err);
    return;
  }
  const own = directory.skills.find((/** @type {any} */ s) => s.items.some((/** @type {Item} */ i) => i.code === call.item.code));
  const others = directory.skills.filter((/** @type {any} */ s) => s !== own);
  $("transfer-skill").replaceChildren(...others.map((/** @type {any} */ s) => el("option", {
    value: s.skill,
    text: `${EN ? s.name_en : s.name_zh}${tr(`（在线 ${s.online} 人，空闲 ${s.available} 人）`, ` (${s.online} online, ${s.available} available)`)}`,
  })));
  const clerks = own ? own.clerks : [];
  $("transfer-clerk").replaceChildren(...(clerks.length
    ? clerks.map((/** @type {any} */ c) => el("option", { value: String(c.id), text: `${c.name} · ${label(STATUS, c.status)}` }))
    : [el("option", { value: "", text: tr("暂无在线人员", "Nobody online") })]));
  syncTransferKind();
});
$("transfer-cancel").addEventListener("click", () => $("transfer-dialog").close());
$("transfer-form").addEventListener("submit", (/** @type {SubmitEvent} */ event) => {
  event.preventDefault();
  const call = state.call;
  const note = $("transfer-note").value.trim();
  if (!call) return;
  if (!note) {
    showDialogError("transfer-error", { code: "note_required" });
    $("transfer-note").focus();
    return;
  }
  /** @type {Record<string, any>} */
  const fields = { call_id: call.call_id, note };
  if (transferKind() === "skill") fields.to_skill = $("transfer-skill").value;
  else fields.to_clerk_id = Number($("transfer-clerk").value);
  if ((fields.to_skill === "") || (fields.to_clerk_id === 0)) {
    showDialogError("transfer-error", { code: "invalid" });
    return;
  }
  busy($("transfer-submit"), async () => {
    try {
      await send("call.transfer", fields);
    } catch (err) {
      showDialogError("transfer-error", err);
      return;
    }
    $("transfer-note").value = "";
    $("transfer-dialog").close();
    notify(tr("已转接，居民回到队列等待。", "Transferred; the resident waits in the queue."), "ok");
  });
});

$("open-invite").addEventListener("click", () => {
  $("invite-error").hidden = true;
  $("invite-dialog").showModal();
});
$("invite-cancel").addEventListener("click", () => $("invite-dialog").close());
$("invite-form").addEventListener("submit", (/** @type {SubmitEvent} */ event) => {
  event.preventDefault();
  const call = state.call;
  if (!call) return;
  busy(/** @type {HTMLButtonElement} */ (event.submitter), async () => {
    try {
      await send("call.invite_supervisor", { call_id: call.call_id, note: $("invite-note").value.trim() });
    } catch (err) {
      showDialogError("invite-error", err);
      return;
    }
    $("invite-note").value = "";
    $("invite-dialog").close();
    notify(tr("已邀请监督人员。", "A supervisor has been invited."), "ok");
  });
});

/** @param {string} id @param {unknown} err */
function showDialogError(id, err) {
  $(id).textContent = errorText(err);
  $(id).hidden = false;
}

// ------------------------------------------------------------------ connection
/** @param {string} text @param {"warn" | "error" | "ok"} tone @param {boolean} [login] */
function banner(text, tone, login = false) {
  const box = $("conn-banner");
  box.hidden = !text;
  box.dataset.tone = tone;
  $("conn-text").textContent = text;
  $("conn-login").hidden = !login;
}

async function connect() {
  try {
    client = await ProtocolClient.connect("seat", { onPush });
  } catch (err) {
    banner(tr("无法连接服务器，请检查网络后刷新页面。", "Cannot connect to the server. Check the network and reload."), "error", true);
    return;
  }
  state.connected = true;
  client.on("reconnecting", (m) => {
    state.connected = false;
    banner(tr(`连接中断，正在重新连接（第 ${m.attempt} 次）…`, `Connection lost; reconnecting (attempt ${m.attempt})…`), "warn");
    render();
  });
  client.on("reconnected", (m) => {
    state.connected = true;
    document.body.dataset.reconnects = String(Number(document.body.dataset.reconnects ?? 0) + 1);
    banner(tr("已重新连接。", "Reconnected."), "ok");
    setTimeout(() => { if (state.connected) banner("", "ok"); }, 5000); // a confirmation, then out of the way
    applyWelcome(m.welcome);
  });
  client.on("closed", (m) => {
    state.connected = false;
    if (m.code === CLOSE.REPLACED) banner(tr("您已在其他页面打开工作台，本页已停止接听。", "The console was opened elsewhere; this page stopped taking calls."), "error");
    else if (m.code === CLOSE.UNAUTHORIZED || m.code === CLOSE.FORBIDDEN) banner(tr("登录已失效，请重新登录。", "Your session has ended; please log in again."), "error", true);
    else banner(tr("连接已关闭，请刷新页面。", "The connection is closed; reload the page."), "error");
    render();
  });
  await applyWelcome(/** @type {Message} */ (client.welcome));
}

setInterval(tick, 1000);
render();
connect();
// For the browser tests and for support staff at the console: the live state, read-only by convention.
/** @type {any} */ (window).seatConsole = { get client() { return client; }, state };
