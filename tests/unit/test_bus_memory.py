"""The bus contract on the in-process MemoryBus (several "nodes" share one state via sibling())."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from signaling.bus import Bus
from signaling.bus_memory import MemoryBus
from tests.bus_contract import *  # noqa: F403  (the contract test functions)
from tests.bus_contract import FakeClock, MakeBus


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def make_bus(clock: FakeClock) -> AsyncIterator[MakeBus]:
    buses: list[MemoryBus] = []

    async def make(node_id: str = "node-a") -> Bus:
        bus = MemoryBus(node_id, clock=clock) if not buses else buses[0].sibling(node_id)
        buses.append(bus)
        return bus

    yield make
    for bus in buses:
        await bus.close()


async def test_sibling_shares_state_but_not_subscriptions(clock: FakeClock) -> None:
    a = MemoryBus("a", clock=clock)
    b = a.sibling("b")
    sub = await b.subscribe("ch")
    await a.close()  # closing one node leaves the other's subscriptions alone
    await a.publish("ch", {"n": 1})
    assert await anext(sub) == {"n": 1}
    assert await b.ping() is True
    await b.close()


def test_rejects_bad_configuration() -> None:
    with pytest.raises(ValueError, match="node_id"):
        MemoryBus("")
    with pytest.raises(ValueError, match="offer_timeout_s"):
        MemoryBus("a", offer_timeout_s=0)
    with pytest.raises(ValueError, match="route_attempts"):
        MemoryBus("a", route_attempts=0)
