"""Supervision: retention and legal hold (admin API).

`POST /api/admin/cases/{number}/legal-hold` with `{"on": bool, "reason": str}`
puts a case under legal hold (nothing of its call is purged) or releases it;
admins only, cookie sessions need the CSRF token.  The change is logged as
`case.legal_hold` by `records.cases.set_legal_hold`.

| code | status | when |
|---|---|---|
| `bad_json` | 400 | the body is not a JSON object |
| `invalid` | 400 | unknown field, `on` not a boolean, `reason` not a string of 1..500 characters |
| `reason_required` | 400 | an empty reason |
| `case_not_found` | 404 | no case with that number |
"""

from __future__ import annotations

import logging
import re
from typing import Any

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from records.cases import set_legal_hold
from signaling.access import Kind, Principal, guarded_route
from signaling.json_api import ApiError, json_object, respond, transact

logger = logging.getLogger(__name__)

MAX_BODY = 8 * 1024
# `XH-2026-000123`; anything else cannot be a case number, so it never reaches the database.
_NUMBER_RE = re.compile(r"[A-Za-z0-9_-]{1,40}")


def routes() -> list[BaseRoute]:
    return [
        guarded_route("/api/admin/cases/{number}/legal-hold", legal_hold, allow={Kind.ADMIN}, methods=["POST"]),
    ]


def parse_hold(body: dict[str, Any]) -> tuple[bool, str]:
    """(on, reason) from a legal-hold body, or ApiError 400."""
    unknown = set(body) - {"on", "reason"}
    if unknown:
        raise ApiError(400, "invalid", f"unknown field(s): {', '.join(sorted(unknown))}")
    on, reason = body.get("on"), body.get("reason")
    if not isinstance(on, bool):
        raise ApiError(400, "invalid", "on must be true or false")
    if not isinstance(reason, str) or len(reason) > 500:
        raise ApiError(400, "invalid", "reason must be a string of at most 500 characters")
    if not reason.strip():
        raise ApiError(400, "reason_required", "a legal hold change needs a reason")
    return on, reason.strip()


async def _legal_hold(request: Request) -> Response:
    principal = request.state.principal
    assert isinstance(principal, Principal)
    number = str(request.path_params["number"])
    if not _NUMBER_RE.fullmatch(number):
        raise ApiError(400, "invalid", "not a case number")
    on, reason = parse_hold(await json_object(request, max_bytes=MAX_BODY))

    def work(session: Session) -> dict[str, Any]:
        case = set_legal_hold(session, number, on, actor=principal.actor, reason=reason)
        return {"case_id": case.id, "number": case.number, "legal_hold": case.legal_hold}

    return JSONResponse(await transact(request, work))


async def legal_hold(request: Request) -> Response:
    """POST /api/admin/cases/{number}/legal-hold {on, reason}: set or release a case's legal hold."""
    return await respond(request, _legal_hold)
