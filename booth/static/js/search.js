// @ts-check
/**
 * Search of the catalogue by name (Chinese or English) and by pinyin initials
 * (社会保障卡补领换领 -> "shbzkblhl"; "sbkbl" finds it as initials in order).
 */

/** @typedef {{code: string, name_zh: string, name_en: string, initials: string}} Searchable */

/** True when every letter of `needle` occurs in `hay` in order. @param {string} needle @param {string} hay */
export function isSubsequence(needle, hay) {
  let at = 0;
  for (const ch of needle) {
    at = hay.indexOf(ch, at);
    if (at < 0) return false;
    at += 1;
  }
  return true;
}

/**
 * How well `item` matches `query` (0: not at all). Exact words beat initials, a prefix of the
 * initials beats initials anywhere, and initials in order (with gaps) come last.
 * @param {Searchable} item @param {string} query
 */
export function score(item, query) {
  const q = query.trim().toLowerCase().replace(/\s+/g, "");
  if (!q) return 0;
  if (item.name_zh.includes(q)) return 100 - item.name_zh.indexOf(q);
  const letters = /^[a-z]+$/.test(q);
  const initials = item.initials || "";
  if (letters && initials.startsWith(q)) return 80;
  if (letters && initials.includes(q)) return 70;
  if (item.name_en.toLowerCase().replace(/\s+/g, "").includes(q)) return 60;
  if (item.code.toLowerCase() === q) return 55;
  if (letters && q.length >= 3 && isSubsequence(q, initials)) return 40 - (initials.length - q.length) / 10;
  return 0;
}

/**
 * The items matching `query`, best first. @template {Searchable} T
 * @param {T[]} items @param {string} query @param {number} [limit] @returns {T[]}
 */
export function search(items, query, limit = 12) {
  return items
    .map((item) => ({ item, s: score(item, query) }))
    .filter((x) => x.s > 0)
    .sort((a, b) => b.s - a.s || a.item.code.localeCompare(b.item.code))
    .slice(0, limit)
    .map((x) => x.item);
}
