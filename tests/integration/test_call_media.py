"""A call with media through the real server: simulators, the hub, a late silent monitor, recordings.

One scenario runs once per module (it is the expensive part); each test checks
one property of it:

- a simulated booth and clerk (`run_booth` / `run_seat` with ``media=True``)
  each receive the other's video readable and in order (burnt-in counters);
- a supervisor who joins 30 s into the call (`monitor.join`, then `rtc.offer`)
  sees the booth's face within 1 s.  The face camera encodes keyframes only at
  start and on request (`PreEncodedVideoTrack`), and the test checks it made
  none between the call settling and the join, so the picture comes from the
  keyframe the hub asked for, not a natural one;
- after the call ends the tracks are Recording rows (durations within 1 s of
  the call, frame counts within 2 % of what was sent), the manifest's path and
  hash are in the event `recording.finished`, and the video tracks line up
  within 100 ms by their burnt-in wall clock.

A second, signaling-only test checks the refusals of `rtc.offer` / `monitor.*`.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import statistics
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timezone
from pathlib import Path
from typing import Any

import av
import pytest
import pytest_asyncio
from sqlmodel import Session

from booth.simulator import BoothPlan, BoothSummary, run_booth
from media.synthetic import read_burnt_in
from records.db import make_engine
from records.models import CallSession, Event, Recording
from seat.simulator import SeatPlan, SeatSummary, run_seat
from signaling.protocol_client import ReplyError
from signaling.protocol_media import MediaPeer
from tests.media_helpers import wait_until
from tests.signaling_fixtures import PASSWORD, World, call_records, clients, world

pytestmark = pytest.mark.asyncio(loop_scope="module")

MONITOR_DELAY = 30.0  # seconds after the booth's media connected (the figure)
SETTLE = 2.0  # keyframes asked for at connection (recorder, clerk) are done by then
HANDLE_S = 35.0  # the clerk ends the call this long after its media connected
VIDEO_TRACKS = ("booth-face", "booth-document", "clerk-camera")
ALL_TRACKS = {*VIDEO_TRACKS, "booth-audio", "clerk-audio"}
DUMMY_SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


@dataclass
class Scenario:
    world: World
    call_id: str = ""
    booth: BoothSummary | None = None
    seat: SeatSummary | None = None
    face_keyframes: dict[str, int] = field(default_factory=dict)  # at settle, at join, at end
    monitor_join_at: float = 0.0
    monitor_picture_after: float = 0.0
    monitor_report: dict[str, Any] = field(default_factory=dict)
    call: CallSession | None = None
    recordings: list[Recording] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    files: Path = Path()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def scenario(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Scenario]:
    from cloudseat.settings import Settings

    settings = Settings(data_dir=tmp_path_factory.mktemp("media") / "var", public_base_url="http://127.0.0.1:8000")
    with world(settings) as w:
        s = Scenario(world=w, files=settings.data_dir / "files")
        booth_peers: list[MediaPeer] = []
        seat_peers: list[MediaPeer] = []
        ready = asyncio.Event()
        seat_task = asyncio.create_task(run_seat(
            w.url, "c1", PASSWORD, SeatPlan(handle_s=HANDLE_S, jitter=0.0, calls=1), ready=ready,
            media=True, on_media=seat_peers.append))
        await asyncio.wait_for(ready.wait(), 20)
        booth_task = asyncio.create_task(run_booth(
            w.url, w.tokens["b1"], BoothPlan(item_code=w.item_by_skill["social_insurance"], answer_timeout_s=30),
            media=True, on_media=booth_peers.append))
        await wait_until(lambda: bool(booth_peers and seat_peers), 30, "both media peers")
        booth, clerk = booth_peers[0], seat_peers[0]
        s.call_id = booth.call_id
        face = next(o for o in booth.outgoing if o.name == "face")
        assert booth.connected_at is not None
        await booth.wait_frames("clerk-camera", 10, 20)
        await clerk.wait_frames("booth-face", 10, 20)
        await clerk.wait_frames("booth-document", 2, 20)

        await asyncio.sleep(max(0.0, booth.connected_at + SETTLE - time.time()))  # the scenario's timeline
        s.face_keyframes["settled"] = face.keyframes or 0
        await asyncio.sleep(max(0.0, booth.connected_at + MONITOR_DELAY - time.time()))
        s.face_keyframes["join"] = face.keyframes or 0
        sup = await w.supervisor()
        try:
            joined = await sup.request("monitor.join", call_id=s.call_id)
            assert {t["track"] for t in joined["tracks"]} >= {"face", "document", "camera"}
            s.monitor_join_at = time.time()
            monitor = MediaPeer(sup, s.call_id, receive=("video", "video", "video", "audio", "audio"))
            await monitor.connect()
            seen = await monitor.wait_frames("booth-face", 1, 10)
            assert seen.first_readable_at is not None
            s.monitor_picture_after = seen.first_readable_at - s.monitor_join_at
            await monitor.wait_frames("clerk-camera", 1, 10)
            s.monitor_report = monitor.report()
            await monitor.close()
            await sup.request("monitor.leave", call_id=s.call_id)
        finally:
            await sup.close()
        s.seat = await asyncio.wait_for(seat_task, 60)
        s.booth = await asyncio.wait_for(booth_task, 60)
        s.face_keyframes["end"] = face.keyframes or 0

        def registered() -> bool:
            _call, _recs, events = call_records(settings, s.call_id)
            return any(e.kind == "recording.finished" for e in events)

        deadline = time.monotonic() + 30
        while not await asyncio.to_thread(registered):
            assert time.monotonic() < deadline, "recordings were never registered"
            await asyncio.sleep(0.1)  # polling the database: there is no event to wait on
        s.call, s.recordings, s.events = call_records(settings, s.call_id)
        yield s


async def test_booth_and_clerk_receive_each_others_frames_in_order(scenario: Scenario) -> None:
    booth, seat = scenario.booth, scenario.seat
    assert booth is not None and seat is not None
    assert booth.all_answered and booth.media_ok, booth.to_json()
    assert seat.answered == 1 and seat.media_ok, seat.to_json()
    got = booth.media[0]["received"]
    assert got["clerk-camera"]["in_order"] and got["clerk-camera"]["readable"] >= HANDLE_S * 15 * 0.8
    assert got["clerk-audio"]["frames"] > 0
    got = seat.media[0]["received"]
    assert got["booth-face"]["in_order"] and got["booth-face"]["readable"] >= HANDLE_S * 15 * 0.8
    assert got["booth-document"]["in_order"] and got["booth-document"]["readable"] >= HANDLE_S * 3 * 0.8
    assert got["booth-audio"]["frames"] > 0


async def test_a_late_monitor_sees_a_picture_within_a_second(scenario: Scenario) -> None:
    keyframes = scenario.face_keyframes
    assert keyframes["settled"] == keyframes["join"], f"a keyframe between settle and join: {keyframes}"
    assert keyframes["end"] > keyframes["join"], "the join made no keyframe request reach the booth"
    assert scenario.monitor_picture_after <= 1.0, scenario.monitor_picture_after
    assert scenario.monitor_report["received"]["booth-face"]["in_order"]


async def test_monitoring_is_logged(scenario: Scenario) -> None:
    kinds = [e.kind for e in scenario.events]
    assert "monitor.joined" in kinds and "monitor.left" in kinds
    assert kinds.index("monitor.joined") < kinds.index("monitor.left")


async def test_recordings_are_registered_with_their_manifest(scenario: Scenario) -> None:
    call, recordings = scenario.call, scenario.recordings
    assert call is not None and call.answered_at is not None and call.ended_at is not None
    call_s = (call.ended_at - call.answered_at).total_seconds()
    assert {r.track for r in recordings} == ALL_TRACKS
    assert all(not r.recovered for r in recordings)
    finished = [e for e in scenario.events if e.kind == "recording.finished"]
    assert len(finished) == 1
    data = finished[0].data
    manifest_path = scenario.files / data["manifest"]
    assert hashlib.sha256(manifest_path.read_bytes()).hexdigest() == data["manifest_sha256"]
    manifest = json.loads(manifest_path.read_text())
    by_name = {Path(f["path"]).name: f for f in manifest["files"]}
    sent = {**{f"booth-{k}": v for k, v in scenario.booth.media[0]["sent"].items()},  # type: ignore[union-attr]
            **{f"clerk-{k}": v for k, v in scenario.seat.media[0]["sent"].items()}}  # type: ignore[union-attr]
    for r in recordings:
        path = scenario.files / r.path
        assert hashlib.sha256(path.read_bytes()).hexdigest() == r.sha256 == by_name[path.name]["sha256"]
        assert abs(r.duration_s - call_s) <= 1.0, (r.track, r.duration_s, call_s)
        frames = by_name[path.name]["frames"]
        if r.track in VIDEO_TRACKS:
            # Every frame from the first the hub recorded to the last: the burnt-in counters have no hole.
            counters = [c for _ms, c, _clock in _decoded(path)]
            assert counters == sorted(counters) and len(counters) == frames
            span = counters[-1] - counters[0] + 1
            assert frames >= span * 0.98, (r.track, frames, span)
            # ... and the recording starts within 1 s of the publisher's first frame and ends with it.
            fps = 3 if r.track == "booth-document" else 15
            assert counters[0] <= fps and sent[r.track] - counters[-1] - 1 <= max(1, 0.02 * sent[r.track]), \
                (r.track, counters[0], counters[-1], sent[r.track])
        else:
            assert abs(frames - sent[r.track]) <= 0.02 * sent[r.track], (r.track, frames, sent[r.track])
    assert {f["track"] for f in data["files"]} == ALL_TRACKS


@functools.cache
def _decoded(path: Path) -> list[tuple[float, int, int]]:
    """(recorded ms, burnt-in counter, burnt-in capture clock ms) of every readable frame of a video file."""
    out = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            try:
                counter, clock_ms = read_burnt_in(frame)
            except ValueError:
                continue
            out.append((float(frame.pts * stream.time_base) * 1000.0, counter, clock_ms))
    assert out, f"no readable frame in {path}"
    return out


def _offset_ms(path: Path, session_start_ms: float) -> float:
    """Median of (recorded time - burnt-in capture time) over a video file's frames."""
    return statistics.median(ms - (clock - session_start_ms) for ms, _counter, clock in _decoded(path))


async def test_video_tracks_are_aligned_within_100_ms(scenario: Scenario) -> None:
    call = scenario.call
    assert call is not None and call.answered_at is not None
    start_ms = call.answered_at.replace(tzinfo=call.answered_at.tzinfo or timezone.utc).timestamp() * 1000.0
    offsets = {r.track: _offset_ms(scenario.files / r.path, start_ms) for r in scenario.recordings
               if r.track in VIDEO_TRACKS}
    assert max(offsets.values()) - min(offsets.values()) <= 100, offsets


async def test_rtc_offer_and_monitor_refusals(tmp_path: Path) -> None:
    from cloudseat.settings import Settings
    from records.accounts import create_user
    from records.models import CallSession as Row
    from records.models import Role

    settings = Settings(data_dir=tmp_path / "var", public_base_url="http://127.0.0.1:8000")
    with world(settings) as w:
        engine = make_engine(settings.database_url)
        with Session(engine) as session:
            create_user(session, username="sup-west", password=PASSWORD, role=Role.SUPERVISOR, display_name="W",
                        regions=["west"])
            session.commit()
        engine.dispose()
        clerk = await w.clerk("c1")
        booth = await w.booth("b1")
        other = await w.booth("b2")
        sup = await w.supervisor()
        async with clients(clerk, booth, other, sup):
            ack = await booth.request("call.request", item_code=w.item_by_skill["social_insurance"])
            offer = await clerk.wait_for("offer")
            await clerk.request("offer.accept", call_id=offer["call_id"])
            call_id = ack["call_id"]

            async def code(client: Any, mtype: str, **fields: Any) -> tuple[str, dict[str, Any]]:
                with pytest.raises(ReplyError) as info:
                    await client.request(mtype, **fields)
                return info.value.code, info.value.reply

            assert (await code(other, "rtc.offer", call_id=call_id, sdp=DUMMY_SDP))[0] == "call_not_found"
            assert (await code(booth, "rtc.offer", call_id=call_id, sdp="hello"))[0] == "invalid"
            assert (await code(booth, "rtc.offer", call_id=call_id, sdp="v=0\r\n" + "a" * 33000))[0] == "invalid"
            assert (await code(booth, "rtc.offer", call_id=call_id, sdp=DUMMY_SDP, tracks={"0": "radio"}))[0] \
                == "invalid"
            assert (await code(booth, "rtc.offer", call_id=call_id, sdp=DUMMY_SDP, tracks={"0": "camera"}))[0] \
                == "bad_track"
            assert (await code(booth, "rtc.offer", call_id=call_id, sdp=DUMMY_SDP))[0] == "no_media"
            assert (await code(sup, "rtc.offer", call_id=call_id, sdp=DUMMY_SDP))[0] == "not_monitoring"
            assert (await code(sup, "monitor.leave", call_id=call_id))[0] == "not_monitoring"
            assert (await code(clerk, "monitor.join", call_id=call_id))[0] == "not_allowed"
            west = await w.supervisor("sup-west")  # scoped to west; the call is east's
            async with clients(west):
                assert (await code(west, "monitor.join", call_id=call_id))[0] == "call_not_found"

            engine = make_engine(settings.database_url)
            with Session(engine) as session:  # the call's media lives on a node that does not answer
                row = session.get(Row, call_id)
                assert row is not None
                row.media_node = "node-9"
                session.add(row)
                session.commit()
            engine.dispose()
            unreachable, reply = await code(booth, "rtc.offer", call_id=call_id, sdp=DUMMY_SDP)
            assert (unreachable, reply.get("node")) == ("media_unavailable", "node-9")  # nobody answers for node-9
            assert (await code(sup, "monitor.join", call_id=call_id))[0] == "media_unavailable"
