"""Fault figures: run the fault tests, collect the figure each prints, and print medians.

The faults themselves (kill -9 mid-call, SIGTERM under load, Redis restarted under calls on two
nodes, a node killed, a booth's network gone for 10 s, a duplicate node id) are staged by the
tests in tests/integration and tests/browser, against real processes, Redis and PostgreSQL; each
prints one `{"figure": ...}` JSON line. This script runs them `--reps` times and prints one JSON
line per figure: the median of every numeric field over the runs, the guarantee it is held to
(`limit`, from docs/guarantees.md) and whether every run met it (`met`).

    .venv/bin/python bench/faults.py            # 3 runs of each, ~6 minutes
    .venv/bin/python bench/faults.py --reps 1

Exits non-zero only when a test run itself failed (a broken guarantee fails its test).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

FAULT_TESTS = [
    "tests/integration/test_call_media_crash.py::test_a_killed_server_recovers_the_call_recordings_on_restart",
    "tests/integration/test_shutdown_flush.py",
    "tests/integration/test_faults_cluster.py",
    "tests/integration/test_node_claim.py",
    "tests/browser/test_call_browser_media.py::test_kiosk_network_drop_resumes_the_call_on_a_new_peer_connection",
]

# figure -> (the guarantee in words, a check of one run's figure)
LIMITS: dict[str, tuple[str, Callable[[dict[str, Any]], bool]]] = {
    "kill -9 mid-call": ("every track plays >= 12 of the 15 s before the kill",
                         lambda f: min(f["recovered_play_s"].values()) >= 12.0),
    "SIGTERM under chat load": ("no acknowledged event lost", lambda f: f["lost"] == 0),
    "Redis restart, 2 nodes": ("each queued call offered exactly once",
                               lambda f: all(n == 1 for n in f["offers_per_queued_call"])),
    "node killed, booth back on the other node": ("back in the same call within 10 s",
                                                  lambda f: f["back_in_call_s"] <= 10.0),
    "booth network drop mid-call": ("same call, pictures back after a 10 s outage",
                                    lambda f: f["dropped_s"] >= 10.0),
    "node_id_claim": ("a duplicate node id refused; a restart after kill -9 within the claim TTL + 15 s",
                      lambda f: f["restart_after_kill9_s"] <= 25.0),
}


def run_once(tests: list[str]) -> tuple[list[dict[str, Any]], int]:
    """One pytest run of the fault tests; the figures they printed and pytest's exit code."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", *tests],
                          cwd=ROOT, capture_output=True, text=True)
    figures = []
    for line in proc.stdout.splitlines():
        start = line.find('{"figure"')
        if start >= 0:
            figures.append(json.loads(line[start:]))
    if proc.returncode != 0:
        print(proc.stdout[-3000:], file=sys.stderr)
    return figures, proc.returncode


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each numeric field (and of each numeric field of a nested dict) over the runs."""
    out: dict[str, Any] = {}
    for key, first in runs[0].items():
        if key == "figure":
            continue
        if isinstance(first, bool) or not isinstance(first, (int, float, dict)):
            out[key] = first
        elif isinstance(first, dict):
            out[key] = {k: statistics.median(r[key][k] for r in runs) for k in first}
        else:
            out[key] = statistics.median(r[key] for r in runs)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    by_figure: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    failed = 0
    for rep in range(args.reps):
        print(f"run {rep + 1}/{args.reps}", file=sys.stderr)
        figures, code = run_once(FAULT_TESTS)
        failed += code != 0
        for figure in figures:  # a figure printed per database is kept apart per database
            by_figure[(figure["figure"], figure.get("database", ""))].append(figure)
    for (name, _), runs in by_figure.items():
        limit, check = LIMITS.get(name, ("", lambda f: True))
        print(json.dumps({"figure": name, "n": len(runs), **medians(runs), "limit": limit,
                          "met": all(check(r) for r in runs)}, ensure_ascii=False))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
