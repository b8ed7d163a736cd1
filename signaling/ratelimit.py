"""A sliding-window counter for throttling (failed logins, floods, wrong codes)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class SlidingWindowLimiter:
    """Allow at most `limit` hits per `window_s` seconds for each key.

    In-process: with several nodes each keeps its own window, so the
    effective limit is per node; that is enough to make guessing slow.
    Keys idle for a whole window are forgotten, so memory stays bounded
    by the keys active within one window.
    """

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("limit must be >= 1 and window_s > 0")
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}

    def _window(self, key: str) -> deque[float]:
        now = self._clock()
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        return hits

    def blocked(self, key: str) -> bool:
        """True when `key` has used up its allowance in the current window."""
        hits = self._window(key)
        if not hits:
            self._hits.pop(key, None)
            return False
        return len(hits) >= self.limit

    def hit(self, key: str) -> None:
        """Count one hit for `key`."""
        self._window(key).append(self._clock())
        if len(self._hits) > 100_000:
            self._sweep()

    def reset(self, key: str) -> None:
        self._hits.pop(key, None)

    def _sweep(self) -> None:
        for key in list(self._hits):
            self.blocked(key)
