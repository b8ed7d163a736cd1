// @ts-check
/**
 * Page helpers shared by the clerk console and the supervision pages: building elements, the
 * session's CSRF token (the logout form holds it) and JSON requests to the staff APIs that carry it.
 */

/** @param {string} tag @param {Record<string, string>} [attrs] @param {(Node | string)[]} [children] */
export function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

export function csrf() {
  const input = /** @type {HTMLInputElement | null} */ (document.querySelector("form[action='/logout'] input[name=csrf_token]"));
  return input ? input.value : "";
}

/**
 * Sends a JSON request (unsafe methods carry the CSRF token) and returns the parsed answer; a
 * failure throws an Error whose `code` is the API's stable error code ("internal" if none).
 * @param {string} method @param {string} path @param {unknown} [body]
 */
export async function requestJson(method, path, body) {
  /** @type {Record<string, string>} */
  const headers = { accept: "application/json" };
  if (method !== "GET") {
    headers["x-csrf-token"] = csrf();
    headers["content-type"] = "application/json";
  }
  const response = await fetch(path, { method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw Object.assign(new Error(data?.error?.message ?? response.statusText), { code: data?.error?.code ?? "internal" });
  }
  return data;
}
