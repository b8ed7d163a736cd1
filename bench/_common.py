"""Small helpers shared by the bench scripts: processes, /proc readings, statistics, output.

Everything here reads Linux's /proc; the benches run on the project's Linux machines only.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    """An unused loopback TCP port (the kernel's pick)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (all threads)."""
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE_SIZE


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all threads, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # after the command name: state is field 3, utime field 14, stime field 15 (1-based, man proc)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return math.nan
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def figure(metric: str, value: float, baseline: float, unit: str, **extra: Any) -> dict[str, Any]:
    """One result line: the figure, its bare baseline from the same run, and their ratio."""
    ratio = value / baseline if baseline else math.inf
    return {"metric": metric, "value": _round(value), "baseline": _round(baseline), "ratio": _round(ratio),
            "unit": unit, **{k: _round(v) if isinstance(v, float) else v for k, v in extra.items()}}


def _round(x: float) -> float | None:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return round(x, 4) if abs(x) < 100 else round(x, 1)


def emit(line: dict[str, Any]) -> None:
    """Print one JSON line on stdout, flushed (the only thing the benches print there).

    Each line carries the machine's 1-minute load average when it was printed: other work on
    the machine skews figures, and the reader should see it.
    """
    print(json.dumps({**line, "loadavg_1m": round(os.getloadavg()[0], 2)}, ensure_ascii=False), flush=True)


def wait_http_ok(url: str, proc: subprocess.Popen[Any] | None, timeout_s: float = 60.0) -> None:
    """Poll `url` until it answers 200; raise if the process exits first or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{url}: server exited with {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)  # polling a starting process: there is no event to wait on
    raise RuntimeError(f"{url} not ready after {timeout_s} s")


def stop_process(proc: subprocess.Popen[Any] | None, timeout_s: float = 15.0) -> None:
    """SIGTERM, then SIGKILL if it lingers; only the process we started, by its own handle."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout_s)


def log(message: str) -> None:
    """Progress on stderr (stdout carries only the JSON lines)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
