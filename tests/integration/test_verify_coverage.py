"""`verify_all` beyond the chains: purges, recording manifests and access events (SQLite and PostgreSQL).

Each tampering test starts from a store that verifies, changes one thing the
way an intruder or a crash would, and checks the one line that names it.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from records.events import append_event
from records.models import Recording
from records.storage import FileStore
from records.verify import verify_all
from tests.integration.test_retention import T0, make_call, run_purge
from tests.records_factories import seed


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "files")


@pytest.fixture
def world(records_engine, store):
    """Two ended calls (one purged of its recordings), access events by a supervisor; verifies clean."""
    ids = seed(records_engine)
    purged = make_call(records_engine, store, ids, ended_at=T0)
    kept = make_call(records_engine, store, ids, ended_at=T0 + timedelta(days=170), colour=(0, 0, 250))
    with Session(records_engine) as session:
        supervisor = f"user:{ids['supervisor_id']}"
        for call in (purged, kept):
            rid, _ = call.recordings[0]
            append_event(session, kind="recording.played", actor=supervisor, session_id=call.id,
                         data={"recording_id": rid, "track": "booth-face"})
            append_event(session, kind="material.viewed", actor=supervisor, session_id=call.id,
                         data={"material_id": call.materials[0][0]})
        session.commit()
    report = run_purge(records_engine, store, T0 + timedelta(days=181))
    assert {f.session_id for f in report.purged} == {purged.id} and report.recordings == 2
    return {"ids": ids, "purged": purged, "kept": kept}


def verify(engine, store):
    with Session(engine) as session:
        return verify_all(session, store)


def test_clean_store_with_everything_verifies(records_engine, store, world):
    report = verify(records_engine, store)
    assert report.ok, report.first_break
    assert report.checked_manifests == 2
    assert report.checked_accesses == 4
    assert report.checked_purges == 2  # the purged call's two tracks
    assert report.checked_files == 4  # kept call's two tracks, both materials


def test_altered_manifest_is_named(records_engine, store, world):
    manifest = world["purged"].manifest
    document = json.loads(store.absolute(manifest).read_text())
    document["files"][0]["duration_s"] = 1.0  # shorten what was recorded
    store.absolute(manifest).write_text(json.dumps(document))
    report = verify(records_engine, store)
    assert not report.ok
    assert report.first_break.startswith(f"manifest {manifest} (event seq ")
    assert report.first_break.endswith("(recording.finished)): sha256 mismatch")


def test_missing_manifest_is_named(records_engine, store, world):
    manifest = world["kept"].manifest
    store.delete(manifest)
    assert verify(records_engine, store).first_break.endswith("(recording.finished)): missing")


def test_track_swapped_together_with_its_row_is_caught_by_the_manifest(records_engine, store, world):
    rid, path = world["kept"].recordings[1]
    store.absolute(path).write_bytes(b"another conversation")
    with records_engine.begin() as conn:  # the intruder fixes the row's hash too: the file check passes
        conn.execute(text("UPDATE recording SET sha256 = :s, size = :n WHERE id = :id"),
                     {"s": store.sha256_of(path), "n": 20, "id": rid})
    report = verify(records_engine, store)
    assert report.first_break.startswith(f"manifest {world['kept'].manifest} (event seq ")
    assert report.first_break.endswith(f": recording {rid} {path} sha256 differs from the manifest")


def test_purged_file_that_reappears_is_named(records_engine, store, world):
    rid, path = world["purged"].recordings[0]
    store.absolute(path).write_bytes(b"restored from a backup")
    report = verify(records_engine, store)
    assert report.first_break == (f"recording {rid} {path}: purged but the file is still there "
                                  "(an interrupted purge or a restored file; cloudseat purge removes it)")


def test_purge_without_its_event_is_named(records_engine, store, world):
    mid, path = world["kept"].materials[0]
    store.delete(path)  # a file deleted by hand, the row marked purged to hide it
    with records_engine.begin() as conn:
        conn.execute(text("UPDATE material SET purged_at = CURRENT_TIMESTAMP WHERE id = :id"), {"id": mid})
    assert verify(records_engine, store).first_break == (
        f"material {mid} {path}: marked purged without a material.purged event")


def test_purge_event_whose_row_is_not_purged_is_named(records_engine, store, world):
    rid, path = world["purged"].recordings[1]
    store.absolute(path).write_bytes(bytes((200, 0, 0)) * 700)  # the very bytes, back from a backup
    with records_engine.begin() as conn:  # and the row "un-purged": every file check passes
        conn.execute(text("UPDATE recording SET purged_at = NULL WHERE id = :id"), {"id": rid})
    report = verify(records_engine, store)
    assert report.checked_files == 5
    assert report.first_break.startswith("event seq ")
    assert report.first_break.endswith(f" (recording.purged): recording {rid} is not marked purged")


def test_access_event_naming_a_nonexistent_recording_is_named(records_engine, store, world):
    with Session(records_engine) as session:
        event = append_event(session, kind="recording.played", actor=f"user:{world['ids']['supervisor_id']}",
                             session_id=world["kept"].id, data={"recording_id": 9999, "track": "booth-face"})
        session.commit()
        seq = event.seq
    assert verify(records_engine, store).first_break == (
        f"event seq {seq} (recording.played): names recording 9999, which does not exist")


def test_access_event_of_another_session_is_named(records_engine, store, world):
    kept, purged = world["kept"], world["purged"]
    mid = kept.materials[0][0]
    with Session(records_engine) as session:
        event = append_event(session, kind="material.viewed", actor=f"user:{world['ids']['supervisor_id']}",
                             session_id=purged.id, data={"material_id": mid})
        session.commit()
        seq = event.seq
    assert verify(records_engine, store).first_break == (
        f"event seq {seq} (material.viewed): material {mid} belongs to session {kept.id}, not {purged.id}")


def test_access_event_by_an_unknown_user_is_named(records_engine, store, world):
    kept = world["kept"]
    with Session(records_engine) as session:
        event = append_event(session, kind="recording.played", actor="user:4242", session_id=kept.id,
                             data={"recording_id": kept.recordings[0][0], "track": "booth-face"})
        session.commit()
        seq = event.seq
    assert verify(records_engine, store).first_break == (
        f"event seq {seq} (recording.played): actor user:4242 is not a known user")


def test_manifest_listing_a_file_without_a_row_is_named(records_engine, store, world):
    kept = world["kept"]
    with Session(records_engine) as session:
        rows = session.exec(select(Recording).where(Recording.session_id == kept.id)).all()
        moved = rows[0]
        old_path = moved.path
    with records_engine.begin() as conn:
        conn.execute(text("UPDATE recording SET path = :p WHERE id = :id"),
                     {"p": old_path.replace(".webm", ".mkv"), "id": moved.id})
    store.absolute(old_path).rename(store.absolute(old_path.replace(".webm", ".mkv")))
    report = verify(records_engine, store)
    assert report.first_break.endswith(f": lists {old_path}, which no recording row holds")


def test_the_break_stays_one_line_whatever_a_row_holds(records_engine, store, world):
    kept = world["kept"]
    with Session(records_engine) as session:
        append_event(session, kind="recording.played", actor="user:1\nok: all fine", session_id=kept.id,
                     data={"recording_id": kept.recordings[0][0]})
        session.commit()
    first = verify(records_engine, store).first_break
    assert "\n" not in first and first.endswith("actor user:1\\x0aok: all fine is not a known user")
