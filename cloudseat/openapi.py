"""The OpenAPI 3.1 document of the HTTP side, served at `/openapi.json`.

Hand-kept on purpose: `SESSION_QUERY = ("from", "to", "booth", "region", "clerk", "item", "outcome", "rating", "has_alert", "page", "per_page")
STATS_QUERY = ("from", "to", "period", "by", "sl_threshold_s")

OPERATIONS` below says, per (method, declared path), what the
operation is for, its query parameters, its request body and what it answers.  What the
routes themselves know is not written twice: path parameters (and `:int`) come from the
declared path, and who may call an operation (`x-cloudseat-roles`, `security`) from the
route's access rule.  `tests/integration/test_openapi.py` fails when a route has no entry
here or an entry has no route, so the next route added is described with it.

WebSockets (`/ws/*`, documented message by message in docs/protocol.md) and the static
mounts are not HTTP operations and are left out.

Starlette's `SchemaGenerator` would read YAML from every endpoint's docstring instead; it
needs PyYAML (not a dependency) and would spread the document over five packages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from signaling.access import GuardedRoute, Kind

JSON = "application/json"
HTML = "text/html"
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"


@dataclass(frozen=True)
class Body:
    """A request body: its media type, its fields (name -> JSON Schema type) and which are required."""

    media_type: str
    fields: dict[str, str]
    required: tuple[str, ...] = ()


@dataclass(frozen=True)
class Op:
    """One operation as the document shows it."""

    summary: str
    tag: str
    query: tuple[str, ...] = ()
    body: Body | None = None
    produces: str = JSON
    ok: int = 200
    notes: str = ""
    extra_responses: dict[int, str] = field(default_factory=dict)


SESSION_QUERY = ("from", "to", "booth", "region", "clerk", "item", "outcome", "rating", "has_alert", "page", "per_page")
STATS_QUERY = ("from", "to", "period", "by", "sl_threshold_s")

OPERATIONS: dict[tuple[str, str], Op] = {
    # -- cloudseat: probes, metrics, this document
    ("GET", "/healthz"): Op("The process is up and serving.", "operations"),
    ("GET", "/readyz"): Op("The database (and Redis, when configured) answer.", "operations",
                           extra_responses={503: "a dependency does not answer"}),
    ("GET", "/metrics"): Op("Prometheus metrics of this node.", "operations", produces="text/plain",
                            notes="Anonymous callers only from CLOUDSEAT_METRICS_ALLOW (default loopback); "
                                  "admins from anywhere. See docs/observability.md."),
    ("GET", "/openapi.json"): Op("This document.", "operations"),
    # -- seat: login and home
    ("GET", "/"): Op("Redirect to the page of the caller's role (the login page when anonymous).", "auth",
                     produces=HTML, ok=303),
    ("GET", "/favicon.ico"): Op("The site icon (browsers ask for it on every page).", "auth", produces="image/x-icon"),
    ("GET", "/login"): Op("The login form, with a fresh double-submit CSRF token.", "auth", query=("next",),
                          produces=HTML),
    ("POST", "/login"): Op("Check the password; on success open a browser session and set its cookie.", "auth",
                           body=Body(FORM, {"username": "string", "password": "string", "csrf_token": "string",
                                            "next": "string"}, ("username", "password", "csrf_token")),
                           produces=HTML, ok=303, extra_responses={429: "too many failed logins"}),
    ("POST", "/logout"): Op("End the browser session server-side and drop the cookie.", "auth", produces=HTML, ok=303),
    ("GET", "/api/me"): Op("Who the caller is (role, names, skills, regions, CSRF token).", "auth"),
    ("GET", "/progress"): Op("A case's public progress: status, item and deadline (a form without parameters).",
                             "public", query=("case", "code"), produces=HTML),
    # -- seat: clerk console
    ("GET", "/seat"): Op("The clerk console; everything live comes over /ws/seat.", "seat", produces=HTML),
    ("GET", "/api/seat/items/{code}"): Op("One active service item and its materials checklist.", "seat"),
    ("GET", "/api/seat/directory"): Op("Every skill with its items and the clerks online who hold it (for transfers).",
                                       "seat"),
    ("GET", "/api/seat/history"): Op("The clerk's own ended or transferred calls, newest first.", "seat",
                                     query=("limit", "offset")),
    ("GET", "/api/seat/calls/{call_id}"): Op("One call this clerk serves or served (to resume a console).", "seat"),
    ("POST", "/api/seat/calls/{call_id}/capture"): Op(
        "Ask the booth for a full-resolution still of the document camera, or a signature.", "seat",
        body=Body(JSON, {"kind": "string", "material_code": "string"})),
    ("GET", "/api/seat/calls/{call_id}/materials"): Op("The call's materials in upload order, and the ID card read.",
                                                       "seat", query=("reveal",)),
    ("GET", "/api/seat/materials/{material_id:int}"): Op("A material's image, for the serving clerk of the live call; "
                                                         "logged.", "seat", produces="image/*"),
    ("POST", "/api/seat/materials/{material_id:int}/tick"): Op("Tick a material against the item's checklist "
                                                               "(null unticks).", "seat",
                                                               body=Body(JSON, {"checklist_code": "string"})),
    ("POST", "/api/seat/calls/{call_id}/decision"): Op(
        "Decide the case: 受理 (accept), 不予受理 (refuse) or 补正 (needs more materials); prints at the booth.",
        "seat", body=Body(JSON, {"outcome": "string", "reason": "string", "missing_materials": "array",
                                 "accept_without": "array"}, ("outcome",))),
    # -- seat: supervision
    ("GET", "/supervise"): Op("The live wall of the regions this supervisor may see.", "supervise", produces=HTML),
    ("GET", "/supervise/sessions"): Op("The searchable session list.", "supervise", produces=HTML,
                                       query=SESSION_QUERY),
    ("GET", "/supervise/sessions/{call_id}"): Op("One session's review page: time line, player, materials, case, "
                                                 "rating.", "supervise", produces=HTML),
    ("GET", "/api/supervise/sessions"): Op("Search sessions.", "supervise", query=SESSION_QUERY),
    ("GET", "/api/supervise/sessions/{call_id}"): Op("The whole review of one session.", "supervise"),
    ("GET", "/api/supervise/recordings/{recording_id:int}"): Op("A recorded track's file (HTTP Range); a playback "
                                                                "start is logged.", "supervise",
                                                                produces="video/webm",
                                                                extra_responses={206: "the requested range"}),
    ("GET", "/api/supervise/materials/{material_id:int}"): Op("A material's bytes; every view is logged.", "supervise",
                                                              produces="image/*"),
    ("GET", "/supervise/stats"): Op("The statistics page.", "supervise", produces=HTML, query=STATS_QUERY),
    ("GET", "/api/supervise/stats"): Op("Statistics of the query: rows x periods x groups, and the total.",
                                        "supervise", query=STATS_QUERY),
    ("GET", "/api/supervise/stats.csv"): Op("The statistics rows as a CSV download.", "supervise",
                                            produces="text/csv", query=STATS_QUERY),
    ("GET", "/supervise/alerts"): Op("The electronic-supervision alerts page (admins: the rules editor).",
                                     "supervise", produces=HTML),
    ("GET", "/api/supervise/alerts"): Op("Alerts (yellow, red, blue) by status and kind.", "supervise",
                                         query=("status", "kind")),
    ("POST", "/api/supervise/alerts/{alert_id:int}/ack"): Op("Take an alert on.", "supervise"),
    ("POST", "/api/supervise/alerts/{alert_id:int}/resolve"): Op("Close an alert saying what was done.", "supervise",
                                                                 body=Body(JSON, {"note": "string"}, ("note",))),
    ("GET", "/api/supervise/alert-rules"): Op("The alert rules in force.", "supervise"),
    ("PUT", "/api/supervise/alert-rules/global"): Op(
        "Change the global alert rules (admins).", "admin",
        body=Body(JSON, {"yellow_days": "integer", "red_enabled": "boolean", "blue_max_level": "integer"})),
    ("PUT", "/api/supervise/alert-rules/items/{code}"): Op(
        "Set an item's alert-rule override; null fields inherit (admins).", "admin",
        body=Body(JSON, {"yellow_days": "integer", "red_enabled": "boolean", "blue_max_level": "integer"})),
    ("POST", "/api/admin/cases/{number}/legal-hold"): Op("Set or release a case's legal hold (nothing of it is "
                                                         "purged while held); logged.", "admin",
                                                         body=Body(JSON, {"on": "boolean", "reason": "string"},
                                                                   ("on", "reason"))),
    # -- booth: kiosk
    ("GET", "/kiosk"): Op("The kiosk page; it holds no data until the booth's token authenticates its API calls.",
                          "booth", produces=HTML),
    ("GET", "/api/booth/catalog"): Op("The service items this booth offers, their materials and service hours.",
                                      "booth"),
    ("GET", "/api/booth/slots"): Op("Bookable half-hour appointment slots of the next opening days.", "booth",
                                    query=("item_code",)),
    ("GET", "/api/booth/appointments/{appointment_id:int}"): Op("This booth's appointment, for check-in (预约签到).",
                                                                "booth"),
    ("POST", "/api/booth/ratings"): Op("The resident's rating (好差评) of a finished call.", "booth",
                                       body=Body(JSON, {"call_id": "string", "level": "integer", "comment": "string"},
                                                 ("call_id", "level"))),
    ("POST", "/api/booth/complaints"): Op("A complaint (办不成事): a blue alert for the supervisors.", "booth",
                                          body=Body(JSON, {"category": "string", "text": "string",
                                                           "call_id": "string"}, ("category",))),
    ("POST", "/api/booth/materials"): Op("Upload a document still, a signature or an ID card read for the live call.",
                                         "booth", body=Body(MULTIPART, {"file": "string", "call_id": "string",
                                                                        "kind": "string", "material_code": "string",
                                                                        "id_name": "string", "id_number": "string"},
                                                                   ("file", "call_id"))),
    ("GET", "/api/booth/print-jobs/{job_id:int}.pdf"): Op("A document to print (this booth's jobs only).", "booth",
                                                          produces="application/pdf"),
    ("POST", "/api/booth/print-jobs/{job_id:int}/result"): Op(
        "Report a print job printed, failed, or handed to the browser's print dialog (browser).", "booth",
        body=Body(JSON, {"status": "string", "error": "string"}, ("status",))),
}

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+))?\}")
_CONVERTER_TYPES = {"int": "integer", "float": "number"}
ROLE_SCHEMES = {Kind.BOOTH: "boothToken", Kind.CLERK: "session", Kind.SUPERVISOR: "session", Kind.ADMIN: "session"}


def http_operations(routes: Iterable[BaseRoute]) -> dict[tuple[str, str], GuardedRoute]:
    """(method, declared path) -> route, for every HTTP route (HEAD, sockets and mounts left out)."""
    out: dict[tuple[str, str], GuardedRoute] = {}
    for route in routes:
        if isinstance(route, GuardedRoute):
            for method in route.methods or ():
                if method != "HEAD":
                    out[(method, route.path)] = route
    return out


def openapi_path(declared: str) -> str:
    """`/x/{id:int}.pdf` -> `/x/{id}.pdf`."""
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", declared)


def _path_parameters(declared: str) -> list[dict[str, Any]]:
    return [{"name": name, "in": "path", "required": True,
             "schema": {"type": _CONVERTER_TYPES.get(converter or "", "string")}}
            for name, converter in _PARAM.findall(declared)]


def _security(allow: frozenset[Kind]) -> list[dict[str, list[str]]]:
    if Kind.ANONYMOUS in allow:
        return []  # no credential needed
    return [{scheme: []} for scheme in sorted({ROLE_SCHEMES[k] for k in allow})]


def _operation(method: str, declared: str, op: Op, route: GuardedRoute | None) -> dict[str, Any]:
    allow = route.rule.allow if route is not None else frozenset()
    out: dict[str, Any] = {
        "operationId": f"{method.lower()}_{re.sub(r'[^A-Za-z0-9]+', '_', openapi_path(declared)).strip('_') or 'root'}",
        "summary": op.summary,
        "tags": [op.tag],
        "x-cloudseat-roles": sorted(k.value for k in allow),
        "security": _security(allow),
        "parameters": _path_parameters(declared) + [{"name": q, "in": "query", "required": False,
                                                     "schema": {"type": "string"}} for q in op.query],
    }
    if op.notes:
        out["description"] = op.notes
    if op.body is not None:
        out["requestBody"] = {"required": True, "content": {op.body.media_type: {"schema": {
            "type": "object", "properties": {name: {"type": kind} for name, kind in op.body.fields.items()},
            "required": list(op.body.required)}}}}
    responses: dict[str, Any] = {str(op.ok): {"description": "success", "content": {op.produces: {}}}}
    for status, description in op.extra_responses.items():
        responses[str(status)] = {"description": description}
    if Kind.ANONYMOUS not in allow:
        responses["401"] = {"$ref": "#/components/responses/Unauthenticated"}
    responses["403"] = {"$ref": "#/components/responses/Forbidden"}
    if method in ("POST", "PUT") or route is None or _PARAM.search(declared):
        responses["400"] = {"$ref": "#/components/responses/Invalid"}
    out["responses"] = responses
    return out


def openapi_document(routes: Sequence[BaseRoute], *, version: str = "1") -> dict[str, Any]:
    """The document for these routes (only operations of `OPERATIONS` that are routes here)."""
    by_key = http_operations(routes)
    paths: dict[str, dict[str, Any]] = {}
    for (method, declared), op in OPERATIONS.items():
        route = by_key.get((method, declared))
        if route is None:
            continue
        paths.setdefault(openapi_path(declared), {})[method.lower()] = _operation(method, declared, op, route)
    error = {"content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "cloudseat", "version": version,
                 "description": "The HTTP side of cloudseat. The WebSocket protocol is in docs/protocol.md. "
                                "Unsafe requests with the session cookie must send X-CSRF-Token."},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "cloudseat_session",
                            "description": "A signed browser-session id, set by POST /login."},
                "boothToken": {"type": "http", "scheme": "bearer", "description": "A booth device's token."},
            },
            "schemas": {"Error": {"type": "object", "required": ["error"], "properties": {"error": {
                "type": "object", "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}}},
            "responses": {
                "Unauthenticated": {"description": "no credential, or a wrong one", **error},
                "Forbidden": {"description": "the caller's role may not, or a CSRF / object check failed", **error},
                "Invalid": {"description": "a malformed body or parameter", **error},
            },
        },
    }


async def openapi_endpoint(request: Request) -> Response:
    """GET /openapi.json: the document, built once per app from its routes."""
    document = getattr(request.app.state, "openapi", None)
    if document is None:
        document = request.app.state.openapi = openapi_document(request.app.routes)
    return JSONResponse(document)
