"""Retention: what is expired at a fixed clock, legal hold, and purge (SQLite and PostgreSQL)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from media.recorder import RecordedFile, sha256_file, write_manifest
from records import calls, materials, recordings
from records.cases import open_case, set_legal_hold
from records.errors import NotFoundError, ValidationError
from records.events import append_event, list_events
from records.models import CallSession, Case, CaseStatus, Event, Material, Recording, as_utc
from records.retention import RetentionPolicy, find_expired, purge, purge_material
from records.storage import FileStore
from records.verify import verify_all
from tests.records_factories import seed

T0 = datetime(2026, 1, 10, 9, 30, tzinfo=timezone.utc)  # when the old call ended
POLICY = RetentionPolicy(recordings_days=180, materials_days=3650)


def png(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buf, format="PNG")
    return buf.getvalue()


@dataclass
class Call:
    """One call as the tests built it: its id, its rows' ids and their store paths."""

    id: str
    recordings: list[tuple[int, str]] = field(default_factory=list)
    materials: list[tuple[int, str]] = field(default_factory=list)
    manifest: str | None = None


def record_tracks(session: Session, store: FileStore, call_id: str, tracks: dict[str, bytes],
                  kind: str = "recording.finished") -> tuple[list[tuple[int, str]], str]:
    """Track files, a manifest written by the recorder's own `write_manifest`, rows and the event, as the hub does."""
    directory = store.root / "recordings" / call_id
    directory.mkdir(parents=True)
    files = []
    for name, data in tracks.items():
        path = directory / f"{name}.webm"
        path.write_bytes(data)
        files.append(RecordedFile(path=path, codec="VP8", kind="video", duration_s=3.0, size=len(data),
                                  sha256=sha256_file(path), frames=90, closed_cleanly=True,
                                  participant="booth", track_id=name))
    manifest = write_manifest(directory / "manifest.json", files, room=call_id)
    listed, rows = [], []
    for f, name in zip(files, tracks):
        row = recordings.add_recording(session, store, session_id=call_id, track=f"booth-{name}",
                                       path=store.relative(f.path), codec=f.codec, duration_s=f.duration_s)
        listed.append({"recording_id": row.id, "track": row.track, "path": row.path, "sha256": row.sha256,
                       "duration_s": f.duration_s, "frames": f.frames, "start_s": 0.0, "recovered": False})
        rows.append((row.id, row.path))
    append_event(session, kind=kind, session_id=call_id,
                 data={"manifest": store.relative(manifest), "manifest_sha256": sha256_file(manifest),
                       "files": listed})
    return rows, store.relative(manifest)


def make_call(engine: Engine, store: FileStore, ids: dict[str, Any], *, ended_at: datetime | None,
              colour: tuple[int, int, int] = (200, 0, 0), case: bool = False) -> Call:
    """A call with two recorded tracks (and a manifest) and one material; ended at `ended_at` (None: live)."""
    with Session(engine) as session:
        call = calls.create_call(session, booth_id=ids["booth_id"], item_code=ids["item_code"])
        calls.mark_answered(session, call.id, clerk_id=ids["clerk_id"])
        built = Call(call.id)
        built.recordings, built.manifest = record_tracks(
            session, store, call.id, {"face": bytes(colour) * 400, "document": bytes(colour) * 700})
        mat = materials.add_material(session, store, session_id=call.id, kind="capture", data=png(colour),
                                     content_type="image/png", actor=f"booth:{ids['booth_id']}")
        built.materials.append((mat.id, mat.path))
        if ended_at is not None:
            calls.mark_ended(session, call.id, "hangup_clerk")
            call.ended_at = ended_at  # the test's clock, not the wall clock
            session.add(call)
        if case:
            open_case(session, call_session_id=call.id, item_code=ids["item_code"], region_code=ids["region_code"],
                      booth_id=ids["booth_id"], clerk_id=ids["clerk_id"], status=CaseStatus.ACCEPTED,
                      decided_at=ended_at or T0, deadline=None)
        session.commit()
        return built


def event_count(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(Event)).one())


def run_purge(engine: Engine, store: FileStore, now: datetime, *, dry_run: bool = False, policy=POLICY):
    with Session(engine) as session:
        return purge(session, store, now=now, policy=policy, dry_run=dry_run, actor="cli")


def verify(engine: Engine, store: FileStore):
    with Session(engine) as session:
        return verify_all(session, store)


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "files")


@pytest.fixture
def ids(records_engine: Engine) -> dict[str, Any]:
    return seed(records_engine)


# --------------------------------------------------------------------------- what is expired


def test_expired_is_by_days_since_the_call_ended(records_engine, store, ids):
    old = make_call(records_engine, store, ids, ended_at=T0)
    recent = make_call(records_engine, store, ids, ended_at=T0 + timedelta(days=30), colour=(0, 200, 0))
    with Session(records_engine) as session:
        # Exactly 180 days after the end: not yet "older than" 180 days.
        assert find_expired(session, T0 + timedelta(days=180), POLICY) == []
        expired = find_expired(session, T0 + timedelta(days=180, seconds=1), POLICY)
        assert [(f.kind, f.id, f.session_id) for f in expired] == [
            ("recording", rid, old.id) for rid, _ in old.recordings]
        # Ten years on, the materials of the old call go too; the recent call's recordings long since.
        later = find_expired(session, T0 + timedelta(days=3650, seconds=1), POLICY)
        assert {(f.kind, f.session_id) for f in later} == {
            ("recording", old.id), ("recording", recent.id), ("material", old.id)}


def test_a_live_call_is_never_expired(records_engine, store, ids):
    make_call(records_engine, store, ids, ended_at=None)
    with Session(records_engine) as session:
        assert find_expired(session, T0 + timedelta(days=36_000), POLICY) == []


def test_a_queued_call_that_ended_unanswered_has_nothing_but_expires_cleanly(records_engine, store, ids):
    with Session(records_engine) as session:
        call = calls.create_call(session, booth_id=ids["booth_id"], item_code=ids["item_code"])
        calls.mark_abandoned(session, call.id)
        session.commit()
    report = run_purge(records_engine, store, T0 + timedelta(days=36_000))
    assert report.purged == () and report.deleted == 0


def test_policy_refuses_nonsense():
    for bad in (0, -1, 36_501):
        with pytest.raises(ValidationError):
            RetentionPolicy(recordings_days=bad, materials_days=10)
    with pytest.raises(ValidationError):
        RetentionPolicy(recordings_days=10, materials_days=True)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- legal hold


def test_legal_hold_protects_then_release_lets_purge_go(records_engine, store, ids):
    held = make_call(records_engine, store, ids, ended_at=T0, case=True)
    free = make_call(records_engine, store, ids, ended_at=T0, colour=(0, 0, 200))
    with Session(records_engine) as session:
        number = session.exec(select(Case.number).where(Case.session_id == held.id)).one()
        case = set_legal_hold(session, number, True, actor="user:1", reason="court order 2026-17")
        session.commit()
        assert case.legal_hold
    now = T0 + timedelta(days=3651)
    report = run_purge(records_engine, store, now)
    assert {f.session_id for f in report.purged} == {free.id}
    assert report.held_sessions == (held.id,)
    for _, path in held.recordings + held.materials:
        assert store.exists(path)

    with Session(records_engine) as session:
        case = session.exec(select(Case).where(Case.session_id == held.id)).one()
        set_legal_hold(session, case.id, False, actor="user:1", reason="order lifted")
        session.commit()
        holds = list_events(session, kind="case.legal_hold")
    assert [(e.data["on"], e.data["previous"], e.data["reason"], e.session_id) for e in holds] == [
        (True, False, "court order 2026-17", held.id), (False, True, "order lifted", held.id)]
    report = run_purge(records_engine, store, now)
    assert {f.session_id for f in report.purged} == {held.id} and report.held_sessions == ()
    assert verify(records_engine, store).ok


def test_legal_hold_refuses_bad_input_and_unknown_cases(records_engine, store, ids):
    make_call(records_engine, store, ids, ended_at=T0, case=True)
    before = event_count(records_engine)
    with Session(records_engine) as session:
        number = session.exec(select(Case.number)).one()
        with pytest.raises(ValidationError) as info:
            set_legal_hold(session, number, True, actor="cli", reason="  ")
        assert info.value.code == "reason_required"
        with pytest.raises(NotFoundError) as missing:
            set_legal_hold(session, "XH-1999-000001", True, actor="cli", reason="x")
        assert missing.value.code == "case_not_found"
        with pytest.raises(NotFoundError):
            set_legal_hold(session, 9999, True, actor="cli", reason="x")
        session.rollback()
        assert not session.exec(select(Case)).one().legal_hold
    assert event_count(records_engine) == before


# --------------------------------------------------------------------------- purge


def test_dry_run_deletes_nothing_and_logs_nothing(records_engine, store, ids):
    old = make_call(records_engine, store, ids, ended_at=T0)
    before = event_count(records_engine)
    report = run_purge(records_engine, store, T0 + timedelta(days=181), dry_run=True)
    assert report.dry_run and report.recordings == 2 and report.materials == 0 and report.deleted == 0
    assert event_count(records_engine) == before
    for _, path in old.recordings + old.materials:
        assert store.exists(path)
    with Session(records_engine) as session:
        assert session.exec(select(Recording).where(col(Recording.purged_at).is_not(None))).first() is None


def test_purge_deletes_files_keeps_rows_logs_and_verifies(records_engine, store, ids):
    old = make_call(records_engine, store, ids, ended_at=T0)
    recent = make_call(records_engine, store, ids, ended_at=T0 + timedelta(days=100), colour=(0, 9, 9))
    now = T0 + timedelta(days=181)
    report = run_purge(records_engine, store, now)
    assert (report.recordings, report.materials, report.deleted) == (2, 0, 2)
    assert report.bytes == 3 * 400 + 3 * 700
    for _, path in old.recordings:
        assert not store.exists(path)
    # The manifest stays: it holds no media and its hash is in the log.
    assert store.exists(old.manifest)
    for _, path in old.materials + recent.recordings + recent.materials:
        assert store.exists(path)

    with Session(records_engine) as session:
        rows = session.exec(select(Recording).where(Recording.session_id == old.id)).all()
        assert all(as_utc(r.purged_at) == now and len(r.sha256) == 64 for r in rows)
        purged_events = list_events(session, kind="recording.purged")
        assert sorted(e.data["recording_id"] for e in purged_events) == sorted(rid for rid, _ in old.recordings)
        assert all(e.actor == "cli" and e.session_id == old.id and e.data["reason"] == "retention 180 days"
                   for e in purged_events)
        [summary] = list_events(session, kind="retention.purged")
        assert summary.session_id is None and summary.actor == "cli"
        assert summary.data["recordings"] == 2 and summary.data["materials"] == 0
        assert summary.data["recordings_cutoff"] == (now - timedelta(days=180)).isoformat(timespec="microseconds")
        assert recordings.list_recordings(session, old.id) == []
    assert verify(records_engine, store).ok

    # Re-run at the same clock: nothing to do, nothing logged.
    before = event_count(records_engine)
    again = run_purge(records_engine, store, now)
    assert again.purged == () and again.leftovers == () and again.deleted == 0
    assert event_count(records_engine) == before

    # Ten years on the materials go as well, with their own events.
    final = run_purge(records_engine, store, T0 + timedelta(days=3800))
    assert (final.recordings, final.materials) == (2, 2)
    with Session(records_engine) as session:
        assert len(list_events(session, kind="material.purged")) == 2
        assert session.exec(select(Material).where(col(Material.purged_at).is_(None))).first() is None
    assert verify(records_engine, store).ok


class CrashingStore(FileStore):
    """A store whose process dies at the first deletion: the purge's commit is done, the files are not."""

    def delete(self, relpath: str) -> bool:
        raise KeyboardInterrupt("killed between commit and deletion")


def test_interrupted_purge_is_named_by_verify_and_finished_by_the_next_run(records_engine, store, ids):
    old = make_call(records_engine, store, ids, ended_at=T0)
    now = T0 + timedelta(days=181)
    with pytest.raises(KeyboardInterrupt):
        run_purge(records_engine, CrashingStore(store.root), now)
    # Committed: rows purged and events logged; files still there.
    first_id, first_path = old.recordings[0]
    assert store.exists(first_path)
    report = verify(records_engine, store)
    assert not report.ok
    assert report.first_break.startswith(f"recording {first_id} {first_path}: purged but the file is still there")

    rerun = run_purge(records_engine, store, now)
    assert rerun.purged == ()
    assert [f.id for f in rerun.leftovers] == [rid for rid, _ in old.recordings] and rerun.deleted == 2
    for _, path in old.recordings:
        assert not store.exists(path)
    with Session(records_engine) as session:
        assert [e.data["leftovers"] for e in list_events(session, kind="retention.purged")] == [0, 2]
        assert len(list_events(session, kind="recording.purged")) == 2  # one per file, not per attempt
    assert verify(records_engine, store).ok


def test_purge_material_marks_logs_and_refuses_twice(records_engine, store, ids):
    old = make_call(records_engine, store, ids, ended_at=T0)
    mid, path = old.materials[0]
    with Session(records_engine) as session:
        with pytest.raises(ValidationError):
            purge_material(session, mid, actor="user:1", reason=" ")
        material = purge_material(session, mid, actor="user:1", reason="resident's request")
        session.commit()
        assert material.purged_at is not None and store.exists(path)  # the file goes after the commit
        store.delete(path)
        with pytest.raises(NotFoundError):
            purge_material(session, mid, actor="user:1", reason="again")
        session.rollback()
        [event] = list_events(session, kind="material.purged")
        assert event.data == {"material_id": mid, "path": path, "sha256": material.sha256,
                              "reason": "resident's request"}
        assert event.session_id == old.id
    assert verify(records_engine, store).ok


def test_active_call_with_old_recordings_is_kept(records_engine, store, ids):
    live = make_call(records_engine, store, ids, ended_at=None)
    with Session(records_engine) as session:
        # A call re-opened (transferred, reconnected) keeps status active whatever its timestamps say.
        call = session.get(CallSession, live.id)
        call.ended_at = T0
        session.add(call)
        session.commit()
    report = run_purge(records_engine, store, T0 + timedelta(days=36_000))
    assert report.purged == ()
    for _, path in live.recordings + live.materials:
        assert store.exists(path)
