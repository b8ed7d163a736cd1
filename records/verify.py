"""`cloudseat verify`: check every event chain and every stored file's SHA-256.

Read-only.  Names the first break in one human line so an operator knows
where to look; the chain is checked before the files because a broken log
makes every later statement about the files doubtful.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

from sqlmodel import Session, col, select

from records.errors import NotFoundError, UnsafePathError
from records.events import verify_chains
from records.models import Material, PrintJob, Recording
from records.storage import FileStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of `verify_all`; `first_break` is one human line or None."""

    ok: bool
    first_break: str | None
    checked_events: int
    checked_files: int


def _stored_files(session: Session) -> Iterator[tuple[str, int | None, str, str]]:
    """(label, id, relative path, recorded sha256) of every file that should exist."""
    for m in session.exec(select(Material).where(col(Material.purged_at).is_(None)).order_by(col(Material.id))):
        yield "material", m.id, m.path, m.sha256
    for r in session.exec(select(Recording).where(col(Recording.purged_at).is_(None)).order_by(col(Recording.id))):
        yield "recording", r.id, r.path, r.sha256
    for p in session.exec(select(PrintJob).order_by(col(PrintJob.id))):
        yield "print job", p.id, p.path, p.sha256


def check_file(store: FileStore, path: str, sha256: str) -> str | None:
    """What is wrong with one stored file ("missing", "sha256 mismatch", ...), or None."""
    try:
        actual = store.sha256_of(path)
    except UnsafePathError:
        return "unsafe path"
    except NotFoundError:
        return "missing"
    except OSError as exc:
        return f"unreadable ({exc.__class__.__name__})"
    return None if actual == sha256 else "sha256 mismatch"


def verify_all(session: Session, store: FileStore) -> VerifyReport:
    """Verify the chains, then every unpurged material, recording and print file.

    All files are hashed even after a break so `checked_files` counts the
    whole store; only the first problem is named.
    """
    chains = verify_chains(session)
    first = chains.first_break.describe() if chains.first_break else None
    checked_files = 0
    for label, row_id, path, sha256 in _stored_files(session):
        checked_files += 1
        problem = check_file(store, path, sha256)
        if problem is not None:
            logger.warning("%s %s %s: %s", label, row_id, path, problem)
            if first is None:
                first = f"{label} {row_id} {path}: {problem}"
    return VerifyReport(ok=first is None, first_break=first,
                        checked_events=chains.checked_events, checked_files=checked_files)
