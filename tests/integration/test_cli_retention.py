"""`cloudseat purge` and `cloudseat admin legal-hold`, run as real processes against a real database."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from records.db import create_schema, make_engine
from records.models import Case
from records.storage import FileStore
from tests.integration.test_cli import run, run_json
from tests.integration.test_retention import T0, Call, make_call
from tests.records_factories import seed


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "var"


@pytest.fixture
def calls(data_dir: Path) -> dict[str, Call]:
    """In the data dir's own SQLite and file store: an old call with a case, an old one without, a recent one."""
    engine = make_engine(f"sqlite:///{data_dir / 'cloudseat.db'}")
    create_schema(engine)
    store = FileStore(data_dir / "files")
    ids = seed(engine)
    built = {
        "cased": make_call(engine, store, ids, ended_at=T0, case=True),
        "old": make_call(engine, store, ids, ended_at=T0, colour=(1, 2, 3)),
        "recent": make_call(engine, store, ids, ended_at=T0 + timedelta(days=100), colour=(4, 5, 6)),
    }
    engine.dispose()
    return built


def case_number(data_dir: Path) -> str:
    engine = make_engine(f"sqlite:///{data_dir / 'cloudseat.db'}")
    with Session(engine) as session:
        number = session.exec(select(Case.number)).one()
    engine.dispose()
    return number


NOW = (T0 + timedelta(days=181)).isoformat()


def test_dry_run_lists_and_purge_deletes_then_verify_passes(data_dir, calls):
    store = FileStore(data_dir / "files")
    dry = run(data_dir, "purge", "--dry-run", "--now", NOW)
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.strip().splitlines()
    expected = [p for c in ("cased", "old") for _, p in calls[c].recordings]
    assert [line.split()[4] for line in lines[:-1]] == expected
    assert all(line.startswith("would delete recording ") for line in lines[:-1])
    assert lines[-1].startswith("dry run: 4 recordings and 0 materials expired")
    assert all(store.exists(p) for p in expected)

    done = run_json(data_dir, "purge", "--now", NOW)
    assert (done["recordings"], done["materials"], done["deleted"], done["dry_run"]) == (4, 0, 4, False)
    assert [f["path"] for f in done["purged"]] == expected
    assert not any(store.exists(p) for p in expected)
    assert all(store.exists(p) for _, p in calls["recent"].recordings)

    verified = run(data_dir, "verify")
    assert verified.returncode == 0 and verified.stdout.count("\n") == 1
    assert verified.stdout.startswith("ok: ") and "4 purged files" in verified.stdout
    assert "3 manifests" in verified.stdout

    again = run(data_dir, "purge", "--now", NOW)
    assert again.returncode == 0 and again.stdout.startswith("0 recordings and 0 materials purged (0 bytes)")


def test_legal_hold_on_keeps_a_case_off_releases_it(data_dir, calls):
    number = case_number(data_dir)
    held = run_json(data_dir, "admin", "legal-hold", number, "--on", "--reason", "court order 17")
    assert held["number"] == number and held["legal_hold"] is True
    purged = run_json(data_dir, "purge", "--now", NOW)
    assert {f["session_id"] for f in purged["purged"]} == {calls["old"].id}
    assert purged["held_sessions"] == [calls["cased"].id]

    human = run(data_dir, "admin", "legal-hold", number.lower(), "--off", "--reason", "order lifted")
    assert human.returncode == 0 and human.stdout.strip() == f"case {number}: legal hold off"
    purged = run_json(data_dir, "purge", "--now", NOW)
    assert {f["session_id"] for f in purged["purged"]} == {calls["cased"].id}
    assert run_json(data_dir, "verify")["ok"] is True


def test_bad_input_exits_2_and_changes_nothing(data_dir, calls):
    unknown = run(data_dir, "admin", "legal-hold", "XH-1999-000001", "--on", "--reason", "x")
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1 and "case_not_found" in unknown.stderr
    blank = run(data_dir, "admin", "legal-hold", case_number(data_dir), "--on", "--reason", " ")
    assert blank.returncode == 2 and "reason_required" in blank.stderr
    assert run(data_dir, "admin", "legal-hold", case_number(data_dir), "--reason", "x").returncode == 2  # no --on/--off
    bad_clock = run(data_dir, "purge", "--now", "next tuesday")
    assert bad_clock.returncode == 2 and "ISO 8601" in bad_clock.stderr
    bad_days = run(data_dir, "purge", extra_env={"CLOUDSEAT_RETENTION_RECORDINGS_DAYS": "0"})
    assert bad_days.returncode == 2 and bad_days.stderr.strip().count("\n") == 0
    assert "CLOUDSEAT_RETENTION_RECORDINGS_DAYS" in bad_days.stderr
    assert run_json(data_dir, "purge", "--dry-run", "--now", NOW)["recordings"] == 4  # nothing was purged


def test_retention_days_come_from_the_environment(data_dir, calls):
    longer = run_json(data_dir, "purge", "--now", NOW, extra_env={"CLOUDSEAT_RETENTION_RECORDINGS_DAYS": "400"})
    assert longer["purged"] == [] and longer["recordings_cutoff"].startswith("2025-")
    shorter = run_json(data_dir, "purge", "--now", NOW, extra_env={"CLOUDSEAT_RETENTION_RECORDINGS_DAYS": "30",
                                                                   "CLOUDSEAT_RETENTION_MATERIALS_DAYS": "30"})
    assert (shorter["recordings"], shorter["materials"]) == (6, 3)
    out = json.dumps(shorter)
    assert all(c.id in out for c in calls.values())
