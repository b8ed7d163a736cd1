// @ts-check
/**
 * The kiosk's video call: once a clerk answered, open the booth's face camera, microphone and
 * document camera (高拍仪), publish them to the call's media hub and show the clerk large in
 * #remote-video, the resident small in #self-video and the document camera small in #doc-video.
 *
 * kiosk.js calls `startKioskMedia` whenever the call is live (on `call.connected`, and again
 * after the call was resumed on a new socket: that sets up a NEW peer connection, since the
 * network that dropped the socket may have dropped the old one too) and `stopKioskMedia` on
 * leaving the call screen. Cameras are released at the end of every call: the next resident
 * finds them off.
 */
import { MediaSteps, joinCallMedia, stopTracks } from "/static/seat/js/media.js";
import { tr } from "./i18n.js";

/** @typedef {import("/static/seat/js/media.js").CallMedia} CallMedia */
/** @typedef {import("/static/seat/js/protocol.js").ProtocolClient} ProtocolClient */
/** @typedef {{face: MediaStreamTrack | null, document: MediaStreamTrack | null, audio: MediaStreamTrack | null, documentIsCamera: boolean, stopCard?: () => void}} Cameras */

/** The document camera's picture: full HD if it can, 1280x720 at least (text must be legible). */
const DOCUMENT_SIZE = { width: 1280, height: 720 };
/** A camera whose label says it is the document camera (高拍仪 / document / scanner). */
const DOCUMENT_LABEL = /高拍|文件|文档|doc|scan|visualizer/i;
const TEST_CARD_FPS = 10;

const state = {
  /** @type {string | null} */ callId: null,
  /** @type {CallMedia | null} */ media: null,
  /** @type {Cameras | null} */ cameras: null,
};
const steps = new MediaSteps("kiosk media");
// The browser tests (and a technician's console) read the live media here.
Object.defineProperty(window, "kioskMedia", {
  value: Object.freeze({
    get media() { return state.media; },
    get cameras() { return state.cameras; },
    get callId() { return state.callId; },
  }),
});

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
/** @param {string} id */
const $video = (id) => /** @type {HTMLVideoElement} */ (document.getElementById(id));

/**
 * Connect this booth's media for `callId`, or restart it when the socket was resumed since.
 * @param {ProtocolClient | null} client @param {string | null} callId
 */
export function startKioskMedia(client, callId) {
  if (!client || !callId) return steps.queue;
  return steps.run(() => start(client, callId));
}

/** Hang up the media and turn the cameras off (idempotent). */
export function stopKioskMedia() {
  return steps.cleanup(stop);
}

/** @param {ProtocolClient} client @param {string} callId */
async function start(client, callId) {
  if (state.callId === callId && state.media && !state.media.closed) {
    if (state.media.stale) await state.media.restart(); // the call was resumed on a new socket
    return;
  }
  await stop();
  state.callId = callId;
  document.body.dataset.media = "connecting";
  const cameras = await openCameras();
  if (state.callId !== callId) { // the call ended while the cameras were opening
    releaseCameras(cameras);
    return;
  }
  state.cameras = cameras;
  showLocal(cameras);
  state.media = await joinCallMedia(client, callId, {
    role: "booth",
    localTracks: { face: cameras.face, document: cameras.document, audio: cameras.audio },
    resume: "manual", // kiosk.js resumes the call first, then calls startKioskMedia again
    onRemoteTrack: () => showRemote(),
    onStateChange: (mediaState, media) => {
      if (media !== state.media && state.media !== null) return;
      document.body.dataset.media = mediaState;
      if (mediaState === "closed" && state.media === media) stopKioskMedia(); // e.g. the socket was closed for good
    },
  });
  showRemote();
}

async function stop() {
  const { media, cameras } = state;
  state.media = null;
  state.cameras = null;
  state.callId = null;
  media?.close();
  if (cameras) releaseCameras(cameras);
  for (const id of ["remote-video", "self-video", "doc-video"]) $video(id).srcObject = null;
  $("doc-video").hidden = true;
  $("video-placeholder").hidden = false;
  delete document.body.dataset.media;
}

/** @param {Cameras} cameras */
function releaseCameras(cameras) {
  cameras.stopCard?.();
  stopTracks([cameras.face, cameras.document, cameras.audio]);
}

// ------------------------------------------------------------------ the booth's devices

/**
 * The face camera with the microphone, and the document camera: a second camera when there is
 * one (by its label, else the one that is not the face camera), else a test card saying so.
 * @returns {Promise<Cameras>}
 */
export async function openCameras() {
  /** @type {MediaStream | null} */
  let main = null;
  try {
    main = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 1280 }, height: { ideal: 720 }, facingMode: "user" },
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
  } catch (err) {
    console.warn("kiosk media: no face camera or microphone", err);
  }
  let face = main?.getVideoTracks()[0] ?? null;
  const audio = main?.getAudioTracks()[0] ?? null;
  const cameras = await listCameras();
  const faceId = face?.getSettings().deviceId;
  const documentDevice = cameras.find((d) => DOCUMENT_LABEL.test(d.label)) ?? cameras.find((d) => d.deviceId !== faceId);
  if (documentDevice && face && documentDevice.deviceId === faceId) {
    // The default camera is the document camera: take the face from another one.
    const other = cameras.find((d) => d.deviceId !== faceId);
    face.stop();
    face = other ? await openCamera(other.deviceId, { width: 1280, height: 720 }) : null;
  }
  const documentCamera = documentDevice ? await openCamera(documentDevice.deviceId, { width: 1920, height: 1080 }) : null;
  if (documentCamera) {
    documentCamera.contentHint = "detail"; // keep the resolution over the frame rate: text must stay legible
    return { face, document: documentCamera, audio, documentIsCamera: true };
  }
  const card = documentTestCard(DOCUMENT_SIZE.width, DOCUMENT_SIZE.height);
  return { face, document: card.track, audio, documentIsCamera: false, stopCard: card.stop };
}

/** @returns {Promise<MediaDeviceInfo[]>} */
async function listCameras() {
  try {
    return (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "videoinput" && d.deviceId);
  } catch {
    return [];
  }
}

/** @param {string} deviceId @param {{width: number, height: number}} size @returns {Promise<MediaStreamTrack | null>} */
async function openCamera(deviceId, size) {
  try {
    const stream = await navigator.mediaDevices.getUserMedia({
      video: { deviceId: { exact: deviceId }, width: { ideal: size.width }, height: { ideal: size.height } },
    });
    return stream.getVideoTracks()[0] ?? null;
  } catch (err) {
    console.warn("kiosk media: camera would not open", err);
    return null;
  }
}

/**
 * A 1280x720 picture labelled as the document camera's, for a booth without a second camera
 * (and for Chromium's single fake camera in the tests): a page with a clock, redrawn ten times a
 * second so the stream keeps flowing.
 * @param {number} width @param {number} height
 * @returns {{track: MediaStreamTrack, stop: () => void}}
 */
export function documentTestCard(width, height) {
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
  const draw = () => {
    ctx.fillStyle = "#3b4a5c";
    ctx.fillRect(0, 0, width, height);
    const margin = Math.round(height * 0.08);
    const pageW = Math.round(height * 0.75);
    const left = Math.round((width - pageW) / 2);
    ctx.fillStyle = "#fbfaf5";
    ctx.fillRect(left, margin, pageW, height - 2 * margin);
    ctx.fillStyle = "#1d2733";
    ctx.font = `bold ${Math.round(height * 0.045)}px sans-serif`;
    ctx.textAlign = "center";
    ctx.fillText("材料高拍仪 · document", width / 2, margin + height * 0.09);
    ctx.fillStyle = "#9aa5b1";
    for (let i = 0; i < 9; i += 1) {
      const y = margin + height * (0.17 + i * 0.06);
      ctx.fillRect(left + pageW * 0.1, y, pageW * (i % 3 === 2 ? 0.55 : 0.8), height * 0.012);
    }
    ctx.fillStyle = "#b3261e";
    ctx.font = `${Math.round(height * 0.032)}px sans-serif`;
    ctx.fillText(tr("未接入高拍仪（测试画面）", "No document camera (test picture)"), width / 2, height - margin - height * 0.1);
    ctx.fillStyle = "#1d2733";
    ctx.font = `${Math.round(height * 0.03)}px monospace`;
    ctx.fillText(new Date().toISOString().slice(11, 22), width / 2, height - margin - height * 0.04);
  };
  draw();
  const stream = canvas.captureStream(TEST_CARD_FPS);
  const timer = window.setInterval(draw, 1000 / TEST_CARD_FPS);
  const track = stream.getVideoTracks()[0];
  track.contentHint = "detail";
  return { track, stop: () => { clearInterval(timer); track.stop(); } };
}

// ------------------------------------------------------------------ the call screen

/** @param {Cameras} cameras */
function showLocal(cameras) {
  const self = $video("self-video");
  self.srcObject = cameras.face ? new MediaStream([cameras.face]) : null;
  play(self);
  const doc = $video("doc-video");
  doc.srcObject = cameras.document ? new MediaStream([cameras.document]) : null;
  doc.hidden = !cameras.document;
  play(doc);
}

/** The clerk's camera and voice in the large video (its sound is the call's sound). */
function showRemote() {
  const media = state.media;
  const video = $video("remote-video");
  const camera = media?.remoteTrack("clerk", "camera") ?? null;
  const voice = media?.remoteTrack("clerk", "audio") ?? null;
  const current = video.srcObject instanceof MediaStream ? video.srcObject.getTracks() : [];
  const wanted = [camera, voice].filter((t) => t !== null);
  if (wanted.length === current.length && wanted.every((t) => current.includes(/** @type {MediaStreamTrack} */ (t)))) return;
  video.srcObject = wanted.length ? new MediaStream(/** @type {MediaStreamTrack[]} */ (wanted)) : null;
  if (!camera) $("video-placeholder").hidden = false;
  play(video);
}

/**
 * Play a video; where the browser refuses sound without a touch first, play it muted and turn
 * the sound on at the next touch (a kiosk normally runs with autoplay allowed).
 * @param {HTMLVideoElement} video
 */
function play(video) {
  if (!video.srcObject) return;
  video.play().catch((err) => {
    if (err?.name !== "NotAllowedError" || video.muted) return;
    video.muted = true;
    video.play().catch(() => {});
    document.addEventListener("pointerdown", () => { video.muted = false; }, { once: true });
  });
}

$video("remote-video").addEventListener("playing", () => {
  const video = $video("remote-video");
  if (video.srcObject instanceof MediaStream && video.srcObject.getVideoTracks().length) $("video-placeholder").hidden = true;
});
