"""The seat package's routes, each with its access rule."""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from seat import api, auth_pages, console, decisions, home, progress
from seat import (supervise_alerts, supervise_retention, supervise_review, supervise_stats,
                  supervise_wall)
from signaling.access import EVERYONE, STAFF, Kind, guarded_route


def routes() -> list[BaseRoute]:
    return [
        guarded_route("/", home.root, allow=EVERYONE),
        guarded_route("/favicon.ico", home.favicon, allow=EVERYONE),
        guarded_route("/login", auth_pages.login_page, allow=EVERYONE),
        guarded_route("/login", auth_pages.login_submit, allow=EVERYONE, methods=["POST"], name="login_submit"),
        guarded_route("/logout", auth_pages.logout, allow=STAFF, methods=["POST"]),
        guarded_route("/seat", console.console_page, allow={Kind.CLERK}),
        guarded_route("/api/seat/items/{code}", api.item_detail, allow={Kind.CLERK}),
        guarded_route("/api/seat/directory", api.directory, allow={Kind.CLERK}),
        guarded_route("/api/seat/history", api.history, allow={Kind.CLERK}),
        guarded_route("/api/seat/calls/{call_id}", api.call_detail, allow={Kind.CLERK}),
        guarded_route("/api/seat/calls/{call_id}/capture", decisions.capture, allow={Kind.CLERK}, methods=["POST"]),
        guarded_route("/api/seat/calls/{call_id}/materials", decisions.materials, allow={Kind.CLERK}),
        guarded_route("/api/seat/materials/{material_id:int}", decisions.material_bytes, allow={Kind.CLERK}),
        guarded_route("/api/seat/materials/{material_id:int}/tick", decisions.tick, allow={Kind.CLERK},
                      methods=["POST"]),
        guarded_route("/api/seat/calls/{call_id}/decision", decisions.decision, allow={Kind.CLERK}, methods=["POST"]),
        guarded_route("/progress", progress.progress_page, allow=EVERYONE),
        guarded_route("/api/me", home.me, allow=STAFF | {Kind.BOOTH}),
        *supervise_wall.routes(),
        *supervise_review.routes(),
        *supervise_stats.routes(),
        *supervise_alerts.routes(),
        *supervise_retention.routes(),
        Mount("/static/seat", app=StaticFiles(packages=[("seat", "static")]), name="seat_static"),
    ]
