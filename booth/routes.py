"""The booth package's routes: the kiosk page and the booth-facing API."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from booth import api, materials
from booth.api import COMPLAINT_CATEGORIES
from signaling.access import EVERYONE, Kind, guarded_route

BOOTH_ONLY = frozenset({Kind.BOOTH})


async def kiosk(request: Request) -> Response:
    """The kiosk shell; it holds no data until the booth's token authenticates its API calls."""
    return request.app.state.templates.TemplateResponse(
        request, "kiosk.html",
        {"complaint_categories": list(COMPLAINT_CATEGORIES), "timezone": request.app.state.settings.timezone,
         "ice_servers": [s.as_browser_dict() for s in request.app.state.settings.ice_servers]})


def routes() -> list[BaseRoute]:
    return [
        guarded_route("/kiosk", kiosk, allow=EVERYONE),
        guarded_route("/api/booth/catalog", api.catalog, allow=BOOTH_ONLY),
        guarded_route("/api/booth/slots", api.slots, allow=BOOTH_ONLY),
        guarded_route("/api/booth/ratings", api.ratings, allow=BOOTH_ONLY, methods=["POST"]),
        guarded_route("/api/booth/complaints", api.complaints, allow=BOOTH_ONLY, methods=["POST"]),
        guarded_route("/api/booth/materials", materials.upload, allow=BOOTH_ONLY, methods=["POST"]),
        guarded_route("/api/booth/print-jobs/{job_id:int}.pdf", materials.print_pdf, allow=BOOTH_ONLY),
        guarded_route("/api/booth/print-jobs/{job_id:int}/result", materials.print_result, allow=BOOTH_ONLY,
                      methods=["POST"]),
        Mount("/static/booth", app=StaticFiles(packages=[("booth", "static")]), name="booth_static"),
    ]
