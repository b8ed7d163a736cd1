"""A real coturn `turnserver` for tests, started from the shipped deploy/coturn/turnserver.conf.

The shipped file is the template: only what a test machine must differ in is replaced (ports,
the listening address, the secret, the allowed peer, logs to stdout), so a broken shipped
option breaks the TURN tests.  Readiness is a STUN Binding answered on the port, not a sleep.
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import skip_or_fail

TURNSERVER = shutil.which("turnserver") or "/usr/bin/turnserver"
SHIPPED_CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "coturn" / "turnserver.conf"
# Options of the shipped file a test replaces (dropped from the copy, then set below).
OVERRIDDEN = {"listening-port", "listening-ip", "relay-ip", "external-ip", "min-port", "max-port",
              "static-auth-secret", "realm", "allowed-peer-ip", "syslog", "log-file", "pidfile", "userdb", "db"}
STUN_MAGIC = 0x2112A442


@dataclass(frozen=True)
class Coturn:
    """A running turnserver on 127.0.0.1."""

    host: str
    port: int
    secret: str
    realm: str
    config_path: Path
    log_path: Path

    @property
    def url(self) -> str:
        return f"turn:{self.host}:{self.port}?transport=udp"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def free_udp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def config_for_test(shipped: str, *, host: str, port: int, secret: str, realm: str, min_port: int,
                state_dir: Path) -> str:
    """The shipped config with this machine's ports, address, secret and log target."""
    kept = [line for line in shipped.splitlines()
            if line.split("=", 1)[0].strip() not in OVERRIDDEN]
    return "\n".join(kept + [
        "# --- test overrides (tests/coturn.py) ---",
        f"listening-ip={host}",
        f"relay-ip={host}",
        f"listening-port={port}",
        f"min-port={min_port}",
        f"max-port={min_port + 199}",
        f"static-auth-secret={secret}",
        f"realm={realm}",
        # Everything here is on loopback: the parties' relayed peers (the media hub, the other
        # party's relay address) are 127.0.0.1.  coturn refuses loopback peers by default and the
        # shipped file keeps that; only a test may allow them.
        "allow-loopback-peers",
        f"allowed-peer-ip={host}",
        f"pidfile={state_dir / 'turnserver.pid'}",
        f"userdb={state_dir / 'turndb'}",
        "log-file=stdout",
        "verbose",
        "",
    ])


def stun_binding_answered(host: str, port: int, timeout_s: float = 0.2) -> bool:
    """Whether a STUN Binding request to host:port gets a Binding success response."""
    txid = secrets.token_bytes(12)
    request = struct.pack("!HHI", 0x0001, 0, STUN_MAGIC) + txid
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout_s)
        try:
            s.sendto(request, (host, port))
            data, _ = s.recvfrom(2048)
        except OSError:
            return False
    return len(data) >= 20 and struct.unpack("!H", data[:2])[0] == 0x0101 and data[8:20] == txid


def turnserver_available() -> bool:
    return os.access(TURNSERVER, os.X_OK)


@contextmanager
def running_coturn(tmp_path: Path, *, host: str = "127.0.0.1", start_timeout_s: float = 15.0) -> Iterator[Coturn]:
    """Start turnserver from the shipped config; skip (fail in CI) where it is not installed."""
    if not turnserver_available():
        skip_or_fail(f"coturn's turnserver not installed at {TURNSERVER} (apt-get install coturn)")
    state = tmp_path / "coturn"
    state.mkdir(parents=True, exist_ok=True)
    port = free_udp_port(host)
    secret = secrets.token_hex(24)
    min_port = random.randrange(20_000, 30_000, 200)  # a block of its own, clear of the ephemeral range
    config = config_for_test(SHIPPED_CONFIG.read_text(), host=host, port=port, secret=secret,
                         realm="cloudseat.test", min_port=min_port, state_dir=state)
    config_path = state / "turnserver.conf"
    config_path.write_text(config)
    log_path = state / "turnserver.log"
    log = log_path.open("wb")
    proc = subprocess.Popen([TURNSERVER, "-c", str(config_path)], stdout=log, stderr=subprocess.STDOUT)
    server = Coturn(host, port, secret, "cloudseat.test", config_path, log_path)
    try:
        deadline = time.monotonic() + start_timeout_s
        while not stun_binding_answered(host, port):
            if proc.poll() is not None:
                raise RuntimeError(f"turnserver exited with {proc.returncode}:\n{server.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"turnserver did not answer STUN within {start_timeout_s} s:\n{server.log()[-3000:]}")
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
