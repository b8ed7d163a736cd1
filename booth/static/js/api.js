// @ts-check
/** The booth HTTP API (booth/api.py), authenticated with the booth token as a Bearer header. */

/** A refusal of the booth API: `code` is the server's stable code, `status` the HTTP status. */
export class ApiError extends Error {
  /** @param {number} status @param {string} code @param {string} message */
  constructor(status, code, message) {
    super(`${code}: ${message}`);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

export class BoothApi {
  /** @param {string} token */
  constructor(token) {
    this.token = token;
  }

  /** @param {string} method @param {string} path @param {unknown} [body] @returns {Promise<any>} */
  async call(method, path, body) {
    /** @type {Record<string, string>} */
    const headers = { Authorization: `Bearer ${this.token}`, Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch {
      throw new ApiError(0, "disconnected", "network error");
    }
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const error = data && data.error ? data.error : { code: "internal", message: response.statusText };
      throw new ApiError(response.status, error.code, error.message);
    }
    return data;
  }

  me() { return this.call("GET", "/api/me"); }
  catalog() { return this.call("GET", "/api/booth/catalog"); }
  /** @param {string} itemCode */
  slots(itemCode) { return this.call("GET", `/api/booth/slots?item_code=${encodeURIComponent(itemCode)}`); }
  /** This booth's appointment, for the check-in screen. @param {number} id */
  appointment(id) { return this.call("GET", `/api/booth/appointments/${id}`); }
  /** @param {string} callId @param {number} level @param {string} comment */
  rate(callId, level, comment) { return this.call("POST", "/api/booth/ratings", { call_id: callId, level, comment }); }
  /** @param {string} category @param {string} text @param {string | null} callId */
  complain(category, text, callId) {
    return this.call("POST", "/api/booth/complaints", { category, text, call_id: callId });
  }
}
