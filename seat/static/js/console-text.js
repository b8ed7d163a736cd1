// @ts-check
/**
 * The clerk console's words and formatting: every string in Simplified Chinese and English, the
 * stable error codes of docs/protocol.md and of the seat API translated, durations and times.
 */

export const EN = document.documentElement.lang === "en";

/** @param {string} zh @param {string} en */
export const tr = (zh, en) => (EN ? en : zh);

/** @param {Record<string, [string, string]>} table @param {string | null | undefined} key @param {string} [fallback] */
export function label(table, key, fallback) {
  const pair = key ? table[key] : undefined;
  return pair ? tr(pair[0], pair[1]) : (fallback ?? key ?? "");
}

/** @type {Record<string, [string, string]>} */
export const STATUS = {
  offline: ["离线", "Offline"],
  available: ["空闲", "Available"],
  not_ready: ["暂停", "Not ready"],
  ringing: ["来电中", "Ringing"],
  in_call: ["通话中", "In call"],
  wrap_up: ["话后整理", "Wrap-up"],
};

/** @type {Record<string, [string, string]>} */
export const REASON = {
  break: ["小休", "Break"],
  training: ["培训", "Training"],
  meeting: ["会议", "Meeting"],
  other: ["其他", "Other"],
  signed_in: ["刚登录", "Just signed in"],
  missed_offer: ["未接来电", "Missed a call"],
};

/** @type {Record<string, [string, string]>} */
export const END_REASON = {
  hangup_clerk: ["工作人员结束", "Ended by you"],
  hangup_booth: ["居民挂断", "Resident hung up"],
  booth_lost: ["居民端断线", "Booth connection lost"],
  clerk_lost: ["工作人员端断线", "Your connection was lost"],
  transferred: ["已转接", "Transferred"],
};

/** @type {Record<string, [string, string]>} */
export const REVOKED = {
  timeout: ["来电超时未接，已转给其他工作人员；您已切换为暂停。", "The call was not answered in time and went to another clerk; you are now not ready."],
  booth_disconnected: ["居民端断线，来电已撤回。", "The booth disconnected; the call was withdrawn."],
  cancelled: ["居民已取消来电。", "The resident cancelled the call."],
  booth_lost: ["居民端断线，来电已撤回。", "The booth was lost; the call was withdrawn."],
};

/** @type {Record<string, [string, string]>} */
export const CASE_STATUS = {
  accepted: ["受理", "Accepted"],
  refused: ["不予受理", "Refused"],
  needs_supplement: ["补正", "Needs supplement"],
  completed: ["办结", "Completed"],
};

/** Stable error codes (server and client) -> what the clerk reads. @type {Record<string, [string, string]>} */
export const ERRORS = {
  offer_gone: ["来电已撤回或已超时。", "The call was withdrawn or has expired."],
  decline_used: ["本次来电您已拒接过一次，不能再次拒接。", "You already declined this call once."],
  busy: ["来电或通话中不能切换状态。", "You cannot change state while ringing or in a call."],
  call_not_found: ["通话已不存在或已结束。", "The call no longer exists or has ended."],
  not_active: ["通话已结束。", "The call has already ended."],
  unknown_skill: ["没有工作人员具备该业务，无法转接。", "No clerk holds that skill."],
  unknown_clerk: ["没有这位工作人员。", "No such clerk."],
  clerk_lacks_skill: ["该工作人员不能办理本事项。", "That clerk does not hold this item's skill."],
  bad_transfer: ["不能转接给自己。", "You cannot transfer to yourself."],
  not_in_wrap_up: ["当前不在话后整理状态。", "You are not in wrap-up."],
  unknown_item: ["事项不存在或已停用。", "The service item does not exist or is inactive."],
  invalid: ["输入不符合要求。", "The input is not valid."],
  internal: ["服务器处理失败，请重试。", "The server failed; please try again."],
  timeout: ["服务器未及时响应，请重试。", "The server did not answer in time; please try again."],
  disconnected: ["连接已中断，请稍候重试。", "The connection is down; please try again shortly."],
  connect_failed: ["无法连接服务器。", "Cannot connect to the server."],
  closed: ["连接已关闭。", "The connection is closed."],
  note_required: ["请填写转接备注。", "Please write a transfer note."],
  reason_required: ["请填写拒接原因。", "Please give a reason for declining."],
  materials_unticked: ["必要材料的核验情况已变化，请重新确认后再受理。", "The ticked documents changed; confirm again before accepting."],
};

/** @param {unknown} err */
export function errorText(err) {
  const code = err && typeof err === "object" && "code" in err ? String(err.code) : "internal";
  return label(ERRORS, code, tr(`操作失败（${code}）`, `Failed (${code})`));
}

/** Seconds as m:ss, or h:mm:ss from an hour on. @param {number | null | undefined} seconds */
export function clock(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return "—";
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (/** @type {number} */ n) => String(n).padStart(2, "0");
  return h ? `${h}:${pad(m)}:${pad(s % 60)}` : `${pad(m)}:${pad(s % 60)}`;
}

/** A wait or call length for a table cell: "45 秒", "3 分 05 秒". @param {number | null | undefined} seconds */
export function duration(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return "—";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return tr(`${s} 秒`, `${s} s`);
  const m = Math.floor(s / 60);
  return tr(`${m} 分 ${String(s % 60).padStart(2, "0")} 秒`, `${m} min ${String(s % 60).padStart(2, "0")} s`);
}

/** An ISO time as local "MM-DD HH:mm". @param {string | null | undefined} iso */
export function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  const pad = (/** @type {number} */ n) => String(n).padStart(2, "0");
  return `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** The item's name in the page's language. @param {{name_zh?: string, name_en?: string, code?: string}} item */
export const itemName = (item) => (EN ? item.name_en || item.name_zh : item.name_zh || item.name_en) || item.code || "";
