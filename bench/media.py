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
subscribers over loopback.  Usage:

    python bench/media.py [--quick] [--streams N] [--seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
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


async def main(args: argparse.Namespace) -> None:
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
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if arguments.child:
        asyncio.run(serve(arguments.child))
    else:
        asyncio.run(main(arguments))
