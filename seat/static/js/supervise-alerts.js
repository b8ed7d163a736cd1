// @ts-check
/**
 * 电子监察 page: the alert list (GET /api/supervise/alerts), acknowledge and resolve-with-note,
 * live `wall.alert` pushes on the supervisor socket (docs/protocol.md), and for admins the rules
 * editor (GET/PUT /api/supervise/alert-rules...). Colour is never the only cue: every kind has
 * its own icon shape and a text label.
 */

import { ProtocolClient } from "./protocol.js";
import { requestJson } from "./dom.js";

const EN = document.documentElement.lang === "en";
/** @param {string} zh @param {string} en */
const tr = (zh, en) => (EN ? en : zh);

/**
 * @typedef {{id: number, kind: "yellow"|"red"|"blue", status: "open"|"acknowledged"|"resolved", message: string,
 *   case_id: number|null, case_number: string|null, deadline: string|null, session_id: string|null,
 *   booth_id: number|null, booth_name: string|null, region_code: string|null, created_at: string,
 *   acknowledged_at: string|null, acknowledged_by: string|null, resolved_at: string|null,
 *   resolved_by: string|null, resolution_note: string}} Alert
 * @typedef {{yellow_days: number, red_enabled: boolean, blue_max_level: number}} Rules
 * @typedef {{yellow_days: number|null, red_enabled: boolean|null, blue_max_level: number|null}} Override
 */

/** @type {Record<string, [string, string]>} */
const KIND = {
  yellow: ["黄色预警 · 临近时限", "Yellow · deadline near"],
  red: ["红色预警 · 已超期", "Red · overdue"],
  blue: ["蓝色预警 · 差评/投诉", "Blue · rating or complaint"],
};
/** @type {Record<string, [string, string]>} */
const STATUS = { open: ["待处理", "Open"], acknowledged: ["已签收", "Acknowledged"], resolved: ["已办结", "Resolved"] };
/** @type {Record<string, [string, string]>} */
const ERRORS = {
  note_required: ["请填写处理说明。", "Write what was done."],
  note_too_long: ["处理说明不能超过 500 字。", "The note is longer than 500 characters."],
  invalid_transition: ["该预警已被他人处理，列表已刷新。", "Someone else has handled this alert; the list is refreshed."],
  alert_not_found: ["预警不存在或不在您的监督范围内。", "No such alert in your regions."],
  invalid_rule: ["规则无效，请检查输入。", "The rule is not valid; check the values."],
  csrf: ["会话已过期，请刷新页面。", "The session expired; reload the page."],
};
const LEVELS = [
  [0, "不因评价预警", "Never on ratings"], [1, "非常不满意", "Very dissatisfied"], [2, "不满意", "Dissatisfied"],
  [3, "基本满意", "Basically satisfied"], [4, "满意", "Satisfied"],
];

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
/** @param {[string, string] | undefined} pair @param {string} fallback */
const label = (pair, fallback) => (pair ? tr(pair[0], pair[1]) : fallback);

/** @type {Map<number, Alert>} */
const alerts = new Map();
let loaded = false;
/** @type {Record<string, number>} unresolved alerts per kind (the summary cards) */
let counts = { yellow: 0, red: 0, blue: 0 };
const fresh = new Set(); // ids pushed live since the page loaded: highlighted once

/** @param {any} error */
const errorText = (error) => label(ERRORS[error?.code], tr("操作失败，请重试。", "That did not work; try again."));

/** @param {string | null} iso */
function when(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString(EN ? "en-GB" : "zh-CN", {
    timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
}

// ------------------------------------------------------------------ the list

function filters() {
  const status = /** @type {HTMLSelectElement} */ ($("filter-status")).value;
  const kind = /** @type {HTMLSelectElement} */ ($("filter-kind")).value;
  return { status, kind };
}

/** @param {Alert} a */
function matches(a) {
  const { status, kind } = filters();
  if (kind && a.kind !== kind) return false;
  if (status === "active") return a.status !== "resolved";
  return !status || a.status === status;
}

async function load() {
  const { status, kind } = filters();
  const query = new URLSearchParams();
  if (status && status !== "active") query.set("status", status);
  if (kind) query.set("kind", kind);
  try {
    const data = await requestJson("GET", `/api/supervise/alerts?${query}`);
    alerts.clear();
    for (const a of data.alerts) alerts.set(a.id, a);
    if (!kind && (!status || status === "active")) await loadCounts(data.alerts);
    else await loadCounts(null);
    $("alerts-error").hidden = true;
  } catch (error) {
    $("alerts-error").textContent = tr("无法加载预警列表：", "Could not load the alerts: ") + errorText(error);
    $("alerts-error").hidden = false;
  }
  loaded = true;
  render();
}

/** Unresolved counts per kind for the summary cards. @param {Alert[] | null} known */
async function loadCounts(known) {
  let list = known;
  if (!list) list = (await requestJson("GET", "/api/supervise/alerts")).alerts;
  counts = { yellow: 0, red: 0, blue: 0 };
  for (const a of /** @type {Alert[]} */ (list)) if (a.status !== "resolved") counts[a.kind] += 1;
}

function renderCounts() {
  const { kind } = filters();
  for (const card of document.querySelectorAll(".summary-card")) {
    const k = /** @type {HTMLElement} */ (card).dataset.kind ?? "";
    const count = card.querySelector(".summary-count");
    if (count) count.textContent = String(counts[k] ?? 0);
    card.setAttribute("aria-pressed", String(kind === k));
  }
}

/** @param {HTMLElement} dl @param {string} term @param {string | Node} value */
function fact(dl, term, value) {
  const dt = document.createElement("dt");
  dt.textContent = term;
  const dd = document.createElement("dd");
  dd.append(value);
  const pair = document.createElement("div"); // dt + dd stay together when the list wraps
  pair.append(dt, dd);
  dl.append(pair);
}

/** @param {Alert} a */
function card(a) {
  const template = /** @type {HTMLTemplateElement} */ ($("alert-template"));
  const li = /** @type {HTMLElement} */ (template.content.firstElementChild?.cloneNode(true));
  li.dataset.alertId = String(a.id);
  li.dataset.kind = a.kind;
  li.dataset.status = a.status;
  li.classList.add(`kind-${a.kind}`, `status-${a.status}`);
  if (fresh.has(a.id)) li.classList.add("fresh");
  const q = (/** @type {string} */ s) => /** @type {HTMLElement} */ (li.querySelector(s));
  q(".kind-text").textContent = label(KIND[a.kind], a.kind);
  q(".alert-message").textContent = a.message || label(KIND[a.kind], a.kind);
  q(".alert-message").id = `alert-${a.id}-title`;
  li.querySelector("article")?.setAttribute("aria-labelledby", `alert-${a.id}-title`);
  const facts = q(".alert-facts");
  if (a.case_number) {
    fact(facts, tr("案件", "Case"), a.case_number + (a.deadline ? tr(`（办理时限 ${a.deadline}）`, ` (deadline ${a.deadline})`) : ""));
  }
  if (a.booth_name) fact(facts, tr("晓屋", "Booth"), a.booth_name);
  if (a.region_code) fact(facts, tr("区域", "Region"), a.region_code);
  if (a.session_id) {
    const link = document.createElement("a");
    link.href = `/supervise/sessions/${a.session_id}`;
    link.textContent = tr("查看会话记录", "Open the session");
    link.className = "session-link";
    fact(facts, tr("会话", "Session"), link);
  }
  fact(facts, tr("发出时间", "Raised"), when(a.created_at));
  const badge = q(".status-badge");
  badge.textContent = label(STATUS[a.status], a.status);
  badge.classList.add(`status-${a.status}`);
  const trail = [];
  if (a.acknowledged_at) trail.push(tr(`${a.acknowledged_by ?? "—"} 于 ${when(a.acknowledged_at)} 签收`,
    `Acknowledged by ${a.acknowledged_by ?? "—"} at ${when(a.acknowledged_at)}`));
  if (a.resolved_at) trail.push(tr(`${a.resolved_by ?? "系统"} 于 ${when(a.resolved_at)} 办结：${a.resolution_note}`,
    `Resolved by ${a.resolved_by ?? "the system"} at ${when(a.resolved_at)}: ${a.resolution_note}`));
  q(".alert-trail").textContent = trail.join("；");
  q(".alert-trail").hidden = trail.length === 0;

  const ack = /** @type {HTMLButtonElement} */ (q(".ack-button"));
  ack.textContent = tr("签收", "Acknowledge");
  ack.hidden = a.status !== "open";
  ack.addEventListener("click", () => act(a.id, "ack", undefined, ack));
  const resolveButton = /** @type {HTMLButtonElement} */ (q(".resolve-button"));
  resolveButton.textContent = tr("办结…", "Resolve…");
  resolveButton.hidden = a.status === "resolved";
  resolveButton.setAttribute("aria-expanded", "false");
  const form = /** @type {HTMLFormElement} */ (q(".resolve-form"));
  const note = /** @type {HTMLTextAreaElement} */ (form.querySelector("textarea"));
  note.id = `note-${a.id}`;
  form.id = `resolve-${a.id}`;
  resolveButton.setAttribute("aria-controls", form.id);
  const noteLabel = q(".resolve-label");
  noteLabel.textContent = tr("处理说明（必填）", "What was done (required)");
  noteLabel.setAttribute("for", note.id);
  q(".resolve-submit").textContent = tr("确认办结", "Resolve");
  q(".resolve-cancel").textContent = tr("取消", "Cancel");
  resolveButton.addEventListener("click", () => {
    form.hidden = false;
    resolveButton.setAttribute("aria-expanded", "true");
    note.focus();
  });
  q(".resolve-cancel").addEventListener("click", () => {
    form.hidden = true;
    resolveButton.setAttribute("aria-expanded", "false");
    resolveButton.focus();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = note.value.trim();
    if (!text) {
      q(".resolve-error").textContent = label(ERRORS.note_required, "");
      note.focus();
      return;
    }
    act(a.id, "resolve", { note: text }, /** @type {HTMLButtonElement} */ (q(".resolve-submit")),
      q(".resolve-error"));
  });
  return li;
}

/**
 * Acknowledge or resolve; the answer (and the `wall.alert` push) update the list.
 * @param {number} id @param {"ack" | "resolve"} action @param {unknown} body
 * @param {HTMLButtonElement} button @param {HTMLElement} [errorBox]
 */
async function act(id, action, body, button, errorBox) {
  button.disabled = true;
  try {
    const data = await requestJson("POST", `/api/supervise/alerts/${id}/${action}`, body);
    upsert(data.alert, false);
    announce(action === "ack" ? tr("已签收。", "Acknowledged.") : tr("已办结。", "Resolved."));
    $("alert-list").focus();
  } catch (error) {
    button.disabled = false;
    const text = errorText(error);
    if (errorBox) errorBox.textContent = text;
    else announce(text);
    if (/** @type {any} */ (error).code === "invalid_transition") await load();
  }
}

/** @param {string} text */
function announce(text) {
  $("alert-announce").textContent = text;
}

function render() {
  const list = $("alert-list");
  const shown = [...alerts.values()].filter(matches).sort((x, y) => y.id - x.id);
  // Keep a half-written note across a live re-render.
  /** @type {Map<number, string>} */
  const drafts = new Map();
  for (const form of list.querySelectorAll(".resolve-form:not([hidden])")) {
    const li = /** @type {HTMLElement} */ (form.closest(".alert-item"));
    drafts.set(Number(li.dataset.alertId), /** @type {HTMLTextAreaElement} */ (form.querySelector("textarea")).value);
  }
  list.replaceChildren(...shown.map(card));
  for (const [id, text] of drafts) {
    const li = list.querySelector(`[data-alert-id="${id}"]`);
    const form = /** @type {HTMLFormElement | null} */ (li?.querySelector(".resolve-form") ?? null);
    if (form && li?.getAttribute("data-status") !== "resolved") {
      form.hidden = false;
      /** @type {HTMLTextAreaElement} */ (form.querySelector("textarea")).value = text;
      li?.querySelector(".resolve-button")?.setAttribute("aria-expanded", "true");
    }
  }
  $("alert-empty").hidden = shown.length > 0 || !loaded;
  $("filter-result").textContent = loaded ? tr(`共 ${shown.length} 条`, `${shown.length} shown`) : "";
  renderCounts();
  document.body.dataset.alertsLoaded = String(loaded);
}

/** @param {Alert} a @param {boolean} live */
function upsert(a, live) {
  const before = alerts.get(a.id);
  if (before?.status !== "resolved" && before) counts[before.kind] -= 1;
  if (a.status !== "resolved") counts[a.kind] += 1;
  alerts.set(a.id, a);
  if (live && !before) {
    fresh.add(a.id);
    if (matches(a)) announce(tr(`新预警：${label(KIND[a.kind], a.kind)}，${a.message}`,
      `New alert: ${label(KIND[a.kind], a.kind)}, ${a.message}`));
  }
  render();
}

// ------------------------------------------------------------------ live updates

/** @param {"connecting" | "live" | "down"} state */
function liveState(state) {
  $("live-state").dataset.state = state;
  $("live-text").textContent = {
    connecting: tr("正在连接实时推送…", "Connecting to live updates…"),
    live: tr("实时更新中", "Live"),
    down: tr("实时推送中断，正在重连…", "Live updates lost; reconnecting…"),
  }[state];
  document.body.dataset.live = state;
}

async function connect() {
  try {
    const client = await ProtocolClient.connect("supervisor");
    client.on("wall.alert", (m) => upsert(/** @type {Alert} */ (m.alert), true));
    client.on("reconnecting", () => liveState("down"));
    client.on("reconnected", () => { liveState("live"); load(); }); // pushes missed while away
    client.on("closed", () => liveState("down"));
    liveState("live");
  } catch {
    liveState("down");
  }
}

// ------------------------------------------------------------------ rules

/** @param {HTMLSelectElement} select @param {boolean} inherit */
function levelOptions(select, inherit) {
  if (inherit) select.append(new Option(tr("沿用全局", "Global rule"), ""));
  for (const [value, zh, en] of LEVELS) select.append(new Option(`${value ? `${value} · ` : ""}${tr(String(zh), String(en))}`, String(value)));
}

/** @param {any} doc */
function renderRules(doc) {
  const g = /** @type {Rules} */ (doc.global);
  const summary = document.getElementById("rules-summary");
  if (summary) {
    summary.replaceChildren();
    fact(summary, tr("黄色预警", "Yellow"), tr(`办理时限前 ${g.yellow_days} 个工作日内`, `within ${g.yellow_days} working days of the deadline`));
    fact(summary, tr("红色预警", "Red"), g.red_enabled ? tr("超期即预警", "when overdue") : tr("已关闭", "off"));
    const level = LEVELS.find((l) => l[0] === g.blue_max_level);
    fact(summary, tr("蓝色预警", "Blue"), g.blue_max_level ? tr(`评价为“${level?.[1]}”及以下，或投诉`, `ratings of “${level?.[2]}” or lower, or a complaint`)
      : tr("仅投诉", "complaints only"));
  }
  const form = /** @type {HTMLFormElement | null} */ (document.getElementById("rules-global"));
  if (!form) return;
  /** @type {HTMLInputElement} */ (form.elements.namedItem("yellow_days")).value = String(g.yellow_days);
  /** @type {HTMLInputElement} */ (form.elements.namedItem("red_enabled")).checked = g.red_enabled;
  /** @type {HTMLSelectElement} */ (form.elements.namedItem("blue_max_level")).value = String(g.blue_max_level);
  const body = $("rules-items");
  // Items with an override first, so what differs from the global rules is in view.
  const items = [...doc.items].sort((x, y) => Number(y.override !== null) - Number(x.override !== null));
  body.replaceChildren(...items.map(itemRow));
  const overridden = items.filter((i) => i.override !== null).length;
  $("override-count").textContent = tr(`（${overridden} 项单独设置）`, `(${overridden} with their own rules)`);
  filterRules();
}

function filterRules() {
  const search = /** @type {HTMLInputElement | null} */ (document.getElementById("rules-search"));
  const needle = (search?.value ?? "").trim().toLowerCase();
  for (const row of document.querySelectorAll("#rules-items tr")) {
    /** @type {HTMLElement} */ (row).hidden = needle !== "" && !(row.textContent ?? "").toLowerCase().includes(needle);
  }
}

/** @param {any} item */
function itemRow(item) {
  const o = /** @type {Override} */ (item.override ?? { yellow_days: null, red_enabled: null, blue_max_level: null });
  const tr_ = document.createElement("tr");
  tr_.dataset.item = item.item_code;
  if (item.override !== null) tr_.classList.add("overridden");
  const name = EN ? item.name_en : item.name_zh;
  const th = document.createElement("th");
  th.scope = "row";
  th.innerHTML = "";
  const strong = document.createElement("span");
  strong.className = "item-name";
  strong.textContent = name;
  const code = document.createElement("span");
  code.className = "item-code";
  code.textContent = `${item.item_code} · ${tr(`时限 ${item.time_limit_days} 个工作日`, `${item.time_limit_days} working days`)}`;
  th.append(strong, code);
  const id = `rule-${item.item_code}`;
  const yellow = document.createElement("input");
  yellow.type = "number"; yellow.min = "0"; yellow.max = "30"; yellow.step = "1"; yellow.id = `${id}-yellow`;
  yellow.placeholder = tr(`全局 ${item.effective.yellow_days}`, `global`);
  yellow.value = o.yellow_days === null ? "" : String(o.yellow_days);
  yellow.setAttribute("aria-label", `${name}：${tr("黄色预警工作日，留空沿用全局", "yellow working days, blank for the global rule")}`);
  const red = document.createElement("select");
  red.id = `${id}-red`;
  red.append(new Option(tr("沿用全局", "Global rule"), ""), new Option(tr("开启", "On"), "true"), new Option(tr("关闭", "Off"), "false"));
  red.value = o.red_enabled === null ? "" : String(o.red_enabled);
  red.setAttribute("aria-label", `${name}：${tr("红色预警", "red alerts")}`);
  const blue = document.createElement("select");
  blue.id = `${id}-blue`;
  levelOptions(blue, true);
  blue.value = o.blue_max_level === null ? "" : String(o.blue_max_level);
  blue.setAttribute("aria-label", `${name}：${tr("蓝色预警评价等级", "blue alert rating level")}`);
  const save = document.createElement("button");
  save.type = "button";
  save.className = "btn btn-secondary";
  save.textContent = tr("保存", "Save");
  save.setAttribute("aria-label", `${tr("保存", "Save")} ${name}`);
  const status = document.createElement("span");
  status.className = "rules-status";
  status.setAttribute("role", "status");
  save.addEventListener("click", async () => {
    const body = {
      yellow_days: yellow.value === "" ? null : Number(yellow.value),
      red_enabled: red.value === "" ? null : red.value === "true",
      blue_max_level: blue.value === "" ? null : Number(blue.value),
    };
    await saveRules(`/api/supervise/alert-rules/items/${encodeURIComponent(item.item_code)}`, body, item.item_code);
  });
  const cells = [th, yellow, red, blue].map((node, i) => {
    if (i === 0) return node;
    const td = document.createElement("td");
    td.append(node);
    return td;
  });
  const last = document.createElement("td");
  last.append(save, status);
  tr_.append(...cells, last);
  return tr_;
}

/** The status line of the global form, or of an item's row (rows are rebuilt on every save). @param {string | null} item */
function rulesStatus(item) {
  if (item === null) return $("rules-global-status");
  return /** @type {HTMLElement} */ (document.querySelector(`#rules-items tr[data-item="${CSS.escape(item)}"] .rules-status`));
}

/** @param {string} path @param {unknown} body @param {string | null} item the item code, null for the global rules */
async function saveRules(path, body, item) {
  const status = rulesStatus(item);
  status.textContent = tr("保存中…", "Saving…");
  status.dataset.tone = "info";
  try {
    renderRules(await requestJson("PUT", path, body));
    const box = rulesStatus(item);
    box.textContent = tr("已保存，立即生效。", "Saved; in force now.");
    box.dataset.tone = "ok";
  } catch (error) {
    const message = /** @type {any} */ (error).message;
    status.textContent = errorText(error) + (message ? ` (${message})` : "");
    status.dataset.tone = "error";
  }
}

async function loadRules() {
  try {
    renderRules(await requestJson("GET", "/api/supervise/alert-rules"));
  } catch (error) {
    $("rules").append(Object.assign(document.createElement("p"), { className: "alerts-error", textContent: errorText(error) }));
  }
}

function setupRules() {
  const form = /** @type {HTMLFormElement | null} */ (document.getElementById("rules-global"));
  if (form) {
    levelOptions(/** @type {HTMLSelectElement} */ (form.elements.namedItem("blue_max_level")), false);
    document.getElementById("rules-search")?.addEventListener("input", filterRules);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const body = {
        yellow_days: Number(/** @type {HTMLInputElement} */ (form.elements.namedItem("yellow_days")).value),
        red_enabled: /** @type {HTMLInputElement} */ (form.elements.namedItem("red_enabled")).checked,
        blue_max_level: Number(/** @type {HTMLSelectElement} */ (form.elements.namedItem("blue_max_level")).value),
      };
      saveRules("/api/supervise/alert-rules/global", body, null);
    });
  }
  loadRules();
}

// ------------------------------------------------------------------ start

$("alert-list").tabIndex = -1;
$("alert-filters").addEventListener("change", () => load());
$("alert-filters").addEventListener("submit", (event) => event.preventDefault());
for (const button of document.querySelectorAll(".summary-card")) {
  button.addEventListener("click", () => {
    const kind = /** @type {HTMLElement} */ (button).dataset.kind ?? "";
    const select = /** @type {HTMLSelectElement} */ ($("filter-kind"));
    select.value = select.value === kind ? "" : kind;
    /** @type {HTMLSelectElement} */ ($("filter-status")).value = "active";
    load();
  });
}
setupRules();
connect().then(load); // subscribe first, then list: nothing raised in between is missed
