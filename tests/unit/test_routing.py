"""The routing policy on its own: eligibility, queue order, clerk choice, wait estimate."""

from __future__ import annotations

import pytest

from signaling.routing import (
    ClerkState,
    Priority,
    QueuedCall,
    choose_pair,
    estimate_wait,
    is_eligible,
    order_calls,
)


def call(
    call_id: str = "x",
    *,
    skill: str = "shebao",
    region: str = "r1",
    cross: bool = False,
    priority: int = 0,
    at: float = 100.0,
    preferred: str | None = None,
    appointment: str | None = None,
) -> QueuedCall:
    return QueuedCall(
        call_id=call_id,
        booth_id="booth-1",
        item_code="item",
        skill=skill,
        region=region,
        cross_region_allowed=cross,
        priority=priority,
        enqueued_at=at,
        preferred_clerk=preferred,
        appointment_id=appointment,
    )


def clerk(
    clerk_id: str = "c1",
    *,
    status: str = "available",
    skills: tuple[str, ...] = ("shebao",),
    regions: tuple[str, ...] = ("r1",),
    idle: float = 0.0,
) -> ClerkState:
    return ClerkState(clerk_id, status, frozenset(skills), frozenset(regions), idle)


# -- validation --


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"call_id": ""}, "call_id"),
        ({"skill": " shebao"}, "skill"),
        ({"priority": 3}, "priority"),
        ({"priority": True}, "priority"),
        ({"enqueued_at": float("nan")}, "enqueued_at"),
        ({"enqueued_at": -1.0}, "enqueued_at"),
        ({"cross_region_allowed": 1}, "cross_region_allowed"),
        ({"preferred_clerk": ""}, "preferred_clerk"),
        ({"priority": 2}, "appointment_id"),
    ],
)
def test_queued_call_rejects_bad_values(changes: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {
        "call_id": "x", "booth_id": "b", "item_code": "i", "skill": "shebao", "region": "r1",
        "cross_region_allowed": False, "priority": 0, "enqueued_at": 1.0,
    }
    fields.update(changes)
    with pytest.raises(ValueError, match=message):
        QueuedCall(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"status": "busy"}, "status"),
        ({"skills": {"shebao"}}, "skills"),
        ({"regions": frozenset({""})}, "regions"),
        ({"idle_since": float("inf")}, "idle_since"),
        ({"status": "available", "not_ready_reason": "lunch"}, "not_ready_reason"),
        ({"status": "not_ready", "not_ready_reason": ""}, "not_ready_reason"),
    ],
)
def test_clerk_state_rejects_bad_values(kwargs: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {"clerk_id": "c1", "status": "available"}
    fields.update(kwargs)
    with pytest.raises(ValueError, match=message):
        ClerkState(**fields)  # type: ignore[arg-type]


def test_priority_values_are_the_documented_ints() -> None:
    assert [int(p) for p in Priority] == [0, 1, 2]
    assert call(priority=Priority.PRIORITY_RESIDENT).priority == 1


# -- eligibility --


@pytest.mark.parametrize("status", ["offline", "ringing", "in_call", "wrap_up", "not_ready"])
def test_only_available_clerks_are_eligible(status: str) -> None:
    assert not is_eligible(clerk(status=status), call())
    assert is_eligible(clerk(), call())


def test_skill_is_required() -> None:
    assert not is_eligible(clerk(skills=("huji",)), call(skill="shebao"))
    assert is_eligible(clerk(skills=("huji", "shebao")), call(skill="shebao"))


def test_region_unless_cross_region_allowed() -> None:
    assert not is_eligible(clerk(regions=("r1",)), call(region="r2"))
    assert is_eligible(clerk(regions=("r1",)), call(region="r2", cross=True))  # 跨镇街通办
    assert is_eligible(clerk(regions=("r1", "r2")), call(region="r2"))


def test_preferred_clerk_pins_the_call() -> None:
    pinned = call(priority=2, preferred="c2", appointment="a1")
    assert not is_eligible(clerk("c1"), pinned)
    assert is_eligible(clerk("c2"), pinned)
    assert not is_eligible(clerk("c2", skills=("huji",)), pinned)  # still needs the skill


# -- order and choice --


def test_order_calls_priority_then_time_then_id() -> None:
    calls = [
        call("n-late", at=50.0),
        call("n-early", at=10.0),
        call("green", priority=1, at=90.0),
        call("appt", priority=2, at=99.0, appointment="a"),
        call("n-tie-b", at=30.0),
        call("n-tie-a", at=30.0),
    ]
    assert [c.call_id for c in order_calls(calls)] == ["appt", "green", "n-early", "n-tie-a", "n-tie-b", "n-late"]


def test_choose_pair_takes_longest_idle_clerk() -> None:
    clerks = [
        clerk("recent", idle=50.0), clerk("longest", idle=10.0), clerk("b-tie", idle=30.0), clerk("a-tie", idle=30.0)
    ]
    pair = choose_pair([call()], clerks)
    assert pair is not None and pair[1].clerk_id == "longest"
    pair = choose_pair([call()], [c for c in clerks if c.clerk_id != "longest" and c.clerk_id != "recent"])
    assert pair is not None and pair[1].clerk_id == "a-tie"  # ties by clerk_id


def test_choose_pair_serves_priority_first() -> None:
    calls = [call("normal", at=1.0), call("green", priority=1, at=500.0)]
    pair = choose_pair(calls, [clerk()])
    assert pair is not None and pair[0].call_id == "green"


def test_choose_pair_skips_a_call_nobody_can_serve() -> None:
    calls = [call("rare", skill="gongjijin", at=1.0), call("common", at=2.0)]
    pair = choose_pair(calls, [clerk()])
    assert pair is not None and pair[0].call_id == "common"


def test_choose_pair_longest_idle_among_eligible_only() -> None:
    clerks = [
        clerk("idle-wrong-region", regions=("r9",), idle=1.0), clerk("ok", idle=99.0), clerk("busy", status="in_call")
    ]
    pair = choose_pair([call()], clerks)
    assert pair is not None and pair[1].clerk_id == "ok"


def test_choose_pair_appointment_waits_for_its_clerk() -> None:
    appt = call("appt", priority=2, preferred="c2", appointment="a1", at=1.0)
    other = call("other", at=5.0)
    pair = choose_pair([appt, other], [clerk("c1")])
    assert pair is not None and (pair[0].call_id, pair[1].clerk_id) == ("other", "c1")
    pair = choose_pair([appt, other], [clerk("c1", idle=0.0), clerk("c2", idle=80.0)])
    assert pair is not None and (pair[0].call_id, pair[1].clerk_id) == ("appt", "c2")


def test_choose_pair_none_when_nothing_fits() -> None:
    assert choose_pair([], [clerk()]) is None
    assert choose_pair([call()], []) is None
    assert choose_pair([call()], [clerk(status="not_ready")]) is None


# -- wait estimate --


def test_estimate_wait() -> None:
    assert estimate_wait(1, [], 1) == 300.0  # default handle time
    assert estimate_wait(3, [100.0, 200.0, 7200.0], 2) == 300.0  # median 200 resists the outlier
    assert estimate_wait(4, [120.0], 4) == 120.0
    assert estimate_wait(1, [60.0], 0) is None  # nobody can serve: offer an appointment
    assert estimate_wait(2, [], 1, default_handle_time_s=10.0) == 20.0


def test_estimate_wait_grows_with_position() -> None:
    waits = [estimate_wait(p, [180.0], 3) for p in range(1, 10)]
    assert waits == sorted(waits) and waits[0] is not None and waits[0] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [((0, [], 1), "position"), ((1, [], -1), "available_clerks"), ((1, [-5.0], 1), "recent_handle_times")],
)
def test_estimate_wait_rejects_bad_input(args: tuple[int, list[float], int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        estimate_wait(*args)
