"""Retention: which recordings and materials are past their keeping period, and purging them.

A file expires when its call ended more than the policy's days before the
clock `now` (recordings and materials have separate periods).  Never
expired: anything of a call that has not ended (queued, offered, live), and
anything of a call whose case is under legal hold (`records.cases.set_legal_hold`).

Purging deletes the file only: the row stays with its SHA-256 and gets
`purged_at`, and the log gets one `recording.purged` / `material.purged`
event per file plus one `retention.purged` summary, so the record still
says what existed and that it went, and when.

Crash safety: rows are marked and the events logged in one transaction
that commits *before* any file is deleted.  A crash in between leaves
purged rows whose files still exist, never live rows without their file;
`records.verify` names such a leftover, and the next `purge` deletes it
(counted as `leftovers`).

Manifests: a recording directory's `manifest.json` (and the hub's
`room.json`) stay when every track in it is purged.  They hold no media,
only track names, durations, sizes and hashes, and the manifest's own hash
is in the log: keeping it lets `cloudseat verify` still show that the
purged rows are the files that were recorded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlmodel import Session, col, select

from records.errors import NotFoundError, UnsafePathError, ValidationError
from records.events import append_event, lock_log
from records.models import CallSession, CallStatus, Case, Material, Recording, as_utc, utcnow
from records.storage import FileStore

logger = logging.getLogger(__name__)

FileKind = Literal["recording", "material"]
ENDED_STATUSES = (CallStatus.ENDED, CallStatus.ABANDONED)
MAX_DAYS = 36_500


@dataclass(frozen=True)
class RetentionPolicy:
    """How many days after the end of its call a recording / a material is kept."""

    recordings_days: int
    materials_days: int

    def __post_init__(self) -> None:
        for name, days in (("recordings_days", self.recordings_days), ("materials_days", self.materials_days)):
            if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
                raise ValidationError("invalid_retention", f"{name} must be a whole number of days 1..{MAX_DAYS}")

    def cutoffs(self, now: datetime) -> tuple[datetime, datetime]:
        """(recordings, materials): a file of a call that ended before its cut-off is expired."""
        now = as_utc(now)
        return now - timedelta(days=self.recordings_days), now - timedelta(days=self.materials_days)


@dataclass(frozen=True)
class FileRef:
    """One stored file a purge deleted, would delete, or found left over."""

    kind: FileKind
    id: int
    session_id: str
    path: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "session_id": self.session_id, "path": self.path,
                "size": self.size}


@dataclass(frozen=True)
class PurgeReport:
    """What one `purge` did (or, with `dry_run`, would do)."""

    now: datetime
    dry_run: bool
    recordings_cutoff: datetime
    materials_cutoff: datetime
    purged: tuple[FileRef, ...]  # marked purged by this run
    leftovers: tuple[FileRef, ...]  # purged earlier, file still present (an interrupted purge)
    deleted: int  # files actually removed from the store (0 on a dry run)
    held_sessions: tuple[str, ...]  # sessions with expired files kept because of a legal hold

    @property
    def recordings(self) -> int:
        return sum(1 for f in self.purged if f.kind == "recording")

    @property
    def materials(self) -> int:
        return sum(1 for f in self.purged if f.kind == "material")

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.purged)

    def to_json(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(), "dry_run": self.dry_run,
            "recordings_cutoff": self.recordings_cutoff.isoformat(),
            "materials_cutoff": self.materials_cutoff.isoformat(),
            "recordings": self.recordings, "materials": self.materials, "bytes": self.bytes,
            "deleted": self.deleted, "held_sessions": list(self.held_sessions),
            "purged": [f.to_json() for f in self.purged], "leftovers": [f.to_json() for f in self.leftovers],
        }


# --------------------------------------------------------------------------- what is expired


def _held_session_ids() -> Any:
    """Sessions whose case is under legal hold (a subquery)."""
    return select(Case.session_id).where(col(Case.legal_hold).is_(True), col(Case.session_id).is_not(None))


def _ended_before(cutoff: datetime) -> Any:
    return (col(CallSession.status).in_(ENDED_STATUSES), col(CallSession.ended_at).is_not(None),
            col(CallSession.ended_at) < cutoff)


def _expired(session: Session, model: type[Recording] | type[Material], cutoff: datetime,
             *, held: bool) -> list[tuple[Recording | Material, CallSession]]:
    """Unpurged rows of `model` whose call ended before `cutoff`, of held sessions or of the others."""
    hold = col(model.session_id).in_(_held_session_ids())
    stmt = (
        select(model, CallSession)
        .join(CallSession, col(model.session_id) == col(CallSession.id))
        .where(col(model.purged_at).is_(None), *_ended_before(cutoff), hold if held else ~hold)
        .order_by(col(model.id))
        .execution_options(populate_existing=True)
    )
    rows = [(row, call) for row, call in session.exec(stmt)]
    # Belt and braces for SQLite, which compares timestamps as text.
    return [(row, call) for row, call in rows if call.ended_at is not None and as_utc(call.ended_at) < cutoff]


def _ref(kind: FileKind, row: Recording | Material) -> FileRef:
    assert row.id is not None
    return FileRef(kind=kind, id=row.id, session_id=row.session_id, path=row.path, size=row.size)


def find_expired(session: Session, now: datetime, policy: RetentionPolicy) -> list[FileRef]:
    """Every file past retention at `now`, recordings first, never one of a live call or a held case."""
    rec_cut, mat_cut = policy.cutoffs(now)
    return ([_ref("recording", r) for r, _ in _expired(session, Recording, rec_cut, held=False)]
            + [_ref("material", m) for m, _ in _expired(session, Material, mat_cut, held=False)])


def held_sessions(session: Session, now: datetime, policy: RetentionPolicy) -> list[str]:
    """Sessions that would have expired files at `now` but whose case is under legal hold."""
    rec_cut, mat_cut = policy.cutoffs(now)
    found = {r.session_id for r, _ in _expired(session, Recording, rec_cut, held=True)}
    found |= {m.session_id for m, _ in _expired(session, Material, mat_cut, held=True)}
    return sorted(found)


def _present(store: FileStore, path: str) -> bool:
    try:
        return store.exists(path)
    except UnsafePathError:
        return False  # never touch it; `cloudseat verify` names the row


def leftover_files(session: Session, store: FileStore) -> list[FileRef]:
    """Purged rows whose file is still in the store: a purge stopped between commit and deletion."""
    recordings = session.exec(select(Recording).where(col(Recording.purged_at).is_not(None)).order_by(col(Recording.id)))
    materials = session.exec(select(Material).where(col(Material.purged_at).is_not(None)).order_by(col(Material.id)))
    return ([_ref("recording", r) for r in recordings if _present(store, r.path)]
            + [_ref("material", m) for m in materials if _present(store, m.path)])


# --------------------------------------------------------------------------- marking rows purged


def _mark(session: Session, model: type[Recording] | type[Material], row_id: int, *, actor: str, reason: str,
          now: datetime | None) -> Recording | Material:
    kind = "recording" if model is Recording else "material"
    if not reason.strip():
        raise ValidationError("reason_required", f"purging a {kind} needs a reason")
    lock_log(session)
    row = session.get(model, row_id, populate_existing=True)
    if row is None or row.purged_at is not None:
        raise NotFoundError(f"{kind}_not_found", f"no unpurged {kind} {row_id}")
    call = session.get(CallSession, row.session_id)
    row.purged_at = as_utc(now) if now is not None else utcnow()
    session.add(row)
    append_event(session, kind=f"{kind}.purged", actor=actor, session_id=row.session_id,
                 booth_id=call.booth_id if call else None,
                 data={f"{kind}_id": row.id, "path": row.path, "sha256": row.sha256, "reason": reason})
    return row


def mark_recording_purged(session: Session, recording_id: int, *, actor: str, reason: str,
                          now: datetime | None = None) -> Recording:
    """Mark a recording purged and log `recording.purged`; the file is the caller's to delete after commit."""
    row = _mark(session, Recording, recording_id, actor=actor, reason=reason, now=now)
    assert isinstance(row, Recording)
    return row


def purge_material(session: Session, material_id: int, *, actor: str, reason: str,
                   now: datetime | None = None) -> Material:
    """Mark a material purged and log `material.purged`; does not commit and does not delete.

    Delete the file (`store.delete(material.path)`) only after the commit:
    a crash in between leaves a leftover that verify names and the next
    `purge` removes, never a live row without its file.
    """
    row = _mark(session, Material, material_id, actor=actor, reason=reason, now=now)
    assert isinstance(row, Material)
    return row


# --------------------------------------------------------------------------- the purge


def _delete(store: FileStore, files: list[FileRef]) -> int:
    deleted = 0
    for f in files:
        try:
            deleted += store.delete(f.path)
        except (UnsafePathError, OSError) as exc:  # the next run (or verify) sees it again
            logger.error("%s %d %s: not deleted: %s", f.kind, f.id, f.path, exc)
    return deleted


def purge(session: Session, store: FileStore, *, now: datetime, policy: RetentionPolicy, dry_run: bool = False,
          actor: str = "system") -> PurgeReport:
    """Purge every expired file at the clock `now`; returns what was (or would be) purged.

    Commits the session itself (the files are deleted after the commit, see
    the module docstring).  A run that finds nothing to purge and no
    leftover changes nothing and logs nothing, so running it from cron
    every night costs no events.
    """
    now = as_utc(now)
    rec_cut, mat_cut = policy.cutoffs(now)
    if not dry_run:
        lock_log(session)  # before reading: a legal hold set meanwhile is either seen or waits
    expired = find_expired(session, now, policy)
    held = tuple(held_sessions(session, now, policy))
    leftovers = leftover_files(session, store)
    if dry_run or (not expired and not leftovers):
        if not dry_run:
            session.commit()  # release the log lock
        return PurgeReport(now, dry_run, rec_cut, mat_cut, tuple(expired), tuple(leftovers), 0, held)

    for f in expired:
        days = policy.recordings_days if f.kind == "recording" else policy.materials_days
        model = Recording if f.kind == "recording" else Material
        _mark(session, model, f.id, actor=actor, reason=f"retention {days} days", now=now)
    report = PurgeReport(now, dry_run, rec_cut, mat_cut, tuple(expired), tuple(leftovers), 0, held)
    append_event(session, kind="retention.purged", actor=actor,
                 data={"now": now, "recordings": report.recordings, "materials": report.materials,
                       "bytes": report.bytes, "leftovers": len(leftovers),
                       "recordings_days": policy.recordings_days, "materials_days": policy.materials_days,
                       "recordings_cutoff": rec_cut, "materials_cutoff": mat_cut,
                       "held_sessions": len(held)})
    session.commit()
    deleted = _delete(store, list(expired) + list(leftovers))
    logger.info("purge: %d recordings, %d materials, %d leftovers, %d files deleted",
                report.recordings, report.materials, len(leftovers), deleted)
    return PurgeReport(now, dry_run, rec_cut, mat_cut, tuple(expired), tuple(leftovers), deleted, held)
