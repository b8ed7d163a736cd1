"""The clerk's actions on a live call's documents: capture, signature, ID card, gallery, ticks, the decision.

Every route is for clerks (see `seat.routes`) and acts only on a call the
clerk serves and that is live; another clerk's call answers exactly like a
missing one (404 `call_not_found` / `material_not_found`).  Errors use the
one shape of `signaling.access.error_response`:

| code | status | when |
|---|---|---|
| `invalid`, `bad_json` | 400 | malformed body or parameter |
| `invalid_outcome` | 400 | outcome not accept, refuse or supplement |
| `reason_required` | 400 | a refusal (不予受理) without a reason |
| `missing_materials_required` | 400 | a supplement notice (补正) that lists no material |
| `unknown_checklist_code` | 400 | a code not on the item's checklist |
| `call_not_found`, `material_not_found` | 404 | no such live call / material of yours |
| `call_not_active` | 409 | the call is not live (any more) |
| `already_decided` | 409 | the call has its decision already |
| `materials_unticked` | 409 | 受理 while mandatory materials are not ticked, and `accept_without` does not name exactly those |
| `booth_offline` | 409 | capture asked while the booth is not connected |
| `id_card_not_found` | 404 | a reveal when no card was read in this live call |
| `csrf` | 403 | a reveal without the session's CSRF token |

`POST .../capture {"kind": "signature"}` asks the kiosk for the resident's signature (签名)
instead of a document still.  `GET .../materials` carries the call's last ID card read
(`id_card`: name, masked number, photo); `?reveal=id_number` adds the full number, for the
serving clerk of the live call only, logged as `idcard.revealed` (with the masked number).

Server -> booth pushes: `capture.request`, `signature.request`, `print.request`; server ->
clerk: `material.added`, `idcard.read`, `print.result` (documented in docs/protocol.md).
"""

from __future__ import annotations

import hmac
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlmodel import Session, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from records.cases import open_case
from records.documents import DecisionDocument, progress_url, render_decision_pdf
from records.errors import ConflictError, NotFoundError, ValidationError
from records.events import append_event
from records.materials import latest_id_card, list_materials, missing_mandatory, tick_checklist
from records.models import Booth, CallSession, CallStatus, Case, CaseStatus, Material, Region, ServiceItem, User
from records.printjobs import create_print_job, mark_sent
from records.privacy import vault_of
from signaling.access import CSRF_HEADER, Principal
from signaling.protocol import push
from signaling.service_hours import add_working_days, calendar_of
from signaling.json_api import ApiError, json_object, uuid_param
from signaling.json_api import respond as _respond
from signaling.json_api import transact as _tx

logger = logging.getLogger(__name__)


MAX_BODY = 16 * 1024
OUTCOMES: dict[str, CaseStatus] = {
    "accept": CaseStatus.ACCEPTED,  # 受理
    "refuse": CaseStatus.REFUSED,  # 不予受理
    "supplement": CaseStatus.NEEDS_SUPPLEMENT,  # 补正
}
CAPTURE_KINDS = ("document", "signature")  # what the clerk can ask the booth for
_CODE_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")

# --------------------------------------------------------------------------- plumbing


def _me(request: Request) -> Principal:
    principal = request.state.principal
    assert isinstance(principal, Principal) and principal.user_id is not None  # clerks only
    return principal


def served_live_call(session: Session, clerk_id: int, call_id: str) -> CallSession:
    """The live call `clerk_id` serves; another clerk's call is `call_not_found` too."""
    call = session.get(CallSession, call_id)
    if call is None or call.clerk_id != clerk_id:
        raise NotFoundError("call_not_found", "no call of yours with that id")
    if call.status is not CallStatus.ACTIVE:
        raise ConflictError("call_not_active", f"call {call_id} is {call.status.value}")
    return call


def material_json(material: Material) -> dict[str, Any]:
    return {
        "material_id": material.id, "kind": material.kind, "checklist_code": material.checklist_code,
        "content_type": material.content_type, "sha256": material.sha256, "size": material.size,
        "width": material.width, "height": material.height,
        "created_at": material.created_at.replace(tzinfo=material.created_at.tzinfo or timezone.utc).isoformat(),
        "url": f"/api/seat/materials/{material.id}",
    }


# --------------------------------------------------------------------------- capture


async def _capture(request: Request) -> Response:
    me = _me(request)
    call_id = uuid_param(request)
    body = await json_object(request, max_bytes=MAX_BODY, empty_ok=True)
    unknown = set(body) - {"material_code", "kind"}
    if unknown:
        raise ApiError(400, "invalid", f"unknown field(s): {', '.join(sorted(unknown))}")
    kind = body.get("kind", "document")
    if kind not in CAPTURE_KINDS:
        raise ApiError(400, "invalid", f"kind must be one of {', '.join(CAPTURE_KINDS)}")
    code = body.get("material_code")
    if code is not None and (not isinstance(code, str) or not _CODE_RE.fullmatch(code)):
        raise ApiError(400, "invalid", "material_code must be a checklist code")
    if code is not None and kind == "signature":
        raise ApiError(400, "invalid", "a signature request names no checklist code")
    event = "signature.requested" if kind == "signature" else "capture.requested"

    def check(session: Session) -> int:
        call = served_live_call(session, int(me.user_id or 0), call_id)
        append_event(session, kind=event, actor=me.actor, session_id=call.id, booth_id=call.booth_id,
                     data={} if kind == "signature" else {"material_code": code})
        return call.booth_id

    booth_id = await _tx(request, check)
    fields: dict[str, Any] = {"call_id": call_id}
    if code is not None:
        fields["material_code"] = code
    message = push("signature.request", **fields) if kind == "signature" else push("capture.request", **fields)
    delivered = await request.app.state.switchboard.deliver(f"booth:{booth_id}", message)
    if not delivered:
        raise ApiError(409, "booth_offline", "the booth is not connected")
    return JSONResponse({"call_id": call_id, "kind": kind, "requested": True}, status_code=202)


async def capture(request: Request) -> Response:
    """POST /api/seat/calls/{call_id}/capture {kind?: document|signature, material_code?}: ask the booth."""
    return await _respond(request, _capture)


# --------------------------------------------------------------------------- gallery


def _wants_reveal(request: Request, me: Principal) -> bool:
    """`?reveal=id_number`, which must carry the session's CSRF token: it is logged, so no page may trigger it."""
    unknown = set(request.query_params) - {"reveal"}
    if unknown:
        raise ApiError(400, "invalid", f"unknown parameter(s): {', '.join(sorted(unknown))}")
    reveal = request.query_params.get("reveal")
    if reveal is None:
        return False
    if reveal != "id_number":
        raise ApiError(400, "invalid", "reveal must be id_number")
    presented = request.headers.get(CSRF_HEADER) or ""
    if not me.csrf_token or not hmac.compare_digest(presented, me.csrf_token):
        raise ApiError(403, "csrf", "a reveal needs the session's CSRF token")
    return True


async def _materials(request: Request) -> Response:
    me = _me(request)
    call_id = uuid_param(request)
    reveal = _wants_reveal(request, me)
    vault = vault_of(request.app.state)

    def load(session: Session) -> dict[str, Any]:
        call = session.get(CallSession, call_id)
        if call is None or call.clerk_id != me.user_id:
            raise NotFoundError("call_not_found", "no call of yours with that id")
        if call.status is not CallStatus.ACTIVE:
            vault.forget(call_id)  # the full number never outlives the call
        card = latest_id_card(session, call_id)
        if card is not None:
            card["photo_url"] = f"/api/seat/materials/{card['material_id']}"
        if reveal:
            served_live_call(session, int(me.user_id or 0), call_id)
            full = vault.get(call_id)
            if card is None or full is None or full.material_id != card["material_id"]:
                raise NotFoundError("id_card_not_found", "no ID card was read in this call")
            append_event(session, kind="idcard.revealed", actor=me.actor, session_id=call.id, booth_id=call.booth_id,
                         data={"material_id": card["material_id"], "id_number_masked": full.masked})
            card = {**card, "id_number": full.number}
        return {"materials": [material_json(m) for m in list_materials(session, call_id)], "id_card": card}

    loaded = await _tx(request, load)
    return JSONResponse({"call_id": call_id, **loaded}, headers={"Cache-Control": "no-store"})


async def materials(request: Request) -> Response:
    """GET /api/seat/calls/{call_id}/materials[?reveal=id_number]: materials in upload order, the ID card read."""
    return await _respond(request, _materials)


async def _material_bytes(request: Request) -> Response:
    me = _me(request)
    material_id = int(request.path_params["material_id"])
    store = request.app.state.store

    def load(session: Session) -> tuple[bytes, str, str]:
        material = session.get(Material, material_id)
        if material is None or material.purged_at is not None:
            raise NotFoundError("material_not_found", "no such material")
        call = session.get(CallSession, material.session_id)
        # The serving clerk during the call; supervisors see materials in their own console.
        if call is None or call.clerk_id != me.user_id or call.status is not CallStatus.ACTIVE:
            raise NotFoundError("material_not_found", "no such material of a live call of yours")
        with store.open(material.path) as fh:
            data = fh.read()
        append_event(session, kind="material.viewed", actor=me.actor, session_id=call.id, booth_id=call.booth_id,
                     data={"material_id": material.id})
        return data, material.content_type, material.sha256

    data, content_type, sha = await _tx(request, load)
    return Response(data, media_type=content_type,
                    headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
                             "X-Content-SHA256": sha})


async def material_bytes(request: Request) -> Response:
    """GET /api/seat/materials/{material_id}: the image, for the serving clerk of the live call; logged."""
    return await _respond(request, _material_bytes)


async def _tick(request: Request) -> Response:
    me = _me(request)
    material_id = int(request.path_params["material_id"])
    body = await json_object(request, max_bytes=MAX_BODY, empty_ok=True)
    if set(body) != {"checklist_code"}:
        raise ApiError(400, "invalid", "the body is {checklist_code: string | null}")
    code = body["checklist_code"]
    if code is not None and not isinstance(code, str):
        raise ApiError(400, "invalid", "checklist_code must be a string or null")

    def tick(session: Session) -> dict[str, Any]:
        material = session.get(Material, material_id)
        if material is None:
            raise NotFoundError("material_not_found", "no such material")
        call = session.get(CallSession, material.session_id)
        if call is None or call.clerk_id != me.user_id:
            raise NotFoundError("material_not_found", "no such material")
        served_live_call(session, int(me.user_id or 0), call.id)
        return material_json(tick_checklist(session, material_id, code, actor=me.actor))

    return JSONResponse(await _tx(request, tick))


async def tick(request: Request) -> Response:
    """POST /api/seat/materials/{material_id}/tick {checklist_code | null}: tick it against the checklist."""
    return await _respond(request, _tick)


# --------------------------------------------------------------------------- decision


@dataclass(frozen=True)
class DecisionInput:
    """A validated decision body."""

    status: CaseStatus
    reason: str
    missing: tuple[str, ...]
    # 受理 although these mandatory materials are not ticked: the clerk confirmed it, and it is logged.
    accept_without: tuple[str, ...] = ()

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> DecisionInput:
        unknown = set(body) - {"outcome", "reason", "missing_materials", "accept_without"}
        if unknown:
            raise ApiError(400, "invalid", f"unknown field(s): {', '.join(sorted(unknown))}")
        outcome = body.get("outcome")
        if outcome not in OUTCOMES:
            raise ApiError(400, "invalid_outcome", "outcome must be accept, refuse or supplement")
        reason = body.get("reason", "")
        if reason is None:
            reason = ""
        if not isinstance(reason, str) or len(reason) > 500:
            raise ApiError(400, "invalid", "reason must be a string of at most 500 characters")
        missing = body.get("missing_materials", [])
        if missing is None:
            missing = []
        if not isinstance(missing, list) or not all(isinstance(m, str) and _CODE_RE.fullmatch(m) for m in missing):
            raise ApiError(400, "invalid", "missing_materials must be a list of checklist codes")
        waived = body.get("accept_without", [])
        if waived is None:
            waived = []
        if not isinstance(waived, list) or not all(isinstance(m, str) and _CODE_RE.fullmatch(m) for m in waived):
            raise ApiError(400, "invalid", "accept_without must be a list of checklist codes")
        status = OUTCOMES[str(outcome)]
        if status is not CaseStatus.NEEDS_SUPPLEMENT and missing:
            raise ApiError(400, "invalid", "only a supplement notice lists missing materials")
        if status is not CaseStatus.ACCEPTED and waived:
            raise ApiError(400, "invalid", "only an acceptance (受理) names materials accepted without")
        return cls(status, reason.strip(), tuple(dict.fromkeys(missing)), tuple(dict.fromkeys(waived)))


@dataclass(frozen=True)
class Decided:
    case_id: int
    number: str
    status: CaseStatus
    deadline: str | None
    print_job_id: int
    document: str
    booth_id: int


def decide(session: Session, *, settings: Any, store: Any, clerk: Principal, call_id: str,
           decision: DecisionInput, now: datetime | None = None) -> Decided:
    """Open the case, render its document and queue it for the booth's printer (one transaction)."""
    call = served_live_call(session, int(clerk.user_id or 0), call_id)
    if session.exec(select(Case).where(Case.session_id == call_id)).first() is not None:
        raise ConflictError("already_decided", "this call has its decision already")
    item = session.get(ServiceItem, call.item_code)
    if item is None:
        raise NotFoundError("item_not_found", f"no service item {call.item_code}")
    names = {str(m.get("code")): str(m.get("name_zh") or m.get("code")) for m in item.materials}
    unknown = [code for code in (*decision.missing, *decision.accept_without) if code not in names]
    if unknown:
        raise ValidationError("unknown_checklist_code", f"not on the item's checklist: {', '.join(unknown)}")
    unticked = missing_mandatory(session, call_id) if decision.status is CaseStatus.ACCEPTED else []
    if set(unticked) != set(decision.accept_without):
        # The confirmation must name exactly what is missing now: a stale one (ticked since) or a
        # blanket one is refused, so the log says precisely what was accepted without checking.
        raise ConflictError("materials_unticked", "mandatory materials not ticked: "
                            + (", ".join(f"{c} ({names[c]})" for c in unticked) or "none")
                            + "; confirm by naming exactly these in accept_without")
    region = session.get(Region, call.region_code)
    zone, calendar = calendar_of(region.service_hours if region else None, settings.timezone,
                                 region=region.code if region else "")
    decided_at = (now or datetime.now(timezone.utc)).astimezone(zone)
    deadline = (add_working_days(decided_at.date(), item.time_limit_days, calendar)
                if decision.status is CaseStatus.ACCEPTED else None)
    case = open_case(session, call_session_id=call.id, item_code=item.code, region_code=call.region_code,
                     booth_id=call.booth_id, clerk_id=clerk.user_id, status=decision.status,
                     reason=decision.reason, missing_materials=decision.missing, decided_at=decided_at,
                     deadline=deadline, actor=clerk.actor)
    if unticked:
        append_event(session, kind="case.accepted_without_materials", actor=clerk.actor, session_id=call.id,
                     booth_id=call.booth_id, data={"case_number": case.number, "case_id": case.id,
                                                   "materials": [{"code": c, "name_zh": names[c]} for c in unticked]})
    booth = session.get(Booth, call.booth_id)
    user = session.get(User, clerk.user_id)
    doc = DecisionDocument(
        status=decision.status, case_number=case.number, progress_code=case.progress_code,
        progress_url=progress_url(settings.public_base_url, case.number, case.progress_code),
        item_code=item.code, item_name_zh=item.name_zh, decided_on=decided_at.date(),
        booth_name=booth.name if booth else str(call.booth_id),
        region_name_zh=region.name_zh if region else call.region_code,
        clerk_name=(user.display_name or user.username) if user else clerk.username,
        deadline=deadline, time_limit_days=item.time_limit_days, reason=decision.reason,
        missing_materials=tuple((code, names[code]) for code in decision.missing),
    )
    job = create_print_job(session, store, booth_id=call.booth_id, document=doc.document,
                           pdf=render_decision_pdf(doc), session_id=call.id, case_id=case.id, actor=clerk.actor)
    assert case.id is not None and job.id is not None
    return Decided(case.id, case.number, decision.status, deadline.isoformat() if deadline else None,
                   job.id, doc.document, call.booth_id)


async def _decision(request: Request) -> Response:
    me = _me(request)
    call_id = uuid_param(request)
    decision = DecisionInput.from_body(await json_object(request, max_bytes=MAX_BODY, empty_ok=True))
    state = request.app.state
    decided = await _tx(request, lambda s: decide(s, settings=state.settings, store=state.store, clerk=me,
                                                  call_id=call_id, decision=decision))
    url = f"/api/booth/print-jobs/{decided.print_job_id}.pdf"
    delivered = await state.switchboard.deliver(
        f"booth:{decided.booth_id}",
        push("print.request", call_id=call_id, print_job_id=decided.print_job_id, document=decided.document,
             case_number=decided.number, url=url))
    status = "pending"
    if delivered:
        await _tx(request, lambda s: mark_sent(s, decided.print_job_id))
        status = "sent"
    logger.info("call %s decided: case %s %s, print job %d %s", call_id, decided.number, decided.status.value,
                decided.print_job_id, status)
    return JSONResponse({
        "call_id": call_id,
        "case": {"id": decided.case_id, "number": decided.number, "status": decided.status.value,
                 "deadline": decided.deadline},
        "print_job": {"id": decided.print_job_id, "document": decided.document, "status": status},
    }, status_code=201)


async def decision(request: Request) -> Response:
    """POST /api/seat/calls/{call_id}/decision {outcome, reason?, missing_materials?, accept_without?}:
    受理 / 不予受理 / 补正."""
    return await _respond(request, _decision)

