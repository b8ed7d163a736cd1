"""`cloudseat verify`: check every event chain, every stored file, and what the log says of them.

Read-only.  Names the first break in one human line so an operator knows
where to look, and every problem found after it, one line each.  Order: the chains (a broken log makes every later
statement doubtful), every unpurged file's SHA-256, purges (each purged
row has its purge event and no file; each purge event's row is purged),
recording manifests (each logged manifest has its logged hash, and each
file it lists has that hash on its Recording row, which catches a file
swapped together with its row), and access events (each
`recording.played` / `material.viewed` names a row of its own session and
a known user).
"""

from __future__ import annotations

import json
import logging
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from records.errors import NotFoundError, UnsafePathError
from records.events import verify_chains
from records.models import Event, Material, PrintJob, Recording, User
from records.storage import FileStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of `verify_all`; `first_break` is one human line or None.

    `problems` names every problem found, one line each, first break first: a chain's first
    break (later links of a broken chain prove nothing), every file whose bytes changed or went
    missing, and the first problem of each further check.
    """

    ok: bool
    first_break: str | None
    checked_events: int
    checked_files: int
    checked_purges: int = 0  # purged rows (each against its event and the store)
    checked_manifests: int = 0
    checked_accesses: int = 0
    problems: tuple[str, ...] = ()


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
    """Verify the chains, every unpurged file, purges, manifests and access events.

    All files are hashed even after a break so `checked_files` counts the
    whole store, and every check runs; only the first problem is named.
    """
    chains = verify_chains(session)
    problems: list[str] = [chains.first_break.describe()] if chains.first_break else []
    checked_files = 0
    for label, row_id, path, sha256 in _stored_files(session):
        checked_files += 1
        problem = check_file(store, path, sha256)
        if problem is not None:
            logger.warning("%s %s %s: %s", label, row_id, path, problem)
            problems.append(f"{label} {row_id} {path}: {problem}")
    counts: dict[str, int] = {}
    for name, check in (("purges", check_purges), ("manifests", check_manifests), ("accesses", check_accesses)):
        count, problem = check(session, store)
        counts[name] = count
        if problem is not None:
            logger.warning("verify: %s", problem)
            problems.append(problem)
    lines = tuple(_one_line(p) for p in problems)
    return VerifyReport(ok=not lines, first_break=lines[0] if lines else None,
                        checked_events=chains.checked_events, checked_files=checked_files,
                        checked_purges=counts["purges"], checked_manifests=counts["manifests"],
                        checked_accesses=counts["accesses"], problems=lines)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _one_line(text: str) -> str:
    """Escape control characters: a path or actor from a tampered row must not break the one line."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


# --------------------------------------------------------------------------- purges

PURGE_EVENTS = {"recording.purged": ("recording", Recording), "material.purged": ("material", Material)}


def _events(session: Session, kinds: tuple[str, ...]) -> Iterator[Event]:
    return iter(session.exec(select(Event).where(col(Event.kind).in_(list(kinds))).order_by(col(Event.seq))))


def _row_id(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def check_purges(session: Session, store: FileStore) -> tuple[int, str | None]:
    """Each purge event's row is purged; each purged row has its event and no file left.

    A purged row whose file is still there is either a purge interrupted
    between its commit and the deletion, or a file put back: both say so,
    and `cloudseat purge` removes it.
    """
    checked, first = 0, None
    logged: dict[str, set[int]] = {"recording": set(), "material": set()}
    for ev in _events(session, tuple(PURGE_EVENTS)):
        label, model = PURGE_EVENTS[ev.kind]
        row_id = _row_id(ev.data, f"{label}_id")
        row = session.get(model, row_id) if row_id is not None else None
        if row_id is None or row is None:
            first = first or f"event seq {ev.seq} ({ev.kind}): names {label} {row_id}, which does not exist"
            continue
        logged[label].add(row_id)
        if row.purged_at is None:
            first = first or f"event seq {ev.seq} ({ev.kind}): {label} {row_id} is not marked purged"
    for label, model in (("recording", Recording), ("material", Material)):
        for row in session.exec(select(model).where(col(model.purged_at).is_not(None)).order_by(col(model.id))):
            checked += 1
            if row.id not in logged[label]:
                first = first or f"{label} {row.id} {row.path}: marked purged without a {label}.purged event"
            elif _still_there(store, row.path):
                first = first or (f"{label} {row.id} {row.path}: purged but the file is still there "
                                  "(an interrupted purge or a restored file; cloudseat purge removes it)")
    return checked, first


def _still_there(store: FileStore, path: str) -> bool:
    try:
        return store.exists(path)
    except UnsafePathError:
        return False


# --------------------------------------------------------------------------- manifests

MANIFEST_EVENTS = ("recording.finished", "recording.recovered")


def _manifest_entry_path(store: FileStore, manifest: str, entry: str) -> str:
    """The store path of a file a manifest lists (relative to the manifest's folder, or absolute)."""
    if entry.startswith("/"):
        return store.relative(Path(entry))
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(manifest), entry))
    store.absolute(joined)  # refuses anything outside the store
    return joined


def _check_manifest(session: Session, store: FileStore, ev: Event) -> str | None:
    where = f"event seq {ev.seq} ({ev.kind})"
    manifest, logged_sha = ev.data.get("manifest"), ev.data.get("manifest_sha256")
    if not isinstance(manifest, str) or not isinstance(logged_sha, str):
        return f"{where}: no manifest path and hash logged"
    problem = check_file(store, manifest, logged_sha)
    if problem is not None:
        return f"manifest {manifest} ({where}): {problem}"
    try:
        with store.open(manifest) as fh:
            document = json.load(fh)
        entries = [e for e in document["files"] if isinstance(e, dict) and isinstance(e.get("sha256"), str)]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"manifest {manifest} ({where}): unreadable ({exc.__class__.__name__})"
    for entry in entries:
        try:
            path = _manifest_entry_path(store, manifest, str(entry.get("path", "")))
        except UnsafePathError:
            return f"manifest {manifest} ({where}): lists {entry.get('path')!r} outside the store"
        row = session.exec(select(Recording).where(Recording.path == path)).first()
        if row is None:
            return f"manifest {manifest} ({where}): lists {path}, which no recording row holds"
        if row.sha256 != entry["sha256"]:
            return f"manifest {manifest} ({where}): recording {row.id} {path} sha256 differs from the manifest"
    for listed in ev.data.get("files", []):
        rec_id = _row_id(listed, "recording_id") if isinstance(listed, dict) else None
        row = session.get(Recording, rec_id) if rec_id is not None else None
        if row is None:
            return f"{where}: names recording {rec_id}, which does not exist"
        if row.sha256 != listed.get("sha256"):
            return f"{where}: recording {rec_id} {row.path} sha256 differs from the logged one"
    return None


def check_manifests(session: Session, store: FileStore) -> tuple[int, str | None]:
    """Each logged recording manifest is intact and agrees with the Recording rows.

    Files of purged recordings are expected to be gone (the purge check
    says so); the manifest itself stays and is still checked.
    """
    checked, first = 0, None
    for ev in _events(session, MANIFEST_EVENTS):
        checked += 1
        first = first or _check_manifest(session, store, ev)
    return checked, first


# --------------------------------------------------------------------------- access events

ACCESS_EVENTS = {"recording.played": ("recording", Recording), "material.viewed": ("material", Material)}


def _check_access(session: Session, ev: Event) -> str | None:
    label, model = ACCESS_EVENTS[ev.kind]
    where = f"event seq {ev.seq} ({ev.kind})"
    row_id = _row_id(ev.data, f"{label}_id")
    row = session.get(model, row_id) if row_id is not None else None
    if row is None:
        return f"{where}: names {label} {row_id}, which does not exist"
    if row.session_id != ev.session_id:
        return f"{where}: {label} {row_id} belongs to session {row.session_id}, not {ev.session_id}"
    prefix, _, user_id = ev.actor.partition(":")
    if prefix != "user" or not user_id.isdigit() or session.get(User, int(user_id)) is None:
        return f"{where}: actor {ev.actor} is not a known user"
    return None


def check_accesses(session: Session, store: FileStore) -> tuple[int, str | None]:
    """Each access event names an existing row of its own session, seen by an existing user."""
    checked, first = 0, None
    for ev in _events(session, tuple(ACCESS_EVENTS)):
        checked += 1
        first = first or _check_access(session, ev)
    return checked, first
