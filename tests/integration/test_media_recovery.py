"""A recording process killed with SIGKILL leaves files that `recover_unclosed` finishes.

The recorder runs in a subprocess writing a camera and a tone in real time;
the test kills it 4 s in, recovers the files, and checks they play up to
close to the kill (the muxer flushes every packet and closes a cluster every
second, so about a second is lost), are marked recovered, and carry their
SHA-256 into the manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest

from media.recorder import PARTIAL_SUFFIX, recover_unclosed, write_manifest
from media.synthetic import read_burnt_in

ROOT = Path(__file__).resolve().parents[2]
KILL_AFTER = 4.0  # seconds of media written before the kill
MAX_LOSS = 3.0


def run_and_kill(directory: Path) -> float:
    """Start the recording subprocess, SIGKILL it after KILL_AFTER s; the media time then."""
    process = subprocess.Popen(
        [sys.executable, "-c", f"from tests.media_helpers import record_until_killed; record_until_killed({str(directory)!r})"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    written = 0.0
    deadline = time.monotonic() + 60
    try:
        assert process.stdout is not None
        for line in process.stdout:
            written = float(line)
            if written >= KILL_AFTER or time.monotonic() > deadline:
                break
        os.kill(process.pid, signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        assert process.stderr is not None and process.stdout is not None
        errors = process.stderr.read()
        process.stdout.close()
        process.stderr.close()
    assert written >= KILL_AFTER, f"recorder process stopped early: {errors}"
    assert process.returncode == -signal.SIGKILL
    return written


def test_sigkilled_recording_is_recovered(tmp_path: Path) -> None:
    killed_at = run_and_kill(tmp_path)
    assert len(list(tmp_path.glob("*" + PARTIAL_SUFFIX))) == 2

    recovered = recover_unclosed(tmp_path)

    assert sorted(f.path.name for f in recovered) == ["booth-audio0.webm", "booth-video0.webm"]
    for result in recovered:
        assert result.recovered and not result.closed_cleanly
        end = result.start_s + result.duration_s
        assert killed_at - MAX_LOSS <= end <= killed_at + 0.1, (result.path.name, end, killed_at)
        with av.open(str(result.path)) as container:
            stream = container.streams[0]
            assert container.duration is not None  # the remux wrote a duration
            frames = list(container.decode(stream))
        assert len(frames) == result.frames
        if result.kind == "video":
            counters = [read_burnt_in(frame)[0] for frame in frames]
            assert counters == list(range(len(counters)))  # plays from the start, nothing skipped
    assert not list(tmp_path.glob("*" + PARTIAL_SUFFIX))

    manifest = json.loads(write_manifest(tmp_path / "manifest.json", recovered, room="crashed").read_text())
    for entry in manifest["files"]:
        assert entry["recovered"] is True and entry["closed_cleanly"] is False
        assert entry["sha256"] == hashlib.sha256((tmp_path / entry["path"]).read_bytes()).hexdigest()
    print(f"killed at {killed_at:.2f} s; recovered up to", {f.path.name: round(f.start_s + f.duration_s, 2) for f in recovered})


@pytest.mark.parametrize("junk", [b"", b"not a matroska file"])
def test_unrecoverable_leftovers_are_skipped(tmp_path: Path, junk: bytes) -> None:
    (tmp_path / "x.webm").write_bytes(junk)
    (tmp_path / ("x.webm" + PARTIAL_SUFFIX)).write_text(json.dumps({"file": "x.webm", "codec": "VP8", "kind": "video"}))
    assert recover_unclosed(tmp_path) == []
