"""Recordings: one row per recorded track of a call, pointing at a file in the store.

The media hub writes the track files itself (stream copy, no transcoding);
this module registers a finished file, hashing it from the store so the
recorded SHA-256 is of the bytes actually on disk.
"""

from __future__ import annotations

import logging
import math

from sqlmodel import Session, col, select

from records.errors import NotFoundError, ValidationError
from records.events import append_event
from records.models import CallSession, Recording
from records.storage import FileStore

logger = logging.getLogger(__name__)


def add_recording(
    session: Session,
    store: FileStore,
    *,
    session_id: str,
    track: str,
    path: str,
    codec: str,
    duration_s: float,
    recovered: bool = False,
    actor: str = "system",
) -> Recording:
    """Register a finished track file (`path` relative to the store); event `recording.added`.

    `recovered` marks a file salvaged after a crash (it may end early).
    """
    if not track or len(track) > 64 or not codec or len(codec) > 16:
        raise ValidationError("invalid_recording", "track 1..64 and codec 1..16 chars")
    if not math.isfinite(duration_s) or duration_s < 0:
        raise ValidationError("invalid_duration", f"duration {duration_s!r}")
    if not store.exists(path):
        raise NotFoundError("file_not_found", f"no stored file {path}")
    # Hash before touching the database: a long track must not hold the log lock.
    sha256, size = store.sha256_of(path), store.size_of(path)
    call = session.get(CallSession, session_id)
    if call is None:
        raise NotFoundError("call_not_found", f"no call session {session_id!r}")
    recording = Recording(session_id=session_id, track=track, path=path, codec=codec,
                          duration_s=duration_s, size=size, sha256=sha256, recovered=recovered)
    session.add(recording)
    session.flush()
    append_event(session, kind="recording.added", actor=actor, session_id=session_id,
                 booth_id=call.booth_id,
                 data={"recording_id": recording.id, "track": track, "path": path, "codec": codec,
                       "duration_s": round(duration_s, 3), "size": size, "sha256": sha256,
                       "recovered": recovered})
    return recording


def list_recordings(session: Session, session_id: str, *, include_purged: bool = False) -> list[Recording]:
    """A session's recorded tracks in the order they were registered."""
    stmt = select(Recording).where(Recording.session_id == session_id)
    if not include_purged:
        stmt = stmt.where(col(Recording.purged_at).is_(None))
    return list(session.exec(stmt.order_by(col(Recording.id))))
