"""A node id is one live process on a Redis: a duplicate refuses to start with one line; a restart after a
crash comes back once the dead process's claim lapses."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from signaling.node_claim import CLAIM_TTL_S
from tests.cluster import Node, cluster, free_port, seed_cluster_world

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


def twin_of(node: Node, tmp_path: Path) -> Node:
    """A second process with the same node id (and so the same Redis claim), on its own port and data dir."""
    port = free_port()
    data_dir = tmp_path / "twin"
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {**node.env, "CLOUDSEAT_DATA_DIR": str(data_dir), "CLOUDSEAT_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}
    return replace(node, port=port, env=env, proc=None)


def test_a_second_node_with_the_same_id_refuses_to_start_with_one_line(tmp_path, postgres_url, redis_url):
    seed_cluster_world(tmp_path, postgres_url)
    with cluster(tmp_path, postgres_url, redis_url, size=1) as c:
        twin = twin_of(c[0], tmp_path)
        started = time.monotonic()
        refused = subprocess.run([sys.executable, "-m", "cloudseat", "serve", "--port", str(twin.port)],
                                 env=twin.env, capture_output=True, text=True, timeout=CLAIM_TTL_S + 30)
        waited_s = time.monotonic() - started
        assert refused.returncode == 2
        lines = [line for line in refused.stderr.splitlines() if line.strip()]
        assert any("CLOUDSEAT_NODE_ID" in line and "node-0" in line for line in lines), lines
        assert "Traceback" not in refused.stderr
        assert c[0].proc is not None and c[0].proc.poll() is None  # the first node is untouched

        # A clean stop releases the claim: the same id starts again at once.
        c[0].kill(signal.SIGTERM)
        started = time.monotonic()
        twin.start()
        clean_restart_s = time.monotonic() - started
        twin.kill(signal.SIGKILL)

        # A crash leaves the claim until it lapses; a restart waits for that, then comes up.
        again = twin_of(c[0], tmp_path / "again")
        started = time.monotonic()
        again.start(timeout_s=CLAIM_TTL_S + 30)
        crash_restart_s = time.monotonic() - started
        again.kill(signal.SIGTERM)
    print(json.dumps({"figure": "node_id_claim", "duplicate_refused_after_s": round(waited_s, 1),
                      "restart_after_clean_stop_s": round(clean_restart_s, 1),
                      "restart_after_kill9_s": round(crash_restart_s, 1)}))
    assert crash_restart_s <= CLAIM_TTL_S + 15
