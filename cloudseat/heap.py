"""Garbage-collector settings for a serving process (`cloudseat serve`).

CPython 3.11's cycle collector is not incremental: a full (generation 2)
collection walks every tracked object while the event loop waits, and with
10,000 booth sockets open that is well over a million objects.  Measured in
`bench/signaling.py`'s reconnect storm (connect phase and storm, one server),
with the stock thresholds there were 27 collections of over 50 ms, 13 s in
all, the longest 1.4 s -- each one a pause of every socket and of the live
calls' media in this process.  With the settings below: 4 such collections,
0.43 s in all.

Two changes, once the app is imported:
- the ~100k objects of imported code are frozen: never walked again (they
  live as long as the process anyway);
- a full collection is considered after 1,000 young-generation passes instead
  of 10.  Young collections still run as often as before, so short-lived
  cycles (tasks, exceptions, frames) go as quickly as ever; only garbage that
  survived two young passes -- a closed socket's cycles -- waits longer: for
  about 7 million net allocations (700 x 10 x 1,000), and, by CPython's own
  rule, until the old generation's newcomers are a quarter of it.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 700  # CPython's default: allocations between generation-0 passes
MIDDLE_THRESHOLD = 10  # CPython's default: generation-0 passes between generation-1 passes
OLD_THRESHOLD = 1000  # generation-1 passes between full collections (CPython's default: 10)


def settle_for_serving() -> None:
    """Freeze what is loaded so far out of the collector's walks; make full collections rare."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)
