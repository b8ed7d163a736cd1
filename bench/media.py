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

With ``--call``, figures of whole calls through a real `cloudseat serve`
process (the simulators' `MediaPeer`s in this process), each against two bare
aiortc peers connected directly in this process.  Both sides carry the same
media: the booth publishes face camera, document camera and microphone and
receives video and audio; the clerk publishes camera and microphone (the same
synthetic, pre-encoded sources).  5 rounds (``--quick``) or 9 of each; the
figures are medians, the first (cold) round is printed beside them:

- call_setup_s: from the booth's `call.request` (the clerk answers at once)
  until both sides decoded a first frame of the other, vs offer-to-first-frame
  both ways of the bare pair.  On both sides the cameras are open before the
  clock starts (a kiosk and a console show a self-view before a call), and this
  process's heap is frozen out of the garbage collector first (a full
  collection of it, 50-70 ms, would otherwise land inside some set-ups of
  either side); the phases (connected, booth peer up, first frames) go to
  stderr;
- hub_latency_ms: median capture-to-decode latency of the booth's face at the
  clerk (burnt-in wall clock) over ``--seconds`` of each call (3 s quick, 10 s
  full), vs the same over the bare pair.

Always (also in ``--quick``):

- hub_added_latency_ms: capture-to-decode latency (burnt-in wall clock) of a
  640x480@15 VP8 camera through the hub minus the same over a direct aiortc
  connection, vs the same difference through aiortc's MediaRelay + re-encode;
  the extra ``stock_jitter_added_ms`` is the hub with aiortc's stock jitter
  buffer (a frame is released only when the next one starts).

With ``--load`` (and in ``--quick``): the load curve.  1, 2, 5, 10 (full mode
also 15, 20) concurrent recorded calls through one hub process -- each a booth
(face 640x480@15, document camera 1920x1080@3, audio) and a clerk (camera
640x480@15, audio), every track recorded -- driven by replay clients that
send a VP8 clip and Opus packets encoded once (a keyframe request restarts
the clip at its keyframe), and take the forwarded frames without decoding
(bit-exact, so each is matched to the frame sent by its hash).  One line per
step: hub CPU (cpu-s/s), frames lost (%), forwarding latency, with the
baseline aiortc MediaRelay + re-encode + MediaRecorder measured at 1 call and
scaled per call; then ``max_recorded_calls`` (most calls with < 1 % lost).

With ``--janus``: our hub against Debian's janus VideoRoom, both measured in
the same run with the same aiortc publishers and subscribers (the Janus side
is driven by bench/janus_driver.py over its HTTP API, with a private config):

- forwarding_cpu_per_stream_vs_janus: `measure` of the hub ("passthrough")
  vs Janus CPU (/proc/<pid>/stat) per second per stream; target 2x;
- hub_latency_vs_janus_ms: the capture-to-decode latency the hub adds over a
  direct connection vs what Janus adds; target: within 10 ms;
- recording_cpu_per_stream_vs_janus: the hub recording (stream copy) vs Janus
  recording `.mjr`, publishers only (no target).

``--streams`` sets the streams, ``--seconds`` the windows (``--quick``: short
warm-up), ``--janus-bitrate`` the REMB Janus sends its publishers (default
none: they stay at aiortc's 500 kbps start, while the hub relays its
subscriber's REMB and its publisher climbs, so Janus never forwards more).
Without janus installed: one line saying so (exit 0); if janus fails to
start: one "janus failed" line, its log tail on stderr, exit 1.

Usage:

    python bench/media.py [--quick] [--streams N] [--seconds S] [--call] [--load] [--janus [--janus-bitrate BPS]]
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import gc
import hashlib
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
from aiortc import sdp as aiortc_sdp
from aiortc.contrib.media import MediaBlackhole, MediaRecorder, MediaRelay
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from media.hub import MediaHub  # noqa: E402
from media.ice import LOOPBACK_ADDRESSES, advertise_host_addresses, rtc_configuration  # noqa: E402
from bench._common import emit, figure, log, median, percentile  # noqa: E402
from media import _aiortc_internals as internals  # noqa: E402
from media.synthetic import CameraTrack  # noqa: E402

logger = logging.getLogger("bench.media")
MODES = ("passthrough", "relay", "record-copy", "record-mediarecorder")
CHILD_MODES = MODES + ("passthrough-stock", "load-hub", "load-baseline")


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
    def __init__(self, recording_dir: Path | None, release_on_marker: bool = True) -> None:
        self.hub = MediaHub(host_addresses=LOOPBACK_ADDRESSES, release_on_marker=release_on_marker)
        self.recording_dir = recording_dir

    async def offer(self, room: str, role: str, sdp: str) -> str:
        if self.recording_dir is not None:
            self.hub.open_room(room, recording_dir=self.recording_dir / room)
        return await self.hub.handle_offer(room, role, role, sdp)

    async def close(self) -> None:
        await self.hub.close()


async def serve(mode: str) -> None:
    """Answer JSON-line requests on stdin: offer, cpu, quit."""
    recording = mode.startswith("record") or mode.startswith("load")
    recording_dir = Path(tempfile.mkdtemp(prefix="bench-rec-")) if recording else None
    middle: Baseline | Passthrough | CallBaseline
    if mode in ("passthrough", "record-copy", "load-hub"):
        middle = Passthrough(recording_dir)
    elif mode == "passthrough-stock":
        middle = Passthrough(recording_dir, release_on_marker=False)
    elif mode == "load-baseline":
        middle = CallBaseline(recording_dir)
    else:
        middle = Baseline(recording_dir)
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

    @property
    def pid(self) -> int:
        return int(self.process.pid)

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


def _quiet_heap() -> None:
    """Take this process's heap out of the garbage collector before a timed set-up.

    The bench process stands in for two browsers; a full collection of its own
    ~100k objects (aiortc, PyAV, numpy) costs 50-70 ms and, landing inside a
    set-up, measured this process rather than the hub.  Both sides get it.
    """
    gc.collect()
    gc.freeze()


async def call_through_hub(seconds: float, rounds: int) -> tuple[list[float], list[float]]:
    """Set-up seconds and median face latency (ms, at the clerk, over `seconds`) of each of
    `rounds` calls through one real server, one simulated clerk answering at once."""
    from seat.simulator import SeatPlan, run_seat
    from signaling.protocol_client import ProtocolClient

    data_dir = Path(tempfile.mkdtemp(prefix="bench-call-"))
    token, item, password = seed_server(data_dir)
    server, url = await start_server(data_dir)
    seat_peers: list[Any] = []
    ready = asyncio.Event()
    plan = SeatPlan(handle_s=seconds + CALL_MARGIN_S, jitter=0, calls=rounds)  # the clerk ends each call
    seat = asyncio.create_task(run_seat(url, "bench-clerk", password, plan, ready=ready, media=True,
                                        on_media=seat_peers.append))
    booth = await ProtocolClient.connect(url, "booth", token=token)
    setups: list[float] = []
    latencies: list[float] = []
    try:
        await asyncio.wait_for(ready.wait(), 20)
        for _ in range(rounds):
            setup, latency = await _one_call(booth, item, seat_peers, seconds)
            setups.append(setup)
            latencies.append(latency)
        return setups, latencies
    finally:
        await booth.close()
        seat.cancel()
        await asyncio.gather(seat, return_exceptions=True)
        for p in seat_peers:
            await p.close()
        server.terminate()
        await server.wait()


CALL_MARGIN_S = 2.0  # a call lasts the measurement window and this much more (set-up, then the clerk ends it)


async def _one_call(booth: Any, item: str, seat_peers: list[Any], window_s: float) -> tuple[float, float]:
    """One call's set-up time and, over `window_s` after it, the median face latency at the clerk."""
    from signaling.protocol_media import MediaPeer, booth_tracks

    known = len(seat_peers)
    tracks = booth_tracks()  # the kiosk's cameras are open (self-view) before the resident calls
    _quiet_heap()
    asked = time.time()
    call_id = (await booth.request("call.request", item_code=item))["call_id"]
    await booth.wait_for("call.connected", lambda m: m["call_id"] == call_id, timeout_s=20)
    connected = time.time()
    peer = MediaPeer(booth, call_id, publish=tracks, receive=("video", "audio"))
    try:
        await peer.connect()
        booth_peer_up = time.time()
        clerk_peer = await _next_peer(seat_peers, known)
        clerk_sees = (await clerk_peer.wait_frames("booth-face", 1, 20)).first_readable_at
        booth_sees = (await peer.wait_frames("clerk-camera", 1, 20)).first_readable_at
        assert clerk_sees is not None and booth_sees is not None
        setup = max(clerk_sees, booth_sees) - asked
        log(f"call set-up: connected +{connected - asked:.3f} s, booth peer up +{booth_peer_up - asked:.3f} s, "
            f"clerk sees the booth +{clerk_sees - asked:.3f} s, booth sees the clerk +{booth_sees - asked:.3f} s")
        face = clerk_peer.receipt("booth-face")
        skip = len(face.latencies_ms)
        await asyncio.sleep(window_s)  # the measurement window
        latency = statistics.median(face.latencies_ms[skip:])
        await booth.wait_for("call.ended", lambda m: m.get("call_id") == call_id, timeout_s=CALL_MARGIN_S + 20)
        return setup, latency
    finally:
        await peer.close()


async def _next_peer(peers: list[Any], known: int) -> Any:
    deadline = time.monotonic() + 20
    while len(peers) <= known:
        if time.monotonic() > deadline:
            raise RuntimeError("the clerk never connected its media")
        await asyncio.sleep(0.005)  # the simulator hands its peer over when connected
    return peers[known]


async def bare_pair(seconds: float) -> tuple[float, float]:
    """The same two figures for two aiortc peers connected directly (no server, no hub).

    Like for like: the peers carry what the call's do -- the booth publishes its
    face camera, document camera and microphone and receives video and audio;
    the clerk publishes camera and microphone -- from the same synthetic,
    pre-encoded sources, opened before the clock starts.
    """
    from media.ice import choose_host_addresses
    from media.synthetic import PreEncodedVideoTrack, read_burnt_in
    from signaling.protocol_media import booth_tracks, clerk_tracks

    addresses = choose_host_addresses(None)
    booth, clerk = RTCPeerConnection(rtc_configuration()), RTCPeerConnection(rtc_configuration())
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
                if name == "clerk sees the face":
                    latencies.append(now * 1000.0 - clock_ms)
        except MediaStreamError:
            return

    tasks = []
    try:
        booth_out, clerk_out = booth_tracks(), clerk_tracks()  # open before the call
        _quiet_heap()
        started = time.time()
        for out in booth_out:
            transceiver = booth.addTransceiver(out.track, direction="sendonly")
            if isinstance(out.track, PreEncodedVideoTrack):
                out.track.bind_sender(transceiver.sender)
        for kind in ("video", "audio"):
            booth.addTransceiver(kind, direction="recvonly")
        offer = await booth.createOffer()
        advertise_host_addresses(booth, addresses)
        await booth.setLocalDescription(offer)
        await clerk.setRemoteDescription(booth.localDescription)
        # the clerk sends on the booth's receive-only m-lines (the last two) and receives the rest
        clerk_transceivers = clerk.getTransceivers()
        for transceiver, out in zip(clerk_transceivers[len(booth_out):], clerk_out):
            transceiver.direction = "sendrecv"
            transceiver.sender.replaceTrack(out.track)
            if isinstance(out.track, PreEncodedVideoTrack):
                out.track.bind_sender(transceiver.sender)
        answer = await clerk.createAnswer()
        advertise_host_addresses(clerk, addresses)
        await clerk.setLocalDescription(answer)
        await booth.setRemoteDescription(clerk.localDescription)
        tasks = [asyncio.ensure_future(watch(clerk_transceivers[0].receiver.track, "clerk sees the face")),
                 asyncio.ensure_future(watch(booth.getTransceivers()[len(booth_out)].receiver.track,
                                             "booth sees the clerk"))]
        deadline = time.monotonic() + 20
        while len(seen) < 2:
            if time.monotonic() > deadline:
                raise RuntimeError("the bare pair never saw frames both ways")
            await asyncio.sleep(0.005)  # polling the watchers' results
        setup = max(seen.values()) - started
        log("bare set-up: " + ", ".join(f"{name} +{at - started:.3f} s" for name, at in seen.items()))
        skip = len(latencies)
        await asyncio.sleep(seconds)  # the measurement window
        return setup, statistics.median(latencies[skip:])
    finally:
        for task in tasks:
            task.cancel()
        await booth.close()
        await clerk.close()


async def call_figures(seconds: float, rounds: int) -> None:
    bare = [await bare_pair(seconds) for _ in range(rounds)]
    hub_setups, hub_latencies = await call_through_hub(seconds, rounds)
    common = {"seconds": seconds, "rounds": rounds, "video": "640x480@15 VP8"}
    print(line("call_setup_s", median(hub_setups), median([setup for setup, _ in bare]), "s",
               first=round(hub_setups[0], 4), first_baseline=round(bare[0][0], 4), **common), flush=True)
    print(line("hub_latency_ms", median(hub_latencies), median([latency for _, latency in bare]), "ms", **common),
          flush=True)


# -- hub added latency ------------------------------------------------------------------


async def _latency_sink(track: MediaStreamTrack, latencies: list[float]) -> None:
    from media.synthetic import read_burnt_in

    try:
        while True:
            frame = await track.recv()
            try:
                _counter, clock_ms = read_burnt_in(frame)
            except ValueError:
                continue
            latencies.append(time.time() * 1000.0 - clock_ms)
    except MediaStreamError:
        return


async def _window_median(latencies: list[float], warmup: float, seconds: float) -> float:
    await asyncio.sleep(warmup)
    skip = len(latencies)
    await asyncio.sleep(seconds)
    window = latencies[skip:]
    if not window:
        raise RuntimeError("no frame decoded in the latency window")
    return statistics.median(window)


async def direct_latency(warmup: float, seconds: float) -> float:
    """Median capture-to-decode ms of a camera sent straight from one aiortc peer to another."""
    from media.synthetic import PreEncodedVideoTrack

    a, b = RTCPeerConnection(rtc_configuration()), RTCPeerConnection(rtc_configuration())
    latencies: list[float] = []
    task: asyncio.Task[None] | None = None
    try:
        track = PreEncodedVideoTrack(CameraTrack(), bitrate=500_000)
        track.bind_sender(a.addTransceiver(track, direction="sendonly").sender)
        b.addTransceiver("video", direction="recvonly")
        await a.setLocalDescription(await a.createOffer())
        await b.setRemoteDescription(a.localDescription)
        advertise_host_addresses(b, LOOPBACK_ADDRESSES)
        await b.setLocalDescription(await b.createAnswer())
        await a.setRemoteDescription(b.localDescription)
        task = asyncio.ensure_future(_latency_sink(b.getTransceivers()[0].receiver.track, latencies))
        return await _window_median(latencies, warmup, seconds)
    finally:
        if task is not None:
            task.cancel()
        await a.close()
        await b.close()


async def middle_latency(mode: str, warmup: float, seconds: float) -> float:
    """The same through a middle process (hub or aiortc relay): publisher -> middle -> subscriber."""
    from media.synthetic import PreEncodedVideoTrack

    middle = await Middle.start(mode)
    publisher, subscriber = RTCPeerConnection(rtc_configuration()), RTCPeerConnection(rtc_configuration())
    latencies: list[float] = []
    task: asyncio.Task[None] | None = None
    try:
        track = PreEncodedVideoTrack(CameraTrack(), bitrate=500_000)
        track.bind_sender(publisher.addTransceiver(track, direction="sendonly").sender)
        await connect(middle, "lat", "booth", publisher)
        transceiver = subscriber.addTransceiver("video", direction="recvonly")
        await connect(middle, "lat", "clerk", subscriber)
        task = asyncio.ensure_future(_latency_sink(transceiver.receiver.track, latencies))
        return await _window_median(latencies, warmup, seconds)
    finally:
        if task is not None:
            task.cancel()
        await publisher.close()
        await subscriber.close()
        await middle.stop()


async def latency_figures(seconds: float) -> None:
    warmup = 3.0
    log(f"latency: direct, hub, hub with aiortc's stock jitter buffer, MediaRelay ({seconds:.0f} s each)")
    direct = await direct_latency(warmup, seconds)
    hub = await middle_latency("passthrough", warmup, seconds)
    stock = await middle_latency("passthrough-stock", warmup, seconds)
    relay = await middle_latency("relay", warmup, seconds)
    added, relay_added = hub - direct, relay - direct
    emit(figure(
        "hub_added_latency_ms", added, relay_added, "ms", baseline_is="aiortc MediaRelay + re-encode, added",
        direct_ms=direct, hub_ms=hub, relay_ms=relay, stock_jitter_added_ms=stock - direct,
        target_ms=15, met=added <= 15, seconds=seconds, video="640x480@15 VP8",
    ))


# -- load curve: recorded calls driven by pre-encoded replay clients ------------------------


FACE_FPS, DOC_FPS, CLIP_S = 15, 3, 3


def encode_clip(kind: str, fps: int, seconds: int, bitrate: int) -> list[bytes]:
    """A VP8 clip encoded once: frame 0 a keyframe, the rest deltas (libvpx real-time)."""
    import fractions

    import av

    from media.synthetic import SampleForm, TestPattern, frame_from_luma

    picture: TestPattern | SampleForm = TestPattern(640, 480) if kind == "face" else SampleForm(1920, 1080)
    codec: Any = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height = picture.width, picture.height
    codec.pix_fmt = "yuv420p"
    codec.bit_rate = bitrate
    codec.time_base = fractions.Fraction(1, fps)
    codec.gop_size = 1 << 30
    codec.thread_count = 2
    codec.options = {"deadline": "realtime", "cpu-used": "-6", "lag-in-frames": "0", "partitions": "0"}
    out: list[bytes] = []
    for index in range(fps * seconds):
        frame = frame_from_luma(picture.render(index, index))
        frame.pts = index
        frame.pict_type = av.video.frame.PictureType.I if index == 0 else av.video.frame.PictureType.NONE
        out.append(b"".join(bytes(p) for p in codec.encode(frame)))
    return out


def encode_opus_clip(seconds: int) -> list[bytes]:
    import array
    import fractions
    import math

    import av

    encoder: Any = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48000, "mono", "s16"
    encoder.time_base = fractions.Fraction(1, 48000)
    tone = array.array("h", (int(6000 * math.sin(2 * math.pi * 440 * i / 48000)) for i in range(48000)))
    out: list[bytes] = []
    for index in range(50 * seconds):
        frame = av.AudioFrame(format="s16", layout="mono", samples=960)
        start = (index * 960) % 48000
        frame.planes[0].update(tone[start:start + 960].tobytes())
        frame.sample_rate, frame.pts, frame.time_base = 48000, index * 960, fractions.Fraction(1, 48000)
        out.extend(bytes(p) for p in encoder.encode(frame))
    return out


class ReplayTrack(MediaStreamTrack):
    """Sends a pre-encoded clip in a loop at its rate; costs only packetisation.

    A keyframe request (bind it with `bind_sender`) restarts the clip at its keyframe.
    Remembers when each clip index was last sent, and every send, for matching.
    """

    def __init__(self, kind: str, clip: list[bytes], rate: float, clock_rate: int) -> None:
        super().__init__()
        self.kind = kind
        self.clip = clip
        self.rate = rate
        self.step = round(clock_rate / rate)
        self.time_base = fractions.Fraction(1, clock_rate)
        self.count = 0
        self.index = 0
        self.last_sent: dict[int, float] = {}
        self.sends: list[float] = []
        self._start: float | None = None

    def bind_sender(self, sender: Any) -> None:
        internals.intercept_keyframe_requests(sender, self.request_keyframe)

    def request_keyframe(self) -> None:
        self.index = 0

    async def recv(self) -> Any:
        import av

        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        wait = self._start + self.count / self.rate - now
        if wait > 0:
            await asyncio.sleep(wait)
        data = self.clip[self.index]
        packet = av.Packet(data)
        packet.pts = packet.dts = self.count * self.step
        packet.time_base = self.time_base
        sent = time.time()
        if self.kind == "video":
            self.last_sent[self.index] = sent
            self.sends.append(sent)
        self.count += 1
        self.index = (self.index + 1) % len(self.clip)
        return packet


class Clips:
    def __init__(self) -> None:
        log("load: encoding the replay clips once")
        self.video = {"face": encode_clip("face", FACE_FPS, CLIP_S, 500_000),
                      "doc": encode_clip("doc", DOC_FPS, CLIP_S, 800_000)}
        self.audio = encode_opus_clip(CLIP_S)
        self.index: dict[str, tuple[str, int]] = {}
        for name, clip in self.video.items():
            for i, data in enumerate(clip):
                self.index.setdefault(hashlib.sha1(data).hexdigest(), (name, i))


class ReplayClient:
    """A booth or clerk that replays clips and takes forwarded frames without decoding."""

    def __init__(self, clips: Clips, publish: list[str], receive: list[str]) -> None:
        self.clips = clips
        self.pc = RTCPeerConnection(rtc_configuration())
        self.tracks: dict[str, ReplayTrack] = {}
        for name in publish:
            if name == "audio":
                track = ReplayTrack("audio", clips.audio, 50, 48000)
            else:
                track = ReplayTrack("video", clips.video[name], FACE_FPS if name == "face" else DOC_FPS, 90000)
            transceiver = self.pc.addTransceiver(track, direction="sendonly")
            if track.kind == "video":
                track.bind_sender(transceiver.sender)
            self.tracks[name] = track
        # (clip name, send time of the matched frame, latency s) of every video frame received
        self.received: list[tuple[str, float, float]] = []
        self.unmatched: list[float] = []  # receive times of frames not sent bit-exact (a transcoding middle)
        for kind in receive:
            receiver = self.pc.addTransceiver(kind, direction="recvonly").receiver
            internals.release_complete_frames(receiver)
            if kind == "video":
                internals.hook_decoder_queue(receiver, self._on_video, lambda: None)
            else:
                internals.hook_decoder_queue(receiver, lambda *a: None, lambda: None)
        self.peer: ReplayClient | None = None  # the other end of the call (whose tracks we receive)

    def _on_video(self, codec: Any, data: bytes, timestamp: int) -> None:
        now = time.time()
        found = self.clips.index.get(hashlib.sha1(data).hexdigest())
        if found is None or self.peer is None or found[0] not in self.peer.tracks:
            self.unmatched.append(now)
            return
        name, index = found
        sent = self.peer.tracks[name].last_sent.get(index)
        if sent is None:
            self.unmatched.append(now)
            return
        self.received.append((name, sent, now - sent))


async def run_load_step(mode: str, clips: Clips, calls: int, warmup: float, seconds: float) -> dict[str, float]:
    """Hub CPU, video frames lost and forwarding latency for ``calls`` concurrent recorded calls."""
    middle = await Middle.start(mode)
    clients: list[ReplayClient] = []
    try:
        for i in range(calls):
            booth = ReplayClient(clips, ["face", "doc", "audio"], ["video", "audio"])
            clerk = ReplayClient(clips, ["face", "audio"], ["video", "video", "audio"])
            booth.peer, clerk.peer = clerk, booth
            clients += [booth, clerk]
            await connect(middle, f"call{i}", "booth", booth.pc)
            await connect(middle, f"call{i}", "clerk", clerk.pc)
        await asyncio.sleep(warmup)
        start_wall = time.time()
        before = await middle.call(op="cpu")
        own_before = resource.getrusage(resource.RUSAGE_SELF)
        await asyncio.sleep(seconds)
        after = await middle.call(op="cpu")
        own_after = resource.getrusage(resource.RUSAGE_SELF)
        end_wall = time.time()
        await asyncio.sleep(1.0)  # frames in flight at the window's end still count
        sent = received = counted = 0
        latencies: list[float] = []
        for client in clients:
            assert client.peer is not None
            for name, track in client.peer.tracks.items():
                if track.kind == "video":
                    sent += sum(1 for t in track.sends if start_wall <= t < end_wall)
            window = [r for r in client.received if start_wall <= r[1] < end_wall]
            received += len({(name, t) for name, t, _lat in window})
            counted += sum(1 for t in client.unmatched if start_wall <= t < end_wall)
            latencies += [lat * 1000.0 for _n, _t, lat in window]
        wall = after["wall"] - before["wall"]
        own = (own_after.ru_utime + own_after.ru_stime - own_before.ru_utime - own_before.ru_stime) / wall
        return {
            "cpu": (after["cpu"] - before["cpu"]) / wall,
            "lost_pct": 100.0 * (1 - received / sent) if sent else 100.0,
            "latency_p50": median(latencies), "latency_p95": percentile(latencies, 95),
            "sent": sent, "received": received, "load_cpu": own,
            # a transcoding middle changes every frame: loss by count only (approximate)
            "lost_pct_by_count": 100.0 * (1 - (received + counted) / sent) if sent else 100.0,
        }
    finally:
        for client in clients:
            await client.pc.close()
        await middle.stop()


async def load_figures(quick: bool) -> None:
    steps = (1, 2, 5, 10) if quick else (1, 2, 5, 10, 15, 20)
    warmup, seconds = (3.0, 5.0) if quick else (5.0, 15.0)
    clips = Clips()
    log(f"load: baseline (aiortc MediaRelay + re-encode + MediaRecorder), 1 call, {seconds:.0f} s")
    base = await run_load_step("load-baseline", clips, 1, warmup, seconds)
    best = 0
    failed: list[int] = []
    for calls in steps:
        log(f"load: {calls} recorded call(s) through the hub, {seconds:.0f} s")
        r = await run_load_step("load-hub", clips, calls, warmup, seconds)
        ok = r["lost_pct"] < 1.0
        if ok and best == (steps[steps.index(calls) - 1] if calls != steps[0] else 0):
            best = calls  # every step up to here held: the curve, not a lucky point
        if not ok:
            failed.append(calls)
        emit(figure(
            "load_hub_cpu", r["cpu"], base["cpu"] * calls, "cpu_s_per_s", calls=calls,
            baseline_is="aiortc MediaRelay+re-encode+MediaRecorder at 1 call (measured), x calls",
            frames_lost_pct=r["lost_pct"], frames_sent=r["sent"], frames_received=r["received"],
            latency_ms_p50=r["latency_p50"], latency_ms_p95=r["latency_p95"],
            load_generator_cpu=r["load_cpu"], met=ok, seconds=seconds,
            tracks_per_call="booth face 640x480@15 + doc 1920x1080@3 + audio, clerk 640x480@15 + audio, all recorded",
        ))
    emit(figure("max_recorded_calls", float(best), 1.0, "calls", target=10, met=best >= 10, steps=list(steps),
                failed_steps=failed,
                baseline_is="1 call (the aiortc baseline's measured step)",
                baseline_cpu_1call=base["cpu"], baseline_frames_lost_pct_by_count=base["lost_pct_by_count"]))


# -- janus VideoRoom --------------------------------------------------------------------


async def janus_figures(streams: int, seconds: float, quick: bool, janus_bitrate: int) -> None:
    """Our hub against Janus VideoRoom, measured in the same run by the same code.

    Forwarding and recording CPU per stream (`measure`, and `bench.janus_driver.measure` with
    the same publishers and subscribers), and the latency each adds over a direct aiortc
    connection (`direct_latency`, `middle_latency`, `bench.janus_driver.latency`). The two
    sides alternate, so a burst of load from elsewhere is less likely to hit only one.
    """
    from bench import janus_driver

    binary = janus_driver.janus_binary()
    if binary is None:
        print("janus not installed (Debian package 'janus'); skipping the VideoRoom comparison", flush=True)
        return
    # janus_bitrate: the REMB Janus sends its publishers (room `bitrate`); 0 (default) sends none,
    # so they stay at aiortc's 500 kbps start, while the hub relays its subscriber's REMB and its
    # publisher swings between ~0.6 and 1.5 Mbps: Janus forwards no more bytes than the hub.
    warmup = 3.0 if quick else 10.0
    seconds = seconds or (5.0 if quick else 20.0)
    common = {"streams": streams, "seconds": seconds, "warmup_s": warmup, "video": "640x480@15 VP8",
              "baseline_is": "janus 1.1.2 VideoRoom (Debian), same aiortc publishers and subscribers",
              "baseline_remb_bps": janus_bitrate}
    try:
        log(f"janus: forwarding, {streams} stream(s), janus then hub, {warmup:.0f} + {seconds:.0f} s each")
        theirs = await janus_driver.measure(binary, streams, warmup, seconds, record=False, bitrate=janus_bitrate)
        ours = await measure("passthrough", streams, warmup, seconds)
        ratio = ours["cpu_per_stream"] / theirs["cpu_per_stream"] if theirs["cpu_per_stream"] else float("inf")
        emit(figure(
            "forwarding_cpu_per_stream_vs_janus", ours["cpu_per_stream"], theirs["cpu_per_stream"], "cpu_s_per_s",
            target=2.0, met=ratio <= 2.0, fps=ours["subscriber_fps"], baseline_fps=theirs["subscriber_fps"],
            baseline_frames_lost_pct=theirs["lost_pct"], baseline_publisher_kbps=theirs["publisher_kbps"],
            **common,
        ))
        log(f"janus: latency, direct, hub, janus, 3 + {seconds:.0f} s each")
        direct = await direct_latency(3.0, seconds)
        hub = await middle_latency("passthrough", 3.0, seconds)
        janus = await janus_driver.latency(binary, 3.0, seconds)
        added, janus_added = hub - direct, janus - direct
        emit(figure(
            "hub_latency_vs_janus_ms", added, janus_added, "ms", target_ms=10, difference_ms=added - janus_added,
            met=added - janus_added <= 10, direct_ms=direct, hub_ms=hub, janus_ms=janus,
            **{**common, "warmup_s": 3.0, "streams": 1},
        ))
        log(f"janus: recording, {streams} stream(s), janus then hub, {warmup:.0f} + {seconds:.0f} s each")
        theirs = await janus_driver.measure(binary, streams, warmup, seconds, record=True, bitrate=janus_bitrate)
        ours = await measure("record-copy", streams, warmup, seconds)
        if theirs["recorded_files"] and theirs["recorded_bytes"]:
            emit(figure(
                "recording_cpu_per_stream_vs_janus", ours["cpu_per_stream"], theirs["cpu_per_stream"],
                "cpu_s_per_s", target=None, met=None, baseline_recorded_files=theirs["recorded_files"],
                baseline_recorded_bytes=theirs["recorded_bytes"],
                baseline_publisher_kbps=theirs["publisher_kbps"], **common,
            ))
        else:
            log("janus: the room recorded no .mjr file; no recording figure")
    except janus_driver.JanusError as error:
        tail = " (log tail on stderr)" if error.log_tail else ""
        print(f"janus failed: {error}{tail}", flush=True)
        if error.log_tail:
            print(f"janus log tail:\n{error.log_tail}", file=sys.stderr, flush=True)
        raise SystemExit(1) from error


# -- the aiortc baseline for whole calls ------------------------------------------------


class LateTrack(MediaStreamTrack):
    """A track whose source arrives later (the other participant's relayed track)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.source: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()
        self.matched: MediaStreamTrack | None = None

    async def recv(self) -> Any:
        return await (await self.source).recv()


class CallBaseline:
    """aiortc's own way for whole calls: decode every track, record it with MediaRecorder,
    relay it (MediaRelay) to the other participant's sender, which re-encodes it."""

    def __init__(self, recording_dir: Path | None) -> None:
        self.relay = MediaRelay()
        self.recording_dir = recording_dir
        self.peers: list[RTCPeerConnection] = []
        self.sinks: list[MediaRecorder] = []
        # room -> participant -> list of (kind, late track) waiting for the other side's tracks
        self.slots: dict[str, dict[str, list[LateTrack]]] = {}
        self.published: dict[str, dict[str, list[MediaStreamTrack]]] = {}

    async def offer(self, room: str, role: str, sdp: str) -> str:
        pc = RTCPeerConnection(rtc_configuration())
        self.peers.append(pc)
        published = self.published.setdefault(room, {}).setdefault(role, [])
        slots = self.slots.setdefault(room, {}).setdefault(role, [])

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            published.append(track)
            assert self.recording_dir is not None
            recorder = MediaRecorder(str(self.recording_dir / f"{room}-{role}-{len(published)}.webm"))
            recorder.addTrack(self.relay.subscribe(track, buffered=False))
            self.sinks.append(recorder)
            asyncio.ensure_future(recorder.start())
            self._fill(room)

        await pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
        for m in aiortc_sdp.SessionDescription.parse(sdp).media:
            if m.direction == "recvonly":
                late = LateTrack(m.kind)
                slots.append(late)
                pc.addTrack(late)
        advertise_host_addresses(pc, LOOPBACK_ADDRESSES)
        await pc.setLocalDescription(await pc.createAnswer())
        self._fill(room)
        return str(pc.localDescription.sdp)

    def _fill(self, room: str) -> None:
        for role, slots in self.slots.get(room, {}).items():
            others = [t for other, tracks in self.published.get(room, {}).items() if other != role for t in tracks]
            for late in slots:
                if late.source.done():
                    continue
                used = {id(s.matched) for s in slots if s.matched is not None}
                match = next((t for t in others if t.kind == late.kind and id(t) not in used), None)
                if match is not None:
                    late.matched = match
                    late.source.set_result(self.relay.subscribe(match, buffered=False))

    async def close(self) -> None:
        for sink in self.sinks:
            await sink.stop()
        for pc in self.peers:
            await pc.close()


async def main(args: argparse.Namespace) -> None:
    if args.janus:
        await janus_figures(args.streams, args.seconds, args.quick, args.janus_bitrate)
        return
    if args.call:
        await call_figures(args.seconds or (3.0 if args.quick else 10.0), rounds=5 if args.quick else 9)
        return
    if args.load:
        await load_figures(args.quick)
        return
    await latency_figures(args.seconds or (6.0 if args.quick else 15.0))
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
    if args.quick:
        await load_figures(quick=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short warm-up and window (CI smoke)")
    parser.add_argument("--streams", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=0.0, help="measurement window")
    parser.add_argument("--call", action="store_true", help="call set-up time and hub latency through a real server")
    parser.add_argument("--load", action="store_true", help="the load curve of recorded calls only")
    parser.add_argument("--janus", action="store_true", help="the load through janus VideoRoom (if installed)")
    parser.add_argument("--janus-bitrate", type=int, default=0, metavar="BPS",
                        help="with --janus: the REMB janus sends its publishers (0: none, they stay at 500 kbps)")
    parser.add_argument("--child", choices=CHILD_MODES, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if arguments.child:
        asyncio.run(serve(arguments.child))
    else:
        asyncio.run(main(arguments))
