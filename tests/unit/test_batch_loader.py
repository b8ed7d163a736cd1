"""BatchLoader: concurrent lookups share one query; a lookup never sees a query older than itself."""

from __future__ import annotations

import asyncio
import threading

import pytest

from signaling.batch_loader import BatchLoader


class Table:
    """A blocking fetch over a dict that records each batch and can be held mid-query."""

    def __init__(self, rows: dict[int, str]) -> None:
        self.rows = rows
        self.batches: list[list[int]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.fail_next = False

    def fetch(self, keys: list[int]) -> dict[int, str]:
        self.batches.append(sorted(keys))
        snapshot = {k: self.rows[k] for k in keys if k in self.rows}  # what the query "reads" at its start
        self.entered.set()
        self.release.wait(10)
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("database away")
        return snapshot


async def test_concurrent_lookups_share_one_query_and_each_gets_its_own_row() -> None:
    table = Table({i: f"booth-{i}" for i in range(1000)})
    loader = BatchLoader(table.fetch)
    keys = [i % 700 for i in range(1000)] + [5000, 5001]  # repeats, and two keys with no row
    results = await asyncio.gather(*(loader.get(k) for k in keys))
    assert results == [table.rows.get(k) for k in keys]
    assert len(table.batches) == 2, "700 distinct keys and a batch limit of 500 make two queries"
    assert sorted(k for batch in table.batches for k in batch) == sorted(set(keys))


async def test_a_lookup_made_while_a_query_runs_waits_for_the_next_query() -> None:
    table = Table({1: "old"})
    loader = BatchLoader(table.fetch)
    table.release.clear()
    first = asyncio.create_task(loader.get(1))
    await asyncio.to_thread(table.entered.wait, 10)  # the first query has read its rows
    table.rows[1] = "new"  # a write commits while that query is still running
    second = asyncio.create_task(loader.get(1))
    table.release.set()
    assert await first == "old"
    assert await second == "new", "a lookup started after the write was answered by the older query"
    assert table.batches == [[1], [1]]


async def test_a_failed_query_fails_its_callers_only_and_the_next_one_runs() -> None:
    table = Table({1: "a", 2: "b"})
    loader = BatchLoader(table.fetch)
    table.fail_next = True
    failed = await asyncio.gather(loader.get(1), loader.get(2), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in failed), failed
    assert await loader.get(2) == "b"
    assert loader.batches == 1


async def test_a_cancelled_caller_does_not_disturb_the_others() -> None:
    table = Table({1: "a", 2: "b"})
    loader = BatchLoader(table.fetch)
    table.release.clear()
    one, two = asyncio.create_task(loader.get(1)), asyncio.create_task(loader.get(2))
    await asyncio.to_thread(table.entered.wait, 10)
    one.cancel()
    table.release.set()
    assert await two == "b"
    with pytest.raises(asyncio.CancelledError):
        await one


def test_max_batch_must_be_positive() -> None:
    with pytest.raises(ValueError):
        BatchLoader(lambda keys: {}, max_batch=0)


async def test_under_load_the_next_batch_lingers_to_collect_more_keys() -> None:
    table = Table({1: "a", 2: "b", 3: "c"})
    loader = BatchLoader(table.fetch, linger_s=0.5)
    table.release.clear()
    first = asyncio.create_task(loader.get(1))
    await asyncio.to_thread(table.entered.wait, 10)
    second = asyncio.create_task(loader.get(2))  # arrives while a query runs: the loader is busy
    await asyncio.sleep(0)
    table.release.set()
    assert await first == "a"
    third = asyncio.create_task(loader.get(3))  # within the linger: joins the key that was waiting
    assert (await second, await third) == ("b", "c")
    assert table.batches == [[1], [2, 3]]


async def test_a_lookup_on_a_quiet_loader_does_not_linger() -> None:
    table = Table({1: "a", 2: "b"})
    loader = BatchLoader(table.fetch, linger_s=60.0)
    assert await asyncio.wait_for(loader.get(1), 5) == "a"
    assert await asyncio.wait_for(loader.get(2), 5) == "b", "the loader went quiet between the two"
    assert table.batches == [[1], [2]]
