// @ts-check
/**
 * Text for what the kiosk script writes itself. The page's own text comes translated from the
 * server (the `lang` cookie); the script follows the page's `<html lang>`.
 */

/** @returns {boolean} */
export function isEnglish() {
  return document.documentElement.lang.startsWith("en");
}

/** Pick the string for the page's language. @param {string} zh @param {string} en */
export function tr(zh, en) {
  return isEnglish() ? en : zh;
}

/** An item's or category's name in the page's language. @param {{name_zh: string, name_en: string}} thing */
export function nameOf(thing) {
  return isEnglish() ? thing.name_en : thing.name_zh;
}

const WEEKDAYS_ZH = ["周日", "周一", "周二", "周三", "周四", "周五", "周六"];
const WEEKDAYS_EN = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/**
 * The wall-clock parts of an ISO-8601 instant *as written* (the server writes the region's
 * offset), so the kiosk shows the booth's local time whatever the browser's zone.
 * @param {string} iso
 */
export function localParts(iso) {
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(iso);
  if (!match) throw new RangeError(`not an ISO instant: ${iso}`);
  const [, y, mo, d, h, mi] = match;
  const weekday = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d))).getUTCDay();
  return { year: Number(y), month: Number(mo), day: Number(d), hhmm: `${h}:${mi}`, weekday };
}

/** "3月4日 周二" / "Tue 4 Mar". @param {string} iso */
export function formatDay(iso) {
  const p = localParts(iso);
  if (isEnglish()) {
    const month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][p.month - 1];
    return `${WEEKDAYS_EN[p.weekday]} ${p.day} ${month}`;
  }
  return `${p.month}月${p.day}日 ${WEEKDAYS_ZH[p.weekday]}`;
}

/** "3月4日 周二 09:00". @param {string} iso */
export function formatWhen(iso) {
  return `${formatDay(iso)} ${localParts(iso).hhmm}`;
}

/** A wait in whole minutes, never "0 minutes". @param {number} seconds */
export function formatWait(seconds) {
  const minutes = Math.max(1, Math.round(seconds / 60));
  return tr(`预计等待约 ${minutes} 分钟`, `About ${minutes} min wait`);
}

/** The statutory time limit in working days (0 = 即办). @param {number} days */
export function formatLimit(days) {
  if (days === 0) return tr("即办（当场办结）", "Done on the spot");
  return tr(`${days} 个工作日`, `${days} working day${days === 1 ? "" : "s"}`);
}

/** The five levels of 好差评, best first. */
export const RATING_LEVELS = Object.freeze([
  { level: 5, zh: "非常满意", en: "Very satisfied" },
  { level: 4, zh: "满意", en: "Satisfied" },
  { level: 3, zh: "基本满意", en: "Fairly satisfied" },
  { level: 2, zh: "不满意", en: "Dissatisfied" },
  { level: 1, zh: "非常不满意", en: "Very dissatisfied" },
]);

/** Stable error codes of the server, in words a resident understands. @param {string} code */
export function errorText(code) {
  /** @type {Record<string, [string, string]>} */
  const known = {
    unknown_item: ["该事项暂不可办理，请选择其他事项。", "This service is not available. Please choose another."],
    closed: ["当前不在服务时间。", "We are closed right now."],
    bad_slot: ["该时间不可预约，请另选时间。", "That time cannot be booked. Please pick another."],
    call_in_progress: ["您已有一个呼叫正在进行。", "A call is already in progress."],
    disconnected: ["网络不稳定，请稍后再试。", "The network is unstable. Please try again."],
    timeout: ["网络不稳定，请稍后再试。", "The network is unstable. Please try again."],
    already_rated: ["本次服务已评价过。", "This service was already rated."],
    appointment_not_found: ["没有找到这个预约号，请核对后重新输入。", "No appointment with that number here. Please check it and try again."],
    appointment_used: ["这个预约已经使用或取消。", "This appointment was already used or cancelled."],
    appointment_not_due: ["还没到预约时间，请在预约开始前 10 分钟内签到。", "It is not your time yet. Check in from 10 minutes before your slot."],
    invalid_appointment_number: ["请输入数字预约号。", "Please enter the appointment number (digits)."],
  };
  const pair = known[code] ?? ["操作未成功，请再试一次或联系工作人员。", "That did not work. Please try again or ask for help."];
  return tr(pair[0], pair[1]);
}
