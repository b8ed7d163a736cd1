"""`cloudseat serve --demo` as a real process: seeds once, prints logins, serves, is ready."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from signaling.protocol_client import ProtocolClient
from tests.web_clients import login


async def _booth_welcome(url: str, token: str) -> dict:
    client = await ProtocolClient.connect(url, "booth", token=token, origin=url)
    try:
        return client.welcome
    finally:
        await client.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(url: str, proc: subprocess.Popen, timeout_s: float = 30.0) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else "server exited"
        try:
            return httpx.get(f"{url}/readyz", timeout=1)
        except httpx.TransportError:
            time.sleep(0.1)  # polling a starting process: there is no event to wait on
    raise AssertionError("server did not answer /readyz")


def _start(data_dir: Path, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSEAT_")}
    env.update(CLOUDSEAT_DATA_DIR=str(data_dir), CLOUDSEAT_PUBLIC_BASE_URL=f"http://127.0.0.1:{port}")
    return subprocess.Popen([sys.executable, "-m", "cloudseat", "serve", "--demo", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_demo_serves_and_writes_its_logins(tmp_path):
    data_dir = tmp_path / "var"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _start(data_dir, port)
    try:
        assert _wait_ready(url, proc).json() == {"status": "ready", "checks": {"database": "ok"}}
        demo = json.loads((data_dir / "demo.json").read_text(encoding="utf-8"))
        assert {b["name"] for b in demo["booths"]} and len(demo["booths"]) == 2
        assert {u["role"] for u in demo["users"]} == {"clerk", "supervisor", "admin"}
        assert len(demo["items"]) >= 30
        first_clerk = next(u for u in demo["users"] if u["role"] == "clerk")
        client = login(url, first_clerk["username"], first_clerk["password"])
        me = client.get("/api/me").json()
        client.close()
        assert demo["items"][0]["skill"] in me["skills"]
        booth = demo["booths"][0]
        booth_me = httpx.get(f"{url}/api/me", headers={"authorization": f"Bearer {booth['token']}"}).json()
        assert booth_me["region"] == booth["region"]
        # The demo is open at any hour (this test runs day and night): the booth's welcome says open.
        welcome = asyncio.run(_booth_welcome(url, booth["token"]))
        assert welcome["service"]["open"] is True and welcome["service"]["next_opening"] is None
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert first_clerk["password"] in out  # the logins were printed for the newcomer

    # a second start keeps the data and prints the same logins
    proc = _start(data_dir, port)
    try:
        _wait_ready(url, proc)
    finally:
        proc.terminate()
        out2, _ = proc.communicate(timeout=20)
    assert first_clerk["password"] in out2
    assert json.loads((data_dir / "demo.json").read_text(encoding="utf-8")) == demo
