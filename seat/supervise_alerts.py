"""Supervision: electronic-supervision alerts (电子监察) and their rules.

The page `/supervise/alerts` lists alerts with filters, lets a supervisor acknowledge and
resolve them (with a note), follows `wall.alert` pushes live, and gives admins the rules
editor.  Every alert read or changed is scoped by `seat.scope.visible_regions`: an alert of
another region answers exactly like a missing one (404 `alert_not_found`).  Every raise,
acknowledgement and resolution reaches supervisors as the push `wall.alert` carrying the
same dict the list returns.

| method | path | who | what |
|---|---|---|---|
| GET | `/supervise/alerts` | supervisor, admin | the page |
| GET | `/api/supervise/alerts?status=&kind=` | supervisor, admin | `{"alerts": [...]}` newest first |
| POST | `/api/supervise/alerts/{id}/ack` | supervisor, admin | open -> acknowledged |
| POST | `/api/supervise/alerts/{id}/resolve` `{"note"}` | supervisor, admin | open/acknowledged -> resolved |
| GET | `/api/supervise/alert-rules` | supervisor, admin | global rules, defaults, items with overrides |
| PUT | `/api/supervise/alert-rules/global` | admin | `{yellow_days, red_enabled, blue_max_level}` |
| PUT | `/api/supervise/alert-rules/items/{code}` | admin | the same, each null = inherit; all null removes |

Errors (`{"error": {"code", "message"}}`): 400 `invalid` (bad parameter or body), `bad_json`,
`note_required`, `note_too_long`, `invalid_rule`; 404 `alert_not_found`, `item_not_found`;
409 `invalid_transition` (e.g. acknowledging an acknowledged alert); 413 `too_big`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from records.alerts import GLOBAL_SCOPE, acknowledge, alert_view, alert_views, resolve, rules_document, set_rules
from records.models import AlertKind, AlertStatus
from seat.scope import visible_regions
from signaling.access import SUPERVISION, Kind, Principal, guarded_route
from signaling.json_api import ApiError, json_object, respond, transact
from signaling.protocol import push

logger = logging.getLogger(__name__)

MAX_BODY = 8 * 1024
LIST_LIMIT = 500
MAX_ID = 2**31 - 1
_ITEM_CODE_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")
KIND_LABELS = {"yellow": ("黄色预警", "Yellow"), "red": ("红色预警", "Red"), "blue": ("蓝色预警", "Blue")}
STATUS_LABELS = {"open": ("待处理", "Open"), "acknowledged": ("已签收", "Acknowledged"),
                 "resolved": ("已办结", "Resolved")}


def _me(request: Request) -> Principal:
    principal = request.state.principal
    assert isinstance(principal, Principal) and principal.user_id is not None  # supervisors and admins only
    return principal


def _alert_id(request: Request) -> int:
    alert_id = int(request.path_params["alert_id"])
    if alert_id > MAX_ID:  # the database's integer would overflow; no such alert either way
        raise ApiError(404, "alert_not_found", f"no alert {alert_id}")
    return alert_id


def _enum_param(request: Request, name: str, enum: type[AlertStatus] | type[AlertKind]) -> Any:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    try:
        return enum(raw)
    except ValueError:
        allowed = "|".join(e.value for e in enum)
        raise ApiError(400, "invalid", f"{name} must be one of {allowed}") from None


async def _to_wall(request: Request, view: dict[str, Any]) -> None:
    await request.app.state.switchboard.to_wall(push("wall.alert", alert=view))


# --------------------------------------------------------------------------- the page


async def alerts_page(request: Request) -> Response:
    """GET /supervise/alerts: the alert list, its filters and (admins) the rules editor."""
    principal = _me(request)
    return request.app.state.templates.TemplateResponse(
        request, "supervise_alerts.html",
        {"principal": principal, "is_admin": principal.kind is Kind.ADMIN,
         "kind_labels": KIND_LABELS, "status_labels": STATUS_LABELS},
    )


# --------------------------------------------------------------------------- alerts


async def _list(request: Request) -> Response:
    status = _enum_param(request, "status", AlertStatus)
    kind = _enum_param(request, "kind", AlertKind)
    unknown = set(request.query_params) - {"status", "kind"}
    if unknown:
        raise ApiError(400, "invalid", f"unknown parameter(s): {', '.join(sorted(unknown))}")
    regions = visible_regions(_me(request))
    views = await transact(request, lambda s: alert_views(s, status=status, kind=kind, regions=regions,
                                                          limit=LIST_LIMIT))
    return JSONResponse({"alerts": views})


async def list_alerts(request: Request) -> Response:
    """GET /api/supervise/alerts?status=open|acknowledged|resolved&kind=yellow|red|blue."""
    return await respond(request, _list)


async def _change_alert(request: Request, alert_id: int, change: Callable[[Session, int], object]) -> Response:
    """Applies `change(session, user_id)` to an alert of the caller's regions, tells the wall, answers the new view."""
    me = _me(request)
    user_id = int(me.user_id or 0)
    regions = visible_regions(me)

    def work(session: Session) -> dict[str, Any]:
        alert_view(session, alert_id, regions=regions)  # another region's alert is not found
        change(session, user_id)
        session.flush()
        return alert_view(session, alert_id)

    view = await transact(request, work)
    await _to_wall(request, view)
    return JSONResponse({"alert": view})


async def _ack(request: Request) -> Response:
    alert_id = _alert_id(request)
    return await _change_alert(request, alert_id,
                               lambda session, user_id: acknowledge(session, alert_id, user_id=user_id))


async def ack_alert(request: Request) -> Response:
    """POST /api/supervise/alerts/{id}/ack: the supervisor takes the alert on."""
    return await respond(request, _ack)


async def _resolve(request: Request) -> Response:
    alert_id = _alert_id(request)
    body = await json_object(request, max_bytes=MAX_BODY)
    unknown = set(body) - {"note"}
    if unknown:
        raise ApiError(400, "invalid", f"unknown field(s): {', '.join(sorted(unknown))}")
    note = body.get("note", "")
    if not isinstance(note, str):
        raise ApiError(400, "invalid", "note must be text")
    return await _change_alert(request, alert_id,
                               lambda session, user_id: resolve(session, alert_id, user_id=user_id, note=note))


async def resolve_alert(request: Request) -> Response:
    """POST /api/supervise/alerts/{id}/resolve {"note"}: close the alert saying what was done."""
    return await respond(request, _resolve)


# --------------------------------------------------------------------------- rules


async def _rules(request: Request) -> Response:
    return JSONResponse(await transact(request, rules_document))


async def get_rules(request: Request) -> Response:
    """GET /api/supervise/alert-rules: the rules in force, for the editor and for reference."""
    return await respond(request, _rules)


async def _save(request: Request, scope: str) -> Response:
    me = _me(request)
    body = await json_object(request, max_bytes=MAX_BODY)

    def work(session: Session) -> dict[str, Any]:
        set_rules(session, scope, body, user_id=me.user_id)
        session.flush()
        return rules_document(session)

    return JSONResponse(await transact(request, work))


async def put_global_rules(request: Request) -> Response:
    """PUT /api/supervise/alert-rules/global {yellow_days, red_enabled, blue_max_level} (admins)."""
    return await respond(request, lambda r: _save(r, GLOBAL_SCOPE))


async def _put_item(request: Request) -> Response:
    code = str(request.path_params["code"])
    if not _ITEM_CODE_RE.fullmatch(code):
        raise ApiError(400, "invalid", "item code: letters, digits, - and _")
    return await _save(request, code)


async def put_item_rules(request: Request) -> Response:
    """PUT /api/supervise/alert-rules/items/{code}: an item's override; null fields inherit (admins)."""
    return await respond(request, _put_item)


def routes() -> list[BaseRoute]:
    return [
        guarded_route("/supervise/alerts", alerts_page, allow=SUPERVISION),
        guarded_route("/api/supervise/alerts", list_alerts, allow=SUPERVISION),
        guarded_route("/api/supervise/alerts/{alert_id:int}/ack", ack_alert, allow=SUPERVISION, methods=["POST"]),
        guarded_route("/api/supervise/alerts/{alert_id:int}/resolve", resolve_alert, allow=SUPERVISION,
                      methods=["POST"]),
        guarded_route("/api/supervise/alert-rules", get_rules, allow=SUPERVISION),
        guarded_route("/api/supervise/alert-rules/global", put_global_rules, allow={Kind.ADMIN}, methods=["PUT"]),
        guarded_route("/api/supervise/alert-rules/items/{code}", put_item_rules, allow={Kind.ADMIN},
                      methods=["PUT"]),
    ]
