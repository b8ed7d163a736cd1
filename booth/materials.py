"""Documents in and out of the booth: captured stills up, decision documents down to the printer.

Routes (booth token only, see `booth.routes`):

- `POST /api/booth/materials`: multipart `call_id`, `file`, `kind`?, and per kind:
  - `capture` (the default), `material_code`?: a full-resolution still of the document camera
    (JPEG/PNG/WebP).  The serving clerk is pushed `material.added`.
  - `signature`: the resident's signature from the kiosk's signing pad, a PNG (at most 2 MB,
    4096 px a side).  The clerk is pushed `material.added` with `kind: "signature"`.
  - `id_photo`, `id_name`, `id_number`: what the booth's ID card reader read.  The number is
    checked (18 characters, GB 11643 check digit), the photo (JPEG/PNG, 1 MB, 1024 px) is stored
    as a material, the event log gets `idcard.read` with the masked number only, and the full
    number waits in the server's memory (`records.privacy.IdCardVault`) until the call ends.  The
    clerk is pushed `idcard.read` (masked number).
  Always for the booth's live call only.  The bytes are validated (records.materials: Pillow
  parses them, pixel bombs refused) and stored with their SHA-256 and pixel size.
- `GET /api/booth/print-jobs/{id}.pdf`: one of this booth's print jobs (pending -> sent).
- `POST /api/booth/print-jobs/{id}/result` {status: printed|failed, error?}: what the
  printer did; the clerk is pushed `print.result`.

| code | status | when |
|---|---|---|
| `invalid`, `bad_json` | 400 | malformed form or body (also an unknown `kind`) |
| `content_type_not_allowed`, `content_mismatch`, `empty_file`, `image_too_large` | 400 | the file is not an acceptable image (for its kind) |
| `id_number_invalid`, `id_number_checksum`, `id_name_invalid` | 400 | an ID card read with a bad number or name |
| `call_not_found`, `print_job_not_found` | 404 | not this booth's (another booth's looks the same) |
| `call_not_active` | 409 | the call is not live |
| `invalid_transition` | 409 | a result for a job already reported |
| `file_too_large` | 413 | an upload over MAX_UPLOAD_BYTES (or over its kind's limit) |
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from records.errors import ConflictError, NotFoundError
from records.materials import add_material, record_id_card_read
from records.models import CallSession, CallStatus, Material, PrintJob, PrintStatus
from records.printjobs import mark_sent, note_browser_print, report_print_result
from records.privacy import LiveIdCard, vault_of
from signaling.access import Principal
from signaling.protocol import first_bad_value, push
from signaling.json_api import ApiError
from signaling.json_api import respond as _respond
from signaling.json_api import transact as _tx

logger = logging.getLogger(__name__)


MAX_UPLOAD_BYTES = 16 * 1024 * 1024  # a 20 MP JPEG is a few MB; the records layer refuses > 25 MB anyway
_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_CODE_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")
UPLOAD_KINDS = ("capture", "signature", "id_photo")
MAX_FIELD_CHARS = 200  # every text field of the form is short

def _booth(request: Request) -> Principal:
    principal = request.state.principal
    assert isinstance(principal, Principal) and principal.booth_id is not None  # booth-only routes
    return principal


def own_live_call(session: Session, booth_id: int, call_id: str) -> CallSession:
    """This booth's live call, or `call_not_found` (also another booth's) / `call_not_active`."""
    call = session.get(CallSession, call_id)
    if call is None or call.booth_id != booth_id:
        raise NotFoundError("call_not_found", "no such call for this booth")
    if call.status is not CallStatus.ACTIVE or call.clerk_id is None:
        raise ConflictError("call_not_active", f"call {call_id} is {call.status.value}")
    return call


# --------------------------------------------------------------------------- uploads


@dataclass(frozen=True)
class UploadForm:
    """A validated upload form; `id_name` and `id_number` only for kind `id_photo`."""

    call_id: str
    kind: str
    data: bytes
    content_type: str
    material_code: str | None = None
    id_name: str = ""
    id_number: str = ""


def _text_field(form: Any, name: str) -> str | None:
    value = form.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_FIELD_CHARS:
        raise ApiError(400, "invalid", f"field {name!r} must be a short text")
    return value


async def read_upload(request: Request) -> UploadForm:
    """The multipart form, checked for shape (the bytes and the ID number are checked by records)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES + 64 * 1024:
        raise ApiError(413, "file_too_large", f"uploads are limited to {MAX_UPLOAD_BYTES} bytes")
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(400, "invalid", "send multipart/form-data with call_id and file")
    try:
        form = await request.form(max_files=1, max_fields=6, max_part_size=MAX_UPLOAD_BYTES + 1)
    except Exception as exc:  # python-multipart refusals: too big, too many parts, malformed
        raise ApiError(400, "invalid", f"unreadable form: {exc}") from None
    try:
        call_id = form.get("call_id")
        upload = form.get("file")
        kind = _text_field(form, "kind") or "capture"
        code = _text_field(form, "material_code") or None
        id_name = _text_field(form, "id_name")
        id_number = _text_field(form, "id_number")
        if not isinstance(call_id, str) or not _UUID_RE.fullmatch(call_id):
            raise ApiError(400, "invalid", "field 'call_id' must be a lowercase UUID")
        if kind not in UPLOAD_KINDS:
            raise ApiError(400, "invalid", f"field 'kind' must be one of {', '.join(UPLOAD_KINDS)}")
        if not isinstance(upload, UploadFile):
            raise ApiError(400, "invalid", "field 'file' must be a file")
        if code is not None and (kind != "capture" or not _CODE_RE.fullmatch(code)):
            raise ApiError(400, "invalid", "field 'material_code' must be a checklist code (captures only)")
        if kind == "id_photo" and (id_name is None or id_number is None):
            raise ApiError(400, "invalid", "an id_photo needs the fields 'id_name' and 'id_number'")
        if kind != "id_photo" and (id_name is not None or id_number is not None):
            raise ApiError(400, "invalid", "'id_name' and 'id_number' belong to an id_photo only")
        data = await upload.read(MAX_UPLOAD_BYTES + 1)
        content_type = (upload.content_type or "").split(";")[0].strip().lower()
    finally:
        await form.close()
    if len(data) > MAX_UPLOAD_BYTES:
        raise ApiError(413, "file_too_large", f"uploads are limited to {MAX_UPLOAD_BYTES} bytes")
    return UploadForm(call_id, kind, data, content_type, code, id_name or "", id_number or "")


def _stored_json(material: Material) -> dict[str, Any]:
    return {"material_id": material.id, "kind": material.kind, "sha256": material.sha256, "size": material.size,
            "width": material.width, "height": material.height, "content_type": material.content_type}


async def _upload(request: Request) -> Response:
    booth = _booth(request)
    booth_id = booth.booth_id
    assert booth_id is not None
    form = await read_upload(request)
    store = request.app.state.store
    vault = vault_of(request.app.state)

    def store_it(session: Session) -> tuple[dict[str, Any], dict[str, Any], int, LiveIdCard | None]:
        call = own_live_call(session, booth_id, form.call_id)
        assert call.clerk_id is not None
        if form.kind == "id_photo":
            read = record_id_card_read(session, store, session_id=call.id, name=form.id_name,
                                       number=form.id_number, photo=form.data, content_type=form.content_type,
                                       actor=booth.actor)
            assert read.material.id is not None
            card = LiveIdCard(call.id, read.name, read.number, read.material.id)
            stored = {**_stored_json(read.material), "id_name": read.name, "id_number_masked": read.masked}
            note = push("idcard.read", call_id=call.id, name=read.name, id_number_masked=read.masked,
                        material_id=read.material.id, photo_url=f"/api/seat/materials/{read.material.id}")
            return stored, note, call.clerk_id, card
        material = add_material(session, store, session_id=call.id, kind=form.kind, data=form.data,
                                content_type=form.content_type, actor=booth.actor)
        stored = _stored_json(material)
        note = push("material.added", call_id=call.id, material_code=form.material_code, kind=form.kind,
                    **{k: stored[k] for k in ("material_id", "width", "height", "sha256", "size")})
        return stored, note, call.clerk_id, None

    stored, note, clerk_id, card = await _tx(request, store_it)
    if card is not None:  # only once the photo and the masked event are committed
        vault.put(card)
    await request.app.state.switchboard.deliver(f"clerk:{clerk_id}", note)
    return JSONResponse({"call_id": form.call_id, **stored}, status_code=201)


async def upload(request: Request) -> Response:
    """POST /api/booth/materials (multipart): a document still, a signature or an ID card read for the live call."""
    return await _respond(request, _upload)


# --------------------------------------------------------------------------- print jobs


def _own_job(session: Session, booth_id: int, job_id: int) -> PrintJob:
    job = session.get(PrintJob, job_id, populate_existing=True)
    if job is None or job.booth_id != booth_id:
        raise NotFoundError("print_job_not_found", "no such print job for this booth")
    return job


async def _print_pdf(request: Request) -> Response:
    booth_id = _booth(request).booth_id
    assert booth_id is not None
    job_id = int(request.path_params["job_id"])
    store = request.app.state.store

    def load(session: Session) -> tuple[bytes, str]:
        job = _own_job(session, booth_id, job_id)
        with store.open(job.path) as fh:
            data = fh.read()
        if job.status is PrintStatus.PENDING:
            mark_sent(session, job_id)
        return data, job.sha256

    data, sha = await _tx(request, load)
    return Response(data, media_type="application/pdf",
                    headers={"Cache-Control": "no-store", "X-Content-SHA256": sha,
                             "Content-Disposition": f'inline; filename="print-{job_id}.pdf"'})


async def print_pdf(request: Request) -> Response:
    """GET /api/booth/print-jobs/{job_id}.pdf: the document to print (this booth's jobs only)."""
    return await _respond(request, _print_pdf)


async def _print_result(request: Request) -> Response:
    booth = _booth(request)
    booth_id = booth.booth_id
    assert booth_id is not None
    job_id = int(request.path_params["job_id"])
    raw = await request.body()
    try:
        body = json.loads(raw) if len(raw) <= 4096 else None
    except (ValueError, UnicodeDecodeError):
        body = None
    if (not isinstance(body, dict) or first_bad_value(body) is not None or set(body) - {"status", "error"}
            or body.get("status") not in ("printed", "failed", "browser")):
        raise ApiError(400, "invalid", "the body is {status: printed|failed|browser, error?: string}")
    error = body.get("error") or ""
    if not isinstance(error, str):
        raise ApiError(400, "invalid", "error must be a string")

    def report(session: Session) -> tuple[PrintJob, int | None]:
        _own_job(session, booth_id, job_id)
        if body["status"] == "browser":  # handed to the browser's print dialog: not known to have printed
            job = note_browser_print(session, job_id, actor=booth.actor)
        else:
            job = report_print_result(session, job_id, PrintStatus(body["status"]), error=error, actor=booth.actor)
        call = session.get(CallSession, job.session_id) if job.session_id else None
        return job, call.clerk_id if call else None

    job, clerk_id = await _tx(request, report)
    reported = "browser" if body["status"] == "browser" else job.status.value
    if clerk_id is not None:
        await request.app.state.switchboard.deliver(
            f"clerk:{clerk_id}", push("print.result", call_id=job.session_id, print_job_id=job.id,
                                      document=job.document, status=reported, error=job.error))
    return JSONResponse({"print_job_id": job.id, "status": reported, "error": job.error})


async def print_result(request: Request) -> Response:
    """POST /api/booth/print-jobs/{job_id}/result {status, error?}: printed or failed (paper out, ...),
    or `browser`: a kiosk without an agent handed it to the browser's print dialog (not known printed)."""
    return await _respond(request, _print_result)
