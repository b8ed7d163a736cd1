"""Materials and recordings: validation, storage, checklist, events."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from sqlmodel import Session

from records import materials, recordings
from records.errors import NotFoundError, UnsafePathError, ValidationError
from records.events import list_events
from records.retention import mark_recording_purged
from records.storage import FileStore
from tests.records_factories import seed_answered_call


def png(size=(64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (0, 90, 200)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def call_env(records_engine, tmp_path):
    return seed_answered_call(records_engine), FileStore(tmp_path / "store")


def test_add_material_stores_hashes_and_logs(records_engine, call_env):
    ids, store = call_env
    data = png()
    with Session(records_engine) as session:
        m = materials.add_material(session, store, session_id=ids["call_id"], kind="capture", data=data,
                                   content_type="image/png", checklist_code="id_card", actor="booth:1")
        session.commit()
        assert (m.width, m.height, m.size) == (64, 48, len(data))
        assert m.path.startswith("materials/") and m.path.endswith(".png")
        assert store.sha256_of(m.path) == m.sha256
        with store.open(m.path) as fh:
            assert fh.read() == data
        ev = [e for e in list_events(session, session_id=ids["call_id"]) if e.kind == "material.added"]
        assert ev[0].data["sha256"] == m.sha256 and ev[0].data["material_id"] == m.id
        assert [x.id for x in materials.list_materials(session, ids["call_id"])] == [m.id]


def test_fake_png_is_refused_and_nothing_is_stored(records_engine, call_env):
    ids, store = call_env
    fake = b"\x89PNG\r\n\x1a\n" + b"<script>alert(1)</script>" * 20
    with Session(records_engine) as session:
        with pytest.raises(ValidationError) as info:
            materials.add_material(session, store, session_id=ids["call_id"], kind="capture", data=fake,
                                   content_type="image/png", actor="booth:1")
        assert info.value.code == "content_mismatch"
        assert materials.list_materials(session, ids["call_id"]) == []
        assert [e.kind for e in list_events(session) if e.kind == "material.added"] == []
    assert not (store.root / "materials").exists()


def test_material_for_unknown_call_or_checklist_code(records_engine, call_env):
    ids, store = call_env
    with Session(records_engine) as session:
        with pytest.raises(NotFoundError):
            materials.add_material(session, store, session_id="nope", kind="capture", data=png(),
                                   content_type="image/png", actor="booth:1")
        with pytest.raises(ValidationError) as info:
            materials.add_material(session, store, session_id=ids["call_id"], kind="capture", data=png(),
                                   content_type="image/png", checklist_code="passport", actor="booth:1")
        assert info.value.code == "unknown_checklist_code"
        with pytest.raises(ValidationError) as info:
            materials.add_material(session, store, session_id=ids["call_id"], kind="../../x", data=png(),
                                   content_type="image/png", actor="booth:1")
        assert info.value.code == "invalid_material_kind"


def test_tick_checklist_and_missing_mandatory(records_engine, call_env):
    ids, store = call_env
    with Session(records_engine) as session:
        m = materials.add_material(session, store, session_id=ids["call_id"], kind="capture", data=png(),
                                   content_type="image/png", actor="booth:1")
        assert materials.missing_mandatory(session, ids["call_id"]) == ["id_card", "hukou"]
        materials.tick_checklist(session, m.id, "hukou", actor="user:1")
        session.commit()
        assert materials.missing_mandatory(session, ids["call_id"]) == ["id_card"]
        with pytest.raises(ValidationError):
            materials.tick_checklist(session, m.id, "nonsense", actor="user:1")
        session.rollback()
        ticked = [e for e in list_events(session) if e.kind == "material.ticked"]
        assert [e.data["checklist_code"] for e in ticked] == ["hukou"]


def test_recording_registration_hashes_the_file_on_disk(records_engine, call_env):
    ids, store = call_env
    track = store.root / "recordings" / ids["call_id"] / "booth-face.webm"
    track.parent.mkdir(parents=True)
    track.write_bytes(b"\x1aE\xdf\xa3" + b"\x00" * 1000)
    relpath = store.relative(track)
    with Session(records_engine) as session:
        rec = recordings.add_recording(session, store, session_id=ids["call_id"], track="booth-face",
                                       path=relpath, codec="VP8", duration_s=12.5)
        session.commit()
        assert (rec.size, rec.sha256) == (1004, store.sha256_of(relpath))
        assert [r.id for r in recordings.list_recordings(session, ids["call_id"])] == [rec.id]
        with pytest.raises(UnsafePathError):
            recordings.add_recording(session, store, session_id=ids["call_id"], track="x",
                                     path="../../etc/passwd", codec="VP8", duration_s=1)
        mark_recording_purged(session, rec.id, actor="system", reason="retention 180 days")
        session.commit()
        store.delete(relpath)  # after the commit, as `records.retention.purge` does
        assert recordings.list_recordings(session, ids["call_id"]) == []
        assert not track.exists()
        kinds = [e.kind for e in list_events(session, session_id=ids["call_id"])]
        assert kinds[-2:] == ["recording.added", "recording.purged"]
