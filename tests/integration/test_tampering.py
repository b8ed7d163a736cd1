"""Tampering with the kept evidence is named by `cloudseat verify`, each kind on its own.

A store with a recorded call (two tracks and a manifest), a material and a case verifies clean;
each test then does one thing an intruder with database or disk access could do — edit, delete or
reorder event rows, change one byte of a recording or of a material — and checks that verify
names exactly that. The last test does all of them at once through the real command line and
checks that every one is named. SQLite and PostgreSQL both (the `records_engine` fixture).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import Session, col, select

from records.db import make_engine
from records.models import Event, Material, Recording
from records.storage import FileStore
from records.verify import verify_all
from tests.integration.test_cli import run
from tests.integration.test_retention import make_call
from tests.records_factories import seed


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "files")


@pytest.fixture
def evidence(records_engine, store):
    ids = seed(records_engine)
    call = make_call(records_engine, store, ids, ended_at=None, case=True)
    report = verify(records_engine, store)
    assert report.ok and report.problems == () and report.checked_files == 3, report.first_break
    return call


def verify(engine, store):
    with Session(engine) as session:
        return verify_all(session, store)


def seqs(engine) -> list[int]:
    with Session(engine) as session:
        return list(session.exec(select(Event.seq).order_by(col(Event.seq))))


def sql(engine, *statements: str) -> None:
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))


def flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_an_edited_event_row_is_named_at_its_seq(records_engine, store, evidence):
    middle = seqs(records_engine)[3]
    sql(records_engine, f"UPDATE event SET data = '{{\"forged\": true}}' WHERE seq = {middle}")
    report = verify(records_engine, store)
    assert not report.ok and report.first_break.startswith(f"event seq {middle} (global chain): hash")


def test_a_deleted_event_row_is_named(records_engine, store, evidence):
    middle = seqs(records_engine)[3]
    sql(records_engine, f"DELETE FROM event WHERE seq = {middle}")
    report = verify(records_engine, store)
    assert not report.ok and report.first_break.startswith(f"event seq {middle} (global chain)")


def test_reordered_event_rows_are_named(records_engine, store, evidence):
    """Two rows swap places (their seq numbers exchanged), every byte of each row kept."""
    a, b = seqs(records_engine)[2:4]
    sql(records_engine,
        f"UPDATE event SET seq = -1 WHERE seq = {a}",
        f"UPDATE event SET seq = {a} WHERE seq = {b}",
        f"UPDATE event SET seq = {b} WHERE seq = -1")
    report = verify(records_engine, store)
    assert not report.ok
    assert re.match(rf"event seq ({a}|{b}) \((global|session [^)]+) chain\)", report.first_break), report.first_break


def test_one_changed_byte_in_a_recording_is_named(records_engine, store, evidence):
    with Session(records_engine) as session:
        recording = session.exec(select(Recording).order_by(col(Recording.id))).first()
    flip_one_byte(store.root / recording.path)
    report = verify(records_engine, store)
    assert report.problems == (f"recording {recording.id} {recording.path}: sha256 mismatch",)


def test_one_changed_byte_in_a_material_is_named(records_engine, store, evidence):
    with Session(records_engine) as session:
        material = session.exec(select(Material)).one()
    flip_one_byte(store.root / material.path)
    report = verify(records_engine, store)
    assert report.problems == (f"material {material.id} {material.path}: sha256 mismatch",)


def test_the_command_names_every_tampering_at_once(tmp_path):
    data_dir = tmp_path / "var"
    engine = make_engine(f"sqlite:///{data_dir / 'cloudseat.db'}")
    try:
        from records.db import create_schema

        create_schema(engine)
        files = FileStore(data_dir / "files")
        make_call(engine, files, seed(engine), ended_at=None, case=True)
        with Session(engine) as session:
            recording = session.exec(select(Recording).order_by(col(Recording.id))).first()
            material = session.exec(select(Material)).one()
        clean = run(data_dir, "verify", "--json")
        assert clean.returncode == 0 and json.loads(clean.stdout)["ok"] is True, clean.stdout + clean.stderr
        edited = seqs(engine)[2]
        sql(engine, f"UPDATE event SET actor = 'user:999' WHERE seq = {edited}")
        flip_one_byte(files.root / recording.path)
        flip_one_byte(files.root / material.path)
    finally:
        engine.dispose()
    broken = run(data_dir, "verify")
    assert broken.returncode == 1
    lines = broken.stdout.strip().splitlines()
    assert lines[0].startswith(f"BROKEN: event seq {edited} (global chain): hash")
    assert f"also: recording {recording.id} {recording.path}: sha256 mismatch" in lines
    assert f"also: material {material.id} {material.path}: sha256 mismatch" in lines
    payload = json.loads(run(data_dir, "verify", "--json").stdout)
    assert payload["ok"] is False and len(payload["problems"]) == 3
