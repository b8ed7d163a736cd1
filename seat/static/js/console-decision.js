// @ts-check
/**
 * The clerk's document work in a live call: ask the booth for a capture (拍摄材料) or for the
 * resident's signature (请签名), look at the captured stills and signatures (zoom, rotate), tick
 * them against the item's checklist, and decide:
 * 受理 (accept), 不予受理 (refuse, with reason) or 补正 (one-time notice listing every missing
 * material). The document then prints at the booth; `print.result` says how that went.
 *
 * console.js calls `openDocuments` when a call starts, `closeDocuments` when it ends, and hands
 * `material.added` / `print.result` / `idcard.read` pushes to `documentsPush`. Everything lives in
 * #documents, except the ID card, which console-idcard.js shows beside the live face (#idcard).
 * Unsafe requests carry the session's CSRF token (the logout form holds it).
 */
import { CASE_STATUS, EN, errorText, label, tr } from "./console-text.js";
import { closeIdCard, idCardPush, openIdCard, showIdCard } from "./console-idcard.js";
import { el, requestJson } from "./dom.js";

/** @typedef {{code: string, name_zh: string, name_en: string, mandatory: boolean}} ChecklistEntry */
/** @typedef {{material_id: number, kind: string, width: number, height: number, sha256: string, checklist_code: string | null, url: string}} MaterialRow */

/** Material kinds other than a document still, as the gallery names them. @type {Record<string, [string, string]>} */
const KIND_NAMES = { signature: ["签名", "Signature"], id_photo: ["身份证照片", "ID card photo"] };

const docs = {
  /** @type {string | null} */ callId: null,
  /** @type {ChecklistEntry[]} */ checklist: [],
  /** @type {MaterialRow[]} */ materials: [],
  /** @type {number | null} */ selected: null,
  zoom: 1,
  rotate: 0,
  /** @type {any} */ decided: null,
  /** @type {any} */ printResult: null,
};
/** @type {any} */ (window).seatDocuments = docs;

const $ = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id));

/** @param {ChecklistEntry} m */
const nameOf = (m) => (EN ? m.name_en : m.name_zh);

/** @param {string} text @param {"info" | "error" | "ok"} [tone] */
function say(text, tone = "info") {
  const box = $("docs-status");
  box.textContent = text;
  box.dataset.tone = tone;
}

// ------------------------------------------------------------------ the panel

function build() {
  const host = $("documents");
  if (!host || host.dataset.built) return;
  host.dataset.built = "true";
  host.append(
    el("div", { class: "docs-head" }, [
      el("h3", { id: "documents-title", text: tr("材料采集与审核", "Documents") }),
      el("label", { for: "capture-code", class: "visually-hidden", text: tr("要拍摄的材料", "Document to capture") }),
      el("select", { id: "capture-code" }),
      el("button", { type: "button", id: "capture-button", class: "btn btn-primary", text: tr("拍摄材料", "Capture document") }),
      el("button", { type: "button", id: "signature-button", class: "btn btn-secondary", text: tr("请签名", "Ask for signature") }),
    ]),
    el("p", { id: "docs-status", class: "docs-status", role: "status", "aria-live": "polite" }),
    el("div", { class: "docs-body" }, [
      el("ul", { id: "gallery", class: "gallery", "aria-label": tr("已拍摄的材料", "Captured documents"), "data-testid": "gallery" }),
      el("figure", { id: "viewer", class: "viewer", hidden: "" }, [
        // Focusable: a zoomed document scrolls, and keyboard users must be able to scroll it.
        el("div", { class: "viewer-frame", tabindex: "0", role: "region", "aria-label": tr("材料原图", "Document at full size") },
          [el("img", { id: "viewer-img", alt: "" })]),
        el("figcaption", { id: "viewer-caption" }),
        el("div", { class: "viewer-tools", role: "group", "aria-label": tr("查看工具", "Viewing tools") }, [
          el("button", { type: "button", id: "zoom-in", class: "btn btn-secondary", text: tr("放大", "Zoom in") }),
          el("button", { type: "button", id: "zoom-out", class: "btn btn-secondary", text: tr("缩小", "Zoom out") }),
          el("button", { type: "button", id: "rotate", class: "btn btn-secondary", text: tr("旋转", "Rotate") }),
          el("label", { for: "tick-code", text: tr("对应材料", "Checklist entry") }),
          el("select", { id: "tick-code" }),
          el("button", { type: "button", id: "tick-button", class: "btn btn-ok", text: tr("核验通过", "Tick") }),
        ]),
      ]),
    ]),
    el("form", { id: "decision-form", class: "decision-form" }, [
      el("fieldset", { class: "choice" }, [
        el("legend", { text: tr("办理决定", "Decision") }),
        ...[["accept", "受理", "Accept"], ["supplement", "补正（一次性告知）", "Needs more documents"], ["refuse", "不予受理", "Refuse"]]
          .map(([value, zh, en]) => el("label", {}, [
            el("input", { type: "radio", name: "outcome", value, ...(value === "accept" ? { checked: "" } : {}) }), ` ${tr(zh, en)}`])),
      ]),
      el("fieldset", { id: "missing-row", class: "choice", hidden: "" }, [
        el("legend", { text: tr("缺少的材料（一次性全部告知）", "Missing documents (all of them, at once)") }),
        el("div", { id: "missing-list" }),
      ]),
      el("label", { for: "decision-reason", text: tr("理由或说明（不予受理时必填）", "Reason (required to refuse)") }),
      el("textarea", { id: "decision-reason", rows: "2", maxlength: "500" }),
      el("button", { type: "submit", id: "decision-submit", class: "btn btn-primary", text: tr("作出决定并打印", "Decide and print") }),
    ]),
    el("div", { id: "decision-result", class: "decision-result", hidden: "", "data-testid": "decision-result" }),
  );
  $("capture-button").addEventListener("click", requestCapture);
  $("signature-button").addEventListener("click", requestSignature);
  $("zoom-in").addEventListener("click", () => transform(docs.zoom * 1.25, docs.rotate));
  $("zoom-out").addEventListener("click", () => transform(Math.max(0.25, docs.zoom / 1.25), docs.rotate));
  $("rotate").addEventListener("click", () => transform(docs.zoom, (docs.rotate + 90) % 360));
  $("tick-button").addEventListener("click", tickSelected);
  for (const radio of host.querySelectorAll("input[name=outcome]")) radio.addEventListener("change", syncOutcome);
  $("decision-form").addEventListener("submit", (/** @type {SubmitEvent} */ event) => {
    event.preventDefault();
    decide();
  });
}

/** @param {number} zoom @param {number} rotate */
function transform(zoom, rotate) {
  docs.zoom = zoom;
  docs.rotate = rotate;
  $("viewer-img").style.transform = `rotate(${rotate}deg) scale(${zoom})`;
}

function outcome() {
  return /** @type {HTMLInputElement} */ (document.querySelector("#decision-form input[name=outcome]:checked")).value;
}

function syncOutcome() {
  $("missing-row").hidden = outcome() !== "supplement";
}

function renderChecklistChoices() {
  const options = docs.checklist.map((m) => el("option", { value: m.code, text: nameOf(m) }));
  $("capture-code").replaceChildren(el("option", { value: "", text: tr("（任意材料）", "(any document)") }), ...options.map((o) => o.cloneNode(true)));
  $("tick-code").replaceChildren(...options);
  const ticked = new Set(docs.materials.map((m) => m.checklist_code).filter(Boolean));
  $("missing-list").replaceChildren(...docs.checklist.map((m) => el("label", { class: "missing" }, [
    el("input", { type: "checkbox", name: "missing", value: m.code,
      ...(m.mandatory && !ticked.has(m.code) ? { checked: "" } : {}) }),
    ` ${nameOf(m)}${ticked.has(m.code) ? tr("（已核验）", " (ticked)") : ""}`,
  ])));
}

function renderGallery() {
  const byCode = new Map(docs.checklist.map((m) => [m.code, m]));
  $("gallery").replaceChildren(...docs.materials.map((m, i) => {
    const entry = m.checklist_code ? byCode.get(m.checklist_code) : null;
    const kind = KIND_NAMES[m.kind];
    const button = el("button", { type: "button", class: "thumb", "data-material-id": String(m.material_id),
      "data-kind": m.kind, "aria-pressed": String(docs.selected === m.material_id) }, [
      el("img", { src: m.url, alt: kind ? `${label(KIND_NAMES, m.kind)} ${i + 1}` : tr(`材料 ${i + 1}`, `Document ${i + 1}`), loading: "lazy" }),
      el("span", { class: "thumb-meta", text: kind ? `${label(KIND_NAMES, m.kind)} · ${m.width}×${m.height}` : `${m.width}×${m.height}` }),
      el("span", { class: entry ? "badge badge-ok" : "badge badge-optional",
        text: entry ? `✓ ${nameOf(entry)}` : tr("未核验", "Not ticked") }),
    ]);
    button.addEventListener("click", () => select(m.material_id));
    return el("li", {}, [button]);
  }));
  renderChecklistChoices();
}

/** @param {number} id */
function select(id) {
  const m = docs.materials.find((x) => x.material_id === id);
  if (!m) return;
  docs.selected = id;
  $("viewer").hidden = false;
  $("viewer-img").src = m.url;
  $("viewer-img").alt = tr("所选材料原图", "The selected document at full size");
  $("viewer-caption").textContent = `${m.width}×${m.height} · SHA-256 ${m.sha256.slice(0, 16)}…`;
  if (m.checklist_code) $("tick-code").value = m.checklist_code;
  transform(1, 0);
  renderGallery();
}

async function loadMaterials() {
  if (!docs.callId) return;
  const callId = docs.callId;
  const { materials, id_card: card } = await requestJson("GET", `/api/seat/calls/${callId}/materials`);
  if (docs.callId !== callId) return;
  docs.materials = materials;
  renderGallery();
  showIdCard(callId, card ?? null);
}

// ------------------------------------------------------------------ actions

async function requestCapture() {
  if (!docs.callId) return;
  const code = $("capture-code").value;
  $("capture-button").disabled = true;
  try {
    await requestJson("POST", `/api/seat/calls/${docs.callId}/capture`, code ? { material_code: code } : {});
    say(tr("已通知居民端拍摄，请等待上传……", "The booth is capturing; waiting for the upload…"));
  } catch (err) {
    say(errorText(err), "error");
  } finally {
    $("capture-button").disabled = false;
  }
}

async function requestSignature() {
  if (!docs.callId) return;
  $("signature-button").disabled = true;
  try {
    await requestJson("POST", `/api/seat/calls/${docs.callId}/capture`, { kind: "signature" });
    say(tr("已请居民在屏幕上签名，请等待……", "The resident is asked to sign on the screen; waiting…"));
  } catch (err) {
    say(errorText(err), "error");
  } finally {
    $("signature-button").disabled = false;
  }
}

async function tickSelected() {
  if (docs.selected == null) return;
  try {
    const row = await requestJson("POST", `/api/seat/materials/${docs.selected}/tick`, { checklist_code: $("tick-code").value });
    docs.materials = docs.materials.map((m) => (m.material_id === row.material_id ? { ...m, checklist_code: row.checklist_code } : m));
    renderGallery();
    say(tr("已核验。", "Ticked."), "ok");
  } catch (err) {
    say(errorText(err), "error");
  }
}

/** Mandatory checklist entries no material is ticked against. @returns {ChecklistEntry[]} */
function untickedMandatory() {
  const ticked = new Set(docs.materials.map((m) => m.checklist_code).filter(Boolean));
  return docs.checklist.filter((m) => m.mandatory && !ticked.has(m.code));
}

/**
 * 受理 with mandatory documents unticked needs the clerk's explicit confirmation (logged by the
 * server as `case.accepted_without_materials`). Resolves true to go on, false to go back.
 * @param {ChecklistEntry[]} unticked
 */
function confirmAcceptWithout(unticked) {
  const dialog = /** @type {HTMLDialogElement} */ ($("accept-confirm"));
  $("accept-confirm-list").replaceChildren(...unticked.map((m) => el("li", { text: nameOf(m) })));
  return new Promise((resolve) => {
    const done = (/** @type {boolean} */ yes) => {
      $("accept-confirm-yes").removeEventListener("click", onYes);
      $("accept-confirm-back").removeEventListener("click", onBack);
      dialog.removeEventListener("cancel", onBack);
      if (dialog.open) dialog.close();
      resolve(yes);
    };
    const onYes = () => done(true);
    const onBack = () => done(false);
    $("accept-confirm-yes").addEventListener("click", onYes);
    $("accept-confirm-back").addEventListener("click", onBack);
    dialog.addEventListener("cancel", onBack);
    dialog.showModal();
  });
}

async function decide() {
  if (!docs.callId) return;
  const chosen = outcome();
  /** @type {Record<string, any>} */
  const body = { outcome: chosen };
  if (chosen === "accept") {
    const unticked = untickedMandatory();
    if (unticked.length > 0) {
      if (!(await confirmAcceptWithout(unticked))) return;
      body.accept_without = unticked.map((m) => m.code);
    }
  }
  const reason = $("decision-reason").value.trim();
  if (reason) body.reason = reason;
  if (chosen === "supplement") {
    body.missing_materials = [...document.querySelectorAll("#missing-list input:checked")].map((i) => /** @type {HTMLInputElement} */ (i).value);
  }
  $("decision-submit").disabled = true;
  try {
    docs.decided = await requestJson("POST", `/api/seat/calls/${docs.callId}/decision`, body);
    renderResult();
    say(tr("决定已作出，文书正在居民端打印。", "Decided; the document is printing at the booth."), "ok");
  } catch (err) {
    $("decision-submit").disabled = false;
    say(errorText(err), "error");
  }
}

function renderResult() {
  const d = docs.decided;
  if (!d) return;
  const print = docs.printResult;
  const printText = !print ? tr("打印中…", "Printing…")
    : print.status === "printed" ? tr("已打印", "Printed")
      : print.status === "browser" ? tr("已交给晓屋浏览器打印（无法确认是否出纸，请向居民确认）", "Sent to the booth browser's printer (not confirmed: ask the resident)")
        : `${tr("打印失败", "Print failed")}：${print.error}`;
  $("decision-result").hidden = false;
  $("decision-result").replaceChildren(el("dl", {}, [
    el("div", {}, [el("dt", { text: tr("案件编号", "Case number") }), el("dd", { class: "mono", "data-testid": "case-number", text: d.case.number })]),
    el("div", {}, [el("dt", { text: tr("决定", "Decision") }), el("dd", { text: label(CASE_STATUS, d.case.status) })]),
    el("div", {}, [el("dt", { text: tr("办结期限", "Due by") }), el("dd", { text: d.case.deadline ?? "—" })]),
    el("div", {}, [el("dt", { text: tr("文书打印", "Document") }), el("dd", { "data-testid": "print-status",
      "data-status": print ? print.status : "sent", text: printText })]),
  ]));
}

// ------------------------------------------------------------------ what console.js calls

/** A call started: load its checklist and materials. @param {string} callId @param {string} itemCode */
export async function openDocuments(callId, itemCode) {
  build();
  if (!$("documents")) return;
  Object.assign(docs, { callId, checklist: [], materials: [], selected: null, decided: null, printResult: null });
  openIdCard(callId);
  $("viewer").hidden = true;
  $("decision-result").hidden = true;
  $("decision-submit").disabled = false;
  $("decision-reason").value = "";
  say("");
  try {
    const item = await requestJson("GET", `/api/seat/items/${encodeURIComponent(itemCode)}`);
    if (docs.callId !== callId) return;
    docs.checklist = item.materials;
    await loadMaterials();
  } catch (err) {
    say(errorText(err), "error");
  }
  syncOutcome();
}

/** The call ended or moved on. */
export function closeDocuments() {
  docs.callId = null;
  closeIdCard();
}

/** Pushes for the documents panel; true when handled. @param {any} m */
export function documentsPush(m) {
  if (!docs.callId || m.call_id !== docs.callId) return false;
  if (idCardPush(m)) {
    loadMaterials().catch((err) => say(errorText(err), "error")); // its photo joins the gallery
    return true;
  }
  if (m.type === "material.added") {
    say(m.kind === "signature" ? tr("收到居民签名。", "The resident's signature arrived.")
      : tr(`收到材料（${m.width}×${m.height}）。`, `Document received (${m.width}×${m.height}).`), "ok");
    loadMaterials().then(() => select(m.material_id)).catch((err) => say(errorText(err), "error"));
    return true;
  }
  if (m.type === "print.result") {
    docs.printResult = m;
    renderResult();
    return true;
  }
  return false;
}
