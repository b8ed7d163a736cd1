"""`CLOUDSEAT_LOG_FORMAT=json`: a real `cloudseat serve` writes only JSON lines, uvicorn's included."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import httpx

from tests.cluster import free_port, wait_ready

REQUIRED = {"time", "level", "logger", "message", "node"}


def test_serve_with_json_logs_writes_one_object_per_stderr_line(tmp_path: Path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSEAT_")}
    env.update(CLOUDSEAT_DATA_DIR=str(tmp_path / "var"), CLOUDSEAT_LOG_FORMAT="json", CLOUDSEAT_NODE_ID="node-json",
               CLOUDSEAT_PUBLIC_BASE_URL=url)
    stderr_path = tmp_path / "stderr.log"
    with open(stderr_path, "w") as stderr:  # a file, not a pipe: the child never blocks on a full pipe
        proc = subprocess.Popen([sys.executable, "-m", "cloudseat", "serve", "--port", str(port)],
                                env=env, stdout=subprocess.DEVNULL, stderr=stderr, text=True)
    try:
        wait_ready(url, proc)
        assert httpx.get(f"{url}/healthz").status_code == 200
        assert httpx.get(f"{url}/no-such-page").status_code == 404
        assert httpx.get(f"{url}/metrics").status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after a clean shutdown
    lines = stderr_path.read_text(encoding="utf-8").splitlines()
    assert lines, "the server logged nothing"
    entries = []
    for line in lines:
        entry = json.loads(line)  # fails on any line that is not one JSON object
        assert isinstance(entry, dict) and REQUIRED <= set(entry), line
        assert entry["node"] == "node-json"
        assert datetime.fromisoformat(entry["time"]).utcoffset() is not None
        entries.append(entry)
    by_logger = {e["logger"] for e in entries}
    assert {"uvicorn.error", "uvicorn.access", "cloudseat.app"} <= by_logger, by_logger
    assert any(e["logger"] == "cloudseat.app" and "ready" in e["message"] for e in entries)
    assert any(e["logger"] == "uvicorn.error" and "startup complete" in e["message"] for e in entries)
    assert any(e["logger"] == "uvicorn.error" and "Shutting down" in e["message"] for e in entries)
    access = [e for e in entries if e["logger"] == "uvicorn.access"]
    assert {"method": "GET", "path": "/healthz", "status": 200} in [
        {k: e.get(k) for k in ("method", "path", "status")} for e in access]
    assert any(e.get("path") == "/no-such-page" and e.get("status") == 404 for e in access)
