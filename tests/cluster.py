"""Several real `cloudseat serve` processes sharing one Redis and one PostgreSQL database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from cloudseat.settings import Settings
from tests.signaling_fixtures import seed_world


def seed_cluster_world(tmp_path: Path, database_url: str, **seed: Any) -> dict[str, Any]:
    """`seed_world` into the cluster's shared database (the settings' own data dir is a throwaway)."""
    return seed_world(Settings(data_dir=tmp_path / "seed", database_url=database_url), **seed)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Node:
    node_id: str
    port: int
    env: dict[str, str]
    proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> None:
        with open(Path(self.env["CLOUDSEAT_DATA_DIR"]) / "server.log", "a") as log:  # the child keeps its copy
            self.proc = subprocess.Popen([sys.executable, "-m", "cloudseat", "serve", "--port", str(self.port)],
                                         env=self.env, stdout=log, stderr=subprocess.STDOUT, text=True)
        wait_ready(self.url, self.proc, timeout_s)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(20)

    def log(self) -> str:
        return (Path(self.env["CLOUDSEAT_DATA_DIR"]) / "server.log").read_text(errors="replace")


def wait_ready(url: str, proc: subprocess.Popen[str] | None = None, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"node exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)  # polling a starting process: there is no event to wait on
    raise RuntimeError(f"{url} not ready after {timeout_s} s")


@dataclass
class Cluster:
    nodes: list[Node]
    redis_url: str
    prefix: str
    database_url: str
    env: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, index: int) -> Node:
        return self.nodes[index]


def base_env(database_url: str, redis_url: str, prefix: str, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSEAT_")}
    env.update({
        "CLOUDSEAT_DATABASE_URL": database_url,
        "CLOUDSEAT_REDIS_URL": redis_url,
        "CLOUDSEAT_REDIS_PREFIX": prefix,
        "CLOUDSEAT_SECRET_KEY": "cluster-test-secret-key-" + "x" * 16,
        "CLOUDSEAT_LOG_LEVEL": "WARNING",
        **overrides,
    })
    return env


@contextmanager
def cluster(tmp_path: Path, database_url: str, redis_url: str, size: int = 2, **overrides: str) -> Iterator[Cluster]:
    """Start `size` nodes; every node allows the others' origins; stop them all afterwards."""
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    ports = [free_port() for _ in range(size)]
    origins = ",".join(f"http://127.0.0.1:{p}" for p in ports)
    nodes = []
    for index, port in enumerate(ports):
        data_dir = tmp_path / f"node{index}"
        data_dir.mkdir(parents=True, exist_ok=True)
        env = base_env(database_url, redis_url, prefix, CLOUDSEAT_NODE_ID=f"node-{index}",
                       CLOUDSEAT_DATA_DIR=str(data_dir), CLOUDSEAT_PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
                       CLOUDSEAT_ALLOWED_ORIGINS=origins, **overrides)
        nodes.append(Node(f"node-{index}", port, env))
    try:
        for node in nodes:
            node.start()
        yield Cluster(nodes, redis_url, prefix, database_url)
    finally:
        for node in nodes:
            node.kill(signal.SIGTERM)
        _delete_keys(redis_url, prefix)


def _delete_keys(redis_url: str, prefix: str) -> None:
    import redis

    try:
        client = redis.Redis.from_url(redis_url, socket_timeout=2)
        keys = list(client.scan_iter(f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()
    except redis.RedisError:
        pass


@contextmanager
def private_redis(tmp_path: Path) -> Iterator[tuple[str, "RedisServer"]]:
    """A redis-server of this test's own, so the test may stop and restart it."""
    server = RedisServer(free_port(), tmp_path / "redis")
    server.start()
    try:
        yield f"redis://127.0.0.1:{server.port}/0", server
    finally:
        server.stop()


@dataclass
class RedisServer:
    port: int
    directory: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--dir", str(self.directory)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)  # polling a starting process
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
