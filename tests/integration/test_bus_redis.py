"""The bus contract on RedisBus: each bus made in a test is one "node" on a shared key prefix.

Needs Redis at CLOUDSEAT_TEST_REDIS_URL (default redis://127.0.0.1:6379/0); skipped with the
reason when it is unreachable. Every test uses its own prefix and deletes its keys afterwards.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from signaling.bus import Bus
from signaling.bus_redis import RedisBus, queue_score
from tests.bus_contract import *  # noqa: F403  (the contract test functions)
from tests.bus_contract import T0, FakeClock, MakeBus, make_call, make_clerk

pytestmark = pytest.mark.redis

REDIS_URL = os.environ.get("CLOUDSEAT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    admin = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, decode_responses=True)
    try:
        await admin.ping()
    except (RedisError, OSError) as exc:
        await admin.aclose()
        pytest.skip(f"Redis not reachable at {REDIS_URL} (set CLOUDSEAT_TEST_REDIS_URL): {exc}")
    prefix = f"test:{uuid.uuid4().hex}:"
    try:
        yield prefix
    finally:
        keys = [key async for key in admin.scan_iter(match=prefix + "*", count=500)]
        if keys:
            await admin.delete(*keys)
        await admin.aclose()


@pytest.fixture
async def make_bus(clock: FakeClock, redis_prefix: str) -> AsyncIterator[MakeBus]:
    buses: list[RedisBus] = []

    async def make(node_id: str = "node-a") -> Bus:
        bus = RedisBus(REDIS_URL, prefix=redis_prefix, node_id=node_id, clock=clock)
        buses.append(bus)
        return bus

    yield make
    for bus in buses:
        await bus.close()


async def test_presence_entry_has_a_real_ttl(make_bus: MakeBus, redis_prefix: str) -> None:
    """A dead node cannot clean up: Redis itself must drop its presence keys."""
    bus = await make_bus("node-a")
    await bus.set_presence("booth", "b1", {}, 30)
    admin = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        ttl_ms = await admin.pttl(redis_prefix + "presence:booth:b1")
    finally:
        await admin.aclose()
    assert 0 < ttl_ms <= 30_000


def test_queue_score_orders_like_the_policy() -> None:
    low_late = queue_score(make_call("a", priority=0, enqueued_at=T0 + 999))
    green_early = queue_score(make_call("b", priority=1, enqueued_at=T0))
    green_late = queue_score(make_call("c", priority=1, enqueued_at=T0 + 0.000001))
    appt = queue_score(make_call("d", priority=2, enqueued_at=9_999_999_999.0))
    assert appt < green_early < green_late < low_late
    with pytest.raises(ValueError, match="enqueued_at"):
        queue_score(make_call("e", enqueued_at=1e10))


async def test_route_once_on_the_wall_clock_stamps_the_offer_with_redis_time(redis_prefix: str) -> None:
    """Without an injected clock the routing script takes Redis' TIME (later than any release it saw)."""
    bus = RedisBus(REDIS_URL, prefix=redis_prefix, node_id="node-a")
    try:
        await bus.enqueue(make_call("x", enqueued_at=time.time() - 5))
        await bus.set_clerk(make_clerk("c1"))
        before = time.time()
        offer = await bus.route_once(timeout_s=7)
        after = time.time()
        assert offer is not None and (offer.call_id, offer.clerk_id) == ("x", "c1")
        assert before - 0.05 <= offer.offered_at <= after + 0.05
        assert offer.deadline == pytest.approx(offer.offered_at + 7, abs=1e-5)
        assert await bus.get_offer("x") == offer
        assert (await bus.get_clerk("c1")).status == "ringing"
    finally:
        await bus.close()


async def test_the_available_index_follows_every_status_change(make_bus: MakeBus, redis_prefix: str) -> None:
    """The routing script reads `available`; every script that moves a clerk keeps it exact."""
    bus = await make_bus("node-a")
    admin = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)

    async def index_matches_clerks() -> list[str]:
        index = await admin.zrange(redis_prefix + "available", 0, -1)
        clerks = sorted((c for c in await bus.list_clerks() if c.status == "available"),
                        key=lambda c: (c.idle_since, c.clerk_id))
        assert index == [c.clerk_id for c in clerks]
        return index

    try:
        await bus.set_clerk(make_clerk("a", idle_since=T0 - 50))
        await bus.set_clerk(make_clerk("b", idle_since=T0 - 90))
        assert await index_matches_clerks() == ["b", "a"]
        for call_id in ("x", "y", "z"):
            await bus.enqueue(make_call(call_id))
        assert await bus.offer("x", "b", 10) is not None
        assert await index_matches_clerks() == ["a"]
        assert await bus.decline_offer("x", "b", "busy", next_status="available", now=T0 + 1)
        assert await index_matches_clerks() == ["a", "b"]  # b idle since the decline
        assert (await bus.route_once(now=T0 + 2)).clerk_id == "a"
        assert await index_matches_clerks() == ["b"]
        await bus.expire_offers(now=T0 + 100)
        assert await index_matches_clerks() == ["b"]  # a missed it: not ready
        assert (await bus.route_once(now=T0 + 101)).clerk_id == "b"
        assert await index_matches_clerks() == []
        offered = [o.call_id for o in await bus.list_offers()]
        assert await bus.dequeue(offered[0], "hung_up") is not None
        assert await index_matches_clerks() == ["b"]  # back to available with its idle_since
        await bus.set_clerk(make_clerk("b", status="offline", idle_since=T0))
        assert await index_matches_clerks() == []
        assert await bus.route_once(now=T0 + 102) is None
    finally:
        await admin.aclose()
