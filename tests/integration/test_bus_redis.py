"""The bus contract on RedisBus: each bus made in a test is one "node" on a shared key prefix.

Needs Redis at CLOUDSEAT_TEST_REDIS_URL (default redis://127.0.0.1:6379/0); skipped with the
reason when it is unreachable. Every test uses its own prefix and deletes its keys afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from signaling.bus import Bus
from signaling.bus_redis import RedisBus, queue_score
from tests.bus_contract import *  # noqa: F403  (the contract test functions)
from tests.bus_contract import T0, FakeClock, MakeBus, make_call

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
