// @ts-check
/**
 * The booth kiosk: catalogue -> item (一次性告知) -> call -> waiting -> video call -> 好差评,
 * or an appointment (预约) when nobody can serve; 办不成事 on every screen.
 *
 * The booth token arrives once in the URL fragment (#token=...), is kept in localStorage and
 * authenticates the booth API (Bearer header) and the socket (subprotocol entry). The fragment
 * never reaches the server, so the token does not land in access logs.
 *
 * Everything about the resident lives in `resident` and in the form fields; `resetToStart`
 * forgets all of it, so the next resident finds nothing of the last one.
 */
import { CLOSE, ProtocolClient, ProtocolError } from "/static/seat/js/protocol.js";
import { ApiError, BoothApi } from "./api.js";
import { faceSvg, iconSvg } from "./icons.js";
import { RATING_LEVELS, errorText, formatDay, formatLimit, formatWait, formatWhen, isEnglish, localParts, nameOf, tr } from "./i18n.js";
import { search } from "./search.js";
import { closeDevicePanel, handleDevicePush } from "./kiosk-capture.js";
import { handleSignaturePush } from "./kiosk-signature.js";
import { watchIdCard } from "./kiosk-idcard.js";
import { startKioskMedia, stopKioskMedia } from "./kiosk-media.js";

/**
 * @typedef {{code: string, name_zh: string, name_en: string, mandatory: boolean, note_zh?: string|null, note_en?: string|null}} MaterialInfo
 * @typedef {{code: string, name_zh: string, name_en: string, category: string, initials: string, time_limit_days: number, cross_region: boolean, materials: MaterialInfo[]}} Item
 * @typedef {{code: string, name_zh: string, name_en: string, icon: string, count: number}} Category
 * @typedef {{open: boolean, next_opening: string | null, clerks_online?: number}} Service
 * @typedef {"loading"|"start"|"category"|"item"|"checkin"|"waiting"|"closed"|"call"|"rating"|"thanks"} Screen
 * @typedef {{appointment_id: number, item_code: string, item: {name_zh: string, name_en: string}, slot_start: string, slot_end: string, status: string, due: boolean}} AppointmentInfo
 */

const TOKEN_KEY = "cloudseat.boothToken";
const params = new URLSearchParams(location.search);
/** Seconds on the thank-you screen, and of inactivity before a browsing screen starts over. */
const THANKS_S = clamp(Number(params.get("thanks_s") ?? 8), 1, 60);
const IDLE_S = clamp(Number(params.get("idle_s") ?? 120), 10, 1800);
/** Screens a resident may leave with the footer's Back/Start buttons. */
const BROWSING = new Set(["category", "item", "checkin", "closed", "rating"]);

/** @param {number} n @param {number} lo @param {number} hi */
function clamp(n, lo, hi) {
  return Number.isFinite(n) ? Math.min(hi, Math.max(lo, n)) : lo;
}

/** @param {string} id @returns {HTMLElement} */
function $(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing from kiosk.html`);
  return el;
}

/** @param {string} tag @param {Record<string, string>} [attrs] @param {string} [text] */
function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function freshResident() {
  return {
    /** @type {Category | null} */ category: null,
    /** @type {Item | null} */ item: null,
    /** @type {"start" | "category"} */ itemFrom: "start",
    priority: false,
    /** @type {string | null} the waiting or live call */ callId: null,
    /** @type {"requesting" | "waiting" | "live" | null} */ callState: null,
    /** @type {Item | null} */ callItem: null,
    /** @type {{id: number, name: string} | null} */ clerk: null,
    /** @type {string | null} the call just ended, to rate */ rateCallId: null,
    /** @type {string | null} the resident's latest call, for 办不成事 */ lastCallId: null,
    rating: 0,
    /** @type {any[]} pushes that arrived before the call.request ack */ early: [],
    /** @type {{days: {date: string, slots: string[]}[], day: number, slot: string | null, reason: string} | null} */
    booking: null,
    /** @type {AppointmentInfo | null} the appointment found on the check-in screen */ checkin: null,
    cancelling: false,
  };
}

const kiosk = {
  /** @type {BoothApi | null} */ api: null,
  /** @type {ProtocolClient | null} */ client: null,
  /** @type {Category[]} */ categories: [],
  /** @type {Item[]} */ items: [],
  /** @type {Map<string, Item>} */ itemsByCode: new Map(),
  /** @type {Service} */ service: { open: true, next_opening: null },
  /** @type {Screen} */ screen: "loading",
  resident: freshResident(),
  speech: false,
  idleTimer: 0,
  thanksTimer: 0,
  countdownTimer: 0,
};
// Tests and the media integration read the kiosk's state here; nothing else writes it.
Object.defineProperty(window, "kiosk", { value: kiosk });

// ------------------------------------------------------------------------------------ screens

/** Show one screen, move focus to its heading, speak its prompt when asked to. @param {Screen} screen */
function show(screen) {
  kiosk.screen = screen;
  if (screen !== "call") {
    stopKioskMedia(); // cameras off whenever the call screen is left
    closeDevicePanel(); // a "printed" or capture dialog must not stay over the rating screen
  }
  for (const section of document.querySelectorAll("main > .screen")) {
    /** @type {HTMLElement} */ (section).hidden = section.id !== `screen-${screen}`;
  }
  document.body.dataset.screen = screen;
  if (screen === "start") void refreshServiceStatus(); // back from a call: who is online now
  $("back-button").hidden = !(BROWSING.has(screen) && screen !== "rating") || Boolean(kiosk.resident.booking && kiosk.resident.booking.slot === "booked");
  $("home-button").hidden = !BROWSING.has(screen);
  $("home-button").querySelector("span").textContent = screen === "rating" ? tr("跳过", "Skip") : tr("首页", "Start");
  const heading = document.querySelector(`#screen-${screen} h1`);
  if (heading instanceof HTMLElement && screen !== "start") {
    heading.tabIndex = -1;
    heading.focus({ preventScroll: true });
  }
  window.scrollTo(0, 0);
  speak(promptOf(screen));
  armIdle();
}

/** What the kiosk says aloud on entering a screen (speech is off by default). @param {Screen} screen */
function promptOf(screen) {
  const r = kiosk.resident;
  switch (screen) {
    case "start": return tr("您好，请选择要办理的事项。", "Hello. Please choose a service.");
    case "category": return r.category ? nameOf(r.category) : "";
    case "item": return r.item ? tr(`${nameOf(r.item)}。请准备好所列材料，然后点击呼叫工作人员。`, `${nameOf(r.item)}. Have the listed documents ready, then tap Call a clerk.`) : "";
    case "waiting": return tr("正在为您呼叫工作人员，请稍候。", "Calling a clerk for you. Please wait.");
    case "closed": return tr("请选择预约时间。", "Please choose a time for your appointment.");
    case "checkin": return tr("请输入您的预约号。", "Please enter your appointment number.");
    case "call": return tr("工作人员已接通。", "A clerk has answered.");
    case "rating": return tr("请对本次服务进行评价。", "Please rate this service.");
    case "thanks": return tr("谢谢您。", "Thank you.");
    default: return "";
  }
}

/** @param {string} text */
function speak(text) {
  if (!kiosk.speech || !text || !("speechSynthesis" in window)) return;
  window.speechSynthesis.cancel();
  const utterance = new SpeechSynthesisUtterance(text);
  utterance.lang = isEnglish() ? "en-US" : "zh-CN";
  utterance.rate = 0.9; // a little slower for older residents
  window.speechSynthesis.speak(utterance);
}

/** Browsing screens start over after a while without a touch: the next resident must not find them. */
function armIdle() {
  clearTimeout(kiosk.idleTimer);
  if (!BROWSING.has(kiosk.screen) && kiosk.screen !== "start") return;
  kiosk.idleTimer = window.setTimeout(() => {
    if (kiosk.screen === "start" && !$input("search-input").value && !document.documentElement.classList.contains("large")) {
      return;
    }
    resetToStart();
  }, IDLE_S * 1000);
}

/** @param {string} id @returns {HTMLInputElement} */
function $input(id) {
  return /** @type {HTMLInputElement} */ ($(id));
}

// ------------------------------------------------------------------------------------ start

function renderServiceStatus() {
  const pill = $("service-status");
  const { open, next_opening: next, clerks_online: online } = kiosk.service;
  // "Clerks online" only when the server counted some (an old server sends no count: say less).
  const staffed = open && (online ?? 0) > 0;
  pill.classList.toggle("is-open", staffed);
  pill.classList.toggle("is-closed", !staffed);
  pill.dataset.clerksOnline = String(online ?? "");
  pill.replaceChildren(el("span", { class: "dot", "aria-hidden": "true" }), el("span", {},
    staffed ? tr("正在服务 · 工作人员在线，可视频办理", "Open · clerks are online for video help")
      : open ? tr("服务时间内 · 暂时没有工作人员在线，可预约或稍后再试", "Open hours · no clerk online right now; book or try again soon")
        : next ? tr(`当前不在服务时间 · 下次开放：${formatWhen(next)}`, `Closed now · opens ${formatWhen(next)}`)
          : tr("当前不在服务时间", "Closed now")));
}

const SERVICE_STATUS_EVERY_MS = 30000;

/** Keep the start screen's "clerks online" true: ask the server now and then while it shows. */
async function refreshServiceStatus() {
  if (kiosk.screen !== "start" || !kiosk.client) return;
  try {
    const reply = await kiosk.client.request("service.status", {});
    kiosk.service = reply.service ?? kiosk.service;
    renderServiceStatus();
  } catch { /* offline: the reconnect banner says so; the next welcome brings the status */ }
}

function renderTiles() {
  const list = $("category-tiles");
  list.replaceChildren(...kiosk.categories.map((category) => {
    const button = el("button", { type: "button", class: "tile", "data-category": category.code });
    const icon = el("span", { class: "tile-icon" });
    icon.innerHTML = iconSvg(category.icon);
    button.append(icon, el("span", { class: "tile-name" }, nameOf(category)),
      el("span", { class: "tile-count" }, tr(`${category.count} 项`, `${category.count} services`)));
    button.addEventListener("click", () => openCategory(category));
    const li = el("li");
    li.append(button);
    return li;
  }));
}

/** @param {Item} item @param {"start" | "category"} from */
function itemButton(item, from) {
  const button = el("button", { type: "button", class: "item-row", "data-item": item.code });
  const text = el("span", { class: "item-text" });
  text.append(el("span", { class: "item-name" }, nameOf(item)),
    el("span", { class: "item-meta" }, `${tr("办理时限", "Time limit")}：${formatLimit(item.time_limit_days)}`));
  const chevron = el("span", { class: "chevron", "aria-hidden": "true" }, "›");
  button.append(text, chevron);
  button.addEventListener("click", () => openItem(item, from));
  const li = el("li");
  li.append(button);
  return li;
}

function runSearch() {
  const query = $input("search-input").value;
  const active = query.trim() !== "";
  $("search-panel").hidden = !active;
  $("category-tiles").hidden = active;
  $("tiles-title").hidden = active;
  $("search-clear").hidden = !active;
  if (!active) return;
  const found = search(kiosk.items, query);
  $("search-title").textContent = found.length
    ? tr(`找到 ${found.length} 个事项`, `${found.length} found`)
    : tr("没有找到相关事项，请换个词试试，或按类别选择。", "Nothing found. Try other words, or choose a category.");
  $("search-results").replaceChildren(...found.map((item) => itemButton(item, "start")));
}

/** @param {Category} category */
function openCategory(category) {
  kiosk.resident.category = category;
  $("category-title").textContent = nameOf(category);
  $("category-icon").innerHTML = iconSvg(category.icon);
  const items = kiosk.items.filter((item) => item.category === category.code);
  $("category-items").replaceChildren(...items.map((item) => itemButton(item, "category")));
  show("category");
}

// ------------------------------------------------------------------------------------ item

/** @param {Item} item @param {"start" | "category"} from */
function openItem(item, from) {
  const r = kiosk.resident;
  r.item = item;
  r.itemFrom = from;
  if (from === "category") r.category = kiosk.categories.find((c) => c.code === item.category) ?? r.category;
  $("item-title").textContent = nameOf(item);
  $("item-materials").replaceChildren(...item.materials.map((material, index) => {
    const li = el("li", { class: material.mandatory ? "material required" : "material" });
    const label = el("label", { class: "material-label" });
    const box = el("input", { type: "checkbox", id: `material-${index}` });
    const tag = el("span", { class: material.mandatory ? "tag tag-required" : "tag tag-optional" },
      material.mandatory ? tr("必须", "Required") : tr("视情况", "If applicable"));
    const text = el("span", { class: "material-text" });
    text.append(el("span", { class: "material-name" }, nameOf(material)));
    const note = isEnglish() ? material.note_en : material.note_zh;
    if (note) text.append(el("span", { class: "material-note" }, note));
    label.append(box, tag, text);
    li.append(label);
    return li;
  }));
  $("item-limit").textContent = formatLimit(item.time_limit_days);
  $("item-cross").textContent = item.cross_region ? tr("可以", "Yes") : tr("仅限本镇街", "This town only");
  renderItemStatus();
  setPriority(false);
  $("call-error").hidden = true;
  show("item");
}

function renderItemStatus() {
  const { open, next_opening: next } = kiosk.service;
  $("item-status").textContent = open ? tr("正在服务", "Open")
    : next ? tr(`已下班，${formatWhen(next)} 开放`, `Closed, opens ${formatWhen(next)}`) : tr("已下班", "Closed");
  // One main action: a call while open, an appointment while closed.
  $("call-button-text").textContent = open ? tr("呼叫工作人员", "Call a clerk") : tr("预约办理", "Book an appointment");
  $("call-button").dataset.action = open ? "call" : "book";
  $("priority-toggle").hidden = !open;
  $("priority-hint").hidden = !open;
}

/** @param {boolean} on */
function setPriority(on) {
  kiosk.resident.priority = on;
  $("priority-toggle").setAttribute("aria-checked", String(on));
  $("priority-state").textContent = on ? tr("已开启", "on") : tr("未开启", "off");
}

async function callClerk() {
  const r = kiosk.resident;
  const client = kiosk.client;
  if (!r.item || !client || r.callState) return;
  if (!kiosk.service.open) {
    openBooking("closed");
    return;
  }
  const item = r.item;
  r.callState = "requesting";
  r.callItem = item;
  $("call-button").setAttribute("aria-busy", "true");
  try {
    await queueCall(client, { item_code: item.code, priority: r.priority });
  } catch (err) {
    const code = err instanceof ProtocolError ? err.code : "internal";
    if (code === "closed") {
      kiosk.service = { open: false, next_opening: err.reply?.next_opening ?? null };
      renderServiceStatus();
      openBooking("closed");
    } else if (code === "call_in_progress" && err.reply?.call_id) {
      await resumeCall(err.reply.call_id, item.code);
    } else {
      showError("call-error", code);
    }
  } finally {
    $("call-button").removeAttribute("aria-busy");
  }
}

/**
 * Sends `call.request` and, once the call is queued, shows the waiting screen and replays the pushes
 * that arrived before the ack. On failure the request is forgotten and the error is thrown on.
 * @param {ProtocolClient} client @param {Record<string, unknown>} fields
 */
async function queueCall(client, fields) {
  const r = kiosk.resident;
  try {
    const ack = await client.request("call.request", fields);
    r.callId = ack.call_id;
    r.lastCallId = ack.call_id;
    enterWaiting(ack.position);
    for (const push of r.early.splice(0)) onPush(push);
  } catch (err) {
    r.callState = null;
    r.early = [];
    throw err;
  }
}

/** @param {string} id @param {string} code */
function showError(id, code) {
  const box = $(id);
  box.textContent = errorText(code);
  box.hidden = false;
}

// ------------------------------------------------------------------------------------ 预约签到

function openCheckin() {
  kiosk.resident.checkin = null;
  $input("checkin-number").value = "";
  $("checkin-error").hidden = true;
  $("checkin-found").hidden = true;
  $("checkin-start").hidden = true;
  show("checkin");
}

/** A key of the on-screen keypad. @param {string} key */
function checkinKey(key) {
  const input = $input("checkin-number");
  if (key === "clear") input.value = "";
  else if (key === "back") input.value = input.value.slice(0, -1);
  else if (input.value.length < 9) input.value += key;
  $("checkin-error").hidden = true;
}

async function findAppointment() {
  const r = kiosk.resident;
  const raw = $input("checkin-number").value.trim();
  $("checkin-error").hidden = true;
  if (!/^[0-9]{1,9}$/.test(raw) || !kiosk.api) {
    showError("checkin-error", "invalid_appointment_number");
    return;
  }
  try {
    r.checkin = await kiosk.api.appointment(Number(raw));
  } catch (err) {
    r.checkin = null;
    $("checkin-found").hidden = true;
    $("checkin-start").hidden = true;
    showError("checkin-error", err instanceof ApiError ? err.code : "internal");
    return;
  }
  renderCheckin(r.checkin);
}

/** What was found: the item and slot, and whether the call can start now (or why not). @param {AppointmentInfo} found */
function renderCheckin(found) {
  const usable = found.status === "booked";
  const due = usable && found.due;
  $("checkin-found").hidden = false;
  $("checkin-found").classList.toggle("is-due", due);
  $("checkin-found").classList.toggle("is-not-due", !due);
  $("checkin-found-title").textContent = tr(`预约号 ${found.appointment_id}`, `Appointment ${found.appointment_id}`);
  $("checkin-item").textContent = nameOf(found.item);
  $("checkin-when").textContent = `${formatWhen(found.slot_start)}–${localParts(found.slot_end).hhmm}`;
  $("checkin-state").textContent = !usable ? errorText("appointment_used")
    : due ? tr("已到预约时间，请点击下方按钮开始办理，您将优先接听。", "It is your time: tap the button below; you are answered first.")
      : errorText("appointment_not_due");
  $("checkin-start").hidden = !due;
  if (due) $("checkin-start").focus();
}

/** The appointment's call: the server checks it is this booth's, booked and due, and queues it first. */
async function startAppointmentCall() {
  const r = kiosk.resident;
  const found = r.checkin;
  const client = kiosk.client;
  const item = found ? kiosk.itemsByCode.get(found.item_code) : undefined;
  if (!found || !item || !client || r.callState) return;
  r.item = item;
  r.callItem = item;
  r.priority = false;
  r.callState = "requesting";
  $("checkin-start").setAttribute("aria-busy", "true");
  try {
    await queueCall(client, { item_code: item.code, appointment_id: found.appointment_id });
  } catch (err) {
    showError("checkin-error", err instanceof ProtocolError ? err.code : "internal");
  } finally {
    $("checkin-start").removeAttribute("aria-busy");
  }
}

// ------------------------------------------------------------------------------------ waiting

/** @param {number | null} position @param {{transferring?: boolean}} [options] */
function enterWaiting(position, { transferring = false } = {}) {
  const r = kiosk.resident;
  r.callState = "waiting";
  document.body.dataset.callId = r.callId ?? "";
  $("waiting-title").textContent = transferring ? tr("正在为您转接其他工作人员", "Transferring you to another clerk")
    : tr("正在为您呼叫工作人员", "Calling a clerk for you");
  $("waiting-item").textContent = r.callItem ? nameOf(r.callItem) : "";
  $("waiting-priority").hidden = !r.priority;
  renderQueue(position, undefined);
  if (kiosk.screen !== "waiting") show("waiting");
}

/** @param {number | null} position @param {number | null | undefined} waitS @param {boolean} [ringing] */
function renderQueue(position, waitS, ringing = false) {
  document.body.dataset.ringing = String(ringing);
  if (ringing) { // a clerk's console is ringing for this call: no queue estimate, it is about to start
    $("queue-position").textContent = tr("正在为您接通工作人员，请稍候", "Connecting you to a clerk, one moment");
    $("queue-wait").textContent = "";
    $("queue-wait").hidden = true;
    $("nobody-card").hidden = true;
    return;
  }
  if (position != null) {
    const ahead = Math.max(0, position - 1);
    $("queue-position").textContent = ahead === 0 ? tr("下一位就是您", "You are next")
      : tr(`您前面还有 ${ahead} 位`, `${ahead} ${ahead === 1 ? "person" : "people"} ahead of you`);
  } else if (!$("queue-position").textContent) {
    $("queue-position").textContent = tr("正在排队", "In the queue");
  }
  // undefined: no estimate yet; null: nobody who could serve this item is working now.
  const nobody = waitS === null;
  $("queue-wait").textContent = waitS == null ? (nobody ? tr("暂时无法估计等待时间", "No estimate for now") : tr("正在估算等待时间……", "Estimating the wait…"))
    : formatWait(waitS);
  $("queue-wait").hidden = nobody; // the notice below says it, with what to do instead
  $("nobody-card").hidden = !nobody;
}

async function cancelCall() {
  const r = kiosk.resident;
  const client = kiosk.client;
  if (!client || !r.callId || r.cancelling) return;
  r.cancelling = true;
  try {
    const ack = await client.request("call.cancel", { call_id: r.callId });
    if (ack.status === "ended") endOfCall(ack.call_id);
    else resetToStart();
  } catch (err) {
    const code = err instanceof ProtocolError ? err.code : "internal";
    // not_waiting: answered meanwhile (call.connected follows); not_open / call_not_found: already over.
    if (code === "not_open" || code === "call_not_found") resetToStart();
  } finally {
    r.cancelling = false;
  }
}

async function waitingToAppointment() {
  const r = kiosk.resident;
  const item = r.callItem;
  if (!kiosk.client || !r.callId || !item) return;
  try {
    await kiosk.client.request("call.cancel", { call_id: r.callId });
  } catch {
    return; // the call moved on (answered); its pushes drive the screen
  }
  r.callId = null;
  r.callState = null;
  delete document.body.dataset.callId;
  r.item = item;
  openBooking("nobody");
}

// ------------------------------------------------------------------------------------ appointment

/** @param {"closed" | "nobody"} reason */
async function openBooking(reason) {
  const r = kiosk.resident;
  if (!r.item || !kiosk.api) return;
  r.booking = { days: [], day: 0, slot: null, reason };
  $("closed-title").textContent = tr("预约办理", "Book an appointment");
  $("closed-reason").textContent = reason === "closed" ? tr("当前不在服务时间", "We are closed right now")
    : tr("暂无可服务的工作人员", "No clerk is free to help right now");
  const next = kiosk.service.next_opening;
  $("next-opening").textContent = reason === "closed" && next
    ? tr(`下次开放时间：${formatWhen(next)}`, `Next opening: ${formatWhen(next)}`)
    : tr("您可以预约一个时间，到时再来本晓屋办理。", "Book a time and come back to this booth then.");
  $("booking-title").textContent = tr(`为“${nameOf(r.item)}”选择时间`, `Choose a time for “${nameOf(r.item)}”`);
  $("booking").hidden = false;
  $("booked").hidden = true;
  $("book-button").hidden = false;
  $("booked-done").hidden = true;
  $("booking-error").hidden = true;
  updateBookButton();
  $("slot-days").replaceChildren();
  $("slot-grid").replaceChildren(el("p", { class: "hint" }, tr("正在查询可预约时间……", "Looking up free times…")));
  show("closed");
  try {
    const answer = await kiosk.api.slots(r.item.code);
    if (r.booking === null) return;
    r.booking.days = answer.days;
    renderSlots();
  } catch (err) {
    showError("booking-error", err instanceof ApiError ? err.code : "internal");
  }
}

function renderSlots() {
  const booking = kiosk.resident.booking;
  if (!booking) return;
  if (!booking.days.length) {
    $("slot-grid").replaceChildren(el("p", { class: "hint" }, tr("近期没有可预约的时间。", "No free times soon.")));
    return;
  }
  $("slot-days").replaceChildren(...booking.days.map((day, index) => {
    const button = el("button", { type: "button", class: "day-tab", "aria-pressed": String(index === booking.day) },
      formatDay(`${day.date}T00:00`));
    button.addEventListener("click", () => {
      booking.day = index;
      booking.slot = null;
      renderSlots();
    });
    return button;
  }));
  const day = booking.days[booking.day];
  $("slot-grid").replaceChildren(...day.slots.map((slot) => {
    const chosen = slot === booking.slot;
    const button = el("button", { type: "button", class: "slot", "aria-pressed": String(chosen), "data-slot": slot },
      localParts(slot).hhmm);
    if (chosen) button.prepend(el("span", { class: "tick", "aria-hidden": "true" }, "✓ "));
    button.addEventListener("click", () => {
      booking.slot = slot;
      renderSlots();
      updateBookButton();
    });
    return button;
  }));
  updateBookButton();
}

function updateBookButton() {
  const booking = kiosk.resident.booking;
  const button = /** @type {HTMLButtonElement} */ ($("book-button"));
  button.disabled = !booking || !booking.slot;
  button.textContent = booking && booking.slot ? tr(`确认预约 ${formatWhen(booking.slot)}`, `Book ${formatWhen(booking.slot)}`)
    : tr("请先选择时间", "Choose a time first");
}

async function book() {
  const r = kiosk.resident;
  const booking = r.booking;
  if (!booking || !booking.slot || !r.item || !kiosk.client) return;
  const button = /** @type {HTMLButtonElement} */ ($("book-button"));
  button.disabled = true;
  try {
    const ack = await kiosk.client.request("appointment.book", { item_code: r.item.code, slot_start: booking.slot });
    booking.slot = "booked";
    $("booking").hidden = true;
    $("closed-note").hidden = true;
    $("book-button").hidden = true;
    $("booked").hidden = false;
    $("booked-done").hidden = false;
    $("booked-when").textContent = `${nameOf(r.item)} · ${formatWhen(ack.slot_start)}–${localParts(ack.slot_end).hhmm}`;
    $("booked-number").textContent = tr(`预约号：${ack.appointment_id}`, `Appointment number: ${ack.appointment_id}`);
    $("back-button").hidden = true;
    $("booked-done").focus();
    speak(tr(`预约成功，${formatWhen(ack.slot_start)}。`, `Booked for ${formatWhen(ack.slot_start)}.`));
  } catch (err) {
    showError("booking-error", err instanceof ProtocolError ? err.code : "internal");
    button.disabled = false;
  }
}

// ------------------------------------------------------------------------------------ in call

/** @param {{id: number, name: string} | null} clerk */
function enterCall(clerk) {
  const r = kiosk.resident;
  r.callState = "live";
  if (clerk) r.clerk = clerk;
  document.body.dataset.callId = r.callId ?? "";
  $("call-title").textContent = r.clerk ? tr(`工作人员 ${r.clerk.name} 为您服务`, `${r.clerk.name} is helping you`)
    : tr("工作人员为您服务", "A clerk is helping you");
  $("call-item").textContent = r.callItem ? nameOf(r.callItem) : "";
  $("peer-note").hidden = true;
  if (kiosk.screen !== "call") show("call");
  startKioskMedia(kiosk.client, r.callId); // also after a resume: a new peer connection
}

/** @param {"clerk" | "booth"} sender @param {string} text */
function appendChat(sender, text) {
  const li = el("li", { class: `msg from-${sender}` });
  li.append(el("span", { class: "who" }, sender === "clerk" ? tr("工作人员：", "Clerk:") : tr("我：", "Me:")),
    el("span", { class: "text" }, text));
  const log = $("chat-log");
  log.append(li);
  log.scrollTop = log.scrollHeight;
}

/** @param {string} text */
async function sendChat(text) {
  const r = kiosk.resident;
  const clean = text.trim();
  if (!clean || !r.callId || !kiosk.client || r.callState !== "live") return;
  try {
    await kiosk.client.request("chat.send", { call_id: r.callId, text: clean });
    appendChat("booth", clean);
    $input("chat-input").value = "";
  } catch (err) {
    appendChat("booth", `${clean} ${tr("（未发送，请重试）", "(not sent, try again)")}`);
  }
}

/** The call is over: rate it. Safe to call twice (the ack and the push both say so). @param {string} callId */
function endOfCall(callId) {
  const r = kiosk.resident;
  if (r.rateCallId === callId) return;
  r.callId = null;
  r.callState = null;
  r.rateCallId = callId;
  delete document.body.dataset.callId;
  r.rating = 0;
  renderRating();
  // The print dialog closed with the call screen: remind the resident to take what was printed.
  $("rating-print-reminder").hidden = !document.body.dataset.print || document.body.dataset.print === "failed";
  show("rating");
}

// ------------------------------------------------------------------------------------ rating

function renderRating() {
  const r = kiosk.resident;
  $("rating-levels").replaceChildren(...RATING_LEVELS.map(({ level, zh, en }) => {
    const chosen = r.rating === level;
    const button = el("button", { type: "button", role: "radio", class: `level level-${level}`,
      "aria-checked": String(chosen), "data-level": String(level) });
    const face = el("span", { class: "face" });
    face.innerHTML = faceSvg(level);
    button.append(face, el("span", { class: "level-name" }, tr(zh, en)));
    if (chosen) button.append(el("span", { class: "tick" }, tr("已选", "Chosen")));
    button.addEventListener("click", () => {
      r.rating = level;
      renderRating();
      /** @type {HTMLElement | null} */ (document.querySelector(`.level[data-level="${level}"]`))?.focus();
    });
    return button;
  }));
  /** @type {HTMLButtonElement} */ ($("rating-submit")).disabled = r.rating === 0;
}

async function submitRating() {
  const r = kiosk.resident;
  if (!r.rateCallId || !r.rating || !kiosk.api) return;
  const button = /** @type {HTMLButtonElement} */ ($("rating-submit"));
  button.disabled = true;
  try {
    await kiosk.api.rate(r.rateCallId, r.rating, $input("rating-comment").value.trim());
  } catch (err) {
    if (!(err instanceof ApiError && err.code === "already_rated")) {
      showError("rating-error", err instanceof ApiError ? err.code : "internal");
      button.disabled = false;
      return;
    }
  }
  thanks(tr("您的评价已提交，祝您生活愉快！", "Your rating was sent. Have a good day!"));
}

/** @param {string} text */
function thanks(text) {
  $("thanks-text").textContent = text;
  show("thanks");
  let left = THANKS_S;
  const tick = () => {
    $("thanks-countdown").textContent = tr(`${left} 秒后自动返回首页`, `Back to the start in ${left} s`);
    left -= 1;
  };
  tick();
  clearInterval(kiosk.countdownTimer);
  kiosk.countdownTimer = window.setInterval(tick, 1000);
  clearTimeout(kiosk.thanksTimer);
  kiosk.thanksTimer = window.setTimeout(resetToStart, THANKS_S * 1000);
}

// ------------------------------------------------------------------------------------ 办不成事

function openComplaint() {
  const dialog = /** @type {HTMLDialogElement} */ ($("complaint-dialog"));
  /** @type {HTMLFormElement} */ ($("complaint-form")).reset();
  $("complaint-form").hidden = false;
  $("complaint-done").hidden = true;
  $("complaint-error").hidden = true;
  if (!dialog.open) dialog.showModal();
  speak(tr("请选择办不成事的原因。", "Please choose what went wrong."));
}

async function sendComplaint() {
  const form = /** @type {HTMLFormElement} */ ($("complaint-form"));
  const chosen = /** @type {HTMLInputElement | null} */ (form.querySelector("input[name=category]:checked"));
  if (!chosen) {
    $("complaint-error").textContent = tr("请先选择一项原因。", "Please choose a reason first.");
    $("complaint-error").hidden = false;
    return;
  }
  const r = kiosk.resident;
  const callId = r.callId ?? r.rateCallId ?? r.lastCallId;
  try {
    await kiosk.api?.complain(chosen.value, $input("complaint-text").value.trim(), callId);
  } catch (err) {
    showError("complaint-error", err instanceof ApiError ? err.code : "internal");
    return;
  }
  form.hidden = true;
  $("complaint-done").hidden = false;
  $("complaint-done-title").focus();
}

function closeComplaint() {
  const dialog = /** @type {HTMLDialogElement} */ ($("complaint-dialog"));
  if (dialog.open) dialog.close();
}

// ------------------------------------------------------------------------------------ reset

/** Forget the resident: state, typed text, choices, modes; the page starts over. */
function resetToStart() {
  delete document.body.dataset.print; // the last resident's print is not the next one's
  clearTimeout(kiosk.thanksTimer);
  clearInterval(kiosk.countdownTimer);
  closeComplaint();
  kiosk.resident = freshResident();
  delete document.body.dataset.callId;
  for (const id of ["search-input", "chat-input", "rating-comment", "complaint-text", "checkin-number"]) $input(id).value = "";
  /** @type {HTMLFormElement} */ ($("complaint-form")).reset();
  for (const id of ["chat-log", "category-items", "item-materials", "search-results", "slot-days", "slot-grid", "rating-levels"]) {
    $(id).replaceChildren();
  }
  for (const id of ["item-title", "category-title", "call-title", "queue-position", "queue-wait", "booked-when", "booked-number", "thanks-text"]) {
    $(id).textContent = "";
  }
  $("closed-note").hidden = false;
  $("checkin-found").hidden = true;
  $("checkin-start").hidden = true;
  $("checkin-error").hidden = true;
  setPriority(false);
  setLarge(false);
  setSpeech(false);
  runSearch();
  if (isEnglish()) {
    // The next resident starts in Chinese, as every kiosk does.
    document.cookie = "lang=zh; path=/; max-age=31536000; samesite=lax";
    location.reload();
    return;
  }
  show("start");
}

/** @param {boolean} on */
function setLarge(on) {
  document.documentElement.classList.toggle("large", on);
  $("large-toggle").setAttribute("aria-pressed", String(on));
}

/** @param {boolean} on */
function setSpeech(on) {
  kiosk.speech = on;
  $("speech-toggle").setAttribute("aria-pressed", String(on));
  if (!on && "speechSynthesis" in window) window.speechSynthesis.cancel();
}

// ------------------------------------------------------------------------------------ the socket

/** @param {any} m */
function onPush(m) {
  const r = kiosk.resident;
  if (m.call_id && r.callState === "requesting" && !r.callId) {
    r.early.push(m); // arrived before the call.request ack named the call
    return;
  }
  if (m.call_id && m.call_id !== r.callId) return; // an old call's news
  if (r.callState === "live" && handleDevicePush(kiosk, m)) return; // capture.request, print.request
  if (handleSignaturePush(kiosk, m)) return; // signature.request; closes the pad when the call ends
  switch (m.type) {
    case "queue.position":
      if (r.callState === "waiting") renderQueue(m.position, m.estimated_wait_s, m.ringing === true);
      break;
    case "call.connected":
      enterCall(m.clerk ?? null);
      break;
    case "call.transferring":
      r.clerk = null;
      enterWaiting(null, { transferring: true });
      break;
    case "call.ended":
      endOfCall(m.call_id);
      break;
    case "call.abandoned":
      if (!r.cancelling) {
        resetToStart();
      }
      break;
    case "chat.message":
      if (m.sender === "clerk") appendChat("clerk", m.text);
      break;
    case "peer.left":
      $("peer-note").textContent = tr("工作人员网络中断，正在重新连接，请稍候……", "The clerk's connection dropped. Please wait…");
      $("peer-note").hidden = false;
      break;
    case "peer.rejoined":
      $("peer-note").hidden = true;
      break;
    default:
      break;
  }
}

/**
 * After a (re)connect: pick the open call back up. A waiting call is out of routing until we ask
 * (resume_call_id); a live one carries on. No call any more means it ended while we were away.
 * @param {any} welcome
 */
async function resumeFromWelcome(welcome) {
  kiosk.service = welcome.service ?? kiosk.service;
  renderServiceStatus();
  if (kiosk.screen === "item") renderItemStatus();
  const r = kiosk.resident;
  const open = welcome.call;
  if (open) {
    await resumeCall(open.call_id, open.item_code);
  } else if (r.callId) {
    if (r.callState === "live") endOfCall(r.callId);
    else resetToStart();
  }
}

/** @param {string} callId @param {string} itemCode */
async function resumeCall(callId, itemCode) {
  const r = kiosk.resident;
  if (!kiosk.client) return;
  try {
    const ack = await kiosk.client.request("call.request", { item_code: itemCode, resume_call_id: callId });
    r.callId = callId;
    r.lastCallId = callId;
    r.callItem = kiosk.itemsByCode.get(itemCode) ?? r.callItem;
    if (ack.status === "active") enterCall(null);
    else enterWaiting(ack.position ?? null);
  } catch (err) {
    // call_not_found: it settled meanwhile.
    if (r.callState === "live" && r.callId) endOfCall(r.callId);
    else if (r.callId) resetToStart();
  }
}

/** @param {boolean} show */
function banner(show) {
  $("net-banner").hidden = !show;
  document.body.classList.toggle("offline", show);
}

/** @param {number} code */
function socketGone(code) {
  banner(false);
  $("unprovisioned-text").textContent = code === CLOSE.REPLACED
    ? tr("本设备已在其他地方重新连接，此页面已停止。", "This device connected again elsewhere; this page has stopped.")
    : tr("本设备已停用，请联系管理员。", "This device has been switched off. Please contact the administrator.");
  for (const section of document.querySelectorAll("main > .screen")) /** @type {HTMLElement} */ (section).hidden = true;
  $("unprovisioned").hidden = false;
  document.body.dataset.screen = "unprovisioned";
}

/** @param {string} token */
async function connect(token) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await ProtocolClient.connect("booth", { token, onPush });
    } catch (err) {
      // The first socket failed (server restarting, network down): try again, gently.
      await new Promise((resolve) => setTimeout(resolve, Math.min(15000, 1000 * 2 ** attempt)));
    }
  }
}

async function reportDevices() {
  if (!kiosk.client || !navigator.mediaDevices?.enumerateDevices) return;
  try {
    const devices = await navigator.mediaDevices.enumerateDevices();
    const has = (/** @type {string} */ kind) => devices.some((d) => d.kind === kind);
    await kiosk.client.request("device.status", { devices: {
      camera: has("videoinput") ? "ok" : "missing",
      microphone: has("audioinput") ? "ok" : "missing",
      speaker: has("audiooutput") ? "ok" : "missing",
    } });
  } catch {
    // A report is best effort; the next connect sends it again.
  }
}

// ------------------------------------------------------------------------------------ wiring

function wire() {
  $input("search-input").addEventListener("input", runSearch);
  $("search-clear").addEventListener("click", () => {
    $input("search-input").value = "";
    runSearch();
    $("search-input").focus();
  });
  $("call-button").addEventListener("click", () => {
    if ($("call-button").dataset.action === "book") openBooking("closed");
    else callClerk();
  });
  $("priority-toggle").addEventListener("click", () => setPriority(!kiosk.resident.priority));
  $("cancel-call").addEventListener("click", cancelCall);
  $("offer-appointment").addEventListener("click", waitingToAppointment);
  $("book-button").addEventListener("click", book);
  $("booked-done").addEventListener("click", resetToStart);
  $("hangup").addEventListener("click", cancelCall);
  $("checkin-button").addEventListener("click", openCheckin);
  for (const key of document.querySelectorAll(".keypad .key")) {
    key.addEventListener("click", () => checkinKey(/** @type {HTMLElement} */ (key).dataset.key ?? ""));
  }
  $("checkin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    findAppointment();
  });
  $("checkin-start").addEventListener("click", startAppointmentCall);
  $("chat-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sendChat($input("chat-input").value);
  });
  for (const button of document.querySelectorAll(".quick")) {
    button.addEventListener("click", () => sendChat(/** @type {HTMLElement} */ (button).dataset.text ?? ""));
  }
  $("rating-submit").addEventListener("click", submitRating);
  $("thanks-home").addEventListener("click", resetToStart);
  $("complain-button").addEventListener("click", openComplaint);
  $("complaint-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sendComplaint();
  });
  $("complaint-cancel").addEventListener("click", closeComplaint);
  $("complaint-close").addEventListener("click", closeComplaint);
  $("large-toggle").addEventListener("click", () => setLarge(!document.documentElement.classList.contains("large")));
  $("speech-toggle").addEventListener("click", () => {
    setSpeech(!kiosk.speech);
    speak(promptOf(kiosk.screen));
  });
  $("home-button").addEventListener("click", resetToStart);
  $("back-button").addEventListener("click", () => {
    const r = kiosk.resident;
    if (kiosk.screen === "category") show("start");
    else if (kiosk.screen === "item" && r.itemFrom === "category" && r.category) openCategory(r.category);
    else if (kiosk.screen === "item") show("start");
    else if (kiosk.screen === "checkin") show("start");
    else if (kiosk.screen === "closed" && r.item) { r.booking = null; openItem(r.item, r.itemFrom); }
  });
  for (const type of ["pointerdown", "keydown", "input"]) document.addEventListener(type, armIdle, { passive: true });
  // The booth's wall clock in the service's time zone, whatever zone the kiosk's OS was set to.
  let format;
  try {
    format = new Intl.DateTimeFormat("zh-CN", { hour: "2-digit", minute: "2-digit", hour12: false,
      timeZone: document.body.dataset.timezone || undefined });
  } catch {
    format = new Intl.DateTimeFormat("zh-CN", { hour: "2-digit", minute: "2-digit", hour12: false });
  }
  const clock = () => { $("clock").textContent = format.format(new Date()); };
  clock();
  setInterval(clock, 15000);
}

function takeTokenFromFragment() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const token = fragment.get("token");
  if (token) {
    localStorage.setItem(TOKEN_KEY, token);
    history.replaceState(null, "", location.pathname + location.search);
  }
  return localStorage.getItem(TOKEN_KEY);
}

function unprovisioned() {
  for (const section of document.querySelectorAll("main > .screen")) /** @type {HTMLElement} */ (section).hidden = true;
  $("unprovisioned").hidden = false;
  document.body.dataset.screen = "unprovisioned";
}

async function main() {
  const token = takeTokenFromFragment();
  if (!token) {
    unprovisioned();
    return;
  }
  const api = new BoothApi(token);
  kiosk.api = api;
  let me;
  try {
    me = await api.me();
  } catch {
    unprovisioned();
    return;
  }
  if (me.kind !== "booth") {
    unprovisioned();
    return;
  }
  $("booth-name").textContent = me.booth_name;
  const catalog = await api.catalog();
  kiosk.categories = catalog.categories;
  kiosk.items = catalog.items;
  kiosk.itemsByCode = new Map(kiosk.items.map((/** @type {Item} */ item) => [item.code, item]));
  wire();
  watchIdCard(kiosk); // the booth agent's ID card reader, while a call is live
  renderTiles();
  const client = await connect(token);
  kiosk.client = client;
  const welcome = client.welcome;
  if (welcome?.booth?.region_name) $("booth-name").textContent = `${me.booth_name} · ${welcome.booth.region_name}`;
  client.on("reconnecting", () => banner(true));
  client.on("reconnected", ({ welcome: again }) => {
    banner(false);
    resumeFromWelcome(again);
    reportDevices();
  });
  client.on("closed", ({ code }) => socketGone(code));
  kiosk.service = welcome?.service ?? kiosk.service;
  renderServiceStatus();
  show("start");
  window.setInterval(refreshServiceStatus, SERVICE_STATUS_EVERY_MS);
  document.body.dataset.ready = "true";
  if (welcome?.call) await resumeFromWelcome(welcome); // the kiosk restarted in the middle of a call
  reportDevices();
}

main();
