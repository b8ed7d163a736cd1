// @ts-check
/**
 * Category icons as inline SVG (24 x 24, stroked in the current colour), keyed by the catalogue's
 * icon names. Drawn for this kiosk; no icon font, no network.
 */

/** @type {Record<string, string>} */
const PATHS = {
  "shield-check": '<path d="M12 3 4.5 6v5.5c0 4.6 3.2 8.2 7.5 9.5 4.3-1.3 7.5-4.9 7.5-9.5V6z"/><path d="m8.5 12 2.5 2.5 4.5-5"/>',
  stethoscope: '<path d="M6 3v6a5 5 0 0 0 10 0V3"/><path d="M11 14v2.5a4.5 4.5 0 0 0 9 0V14"/><circle cx="20" cy="12" r="2"/>',
  "book-user": '<path d="M5 4.5A1.5 1.5 0 0 1 6.5 3H19v18H6.5A1.5 1.5 0 0 1 5 19.5z"/><circle cx="12" cy="10" r="2.5"/><path d="M8.5 17a3.5 3.5 0 0 1 7 0"/>',
  "id-card": '<rect x="2.5" y="5" width="19" height="14" rx="2"/><circle cx="8.5" cy="11" r="2.2"/><path d="M5.5 16a3 3 0 0 1 6 0M14 10h5M14 14h4"/>',
  "hand-heart": '<path d="M12 11.5 9.6 9.2a2 2 0 0 1 2.4-3.1 2 2 0 0 1 2.4 3.1z"/><path d="M3 14h3l4 2h4a1.5 1.5 0 0 1 0 3H9"/><path d="m14 17 5-2.5a1.7 1.7 0 0 1 2 2.6L16 21H6l-3-1.5"/>',
  accessibility: '<circle cx="12" cy="4.5" r="1.8"/><path d="M5 8.5 12 10l7-1.5M12 10v4.5l-3.5 6M12 14.5l3.5 6"/>',
  baby: '<circle cx="12" cy="12" r="8.5"/><circle cx="9" cy="11" r=".6"/><circle cx="15" cy="11" r=".6"/><path d="M9.5 15a3.5 3.5 0 0 0 5 0M12 3.5c-1.5 1-1.5 2.5 0 3"/>',
  "user-round": '<circle cx="12" cy="8" r="4.5"/><path d="M4 21a8 8 0 0 1 16 0"/>',
  house: '<path d="M3 11 12 3.5 21 11"/><path d="M5.5 9.5V20h13V9.5"/><path d="M10 20v-6h4v6"/>',
  briefcase: '<rect x="3" y="7" width="18" height="13" rx="2"/><path d="M8.5 7V5a1.5 1.5 0 0 1 1.5-1.5h4A1.5 1.5 0 0 1 15.5 5v2M3 12.5h18"/>',
  store: '<path d="M3.5 9 5 4h14l1.5 5"/><path d="M3.5 9a2.8 2.8 0 0 0 5.7 0 2.8 2.8 0 0 0 5.6 0 2.8 2.8 0 0 0 5.7 0"/><path d="M5 12v8h14v-8M10 20v-5h4v5"/>',
  "graduation-cap": '<path d="M2.5 9 12 4.5 21.5 9 12 13.5z"/><path d="M6.5 11v5c3 2.5 8 2.5 11 0v-5M21.5 9v5"/>',
  medal: '<path d="M8 3h8l-2.5 6h-3z"/><circle cx="12" cy="15" r="5.5"/><path d="m12 12.3.9 1.8 2 .3-1.45 1.4.35 2-1.8-.95-1.8.95.35-2-1.45-1.4 2-.3z"/>',
};

const FALLBACK = '<rect x="4" y="4" width="16" height="16" rx="3"/><path d="M8 12h8M12 8v8"/>';

/** The SVG markup of the icon `name` (decorative: hidden from assistive technology). @param {string} name */
export function iconSvg(name) {
  const body = PATHS[name] ?? FALLBACK;
  return `<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false" fill="none" stroke="currentColor"
    stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round">${body}</svg>`;
}

/** Faces of the five rating levels (5 best). @param {number} level */
export function faceSvg(level) {
  const mouth = {
    5: '<path d="M7.5 13.5a5 5 0 0 0 9 0z" fill="currentColor"/>',
    4: '<path d="M8 14a4.5 4.5 0 0 0 8 0"/>',
    3: '<path d="M8.5 15h7"/>',
    2: '<path d="M8 16.5a4.5 4.5 0 0 1 8 0"/>',
    1: '<path d="M7.5 17a5 5 0 0 1 9 0"/><path d="m7 8 2.5 1M17 8l-2.5 1"/>',
  }[level] ?? "";
  return `<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false" fill="none" stroke="currentColor"
    stroke-width="1.8" stroke-linecap="round"><circle cx="12" cy="12" r="9.5"/>
    <circle cx="9" cy="10" r="1" fill="currentColor"/><circle cx="15" cy="10" r="1" fill="currentColor"/>${mouth}</svg>`;
}
