"""Janus VideoRoom as the peer to beat: the same media load as bench/media.py, through Janus.

`bench/media.py --janus` measures our hub and Janus in the same run; this module is the Janus
half. It starts Debian's `janus` binary with a private config (temp dir: only the VideoRoom
plugin and the plain HTTP transport on a free loopback port, no STUN, ICE on one local
address), drives it over the HTTP/JSON API (session, `janus.plugin.videoroom` handles, one
room per run) and plays the publishers and subscribers with aiortc in this process, exactly as
bench/media.py does for the hub:

- forwarding: N publishers sending `CameraTrack` (640x480@15, aiortc's own VP8 encoder), one
  subscriber per publisher decoding every frame (`count_frames`); Janus CPU from
  /proc/<pid>/stat (utime + stime, all threads) per second per stream, as `measure()` reads
  the hub child's getrusage;
- recording: the same publishers, no subscribers, the room recording `.mjr` files;
- latency: one `PreEncodedVideoTrack` publisher and one subscriber, the capture-to-decode
  latency read from the burnt-in clock (`_latency_sink`, `_window_median`).

The measurement helpers are imported from bench/media.py, so both sides are measured by the
same code.

ICE address: Janus never gathers on a loopback interface (its gathering skips IFF_LOOPBACK,
and `ice_enforce_list = "lo"` or `"127.0.0.1"` is silently ignored), and an aiortc peer on
127.0.0.1 cannot pair with a Janus candidate on the machine's own LAN address (the kernel
will not answer 127.0.0.1 from another source address). So Janus is pinned to the machine's
first non-loopback IPv4 address (`ice_enforce_list`) and the aiortc peers of this process
advertise that same address. Packets between two local addresses still travel through the
kernel's loopback device, as the hub's 127.0.0.1 traffic does, so the path costs the same. A
machine with no such address cannot run Janus here: the driver says so and stops. Janus offers to subscribers (the hub answers them), which is the only difference
in the signalling. The HTTP API is used with the stdlib (urllib in a private thread pool):
the bench needs no extra package, and one long poll per session carries Janus's events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._common import cpu_seconds, free_port, log  # noqa: E402
from media.ice import advertise_host_addresses, rtc_configuration  # noqa: E402
from media.synthetic import CameraTrack, PreEncodedVideoTrack  # noqa: E402

VIDEOROOM = "janus.plugin.videoroom"
DEBIAN_LIB = Path("/usr/lib/x86_64-linux-gnu/janus")
SYSTEM_CONFIG = Path("/etc/janus/janus.jcfg")
START_TIMEOUT_S = 20.0
EVENT_TIMEOUT_S = 20.0
KEEPALIVE_S = 15.0  # well under the 60 s session timeout of our config
LONG_POLL_S = 30  # Janus answers a long poll after at most 30 s with a keepalive
# The REMB the room sends its publishers (its `bitrate`). 0: none, so aiortc publishers stay at
# their 500 kbps start. Our hub relays its subscribers' REMB instead, and on this machine its
# publisher then swings between ~0.6 and 1.5 Mbps (aiortc's ceiling), so with 0 Janus never
# forwards more bytes than the hub: the comparison leans, if anything, towards Janus.
PUBLISHER_BITRATE = 0
# janus listens on 127.0.0.1: never through an http_proxy from the environment
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class JanusError(RuntimeError):
    """Janus failed to start or refused a request; ``log_tail`` is the end of its log, if read."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail


def janus_binary() -> str | None:
    """The janus executable, or None when the Debian package is not installed."""
    found = shutil.which("janus")
    if found:
        return found
    return "/usr/bin/janus" if Path("/usr/bin/janus").exists() else None


def _module_folders() -> dict[str, Path]:
    """Where the package put its plugins, transports, event handlers and loggers.

    Read from the system config when it names them (Debian's multiarch path otherwise), so
    the private config works with whatever janus build is installed.
    """
    folders = {"plugins": DEBIAN_LIB / "plugins", "transports": DEBIAN_LIB / "transports",
               "events": DEBIAN_LIB / "events", "loggers": DEBIAN_LIB / "loggers"}
    try:
        text = SYSTEM_CONFIG.read_text()
    except OSError:
        return folders
    for name in folders:
        match = re.search(rf'^\s*{name}_folder\s*=\s*"([^"]+)"', text, re.MULTILINE)
        if match:
            folders[name] = Path(match.group(1))
    return folders


def _others(folder: Path, keep: str) -> str:
    """Comma list of every module library in ``folder`` except ``keep`` (for `disable`)."""
    try:
        names = sorted(p.name for p in folder.glob("*.so"))
    except OSError:
        names = []
    return ",".join(n for n in names if n != keep)


def ice_address() -> str:
    """The local address Janus and its aiortc peers use for ICE (see the module docstring)."""
    from aioice.ice import get_host_addresses

    found = get_host_addresses(use_ipv4=True, use_ipv6=False)
    if not found:
        raise JanusError("janus gathers no ICE candidate on loopback and this machine has no other IPv4 address")
    return str(found[0])


def write_config(folder: Path, http_port: int, address: str, debug_level: int = 4) -> Path:
    """A minimal private config: VideoRoom + plain HTTP on loopback, ICE on ``address`` only.

    Janus loads every plugin and transport of its folders unless disabled, and each one reads
    its own `<name>.jcfg` from the configs folder, so we disable the rest and write the two
    we keep. `ice_enforce_list` pins its host candidates to ``address`` (IPv6 is off by default).
    """
    folders = _module_folders()
    (folder / "janus.jcfg").write_text(f"""general: {{
    configs_folder = "{folder}"
    plugins_folder = "{folders['plugins']}"
    transports_folder = "{folders['transports']}"
    events_folder = "{folders['events']}"
    loggers_folder = "{folders['loggers']}"
    debug_level = {debug_level}
    debug_colors = false
    session_timeout = 60
    server_name = "cloudseat-bench"
}}
nat: {{
    nice_debug = false
    ice_enforce_list = "{address}"
    ignore_mdns = true
}}
plugins: {{
    disable = "{_others(folders['plugins'], 'libjanus_videoroom.so')}"
}}
transports: {{
    disable = "{_others(folders['transports'], 'libjanus_http.so')}"
}}
loggers: {{
    disable = "{_others(folders['loggers'], '')}"
}}
events: {{
    broadcast = false
    disable = "{_others(folders['events'], '')}"
}}
""")
    (folder / "janus.transport.http.jcfg").write_text(f"""general: {{
    json = "plain"
    base_path = "/janus"
    http = true
    port = {http_port}
    ip = "127.0.0.1"
    https = false
}}
admin: {{
    admin_http = false
    admin_https = false
}}
""")
    # no static rooms: the bench creates its own through the API
    (folder / "janus.plugin.videoroom.jcfg").write_text("general: {\n}\n")
    return folder / "janus.jcfg"


class JanusProcess:
    """One janus process with its private config, log and recording dir in a temp dir."""

    def __init__(self, binary: str, workdir: Path, port: int, process: subprocess.Popen[bytes],
                 log_path: Path, address: str) -> None:
        self.binary = binary
        self.address = address
        self.workdir = workdir
        self.port = port
        self.process = process
        self.log_path = log_path
        self.url = f"http://127.0.0.1:{port}/janus"

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    @property
    def recording_dir(self) -> Path:
        return self.workdir / "rec"

    @classmethod
    def start(cls, binary: str, debug_level: int = 4) -> JanusProcess:
        """Start janus and wait until its HTTP API answers `info`; JanusError with the log if not."""
        address = ice_address()
        workdir = Path(tempfile.mkdtemp(prefix="bench-janus-"))
        (workdir / "rec").mkdir()
        port = free_port()
        config = write_config(workdir, port, address, debug_level)
        log_path = workdir / "janus.log"
        with open(log_path, "wb") as log_file:
            process = subprocess.Popen(
                [binary, "-C", str(config), "-F", str(workdir), "-o", "-d", str(debug_level)],
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, cwd=workdir,
            )
        janus = cls(binary, workdir, port, process, log_path, address)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = janus.log_tail()
                janus.stop()
                raise JanusError(f"janus exited with {process.returncode} at start", tail)
            try:
                with _OPENER.open(f"{janus.url}/info", timeout=1) as response:
                    if json.loads(response.read()).get("janus") == "server_info":
                        return janus
            except (urllib.error.URLError, OSError, ValueError):
                pass
            time.sleep(0.05)  # polling a starting process: there is no event to wait on
        tail = janus.log_tail()
        janus.stop()
        raise JanusError(f"janus did not answer on {janus.url} within {START_TIMEOUT_S:.0f} s", tail)

    def cpu(self) -> float:
        """User + system CPU seconds of janus so far (all threads)."""
        return cpu_seconds(self.pid)

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def recorded_files(self) -> list[Path]:
        return sorted(self.recording_dir.glob("*.mjr"))

    def stop(self) -> None:
        """SIGTERM (janus closes its sessions and recordings), SIGKILL if it lingers; remove the temp dir."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _transaction() -> str:
    return secrets.token_hex(8)


@dataclass
class Session:
    """A Janus API session: synchronous requests, plus one long poll dispatching events.

    Asynchronous plugin answers (`event` with our transaction) resolve the waiting future;
    everything else (`webrtcup`, `media`, `slowlink`, `hangup`) is kept for diagnostics.
    """

    janus: JanusProcess
    pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(4, thread_name_prefix="janus-http"))
    id: int = 0
    waiting: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    other_events: list[dict[str, Any]] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _closed: bool = False
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def _http(self, path: str, body: dict[str, Any] | None, timeout: float) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.janus.url + path, data=data,
                                         headers={"Content-Type": "application/json"})
        with _OPENER.open(request, timeout=timeout) as response:
            return json.loads(response.read())

    async def _call(self, path: str, body: dict[str, Any] | None, timeout: float = 10.0) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.pool, self._http, path, body, timeout)

    async def request(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """A request answered synchronously (`success`, or `ack` for keepalive); JanusError otherwise."""
        reply = dict(await self._call(path, {**body, "transaction": _transaction()}))
        if reply.get("janus") not in ("success", "ack"):
            raise JanusError(f"janus refused {body.get('janus')}: {json.dumps(reply)}")
        return reply

    @classmethod
    async def open(cls, janus: JanusProcess) -> Session:
        session = cls(janus)
        session.id = int((await session.request("", {"janus": "create"}))["data"]["id"])
        session._tasks = [asyncio.ensure_future(session._poll()), asyncio.ensure_future(session._keepalive())]
        return session

    async def attach(self) -> Handle:
        reply = await self.request(f"/{self.id}", {"janus": "attach", "plugin": VIDEOROOM})
        return Handle(self, int(reply["data"]["id"]))

    async def _poll(self) -> None:
        while not self._closed:
            try:
                events = await self._call(f"/{self.id}?maxev=10", None, timeout=LONG_POLL_S + 10)
            except (urllib.error.URLError, OSError, ValueError):
                if self._closed:
                    return
                await asyncio.sleep(0.2)  # janus busy or going away; the keepalive notices a dead session
                continue
            for event in events if isinstance(events, list) else [events]:
                future = self.waiting.pop(str(event.get("transaction")), None)
                if future is not None and not future.done() and event.get("janus") in ("event", "error"):
                    future.set_result(event)
                elif event.get("janus") != "keepalive":
                    self.other_events.append(event)
                    self._arrived.set()

    async def wait_event(self, sender: int, kind: str, timeout: float = EVENT_TIMEOUT_S) -> dict[str, Any]:
        """The first event ``kind`` (e.g. `webrtcup`) from handle ``sender``, waiting for it if need be."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.other_events:
                if event.get("sender") == sender and event.get("janus") == kind:
                    return event
            left = deadline - time.monotonic()
            if left <= 0:
                raise JanusError(f"no {kind} from handle {sender} within {timeout:.0f} s")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def _keepalive(self) -> None:
        """Belt and braces next to the long poll (which alone keeps the session alive)."""
        while not self._closed:
            await asyncio.sleep(KEEPALIVE_S)
            if self._closed:
                return
            try:
                await self.request(f"/{self.id}", {"janus": "keepalive"})
            except (JanusError, OSError) as error:  # the measurement itself reports a dead janus
                log(f"janus: keepalive failed: {error}")

    async def close(self) -> None:
        self._closed = True
        for task in self._tasks:
            task.cancel()
        try:
            await self.request(f"/{self.id}", {"janus": "destroy"})
        except (JanusError, urllib.error.URLError, OSError):
            pass  # already gone with its process
        self.pool.shutdown(wait=False, cancel_futures=True)


@dataclass
class Handle:
    """A VideoRoom plugin handle."""

    session: Session
    id: int

    async def sync(self, body: dict[str, Any]) -> dict[str, Any]:
        """A plugin request answered at once (create room, ...): its plugindata.data."""
        reply = await self.session.request(f"/{self.session.id}/{self.id}", {"janus": "message", "body": body})
        data = dict(reply["plugindata"]["data"])
        if "error" in data:
            raise JanusError(f"videoroom refused {body.get('request')}: {data['error']}")
        return data

    async def send(self, body: dict[str, Any], jsep: dict[str, str] | None = None) -> tuple[dict[str, Any],
                                                                                             dict[str, Any] | None]:
        """A plugin request answered by an event (join, configure, start): (data, jsep)."""
        transaction = _transaction()
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.session.waiting[transaction] = future
        message: dict[str, Any] = {"janus": "message", "body": body, "transaction": transaction}
        if jsep is not None:
            message["jsep"] = jsep
        reply = await self.session._call(f"/{self.session.id}/{self.id}", message)
        if reply.get("janus") != "ack":
            self.session.waiting.pop(transaction, None)
            if reply.get("janus") != "event":
                raise JanusError(f"janus refused {body.get('request')}: {json.dumps(reply)}")
            event = reply
        else:
            event = await asyncio.wait_for(future, EVENT_TIMEOUT_S)
        if event.get("janus") == "error":
            raise JanusError(f"janus refused {body.get('request')}: {json.dumps(event)}")
        data = dict(event["plugindata"]["data"])
        if "error" in data:
            raise JanusError(f"videoroom refused {body.get('request')}: {data['error']}")
        return data, event.get("jsep")


def _jsep(pc: RTCPeerConnection) -> dict[str, str]:
    return {"type": pc.localDescription.type, "sdp": pc.localDescription.sdp}


class VideoRoom:
    """One room on a running Janus, with aiortc publishers and subscribers in this process."""

    def __init__(self, session: Session, admin: Handle, room: int) -> None:
        self.session = session
        self.admin = admin
        self.room = room
        self.peers: list[RTCPeerConnection] = []

    @classmethod
    async def create(cls, session: Session, publishers: int, record: bool, bitrate: int) -> VideoRoom:
        """A VP8 room whose REMB to every publisher is ``bitrate`` (0: Janus sends none)."""
        admin = await session.attach()
        room = secrets.randbelow(1 << 30) + 1
        body: dict[str, Any] = {
            "request": "create", "room": room, "publishers": max(publishers, 1), "videocodec": "vp8",
            "audiocodec": "opus", "bitrate": bitrate, "fir_freq": 0, "notify_joining": False,
            "record": record, "permanent": False,
        }
        if record:
            body["rec_dir"] = str(session.janus.recording_dir)
        await admin.sync(body)
        return cls(session, admin, room)

    async def publish(self, track: MediaStreamTrack, name: str,
                      bind: Callable[[Any], None] | None = None) -> tuple[RTCPeerConnection, int]:
        """Join as publisher with ``track`` (send-only); returns the peer and its feed id."""
        handle = await self.session.attach()
        pc = RTCPeerConnection(rtc_configuration())
        self.peers.append(pc)
        transceiver = pc.addTransceiver(track, direction="sendonly")
        if bind is not None:
            bind(transceiver.sender)
        offer = await pc.createOffer()
        advertise_host_addresses(pc, [self.session.janus.address])
        await pc.setLocalDescription(offer)
        data, jsep = await handle.send({"request": "joinandconfigure", "room": self.room, "ptype": "publisher",
                                        "display": name, "audio": False, "video": True}, _jsep(pc))
        if jsep is None or jsep.get("type") != "answer":
            raise JanusError(f"publisher {name}: no SDP answer from janus: {json.dumps(data)}")
        await pc.setRemoteDescription(RTCSessionDescription(jsep["sdp"], "answer"))
        # a feed can be subscribed only once its PeerConnection is up ("No such feed" before)
        await self.session.wait_event(handle.id, "webrtcup")
        return pc, int(data["id"])

    async def subscribe(self, feed: int) -> tuple[RTCPeerConnection, MediaStreamTrack]:
        """Join as subscriber to ``feed``: Janus offers, we answer, then `start`; returns the video track."""
        handle = await self.session.attach()
        data, jsep = await handle.send({"request": "join", "room": self.room, "ptype": "subscriber",
                                        "streams": [{"feed": feed}]})
        if jsep is None or jsep.get("type") != "offer":
            raise JanusError(f"subscriber of {feed}: no SDP offer from janus: {json.dumps(data)}")
        pc = RTCPeerConnection(rtc_configuration())
        self.peers.append(pc)
        await pc.setRemoteDescription(RTCSessionDescription(jsep["sdp"], "offer"))
        video = next((t for t in pc.getTransceivers() if t.kind == "video"), None)
        if video is None:
            raise JanusError(f"subscriber of {feed}: janus offered no video m-line")
        advertise_host_addresses(pc, [self.session.janus.address])
        await pc.setLocalDescription(await pc.createAnswer())
        await handle.send({"request": "start", "room": self.room}, _jsep(pc))
        return pc, video.receiver.track

    async def close(self) -> None:
        for pc in self.peers:
            await pc.close()
        try:
            await self.admin.sync({"request": "destroy", "room": self.room})
        except (JanusError, OSError):
            pass  # the process is stopped next anyway


# -- the measurements (the same quantities as bench/media.py's for the hub) -----------------


@dataclass
class JanusRun:
    """A running janus and an open session; `JanusRun.open` / `close` around each measurement."""

    janus: JanusProcess
    session: Session

    @classmethod
    async def open(cls, binary: str) -> JanusRun:
        janus = await asyncio.get_running_loop().run_in_executor(None, JanusProcess.start, binary)
        try:
            return cls(janus, await Session.open(janus))
        except BaseException:
            janus.stop()
            raise

    async def close(self) -> None:
        await self.session.close()
        await asyncio.get_running_loop().run_in_executor(None, self.janus.stop)


@contextlib.asynccontextmanager
async def running_janus(binary: str) -> AsyncIterator[JanusRun]:
    """A `JanusRun` for one measurement, always stopped after it (temp dir removed).

    A failure while it runs becomes a JanusError carrying the tail of janus's log, read
    before the process and its log are gone.
    """
    run = await JanusRun.open(binary)
    try:
        yield run
    except JanusError as error:
        error.log_tail = error.log_tail or run.janus.log_tail()
        raise
    except (OSError, asyncio.TimeoutError) as error:  # urllib's URLError is an OSError
        raise JanusError(f"janus stopped answering: {error!r}", run.janus.log_tail()) from error
    finally:
        await run.close()


async def _bytes_sent(pc: RTCPeerConnection) -> int:
    stats = await pc.getStats()
    return sum(int(s.bytesSent) for s in stats.values() if s.type == "outbound-rtp")


async def measure(binary: str, streams: int, warmup: float, seconds: float, record: bool,
                  bitrate: int = PUBLISHER_BITRATE) -> dict[str, Any]:
    """Janus CPU-s/s per stream, subscriber fps and frames lost, as `media.measure` for the hub.

    ``record``: publishers only, the room recording (as the hub's "record-copy" mode);
    otherwise one decoding subscriber per publisher (as its "passthrough" mode). Also the
    publishers' mean sending rate over the window, to show the load matched the hub's.
    """
    from bench.media import count_frames

    async with running_janus(binary) as run:
        room: VideoRoom | None = None
        counters: list[list[int]] = []
        cameras: list[CameraTrack] = []
        tasks: list[asyncio.Task[None]] = []
        try:
            room = await VideoRoom.create(run.session, streams, record, bitrate)
            publishers = []
            for i in range(streams):
                camera = CameraTrack()
                cameras.append(camera)
                pc, feed = await room.publish(camera, f"s{i}")
                publishers.append(pc)
                if not record:
                    _pc, track = await room.subscribe(feed)
                    counters.append([0])
                    tasks.append(asyncio.ensure_future(count_frames(track, counters[-1])))
            await asyncio.sleep(warmup)
            bytes_before = [await _bytes_sent(pc) for pc in publishers]
            cpu_before, wall_before = run.janus.cpu(), time.monotonic()
            frames_before, sent_before = sum(c[0] for c in counters), sum(c.count for c in cameras)
            await asyncio.sleep(seconds)
            cpu_after, wall_after = run.janus.cpu(), time.monotonic()
            frames = sum(c[0] for c in counters) - frames_before
            sent = sum(c.count for c in cameras) - sent_before
            wall = wall_after - wall_before
            bytes_after = [await _bytes_sent(pc) for pc in publishers]
            recorded = run.janus.recorded_files()
            return {
                "cpu_per_stream": (cpu_after - cpu_before) / wall / streams,
                "subscriber_fps": frames / wall / streams if counters else 0.0,
                "frames_sent": sent, "frames_received": frames,
                "lost_pct": 100.0 * (1 - frames / sent) if counters and sent else None,
                "publisher_kbps": 8 * (sum(bytes_after) - sum(bytes_before)) / wall / streams / 1000,
                "recorded_files": len(recorded), "recorded_bytes": sum(p.stat().st_size for p in recorded),
                "other_events": [e.get("janus") for e in run.session.other_events
                                 if e.get("janus") not in ("webrtcup", "media")],
            }
        finally:
            for task in tasks:
                task.cancel()
            if room is not None:
                await room.close()


async def latency(binary: str, warmup: float, seconds: float) -> float:
    """Median capture-to-decode ms through Janus: publisher -> janus -> subscriber, as `middle_latency`."""
    from bench.media import _latency_sink, _window_median

    async with running_janus(binary) as run:
        room: VideoRoom | None = None
        task: asyncio.Task[None] | None = None
        latencies: list[float] = []
        try:
            room = await VideoRoom.create(run.session, 1, record=False, bitrate=0)
            track = PreEncodedVideoTrack(CameraTrack(), bitrate=500_000)
            _pc, feed = await room.publish(track, "lat", bind=track.bind_sender)
            _sub, received = await room.subscribe(feed)
            task = asyncio.ensure_future(_latency_sink(received, latencies))
            return await _window_median(latencies, warmup, seconds)
        finally:
            if task is not None:
                task.cancel()
            if room is not None:
                await room.close()


if __name__ == "__main__":  # a smoke run of the driver alone: python bench/janus_driver.py
    async def _smoke() -> None:
        binary = janus_binary()
        if binary is None:
            print("janus not installed", flush=True)
            return
        log(f"janus: forwarding 1 stream for 5 s ({binary})")
        print(json.dumps(await measure(binary, 1, 3.0, 5.0, record=False)), flush=True)
        log("janus: recording 1 stream for 5 s")
        print(json.dumps(await measure(binary, 1, 3.0, 5.0, record=True)), flush=True)
        log("janus: latency 5 s")
        print(json.dumps({"latency_ms": await latency(binary, 3.0, 5.0)}), flush=True)

    asyncio.run(_smoke())
