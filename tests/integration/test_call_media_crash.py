"""A server killed with SIGKILL mid-call: on restart its case is there and its recordings are recovered.

A real `cloudseat serve` process (single node, in-process bus, SQLite in its
data dir) carries a call with media from the simulated booth and clerk; the
clerk accepts (受理) the application, opening a case, and 15 s into the media
the server gets SIGKILL.  The case and its events are there after the restart.  Started again on the same data dir, it finds
the room it never closed (no manifest), remuxes the files (`recover_unclosed`)
and registers them as recovered: the files play to within 3 s of the kill,
their hashes are in the manifest and in the log (`recording.added`), the
manifest's hash is in the event `recording.recovered`, and `cloudseat verify`
passes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import av
import pytest
from sqlmodel import Session, col, select

from booth.simulator import BoothPlan, run_booth
from cloudseat.settings import Settings
from media.synthetic import read_burnt_in
from records.db import make_engine
from records.models import CallSession, Case, CaseStatus, Event, Recording, ServiceItem
from seat.simulator import SeatPlan, run_seat
from signaling.protocol_media import MediaPeer
from tests.cluster import Node, free_port
from tests.media_helpers import wait_until
from tests.signaling_fixtures import PASSWORD, seed_world
from tests.web_clients import login

pytestmark = pytest.mark.asyncio

KILL_AFTER = 15.0  # seconds of media before the kill
MIN_PLAY_S = 12.0  # what the recovered face and camera tracks must play for
MAX_LOSS = 3.0


def _env(data_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSEAT_")}
    env.update({"CLOUDSEAT_DATA_DIR": str(data_dir), "CLOUDSEAT_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
                "CLOUDSEAT_SECRET_KEY": "crash-test-secret-key-" + "x" * 16, "CLOUDSEAT_LOG_LEVEL": "INFO"})
    return env


def _last_clock_ms(path: Path) -> int:
    last = 0
    with av.open(str(path)) as container:
        for frame in container.decode(container.streams.video[0]):
            try:
                last = max(last, read_burnt_in(frame)[1])
            except ValueError:
                continue
    return last


def _play_s(path: Path) -> float:
    """How long the file's video plays: last frame time minus first."""
    times: list[float] = []
    with av.open(str(path)) as container:
        for frame in container.decode(container.streams.video[0]):
            if frame.time is not None:
                times.append(float(frame.time))
    return max(times) - min(times) if times else 0.0


def _accept(url: str, call_id: str, settings: Settings) -> str:
    """The clerk accepts (受理) over HTTP, confirming the mandatory materials not captured; the case number."""
    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as session:
            call = session.get(CallSession, call_id)
            item = session.get(ServiceItem, call.item_code)
            waived = [str(m["code"]) for m in item.materials if m.get("mandatory")]
    finally:
        engine.dispose()
    with closing(login(url, "c1", PASSWORD)) as c1:
        decided = c1.post(f"/api/seat/calls/{call_id}/decision", json={"outcome": "accept", "accept_without": waived})
    assert decided.status_code == 201, decided.text
    return str(decided.json()["case"]["number"])


def _case(settings: Settings, number: str) -> tuple[Case, list[Event]]:
    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as session:
            case = session.exec(select(Case).where(Case.number == number)).one()
            events = list(session.exec(select(Event).where(Event.session_id == case.session_id)))
            return case, events
    finally:
        engine.dispose()


def _load(settings: Settings, call_id: str) -> tuple[list[Recording], list[Event]]:
    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as session:
            recordings = list(session.exec(select(Recording).where(Recording.session_id == call_id)
                                           .order_by(col(Recording.id))))
            events = list(session.exec(select(Event).where(Event.session_id == call_id).order_by(col(Event.id))))
            return recordings, events
    finally:
        engine.dispose()


async def test_a_killed_server_recovers_the_call_recordings_on_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    port = free_port()
    env = _env(data_dir, port)
    settings = Settings(data_dir=data_dir, public_base_url=f"http://127.0.0.1:{port}")
    seeded = seed_world(settings)
    node = Node("node-1", port, env)
    node.start()
    peers: list[MediaPeer] = []
    tasks: list[asyncio.Task[Any]] = []
    try:
        ready = asyncio.Event()
        tasks.append(asyncio.create_task(run_seat(node.url, "c1", PASSWORD, SeatPlan(handle_s=120, jitter=0, calls=1),
                                                  ready=ready, media=True, on_media=peers.append)))
        await asyncio.wait_for(ready.wait(), 20)
        tasks.append(asyncio.create_task(run_booth(
            node.url, seeded["tokens"]["b1"], BoothPlan(item_code=seeded["item_by_skill"]["social_insurance"]),
            media=True, on_media=peers.append)))
        await wait_until(lambda: len(peers) == 2, 30, "both media peers")
        booth = next(p for p in peers if any(o.name == "face" for o in p.outgoing))
        await booth.wait_frames("clerk-camera", 10, 20)
        assert booth.connected_at is not None
        number = await asyncio.to_thread(_accept, node.url, booth.call_id, settings)
        await asyncio.sleep(max(0.0, booth.connected_at + KILL_AFTER - time.time()))  # the scenario's timeline
        killed_at = time.time()
        node.kill(signal.SIGKILL)
        assert node.proc is not None and node.proc.returncode == -signal.SIGKILL
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for peer in peers:
            await peer.close()
    call_id = booth.call_id
    room = data_dir / "files" / "recordings" / call_id
    assert list(room.glob("*.partial.json")), "the kill left no unfinished recording"
    assert not (room / "manifest.json").exists()

    node.start()  # the same data dir: recovery runs before the node is ready
    try:
        recordings, events = await asyncio.to_thread(_load, settings, call_id)
    finally:
        node.kill(signal.SIGTERM)

    assert {r.track for r in recordings} >= {"booth-face", "booth-document", "booth-audio", "clerk-camera"}
    assert all(r.recovered for r in recordings)
    assert not list(room.glob("*.partial.json"))
    recovered = [e for e in events if e.kind == "recording.recovered"]
    assert len(recovered) == 1, [e.kind for e in events]
    manifest_path = data_dir / "files" / recovered[0].data["manifest"]
    assert hashlib.sha256(manifest_path.read_bytes()).hexdigest() == recovered[0].data["manifest_sha256"]
    manifest = {Path(f["path"]).name: f for f in json.loads(manifest_path.read_text())["files"]}
    added = {e.data["path"]: e.data["sha256"] for e in events if e.kind == "recording.added"}
    for r in recordings:
        path = data_dir / "files" / r.path
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert digest == r.sha256 == manifest[path.name]["sha256"] == added[r.path]
        assert manifest[path.name]["recovered"] and not manifest[path.name]["closed_cleanly"]
        if r.track in ("booth-face", "clerk-camera"):
            lost_s = killed_at - _last_clock_ms(path) / 1000.0
            assert lost_s <= MAX_LOSS, (r.track, lost_s)

    plays = {r.track: _play_s(data_dir / "files" / r.path) for r in recordings if r.track in ("booth-face", "clerk-camera")}
    print(json.dumps({"figure": "kill -9 mid-call", "media_before_kill_s": KILL_AFTER,
                      "recovered_play_s": {t: round(v, 2) for t, v in sorted(plays.items())}}))
    assert min(plays.values()) >= MIN_PLAY_S, plays
    case, case_events = await asyncio.to_thread(_case, settings, number)
    assert case.session_id == call_id and case.status is CaseStatus.ACCEPTED
    assert {"case.opened", "case.accepted_without_materials"} <= {e.kind for e in case_events}

    verify = subprocess.run([sys.executable, "-m", "cloudseat", "verify", "--json"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    report = json.loads(verify.stdout.strip().splitlines()[-1])
    assert report["ok"] and report["checked_files"] >= len(recordings)
