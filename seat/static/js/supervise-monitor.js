// @ts-check
/**
 * The silent monitor (静默监听): a supervisor watches and hears a live call through the hub.
 *
 * `monitor.join` first (logged as `monitor.joined`; refused outside the supervisor's regions), then
 * a receive-only peer connection (media.js, role "monitor": 3 video and 2 audio slots, nothing
 * published), so neither the booth nor the clerk is told or sent anything. The booth's face
 * carries the booth's voice, the clerk's camera the clerk's voice; the document camera is silent.
 * Leaving sends `monitor.leave` (logged as `monitor.left`) and drops the peer. After the socket
 * reconnects the hub has already ended the monitor, so the wall calls `rejoinMonitor`.
 */
import { MediaSteps, joinCallMedia } from "./media.js";
import { tr } from "./console-text.js";

/** @typedef {import("./media.js").CallMedia} CallMedia */
/** @typedef {import("./media.js").MediaState} MediaState */
/** @typedef {import("./protocol.js").ProtocolClient} ProtocolClient */
/** @typedef {{call_id: string, booth_name: string, clerk_name: string, item_name_zh: string, item_name_en: string, item_code: string}} Call */

const state = {
  /** @type {string | null} */ callId: null,
  /** @type {CallMedia | null} */ media: null,
  /** @type {(() => void) | null} */ onClosed: null,
  /** @type {ProtocolClient | null} */ client: null,
  muted: false,
};
const steps = new MediaSteps("monitor");
// The browser tests read the monitor's media here (framesDecoded), as they do the console's.
Object.defineProperty(window, "wallMonitor", {
  value: Object.freeze({
    get media() { return state.media; },
    get callId() { return state.callId; },
  }),
});

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
/** @param {string} id */
const $video = (id) => /** @type {HTMLVideoElement} */ (document.getElementById(id));
const dialog = () => /** @type {HTMLDialogElement} */ ($("monitor"));

/** The call being monitored, if any. */
export const monitoredCall = () => state.callId;

/**
 * Start monitoring `call`: open the dialog, join, connect the receive-only peer.
 * Rejects with the protocol's error (`call_not_found`, `media_unavailable` ...) and closes the dialog then.
 * @param {ProtocolClient} client @param {Call} call @param {{regionName?: string, onClosed?: () => void}} [options]
 */
export function openMonitor(client, call, { regionName = "", onClosed } = {}) {
  if (state.callId) return Promise.resolve();
  state.callId = call.call_id;
  state.onClosed = onClosed ?? null;
  state.client = client;
  const item = document.documentElement.lang === "en" ? call.item_name_en || call.item_name_zh : call.item_name_zh || call.item_name_en;
  $("monitor-sub").textContent = [call.booth_name, regionName, item || call.item_code, call.clerk_name].filter(Boolean).join(" · ");
  setState("connecting");
  dialog().showModal();
  document.body.dataset.monitoring = call.call_id;
  let failure = /** @type {unknown} */ (null);
  return steps.run(async () => {
    try {
      await join(client, call.call_id);
    } catch (err) {
      failure = err;
      await stop(client);
    }
  }).then(() => { if (failure) throw failure; });
}

/** After a reconnect: join again on the new socket and set up a new peer. @param {ProtocolClient} client */
export function rejoinMonitor(client) {
  const callId = state.callId;
  if (!callId) return Promise.resolve();
  return steps.run(async () => {
    if (state.callId !== callId) return;
    await client.request("monitor.join", { call_id: callId });
    setState("reconnecting");
    if (state.media && !state.media.closed) await state.media.restart();
    else await join(client, callId, false);
  });
}

/**
 * Stop monitoring (idempotent). `told`: why, when the wall ended it (the call ended).
 * @param {ProtocolClient | null} client @param {{told?: string}} [options]
 */
export function closeMonitor(client, { told } = {}) {
  if (told && state.callId) $("monitor-state").textContent = told;
  return steps.cleanup(() => stop(client));
}

/** @param {ProtocolClient} client @param {string} callId @param {boolean} [sendJoin] */
async function join(client, callId, sendJoin = true) {
  if (sendJoin) await client.request("monitor.join", { call_id: callId });
  if (state.callId !== callId) return;
  state.media = await joinCallMedia(client, callId, {
    role: "monitor",
    resume: "manual", // the wall rejoins after a reconnect (the hub ended the monitor with the socket)
    onRemoteTrack: () => show(),
    onStateChange: (mediaState, media) => {
      if (state.media === null || media === state.media) setState(mediaState);
    },
  });
  show();
}

/** @param {ProtocolClient | null} client */
async function stop(client) {
  const { callId, media, onClosed } = state;
  if (!callId) return;
  state.callId = null;
  state.media = null;
  state.onClosed = null;
  media?.close();
  if (client) {
    try {
      await client.request("monitor.leave", { call_id: callId });
    } catch {
      // not_monitoring: the call ended or the socket dropped, which ended the monitor already
    }
  }
  show();
  delete document.body.dataset.monitoring;
  delete document.body.dataset.monitorMedia;
  if (dialog().open) dialog().close();
  onClosed?.();
}

/** Each pane shows its track; the booth's voice plays with its face, the clerk's with the clerk. */
function show() {
  const media = state.media;
  attach($video("mon-face"), [media?.remoteTrack("booth", "face"), media?.remoteTrack("booth", "audio")]);
  attach($video("mon-doc"), [media?.remoteTrack("booth", "document")]);
  attach($video("mon-clerk"), [media?.remoteTrack("clerk", "camera"), media?.remoteTrack("clerk", "audio")]);
}

/** @param {HTMLVideoElement} video @param {(MediaStreamTrack | null | undefined)[]} tracks */
function attach(video, tracks) {
  const wanted = /** @type {MediaStreamTrack[]} */ (tracks.filter((t) => t));
  const current = video.srcObject instanceof MediaStream ? video.srcObject.getTracks() : [];
  video.closest(".pane")?.classList.toggle("has-video", wanted.some((t) => t.kind === "video"));
  if (wanted.length === current.length && wanted.every((t) => current.includes(t))) return;
  video.srcObject = wanted.length ? new MediaStream(wanted) : null;
  if (video.id !== "mon-doc") video.muted = state.muted;
  if (video.srcObject) {
    video.play().catch((err) => {
      // Sound needs a gesture; the Monitor click was one, but a reconnect is not: play muted then.
      if (err?.name === "NotAllowedError" && !video.muted) {
        video.muted = true;
        video.play().catch(() => {});
      }
    });
  }
}

/** @param {MediaState} mediaState */
function setState(mediaState) {
  document.body.dataset.monitorMedia = mediaState;
  const text = {
    connecting: tr("连接中…", "Connecting…"),
    connected: tr("监听中", "Monitoring"),
    reconnecting: tr("重新连接中…", "Reconnecting…"),
    failed: tr("媒体连接失败，正在重试…", "Media connection failed; retrying…"),
    closed: tr("已结束", "Ended"),
  }[mediaState];
  $("monitor-state").textContent = text;
  $("monitor").dataset.state = mediaState;
}

$("monitor-mute").addEventListener("click", () => {
  state.muted = !state.muted;
  for (const id of ["mon-face", "mon-clerk"]) $video(id).muted = state.muted;
  $("monitor-mute").setAttribute("aria-pressed", String(state.muted));
  $("monitor-mute").textContent = state.muted ? tr("取消静音", "Unmute") : tr("静音", "Mute");
});
$("monitor-leave").addEventListener("click", () => closeMonitor(state.client));
// Escape closes a modal dialog: treat it as leaving, so the hub drops the peer too.
$("monitor").addEventListener("cancel", (event) => {
  event.preventDefault();
  closeMonitor(state.client);
});
