"""Coalesce concurrent lookups by key into one blocking query per batch.

A reconnect storm (every booth of a district coming back after a network blip) asks the same
questions thousands of times at once: which booth holds this token, which call is open for this
booth.  Answered one by one, each costs a thread-pool hop, a pooled connection and an ORM
round trip, and the threads then fight over the GIL; the server fell behind its own accept queue.
A `BatchLoader` keeps one query in flight: keys asked while it runs wait for the next batch, which
asks for all of them with one `IN (...)`.  While it is busy that way (keys were waiting when a
query ended) it lingers a few milliseconds before the next query so more keys join it: a storm's
lookups then come in batches of 15-20 rather than 8-9, half the queries.  When the server is
quiet a lookup is still one hop, with no linger.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

from starlette.concurrency import run_in_threadpool

logger = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

DEFAULT_LINGER_S = 0.01  # at most this much latency added to a lookup, and only under load
DEFAULT_MAX_BATCH = 500  # keeps a batch's IN list well under SQLite's and PostgreSQL's parameter limits


class BatchLoader(Generic[K, V]):
    """`await loader.get(key)` returns `fetch([...keys])[key]`, or None when the batch lacks it.

    `fetch` is blocking (database reads) and runs in the thread pool; it must answer for any
    subset of keys.  If it raises, every lookup of that batch raises the same error, and the
    next batch is tried afresh.
    """

    def __init__(self, fetch: Callable[[list[K]], dict[K, V]], *, max_batch: int = DEFAULT_MAX_BATCH,
                 linger_s: float = DEFAULT_LINGER_S) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._fetch = fetch
        self._max_batch = max_batch
        self._linger_s = linger_s
        self._waiting: dict[K, list[asyncio.Future[V | None]]] = {}
        self._runner: asyncio.Task[None] | None = None
        self.batches = 0  # how many queries ran (for tests and logs)

    async def get(self, key: K) -> V | None:
        future: asyncio.Future[V | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(future)
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        busy = False  # True from the second batch of this drain on: keys came while a query ran
        while self._waiting:
            lingering = busy and len(self._waiting) < self._max_batch
            # Either way, lookups started in this same loop turn join the batch.
            await asyncio.sleep(self._linger_s if lingering else 0)
            busy = True
            keys = list(_take(self._waiting, self._max_batch))
            futures = {key: self._waiting.pop(key) for key in keys}
            try:
                found = await run_in_threadpool(self._fetch, keys)
            except Exception as exc:  # noqa: BLE001 - handed to every caller of this batch
                logger.warning("batched lookup of %d keys failed: %s", len(keys), exc)
                _settle(futures, error=exc)
                continue
            except BaseException as exc:  # cancelled: nobody will answer these callers, tell them
                _settle(futures, error=asyncio.CancelledError())
                raise exc
            self.batches += 1
            _settle(futures, found=found)


def _take(waiting: dict[K, object], n: int) -> Iterable[K]:
    for i, key in enumerate(waiting):
        if i >= n:
            return
        yield key


def _settle(futures: dict[K, list[asyncio.Future[V | None]]], *, found: dict[K, V] | None = None,
            error: BaseException | None = None) -> None:
    for key, waiters in futures.items():
        for future in waiters:
            if future.done():
                continue  # its caller was cancelled
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result((found or {}).get(key))
