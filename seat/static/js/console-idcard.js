// @ts-check
/**
 * The ID card beside the resident's live face: when the booth's reader reads a card during the
 * call (`idcard.read`), the clerk sees the card's photo, the name and the masked number
 * (110105********002X, masked by the server: records.privacy.mask_id_number), to compare with
 * the face on the video.
 *
 * The full number is fetched only when the clerk presses "显示完整号码 / Show full number"
 * (`GET /api/seat/calls/{id}/materials?reveal=id_number` with the CSRF token); the server allows
 * it only to the serving clerk during the live call and logs every reveal. It is shown until the
 * clerk hides it or the call ends, and it is never kept anywhere else in the page.
 *
 * console-decision.js calls `openIdCard` / `closeIdCard` with the call, `showIdCard` with the
 * card its materials listing carries, and hands `idcard.read` pushes to `idCardPush`.
 */
import { errorText, tr } from "./console-text.js";
import { csrf, el } from "./dom.js";

/** @typedef {{name: string, id_number_masked: string, material_id: number, photo_url: string, id_number?: string}} IdCardInfo */

const state = {
  /** @type {string | null} */ callId: null,
  /** @type {IdCardInfo | null} */ card: null,
  revealed: false,
};
/** @type {any} */ (window).seatIdCard = state;

const $ = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id));

/** Codes only this panel meets. @param {any} err */
function problem(err) {
  if (err?.code === "id_card_not_found") return tr("本次通话没有读取到身份证。", "No ID card was read in this call.");
  if (err?.code === "call_not_active") return tr("通话已结束，不能再查看完整号码。", "The call has ended; the full number is no longer available.");
  return errorText(err);
}

function build() {
  const host = $("idcard");
  if (!host || host.dataset.built) return host;
  host.dataset.built = "true";
  host.append(
    el("h3", { id: "idcard-title", text: tr("身份证信息", "ID card") }),
    el("img", { id: "idcard-photo", class: "idcard-photo", alt: tr("身份证照片", "Photo on the ID card"), "data-testid": "idcard-photo" }),
    el("dl", { class: "idcard-facts" }, [
      el("div", {}, [el("dt", { text: tr("姓名", "Name") }), el("dd", { id: "idcard-name", "data-testid": "idcard-name" })]),
      el("div", {}, [el("dt", { text: tr("证件号码", "ID number") }),
        el("dd", { id: "idcard-number", class: "mono", "data-testid": "idcard-number", "data-revealed": "false" })]),
    ]),
    el("button", { type: "button", id: "idcard-reveal", class: "btn btn-secondary", "aria-describedby": "idcard-note",
      "aria-pressed": "false", text: tr("显示完整号码", "Show full number") }),
    el("p", { id: "idcard-note", class: "idcard-note", text: tr("查看完整号码会被记录。", "Showing the full number is logged.") }),
    el("p", { id: "idcard-status", class: "idcard-status", role: "status", "aria-live": "polite" }),
  );
  $("idcard-reveal").addEventListener("click", () => { void toggleReveal(); });
  return host;
}

function render() {
  const host = build();
  if (!host) return;
  const card = state.card;
  host.hidden = !card;
  if (!card) return;
  const photo = $("idcard-photo");
  if (photo.getAttribute("src") !== card.photo_url) photo.src = card.photo_url;
  $("idcard-name").textContent = card.name;
  const number = state.revealed && card.id_number ? card.id_number : card.id_number_masked;
  $("idcard-number").textContent = number;
  $("idcard-number").dataset.revealed = String(state.revealed);
  $("idcard-reveal").textContent = state.revealed ? tr("隐藏完整号码", "Hide full number") : tr("显示完整号码", "Show full number");
  $("idcard-reveal").setAttribute("aria-pressed", String(state.revealed));
}

/** @param {string} text @param {"info" | "error"} [tone] */
function say(text, tone = "info") {
  const box = $("idcard-status");
  if (!box) return;
  box.textContent = text;
  box.dataset.tone = tone;
}

async function toggleReveal() {
  const card = state.card;
  if (!card || !state.callId) return;
  if (state.revealed) {
    state.revealed = false;
    delete card.id_number; // forget it: the next look is a new, logged reveal
    render();
    return;
  }
  const callId = state.callId;
  $("idcard-reveal").disabled = true;
  try {
    const response = await fetch(`/api/seat/calls/${callId}/materials?reveal=id_number`, {
      headers: { accept: "application/json", "x-csrf-token": csrf() }, credentials: "same-origin", cache: "no-store" });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw Object.assign(new Error(data?.error?.message ?? response.statusText), { code: data?.error?.code ?? "internal" });
    if (state.callId !== callId || !state.card || data.id_card?.material_id !== state.card.material_id) return;
    state.card.id_number = data.id_card.id_number;
    state.revealed = true;
    say("");
    render();
  } catch (err) {
    say(problem(err), "error");
  } finally {
    $("idcard-reveal").disabled = false;
  }
}

// ------------------------------------------------------------------ what console-decision.js calls

/** A call started. @param {string} callId */
export function openIdCard(callId) {
  Object.assign(state, { callId, card: null, revealed: false });
  build();
  say("");
  render();
}

/** The call ended or moved on: the card, and any revealed number, leave the page. */
export function closeIdCard() {
  Object.assign(state, { callId: null, card: null, revealed: false });
  const host = $("idcard");
  if (host?.dataset.built) {
    $("idcard-photo").removeAttribute("src");
    $("idcard-name").textContent = "";
    $("idcard-number").textContent = "";
    host.hidden = true;
  }
}

/** The card the call's materials listing carries (null: none read yet). @param {string} callId @param {IdCardInfo | null} card */
export function showIdCard(callId, card) {
  if (callId !== state.callId) return;
  if (card && state.card && card.material_id === state.card.material_id) return; // already shown
  state.card = card ? { ...card } : null;
  state.revealed = false;
  render();
}

/** `idcard.read` for the current call; true when handled. @param {any} m */
export function idCardPush(m) {
  if (m.type !== "idcard.read" || !state.callId || m.call_id !== state.callId) return false;
  state.card = { name: m.name, id_number_masked: m.id_number_masked, material_id: m.material_id, photo_url: m.photo_url };
  state.revealed = false;
  say(tr("已读取居民身份证，请与画面中的人像比对。", "The resident's ID card was read; compare its photo with the live face."));
  render();
  return true;
}
