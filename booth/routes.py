"""The booth package's routes: the kiosk page and the booth-facing API."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from signaling.access import EVERYONE, guarded_route


async def kiosk(request: Request) -> Response:
    """The kiosk shell; it holds no data until the booth's token authenticates its API calls."""
    return request.app.state.templates.TemplateResponse(request, "kiosk.html", {})


def routes() -> list[BaseRoute]:
    return [
        guarded_route("/kiosk", kiosk, allow=EVERYONE),
        Mount("/static/booth", app=StaticFiles(packages=[("booth", "static")]), name="booth_static"),
    ]
