"""Signaling at scale: cloudseat beside a bare Starlette endpoint and a bare Lua script.

Prints one JSON line per figure, each beside a bare baseline measured in the same run on the
same machine (`ratio` = value / baseline; the issue's target is ratio <= 2 for every figure):

- memory_per_socket  server RSS growth per idle, authenticated booth socket (deflate on and off)
- heartbeat_cpu      server CPU (% of one core) while those sockets idle with 15 s heartbeats
- relay_latency      booth `chat.send` -> clerk `chat.message`, with the N sockets open
- reconnect_storm    every booth drops its socket at once; seconds until all have `welcome`
- redis_offer        RedisBus.offer (and route_once) over 1,000 calls / 100 clerks vs a bare Lua pop-and-assign
- pubsub_hop         RedisBus publish/subscribe between two processes vs bare redis-py pub/sub

The server under test is one `cloudseat serve` process (in-process bus, SQLite) and the
baseline one minimal Starlette app on the same uvicorn settings, each in its own process; the
booth clients live in separate worker processes.  See bench/README.md for what each figure
measures.  Usage:

    python bench/signaling.py [--quick] [--sockets N] [--only METRIC] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import platform
import random
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parents[1]
# Run as a script, Python puts bench/ first on the path, where bench/media.py would shadow the media package.
if sys.path and Path(sys.path[0] or ".").resolve() == SCRIPT.parent:
    sys.path.pop(0)
sys.path.insert(0, str(ROOT))

from bench._common import (  # noqa: E402
    cpu_seconds,
    emit,
    figure,
    free_port,
    log,
    median,
    open_fds,
    percentile,
    rss_bytes,
    stop_process,
    wait_http_ok,
)

logger = logging.getLogger("bench.signaling")

SUBPROTOCOL = "cloudseat.v1"
TOKEN_PREFIX = "token."
HEARTBEAT_S = 15.0  # the server's default; both servers tell clients this in `welcome`
CLERK_USER, CLERK_PASSWORD = "benchclerk", "bench-password-1"
REGION = "bench"
SOCKETS_PER_WORKER = 2500
CONNECT_CONCURRENCY = 64  # per worker, while ramping up (the storm has no limit)
OPEN_TIMEOUT_S = 30.0
KIOSK_BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 15.0)  # seat/static/js/protocol.js BACKOFF_MS
TARGET_RATIO = 2.0
STORM_TARGET_S = 20.0
METRICS = ("memory_per_socket", "heartbeat_cpu", "relay_latency", "reconnect_storm", "redis_offer", "pubsub_hop")
SOCKET_METRICS = METRICS[:4]


# ====================================================================================
# the bare baseline server (its own process)
# ====================================================================================


def bare_app() -> Any:
    """Accept, answer pings, relay a booth's chat to the seat socket: nothing else."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    seats: list[WebSocket] = []

    async def ready(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def serve(websocket: WebSocket, role: str) -> None:
        offered = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",")]
        await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
        await websocket.send_text(json.dumps({"type": "welcome", "role": role, "heartbeat_s": HEARTBEAT_S}))
        if role == "seat":
            seats.append(websocket)
        try:
            while True:
                message = json.loads(await websocket.receive_text())
                mtype, request_id = message.get("type"), message.get("id")
                if mtype == "ping":
                    await websocket.send_text(json.dumps({"type": "pong", "re": request_id}))
                    continue
                if mtype == "chat.send":
                    relayed = json.dumps({"type": "chat.message", "call_id": message.get("call_id"),
                                          "sender": role, "text": message.get("text")})
                    for seat in list(seats):
                        await seat.send_text(relayed)
                if request_id is not None:
                    await websocket.send_text(json.dumps({"type": "ack", "re": request_id}))
        except WebSocketDisconnect:
            pass
        finally:
            if websocket in seats:
                seats.remove(websocket)

    async def booth(websocket: WebSocket) -> None:
        await serve(websocket, "booth")

    async def seat(websocket: WebSocket) -> None:
        await serve(websocket, "seat")

    return Starlette(routes=[Route("/readyz", ready), WebSocketRoute("/ws/booth", booth),
                             WebSocketRoute("/ws/seat", seat)])


def run_bare_server(port: int, deflate: bool) -> None:
    import uvicorn

    uvicorn.run(bare_app(), host="127.0.0.1", port=port, log_level="warning", ws="websockets-sansio",
                ws_per_message_deflate=deflate)


def run_cloudseat_server(port: int, deflate: bool) -> None:
    """`cloudseat serve` exactly as cloudseat/cli.py runs it, but with deflate chosen (the CLI has no flag)."""
    import uvicorn

    from cloudseat.app import create_app
    from cloudseat.heap import settle_for_serving
    from cloudseat.settings import Settings

    settings = Settings.from_env()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(settings)
    settle_for_serving()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level=settings.log_level.lower(),
                ws="websockets-sansio", ws_per_message_deflate=deflate)


# ====================================================================================
# booth client workers (their own processes; commands on stdin, JSON replies on stdout)
# ====================================================================================


@dataclass
class WorkerStats:
    pings: int = 0
    pongs: int = 0
    failed_attempts: int = 0
    unexpected_closes: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    close_codes: dict[str, int] = field(default_factory=dict)

    def error(self, exc: BaseException) -> None:
        name = type(exc).__name__
        code = getattr(getattr(exc, "rcvd", None), "code", None)
        key = f"{name}:{code}" if code is not None else name
        self.errors[key] = self.errors.get(key, 0) + 1


class Booth:
    """One kiosk-like socket: connect with its token, await welcome, ping every heartbeat_s, reconnect."""

    def __init__(self, worker: Worker, token: str) -> None:
        self.worker = worker
        self.token = token
        self.ws: Any = None
        self.dropping = False
        self.welcomed_at = 0.0
        self.task: asyncio.Task[None] | None = None

    async def open(self) -> tuple[Any, float]:
        from websockets.asyncio.client import connect

        ws = await connect(self.worker.url, subprotocols=[SUBPROTOCOL, TOKEN_PREFIX + self.token],  # type: ignore[list-item]
                           open_timeout=OPEN_TIMEOUT_S, ping_interval=None, max_size=2**20)
        try:
            async with asyncio.timeout(OPEN_TIMEOUT_S):
                while True:
                    message = json.loads(await ws.recv())
                    if message.get("type") == "welcome":
                        return ws, float(message.get("heartbeat_s", HEARTBEAT_S))
        except BaseException:
            ws.transport.abort()
            raise

    async def keep(self, limit: asyncio.Semaphore | None) -> None:
        stats = self.worker.stats
        attempt = 0
        while not self.worker.quitting:
            try:
                if limit is not None:
                    async with limit:
                        ws, heartbeat_s = await self.open()
                else:
                    ws, heartbeat_s = await self.open()
            except Exception as exc:  # noqa: BLE001 - count it, back off like a kiosk, try again
                stats.failed_attempts += 1
                stats.error(exc)
                await asyncio.sleep(KIOSK_BACKOFF_S[min(attempt, len(KIOSK_BACKOFF_S) - 1)])
                attempt += 1
                continue
            attempt = 0
            self.ws, self.dropping = ws, False
            self.welcomed_at = time.monotonic()
            self.worker.welcomed(self)
            beat = asyncio.create_task(self.heartbeat(ws, heartbeat_s))
            try:
                async for raw in ws:
                    if isinstance(raw, str) and '"pong"' in raw[:24]:
                        stats.pongs += 1
            except Exception:  # noqa: BLE001 - ConnectionClosedError and friends: the socket is gone
                pass
            finally:
                beat.cancel()
            if not self.dropping and not self.worker.quitting:
                stats.unexpected_closes += 1
                code = str(ws.close_code)
                stats.close_codes[code] = stats.close_codes.get(code, 0) + 1
            self.worker.lost(self)

    async def heartbeat(self, ws: Any, interval_s: float) -> None:
        # A fleet's kiosks connected at different moments, so their pings are spread over the period:
        # the first ping comes at a random phase, then one every interval_s as the kiosk sends them.
        delay = random.uniform(0, interval_s)
        with contextlib.suppress(Exception):
            while True:
                await asyncio.sleep(delay)  # the heartbeat period itself
                delay = interval_s
                await ws.send('{"type":"ping"}')
                self.worker.stats.pings += 1

    def drop(self) -> None:
        """Vanish without a close handshake (RST), as a network blip or a killed kiosk would."""
        if self.ws is not None:
            self.dropping = True
            self.ws.transport.abort()


class Worker:
    def __init__(self, url: str, tokens: list[str]) -> None:
        self.url = url
        self.tokens = tokens
        self.booths: list[Booth] = []
        self.stats = WorkerStats()
        self.quitting = False
        self.live: set[Booth] = set()
        self._changed = asyncio.Event()

    def welcomed(self, booth: Booth) -> None:
        self.live.add(booth)
        self._changed.set()

    def lost(self, booth: Booth) -> None:
        self.live.discard(booth)

    async def wait_live(self, timeout_s: float) -> bool:
        """Wait until every booth of this worker holds a welcomed socket."""
        deadline = time.monotonic() + timeout_s
        while len(self.live) < len(self.booths):
            self._changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 1.0))
        return True

    async def connect(self, start: int, stop: int, timeout_s: float) -> dict[str, Any]:
        began = time.monotonic()
        limit = asyncio.Semaphore(CONNECT_CONCURRENCY)
        new = [Booth(self, t) for t in self.tokens[start:stop]]
        self.booths.extend(new)
        for booth in new:
            booth.task = asyncio.create_task(booth.keep(limit))
        ok = await self.wait_live(timeout_s)
        # later reconnects of these booths are not throttled
        return {"ok": ok, "live": sum(b in self.live for b in new), "asked": len(new),
                "elapsed_s": time.monotonic() - began, **self.snapshot()}

    async def drop_all(self, at: float, timeout_s: float) -> dict[str, Any]:
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        failed_before = self.stats.failed_attempts
        for booth in self.booths:
            booth.welcomed_at = 0.0
            self.live.discard(booth)
            booth.drop()
        ok = await self.wait_live(timeout_s)
        welcomed = [b.welcomed_at for b in self.booths if b.welcomed_at > 0]
        return {"ok": ok, "live": len(welcomed), "asked": len(self.booths),
                "last_welcome": max(welcomed, default=math.nan),
                "failed_attempts": self.stats.failed_attempts - failed_before, **self.snapshot()}

    def snapshot(self) -> dict[str, Any]:
        s = self.stats
        return {"open": len(self.live), "pings": s.pings, "pongs": s.pongs, "failed_attempts_total": s.failed_attempts,
                "unexpected_closes": s.unexpected_closes, "errors": dict(s.errors), "close_codes": dict(s.close_codes)}

    async def quit(self) -> None:
        self.quitting = True
        for booth in self.booths:
            booth.drop()  # RST: leaves no TIME_WAIT behind to eat the ephemeral ports of the next phase
        for booth in self.booths:
            if booth.task is not None:
                booth.task.cancel()
        await asyncio.gather(*(b.task for b in self.booths if b.task is not None), return_exceptions=True)


async def worker_main(url: str, tokens_file: str) -> None:
    tokens = json.loads(Path(tokens_file).read_text())
    worker = Worker(url, tokens)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def reply(payload: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(payload) + "\n")
        sys.stdout.flush()

    reply({"ready": True})
    while True:
        line = await reader.readline()
        if not line:
            break
        command = json.loads(line)
        name = command["cmd"]
        if name == "connect":
            reply(await worker.connect(command["start"], command["stop"], command["timeout_s"]))
        elif name == "stats":
            reply(worker.snapshot())
        elif name == "drop":
            reply(await worker.drop_all(command["at"], command["timeout_s"]))
        elif name == "quit":
            break
    await worker.quit()
    reply({"bye": True})


class WorkerHandle:
    """The orchestrator's end of one worker process."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, url: str, tokens_file: Path, log_path: Path) -> WorkerHandle:
        with open(log_path, "ab") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, str(SCRIPT), "--role", "worker", "--url", url, "--tokens", str(tokens_file),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=err, limit=2**22)
        handle = cls(proc)
        await handle.read(30.0)
        return handle

    async def read(self, timeout_s: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout_s)
        if not line:
            raise RuntimeError(f"worker {self.proc.pid} exited (see its log)")
        reply: dict[str, Any] = json.loads(line)
        return reply

    async def ask(self, wait_s: float, **command: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        await self.proc.stdin.drain()
        return await self.read(wait_s)

    async def close(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(Exception):
                await self.ask(60.0, cmd="quit")
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


# ====================================================================================
# seeding the database for `cloudseat serve`
# ====================================================================================


@dataclass
class Seeded:
    tokens: list[str]  # worker booths
    relay_token: str  # the booth that chats with the clerk
    item_code: str
    db_file: Path


def seed_database(directory: Path, booths: int) -> Seeded:
    """A fresh SQLite database: one region (always open), the catalogue, one clerk, `booths` booths.

    Booths go in with one bulk INSERT and precomputed token hashes (seconds for 10,000), not
    one `create_booth` each; their `booth.created` events are therefore absent, which no figure
    here depends on.
    """
    from records.accounts import BOOTH_TOKEN_PREFIX

    directory.mkdir(parents=True, exist_ok=True)
    db_file = directory / "cloudseat.db"
    tokens = [BOOTH_TOKEN_PREFIX + secrets.token_urlsafe(32) for _ in range(booths + 1)]
    item_code = seed_into(f"sqlite:///{db_file}", tokens)
    return Seeded(tokens=tokens[1:], relay_token=tokens[0], item_code=item_code, db_file=db_file)


def seed_into(url: str, tokens: list[str]) -> str:
    """Create the schema at `url` and seed it with one booth per token; returns the item code."""
    from sqlalchemy import insert
    from sqlmodel import Session

    from records.accounts import create_region, create_user, hash_booth_token
    from records.catalog import default_catalog_path, load_catalog_file, upsert_catalog
    from records.db import create_schema, make_engine
    from records.models import Booth, Role

    engine = make_engine(url)
    create_schema(engine)
    now = datetime.now(timezone.utc)
    with Session(engine) as session:
        create_region(session, code=REGION, name_zh="基准", name_en="bench")  # no hours: always open
        catalog = load_catalog_file(default_catalog_path())
        upsert_catalog(session, catalog)
        item = catalog.items[0]
        create_user(session, username=CLERK_USER, password=CLERK_PASSWORD, role=Role.CLERK, display_name="Bench",
                    skills=[item.skill], regions=[REGION])
        session.commit()
        rows = [{"name": f"bench-{i:05d}", "region_code": REGION, "address": "", "token_hash": hash_booth_token(t),
                 "revoked_at": None, "last_seen_at": None, "device_status": {}, "created_at": now}
                for i, t in enumerate(tokens)]
        session.connection().execute(insert(Booth.__table__), rows)  # type: ignore[attr-defined]
        session.commit()
    engine.dispose()
    return item.code


class ClusterStack:
    """PostgreSQL and the Redis bus for a cloudseat server, as a node of a cluster runs.

    Each phase gets a fresh schema (seeded with the same tokens) and its own Redis key prefix,
    both removed when the phase ends.
    """

    def __init__(self, postgres_url: str, redis_url: str) -> None:
        self.postgres_url, self.redis_url = postgres_url, redis_url

    def start_phase(self, seeded: Seeded) -> tuple[dict[str, str], Callable[[], None]]:
        """Environment for the server of one phase, and the clean-up to run after it."""
        from sqlalchemy import text

        from records.db import make_engine

        name = f"cs_bench_{uuid.uuid4().hex[:12]}"
        admin = make_engine(self.postgres_url)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
        separator = "&" if "?" in self.postgres_url else "?"
        url = f"{self.postgres_url}{separator}options=-csearch_path%3D{name}"
        seed_into(url, [seeded.relay_token, *seeded.tokens])
        prefix = f"{name}:"

        def clean_up() -> None:
            import redis

            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
            admin.dispose()
            client = redis.Redis.from_url(self.redis_url)
            for key in client.scan_iter(match=f"{prefix}*", count=1000):
                client.delete(key)
            client.close()

        return {"CLOUDSEAT_DATABASE_URL": url, "CLOUDSEAT_REDIS_URL": self.redis_url,
                "CLOUDSEAT_REDIS_PREFIX": prefix}, clean_up


# ====================================================================================
# one socket phase: one server (cloudseat or bare, deflate on or off) and N booths
# ====================================================================================


@dataclass
class Plan:
    sockets: int
    quick: bool
    cpu_window_s: float
    relay_rounds: int
    settle_s: float
    workdir: Path
    seeded: Seeded
    tokens_file: Path
    profile_dir: Path | None
    py_spy: str | None
    stack: ClusterStack | None = None  # None: SQLite and the in-process bus, `cloudseat serve`'s defaults


@dataclass
class PhaseResult:
    server: str
    deflate: bool
    connected: int = 0
    connect_s: float = math.nan
    mem_kb: float = math.nan
    rss_mb: float = math.nan
    fds: int = 0
    cpu_pct: float = math.nan
    pongs_per_s: float = math.nan
    relay_ms: list[float] = field(default_factory=list)
    storm_s: float = math.nan
    storm_live: int = 0
    storm_failed_attempts: int = 0
    storm_server_cpu_s: float = math.nan  # the server's own CPU seconds over the storm
    problems: dict[str, Any] = field(default_factory=dict)


class Server:
    """A server process under test; `cloudseat` runs `cloudseat serve` itself when deflate is on."""

    def __init__(self, kind: str, deflate: bool, plan: Plan) -> None:
        self.kind, self.deflate, self.plan = kind, deflate, plan
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.data_dir = plan.workdir / f"{kind}-{'deflate' if deflate else 'plain'}"
        self._clean_up: Callable[[], None] | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSEAT_")}
        if self.kind == "cloudseat":
            shutil.copy(self.plan.seeded.db_file, self.data_dir / "cloudseat.db")
            env.update({"CLOUDSEAT_DATA_DIR": str(self.data_dir), "CLOUDSEAT_LOG_LEVEL": "WARNING",
                        "CLOUDSEAT_SECRET_KEY": "bench-secret-key-" + "x" * 32,
                        "CLOUDSEAT_PUBLIC_BASE_URL": self.http})
            if self.plan.stack is not None:
                stack_env, self._clean_up = self.plan.stack.start_phase(self.plan.seeded)
                env.update(stack_env)
            if self.deflate:  # uvicorn's default: the very command operators run
                command = [str(Path(sys.executable).with_name("cloudseat")), "serve", "--host", "127.0.0.1",
                           "--port", str(self.port)]
                if not Path(command[0]).exists():
                    command = [sys.executable, "-m", "cloudseat", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
            else:
                command = [sys.executable, str(SCRIPT), "--role", "cloudseat-server", "--port", str(self.port), "--no-deflate"]
        else:
            command = [sys.executable, str(SCRIPT), "--role", "bare-server", "--port", str(self.port)]
            if not self.deflate:
                command.append("--no-deflate")
        with open(self.data_dir / "server.log", "ab") as out:
            self.proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=self.data_dir)
        wait_http_ok(f"{self.http}/readyz", self.proc, 60.0)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        stop_process(self.proc, 30.0)
        if self._clean_up is not None:
            self._clean_up()
            self._clean_up = None

    def log_tail(self, lines: int = 20) -> str:
        path = self.data_dir / "server.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


class Profiler:
    """Optional py-spy recording of the server during a window (evidence for bottlenecks)."""

    def __init__(self, plan: Plan, server: Server, name: str, seconds: float) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        if plan.profile_dir is None or plan.py_spy is None:
            return
        plan.profile_dir.mkdir(parents=True, exist_ok=True)
        out = plan.profile_dir / f"{server.kind}-{'deflate' if server.deflate else 'plain'}-{name}"
        self.proc = subprocess.Popen(
            [plan.py_spy, "record", "--pid", str(server.pid), "--duration", str(max(1, int(seconds))),
             "--rate", "100", "--format", "raw", "--output", f"{out}.txt", "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def finish(self, early: bool = False) -> None:
        """Wait for the recording; `early` stops it now (py-spy writes what it has on SIGINT)."""
        if self.proc is not None:
            if early and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                stop_process(self.proc)


async def run_phase(plan: Plan, kind: str, deflate: bool, *, cpu: bool, relay: bool, storm: bool) -> PhaseResult:
    result = PhaseResult(server=kind, deflate=deflate)
    server = Server(kind, deflate, plan)
    workers: list[WorkerHandle] = []
    label = f"{kind} (deflate {'on' if deflate else 'off'})"
    try:
        log(f"{label}: starting server")
        server.start()
        n = plan.sockets
        count = max(1, math.ceil(n / SOCKETS_PER_WORKER))
        workers = list(await asyncio.gather(*(
            WorkerHandle.start(f"{server.ws}/ws/booth", plan.tokens_file, plan.workdir / f"worker-{kind}-{i}.log")
            for i in range(count))))
        # Warm up with a few sockets so one-off costs (thread pool, caches, imports) stay out of the per-socket figure.
        warm = max(20, n // 50)
        reply = await workers[0].ask(600.0, cmd="connect", start=0, stop=warm, timeout_s=300.0)
        if not reply["ok"]:
            raise RuntimeError(f"{label}: warm-up sockets did not connect: {reply}")
        await asyncio.sleep(plan.settle_s)
        rss0 = rss_bytes(server.pid)
        log(f"{label}: {warm} warm-up sockets, RSS {rss0 / 2**20:.1f} MiB; connecting {n - warm} more")
        began = time.monotonic()
        profiler = Profiler(plan, server, "connect", 600.0)
        bounds = [warm + (n - warm) * i // count for i in range(count + 1)]
        replies = await asyncio.gather(*(w.ask(1200.0, cmd="connect", start=bounds[i], stop=bounds[i + 1],
                                                timeout_s=900.0) for i, w in enumerate(workers)))
        result.connect_s = time.monotonic() - began
        profiler.finish(early=True)
        result.connected = reply["live"] + sum(r["live"] for r in replies)
        if result.connected < n:
            result.problems["connect"] = {"asked": n, "live": result.connected,
                                          "errors": [r["errors"] for r in replies]}
            log(f"{label}: only {result.connected}/{n} sockets connected: {result.problems['connect']}")
        await asyncio.sleep(plan.settle_s)  # let the sweep (every 5 s) and the allocator settle
        rss1 = rss_bytes(server.pid)
        result.rss_mb = rss1 / 2**20
        result.fds = open_fds(server.pid)
        result.mem_kb = (rss1 - rss0) / 1024 / max(1, result.connected - warm)
        log(f"{label}: {result.connected} sockets in {result.connect_s:.1f} s; RSS {result.rss_mb:.1f} MiB, "
            f"{result.mem_kb:.1f} KiB/socket, {result.fds} fds")

        if cpu:
            before = await asyncio.gather(*(w.ask(60.0, cmd="stats") for w in workers))
            profiler = Profiler(plan, server, "heartbeat", plan.cpu_window_s)
            t0, c0 = time.monotonic(), cpu_seconds(server.pid)
            await asyncio.sleep(plan.cpu_window_s)
            t1, c1 = time.monotonic(), cpu_seconds(server.pid)
            profiler.finish()
            after = await asyncio.gather(*(w.ask(60.0, cmd="stats") for w in workers))
            result.cpu_pct = (c1 - c0) / (t1 - t0) * 100
            result.pongs_per_s = (sum(a["pongs"] for a in after) - sum(b["pongs"] for b in before)) / (t1 - t0)
            closes = sum(a["unexpected_closes"] for a in after)
            open_now = sum(a["open"] for a in after)
            if closes or open_now < result.connected:
                result.problems["idle"] = {"unexpected_closes": closes, "open": open_now,
                                           "close_codes": [a["close_codes"] for a in after]}
            log(f"{label}: CPU {result.cpu_pct:.1f}% of a core over {t1 - t0:.0f} s, "
                f"{result.pongs_per_s:.0f} pongs/s, {open_now} open")

        if relay:
            profiler = Profiler(plan, server, "relay", 600.0)
            result.relay_ms = await measure_relay(plan, server)
            profiler.finish(early=True)
            log(f"{label}: relay median {median(result.relay_ms):.2f} ms, p99 {percentile(result.relay_ms, 99):.2f} ms")

        if storm:
            at = time.monotonic() + 1.0
            profiler = Profiler(plan, server, "storm", 600.0)
            cpu_before = cpu_seconds(server.pid)
            replies = await asyncio.gather(*(w.ask(1200.0, cmd="drop", at=at, timeout_s=600.0) for w in workers))
            profiler.finish(early=True)
            result.storm_live = sum(r["live"] for r in replies)
            result.storm_failed_attempts = sum(r["failed_attempts"] for r in replies)
            result.storm_s = max(r["last_welcome"] for r in replies) - at
            result.storm_server_cpu_s = cpu_seconds(server.pid) - cpu_before
            if not all(r["ok"] for r in replies):
                result.problems["storm"] = {"live": result.storm_live, "asked": sum(r["asked"] for r in replies),
                                            "errors": [r["errors"] for r in replies]}
            log(f"{label}: storm: {result.storm_live} welcomed again in {result.storm_s:.2f} s, "
                f"{result.storm_failed_attempts} failed attempts")
        if not server.alive():
            raise RuntimeError(f"{label}: server died:\n{server.log_tail()}")
        return result
    finally:
        for w in workers:
            await w.close()
        server.stop()


async def measure_relay(plan: Plan, server: Server) -> list[float]:
    """Booth `chat.send` -> clerk `chat.message` over a live call, one round at a time."""
    from signaling.protocol_client import ProtocolClient

    if server.kind == "cloudseat":
        cookie = await asyncio.to_thread(login, server.http, CLERK_USER, CLERK_PASSWORD)
        clerk = await ProtocolClient.connect(server.http, "seat", cookie=cookie)
        booth = await ProtocolClient.connect(server.http, "booth", token=plan.seeded.relay_token)
        try:
            await clerk.request("presence.set", status="available")
            ack = await booth.request("call.request", item_code=plan.seeded.item_code)
            offer = await clerk.wait_for("offer", timeout_s=30)
            await clerk.request("offer.accept", call_id=offer["call_id"])
            await booth.wait_for("call.connected", timeout_s=30)
            return await _chat_rounds(booth, clerk, ack["call_id"], plan.relay_rounds)
        finally:
            await booth.close()
            await clerk.close()
    clerk = await ProtocolClient.connect(server.http, "seat")
    booth = await ProtocolClient.connect(server.http, "booth", token=plan.seeded.relay_token)
    try:
        return await _chat_rounds(booth, clerk, "bare-call", plan.relay_rounds)
    finally:
        await booth.close()
        await clerk.close()


def login(base_url: str, username: str, password: str) -> str:
    """The clerk's session cookie from the login form (CSRF double-submit), without following the redirect.

    Like `signaling.protocol_client.login_cookie`, but the page behind the redirect does not
    matter here (and need not render while the consoles are being reworked).
    """
    import re

    import httpx

    with httpx.Client(base_url=base_url, follow_redirects=False, timeout=30) as client:
        page = client.get("/login").text
        match = re.search(r'name="csrf_token" value="([^"]+)"', page)
        if match is None:
            raise RuntimeError("the login page carries no CSRF token")
        client.post("/login", data={"username": username, "password": password, "csrf_token": match.group(1)})
        cookie = client.cookies.get("cloudseat_session")
    if not cookie:
        raise RuntimeError(f"login as {username} failed")
    return str(cookie)


async def _chat_rounds(booth: Any, clerk: Any, call_id: str, rounds: int) -> list[float]:
    samples = []
    for i in range(rounds + 5):
        text = f"bench message {i}"
        started = time.perf_counter()
        request = asyncio.create_task(booth.request("chat.send", call_id=call_id, text=text))
        await clerk.wait_for("chat.message", lambda m, text=text: m.get("text") == text, timeout_s=30)
        elapsed = time.perf_counter() - started
        await request
        if i >= 5:  # the first rounds warm caches and connections up
            samples.append(elapsed * 1000)
        await asyncio.sleep(0.08)  # stay well under the 20 messages/s flood limit
    return samples


# ====================================================================================
# Redis figures
# ====================================================================================

# The bare step: pop the first queued call and the longest-idle clerk, record the pairing.
BARE_OFFER_LUA = """
local call = redis.call('ZPOPMIN', KEYS[1])
if #call == 0 then return false end
local clerk = redis.call('ZPOPMIN', KEYS[2])
if #clerk == 0 then
  redis.call('ZADD', KEYS[1], call[2], call[1])
  return false
end
redis.call('HSET', KEYS[3], call[1], clerk[1])
return {call[1], clerk[1]}
"""

QUEUED_CALLS, CLERKS = 1000, 100


async def measure_redis_offer(url: str, rounds: int) -> dict[str, list[float]]:
    import redis.asyncio as aioredis

    from signaling.bus_redis import RedisBus
    from signaling.routing import ClerkState, QueuedCall

    prefix = f"bench:{uuid.uuid4().hex[:12]}:"
    bus = RedisBus(url, prefix=prefix, node_id="bench", offer_timeout_s=300.0)
    plain = aioredis.Redis.from_url(url, decode_responses=True)
    out: dict[str, list[float]] = {"offer": [], "route_once": [], "bare": []}
    try:
        now = time.time()
        clerks = [ClerkState(clerk_id=f"{i}", status="available", skills=frozenset({"s"}), regions=frozenset({"r"}),
                             idle_since=now - 1000 + i) for i in range(CLERKS)]
        calls = [QueuedCall(call_id=f"call-{i:04d}", booth_id=str(i), item_code="SB-001", skill="s", region="r",
                            cross_region_allowed=False, priority=0, enqueued_at=now - 2000 + i * 0.01)
                 for i in range(QUEUED_CALLS)]
        for clerk in clerks:
            await bus.set_clerk(clerk)
        for call in calls:
            await bus.enqueue(call)

        async def release(made: list[Any]) -> None:
            for offer in made:
                await bus.decline_offer(offer.call_id, offer.clerk_id, "bench", next_status="available")

        for _ in range(rounds):  # the atomic step alone (the caller has picked the pair)
            made = []
            for call, clerk in zip(calls, clerks):
                t0 = time.perf_counter()
                offer = await bus.offer(call.call_id, clerk.clerk_id)
                out["offer"].append((time.perf_counter() - t0) * 1000)
                if offer is None:
                    raise RuntimeError("RedisBus.offer refused a free pair")
                made.append(offer)
            await release(made)
        for _ in range(rounds):  # the whole routing step: snapshot, policy, atomic offer
            made = []
            for _ in range(CLERKS):
                t0 = time.perf_counter()
                offer = await bus.route_once()
                out["route_once"].append((time.perf_counter() - t0) * 1000)
                if offer is None:
                    raise RuntimeError("route_once found nothing to offer")
                made.append(offer)
            await release(made)

        keys = [prefix + "bare:queue", prefix + "bare:clerks", prefix + "bare:offers"]
        await plain.zadd(keys[0], {c.call_id: c.enqueued_at for c in calls})
        await plain.zadd(keys[1], {c.clerk_id: c.idle_since for c in clerks})
        script = plain.register_script(BARE_OFFER_LUA)
        enqueued_at = {c.call_id: c.enqueued_at for c in calls}
        for _ in range(rounds):
            pairs = []
            for _ in range(CLERKS):
                t0 = time.perf_counter()
                pair = await script(keys=keys, args=[])
                out["bare"].append((time.perf_counter() - t0) * 1000)
                if not pair:
                    raise RuntimeError("the bare script found nothing to pair")
                pairs.append(pair)
            async with plain.pipeline(transaction=True) as pipe:  # put them back, untimed
                pipe.zadd(keys[0], {c: enqueued_at[c] for c, _ in pairs})
                pipe.zadd(keys[1], {k: clerks[int(k)].idle_since for _, k in pairs})
                pipe.delete(keys[2])
                await pipe.execute()
        return out
    finally:
        await bus.close()
        await _delete_prefix(plain, prefix)
        await plain.aclose()


async def _delete_prefix(client: Any, prefix: str) -> None:
    keys = [k async for k in client.scan_iter(match=prefix + "*", count=1000)]
    for i in range(0, len(keys), 500):
        await client.delete(*keys[i:i + 500])


async def pubsub_echo(url: str, prefix: str, mode: str) -> None:
    """Child process: echo every message of `ping` onto `pong` (through RedisBus or bare redis-py)."""
    if mode == "bus":
        from signaling.bus_redis import RedisBus

        bus = RedisBus(url, prefix=prefix, node_id="echo")
        sub = await bus.subscribe("ping")
        print("ready", flush=True)
        async for message in sub:
            await bus.publish("pong", message)
        return
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url, decode_responses=True)
    pubsub = client.pubsub()
    await pubsub.subscribe(prefix + "bare:ping")
    listening = pubsub.listen()
    while (await anext(listening))["type"] != "subscribe":
        pass
    print("ready", flush=True)
    async for message in listening:
        if message["type"] == "message":
            await client.publish(prefix + "bare:pong", message["data"])


async def measure_pubsub(url: str, samples: int, workdir: Path) -> dict[str, list[float]]:
    import redis.asyncio as aioredis

    from signaling.bus_redis import RedisBus

    out: dict[str, list[float]] = {}
    for mode in ("bus", "bare"):
        prefix = f"bench:{uuid.uuid4().hex[:12]}:"
        with open(workdir / f"pubsub-{mode}.log", "ab") as err:
            echo = await asyncio.create_subprocess_exec(
                sys.executable, str(SCRIPT), "--role", "pubsub-echo", "--redis-url", url, "--prefix", prefix,
                "--mode", mode, stdout=asyncio.subprocess.PIPE, stderr=err)
        try:
            assert echo.stdout is not None
            if (await asyncio.wait_for(echo.stdout.readline(), 30)).strip() != b"ready":
                raise RuntimeError(f"pub/sub echo ({mode}) did not start")
            hops: list[float] = []
            if mode == "bus":
                bus = RedisBus(url, prefix=prefix, node_id="bench")
                sub = await bus.subscribe("pong")
                try:
                    for i in range(samples + 20):
                        t0 = time.perf_counter()
                        await bus.publish("ping", {"seq": i})
                        message = await asyncio.wait_for(anext(sub), 10)
                        rtt = time.perf_counter() - t0
                        if message.get("seq") != i:
                            raise RuntimeError(f"pub/sub echo out of order: {message}")
                        if i >= 20:
                            hops.append(rtt / 2 * 1000)
                        await asyncio.sleep(0.002)
                finally:
                    await bus.close()
            else:
                client = aioredis.Redis.from_url(url, decode_responses=True)
                pubsub = client.pubsub()
                await pubsub.subscribe(prefix + "bare:pong")
                listening = pubsub.listen()
                while (await anext(listening))["type"] != "subscribe":
                    pass
                try:
                    for i in range(samples + 20):
                        t0 = time.perf_counter()
                        await client.publish(prefix + "bare:ping", str(i))
                        message = await asyncio.wait_for(anext(listening), 10)
                        rtt = time.perf_counter() - t0
                        if message["data"] != str(i):
                            raise RuntimeError(f"bare echo out of order: {message}")
                        if i >= 20:
                            hops.append(rtt / 2 * 1000)
                        await asyncio.sleep(0.002)
                finally:
                    await pubsub.aclose()
                    await client.aclose()
            out[mode] = hops
        finally:
            if echo.returncode is None:
                echo.terminate()
                await echo.wait()
    return out


# ====================================================================================
# the orchestrator
# ====================================================================================


def versions(redis_url: str) -> dict[str, Any]:
    from importlib.metadata import version

    info: dict[str, Any] = {"python": platform.python_version()}
    for name in ("uvicorn", "websockets", "starlette", "redis", "sqlalchemy"):
        info[name if name != "redis" else "redis_py"] = version(name)
    try:
        import redis

        client = redis.Redis.from_url(redis_url, socket_timeout=2)
        info["redis_server"] = client.info("server")["redis_version"]
        client.close()
    except Exception as exc:  # noqa: BLE001 - the setup line just says so
        info["redis_server"] = f"unreachable: {exc}"
    return info


async def orchestrate(args: argparse.Namespace) -> int:
    only = set(args.only or METRICS)
    n = args.sockets or (1000 if args.quick else 10_000)
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if any(m in only for m in SOCKET_METRICS) and n + 500 > soft:
        raise SystemExit(f"--sockets {n} is too close to the open-file limit {soft}: the server holds one fd per socket")
    workers = max(1, math.ceil(n / SOCKETS_PER_WORKER))
    emit({"metric": "setup", **versions(args.redis_url), "sockets": n, "quick": args.quick, "cpus": os.cpu_count(),
          "fd_limit": soft, "client_processes": workers, "heartbeat_s": HEARTBEAT_S,
          "metrics": [m for m in METRICS if m in only],
          "stack": "postgresql+redis" if args.postgres_url else "sqlite+in-process"})
    workdir = Path(tempfile.mkdtemp(prefix="cloudseat-bench-"))
    log(f"work directory {workdir}")
    failed = False
    try:
        if any(m in only for m in SOCKET_METRICS):
            began = time.monotonic()
            seeded = seed_database(workdir / "seed", n)
            tokens_file = workdir / "tokens.json"
            tokens_file.write_text(json.dumps(seeded.tokens))
            log(f"seeded {n + 1} booths in {time.monotonic() - began:.1f} s")
            plan = Plan(sockets=n, quick=args.quick, cpu_window_s=args.cpu_window or (10.0 if args.quick else 30.0),
                        relay_rounds=100 if args.quick else 300, settle_s=3.0 if args.quick else 6.0,
                        workdir=workdir, seeded=seeded, tokens_file=tokens_file,
                        profile_dir=Path(args.profile_dir) if args.profile_dir else None, py_spy=args.py_spy,
                        stack=ClusterStack(args.postgres_url, args.redis_url) if args.postgres_url else None)
            await socket_figures(plan, only)
        if "redis_offer" in only:
            rounds = 3 if args.quick else 10
            log(f"redis_offer: {rounds} rounds of {CLERKS} offers over {QUEUED_CALLS} queued calls")
            r = await measure_redis_offer(args.redis_url, rounds)
            for name, metric in (("offer", "redis_offer"), ("route_once", "redis_route_once")):
                emit(figure(metric, median(r[name]), median(r["bare"]), "ms", p99=percentile(r[name], 99),
                            baseline_p99=percentile(r["bare"], 99), n=len(r[name]), queued_calls=QUEUED_CALLS,
                            clerks=CLERKS, step=f"RedisBus.{name}", baseline_step="bare Lua ZPOPMIN call + clerk, HSET",
                            met=median(r[name]) <= TARGET_RATIO * median(r["bare"])))
        if "pubsub_hop" in only:
            samples = 200 if args.quick else 1000
            log(f"pubsub_hop: {samples} round trips through a second process")
            r = await measure_pubsub(args.redis_url, samples, workdir)
            emit(figure("pubsub_hop", median(r["bus"]), median(r["bare"]), "ms", p99=percentile(r["bus"], 99),
                        baseline_p99=percentile(r["bare"], 99), n=len(r["bus"]), how="round trip / 2",
                        met=median(r["bus"]) <= TARGET_RATIO * median(r["bare"])))
    except Exception:
        logger.exception("harness failure")
        failed = True
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


async def socket_figures(plan: Plan, only: set[str]) -> None:
    n = plan.sockets
    cpu, relay, storm = "heartbeat_cpu" in only, "relay_latency" in only, "reconnect_storm" in only
    deflate_modes = [True, False] if "memory_per_socket" in only else [True]
    for deflate in deflate_modes:
        first = deflate  # relay, storm and CPU are measured on uvicorn's default (deflate on)
        ours = await run_phase(plan, "cloudseat", deflate, cpu=cpu, relay=relay and first, storm=storm and first)
        bare = await run_phase(plan, "bare", deflate, cpu=cpu, relay=relay and first, storm=storm and first)
        mode = "on" if deflate else "off"
        common = {"deflate": mode, "n": ours.connected, "baseline_n": bare.connected}
        problems = {k: v for k, v in (("problems", ours.problems), ("baseline_problems", bare.problems)) if v}
        if "memory_per_socket" in only:
            emit(figure("memory_per_socket", ours.mem_kb, bare.mem_kb, "KB", **common,
                        server_rss_mb=ours.rss_mb, baseline_rss_mb=bare.rss_mb, server_fds=ours.fds,
                        connect_s=ours.connect_s, baseline_connect_s=bare.connect_s,
                        met=ours.mem_kb <= TARGET_RATIO * bare.mem_kb, **problems))
        if cpu:
            emit(figure("heartbeat_cpu", ours.cpu_pct, bare.cpu_pct, "% of one core", **common,
                        window_s=plan.cpu_window_s, pongs_per_s=ours.pongs_per_s,
                        baseline_pongs_per_s=bare.pongs_per_s,
                        met=ours.cpu_pct <= TARGET_RATIO * bare.cpu_pct, **problems))
        if relay and first:
            emit(figure("relay_latency", median(ours.relay_ms), median(bare.relay_ms), "ms", **common,
                        p99=percentile(ours.relay_ms, 99), baseline_p99=percentile(bare.relay_ms, 99),
                        rounds=len(ours.relay_ms), open_sockets=n,
                        met=median(ours.relay_ms) <= TARGET_RATIO * median(bare.relay_ms)))
        if storm and first:
            emit(figure("reconnect_storm", ours.storm_s, bare.storm_s, "s", **common,
                        welcomed=ours.storm_live, baseline_welcomed=bare.storm_live,
                        failed_attempts=ours.storm_failed_attempts,
                        baseline_failed_attempts=bare.storm_failed_attempts, target_s=STORM_TARGET_S,
                        # what the server itself spent: the wall time also holds the clients' handshakes
                        server_cpu_s=round(ours.storm_server_cpu_s, 2),
                        baseline_server_cpu_s=round(bare.storm_server_cpu_s, 2),
                        met=ours.storm_live == n and ours.storm_s < STORM_TARGET_S * max(1, n / 10_000)
                        and ours.storm_s <= TARGET_RATIO * bare.storm_s, **problems))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 sockets and short windows (a few minutes)")
    parser.add_argument("--sockets", type=int, help="idle booth sockets (default 10,000; 1,000 with --quick)")
    parser.add_argument("--only", action="append", choices=METRICS, help="measure only this figure (repeatable)")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--postgres-url", help="run cloudseat on this PostgreSQL (a fresh schema per phase) and on "
                        "the Redis bus at --redis-url, as a cluster node does; the bare baseline is unchanged")
    parser.add_argument("--cpu-window", type=float, help="seconds of idle CPU measurement")
    parser.add_argument("--profile-dir", help="record py-spy profiles of the servers here")
    parser.add_argument("--py-spy", default=shutil.which("py-spy"), help="the py-spy executable")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, databases)")
    # internal: the same file plays the servers, the clients and the pub/sub echo
    parser.add_argument("--role", default="bench", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--no-deflate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--tokens", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == "bare-server":
        run_bare_server(args.port, not args.no_deflate)
        return 0
    if args.role == "cloudseat-server":
        run_cloudseat_server(args.port, not args.no_deflate)
        return 0
    if args.role == "worker":
        asyncio.run(worker_main(args.url, args.tokens))
        return 0
    if args.role == "pubsub-echo":
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(pubsub_echo(args.redis_url, args.prefix, args.mode))
        return 0
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    random.seed()
    return asyncio.run(orchestrate(args))


if __name__ == "__main__":
    raise SystemExit(main())
