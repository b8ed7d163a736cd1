"""Contract tests every Bus implementation must pass.

A test module imports these functions (``from tests.bus_contract import *``) and provides two
fixtures:

* ``clock``: a `FakeClock` shared by all buses of the test;
* ``make_bus``: an async factory ``await make_bus(node_id)`` returning a bus that shares its
  backend with every other bus made in the same test (several "nodes"), built with ``clock``;
  the fixture closes them and cleans up afterwards.

Nothing here sleeps to synchronise: time is the fake clock, and waits on pub/sub carry a
timeout only as a failsafe.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from signaling.bus import Bus, Dequeued, Offer, Subscription
from signaling.routing import ClerkState, QueuedCall

MakeBus = Callable[..., Awaitable[Bus]]
T0 = 1_000_000.0
FAILSAFE_S = 5.0


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start: float = T0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def make_call(
    call_id: str,
    *,
    enqueued_at: float = T0,
    priority: int = 0,
    skill: str = "shebao",
    region: str = "r1",
    cross: bool = False,
    preferred_clerk: str | None = None,
    appointment_id: str | None = None,
) -> QueuedCall:
    if priority == 2 and appointment_id is None:
        appointment_id = f"appt-{call_id}"
    return QueuedCall(
        call_id=call_id,
        booth_id=f"booth-{call_id}",
        item_code="item-" + skill,
        skill=skill,
        region=region,
        cross_region_allowed=cross,
        priority=priority,
        enqueued_at=enqueued_at,
        preferred_clerk=preferred_clerk,
        appointment_id=appointment_id,
    )


def make_clerk(
    clerk_id: str,
    *,
    status: str = "available",
    skills: tuple[str, ...] = ("shebao",),
    regions: tuple[str, ...] = ("r1",),
    idle_since: float = T0 - 100,
    reason: str | None = None,
) -> ClerkState:
    return ClerkState(
        clerk_id=clerk_id,
        status=status,
        skills=frozenset(skills),
        regions=frozenset(regions),
        idle_since=idle_since,
        not_ready_reason=reason,
    )


async def next_message(sub: Subscription) -> dict[str, Any]:
    return await asyncio.wait_for(anext(sub), FAILSAFE_S)


# -- presence --


async def test_presence_roundtrip_records_node(make_bus: MakeBus) -> None:
    a = await make_bus("node-a")
    b = await make_bus("node-b")
    await a.set_presence("booth", "b1", {"socket": "s1", "items": ["shebao"]}, 30)
    expected = {"socket": "s1", "items": ["shebao"], "node": "node-a"}
    assert await a.get_presence("booth", "b1") == expected
    assert await b.get_presence("booth", "b1") == expected  # visible from the other node
    assert await b.get_presence("clerk", "b1") is None  # kinds are separate
    assert await b.list_presence("booth") == {"b1": expected}
    assert await b.list_presence("clerk") == {}


async def test_presence_lapses_unless_touched(make_bus: MakeBus, clock: FakeClock) -> None:
    bus = await make_bus("node-a")
    await bus.set_presence("clerk", "c1", {}, 10)
    await bus.set_presence("clerk", "c2", {}, 10)
    clock.advance(9)
    assert await bus.touch("clerk", "c1", 10) is True
    clock.advance(2)  # c2 lapsed at T0+10, c1 now lives until T0+19
    assert await bus.get_presence("clerk", "c2") is None
    assert set(await bus.list_presence("clerk")) == {"c1"}
    assert await bus.touch("clerk", "c2", 10) is False  # a lapsed entry cannot be revived
    assert await bus.get_presence("clerk", "c2") is None
    clock.advance(8)
    assert await bus.list_presence("clerk") == {}


async def test_presence_remove_and_validation(make_bus: MakeBus) -> None:
    bus = await make_bus("node-a")
    await bus.set_presence("booth", "b1", {"node": "elsewhere"}, 5)
    assert await bus.get_presence("booth", "b1") == {"node": "elsewhere"}  # caller's node wins
    await bus.remove_presence("booth", "b1")
    assert await bus.get_presence("booth", "b1") is None
    assert await bus.touch("booth", "b1", 5) is False
    with pytest.raises(ValueError, match="kind"):
        await bus.set_presence("kiosk", "b1", {}, 5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ttl_s"):
        await bus.set_presence("booth", "b1", {}, 0)
    with pytest.raises(ValueError, match="JSON"):
        await bus.set_presence("booth", "b1", {"x": object()}, 5)


async def test_release_presence_keeps_an_entry_another_node_holds(make_bus: MakeBus) -> None:
    a, b = await make_bus("node-a"), await make_bus("node-b")
    await a.set_presence("booth", "b1", {"status": "idle"}, 5)
    await b.set_presence("booth", "b1", {"status": "idle"}, 5)  # the booth reconnected on node b
    assert await a.release_presence("booth", "b1") is False  # node a's old socket closes late
    assert (await a.get_presence("booth", "b1") or {}).get("node") == "node-b"
    assert await b.release_presence("booth", "b1") is True
    assert await a.get_presence("booth", "b1") is None
    assert await a.list_presence("booth") == {}
    assert await a.release_presence("booth", "b1") is True, "nothing anyone holds: released"
    await a.set_presence("clerk", "c1", {}, 5)
    assert await a.release_presence("clerk", "c1") is True
    assert await b.get_presence("clerk", "c1") is None


# -- clerks --


async def test_clerk_state_roundtrips_exactly(make_bus: MakeBus) -> None:
    a = await make_bus("node-a")
    b = await make_bus("node-b")
    clerk = make_clerk(
        "c1", status="not_ready", skills=("huji", "shebao"), regions=("r1", "r2"),
        idle_since=T0 + 0.123456789, reason="lunch",
    )
    await a.set_clerk(clerk)
    assert await b.get_clerk("c1") == clerk
    assert await b.get_clerk("nobody") is None
    await b.set_clerk(make_clerk("c2"))
    assert sorted(c.clerk_id for c in await a.list_clerks()) == ["c1", "c2"]


async def test_set_clerk_refuses_ringing(make_bus: MakeBus) -> None:
    bus = await make_bus("node-a")
    with pytest.raises(ValueError, match="ringing"):
        await bus.set_clerk(make_clerk("c1", status="ringing"))
    assert await bus.get_clerk("c1") is None


# -- queue --


async def test_queue_orders_by_priority_then_time(make_bus: MakeBus) -> None:
    bus = await make_bus("node-a")
    await bus.enqueue(make_call("late", enqueued_at=T0 + 5))
    await bus.enqueue(make_call("early", enqueued_at=T0 + 1))
    await bus.enqueue(make_call("green", enqueued_at=T0 + 9, priority=1))
    await bus.enqueue(make_call("appt", enqueued_at=T0 + 20, priority=2))
    assert [c.call_id for c in await bus.list_queue()] == ["appt", "green", "early", "late"]
    assert [await bus.position(i) for i in ("appt", "green", "early", "late")] == [1, 2, 3, 4]
    assert await bus.position("missing") is None


async def test_enqueue_is_idempotent_and_keeps_place(make_bus: MakeBus) -> None:
    a = await make_bus("node-a")
    b = await make_bus("node-b")
    first = make_call("x", enqueued_at=T0 + 0.000123)
    assert await a.enqueue(first) == first
    await a.enqueue(make_call("y", enqueued_at=T0 + 1))
    # the booth reconnects to node b and re-enqueues, with a later timestamp by mistake
    again = await b.enqueue(make_call("x", enqueued_at=T0 + 50))
    assert again == first
    assert [c.call_id for c in await b.list_queue()] == ["x", "y"]
    assert await b.position("x") == 1
    assert len(await a.list_queue()) == 2


async def test_restore_never_brings_back_a_call_a_clerk_has_taken(make_bus: MakeBus, clock: FakeClock) -> None:
    """Rebuilding the queue from lagging records must not ring a second clerk for a served call."""
    from signaling.bus import ANSWERED_MEMORY_S

    a = await make_bus("node-a")
    b = await make_bus("node-b")
    taken, lost = make_call("taken"), make_call("lost", enqueued_at=T0 + 1)
    await a.enqueue(taken)
    await a.set_clerk(make_clerk("c1"))
    assert await a.offer("taken", "c1", 10) is not None
    assert await a.accept_offer("taken", "c1") == taken
    # node b's records still say both calls wait; the bus lost "lost" (say, Redis restarted)
    assert await b.restore(taken) is None
    assert await b.restore(lost) == lost
    assert await b.restore(lost) == lost  # idempotent, keeps its place
    assert [c.call_id for c in await b.list_queue()] == ["lost"]
    # a transfer queues the answered call again on purpose; from then on it is an ordinary call
    assert await a.enqueue(taken) == taken
    assert await a.dequeue("taken", "test") is not None
    assert await b.restore(taken) == taken
    # the memory of an answer is bounded in time (the records have long caught up by then)
    assert await a.dequeue("taken", "test") is not None
    await a.set_clerk(make_clerk("c2"))
    await a.enqueue(taken)
    assert await a.offer("taken", "c2", 10) is not None
    assert await a.accept_offer("taken", "c2") == taken
    clock.advance(ANSWERED_MEMORY_S + 1)
    await a.enqueue(make_call("other"))
    await a.set_clerk(make_clerk("c3"))
    assert await a.offer("other", "c3", 10) is not None
    assert await a.accept_offer("other", "c3") is not None  # an answer trims memories older than the window
    assert await b.restore(taken) == taken


async def test_dequeue_returns_call_once(make_bus: MakeBus) -> None:
    bus = await make_bus("node-a")
    call = make_call("x")
    await bus.enqueue(call)
    assert await bus.dequeue("x", "hung_up") == Dequeued(call, None)
    assert await bus.dequeue("x", "hung_up") is None
    assert await bus.list_queue() == []
    assert await bus.position("x") is None


# -- offers --


async def test_offer_is_exclusive(make_bus: MakeBus, clock: FakeClock) -> None:
    a = await make_bus("node-a")
    b = await make_bus("node-b")
    for cid in ("x", "y"):
        await a.enqueue(make_call(cid))
    for kid in ("c1", "c2"):
        await a.set_clerk(make_clerk(kid))
    await a.set_clerk(make_clerk("c3", status="not_ready", reason="break"))

    offer = await a.offer("x", "c1", 15)
    assert offer == Offer(call_id="x", clerk_id="c1", offered_at=clock(), deadline=clock() + 15)
    assert await b.get_offer("x") == offer
    ringing = await b.get_clerk("c1")
    assert ringing is not None and ringing.status == "ringing"

    assert await b.offer("x", "c2", 15) is None  # call already offered
    assert await b.offer("y", "c1", 15) is None  # clerk already holds an offer
    assert await b.offer("y", "c3", 15) is None  # clerk not available
    assert await b.offer("nope", "c2", 15) is None  # call not queued
    assert await b.offer("y", "ghost", 15) is None  # clerk unknown
    assert await b.list_offers() == [offer]
    assert [c.call_id for c in await b.list_queue()] == ["x", "y"]  # offered call keeps its place
    assert await b.offer("y", "c2", 15) is not None


async def test_accept_only_by_offered_clerk_before_deadline(make_bus: MakeBus, clock: FakeClock) -> None:
    a = await make_bus("node-a")
    b = await make_bus("node-b")
    call = make_call("x")
    await a.enqueue(call)
    await a.enqueue(make_call("y"))
    await a.set_clerk(make_clerk("c1"))
    await a.set_clerk(make_clerk("c2"))
    assert await a.offer("x", "c1", 10) is not None
    assert await a.offer("y", "c2", 10) is not None

    assert await b.accept_offer("x", "c2") is None  # not this clerk's offer
    assert await b.accept_offer("x", "c1") == call
    assert await b.accept_offer("x", "c1") is None  # once only
    clerk = await a.get_clerk("c1")
    assert clerk is not None and clerk.status == "in_call"
    assert [c.call_id for c in await a.list_queue()] == ["y"]
    assert await a.get_offer("x") is None

    clock.advance(10)  # y's offer has lapsed even though nobody expired it yet
    assert await b.accept_offer("y", "c2") is None
    assert [c.call_id for c in await a.list_queue()] == ["y"]


async def test_decline_keeps_place(make_bus: MakeBus, clock: FakeClock) -> None:
    bus = await make_bus("node-a")
    await bus.enqueue(make_call("x", enqueued_at=T0))
    await bus.enqueue(make_call("y", enqueued_at=T0 + 1))
    await bus.set_clerk(make_clerk("c1"))
    await bus.set_clerk(make_clerk("c2", idle_since=T0 - 50))
    assert await bus.offer("x", "c1", 10) is not None
    assert await bus.decline_offer("x", "c2", "wrong clerk") is False
    assert await bus.decline_offer("x", "c1", "toilet") is True
    assert await bus.decline_offer("x", "c1", "toilet") is False
    assert await bus.position("x") == 1
    assert await bus.get_offer("x") is None
    assert await bus.get_clerk("c1") == make_clerk("c1", status="not_ready", reason="toilet")

    clock.advance(3)
    assert await bus.offer("x", "c2", 10) is not None
    assert await bus.decline_offer("x", "c2", "not my item", next_status="available") is True
    assert await bus.get_clerk("c2") == make_clerk("c2", idle_since=clock())  # back of the idle line
    with pytest.raises(ValueError, match="next_status"):
        await bus.decline_offer("x", "c2", "r", next_status="offline")  # type: ignore[arg-type]


async def test_expire_offers(make_bus: MakeBus, clock: FakeClock) -> None:
    a = await make_bus("node-a")
    b = await make_bus("node-b")
    await a.enqueue(make_call("x"))
    await a.enqueue(make_call("y", enqueued_at=T0 + 1))
    await a.set_clerk(make_clerk("c1"))
    await a.set_clerk(make_clerk("c2"))
    ox = await a.offer("x", "c1", 10)
    clock.advance(5)
    oy = await a.offer("y", "c2", 10)
    assert ox is not None and oy is not None

    clock.advance(4.999)
    assert await b.expire_offers() == []
    clock.advance(0.001)  # exactly x's deadline: an offer ends at its deadline
    assert await b.expire_offers() == [ox]
    assert await a.get_clerk("c1") == make_clerk("c1", status="not_ready", reason="missed_offer")
    assert await a.position("x") == 1
    assert await a.list_offers() == [oy]
    assert await b.expire_offers(clock() + 100) == [oy]
    assert await b.expire_offers(clock() + 100) == []
    await a.set_clerk(make_clerk("c3"))
    assert await a.offer("x", "c3", 10) is not None  # the call is offerable again


async def test_dequeue_withdraws_offer(make_bus: MakeBus) -> None:
    bus = await make_bus("node-a")
    await bus.enqueue(make_call("x"))
    await bus.set_clerk(make_clerk("c1"))
    offer = await bus.offer("x", "c1", 10)
    assert offer is not None
    assert await bus.dequeue("x", "hung_up") == Dequeued(make_call("x"), offer)  # names the withdrawn offer
    assert await bus.list_offers() == []
    assert await bus.get_clerk("c1") == make_clerk("c1")  # available again, same idle_since
    assert await bus.accept_offer("x", "c1") is None


async def test_set_clerk_withdraws_offer(make_bus: MakeBus) -> None:
    bus = await make_bus("node-a")
    await bus.enqueue(make_call("x"))
    await bus.set_clerk(make_clerk("c1"))
    assert await bus.offer("x", "c1", 10) is not None
    assert await bus.set_clerk(make_clerk("c1", status="offline")) == "x"  # names the withdrawn offer's call
    assert await bus.set_clerk(make_clerk("c1", status="offline")) is None
    assert await bus.list_offers() == []
    assert await bus.accept_offer("x", "c1") is None
    assert await bus.position("x") == 1
    await bus.set_clerk(make_clerk("c1"))
    assert await bus.offer("x", "c1", 10) is not None


# -- route_once --


async def test_route_once_follows_policy(make_bus: MakeBus, clock: FakeClock) -> None:
    bus = await make_bus("node-a")
    await bus.enqueue(make_call("normal", enqueued_at=T0 - 60))
    await bus.enqueue(make_call("green", enqueued_at=T0 - 1, priority=1))
    await bus.enqueue(make_call("other-region", enqueued_at=T0 - 90, region="r9"))
    await bus.set_clerk(make_clerk("recent", idle_since=T0 - 5))
    await bus.set_clerk(make_clerk("longest", idle_since=T0 - 500))
    await bus.set_clerk(make_clerk("wrong-skill", skills=("huji",), idle_since=T0 - 900))

    first = await bus.route_once(timeout_s=10)
    assert first is not None and (first.call_id, first.clerk_id) == ("green", "longest")
    assert first.deadline == clock() + 10
    second = await bus.route_once()
    assert second is not None and (second.call_id, second.clerk_id) == ("normal", "recent")
    assert second.deadline == clock() + 20  # the bus's default offer timeout
    assert await bus.route_once() is None  # r9 is served by nobody, wrong-skill has no shebao


async def test_route_once_cross_region_and_preferred_clerk(make_bus: MakeBus) -> None:
    bus = await make_bus("node-a")
    await bus.enqueue(make_call("appt", priority=2, preferred_clerk="mine", enqueued_at=T0 - 1))
    await bus.enqueue(make_call("cross", region="r9", cross=True, enqueued_at=T0 - 30))
    await bus.set_clerk(make_clerk("idle-long", idle_since=T0 - 1000))
    await bus.set_clerk(make_clerk("mine", idle_since=T0 - 1))

    first = await bus.route_once()
    assert first is not None and (first.call_id, first.clerk_id) == ("appt", "mine")
    second = await bus.route_once()
    assert second is not None and (second.call_id, second.clerk_id) == ("cross", "idle-long")


async def test_route_once_skips_offered_calls(make_bus: MakeBus) -> None:
    bus = await make_bus("node-a")
    await bus.enqueue(make_call("x", enqueued_at=T0 - 10))
    await bus.enqueue(make_call("y"))
    await bus.set_clerk(make_clerk("c1"))
    await bus.set_clerk(make_clerk("c2"))
    assert await bus.offer("x", "c2") is not None
    routed = await bus.route_once()
    assert routed is not None and (routed.call_id, routed.clerk_id) == ("y", "c1")


async def test_route_once_looks_past_calls_nobody_can_serve(make_bus: MakeBus) -> None:
    """A long head of calls no clerk can serve (a rare skill) does not hide the call behind it."""
    bus = await make_bus("node-a")
    for i in range(150):
        await bus.enqueue(make_call(f"rare-{i:03d}", skill="rare", enqueued_at=T0 - 1000 + i))
    await bus.enqueue(make_call("served", enqueued_at=T0))
    await bus.set_clerk(make_clerk("busy", status="not_ready", reason="break", idle_since=T0 - 900))
    await bus.set_clerk(make_clerk("c1"))
    routed = await bus.route_once()
    assert routed is not None and (routed.call_id, routed.clerk_id) == ("served", "c1")
    assert await bus.route_once() is None  # c1 rings now; nobody else is available


# -- pub/sub, sessions, lifecycle --


async def test_pubsub_across_nodes(make_bus: MakeBus) -> None:
    a = await make_bus("node-a")
    b = await make_bus("node-b")
    sub1 = await b.subscribe("socket:s1")
    sub2 = await b.subscribe("socket:s1")
    other = await a.subscribe("socket:s2")
    await a.publish("socket:s2", {"for": "s2"})
    await a.publish("socket:s1", {"type": "offer", "n": 1, "nested": {"k": [1, 2]}})
    got1 = await next_message(sub1)
    got2 = await next_message(sub2)
    assert got1 == got2 == {"type": "offer", "n": 1, "nested": {"k": [1, 2]}}
    got1["n"] = 99
    assert got2["n"] == 1  # each subscriber has its own copy
    assert await next_message(other) == {"for": "s2"}

    await sub1.close()
    await a.publish("socket:s1", {"n": 2})
    assert await next_message(sub2) == {"n": 2}
    with pytest.raises(StopAsyncIteration):
        await anext(sub1)
    with pytest.raises(ValueError):
        await a.publish("socket:s1", {"bad": object()})
    with pytest.raises(ValueError):
        await a.publish("socket:s1", ["not", "a", "dict"])  # type: ignore[arg-type]


async def test_resubscribe_after_last_subscriber_left(make_bus: MakeBus) -> None:
    a = await make_bus("node-a")
    b = await make_bus("node-b")
    async with await b.subscribe("room") as sub:
        await a.publish("room", {"n": 1})
        assert await next_message(sub) == {"n": 1}
    sub = await b.subscribe("room")
    await a.publish("room", {"n": 2})
    assert await next_message(sub) == {"n": 2}


async def test_close_ends_subscriptions(make_bus: MakeBus) -> None:
    bus = await make_bus("node-a")
    sub = await bus.subscribe("c")
    assert await bus.ping() is True
    await bus.close()
    await bus.close()  # idempotent
    assert await bus.ping() is False
    assert [m async for m in sub] == []


async def test_session_placement(make_bus: MakeBus) -> None:
    a = await make_bus("node-a")
    b = await make_bus("node-b")
    assert await b.get_session_node("sess-1") is None
    await a.set_session_node("sess-1", a.node_id)
    assert await b.get_session_node("sess-1") == "node-a"
    await b.set_session_node("sess-1", b.node_id)  # re-set-up on another node after a crash
    assert await a.get_session_node("sess-1") == "node-b"
    await a.clear_session_node("sess-1")
    assert await b.get_session_node("sess-1") is None


# -- concurrency: the invariants under racing callers on several nodes --

N_CALLS = 200
N_CLERKS = 20


async def _fill(bus: Bus) -> None:
    for i in range(N_CALLS):
        await bus.enqueue(make_call(f"call-{i:03d}", enqueued_at=T0 + i * 0.001, priority=1 if i % 3 == 0 else 0))
    for k in range(N_CLERKS):
        await bus.set_clerk(make_clerk(f"clerk-{k:02d}", idle_since=T0 - k))


async def test_racing_offers_never_double_book(make_bus: MakeBus) -> None:
    nodes = [await make_bus("node-a"), await make_bus("node-b")]
    await _fill(nodes[0])
    made: list[Offer] = []
    give_up = asyncio.get_running_loop().time() + 60  # failsafe: loops end on their own

    async def racer(index: int) -> None:
        bus = nodes[index % 2]
        rng = random.Random(index)
        while asyncio.get_running_loop().time() < give_up:
            queue, offers, clerks = await bus.list_queue(), await bus.list_offers(), await bus.list_clerks()
            free = [c.clerk_id for c in clerks if c.status == "available"]
            if not free:
                return
            await asyncio.sleep(0)  # let the others act on the same, now stale, snapshot
            if index % 2:
                offer = await bus.route_once()
            else:  # collide on purpose: random pairs from a stale snapshot
                taken = {o.call_id for o in offers}
                call = rng.choice([c.call_id for c in queue[:10] if c.call_id not in taken] or ["call-000"])
                offer = await bus.offer(call, rng.choice(free), 30)
            if offer is not None:
                made.append(offer)

    async with asyncio.timeout(90), asyncio.TaskGroup() as group:
        for i in range(40):
            group.create_task(racer(i))
    assert len(made) == N_CLERKS
    assert len({o.call_id for o in made}) == N_CLERKS, "a call was offered twice"
    assert len({o.clerk_id for o in made}) == N_CLERKS, "a clerk holds two offers"
    assert sorted(await nodes[1].list_offers(), key=lambda o: o.call_id) == sorted(made, key=lambda o: o.call_id)
    assert {c.status for c in await nodes[1].list_clerks()} == {"ringing"}


async def test_routing_lifecycle_under_concurrency(make_bus: MakeBus) -> None:
    nodes = [await make_bus("node-a"), await make_bus("node-b")]
    await _fill(nodes[0])
    ringing_at: dict[str, str] = {}  # clerk_id -> call_id, as the clerks see it
    accepted: list[str] = []
    declines = 0
    done = asyncio.Event()
    give_up = asyncio.get_running_loop().time() + 90  # failsafe: loops end on their own

    def running() -> bool:
        return not done.is_set() and asyncio.get_running_loop().time() < give_up

    async def router(index: int) -> None:
        bus = nodes[index % 2]
        while running():
            await bus.route_once()
            await asyncio.sleep(0)

    async def clerk(index: int) -> None:
        nonlocal declines
        bus = nodes[(index + 1) % 2]
        me = f"clerk-{index:02d}"
        handled = 0
        while running():
            await asyncio.sleep(0)
            mine = [o for o in await bus.list_offers() if o.clerk_id == me]
            assert len(mine) <= 1, f"{me} holds {len(mine)} offers"
            if not mine:
                continue
            offer = mine[0]
            assert ringing_at.get(me) in (None, offer.call_id), f"{me} rings for two calls"
            ringing_at[me] = offer.call_id
            handled += 1
            if index % 4 == 0 and handled % 3 == 1:  # some clerks bounce some calls
                assert await bus.decline_offer(offer.call_id, me, "bounce", next_status="available")
                declines += 1
                del ringing_at[me]
                continue
            call = await bus.accept_offer(offer.call_id, me)
            assert call is not None and call.call_id == offer.call_id
            accepted.append(call.call_id)
            del ringing_at[me]  # before becoming available: nothing can ring here until then
            await bus.set_clerk(make_clerk(me, idle_since=T0 + len(accepted)))
            if len(accepted) == N_CALLS:
                done.set()

    async def auditor() -> None:
        while running():
            await asyncio.sleep(0)
            offers = await nodes[0].list_offers()
            assert len({o.clerk_id for o in offers}) == len(offers), "a clerk holds two offers"

    async with asyncio.timeout(120), asyncio.TaskGroup() as group:
        for i in range(6):
            group.create_task(router(i))
        for k in range(N_CLERKS):
            group.create_task(clerk(k))
        group.create_task(auditor())
    assert sorted(accepted) == [f"call-{i:03d}" for i in range(N_CALLS)], "each call accepted exactly once"
    assert declines > 0
    assert await nodes[0].list_queue() == []
    assert await nodes[1].list_offers() == []


__all__ = [name for name in dir() if name.startswith("test_")]


async def test_touch_many_extends_live_entries_only(make_bus: MakeBus, clock: FakeClock) -> None:
    """touch_many answers per id, in order: True for live entries (extended), False for lapsed or unknown."""
    bus = await make_bus("node-a")
    await bus.set_presence("booth", "t1", {"status": "idle"}, 30)
    await bus.set_presence("booth", "t2", {"status": "idle"}, 30)
    assert await bus.touch_many("booth", ["t1", "nobody", "t2"], 60) == [True, False, True]
    assert await bus.touch_many("booth", [], 60) == []
    assert set(await bus.list_presence("booth")) >= {"t1", "t2"}
    clock.advance(45)  # past the first TTL, within the extended one
    assert set(await bus.list_presence("booth")) == {"t1", "t2"}
