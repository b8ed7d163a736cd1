"""The `cloudseat` command line, run as a real process against a real database."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from sqlmodel import Session, select

from records.db import make_engine
from records.models import Booth, Event


def run(data_dir: Path, *args: str, stdin: str | None = None, extra_env: dict | None = None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSEAT_")}
    env["CLOUDSEAT_DATA_DIR"] = str(data_dir)
    env.update(extra_env or {})
    return subprocess.run([sys.executable, "-m", "cloudseat", *args], capture_output=True, text=True,
                          input=stdin, env=env, timeout=60)


def run_json(data_dir: Path, *args: str, **kw) -> dict:
    result = run(data_dir, *args, "--json", **kw)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "var"
    assert run(d, "admin", "create-region", "--code", "xihu", "--name-zh", "西湖街道", "--name-en", "Xihu").returncode == 0
    return d


def test_create_booth_prints_token_once_and_stores_only_its_hash(data_dir):
    out = run_json(data_dir, "admin", "create-booth", "--name", "booth-a", "--region", "xihu")
    token = out["token"]
    assert token.startswith("cst_") and out["kiosk_url"].endswith(f"#token={token}")
    db_bytes = b"".join(p.read_bytes() for p in data_dir.glob("cloudseat.db*"))
    assert token.encode() not in db_bytes
    engine = make_engine(f"sqlite:///{data_dir / 'cloudseat.db'}")
    with Session(engine) as session:
        booth = session.exec(select(Booth)).one()
    engine.dispose()
    import hashlib
    assert booth.token_hash == hashlib.sha256(token.encode()).hexdigest()
    again = run(data_dir, "admin", "create-booth", "--name", "booth-a", "--region", "xihu")
    assert again.returncode == 2 and "booth_name_taken" in again.stderr
    assert run_json(data_dir, "admin", "revoke-booth", "--name", "booth-a") == {"name": "booth-a", "revoked": True}


def test_create_user_generates_or_reads_a_password(data_dir):
    generated = run_json(data_dir, "admin", "create-user", "--username", "wang", "--role", "clerk",
                         "--skills", "social_insurance,medical", "--regions", "xihu")
    assert generated["role"] == "clerk" and len(generated["password"]) >= 12
    piped = run_json(data_dir, "admin", "create-user", "--username", "chen", "--role", "supervisor",
                     "--password-stdin", stdin="a-long-password\n")
    assert "password" not in piped
    bad = run(data_dir, "admin", "create-user", "--username", "li", "--role", "clerk", "--regions", "nowhere")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "unknown_region" in bad.stderr
    weak = run(data_dir, "admin", "create-user", "--username", "zhao", "--role", "admin", "--password", "short")
    assert weak.returncode == 2 and "weak_password" in weak.stderr


def test_load_catalog_is_idempotent_and_rejects_bad_files(data_dir, tmp_path):
    first = run_json(data_dir, "admin", "load-catalog")
    assert first["created"] >= 30 and first["updated"] == 0
    second = run_json(data_dir, "admin", "load-catalog")
    assert (second["created"], second["updated"]) == (0, 0)
    broken = tmp_path / "broken.json"
    broken.write_text('{"version": 1, "categories": [], "items": [{"code": "X"}]}', encoding="utf-8")
    result = run(data_dir, "admin", "load-catalog", str(broken))
    assert result.returncode == 2 and "invalid catalogue" in result.stderr


def test_bad_setting_fails_with_one_line_naming_the_variable(tmp_path):
    result = run(tmp_path, "verify", extra_env={"CLOUDSEAT_DATABASE_URL": "mysql://nope"})
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "CLOUDSEAT_DATABASE_URL" in result.stderr


def _png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


def _seed_call_with_material(data_dir: Path) -> str:
    """A booth, an item, a call and one stored material, written through the records API."""
    from records.accounts import create_booth
    from records.calls import create_call
    from records.catalog import default_catalog_path, load_catalog_file, upsert_catalog
    from records.materials import add_material
    from records.storage import FileStore

    engine = make_engine(f"sqlite:///{data_dir / 'cloudseat.db'}")
    with Session(engine) as session:
        catalog = load_catalog_file(default_catalog_path())
        upsert_catalog(session, catalog)
        booth, _ = create_booth(session, name="booth-v", region_code="xihu")
        call = create_call(session, booth_id=booth.id, item_code=catalog.items[0].code)
        material = add_material(session, FileStore(data_dir / "files"), session_id=call.id, kind="capture",
                                data=_png(64, 48), content_type="image/png", actor=f"booth:{booth.id}")
        session.commit()
        path = material.path
    engine.dispose()
    return path


def test_verify_passes_then_names_a_tampered_event(data_dir):
    _seed_call_with_material(data_dir)
    ok = run_json(data_dir, "verify")
    assert ok["ok"] is True and ok["checked_events"] >= 3 and ok["checked_files"] == 1
    db = sqlite3.connect(data_dir / "cloudseat.db")
    seq = db.execute("SELECT seq FROM event WHERE kind = 'booth.created'").fetchone()[0]
    db.execute("UPDATE event SET data = ? WHERE seq = ?", (json.dumps({"name": "forged"}), seq))
    db.commit()
    db.close()
    broken = run(data_dir, "verify")
    assert broken.returncode == 1
    assert f"event seq {seq} (global chain)" in broken.stdout
    assert "hash" in broken.stdout


def test_verify_names_a_tampered_file(data_dir):
    path = _seed_call_with_material(data_dir)
    stored = data_dir / "files" / path
    stored.write_bytes(_png(64, 49))
    broken = run(data_dir, "verify")
    assert broken.returncode == 1
    assert f"material 1 {path}: sha256 mismatch" in broken.stdout


def test_verify_names_a_deleted_event(data_dir):
    _seed_call_with_material(data_dir)
    db = sqlite3.connect(data_dir / "cloudseat.db")
    last = db.execute("SELECT max(seq) FROM event").fetchone()[0]
    db.execute("DELETE FROM event WHERE seq = ?", (last - 1,))
    db.commit()
    db.close()
    broken = run(data_dir, "verify")
    assert broken.returncode == 1 and "BROKEN" in broken.stdout
    engine = make_engine(f"sqlite:///{data_dir / 'cloudseat.db'}")
    with Session(engine) as session:
        assert session.exec(select(Event)).first() is not None
    engine.dispose()
