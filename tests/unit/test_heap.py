"""The serving process's collector settings (in a child process: they are process-wide)."""

import json
import subprocess
import sys

from cloudseat.heap import MIDDLE_THRESHOLD, OLD_THRESHOLD, YOUNG_THRESHOLD

PROBE = """
import gc, json
import cloudseat.app  # what `cloudseat serve` has imported when it settles
before = gc.get_freeze_count()
from cloudseat.heap import settle_for_serving
settle_for_serving()
print(json.dumps({"before": before, "frozen": gc.get_freeze_count(), "threshold": gc.get_threshold()}))
"""


def test_settling_freezes_the_imported_code_and_makes_full_collections_rare() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["before"] == 0
    assert found["frozen"] > 50_000  # the app, SQLAlchemy, aiortc, PyAV ...
    assert found["threshold"] == [YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD]
    assert OLD_THRESHOLD > 10  # rarer than CPython's default
