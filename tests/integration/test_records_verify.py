"""`verify_all`: chains and stored files, first break named in one line."""

from __future__ import annotations

import io

from PIL import Image
from sqlalchemy import text
from sqlmodel import Session

from records import calls, materials, printjobs
from records.retention import purge_material
from records.storage import FileStore
from records.verify import verify_all
from tests.records_factories import seed


def png(colour) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buf, format="PNG")
    return buf.getvalue()


def populate(engine, store):
    ids = seed(engine)
    with Session(engine) as session:
        call = calls.create_call(session, booth_id=ids["booth_id"], item_code=ids["item_code"])
        calls.mark_answered(session, call.id, clerk_id=ids["clerk_id"])
        mats = [materials.add_material(session, store, session_id=call.id, kind="capture", data=png(c),
                                       content_type="image/png", actor="booth:1")
                for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
        printjobs.create_print_job(session, store, booth_id=ids["booth_id"], document="receipt",
                                   pdf=b"%PDF-1.4\n%%EOF\n", session_id=call.id)
        session.commit()
        return [(m.id, m.path) for m in mats]


def run(engine, store):
    with Session(engine) as session:
        return verify_all(session, store)


def test_clean_store_verifies(records_engine, tmp_path):
    store = FileStore(tmp_path / "store")
    populate(records_engine, store)
    report = run(records_engine, store)
    assert report.ok and report.first_break is None
    assert report.checked_files == 4
    assert report.checked_events == 6  # queued, answered, 3 materials, print


def test_tampered_file_is_named(records_engine, tmp_path):
    store = FileStore(tmp_path / "store")
    mats = populate(records_engine, store)
    mid, path = mats[1]
    store.absolute(path).write_bytes(png((1, 2, 3)))
    report = run(records_engine, store)
    assert not report.ok
    assert report.first_break == f"material {mid} {path}: sha256 mismatch"


def test_missing_file_is_named(records_engine, tmp_path):
    store = FileStore(tmp_path / "store")
    mats = populate(records_engine, store)
    mid, path = mats[2]
    store.absolute(path).unlink()
    assert run(records_engine, store).first_break == f"material {mid} {path}: missing"


def test_purged_material_is_not_checked(records_engine, tmp_path):
    store = FileStore(tmp_path / "store")
    mats = populate(records_engine, store)
    mid, path = mats[0]
    with Session(records_engine) as session:
        purge_material(session, mid, actor="system", reason="retention test")
        session.commit()
    store.delete(path)
    report = run(records_engine, store)
    assert report.ok and report.checked_files == 3


def test_path_escape_in_a_row_is_reported_not_followed(records_engine, tmp_path):
    store = FileStore(tmp_path / "store")
    mats = populate(records_engine, store)
    mid, _ = mats[0]
    with records_engine.begin() as conn:
        conn.execute(text("UPDATE material SET path = '../../etc/passwd' WHERE id = :id"), {"id": mid})
    assert run(records_engine, store).first_break == f"material {mid} ../../etc/passwd: unsafe path"


def test_chain_break_comes_first(records_engine, tmp_path):
    store = FileStore(tmp_path / "store")
    mats = populate(records_engine, store)
    store.absolute(mats[0][1]).write_bytes(b"x")
    with records_engine.begin() as conn:
        conn.execute(text("UPDATE event SET kind = 'call.forged' WHERE seq = 2"))
    report = run(records_engine, store)
    assert report.first_break.startswith("event seq 2 (global chain): hash mismatch")
    assert report.checked_files == 4
