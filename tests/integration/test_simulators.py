"""`cloudseat booth --simulate` and `cloudseat seat --simulate` as real processes against a live server."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.signaling_fixtures import PASSWORD, world


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSEAT_")}


def test_simulated_booth_and_clerk_complete_their_calls(app_settings):
    with world(app_settings.with_overrides(heartbeat_s=2.0)) as w:
        seat = subprocess.Popen(
            [sys.executable, "-m", "cloudseat", "seat", "--simulate", "--server", w.url, "--user", "c1",
             "--password", PASSWORD, "--answer-after", "0.05", "--handle", "0.1", "--calls", "3"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
        booth = subprocess.run(
            [sys.executable, "-m", "cloudseat", "booth", "--simulate", "--server", w.url,
             "--token", w.tokens["b1"], "--item", w.item_by_skill["social_insurance"], "--calls", "3"],
            capture_output=True, text=True, env=_env(), timeout=120)
        seat_out, seat_err = seat.communicate(timeout=60)
    assert booth.returncode == 0, booth.stderr
    summary = json.loads(booth.stdout.strip().splitlines()[-1])
    assert (summary["calls"], summary["answered"], summary["abandoned"], summary["failed"]) == (3, 3, 0, 0)
    assert len(summary["wait_s"]) == 3 and all(w >= 0 for w in summary["wait_s"])
    assert seat.returncode == 0, seat_err
    assert json.loads(seat_out.strip().splitlines()[-1])["answered"] == 3


def test_booth_simulator_exits_non_zero_when_a_call_goes_unanswered(app_settings):
    with world(app_settings) as w:  # no clerk signs in
        booth = subprocess.run(
            [sys.executable, "-m", "cloudseat", "booth", "--simulate", "--server", w.url, "--token", w.tokens["b1"],
             "--item", w.item_by_skill["social_insurance"], "--calls", "1", "--answer-timeout", "1"],
            capture_output=True, text=True, env=_env(), timeout=60)
    assert booth.returncode == 1
    summary = json.loads(booth.stdout.strip().splitlines()[-1])
    assert summary["calls"] == 1 and summary["answered"] == 0
