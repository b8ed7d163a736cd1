"""Retention end to end: a real call with media through the hub, then `cloudseat purge` and `cloudseat verify`.

The manifest and track files are the hub's own (stream-copied WebM/Matroska),
so this checks that verify's manifest check reads what the recorder really
writes, before and after every track of the call is purged.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from booth.simulator import BoothPlan, run_booth
from cloudseat.settings import Settings
from records.db import make_engine
from records.models import CallSession, Event, as_utc
from seat.simulator import SeatPlan, run_seat
from tests.signaling_fixtures import PASSWORD, call_records, world

pytestmark = pytest.mark.asyncio


def cli(data_dir: Path, *args: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSEAT_")}
    env["CLOUDSEAT_DATA_DIR"] = str(data_dir)
    done = subprocess.run([sys.executable, "-m", "cloudseat", *args, "--json"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


async def test_a_recorded_call_is_purged_and_still_verifies(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "var", public_base_url="http://127.0.0.1:8000")
    with world(settings) as w:
        ready = asyncio.Event()
        seat = asyncio.create_task(run_seat(w.url, "c1", PASSWORD, SeatPlan(handle_s=4.0, jitter=0.0, calls=1),
                                            ready=ready, media=True))
        await asyncio.wait_for(ready.wait(), 20)
        booth = await asyncio.wait_for(run_booth(
            w.url, w.tokens["b1"], BoothPlan(item_code=w.item_by_skill["social_insurance"], answer_timeout_s=30),
            media=True), 90)
        await asyncio.wait_for(seat, 60)
        assert booth.answered == 1
        engine = make_engine(settings.database_url)
        with Session(engine) as session:
            call_id = session.exec(select(CallSession.id)).one()
        engine.dispose()
        deadline = time.monotonic() + 60
        while not any(e.kind == "recording.finished"
                      for e in (await asyncio.to_thread(call_records, settings, call_id, events_by=Event.seq))[2]):
            assert time.monotonic() < deadline, "recordings were never registered"
            await asyncio.sleep(0.1)  # polling the database: there is no event to wait on

    call, recordings, events = call_records(settings, call_id, events_by=Event.seq)
    assert call is not None and call.ended_at is not None and len(recordings) >= 4
    [finished] = [e for e in events if e.kind == "recording.finished"]
    files = settings.data_dir / "files"
    manifest = files / finished.data["manifest"]

    before = cli(settings.data_dir, "verify")
    assert before["ok"] and before["checked_manifests"] == 1 and before["checked_files"] >= len(recordings)

    too_soon = as_utc(call.ended_at) + timedelta(days=179)
    assert cli(settings.data_dir, "purge", "--now", too_soon.isoformat())["purged"] == []
    now = as_utc(call.ended_at) + timedelta(days=181)
    report = cli(settings.data_dir, "purge", "--now", now.isoformat())
    assert sorted(f["id"] for f in report["purged"]) == sorted(r.id for r in recordings)
    assert report["deleted"] == len(recordings)
    assert not any((files / r.path).exists() for r in recordings)
    assert manifest.exists()  # no media in it; verify still reads it

    after = cli(settings.data_dir, "verify")
    assert after["ok"], after["first_break"]
    assert after["checked_manifests"] == 1 and after["checked_purges"] == len(recordings)
