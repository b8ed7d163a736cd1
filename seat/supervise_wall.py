"""Supervision: the live wall (监控墙) page; `static/js/supervise-wall.js` fills it over the socket.

The page itself carries only the shell, the supervisor's scope and the names a wall needs
(skills, regions); every live fact comes over `/ws/supervisor` (a snapshot in `welcome`, then
deltas), so nothing here polls.
"""

from __future__ import annotations

from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from records.models import Region
from seat.console import NOT_READY_REASONS, SKILL_LABELS
from seat.scope import visible_regions
from signaling.access import SUPERVISION, guarded_route


async def wall_page(request: Request) -> Response:
    """GET /supervise: the live wall of the regions this supervisor may see."""
    principal = request.state.principal
    regions = visible_regions(principal)

    def scope_names() -> list[tuple[str, str]]:
        if regions is None:
            return []
        with Session(request.app.state.engine) as session:
            rows = {r.code: r for r in session.exec(select(Region).where(col(Region.code).in_(regions)))}
        return [(rows[c].name_zh, rows[c].name_en) if c in rows else (c, c) for c in sorted(regions)]

    labels = {
        "skills": {code: list(pair) for code, pair in SKILL_LABELS.items()},
        "reasons": {code: [zh, en] for code, zh, en in NOT_READY_REASONS},
    }
    return request.app.state.templates.TemplateResponse(
        request, "supervise_wall.html",
        {"principal": principal, "scope": await run_in_threadpool(scope_names), "labels": labels},
    )


def routes() -> list[BaseRoute]:
    return [guarded_route("/supervise", wall_page, allow=SUPERVISION)]
