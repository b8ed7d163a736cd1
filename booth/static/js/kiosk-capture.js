// @ts-check
/**
 * The kiosk's document devices during a call: `capture.request` (take a full-resolution still of
 * the document camera and upload it) and `print.request` (print the decision document).
 *
 * The still comes from the document camera (高拍仪), never the face camera and never a frame of
 * the encoded call stream: the booth agent's camera when the agent has one (it takes the still
 * and uploads it with its own token), else a browser camera labelled as the document camera, else
 * the camera that is not the face camera. A booth with a single camera has no document camera:
 * the resident and the clerk are told so plainly, instead of a picture of the resident's face.
 * A browser still is taken at the track's own size (getSettings().width/height, after asking for
 * the largest the camera offers) and uploaded as multipart with the booth token, with progress.
 *
 * Printing: with `?agent=1` (or `?agent=<url>`) the page hands the job id to the booth agent on
 * loopback (booth/agent.py, KioskBridge), which fetches, prints and reports; otherwise the page
 * hands the PDF to the browser's print dialog (window.print of a hidden frame) and reports
 * `browser`: handed over, not known to have printed.
 */
import { tr } from "./i18n.js";

const DEFAULT_AGENT = "http://127.0.0.1:8765";
const params = new URLSearchParams(location.search);
const agentParam = params.get("agent");
/** @type {string | null} */
const AGENT_URL = agentParam ? (agentParam === "1" ? DEFAULT_AGENT : agentParam.replace(/\/$/, "")) : null;
/** Same words as kiosk-media.js: a camera whose label says it is the document camera. */
const DOC_LABEL = /高拍|文件|文档|doc|scan|visualizer/i;

/** What the page did last, for tests and support staff; read-only by convention. */
const capture = {
  /** @type {{material_id: number, width: number, height: number, sha256: string, size: number, source: string, uploaded_sha256?: string} | null} */ last: null,
  /** @type {"agent" | "browser" | "none" | null} where the last capture was asked from */ source: null,
  /** @type {string | null} the browser camera of the last browser capture */ deviceId: null,
  /** @type {{width: number, height: number} | null} */ settings: null,
  /** @type {{print_job_id: number, status: string, error?: string} | null} */ lastPrint: null,
  busy: false,
};
Object.defineProperty(window, "kioskCapture", { value: capture });

/** @param {string} tag @param {Record<string, string>} [attrs] @param {string} [text] */
function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

/** The dialog the resident sees while a document is captured or printed; built once. */
function panel() {
  let dialog = /** @type {HTMLDialogElement | null} */ (document.getElementById("device-dialog"));
  if (dialog) return dialog;
  dialog = /** @type {HTMLDialogElement} */ (el("dialog", { id: "device-dialog", class: "dialog device-dialog", "aria-labelledby": "device-title" }));
  const title = el("h2", { id: "device-title" });
  const status = el("p", { id: "device-status", role: "status", "aria-live": "polite" });
  const progress = el("progress", { id: "device-progress", max: "100", value: "0", "aria-labelledby": "device-title" });
  const img = el("img", { id: "device-preview", alt: tr("刚拍摄的材料", "The document just captured"), hidden: "" });
  img.style.maxWidth = "100%";
  img.style.maxHeight = "50vh";
  const close = el("button", { type: "button", id: "device-close", class: "primary" }, tr("好的", "OK"));
  close.addEventListener("click", () => dialog?.close());
  dialog.append(title, status, progress, img, close);
  document.body.append(dialog);
  return dialog;
}

/** Close the capture/print dialog (the call screen was left: it must not cover the rating). */
export function closeDevicePanel() {
  const dialog = /** @type {HTMLDialogElement | null} */ (document.getElementById("device-dialog"));
  if (dialog?.open) dialog.close();
}

/** @param {string} title @param {string} status @param {number | null} percent */
function showPanel(title, status, percent) {
  const dialog = panel();
  /** @type {HTMLElement} */ (dialog.querySelector("#device-title")).textContent = title;
  /** @type {HTMLElement} */ (dialog.querySelector("#device-status")).textContent = status;
  const bar = /** @type {HTMLProgressElement} */ (dialog.querySelector("#device-progress"));
  bar.hidden = percent === null;
  if (percent !== null) bar.value = percent;
  if (!dialog.open) dialog.showModal();
  return dialog;
}

/** The face camera kiosk-media.js opened for the call, to never take a document from it. */
function faceCameraId() {
  const face = /** @type {any} */ (window).kioskMedia?.cameras?.face;
  return face ? face.getSettings().deviceId : undefined;
}

/**
 * Where the document still comes from: the agent's camera, a browser document camera, or none.
 * @returns {Promise<{kind: "agent"} | {kind: "browser", deviceId: string} | {kind: "none"}>}
 */
async function documentSource() {
  if (AGENT_URL) {
    try {
      const response = await fetch(`${AGENT_URL}/status`);
      const { devices } = await response.json();
      if (devices?.doc_camera === "ok") return { kind: "agent" };
    } catch {
      // No agent answering: look for a camera in the browser.
    }
  }
  const cameras = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "videoinput" && d.deviceId);
  const named = cameras.find((d) => DOC_LABEL.test(d.label));
  if (named) return { kind: "browser", deviceId: named.deviceId };
  if (cameras.length < 2) return { kind: "none" }; // the only camera films the resident
  const face = faceCameraId();
  const other = cameras.find((d) => d.deviceId !== face) ?? cameras[cameras.length - 1];
  return { kind: "browser", deviceId: other.deviceId };
}

/** A still at the camera's full resolution, as a JPEG blob. @param {string} deviceId */
async function takeStill(deviceId) {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: false, video: {
    deviceId: { exact: deviceId },
    // Ask for more than any camera has: the track settles on the largest it offers.
    width: { ideal: 8192 }, height: { ideal: 8192 },
  } });
  const [track] = stream.getVideoTracks();
  try {
    const { width = 0, height = 0 } = track.getSettings();
    let source;
    if ("ImageCapture" in window) {
      // grabFrame gives the track's frame at its own size, untouched by any encoder.
      source = await new /** @type {any} */ (window).ImageCapture(track).grabFrame();
    } else {
      const video = el("video", { muted: "", playsinline: "" });
      const v = /** @type {HTMLVideoElement} */ (video);
      v.srcObject = stream;
      await v.play();
      source = v;
    }
    const canvas = document.createElement("canvas");
    canvas.width = width || source.width;
    canvas.height = height || source.height;
    canvas.getContext("2d")?.drawImage(source, 0, 0, canvas.width, canvas.height);
    capture.settings = { width: canvas.width, height: canvas.height };
    const blob = await new Promise((resolve, reject) => canvas.toBlob(
      (b) => (b ? resolve(b) : reject(new Error("encode failed"))), "image/jpeg", 0.92));
    return /** @type {Blob} */ (blob);
  } finally {
    track.stop();
  }
}

/** Multipart upload with a progress bar (fetch cannot report upload progress). */
function uploadStill(token, callId, blob, code, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    form.append("call_id", callId);
    if (code) form.append("material_code", code);
    form.append("file", blob, "document.jpg");
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/booth/materials");
    xhr.setRequestHeader("Authorization", `Bearer ${token}`);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (e) => { if (e.lengthComputable) onProgress((e.loaded / e.total) * 100); });
    xhr.addEventListener("load", () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status === 201) resolve(body);
      else reject(Object.assign(new Error("upload refused"), { code: body?.error?.code ?? String(xhr.status) }));
    });
    xhr.addEventListener("error", () => reject(Object.assign(new Error("network"), { code: "disconnected" })));
    xhr.send(form);
  });
}

/** @param {any} kiosk @param {any} m */
async function onCaptureRequest(kiosk, m) {
  if (capture.busy || !kiosk.api) return;
  capture.busy = true;
  document.body.dataset.capture = "capturing";
  const title = tr("正在拍摄材料", "Capturing your document");
  try {
    showPanel(title, tr("请保持材料平整，不要移动……", "Keep the document flat and still…"), 0);
    const source = await documentSource();
    capture.source = source.kind;
    capture.deviceId = source.kind === "browser" ? source.deviceId : null;
    if (source.kind === "none") {
      await noDocumentCamera(kiosk, m);
      return;
    }
    /** @type {string} */
    let preview;
    if (source.kind === "agent") {
      const stored = await captureByAgent(m);
      capture.last = { ...stored, source: "agent" };
      preview = stored.preview;
      delete capture.last.preview;
    } else {
      const blob = await takeStill(source.deviceId);
      showPanel(title, tr("正在上传给工作人员……", "Sending it to the clerk…"), 0);
      const stored = await uploadStill(kiosk.api.token, m.call_id, blob, m.material_code ?? null,
        (/** @type {number} */ pct) => showPanel(title, tr("正在上传给工作人员……", "Sending it to the clerk…"), pct));
      capture.last = { ...stored, source: "browser" };
      preview = URL.createObjectURL(blob);
    }
    const dialog = showPanel(tr("材料已拍摄", "Document captured"),
      tr("已发送给工作人员审核，请稍候。", "Sent to the clerk for review. Please wait."), 100);
    const img = /** @type {HTMLImageElement} */ (dialog.querySelector("#device-preview"));
    if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
    img.src = preview;
    img.hidden = false;
    document.body.dataset.capture = "uploaded";
  } catch (err) {
    showPanel(tr("拍摄未成功", "Capture failed"), tr("请按工作人员提示重新放置材料。", "Please place the document again as the clerk says."), null);
    document.body.dataset.capture = "failed";
    console.warn("capture failed", err);
  } finally {
    capture.busy = false;
  }
}

/** The agent takes the still with its camera and uploads it itself. @param {any} m */
async function captureByAgent(m) {
  const response = await fetch(`${AGENT_URL}/capture`, { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ call_id: m.call_id, ...(m.material_code ? { material_code: m.material_code } : {}) }) });
  const body = await response.json().catch(() => ({}));
  if (response.status !== 201) throw Object.assign(new Error("agent capture refused"), { code: body.error ?? String(response.status) });
  return body;
}

/**
 * A booth whose only camera films the resident: say so to the resident and to the clerk (a chat
 * line), and report the document camera missing, rather than send a picture of a face.
 * @param {any} kiosk @param {any} m
 */
async function noDocumentCamera(kiosk, m) {
  document.body.dataset.capture = "no_camera";
  const img = /** @type {HTMLImageElement} */ (panel().querySelector("#device-preview"));
  img.hidden = true;
  showPanel(tr("本晓屋没有高拍仪", "This booth has no document camera"),
    tr("无法拍摄材料。请把材料对准屏幕上方的摄像头给工作人员看，或按工作人员的指引办理。",
      "Documents cannot be captured here. Hold the document up to the camera for the clerk, or follow the clerk's advice."), null);
  if (!kiosk.client) return;
  await kiosk.client.request("chat.send", { call_id: m.call_id,
    text: tr("【系统】本晓屋未接入高拍仪，无法拍摄材料。", "[System] This booth has no document camera; documents cannot be captured.") }).catch(() => {});
  await kiosk.client.request("device.status", { devices: { doc_camera: "missing" } }).catch(() => {});
}

/** @param {any} kiosk @param {number} jobId @param {string} status @param {string} [error] */
async function reportPrint(kiosk, jobId, status, error) {
  await kiosk.api.call("POST", `/api/booth/print-jobs/${jobId}/result`, error ? { status, error } : { status });
}

/** @param {any} kiosk @param {any} m */
async function onPrintRequest(kiosk, m) {
  if (!kiosk.api) return;
  const title = tr("正在打印", "Printing");
  showPanel(title, tr("正在打印您的文书，请在出纸口取走。", "Printing your document. Please take it from the printer slot."), null);
  /** @type {{status: string, error?: string}} */
  let outcome;
  try {
    if (AGENT_URL) {
      // The agent fetches the job with its own token, prints and reports it to the server.
      const response = await fetch(`${AGENT_URL}/print`, { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ print_job_id: m.print_job_id }) });
      outcome = await response.json();
      if (outcome.devices && kiosk.client) {
        kiosk.client.request("device.status", { devices: outcome.devices }).catch(() => {});
      }
    } else {
      const response = await fetch(m.url, { headers: { Authorization: `Bearer ${kiosk.api.token}` } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const url = URL.createObjectURL(await response.blob());
      const frame = /** @type {HTMLIFrameElement} */ (el("iframe", { src: url, title: tr("打印文书", "Document to print"), hidden: "" }));
      document.body.append(frame);
      await new Promise((resolve) => frame.addEventListener("load", resolve, { once: true }));
      frame.contentWindow?.print();
      frame.remove();
      URL.revokeObjectURL(url);
      // Without a booth agent nothing tells whether paper came out: say only what is known.
      await reportPrint(kiosk, m.print_job_id, "browser");
      outcome = { status: "browser" };
    }
  } catch (err) {
    outcome = { status: "failed", error: String(/** @type {any} */ (err)?.message ?? err).slice(0, 200) };
    if (!AGENT_URL) await reportPrint(kiosk, m.print_job_id, "failed", outcome.error).catch(() => {});
    else await reportPrint(kiosk, m.print_job_id, "failed", `agent unreachable: ${outcome.error}`).catch(() => {});
  }
  capture.lastPrint = { print_job_id: m.print_job_id, ...outcome };
  document.body.dataset.print = outcome.status;
  const [title2, text] = outcome.status === "printed"
    ? [tr("打印完成", "Printed"), tr("请取走您的文书并妥善保管。", "Please take your document and keep it safe.")]
    : outcome.status === "browser"
      ? [tr("已发送到本机打印机", "Sent to this kiosk's printer"),
        tr("请在出纸口取走文书；如果没有出纸，请告诉工作人员。", "Please take your document from the printer; if nothing came out, tell the clerk.")]
      : [tr("打印未成功", "Printing failed"), tr("工作人员会为您重新打印或另行送达。", "The clerk will reprint it or send it to you.")];
  showPanel(title2, text, null);
}

/**
 * Handle the device pushes of a live call; true when the push was one of ours.
 * @param {any} kiosk the kiosk state (kiosk.js) @param {any} m a pushed message
 */
export function handleDevicePush(kiosk, m) {
  if (m.type === "capture.request") {
    onCaptureRequest(kiosk, m);
    return true;
  }
  if (m.type === "print.request") {
    onPrintRequest(kiosk, m);
    return true;
  }
  return false;
}
