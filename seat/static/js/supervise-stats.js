// @ts-check
/**
 * 统计分析 page: reads the filters, fetches /api/supervise/stats, and draws the key figures, three
 * small inline-SVG charts (grouped bars per period, lines of service level and satisfaction, bars
 * per group) and the table.  No chart library: a few functions that write SVG elements.
 *
 * @typedef {{period: string|null, period_start: string|null, group: string|null, label_zh: string,
 *   label_en: string, offered: number, answered: number, abandoned: number, answered_within: number,
 *   service_level: number|null, wait_avg_s: number|null, wait_p90_s: number|null,
 *   abandon_wait_avg_s: number|null, handle_avg_s: number|null, cases_accepted: number,
 *   cases_refused: number, cases_supplement: number, rated: number, satisfied_share: number|null,
 *   dissatisfied: number, booths_active: number, booth_busy_s: number}} Row
 * @typedef {{query: Record<string, any>, csv_url: string, rows: Row[], periods: Row[], groups: Row[], total: Row}} Report
 */

const EN = document.documentElement.lang === "en";
/** @param {string} zh @param {string} en */
const tr = (zh, en) => (EN ? en : zh);
const SVG_NS = "http://www.w3.org/2000/svg";

/** @type {Record<string, [string, string]>} */
const ERRORS = {
  invalid_date: ["日期格式应为 年-月-日。", "Dates must be YYYY-MM-DD."],
  invalid_range: ["结束日期早于开始日期。", "The end date is before the start date."],
  range_too_long: ["一次最多统计 366 天。", "At most 366 days at a time."],
  invalid_period: ["统计周期无效。", "Unknown period."],
  invalid_group: ["分组方式无效。", "Unknown grouping."],
  invalid_threshold: ["服务水平时限应为 1 到 600 秒的整数。", "The service-level threshold must be a whole number of 1 to 600 seconds."],
  network: ["无法连接服务器，请稍后重试。", "Cannot reach the server; try again."],
};

const SERIES = {
  offered: { label: tr("呼入", "Offered"), css: "s-offered" },
  answered: { label: tr("接通", "Answered"), css: "s-answered" },
  abandoned: { label: tr("放弃", "Abandoned"), css: "s-abandoned" },
  waiting: { label: tr("仍在排队", "Still waiting"), css: "s-waiting" },
  service_level: { label: tr("服务水平", "Service level"), css: "s-sl" },
  satisfied_share: { label: tr("满意率", "Satisfied"), css: "s-sat" },
};

const page = /** @type {HTMLElement} */ (document.getElementById("stats-page"));
const form = /** @type {HTMLFormElement} */ (document.getElementById("stats-filters"));
const errorBox = /** @type {HTMLElement} */ (document.getElementById("stats-error"));
const statusLine = /** @type {HTMLElement} */ (document.getElementById("stats-status"));
const csvLink = /** @type {HTMLAnchorElement} */ (document.getElementById("csv-link"));

// --------------------------------------------------------------------------- formatting

/** @param {number|null} v */
const pct = (v) => (v === null || v === undefined ? "–" : `${(v * 100).toFixed(1)}%`);
/** @param {number|null} v */
const secs = (v) => (v === null || v === undefined ? "–" : v.toFixed(1));
/** @param {number} v */
const count = (v) => v.toLocaleString(EN ? "en" : "zh-CN");
/** @param {number|null} v  seconds as "27.9秒" under a minute, "2分05秒" / "2 min 05 s" above */
function duration(v) {
  if (v === null || v === undefined) return "–";
  if (v < 59.95) return tr(`${v.toFixed(1)}秒`, `${v.toFixed(1)} s`);
  const whole = Math.round(v);
  const m = Math.floor(whole / 60), s = whole % 60;
  return tr(`${m}分${String(s).padStart(2, "0")}秒`, `${m} min ${String(s).padStart(2, "0")} s`);
}
/** @param {Row} row */
const label = (row) => (EN ? row.label_en : row.label_zh);

// --------------------------------------------------------------------------- SVG helpers

/**
 * @param {string} tag
 * @param {Record<string, string|number>} [attrs]
 * @param {string} [text]
 * @returns {SVGElement}
 */
function svg(tag, attrs = {}, text) {
  const el = /** @type {SVGElement} */ (document.createElementNS(SVG_NS, tag));
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** A round upper bound for an axis: 1, 2 or 5 times a power of ten. @param {number} max */
function niceMax(max) {
  if (max <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  return ([1, 2, 5, 10].map((m) => m * p).find((m) => m >= max)) ?? max;
}

/** An <svg role=img> with its accessible name and a <title>. @param {number} w @param {number} h @param {string} name */
function frame(w, h, name) {
  const root = svg("svg", { viewBox: `0 0 ${w} ${h}`, role: "img", "aria-label": name, preserveAspectRatio: "xMidYMid meet" });
  root.append(svg("title", {}, name));
  return root;
}

/** Horizontal grid lines with value labels. */
function yAxis(/** @type {SVGElement} */ root, /** @type {{x0:number,x1:number,y0:number,y1:number}} */ box,
  /** @type {number} */ max, /** @type {(v:number)=>string} */ fmt) {
  for (let i = 0; i <= 4; i += 1) {
    const v = (max * i) / 4;
    const y = box.y1 - ((box.y1 - box.y0) * i) / 4;
    root.append(svg("line", { x1: box.x0, x2: box.x1, y1: y, y2: y, class: i === 0 ? "axis" : "grid" }));
    root.append(svg("text", { x: box.x0 - 6, y: y + 4, class: "tick", "text-anchor": "end" }, fmt(v)));
  }
}

/** Period labels under the plot, thinned so they never overlap. */
function xLabels(/** @type {SVGElement} */ root, /** @type {string[]} */ labels,
  /** @type {(i:number)=>number} */ xOf, /** @type {number} */ y, /** @type {number} */ slot) {
  const step = Math.max(1, Math.ceil(62 / Math.max(slot, 1)));
  labels.forEach((text, i) => {
    if (i % step !== 0) return;
    const short = text.length === 10 ? text.slice(5) : text; // 2026-03-02 -> 03-02
    root.append(svg("text", { x: xOf(i), y, class: "tick", "text-anchor": "middle" }, short));
  });
}

/** A legend of the series drawn, as HTML under the chart. @param {(keyof typeof SERIES)[]} keys */
function legend(keys) {
  const ul = document.createElement("ul");
  ul.className = "legend";
  for (const key of keys) {
    const li = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = `swatch ${SERIES[key].css}`;
    swatch.setAttribute("aria-hidden", "true");
    li.append(swatch, SERIES[key].label);
    ul.append(li);
  }
  return ul;
}

/**
 * Grouped bars: for every period one bar per series.
 * @param {Row[]} periods @param {("offered"|"answered"|"abandoned")[]} keys @param {string} name
 */
function groupedBars(periods, keys, name) {
  const W = 640, H = 250, box = { x0: 40, x1: W - 6, y0: 12, y1: H - 28 };
  const root = frame(W, H, name);
  const max = niceMax(Math.max(0, ...periods.flatMap((p) => keys.map((k) => p[k]))));
  yAxis(root, box, max, (v) => String(Math.round(v)));
  const slot = (box.x1 - box.x0) / Math.max(periods.length, 1);
  const barW = Math.max(1.5, (slot * 0.8) / keys.length);
  periods.forEach((p, i) => {
    keys.forEach((key, j) => {
      const v = p[key];
      const h = ((box.y1 - box.y0) * v) / max;
      const x = box.x0 + slot * i + slot * 0.1 + barW * j;
      const rect = svg("rect", { x: x.toFixed(2), y: (box.y1 - h).toFixed(2), width: barW.toFixed(2), height: h.toFixed(2),
        class: `bar ${SERIES[key].css}`, "data-series": key, "data-period": p.period ?? "", "data-value": v });
      rect.append(svg("title", {}, `${p.period} ${SERIES[key].label}: ${v}`));
      root.append(rect);
    });
  });
  xLabels(root, periods.map((p) => p.period ?? ""), (i) => box.x0 + slot * (i + 0.5), H - 10, slot);
  return root;
}

/**
 * Lines of shares (0..100 %) per period.
 * @param {Row[]} periods @param {("service_level"|"satisfied_share")[]} keys @param {string} name
 */
function shareLines(periods, keys, name) {
  const W = 330, H = 250, box = { x0: 44, x1: W - 10, y0: 12, y1: H - 28 };
  const root = frame(W, H, name);
  yAxis(root, box, 1, (v) => `${Math.round(v * 100)}%`);
  const slot = (box.x1 - box.x0) / Math.max(periods.length, 1);
  const xOf = (/** @type {number} */ i) => box.x0 + slot * (i + 0.5);
  const yOf = (/** @type {number} */ v) => box.y1 - (box.y1 - box.y0) * v;
  for (const key of keys) {
    // Periods without calls (weekends) are skipped: the line joins the periods that have a value.
    let d = "";
    periods.forEach((p, i) => {
      const v = p[key];
      if (v === null) return;
      d += `${d ? "L" : "M"}${xOf(i).toFixed(2)},${yOf(v).toFixed(2)}`;
    });
    if (d) root.append(svg("path", { d, class: `line ${SERIES[key].css}`, fill: "none" }));
    periods.forEach((p, i) => {
      const v = p[key];
      if (v === null) return;
      const dot = svg(key === "service_level" ? "circle" : "rect",
        key === "service_level" ? { cx: xOf(i).toFixed(2), cy: yOf(v).toFixed(2), r: 3.5 }
          : { x: (xOf(i) - 3.5).toFixed(2), y: (yOf(v) - 3.5).toFixed(2), width: 7, height: 7 });
      dot.setAttribute("class", `dot ${SERIES[key].css}`);
      dot.setAttribute("data-series", key);
      dot.setAttribute("data-period", p.period ?? "");
      dot.setAttribute("data-value", String(v));
      dot.append(svg("title", {}, `${p.period} ${SERIES[key].label}: ${pct(v)}`));
      root.append(dot);
    });
  }
  xLabels(root, periods.map((p) => p.period ?? ""), xOf, H - 10, slot);
  return root;
}

/**
 * Horizontal stacked bars per group: answered, abandoned, the rest (still waiting) as the remainder.
 * @param {Row[]} groups @param {string} name
 */
function groupBars(groups, name) {
  const shown = groups.slice(0, 12);
  // Label column as wide as the longest name (CJK characters count double), within limits.
  const width = (/** @type {string} */ t) => [...t].reduce((n, c) => n + (c.charCodeAt(0) > 0x2e80 ? 13 : 7.5), 0);
  const rowH = 26, W = 320, labelW = Math.min(130, Math.max(40, ...shown.map((g) => width(label(g))))) + 8;
  const H = Math.max(60, shown.length * rowH + 12);
  const root = frame(W, H, name);
  const max = niceMax(Math.max(0, ...shown.map((g) => g.offered)));
  const plotW = W - labelW - 34;
  shown.forEach((g, i) => {
    const y = 8 + i * rowH;
    const text = label(g);
    const name_ = svg("text", { x: labelW - 6, y: y + 15, class: "tick group-label", "text-anchor": "end" },
      width(text) > 130 ? `${[...text].slice(0, 9).join("")}…` : text);
    name_.append(svg("title", {}, text));
    root.append(name_);
    let x = labelW;
    for (const key of /** @type {const} */ (["answered", "abandoned"])) {
      const w = (plotW * g[key]) / max;
      const rect = svg("rect", { x: x.toFixed(2), y, width: w.toFixed(2), height: rowH - 9, class: `bar ${SERIES[key].css}`,
        "data-series": key, "data-group": g.group ?? "", "data-value": g[key] });
      rect.append(svg("title", {}, `${text} ${SERIES[key].label}: ${g[key]}`));
      root.append(rect);
      x += w;
    }
    const rest = g.offered - g.answered - g.abandoned;
    if (rest > 0) root.append(svg("rect", { x: x.toFixed(2), y, width: ((plotW * rest) / max).toFixed(2), height: rowH - 9, class: "bar s-waiting" }));
    const total = svg("text", { x: labelW + (plotW * g.offered) / max + 4, y: y + 13, class: "tick value",
      "data-series": "offered", "data-group": g.group ?? "", "data-value": g.offered }, String(g.offered));
    root.append(total);
  });
  return root;
}

// --------------------------------------------------------------------------- rendering

/** @param {Report} data */
function renderCharts(data) {
  const calls = /** @type {HTMLElement} */ (document.getElementById("chart-calls"));
  calls.replaceChildren(groupedBars(data.periods, ["offered", "answered", "abandoned"],
    tr("各时段呼入、接通与放弃的通话数", "Calls offered, answered and abandoned per period")),
  legend(["offered", "answered", "abandoned"]));
  const rates = /** @type {HTMLElement} */ (document.getElementById("chart-rates"));
  rates.replaceChildren(shareLines(data.periods, ["service_level", "satisfied_share"],
    tr("各时段服务水平与满意率", "Service level and satisfaction per period")),
  legend(["service_level", "satisfied_share"]));
  const groups = /** @type {HTMLElement} */ (document.getElementById("chart-groups"));
  if (data.query.by === "none") {
    const hint = document.createElement("p");
    hint.className = "chart-hint";
    hint.textContent = tr("选择“分组”后在此对比各晓屋、镇街、人员或事项。", "Choose a grouping to compare booths, regions, clerks or items here.");
    groups.replaceChildren(hint);
  } else {
    const waiting = data.groups.some((g) => g.offered > g.answered + g.abandoned);
    groups.replaceChildren(groupBars(data.groups, tr("各分组的接通与放弃", "Answered and abandoned per group")),
      legend(waiting ? ["answered", "abandoned", "waiting"] : ["answered", "abandoned"]));
  }
}

/** @param {Row} t */
function renderKpis(t) {
  /** @param {string} key @param {string} value @param {string} sub @param {string|number} raw */
  const put = (key, value, sub, raw) => {
    const card = /** @type {HTMLElement} */ (document.querySelector(`[data-kpi="${key}"]`));
    /** @type {HTMLElement} */ (card.querySelector(".kpi-value")).textContent = value;
    /** @type {HTMLElement} */ (card.querySelector(".kpi-sub")).textContent = sub;
    card.dataset.value = String(raw);
  };
  const threshold = /** @type {HTMLInputElement} */ (document.getElementById("f-threshold")).value;
  put("offered", count(t.offered), tr(`使用晓屋 ${t.booths_active} 个`, `${t.booths_active} booths used`), t.offered);
  put("answered", count(t.answered), tr(`接通率 ${pct(t.offered ? t.answered / t.offered : null)}`,
    `${pct(t.offered ? t.answered / t.offered : null)} of offered`), t.answered);
  put("abandoned", count(t.abandoned), tr(`放弃前等待 ${duration(t.abandon_wait_avg_s)}`,
    `waited ${duration(t.abandon_wait_avg_s)} on average`), t.abandoned);
  put("service_level", pct(t.service_level), tr(`${threshold}秒内接通 ${t.answered_within} 个`,
    `${t.answered_within} answered within ${threshold} s`), t.service_level ?? "");
  put("wait", duration(t.wait_avg_s), tr(`90%等待 ${duration(t.wait_p90_s)}`, `P90 ${duration(t.wait_p90_s)}`), t.wait_avg_s ?? "");
  put("handle", duration(t.handle_avg_s), tr(`晓屋占用 ${(t.booth_busy_s / 3600).toFixed(1)} 小时`,
    `booths busy ${(t.booth_busy_s / 3600).toFixed(1)} h`), t.handle_avg_s ?? "");
  put("satisfied", pct(t.satisfied_share), tr(`评价 ${t.rated} 条，不满意 ${t.dissatisfied} 条`,
    `${t.rated} ratings, ${t.dissatisfied} dissatisfied`), t.satisfied_share ?? "");
  put("cases", `${t.cases_accepted} / ${t.cases_refused} / ${t.cases_supplement}`,
    tr(`办件 ${t.cases_accepted + t.cases_refused + t.cases_supplement} 件`,
      `${t.cases_accepted + t.cases_refused + t.cases_supplement} cases`), t.cases_accepted);
}

/** @type {[string, (r: Row) => string, (r: Row) => string|number|null][]} */
const COLUMNS = [
  ["offered", (r) => count(r.offered), (r) => r.offered],
  ["answered", (r) => count(r.answered), (r) => r.answered],
  ["abandoned", (r) => count(r.abandoned), (r) => r.abandoned],
  ["service_level", (r) => pct(r.service_level), (r) => r.service_level],
  ["wait_avg_s", (r) => secs(r.wait_avg_s), (r) => r.wait_avg_s],
  ["wait_p90_s", (r) => secs(r.wait_p90_s), (r) => r.wait_p90_s],
  ["abandon_wait_avg_s", (r) => secs(r.abandon_wait_avg_s), (r) => r.abandon_wait_avg_s],
  ["handle_avg_s", (r) => secs(r.handle_avg_s), (r) => r.handle_avg_s],
  ["cases_accepted", (r) => count(r.cases_accepted), (r) => r.cases_accepted],
  ["cases_refused", (r) => count(r.cases_refused), (r) => r.cases_refused],
  ["cases_supplement", (r) => count(r.cases_supplement), (r) => r.cases_supplement],
  ["rated", (r) => count(r.rated), (r) => r.rated],
  ["satisfied_share", (r) => pct(r.satisfied_share), (r) => r.satisfied_share],
  ["dissatisfied", (r) => count(r.dissatisfied), (r) => r.dissatisfied],
  ["booths_active", (r) => count(r.booths_active), (r) => r.booths_active],
  ["booth_busy_s", (r) => (r.booth_busy_s / 60).toFixed(1), (r) => r.booth_busy_s],
];

/** @param {Row} r @param {boolean} grouped @param {boolean} total */
function tableRow(r, grouped, total) {
  const tr_ = document.createElement("tr");
  tr_.dataset.period = r.period ?? "total";
  tr_.dataset.group = r.group ?? "";
  const head = document.createElement("th");
  head.scope = "row";
  head.textContent = total ? tr("合计", "Total") : (r.period ?? "");
  tr_.append(head);
  if (grouped) {
    const g = document.createElement("td");
    g.className = "col-group";
    g.textContent = total ? "" : label(r);
    tr_.append(g);
  }
  for (const [key, show, raw] of COLUMNS) {
    const td = document.createElement("td");
    td.dataset.col = key;
    const value = raw(r);
    td.dataset.value = value === null ? "" : String(value);
    td.textContent = show(r);
    tr_.append(td);
  }
  return tr_;
}

/** @param {Report} data */
function renderTable(data) {
  const grouped = data.query.by !== "none";
  for (const cell of document.querySelectorAll("#stats-table .col-group")) /** @type {HTMLElement} */ (cell).hidden = !grouped;
  const body = /** @type {HTMLElement} */ (document.getElementById("stats-rows"));
  body.replaceChildren(...data.rows.map((r) => tableRow(r, grouped, false)));
  const foot = /** @type {HTMLElement} */ (document.getElementById("stats-total"));
  foot.replaceChildren(tableRow(data.total, grouped, true));
  /** @type {HTMLElement} */ (document.getElementById("stats-empty")).hidden = data.rows.length > 0;
}

/** @param {Report} data */
function render(data) {
  renderKpis(data.total);
  renderCharts(data);
  renderTable(data);
  csvLink.href = data.csv_url;
  page.dataset.by = data.query.by;
  page.dataset.period = data.query.period;
  page.dataset.from = data.query.from;
  page.dataset.to = data.query.to;
  statusLine.textContent = tr(`已更新：${data.query.from} 至 ${data.query.to}，${data.rows.length} 行。`,
    `Updated: ${data.query.from} to ${data.query.to}, ${data.rows.length} rows.`);
}

// --------------------------------------------------------------------------- loading

/** @param {string} code */
function showError(code) {
  const pair = ERRORS[code];
  errorBox.textContent = pair ? tr(pair[0], pair[1]) : tr(`查询失败（${code}）。`, `The query failed (${code}).`);
  errorBox.dataset.code = code;
  errorBox.hidden = false;
}

function params() {
  const p = new URLSearchParams();
  for (const [k, v] of new FormData(form)) p.set(k, String(v));
  return p;
}

let generation = 0;
// A refusal of the page's own URL (shown by the server above the defaults) stays until the next query.
let keepServerError = !errorBox.hidden;

async function load() {
  const mine = ++generation;
  const query = params();
  page.dataset.state = "loading";
  let response;
  try {
    response = await fetch(`/api/supervise/stats?${query}`, { credentials: "same-origin", headers: { accept: "application/json" } });
  } catch {
    if (mine === generation) { showError("network"); page.dataset.state = "error"; }
    return;
  }
  const body = await response.json().catch(() => ({}));
  if (mine !== generation) return; // a newer query is on its way
  if (!response.ok) {
    showError(body?.error?.code ?? String(response.status));
    page.dataset.state = "error";
    return;
  }
  if (!keepServerError) errorBox.hidden = true;
  keepServerError = false;
  history.replaceState(null, "", `?${query}`);
  render(/** @type {Report} */ (body));
  page.dataset.state = "ready";
}

/** Dates of a quick range, from the server's "today" in the configured time zone. @param {string} range */
function quickRange(range) {
  const today = new Date(`${form.dataset.today}T00:00:00Z`);
  const iso = (/** @type {Date} */ d) => d.toISOString().slice(0, 10);
  const shift = (/** @type {number} */ days) => new Date(today.getTime() - days * 86400000);
  if (range === "month") return [iso(new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), 1))), iso(today)];
  if (range === "last-month") {
    return [iso(new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth() - 1, 1))),
      iso(new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), 0)))];
  }
  return [iso(shift(Number(range) - 1)), iso(today)];
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (form.reportValidity()) load();
});
for (const id of ["f-period", "f-by"]) {
  /** @type {HTMLElement} */ (document.getElementById(id)).addEventListener("change", () => form.requestSubmit());
}
for (const button of form.querySelectorAll("[data-range]")) {
  button.addEventListener("click", () => {
    const [from, to] = quickRange(/** @type {HTMLElement} */ (button).dataset.range ?? "7");
    /** @type {HTMLInputElement} */ (document.getElementById("f-from")).value = from;
    /** @type {HTMLInputElement} */ (document.getElementById("f-to")).value = to;
    form.requestSubmit();
  });
}

load();
