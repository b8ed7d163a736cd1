"""Media hub CPU per stream: encoded passthrough vs aiortc's transcoding baseline.

Prints one JSON line per figure, always with the baseline measured in the
same run, so the figure is a ratio:

- forwarding_cpu_per_stream: the hub forwarding one 640x480@15 VP8 camera to
  one subscriber (`MediaHub`, no decode) vs aiortc `MediaRelay` (decode on
  receive, re-encode per subscriber);
- recording_cpu_per_stream: the hub recording one camera by stream copy
  (`TrackRecorder`) vs aiortc `MediaRecorder` (decode + libvpx re-encode).

The middle (hub or baseline) runs in a child process so its CPU can be read
with getrusage (all threads) while this process plays the publishers and
subscribers over loopback.

With ``--call``, figures of a whole call through a real `cloudseat serve`
process (the simulators' `MediaPeer`s in this process), each against two bare
aiortc peers connected directly in this process:

- call_setup_s: from the booth's `call.request` (the clerk answers at once)
  until both sides decoded a first frame of the other, vs offer-to-first-frame
  both ways of the bare pair;
- hub_latency_ms: median capture-to-decode latency of the booth's face at the
  clerk (burnt-in wall clock), vs the same over the bare pair.

Usage:

    python bench/media.py [--quick] [--streams N] [--seconds S] [--call]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaBlackhole, MediaRecorder, MediaRelay
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from media.hub import MediaHub  # noqa: E402
from media.ice import LOOPBACK_ADDRESSES, advertise_host_addresses, rtc_configuration  # noqa: E402
from media.synthetic import CameraTrack  # noqa: E402

logger = logging.getLogger("bench.media")
MODES = ("passthrough", "relay", "record-copy", "record-mediarecorder")


# -- the middle, in a child process --------------------------------------------------


class Baseline:
    """aiortc's own way: decode every track, MediaRelay it, re-encode per subscriber."""

    def __init__(self, recording_dir: Path | None) -> None:
        self.relay = MediaRelay()
        self.recording_dir = recording_dir
        self.tracks: dict[str, MediaStreamTrack] = {}
        self.peers: list[RTCPeerConnection] = []
        self.sinks: list[MediaBlackhole | MediaRecorder] = []

    async def offer(self, room: str, role: str, sdp: str) -> str:
        pc = RTCPeerConnection(rtc_configuration())
        self.peers.append(pc)
        arrived = asyncio.Event()

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self.tracks[room] = track
            if self.recording_dir is not None:
                sink: MediaBlackhole | MediaRecorder = MediaRecorder(str(self.recording_dir / f"{room}.webm"))
            else:  # something must pull the decoded frames while nobody subscribes
                sink = MediaBlackhole()
            sink.addTrack(self.relay.subscribe(track, buffered=False))
            self.sinks.append(sink)
            asyncio.ensure_future(sink.start())
            arrived.set()

        await pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
        if role == "clerk":
            pc.addTrack(self.relay.subscribe(self.tracks[room], buffered=False))
        advertise_host_addresses(pc, LOOPBACK_ADDRESSES)
        await pc.setLocalDescription(await pc.createAnswer())
        return str(pc.localDescription.sdp)

    async def close(self) -> None:
        for sink in self.sinks:
            await sink.stop()
        for pc in self.peers:
            await pc.close()


class Passthrough:
    def __init__(self, recording_dir: Path | None) -> None:
        self.hub = MediaHub(host_addresses=LOOPBACK_ADDRESSES)
        self.recording_dir = recording_dir

    async def offer(self, room: str, role: str, sdp: str) -> str:
        if self.recording_dir is not None:
            self.hub.open_room(room, recording_dir=self.recording_dir / room)
        return await self.hub.handle_offer(room, role, role, sdp)

    async def close(self) -> None:
        await self.hub.close()


async def serve(mode: str) -> None:
    """Answer JSON-line requests on stdin: offer, cpu, quit."""
    recording_dir = Path(tempfile.mkdtemp(prefix="bench-rec-")) if mode.startswith("record") else None
    middle: Baseline | Passthrough = (
        Passthrough(recording_dir) if mode in ("passthrough", "record-copy") else Baseline(recording_dir)
    )
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        request = json.loads(line)
        reply: dict[str, Any]
        if request["op"] == "offer":
            reply = {"sdp": await middle.offer(request["room"], request["role"], request["sdp"])}
        elif request["op"] == "cpu":
            usage = resource.getrusage(resource.RUSAGE_SELF)
            reply = {"cpu": usage.ru_utime + usage.ru_stime, "wall": time.monotonic()}
        else:
            await middle.close()
            print(json.dumps({"ok": True}), flush=True)
            return
        print(json.dumps(reply), flush=True)


# -- the edges, in this process --------------------------------------------------------


class Middle:
    """The child process and its JSON-line channel."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lock = asyncio.Lock()

    @classmethod
    async def start(cls, mode: str) -> Middle:
        process = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--child", mode,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=ROOT,
        )
        return cls(process)

    async def call(self, **request: Any) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        async with self.lock:
            self.process.stdin.write((json.dumps(request) + "\n").encode())
            await self.process.stdin.drain()
            return dict(json.loads(await self.process.stdout.readline()))

    async def stop(self) -> None:
        await self.call(op="quit")
        await self.process.wait()


async def connect(middle: Middle, room: str, role: str, pc: RTCPeerConnection) -> None:
    offer = await pc.createOffer()
    advertise_host_addresses(pc, LOOPBACK_ADDRESSES)
    await pc.setLocalDescription(offer)
    answer = await middle.call(op="offer", room=room, role=role, sdp=pc.localDescription.sdp)
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))


async def count_frames(track: MediaStreamTrack, counter: list[int]) -> None:
    try:
        while True:
            await track.recv()
            counter[0] += 1
    except MediaStreamError:
        return


async def measure(mode: str, streams: int, warmup: float, seconds: float) -> dict[str, float]:
    """Middle CPU seconds per second per stream, and subscriber fps, for one mode."""
    middle = await Middle.start(mode)
    peers: list[RTCPeerConnection] = []
    counters: list[list[int]] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        for i in range(streams):
            publisher = RTCPeerConnection(rtc_configuration())
            publisher.addTransceiver(CameraTrack(), direction="sendonly")
            peers.append(publisher)
            await connect(middle, f"s{i}", "booth", publisher)
            if not mode.startswith("record"):
                subscriber = RTCPeerConnection(rtc_configuration())
                transceiver = subscriber.addTransceiver("video", direction="recvonly")
                peers.append(subscriber)
                await connect(middle, f"s{i}", "clerk", subscriber)
                counters.append([0])
                tasks.append(asyncio.ensure_future(count_frames(transceiver.receiver.track, counters[-1])))
        await asyncio.sleep(warmup)
        before = await middle.call(op="cpu")
        frames_before = sum(c[0] for c in counters)
        await asyncio.sleep(seconds)
        after = await middle.call(op="cpu")
        frames = sum(c[0] for c in counters) - frames_before
        wall = after["wall"] - before["wall"]
        return {
            "cpu_per_stream": (after["cpu"] - before["cpu"]) / wall / streams,
            "subscriber_fps": frames / wall / streams if counters else 0.0,
        }
    finally:
        for task in tasks:
            task.cancel()
        for pc in peers:
            await pc.close()
        await middle.stop()


def line(metric: str, value: float, baseline: float, unit: str, **extra: Any) -> str:
    return json.dumps({
        "metric": metric, "value": round(value, 4), "baseline": round(baseline, 4),
        "ratio": round(value / baseline, 3) if baseline else None, "unit": unit, **extra,
    })


# -- a whole call through the product ---------------------------------------------------


def seed_server(data_dir: Path) -> tuple[str, str, str]:
    """A region, the catalogue, one booth and one clerk; returns (booth token, item code, clerk password)."""
    from sqlmodel import Session

    from records.accounts import create_booth, create_region, create_user
    from records.catalog import default_catalog_path, load_catalog_file, upsert_catalog
    from records.db import create_schema, make_engine
    from records.models import Role

    engine = make_engine(f"sqlite:///{data_dir / 'cloudseat.db'}")
    create_schema(engine)
    password = "bench-password-1"
    with Session(engine) as session:
        create_region(session, code="east", name_zh="east", name_en="east", service_hours={})
        catalog = load_catalog_file(default_catalog_path())
        upsert_catalog(session, catalog)
        item = next(i for i in catalog.items if i.skill == "social_insurance")
        _booth, token = create_booth(session, name="bench-booth", region_code="east")
        create_user(session, username="bench-clerk", password=password, role=Role.CLERK, display_name="B",
                    skills=["social_insurance"], regions=["east"])
        session.commit()
    engine.dispose()
    return token, item.code, password


async def start_server(data_dir: Path) -> tuple[asyncio.subprocess.Process, str]:
    import socket
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSEAT_")}
    env.update({"CLOUDSEAT_DATA_DIR": str(data_dir), "CLOUDSEAT_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
                "CLOUDSEAT_SECRET_KEY": "bench-secret-key-" + "x" * 16, "CLOUDSEAT_LOG_LEVEL": "WARNING"})
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "cloudseat", "serve", "--port", str(port),
                                                   env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/readyz", timeout=1).status == 200:
                return process, url
        except OSError:
            await asyncio.sleep(0.05)  # polling a starting process
    raise RuntimeError("cloudseat serve did not start")


async def call_through_hub(seconds: float) -> tuple[float, float]:
    """(set-up seconds, median face latency ms at the clerk) of one call through a real server."""
    from seat.simulator import SeatPlan, run_seat
    from signaling.protocol_client import ProtocolClient
    from signaling.protocol_media import MediaPeer, booth_tracks

    data_dir = Path(tempfile.mkdtemp(prefix="bench-call-"))
    token, item, password = seed_server(data_dir)
    server, url = await start_server(data_dir)
    seat_peers: list[Any] = []
    ready = asyncio.Event()
    seat = asyncio.create_task(run_seat(url, "bench-clerk", password, SeatPlan(handle_s=seconds + 10, jitter=0,
                                                                               calls=1),
                                        ready=ready, media=True, on_media=seat_peers.append))
    booth = await ProtocolClient.connect(url, "booth", token=token)
    peer: MediaPeer | None = None
    try:
        await asyncio.wait_for(ready.wait(), 20)
        asked = time.time()
        call_id = (await booth.request("call.request", item_code=item))["call_id"]
        await booth.wait_for("call.connected", lambda m: m["call_id"] == call_id, timeout_s=20)
        peer = MediaPeer(booth, call_id, publish=booth_tracks(), receive=("video", "audio"))
        await peer.connect()
        clerk_sees = (await _first(seat_peers, "booth-face")).first_readable_at
        booth_sees = (await peer.wait_frames("clerk-camera", 1, 20)).first_readable_at
        assert clerk_sees is not None and booth_sees is not None
        setup = max(clerk_sees, booth_sees) - asked
        face = seat_peers[0].receipt("booth-face")
        skip = len(face.latencies_ms)
        await asyncio.sleep(seconds)  # the measurement window
        latency = statistics.median(face.latencies_ms[skip:])
        return setup, latency
    finally:
        if peer is not None:
            await peer.close()
        await booth.close()
        seat.cancel()
        await asyncio.gather(seat, return_exceptions=True)
        for p in seat_peers:
            await p.close()
        server.terminate()
        await server.wait()


async def _first(peers: list[Any], track: str) -> Any:
    deadline = time.monotonic() + 20
    while not peers:
        if time.monotonic() > deadline:
            raise RuntimeError("the clerk never connected its media")
        await asyncio.sleep(0.01)  # the simulator hands its peer over when connected
    return await peers[0].wait_frames(track, 1, 20)


async def bare_pair(seconds: float) -> tuple[float, float]:
    """The same two figures for two aiortc peers connected directly (no server, no hub)."""
    from media.ice import choose_host_addresses
    from media.synthetic import PreEncodedVideoTrack, read_burnt_in

    addresses = choose_host_addresses(None)
    a, b = RTCPeerConnection(rtc_configuration()), RTCPeerConnection(rtc_configuration())
    seen: dict[str, float] = {}
    latencies: list[float] = []

    async def watch(track: MediaStreamTrack, name: str) -> None:
        try:
            while True:
                frame = await track.recv()
                try:
                    _counter, clock_ms = read_burnt_in(frame)
                except ValueError:
                    continue
                now = time.time()
                seen.setdefault(name, now)
                if name == "b":
                    latencies.append(now * 1000.0 - clock_ms)
        except MediaStreamError:
            return

    tasks = []
    try:
        started = time.time()
        for pc in (a, b):
            pc.addTransceiver(PreEncodedVideoTrack(CameraTrack(), bitrate=500_000), direction="sendrecv")
        offer = await a.createOffer()
        advertise_host_addresses(a, addresses)
        await a.setLocalDescription(offer)
        await b.setRemoteDescription(a.localDescription)
        answer = await b.createAnswer()
        advertise_host_addresses(b, addresses)
        await b.setLocalDescription(answer)
        await a.setRemoteDescription(b.localDescription)
        tasks = [asyncio.ensure_future(watch(a.getTransceivers()[0].receiver.track, "a")),
                 asyncio.ensure_future(watch(b.getTransceivers()[0].receiver.track, "b"))]
        deadline = time.monotonic() + 20
        while len(seen) < 2:
            if time.monotonic() > deadline:
                raise RuntimeError("the bare pair never saw frames both ways")
            await asyncio.sleep(0.005)  # polling the watchers' results
        setup = max(seen.values()) - started
        skip = len(latencies)
        await asyncio.sleep(seconds)  # the measurement window
        return setup, statistics.median(latencies[skip:])
    finally:
        for task in tasks:
            task.cancel()
        await a.close()
        await b.close()


async def call_figures(seconds: float) -> None:
    bare_setup, bare_latency = await bare_pair(seconds)
    hub_setup, hub_latency = await call_through_hub(seconds)
    common = {"seconds": seconds, "video": "640x480@15 VP8"}
    print(line("call_setup_s", hub_setup, bare_setup, "s", **common), flush=True)
    print(line("hub_latency_ms", hub_latency, bare_latency, "ms", **common), flush=True)


async def main(args: argparse.Namespace) -> None:
    if args.call:
        await call_figures(args.seconds or (5.0 if args.quick else 20.0))
        return
    warmup = 3.0 if args.quick else 10.0
    seconds = args.seconds or (5.0 if args.quick else 20.0)
    results = {mode: await measure(mode, args.streams, warmup, seconds) for mode in MODES}
    common = {"streams": args.streams, "seconds": seconds, "video": "640x480@15 VP8"}
    print(line(
        "forwarding_cpu_per_stream", results["passthrough"]["cpu_per_stream"], results["relay"]["cpu_per_stream"],
        "cpu_s_per_s", fps=round(results["passthrough"]["subscriber_fps"], 1),
        baseline_fps=round(results["relay"]["subscriber_fps"], 1), **common,
    ), flush=True)
    print(line(
        "recording_cpu_per_stream", results["record-copy"]["cpu_per_stream"],
        results["record-mediarecorder"]["cpu_per_stream"], "cpu_s_per_s", **common,
    ), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short warm-up and window (CI smoke)")
    parser.add_argument("--streams", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=0.0, help="measurement window")
    parser.add_argument("--call", action="store_true", help="call set-up time and hub latency through a real server")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if arguments.child:
        asyncio.run(serve(arguments.child))
    else:
        asyncio.run(main(arguments))
