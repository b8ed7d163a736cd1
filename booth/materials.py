"""Documents in and out of the booth: captured stills up, decision documents down to the printer.

Routes (booth token only, see `booth.routes`):

- `POST /api/booth/materials`: multipart `call_id`, `file` (JPEG/PNG/WebP), `material_code`?:
  a full-resolution still of the document camera, for the booth's live call only.  The
  bytes are validated (records.materials: Pillow parses them, pixel bombs refused), stored
  with their SHA-256 and pixel size, and the serving clerk is pushed `material.added`.
- `GET /api/booth/print-jobs/{id}.pdf`: one of this booth's print jobs (pending -> sent).
- `POST /api/booth/print-jobs/{id}/result` {status: printed|failed, error?}: what the
  printer did; the clerk is pushed `print.result`.

| code | status | when |
|---|---|---|
| `invalid`, `bad_json` | 400 | malformed form or body |
| `content_type_not_allowed`, `content_mismatch`, `empty_file`, `image_too_large` | 400 | the file is not an acceptable image |
| `call_not_found`, `print_job_not_found` | 404 | not this booth's (another booth's looks the same) |
| `call_not_active` | 409 | the call is not live |
| `invalid_transition` | 409 | a result for a job already reported |
| `file_too_large` | 413 | an upload over MAX_UPLOAD_BYTES |
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from sqlmodel import Session
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from records.errors import ConflictError, NotFoundError
from records.materials import add_material
from records.models import CallSession, CallStatus, PrintJob, PrintStatus
from records.printjobs import mark_sent, report_print_result
from signaling.access import Principal
from signaling.protocol import push
from signaling.json_api import ApiError
from signaling.json_api import respond as _respond
from signaling.json_api import transact as _tx

logger = logging.getLogger(__name__)


MAX_UPLOAD_BYTES = 16 * 1024 * 1024  # a 20 MP JPEG is a few MB; the records layer refuses > 25 MB anyway
_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_CODE_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")

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


async def _upload(request: Request) -> Response:
    booth = _booth(request)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES + 64 * 1024:
        raise ApiError(413, "file_too_large", f"uploads are limited to {MAX_UPLOAD_BYTES} bytes")
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(400, "invalid", "send multipart/form-data with call_id and file")
    try:
        form = await request.form(max_files=1, max_fields=4, max_part_size=MAX_UPLOAD_BYTES + 1)
    except Exception as exc:  # python-multipart refusals: too big, too many parts, malformed
        raise ApiError(400, "invalid", f"unreadable form: {exc}") from None
    try:
        call_id = form.get("call_id")
        upload = form.get("file")
        code = form.get("material_code") or None
        if not isinstance(call_id, str) or not _UUID_RE.fullmatch(call_id):
            raise ApiError(400, "invalid", "field 'call_id' must be a lowercase UUID")
        if not isinstance(upload, UploadFile):
            raise ApiError(400, "invalid", "field 'file' must be a file")
        if code is not None and (not isinstance(code, str) or not _CODE_RE.fullmatch(code)):
            raise ApiError(400, "invalid", "field 'material_code' must be a checklist code")
        data = await upload.read(MAX_UPLOAD_BYTES + 1)
        content_type = (upload.content_type or "").split(";")[0].strip().lower()
    finally:
        await form.close()
    if len(data) > MAX_UPLOAD_BYTES:
        raise ApiError(413, "file_too_large", f"uploads are limited to {MAX_UPLOAD_BYTES} bytes")
    booth_id = booth.booth_id
    assert booth_id is not None
    store = request.app.state.store

    def store_it(session: Session) -> tuple[dict[str, Any], int]:
        call = own_live_call(session, booth_id, call_id)
        material = add_material(session, store, session_id=call.id, kind="capture", data=data,
                                content_type=content_type, actor=booth.actor)
        assert call.clerk_id is not None
        return {"material_id": material.id, "sha256": material.sha256, "size": material.size,
                "width": material.width, "height": material.height, "content_type": material.content_type}, \
            call.clerk_id

    stored, clerk_id = await _tx(request, store_it)
    await request.app.state.switchboard.deliver(
        f"clerk:{clerk_id}", push("material.added", call_id=call_id, material_code=code,
                                  **{k: stored[k] for k in ("material_id", "width", "height", "sha256", "size")}))
    return JSONResponse({"call_id": call_id, **stored}, status_code=201)


async def upload(request: Request) -> Response:
    """POST /api/booth/materials (multipart): a document still for the live call."""
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
    if not isinstance(body, dict) or set(body) - {"status", "error"} or body.get("status") not in ("printed", "failed"):
        raise ApiError(400, "invalid", "the body is {status: printed|failed, error?: string}")
    error = body.get("error") or ""
    if not isinstance(error, str):
        raise ApiError(400, "invalid", "error must be a string")

    def report(session: Session) -> tuple[PrintJob, int | None]:
        _own_job(session, booth_id, job_id)
        job = report_print_result(session, job_id, PrintStatus(body["status"]), error=error, actor=booth.actor)
        call = session.get(CallSession, job.session_id) if job.session_id else None
        return job, call.clerk_id if call else None

    job, clerk_id = await _tx(request, report)
    if clerk_id is not None:
        await request.app.state.switchboard.deliver(
            f"clerk:{clerk_id}", push("print.result", call_id=job.session_id, print_job_id=job.id,
                                      document=job.document, status=job.status.value, error=job.error))
    return JSONResponse({"print_job_id": job.id, "status": job.status.value, "error": job.error})


async def print_result(request: Request) -> Response:
    """POST /api/booth/print-jobs/{job_id}/result {status, error?}: printed or failed (paper out, ...)."""
    return await _respond(request, _print_result)
