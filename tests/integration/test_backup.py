"""`cloudseat admin backup` while a real server takes calls, and `restore` into an empty place, on SQLite and PostgreSQL.

The PostgreSQL variants make fresh databases of their own (pg_dump dumps a
whole database, so the per-test schemas of `postgres_url` would not do) and
drop them afterwards.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, col, select

from cloudseat.settings import Settings
from records.db import make_engine
from records.models import Event, Material, PrintJob
from records.storage import FileStore
from tests.conftest import POSTGRES_ADMIN_URL, skip_or_fail
from tests.records_factories import fill_every_table
from tests.signaling_fixtures import PASSWORD, World, clients, world
from tests.web_clients import booth_client, login

ITEM = "SB-004"  # 社会保障卡补领换领 (packaged catalogue), served by c1's social_insurance skill


@pytest.fixture
def new_pg_database() -> Iterator[Callable[[], str]]:
    """Make fresh, empty PostgreSQL databases (each a URL); all dropped after the test."""
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def make() -> str:
        name = f"cs_bk_{uuid.uuid4().hex[:12]}"
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        except Exception as exc:  # noqa: BLE001 - any connection failure means "no server here"
            skip_or_fail(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {exc.__class__.__name__}")
        made.append(name)
        return make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)

    try:
        yield make
    finally:
        with admin.connect() as conn:
            for name in made:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def places(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Settings, Settings]:
    """Settings of the live deployment and of an empty one to restore into (data dir, database)."""
    live = Settings(data_dir=tmp_path / "live", public_base_url="http://127.0.0.1:8000",
                    offer_timeout_s=5.0, heartbeat_s=2.0)
    target = Settings(data_dir=tmp_path / "restored", public_base_url="http://127.0.0.1:8000")
    if request.param == "postgres":
        make = request.getfixturevalue("new_pg_database")
        live = live.with_overrides(database_url=make())
        target = target.with_overrides(database_url=make())
    return live, target


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cloudseat", *args], capture_output=True, text=True,
                          env=cli_env(settings), timeout=120)


def cli_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSEAT_")}
    env.update(CLOUDSEAT_DATA_DIR=str(settings.data_dir), CLOUDSEAT_DATABASE_URL=settings.database_url)
    return env


def png(seed: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (seed % 256, (seed * 7) % 256, 90)).save(out, "PNG")
    return out.getvalue()


async def served_call(w: World, booth: Any, clerk: Any, b1: Any, c1: Any, n: int) -> None:
    """One whole call: queue, answer, a capture uploaded, 受理 (case + printed receipt), end, wrap-up, rating."""
    call_id = (await booth.request("call.request", item_code=ITEM))["call_id"]
    await clerk.wait_for("offer", lambda m: m["call_id"] == call_id)
    await clerk.request("offer.accept", call_id=call_id)
    await booth.wait_for("call.connected", lambda m: m["call_id"] == call_id)
    made = await asyncio.to_thread(b1.post, "/api/booth/materials", data={"call_id": call_id},
                                   files={"file": ("doc.png", png(n), "image/png")})
    assert made.status_code == 201, made.text
    ticked = await asyncio.to_thread(c1.post, f"/api/seat/materials/{made.json()['material_id']}/tick",
                                     json={"checklist_code": "id_card"})
    assert ticked.status_code == 200, ticked.text
    decided = await asyncio.to_thread(c1.post, f"/api/seat/calls/{call_id}/decision",
                                      json={"outcome": "accept", "accept_without": ["photo"]})  # confirmed, logged
    assert decided.status_code == 201, decided.text
    job_id = decided.json()["print_job"]["id"]
    await booth.wait_for("print.request", lambda m: m["call_id"] == call_id)
    printed = await asyncio.to_thread(b1.post, f"/api/booth/print-jobs/{job_id}/result", json={"status": "printed"})
    assert printed.status_code == 200, printed.text
    await clerk.request("call.end", call_id=call_id)
    await booth.wait_for("call.ended", lambda m: m["call_id"] == call_id)
    await clerk.wait_for("presence.state", lambda m: m["status"] == "wrap_up")
    await clerk.request("wrapup.done", note=f"call {n}")
    rated = await asyncio.to_thread(b1.post, "/api/booth/ratings", json={"call_id": call_id, "level": 1 + n % 5})
    assert rated.status_code in (200, 201), rated.text


def chain(settings: Settings) -> list[tuple[int, str]]:
    """(seq, hash) of every event, in order."""
    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as session:
            return [(e.seq, e.hash) for e in session.exec(select(Event).order_by(col(Event.seq)))]
    finally:
        engine.dispose()


def count(settings: Settings, model: Any) -> int:
    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as session:
            return len(session.exec(select(model.id)).all())
    finally:
        engine.dispose()


async def test_a_backup_taken_while_serving_restores_to_a_copy_that_verifies(places, tmp_path):
    live, target = places
    backup_dir = tmp_path / "backup"
    with world(live) as w:
        engine = make_engine(live.database_url)
        fill_every_table(engine, FileStore(live.data_dir / "files"))  # every table, a recording and its manifest
        engine.dispose()
        booth, clerk = await w.booth("b1"), await w.clerk("c1")
        async with clients(booth, clerk):
            with closing(booth_client(w.url, w.tokens["b1"])) as b1, closing(login(w.url, "c1", PASSWORD)) as c1:
                await served_call(w, booth, clerk, b1, c1, 0)
                seq_at_launch = chain(live)[-1][0]
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "cloudseat", "admin", "backup", str(backup_dir), "--json",
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=cli_env(live))
                finished = asyncio.ensure_future(proc.communicate())
                n = 1
                while not finished.done():  # calls keep going for as long as the backup runs
                    await served_call(w, booth, clerk, b1, c1, n)
                    n += 1
                    # At most two calls a second, a busy clerk's pace: back to back, on an idle machine,
                    # the clerk's socket passes the 20 messages/s flood limit and is closed, as it should be.
                    await asyncio.wait({finished}, timeout=0.5)
                out, err = await finished
                await served_call(w, booth, clerk, b1, c1, n)  # and after it
    assert proc.returncode == 0, err.decode()
    summary = json.loads(out.decode())
    manifest = json.loads((backup_dir / "manifest.json").read_text(encoding="utf-8"))
    assert summary["files"] == len(manifest["files"]) and manifest["schema_revision"] == "0002"
    assert manifest["database"]["kind"] == ("sqlite" if live.database_url.startswith("sqlite") else "postgresql")
    assert [e["name"] for e in manifest["extra"]] == ["secret_key"]

    restored = cli(target, "admin", "restore", str(backup_dir), "--json")
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["needs_migrate"] is False
    verified = cli(target, "verify", "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = json.loads(verified.stdout)
    assert report["ok"] is True and report["checked_events"] > 0 and report["checked_manifests"] == 1
    assert report["checked_files"] + report["checked_manifests"] == len(manifest["files"])

    # The copy is one snapshot taken while the calls went on: a prefix of the live chain, past where it stood
    # when the backup started, short of where it ended; its files are exactly those its rows name.
    live_chain, copy_chain = chain(live), chain(target)
    assert copy_chain == live_chain[:len(copy_chain)]
    assert seq_at_launch < copy_chain[-1][0] < live_chain[-1][0]
    assert len(manifest["files"]) == count(target, Material) + count(target, PrintJob) + 2  # + recording, manifest
    assert count(target, Material) < count(live, Material)
    assert (target.data_dir / "secret_key").read_text() == (live.data_dir / "secret_key").read_text()
    assert cli(live, "verify").returncode == 0


# --------------------------------------------------------------------------- refusals, integrity, older schemas

def filled(settings: Settings, *, revision: str | None = None) -> dict[str, Any]:
    """A deployment with a row in every table and its files, no server; at head or at `revision`."""
    from cloudseat.settings import ensure_secret_key
    from records import migrate
    from records.db import create_schema

    ensure_secret_key(settings)  # as the first `cloudseat serve` does
    engine = make_engine(settings.database_url)
    try:
        if revision is None:
            create_schema(engine)
        else:
            migrate.upgrade(engine, revision)
        return fill_every_table(engine, FileStore(settings.data_dir / "files"))
    finally:
        engine.dispose()


def one_line_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_restore_refuses_a_target_that_is_not_empty_unless_forced(places, tmp_path):
    live, target = places
    filled(live)
    assert cli(live, "admin", "backup", str(tmp_path / "b")).returncode == 0
    assert cli(target, "admin", "restore", str(tmp_path / "b")).returncode == 0
    line = one_line_error(cli(target, "admin", "restore", str(tmp_path / "b")), 2)
    assert "target_not_empty" in line and "--force" in line
    stray = target.data_dir / "files" / "materials" / "zz" / "stray.png"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"not from the backup")
    (target.data_dir / "secret_key").write_text("x" * 40)
    forced = cli(target, "admin", "restore", str(tmp_path / "b"), "--force")
    assert forced.returncode == 0, forced.stderr
    assert not stray.exists()
    assert (target.data_dir / "secret_key").read_text() == (live.data_dir / "secret_key").read_text()
    assert cli(target, "verify").returncode == 0
    assert chain(target) == chain(live)


def test_a_damaged_backup_is_refused_before_the_target_is_touched(tmp_path):
    live = Settings(data_dir=tmp_path / "live")
    target = Settings(data_dir=tmp_path / "restored")
    filled(live)
    backup_dir = tmp_path / "b"
    assert cli(live, "admin", "backup", str(backup_dir)).returncode == 0
    manifest = json.loads((backup_dir / "manifest.json").read_text(encoding="utf-8"))
    victim = backup_dir / "files" / manifest["files"][1]["path"]
    victim.write_bytes(victim.read_bytes() + b"!")
    line = one_line_error(cli(target, "admin", "restore", str(backup_dir)), 1)
    assert "hash_mismatch" in line and manifest["files"][1]["path"] in line
    assert not target.data_dir.joinpath("cloudseat.db").exists() and not target.data_dir.joinpath("files").exists()
    (backup_dir / "manifest.json").unlink()
    assert "not_a_backup" in one_line_error(cli(target, "admin", "restore", str(backup_dir)), 2)
    assert "not_a_backup" in one_line_error(cli(target, "admin", "restore", str(tmp_path / "nowhere")), 2)


def test_backup_refuses_a_used_directory_and_fails_on_a_missing_file(tmp_path):
    live = Settings(data_dir=tmp_path / "live")
    filled(live)
    used = tmp_path / "used"
    used.mkdir()
    (used / "something").write_text("x")
    assert "backup_dir_not_empty" in one_line_error(cli(live, "admin", "backup", str(used)), 2)
    engine = make_engine(live.database_url)
    with Session(engine) as session:
        material = session.exec(select(Material).order_by(col(Material.id))).first()
    engine.dispose()
    (live.data_dir / "files" / material.path).unlink()
    line = one_line_error(cli(live, "admin", "backup", str(tmp_path / "b")), 1)
    assert "file_missing" in line and material.path in line
    assert not (tmp_path / "b").exists()  # no half backup left that looks like one
    empty = Settings(data_dir=tmp_path / "none")
    assert "no_database" in one_line_error(cli(empty, "admin", "backup", str(tmp_path / "c")), 2)


def test_a_backup_of_an_older_schema_restores_and_migrates(places, tmp_path):
    live, target = places
    filled(live, revision="0001")
    assert cli(live, "admin", "backup", str(tmp_path / "b")).returncode == 0
    restored = cli(target, "admin", "restore", str(tmp_path / "b"), "--json")
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["schema_revision"] == "0001" and json.loads(restored.stdout)["needs_migrate"]
    assert "cloudseat admin migrate" in one_line_error(cli(target, "verify"), 2)
    assert cli(target, "admin", "migrate").returncode == 0
    assert cli(target, "verify").returncode == 0
    assert chain(target) == chain(live)


def test_a_backup_restores_only_into_its_own_kind_of_database(tmp_path, new_pg_database):
    live = Settings(data_dir=tmp_path / "live")
    filled(live)
    assert cli(live, "admin", "backup", str(tmp_path / "b")).returncode == 0
    target = Settings(data_dir=tmp_path / "restored", database_url=new_pg_database())
    line = one_line_error(cli(target, "admin", "restore", str(tmp_path / "b")), 2)
    assert "kind_mismatch" in line and "sqlite" in line
