"""Documents printed at a booth (acceptance receipt, refusal, 一次性告知 notice) and their outcome."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from sqlmodel import Session

from records.errors import InvalidTransitionError, NotFoundError, ValidationError
from records.events import append_event, lock_log
from records.models import Booth, PrintJob, PrintStatus
from records.storage import FileStore

logger = logging.getLogger(__name__)

DOCUMENTS = frozenset({"receipt", "refusal", "notice", "form"})
MAX_PRINT_BYTES = 10 * 1024 * 1024


def create_print_job(
    session: Session,
    store: FileStore,
    *,
    booth_id: int,
    document: str,
    pdf: bytes,
    session_id: str | None = None,
    case_id: int | None = None,
    actor: str = "system",
) -> PrintJob:
    """Store the PDF and queue it for the booth's printer; event `print.created`."""
    if document not in DOCUMENTS:
        raise ValidationError("invalid_document", f"unknown document {document!r}")
    if not pdf.startswith(b"%PDF-"):
        raise ValidationError("content_mismatch", "print job is not a PDF")
    if len(pdf) > MAX_PRINT_BYTES:
        raise ValidationError("file_too_large", f"{len(pdf)} bytes")
    if session.get(Booth, booth_id) is None:
        raise NotFoundError("booth_not_found", f"no booth {booth_id}")
    stored = store.put_bytes("prints", pdf, ".pdf")
    job = PrintJob(session_id=session_id, booth_id=booth_id, case_id=case_id, document=document,
                   path=stored.path, sha256=stored.sha256)
    session.add(job)
    session.flush()
    append_event(session, kind="print.created", actor=actor, session_id=session_id, booth_id=booth_id,
                 data={"print_job_id": job.id, "document": document, "case_id": case_id,
                       "path": stored.path, "sha256": stored.sha256})
    return job


def _load(session: Session, job_id: int, allowed_from: set[PrintStatus], to: PrintStatus) -> PrintJob:
    lock_log(session)
    job = session.get(PrintJob, job_id, populate_existing=True)
    if job is None:
        raise NotFoundError("print_job_not_found", f"no print job {job_id}")
    if job.status not in allowed_from:
        raise InvalidTransitionError(message=f"print job {job_id}: {job.status.value} -> {to.value} not allowed")
    return job


def mark_sent(session: Session, job_id: int) -> PrintJob:
    """The job was delivered to the booth agent; event `print.sent`."""
    job = _load(session, job_id, {PrintStatus.PENDING}, PrintStatus.SENT)
    job.status = PrintStatus.SENT
    job.updated_at = datetime.now(timezone.utc)
    session.add(job)
    append_event(session, kind="print.sent", session_id=job.session_id, booth_id=job.booth_id,
                 data={"print_job_id": job.id})
    return job


def report_print_result(
    session: Session, job_id: int, status: PrintStatus, *, error: str = "", actor: str | None = None
) -> PrintJob:
    """The booth says the job printed or failed; event `print.printed` / `print.failed`.

    A failure needs an error text (shown to the clerk, who may reprint as a new job).
    """
    status = PrintStatus(status)
    if status not in (PrintStatus.PRINTED, PrintStatus.FAILED):
        raise ValidationError("invalid_print_result", f"result must be printed or failed, not {status.value}")
    error = error.strip()
    if status is PrintStatus.FAILED and not error:
        raise ValidationError("error_required", "a failed print needs an error text")
    job = _load(session, job_id, {PrintStatus.PENDING, PrintStatus.SENT}, status)
    job.status = status
    job.error = error[:200] if status is PrintStatus.FAILED else ""
    job.updated_at = datetime.now(timezone.utc)
    session.add(job)
    append_event(session, kind=f"print.{status.value}", actor=actor or f"booth:{job.booth_id}",
                 session_id=job.session_id, booth_id=job.booth_id,
                 data={"print_job_id": job.id, "error": job.error})
    return job


def note_browser_print(session: Session, job_id: int, *, actor: str | None = None) -> PrintJob:
    """A kiosk without a booth agent handed the job to the browser's print dialog; event
    `print.browser`. Nothing can confirm that paper came out, so the job stays `sent`: the log
    says what is known (handed to the dialog), never "printed"."""
    job = _load(session, job_id, {PrintStatus.PENDING, PrintStatus.SENT}, PrintStatus.SENT)
    job.status = PrintStatus.SENT
    job.updated_at = datetime.now(timezone.utc)
    session.add(job)
    append_event(session, kind="print.browser", actor=actor or f"booth:{job.booth_id}", session_id=job.session_id,
                 booth_id=job.booth_id, data={"print_job_id": job.id})
    return job
