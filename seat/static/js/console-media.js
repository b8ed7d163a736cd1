// @ts-check
/**
 * The clerk console's video: once the clerk accepted, open the clerk's camera and microphone,
 * publish them to the call's media hub and show the booth's face camera in #face-video and its
 * document camera (高拍仪) in #doc-video side by side, the clerk small in #self-video.
 *
 * The document view zooms (CSS transform): buttons under it, the + - 0 keys and the arrow keys
 * (to move around a zoomed page) while it has the focus, Ctrl+wheel, and dragging.
 *
 * console.js calls `startConsoleMedia` when a call starts on this page (accept, or a reload in a
 * call) and `stopConsoleMedia` when it ends. A socket that reconnects in the call gets a new peer
 * connection by itself (media.js, `resume: "auto"`).
 */
import { MediaSteps, joinCallMedia, stopTracks } from "./media.js";
import { tr } from "./console-text.js";

/** @typedef {import("./media.js").CallMedia} CallMedia */
/** @typedef {import("./protocol.js").ProtocolClient} ProtocolClient */

export const ZOOM_STEPS = Object.freeze([1, 1.5, 2, 3, 4]);
const PAN_STEP = 0.1; // of the picture, per arrow key

const state = {
  /** @type {string | null} */ callId: null,
  /** @type {CallMedia | null} */ media: null,
  /** @type {MediaStream | null} */ local: null,
  zoom: { level: 0, x: 0, y: 0 },
};
const steps = new MediaSteps("console media");
// The browser tests (and support staff at the console) read the live media here.
Object.defineProperty(window, "consoleMedia", {
  value: Object.freeze({
    get media() { return state.media; },
    get callId() { return state.callId; },
    get zoom() { return ZOOM_STEPS[state.zoom.level]; },
  }),
});

/** @param {string} id */
const $video = (id) => /** @type {HTMLVideoElement} */ (document.getElementById(id));

/**
 * Connect the clerk's media for `callId` (idempotent for the call already connected).
 * @param {ProtocolClient | null} client @param {string} callId
 */
export function startConsoleMedia(client, callId) {
  if (!client) return steps.queue;
  return steps.run(() => start(client, callId));
}

/** Hang up the media and turn the camera off (idempotent). */
export function stopConsoleMedia() {
  return steps.cleanup(stop);
}

/** @param {ProtocolClient} client @param {string} callId */
async function start(client, callId) {
  if (state.callId === callId && state.media && !state.media.closed) return;
  await stop();
  state.callId = callId;
  document.body.dataset.media = "connecting";
  /** @type {MediaStream | null} */
  let local = null;
  try {
    local = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 1280 }, height: { ideal: 720 } },
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
  } catch (err) {
    console.warn("console media: no camera or microphone; receiving only", err);
  }
  if (state.callId !== callId) { // the call ended while the camera was opening
    stopTracks(local?.getTracks() ?? []);
    return;
  }
  state.local = local;
  const self = $video("self-video");
  self.srcObject = local && local.getVideoTracks().length ? new MediaStream(local.getVideoTracks()) : null;
  play(self);
  state.media = await joinCallMedia(client, callId, {
    role: "clerk",
    localTracks: { camera: local?.getVideoTracks()[0] ?? null, audio: local?.getAudioTracks()[0] ?? null },
    onRemoteTrack: () => showRemote(),
    onStateChange: (mediaState, media) => {
      if (state.media !== null && media !== state.media) return;
      document.body.dataset.media = mediaState;
      if (mediaState === "closed" && state.media === media) stopConsoleMedia(); // the call ended while away
    },
  });
  showRemote();
}

async function stop() {
  const { media, local } = state;
  state.media = null;
  state.local = null;
  state.callId = null;
  media?.close();
  stopTracks(local?.getTracks() ?? []);
  for (const id of ["face-video", "doc-video", "self-video"]) $video(id).srcObject = null;
  showRemote();
  setZoom(0, 0, 0);
  delete document.body.dataset.media;
}

/** The booth's face with its voice, and its document camera, each in its pane. */
function showRemote() {
  const media = state.media;
  attach($video("face-video"), [media?.remoteTrack("booth", "face"), media?.remoteTrack("booth", "audio")]);
  attach($video("doc-video"), [media?.remoteTrack("booth", "document")]);
}

/** @param {HTMLVideoElement} video @param {(MediaStreamTrack | null | undefined)[]} tracks */
function attach(video, tracks) {
  const wanted = /** @type {MediaStreamTrack[]} */ (tracks.filter((t) => t));
  const current = video.srcObject instanceof MediaStream ? video.srcObject.getTracks() : [];
  const pane = video.closest(".pane");
  pane?.classList.toggle("has-video", wanted.some((t) => t.kind === "video"));
  if (wanted.length === current.length && wanted.every((t) => current.includes(t))) return;
  video.srcObject = wanted.length ? new MediaStream(wanted) : null;
  play(video);
}

/**
 * Play a video; where the browser refuses sound without a gesture, play it muted and turn the
 * sound on at the clerk's next click or key.
 * @param {HTMLVideoElement} video
 */
function play(video) {
  if (!video.srcObject) return;
  video.play().catch((err) => {
    if (err?.name !== "NotAllowedError" || video.muted) return;
    video.muted = true;
    video.play().catch(() => {});
    const unmute = () => { video.muted = false; };
    document.addEventListener("pointerdown", unmute, { once: true });
    document.addEventListener("keydown", unmute, { once: true });
  });
}

// ------------------------------------------------------------------ the document view's zoom

/** @param {number} level index into ZOOM_STEPS @param {number} x @param {number} y pan, in fractions of the picture */
function setZoom(level, x, y) {
  const z = ZOOM_STEPS[Math.max(0, Math.min(ZOOM_STEPS.length - 1, level))];
  const limit = (1 - 1 / z) / 2; // keep the picture's edge inside the pane
  state.zoom = {
    level: ZOOM_STEPS.indexOf(z),
    x: Math.max(-limit, Math.min(limit, x)),
    y: Math.max(-limit, Math.min(limit, y)),
  };
  const video = $video("doc-video");
  video.style.transform = z === 1 ? "" : `scale(${z}) translate(${state.zoom.x * 100}%, ${state.zoom.y * 100}%)`;
  video.closest(".pane")?.classList.toggle("zoomed", z > 1);
  const out = document.getElementById("doc-zoom-level");
  if (out) out.textContent = `${Math.round(z * 100)}%`;
  const zoomIn = /** @type {HTMLButtonElement | null} */ (document.getElementById("doc-zoom-in"));
  const zoomOut = /** @type {HTMLButtonElement | null} */ (document.getElementById("doc-zoom-out"));
  const reset = /** @type {HTMLButtonElement | null} */ (document.getElementById("doc-zoom-reset"));
  if (zoomIn) zoomIn.disabled = state.zoom.level === ZOOM_STEPS.length - 1;
  if (zoomOut) zoomOut.disabled = state.zoom.level === 0;
  if (reset) reset.disabled = state.zoom.level === 0;
}

/** @param {number} step */
const zoomBy = (step) => setZoom(state.zoom.level + step, state.zoom.x, state.zoom.y);
/** @param {number} dx @param {number} dy */
const panBy = (dx, dy) => setZoom(state.zoom.level, state.zoom.x + dx, state.zoom.y + dy);

/** Buttons under the document view and its keyboard, wheel and drag handling. */
function installDocumentZoom() {
  const video = $video("doc-video");
  const pane = video.closest(".pane");
  if (!pane || document.getElementById("doc-zoom")) return;
  const hint = document.createElement("p");
  hint.id = "doc-zoom-hint";
  hint.className = "visually-hidden";
  hint.textContent = tr("按 + 或 - 缩放，0 复位，方向键移动画面。", "Press + or - to zoom, 0 to reset, arrow keys to move around.");
  const tools = document.createElement("div");
  tools.id = "doc-zoom";
  tools.className = "zoom-tools";
  tools.setAttribute("role", "group");
  tools.setAttribute("aria-label", tr("材料画面缩放", "Document zoom"));
  /** @param {string} id @param {string} text @param {string} label @param {() => void} action */
  const button = (id, text, label, action) => {
    const b = document.createElement("button");
    b.type = "button";
    b.id = id;
    b.className = "btn btn-secondary zoom-btn";
    b.textContent = text;
    b.setAttribute("aria-label", label);
    b.addEventListener("click", action);
    return b;
  };
  const level = document.createElement("output");
  level.id = "doc-zoom-level";
  level.className = "zoom-level";
  level.setAttribute("aria-live", "polite");
  level.setAttribute("aria-label", tr("缩放比例", "Zoom level"));
  tools.append(
    button("doc-zoom-out", "−", tr("缩小材料画面", "Zoom out of the document"), () => zoomBy(-1)),
    level,
    button("doc-zoom-in", "+", tr("放大材料画面", "Zoom into the document"), () => zoomBy(1)),
    button("doc-zoom-reset", tr("复位", "Reset"), tr("材料画面复位", "Reset the document zoom"), () => setZoom(0, 0, 0)),
  );
  pane.append(tools, hint);
  video.tabIndex = 0;
  video.setAttribute("aria-describedby", hint.id);
  video.addEventListener("keydown", (event) => {
    const keys = {
      "+": () => zoomBy(1), "=": () => zoomBy(1), "-": () => zoomBy(-1), "_": () => zoomBy(-1), "0": () => setZoom(0, 0, 0),
      // Arrow keys move the view: the picture goes the other way.
      ArrowLeft: () => panBy(PAN_STEP, 0), ArrowRight: () => panBy(-PAN_STEP, 0),
      ArrowUp: () => panBy(0, PAN_STEP), ArrowDown: () => panBy(0, -PAN_STEP),
    };
    const action = keys[/** @type {keyof keys} */ (event.key)];
    if (!action || event.altKey || event.metaKey || event.ctrlKey) return;
    event.preventDefault();
    action();
  });
  video.addEventListener("wheel", (event) => {
    if (!event.ctrlKey) return; // a plain wheel scrolls the page
    event.preventDefault();
    zoomBy(event.deltaY < 0 ? 1 : -1);
  }, { passive: false });
  let drag = /** @type {{x: number, y: number, px: number, py: number} | null} */ (null);
  video.addEventListener("pointerdown", (event) => {
    if (state.zoom.level === 0) return;
    drag = { x: state.zoom.x, y: state.zoom.y, px: event.clientX, py: event.clientY };
    video.setPointerCapture(event.pointerId);
  });
  video.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const box = pane.getBoundingClientRect();
    const z = ZOOM_STEPS[state.zoom.level];
    setZoom(state.zoom.level, drag.x + (event.clientX - drag.px) / box.width / z, drag.y + (event.clientY - drag.py) / box.height / z);
  });
  const endDrag = () => { drag = null; };
  video.addEventListener("pointerup", endDrag);
  video.addEventListener("pointercancel", endDrag);
  setZoom(0, 0, 0);
}

installDocumentZoom();
