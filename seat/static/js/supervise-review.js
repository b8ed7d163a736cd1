// Session review pages: the list's filters (refreshed in place from /api/supervise/sessions) and, on one
// session's page, the synchronised player, the clickable time line and the materials viewer.
//
// Time: every recording of a session is stamped from the call's answer, and Chromium keeps a WebM's own
// timestamps, so a media element's currentTime t is the moment answered_at + t. One clock for all tracks: the
// master element (the one covering the segment longest) plays, the others follow it and are re-aligned when
// they drift more than SYNC_TOLERANCE_S. A player's source is set only when the user plays or seeks: that
// request starts the playback the server logs (`recording.played`).

const SYNC_TOLERANCE_S = 0.2;
const SYNC_EVERY_MS = 250;

/** @param {string} id */
function readJson(id) {
  const node = document.getElementById(id);
  return node ? JSON.parse(node.textContent || "null") : null;
}

/** m:ss (h:mm:ss past an hour). @param {number} seconds */
export function clock(seconds) {
  const whole = Math.max(0, Math.floor(seconds || 0));
  const h = Math.floor(whole / 3600), m = Math.floor((whole % 3600) / 60), s = whole % 60;
  const ss = String(s).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

// ------------------------------------------------------------------------------------------ the list

function initList() {
  const form = /** @type {HTMLFormElement | null} */ (document.getElementById("review-filters"));
  const body = document.getElementById("sessions-body");
  const template = /** @type {HTMLTemplateElement | null} */ (document.getElementById("row-template"));
  if (!form || !body || !template) return;
  const i18n = readJson("review-i18n");
  const en = i18n.lang === "en";
  const pick = (/** @type {[string, string]} */ pair) => (en ? pair[1] : pair[0]);
  const when = new Intl.DateTimeFormat("sv-SE", {
    timeZone: i18n.zone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });
  const error = /** @type {HTMLElement} */ (document.getElementById("review-error"));
  const count = /** @type {HTMLElement} */ (document.getElementById("results-count"));
  const empty = /** @type {HTMLElement} */ (document.getElementById("sessions-empty"));
  const prev = /** @type {HTMLAnchorElement} */ (document.getElementById("page-prev"));
  const next = /** @type {HTMLAnchorElement} */ (document.getElementById("page-next"));
  const info = /** @type {HTMLElement} */ (document.getElementById("page-info"));

  /** @param {number} page */
  function params(page) {
    const out = new URLSearchParams();
    for (const [name, value] of new FormData(form)) {
      if (typeof value === "string" && value.trim()) out.set(name, value.trim());
    }
    if (page > 1) out.set("page", String(page));
    return out;
  }

  /** @param {any} row */
  function render(row) {
    const tr = /** @type {HTMLElement} */ (template.content.firstElementChild.cloneNode(true));
    const f = (/** @type {string} */ name) => /** @type {HTMLElement} */ (tr.querySelector(`[data-f="${name}"]`));
    tr.dataset.callId = row.call_id;
    const queued = when.format(new Date(row.queued_at));
    f("time").textContent = queued;
    f("booth").textContent = row.booth.name;
    f("region").textContent = en ? row.region.name_en : row.region.name_zh;
    f("item").textContent = en ? row.item.name_en : row.item.name_zh;
    f("clerk").textContent = row.clerk ? row.clerk.display_name : "—";
    f("duration").textContent = row.duration_s == null ? "—" : clock(row.duration_s);
    const outcome = f("outcome");
    const badge = (/** @type {string} */ cls, /** @type {string} */ code) => {
      const span = document.createElement("span");
      span.className = `badge ${cls}-${code}`;
      span.textContent = pick(i18n.outcomes[code] || [code, code]);
      outcome.append(span, " ");
    };
    badge("status", row.status);
    if (row.case) badge("case", row.case.status);
    const rating = f("rating");
    if (row.rating) {
      rating.innerHTML = "";
      const span = document.createElement("span");
      span.className = `rating-level level-${row.rating}`;
      span.textContent = `${row.rating}/5 · ${pick(i18n.ratings[row.rating])}`;
      rating.append(span);
    } else {
      rating.innerHTML = `<span class="hint"></span>`;
      /** @type {HTMLElement} */ (rating.firstElementChild).textContent = i18n.not_rated;
    }
    const alerts = f("alerts");
    alerts.innerHTML = row.alerts ? `<span class="badge badge-alert"></span>` : `<span class="hint">—</span>`;
    if (row.alerts) /** @type {HTMLElement} */ (alerts.firstElementChild).textContent = String(row.alerts);
    const link = /** @type {HTMLAnchorElement} */ (f("link"));
    link.href = `/supervise/sessions/${row.call_id}`;
    f("link-label").textContent = ` ${row.booth.name} ${queued}`;
    return tr;
  }

  /** @param {number} page */
  async function load(page) {
    const query = params(page);
    const response = await fetch(`/api/supervise/sessions?${query}`, { headers: { accept: "application/json" } });
    const data = await response.json();
    if (!response.ok) {
      error.textContent = data.error ? data.error.message : String(response.status);
      error.hidden = false;
      return;
    }
    error.hidden = true;
    body.replaceChildren(...data.sessions.map(render));
    empty.hidden = data.sessions.length > 0;
    count.dataset.total = String(data.total);
    count.textContent = i18n.count.replace("{n}", String(data.total));
    info.textContent = `${data.page} / ${data.pages}`;
    prev.hidden = data.page <= 1;
    next.hidden = data.page >= data.pages;
    prev.dataset.page = String(data.page - 1);
    next.dataset.page = String(data.page + 1);
    prev.href = `?${params(data.page - 1)}`;
    next.href = `?${params(data.page + 1)}`;
    history.replaceState(null, "", `/supervise/sessions${query.size ? `?${query}` : ""}`);
    document.body.dataset.listLoaded = String(Date.now());
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load(1);
  });
  for (const control of form.querySelectorAll("select, input[type=date]")) {
    control.addEventListener("change", () => load(1));
  }
  for (const link of [prev, next]) {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      load(Number(link.dataset.page) || 1);
    });
  }
  document.body.dataset.ready = "true";
}

// ------------------------------------------------------------------------------------------ the player

/**
 * @typedef {{recording_id: number, track: string, url: string, start_s: number, duration_s: number,
 *            segment: number, content_type: string}} RecordingInfo
 */

export class ReviewPlayer {
  /**
   * @param {HTMLElement} root
   * @param {RecordingInfo[]} recordings
   * @param {Record<string, string>} labels
   */
  constructor(root, recordings, labels) {
    this.labels = labels;
    /** @type {HTMLMediaElement[]} */
    this.elements = [...root.querySelectorAll("video[data-track], audio[data-track]")];
    /** @type {Map<number, Map<string, RecordingInfo>>} segment -> track -> recording */
    this.segments = new Map();
    for (const rec of recordings) {
      if (!this.segments.has(rec.segment)) this.segments.set(rec.segment, new Map());
      this.segments.get(rec.segment)?.set(rec.track, rec);
    }
    this.segment = Math.min(...this.segments.keys());
    /** @type {number | null} */
    this.loaded = null;
    this.playing = false;
    this.drifts = 0; // re-alignments made, for tests and curiosity
    this.toggle = /** @type {HTMLButtonElement} */ (root.querySelector("#play-toggle"));
    this.seekBar = /** @type {HTMLInputElement} */ (root.querySelector("#seek"));
    this.timeText = /** @type {HTMLElement} */ (root.querySelector("#play-time"));
    this.totalText = /** @type {HTMLElement} */ (root.querySelector("#play-total"));
    this.status = /** @type {HTMLElement} */ (root.querySelector("#player-status"));
    this.segmentPick = /** @type {HTMLSelectElement} */ (root.querySelector("#segment"));
    this.bind(root);
    this.showSegment();
    setInterval(() => this.sync(), SYNC_EVERY_MS);
  }

  /** @param {HTMLElement} root */
  bind(root) {
    this.toggle.addEventListener("click", () => (this.playing ? this.pause() : this.play()));
    this.seekBar.addEventListener("input", () => this.seek(Number(this.seekBar.value)));
    if (this.segments.size > 1) {
      /** @type {HTMLElement} */ (root.querySelector("#segment-pick")).hidden = false;
      for (const number of [...this.segments.keys()].sort((a, b) => a - b)) {
        const option = document.createElement("option");
        option.value = String(number);
        option.textContent = `${this.labels.segment} ${number}`;
        this.segmentPick.append(option);
      }
      this.segmentPick.addEventListener("change", () => {
        this.segment = Number(this.segmentPick.value);
        this.showSegment();
        this.seek(this.range(this.segment)[0]);
      });
    }
    for (const el of this.elements) {
      el.addEventListener("timeupdate", () => { if (el === this.master()) this.showTime(); });
      el.addEventListener("error", () => { if (el.getAttribute("src")) this.say(this.labels.failed); });
      el.addEventListener("ended", () => { if (el === this.master()) this.pause(); });
    }
  }

  /** [first frame, last frame] of a segment on the session clock. @param {number} segment */
  range(segment) {
    const tracks = [...(this.segments.get(segment)?.values() || [])];
    return [Math.min(...tracks.map((r) => r.start_s)), Math.max(...tracks.map((r) => r.start_s + r.duration_s))];
  }

  /** @param {HTMLMediaElement} el */
  recordingOf(el) {
    return this.segments.get(this.segment)?.get(el.dataset.track || "") || null;
  }

  active() {
    return this.elements.filter((el) => this.recordingOf(el) && el.getAttribute("src"));
  }

  /** The element whose clock the others follow: the one that runs longest in this segment. */
  master() {
    let best = null, end = -1;
    for (const el of this.active()) {
      const rec = /** @type {RecordingInfo} */ (this.recordingOf(el));
      const last = rec.start_s + rec.duration_s + (el instanceof HTMLVideoElement ? 0.001 : 0); // videos win ties
      if (last > end) { best = el; end = last; }
    }
    return best;
  }

  get time() {
    const master = this.master();
    return master ? master.currentTime : Number(this.seekBar.value);
  }

  showSegment() {
    const [, end] = this.range(this.segment);
    this.seekBar.max = String(Math.max(0.1, end));
    this.totalText.textContent = clock(end);
    if (this.segments.size > 1) this.segmentPick.value = String(this.segment);
  }

  showTime() {
    const t = this.time;
    if (document.activeElement !== this.seekBar) this.seekBar.value = String(t);
    this.timeText.textContent = clock(t);
  }

  /** Point every element at this segment's files; only now do the requests (and the access log) start. */
  load() {
    if (this.loaded === this.segment) return;
    for (const el of this.elements) {
      el.pause();
      const rec = this.recordingOf(el);
      if (rec) {
        el.preload = "auto";
        el.src = rec.url;
      } else {
        el.removeAttribute("src");
        el.load();
      }
      el.closest("figure")?.classList.toggle("no-track", !rec);
      el.closest("figure")?.classList.add("loaded");
    }
    this.loaded = this.segment;
  }

  async play() {
    this.load();
    this.playing = true;
    this.toggle.setAttribute("aria-pressed", "true");
    this.toggle.textContent = this.toggle.dataset.pause || "Pause";
    const [start, end] = this.range(this.segment);
    let t = this.time;
    if (!(t >= start && t < end - SYNC_TOLERANCE_S)) t = start; // from the top when before the media or at its end
    const master = this.master();
    const starting = [];
    for (const el of this.active()) {
      if (Math.abs(el.currentTime - t) > SYNC_TOLERANCE_S) el.currentTime = t;
      // The master always runs (it is the clock); a track that begins later is started by sync().
      if (el === master || this.covers(el, t)) starting.push(el.play());
    }
    const results = await Promise.allSettled(starting);
    this.say(results.some((r) => r.status === "rejected") ? this.labels.failed : this.labels.playing);
    document.body.dataset.playing = "true";
  }

  pause() {
    for (const el of this.active()) el.pause();
    this.playing = false;
    this.toggle.setAttribute("aria-pressed", "false");
    this.toggle.textContent = this.toggle.dataset.play || "Play";
    this.say(this.labels.paused);
    document.body.dataset.playing = "false";
  }

  /** Does the element's recording have media at session time t? @param {HTMLMediaElement} el @param {number} t */
  covers(el, t) {
    const rec = this.recordingOf(el);
    return !!rec && t >= rec.start_s - SYNC_TOLERANCE_S && t <= rec.start_s + rec.duration_s;
  }

  /** Jump to session time t (seconds after the answer), switching segment when t lies in another one. */
  seek(t) {
    const [start, end] = this.range(this.segment);
    if (t < start - SYNC_TOLERANCE_S || t > end) {
      for (const number of this.segments.keys()) {
        const [s, e] = this.range(number);
        if (t >= s - SYNC_TOLERANCE_S && t <= e) { this.segment = number; this.showSegment(); break; }
      }
    }
    this.load();
    const target = Math.max(0, t);
    for (const el of this.active()) el.currentTime = target;
    this.seekBar.value = String(target);
    this.timeText.textContent = clock(target);
    this.lastSeek = target;
    if (this.playing) {
      const master = this.master();
      for (const el of this.active()) {
        if ((el === master || this.covers(el, target)) && el.paused) el.play().catch(() => {});
      }
    }
  }

  /** Keep the followers on the master's clock; start those whose recording begins later, stop those that ended. */
  sync() {
    if (!this.playing) return;
    const master = this.master();
    if (!master || master.seeking) return;
    const t = master.currentTime;
    for (const el of this.active()) {
      if (el === master || el.seeking) continue;
      if (!this.covers(el, t)) { if (!el.paused) el.pause(); continue; }
      if (Math.abs(el.currentTime - t) > SYNC_TOLERANCE_S) { this.drifts += 1; el.currentTime = t; }
      if (el.paused && !master.paused) el.play().catch(() => {});
    }
  }

  /** @param {string} text */
  say(text) {
    if (this.status) this.status.textContent = text;
  }
}

function initSession() {
  const data = readJson("review-data");
  if (!data) return;
  const root = document.getElementById("player");
  /** @type {ReviewPlayer | null} */
  const player = root && data.recordings.length ? new ReviewPlayer(root, data.recordings, data.labels) : null;
  // @ts-ignore - for tests and the console
  window.reviewPlayer = player;

  for (const button of document.querySelectorAll(".tl-jump")) {
    button.addEventListener("click", () => {
      if (!player) return;
      const offset = Number(/** @type {HTMLElement} */ (button).dataset.offset);
      player.seek(offset);
      for (const other of document.querySelectorAll(".tl-item[aria-current]")) other.removeAttribute("aria-current");
      button.closest(".tl-item")?.setAttribute("aria-current", "step");
      player.say(`${data.labels.jumped} ${clock(offset)}`);
    });
  }

  const viewer = /** @type {HTMLDialogElement} */ (document.getElementById("material-viewer"));
  const image = /** @type {HTMLImageElement} */ (document.getElementById("viewer-image"));
  const pdf = /** @type {HTMLIFrameElement} */ (document.getElementById("viewer-pdf"));
  const name = /** @type {HTMLElement} */ (document.getElementById("viewer-name"));
  for (const button of document.querySelectorAll(".material-open")) {
    button.addEventListener("click", () => {
      const el = /** @type {HTMLElement} */ (button);
      const url = `${el.dataset.url}?view=${Date.now()}`; // a new request per view: each one is logged
      const isPdf = el.dataset.contentType === "application/pdf";
      name.textContent = el.querySelector(".material-name")?.textContent || `#${el.dataset.materialId}`;
      image.hidden = isPdf;
      pdf.hidden = !isPdf;
      if (isPdf) pdf.src = url;
      else {
        image.alt = `${data.labels.material} #${el.dataset.materialId}`;
        image.src = url;
      }
      viewer.showModal();
    });
  }
  document.getElementById("viewer-close")?.addEventListener("click", () => viewer.close());
  viewer?.addEventListener("close", () => { image.removeAttribute("src"); pdf.removeAttribute("src"); });
  document.body.dataset.ready = "true";
}

initList();
initSession();
