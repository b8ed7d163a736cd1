"""The booth package's routes: the kiosk page and the booth-facing API."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from booth import api, materials
from booth.api import COMPLAINT_CATEGORIES
from records.errors import NotFoundError
from records.models import Appointment, ServiceItem, as_utc
from signaling.access import EVERYONE, Kind, guarded_route
from signaling.json_api import respond, transact

BOOTH_ONLY = frozenset({Kind.BOOTH})
CHECKIN_EARLY_S = 10 * 60  # as signaling.booth_flow.APPOINTMENT_EARLY_S: a check-in may come this early


async def kiosk(request: Request) -> Response:
    """The kiosk shell; it holds no data until the booth's token authenticates its API calls."""
    return request.app.state.templates.TemplateResponse(
        request, "kiosk.html",
        {"complaint_categories": list(COMPLAINT_CATEGORIES), "timezone": request.app.state.settings.timezone})


async def _appointment(request: Request) -> Response:
    booth_id = request.state.principal.booth_id
    appointment_id = int(request.path_params["appointment_id"])
    zone = ZoneInfo(request.app.state.settings.timezone)

    def load(session: Session) -> dict[str, Any]:
        appointment = session.get(Appointment, appointment_id)
        if appointment is None or appointment.booth_id != booth_id:  # another booth's looks the same
            raise NotFoundError("appointment_not_found", "no such appointment at this booth")
        item = session.get(ServiceItem, appointment.item_code)
        start, end = as_utc(appointment.slot_start), as_utc(appointment.slot_end)
        now = datetime.now(timezone.utc)
        return {"appointment_id": appointment.id, "item_code": appointment.item_code,
                "item": {"name_zh": item.name_zh if item else appointment.item_code,
                         "name_en": item.name_en if item else appointment.item_code},
                "slot_start": start.astimezone(zone).isoformat(), "slot_end": end.astimezone(zone).isoformat(),
                "status": appointment.status,
                "due": appointment.status == "booked" and (start - now).total_seconds() <= CHECKIN_EARLY_S
                and now <= end}

    return JSONResponse(await transact(request, load))


async def appointment(request: Request) -> Response:
    """GET /api/booth/appointments/{id}: this booth's appointment, for the kiosk's check-in (预约签到).

    Only what the resident needs to recognise it (item, slot, status, whether it is due now);
    never the contact. `appointment_not_found` (404) for an unknown id or another booth's.
    """
    return await respond(request, _appointment)


def routes() -> list[BaseRoute]:
    return [
        guarded_route("/kiosk", kiosk, allow=EVERYONE),
        guarded_route("/api/booth/catalog", api.catalog, allow=BOOTH_ONLY),
        guarded_route("/api/booth/slots", api.slots, allow=BOOTH_ONLY),
        guarded_route("/api/booth/appointments/{appointment_id:int}", appointment, allow=BOOTH_ONLY),
        guarded_route("/api/booth/ratings", api.ratings, allow=BOOTH_ONLY, methods=["POST"]),
        guarded_route("/api/booth/complaints", api.complaints, allow=BOOTH_ONLY, methods=["POST"]),
        guarded_route("/api/booth/materials", materials.upload, allow=BOOTH_ONLY, methods=["POST"]),
        guarded_route("/api/booth/print-jobs/{job_id:int}.pdf", materials.print_pdf, allow=BOOTH_ONLY),
        guarded_route("/api/booth/print-jobs/{job_id:int}/result", materials.print_result, allow=BOOTH_ONLY,
                      methods=["POST"]),
        Mount("/static/booth", app=StaticFiles(packages=[("booth", "static")]), name="booth_static"),
    ]
