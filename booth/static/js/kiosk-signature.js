// @ts-check
/**
 * The resident's signature (签名) during a call: the clerk asks (`signature.request`), the kiosk
 * shows a large signing pad, and the signature goes to the server as a PNG material of kind
 * `signature` (multipart `POST /api/booth/materials`, booth token), which the clerk's gallery shows.
 *
 * The pad is a canvas drawn with pointer events (finger, stylus or mouse; coalesced events for
 * smooth strokes), at the screen's device-pixel resolution, on white so the archived PNG reads like
 * paper. Sizes are for older residents: buttons at least 60 px (here 96 px), text at least 24 px.
 * kiosk.js hands every push to `handleSignaturePush`; the pad closes itself when the call ends.
 */
import { errorText, tr } from "./i18n.js";

const INK = "#0d1b2a";
const PAD_HEIGHT_CSS = 380; // px; the width is the dialog's
const MIN_INK_POINTS = 4; // a tap is not a signature
/** The pad's drawing space in CSS pixels, fixed when it is cleared (the bitmap is that times the ratio). */
const space = { width: 800, ratio: 1 };

/** What the page did last, for tests and support staff; read-only by convention. */
const signature = {
  /** @type {{material_id: number, width: number, height: number, sha256: string, size: number} | null} */ last: null,
  /** @type {string | null} */ callId: null,
  strokes: 0,
  points: 0,
  busy: false,
};
Object.defineProperty(window, "kioskSignature", { value: signature });

/** @param {string} tag @param {Record<string, string>} [attrs] @param {string} [text] */
function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

/** @param {string} id */
const $ = (id) => /** @type {any} */ (document.getElementById(id));

// ------------------------------------------------------------------ the dialog

/** The signing dialog, built once. */
function dialog() {
  const existing = /** @type {HTMLDialogElement | null} */ (document.getElementById("signature-dialog"));
  if (existing) return existing;
  const box = /** @type {HTMLDialogElement} */ (el("dialog", { id: "signature-dialog", class: "dialog signature-dialog",
    "aria-labelledby": "signature-title", "aria-describedby": "signature-hint" }));
  const canvas = el("canvas", { id: "signature-pad", class: "signature-pad", "data-testid": "signature-pad",
    "aria-label": tr("签名区域", "Signing area") });
  box.append(
    el("h2", { id: "signature-title" }, tr("请在下面的白框里签名", "Please sign in the white box below")),
    el("p", { id: "signature-hint", class: "signature-hint" },
      tr("用手指写下您的姓名，写好后按“确认签名”。写错了可以按“重写”。",
        "Write your name with your finger, then press “Confirm”. Made a mistake? Press “Start again”.")),
    el("div", { class: "signature-frame" }, undefined),
    el("p", { id: "signature-status", class: "signature-status", role: "status", "aria-live": "polite" }),
    el("div", { class: "signature-actions" }, undefined),
  );
  const frame = /** @type {HTMLElement} */ (box.querySelector(".signature-frame"));
  frame.append(canvas, el("span", { class: "signature-line", "aria-hidden": "true" }, tr("签名处", "Sign here")));
  const clear = el("button", { type: "button", id: "signature-clear", class: "secondary" }, tr("重写", "Start again"));
  const confirm = el("button", { type: "button", id: "signature-confirm", class: "primary", disabled: "" }, tr("确认签名", "Confirm"));
  /** @type {HTMLElement} */ (box.querySelector(".signature-actions")).append(clear, confirm);
  clear.addEventListener("click", clearPad);
  confirm.addEventListener("click", () => { void confirmSignature(); });
  // Escape must not throw the signature away: only the clerk's call ending closes the pad.
  box.addEventListener("cancel", (event) => event.preventDefault());
  attachDrawing(/** @type {HTMLCanvasElement} */ (canvas));
  document.body.append(box);
  return box;
}

/** @param {string} text @param {"info" | "error" | "ok"} [tone] */
function say(text, tone = "info") {
  const status = $("signature-status");
  status.textContent = text;
  status.dataset.tone = tone;
}

function syncButtons() {
  $("signature-confirm").disabled = signature.busy || signature.points < MIN_INK_POINTS;
  $("signature-clear").disabled = signature.busy;
}

// ------------------------------------------------------------------ drawing

/** Size the canvas to its box at device resolution, on white. @param {HTMLCanvasElement} canvas */
function resetCanvas(canvas) {
  const ratio = Math.min(window.devicePixelRatio || 1, 2);
  const width = Math.max(300, Math.round(canvas.clientWidth || canvas.parentElement?.clientWidth || 800));
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(PAD_HEIGHT_CSS * ratio);
  Object.assign(space, { width, ratio });
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, width, PAD_HEIGHT_CSS);
  ctx.strokeStyle = INK;
  ctx.lineWidth = 5;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  signature.strokes = 0;
  signature.points = 0;
}

/** Pointer strokes on the pad. @param {HTMLCanvasElement} canvas */
function attachDrawing(canvas) {
  /** @type {{x: number, y: number} | null} */
  let last = null;
  /** Where on the pad, in its drawing space (the pad may have been resized since it was cleared). @param {PointerEvent} e */
  const at = (e) => {
    const rect = canvas.getBoundingClientRect();
    return { x: (e.clientX - rect.left) * (space.width / rect.width || 1),
      y: (e.clientY - rect.top) * (PAD_HEIGHT_CSS / rect.height || 1) };
  };
  const ctx = () => /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
  canvas.addEventListener("pointerdown", (e) => {
    if (signature.busy || (e.pointerType === "mouse" && e.button !== 0)) return;
    e.preventDefault();
    canvas.setPointerCapture(e.pointerId);
    last = at(e);
    const c = ctx();
    c.beginPath();
    c.arc(last.x, last.y, c.lineWidth / 2, 0, Math.PI * 2); // a dot where the finger lands
    c.fillStyle = INK;
    c.fill();
    signature.strokes += 1;
    signature.points += 1;
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!last) return;
    const events = typeof e.getCoalescedEvents === "function" ? e.getCoalescedEvents() : [];
    const c = ctx();
    c.beginPath();
    c.moveTo(last.x, last.y);
    for (const point of events.length ? events : [e]) {
      last = at(point);
      c.lineTo(last.x, last.y);
      signature.points += 1;
    }
    c.stroke();
    syncButtons();
  });
  const end = () => {
    if (!last) return;
    last = null;
    syncButtons();
    if (signature.points >= MIN_INK_POINTS) say(tr("写好了请按“确认签名”。", "When you are done, press “Confirm”."));
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  canvas.addEventListener("lostpointercapture", end);
}

function clearPad() {
  resetCanvas($("signature-pad"));
  say(tr("已清空，请重新签名。", "Cleared. Please sign again."));
  syncButtons();
}

// ------------------------------------------------------------------ upload

/** The pad as a PNG blob. @returns {Promise<Blob>} */
function padPng() {
  const canvas = /** @type {HTMLCanvasElement} */ ($("signature-pad"));
  return new Promise((resolve, reject) => canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("encode failed"))), "image/png"));
}

/** @param {string} token @param {string} callId @param {Blob} png */
async function upload(token, callId, png) {
  const form = new FormData();
  form.append("call_id", callId);
  form.append("kind", "signature");
  form.append("file", png, "signature.png");
  let response;
  try {
    response = await fetch("/api/booth/materials", { method: "POST", body: form,
      headers: { Authorization: `Bearer ${token}`, Accept: "application/json" } });
  } catch {
    throw Object.assign(new Error("network"), { code: "disconnected" });
  }
  const body = await response.json().catch(() => null);
  if (response.status !== 201) throw Object.assign(new Error("refused"), { code: body?.error?.code ?? String(response.status) });
  return body;
}

/** @type {any} */
let currentKiosk = null;

async function confirmSignature() {
  if (signature.busy || !signature.callId || !currentKiosk?.api) return;
  signature.busy = true;
  syncButtons();
  $("signature-confirm").setAttribute("aria-busy", "true");
  say(tr("正在发送给工作人员……", "Sending it to the clerk…"));
  document.body.dataset.signature = "uploading";
  try {
    signature.last = await upload(currentKiosk.api.token, signature.callId, await padPng());
    document.body.dataset.signature = "uploaded";
    say(tr("签名已发送给工作人员，谢谢！", "Your signature was sent to the clerk. Thank you!"), "ok");
    closePad();
  } catch (err) {
    document.body.dataset.signature = "failed";
    say(`${tr("签名未发送成功：", "The signature was not sent: ")}${errorText(/** @type {any} */ (err)?.code ?? "internal")}`, "error");
  } finally {
    signature.busy = false;
    $("signature-confirm").removeAttribute("aria-busy");
    syncButtons();
  }
}

// ------------------------------------------------------------------ open and close

/** @param {any} kiosk @param {string} callId */
function openPad(kiosk, callId) {
  currentKiosk = kiosk;
  signature.callId = callId;
  const box = dialog();
  // Another device dialog (capture, print) may be open; the signature is what the clerk waits for now.
  const other = /** @type {HTMLDialogElement | null} */ (document.getElementById("device-dialog"));
  if (other?.open) other.close();
  if (!box.open) box.showModal();
  resetCanvas($("signature-pad")); // after showModal: the canvas has its laid-out width now
  say("");
  syncButtons();
  document.body.dataset.signature = "open";
}

function closePad() {
  const box = /** @type {HTMLDialogElement | null} */ (document.getElementById("signature-dialog"));
  if (box?.open) box.close();
  signature.callId = null;
}

/**
 * Pushes of a call that concern the signature: true when the push was one of ours.
 * `call.ended` and `call.transferring` close the pad and are left to kiosk.js (false).
 * @param {any} kiosk the kiosk state (kiosk.js) @param {any} m a pushed message
 */
export function handleSignaturePush(kiosk, m) {
  if (m.type === "signature.request") {
    if (kiosk.resident?.callState === "live" && m.call_id) openPad(kiosk, m.call_id);
    return true;
  }
  if ((m.type === "call.ended" || m.type === "call.transferring" || m.type === "call.abandoned")
      && signature.callId && m.call_id === signature.callId) {
    closePad();
    if (document.body.dataset.signature === "open") delete document.body.dataset.signature;
  }
  return false;
}
