// @ts-check
/**
 * The booth's ID card reader (身份证阅读器) during a call, when the kiosk runs with the booth agent
 * (`?agent=1` or `?agent=<url>`, as kiosk-capture.js): while the call is live the page asks the
 * agent every 1.5 s whether a card was newly placed (`POST <agent>/id-card {call_id}`). The agent
 * reads the card and uploads it with its own token (the server masks the number and shows the
 * card to the clerk beside the resident's face); the page only learns the name and the masked
 * number, which it shows the resident as a short, large confirmation that the card was read.
 *
 * The first poll after the call (re)connects to a clerk says `restart: true`, so a card lying on
 * the reader reaches a clerk the call was transferred to as well.
 * 201: a new card was read and sent; 204: nothing new; 409: the agent has no reader (the page
 * stops asking until it is reloaded). Without an agent this module does nothing.
 * kiosk.js calls `watchIdCard(kiosk)` once; the call's lifecycle is read from `kiosk.resident`.
 */
import { tr } from "./i18n.js";

const DEFAULT_AGENT = "http://127.0.0.1:8765";
const POLL_MS = 1500;
const SHOW_MS = 15000; // the confirmation stays long enough to be read slowly, then gets out of the way
const params = new URLSearchParams(location.search);
const agentParam = params.get("agent");
/** @type {string | null} */
const AGENT_URL = agentParam ? (agentParam === "1" ? DEFAULT_AGENT : agentParam.replace(/\/$/, "")) : null;

/** What the page did last, for tests and support staff; read-only by convention. */
const idcard = {
  /** @type {{name: string, masked: string, material_id: number, call_id: string} | null} */ last: null,
  /** @type {string | null} the live call being watched */ callId: null,
  /** the next poll is the first since the call (re)connected to a clerk: a card lying there counts again */
  restart: false,
  /** @type {"off" | "idle" | "polling" | "no_reader"} */ state: AGENT_URL ? "idle" : "off",
  polls: 0,
  reads: 0,
};
Object.defineProperty(window, "kioskIdCard", { value: idcard });

/** @param {string} tag @param {Record<string, string>} [attrs] @param {string} [text] */
function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

/** The confirmation card, built once: a status region, so a screen reader says it without taking focus. */
function note() {
  const existing = document.getElementById("idcard-note");
  if (existing) return existing;
  const box = el("section", { id: "idcard-note", class: "idcard-note", role: "status", "aria-live": "polite",
    "aria-labelledby": "idcard-note-title", hidden: "" });
  const mark = el("span", { class: "idcard-note-mark", "aria-hidden": "true" });
  mark.innerHTML = '<svg viewBox="0 0 48 48" focusable="false"><circle cx="24" cy="24" r="22" fill="currentColor"/>'
    + '<path d="m14 25 7 7 13-15" fill="none" stroke="#fff" stroke-width="5" stroke-linecap="round" stroke-linejoin="round"/></svg>';
  const text = el("div", { class: "idcard-note-text" });
  const facts = el("dl", { class: "idcard-note-facts" });
  const nameRow = el("div");
  nameRow.append(el("dt", {}, tr("姓名", "Name")), el("dd", { id: "idcard-note-name", "data-testid": "kiosk-idcard-name" }));
  const numberRow = el("div");
  numberRow.append(el("dt", {}, tr("证件号码", "ID number")),
    el("dd", { id: "idcard-note-number", class: "idcard-note-number", "data-testid": "kiosk-idcard-number" }));
  facts.append(nameRow, numberRow);
  text.append(el("h2", { id: "idcard-note-title" }, tr("已读取身份证", "ID card read")), facts,
    el("p", { class: "idcard-note-hint" }, tr("已发送给工作人员核对。请取回您的身份证。",
      "Sent to the clerk to check. Please take your card back.")));
  const ok = el("button", { type: "button", id: "idcard-note-ok", class: "primary" }, tr("好的", "OK"));
  ok.addEventListener("click", hideNote);
  box.append(mark, text, ok);
  document.body.append(box);
  return box;
}

let hideTimer = 0;

/** @param {string} name @param {string} masked */
function showNote(name, masked) {
  const box = note();
  /** @type {HTMLElement} */ (box.querySelector("#idcard-note-name")).textContent = name;
  /** @type {HTMLElement} */ (box.querySelector("#idcard-note-number")).textContent = masked;
  box.hidden = false;
  document.body.dataset.idcard = "read";
  clearTimeout(hideTimer);
  hideTimer = window.setTimeout(hideNote, SHOW_MS);
}

function hideNote() {
  clearTimeout(hideTimer);
  const box = document.getElementById("idcard-note");
  if (box) box.hidden = true;
  if (document.body.dataset.idcard === "read") document.body.dataset.idcard = "shown";
}

/** The call is over: the next resident must find nothing of this one's card, on screen or in memory. */
function forget() {
  hideNote();
  for (const id of ["idcard-note-name", "idcard-note-number"]) {
    const node = document.getElementById(id);
    if (node) node.textContent = "";
  }
  idcard.last = null;
  delete document.body.dataset.idcard;
}

/** Ask the agent once for a card placed for `callId`. @param {string} callId */
async function poll(callId) {
  idcard.polls += 1;
  let response;
  try {
    response = await fetch(`${AGENT_URL}/id-card`, { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ call_id: callId, ...(idcard.restart ? { restart: true } : {}) }) });
  } catch {
    return; // the agent is not answering just now: ask again at the next tick
  }
  idcard.restart = false;
  if (response.status === 409) {
    idcard.state = "no_reader";
    return;
  }
  if (response.status !== 201) return; // 204 nothing new; 502 the upload failed (the agent tries again)
  const body = await response.json().catch(() => null);
  if (!body || idcard.callId !== callId) return; // the call ended while the card was read
  idcard.reads += 1;
  idcard.last = { name: String(body.name ?? ""), masked: String(body.masked ?? ""),
    material_id: Number(body.material_id), call_id: callId };
  showNote(idcard.last.name, idcard.last.masked);
}

/**
 * Watch the booth agent's ID card reader while this kiosk's call is live (no-op without an agent).
 * @param {any} kiosk the kiosk state (kiosk.js): `kiosk.resident.callState` / `callId`
 */
export function watchIdCard(kiosk) {
  if (!AGENT_URL) return;
  const tick = async () => {
    const r = kiosk.resident;
    const live = r?.callState === "live" && r.callId ? String(r.callId) : null;
    if (live !== idcard.callId) {
      idcard.callId = live;
      idcard.restart = Boolean(live); // also after a transfer: the new clerk gets the card too
      if (!live) forget();
    }
    if (live && idcard.state !== "no_reader") {
      idcard.state = "polling";
      await poll(live);
    } else if (idcard.state === "polling") {
      idcard.state = "idle";
    }
    window.setTimeout(tick, POLL_MS);
  };
  void tick();
}
