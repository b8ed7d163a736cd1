"""Routing policy (ACD): which queued call goes to which clerk.

Pure functions over value objects, no I/O, so the policy is unit-tested on its own and both bus
implementations (in-process and Redis) route exactly alike. The bus owns atomicity; this module
only decides.

Order of the queue: appointments due now first, then priority residents (绿色通道), then
everyone else, each first come first served. Among eligible clerks the one idle the longest
gets the call, which spreads work evenly.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Literal, get_args

logger = logging.getLogger(__name__)


class Priority(IntEnum):
    """Queue priority of a call; higher goes first."""

    NORMAL = 0
    PRIORITY_RESIDENT = 1  # elderly, disabled: 绿色通道
    APPOINTMENT_DUE = 2  # 预约 whose slot is now


ClerkStatus = Literal["offline", "available", "ringing", "in_call", "wrap_up", "not_ready"]
CLERK_STATUSES: frozenset[str] = frozenset(get_args(ClerkStatus))


def _require_id(name: str, value: object) -> None:
    if not isinstance(value, str) or not value or value != value.strip():
        raise ValueError(f"{name} must be a non-empty string without surrounding spaces, got {value!r}")


def _require_optional_id(name: str, value: object) -> None:
    if value is not None:
        _require_id(name, value)


def _require_time(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value!r}")


def _require_id_set(name: str, value: object) -> None:
    if not isinstance(value, frozenset):
        raise ValueError(f"{name} must be a frozenset of strings, got {type(value).__name__}")
    for item in value:
        _require_id(f"{name} item", item)


@dataclass(frozen=True)
class QueuedCall:
    """A resident's call waiting for a clerk.

    `enqueued_at` is supplied by the caller (the booth's first enqueue) so that a re-enqueue
    after a node or Redis restart keeps the call's place. `preferred_clerk` pins an appointment
    to its clerk; the caller clears it once the appointment has expired.
    """

    call_id: str
    booth_id: str
    item_code: str
    skill: str
    region: str
    cross_region_allowed: bool
    priority: int
    enqueued_at: float
    preferred_clerk: str | None = None
    appointment_id: str | None = None

    def __post_init__(self) -> None:
        for name in ("call_id", "booth_id", "item_code", "skill", "region"):
            _require_id(name, getattr(self, name))
        if not isinstance(self.cross_region_allowed, bool):
            raise ValueError(f"cross_region_allowed must be a bool, got {self.cross_region_allowed!r}")
        if isinstance(self.priority, bool) or not isinstance(self.priority, int):
            raise ValueError(f"priority must be an int, got {self.priority!r}")
        if self.priority not in set(Priority):
            raise ValueError(f"priority must be one of {[int(p) for p in Priority]}, got {self.priority}")
        _require_time("enqueued_at", self.enqueued_at)
        _require_optional_id("preferred_clerk", self.preferred_clerk)
        _require_optional_id("appointment_id", self.appointment_id)
        if self.priority == Priority.APPOINTMENT_DUE and self.appointment_id is None:
            raise ValueError("priority 2 (appointment due) needs an appointment_id")


@dataclass(frozen=True)
class ClerkState:
    """What routing needs to know about a clerk (a cloud seat).

    `idle_since` is when the clerk last became free; the smallest value is the longest idle.
    """

    clerk_id: str
    status: str
    skills: frozenset[str] = field(default_factory=frozenset)
    regions: frozenset[str] = field(default_factory=frozenset)
    idle_since: float = 0.0
    not_ready_reason: str | None = None

    def __post_init__(self) -> None:
        _require_id("clerk_id", self.clerk_id)
        if self.status not in CLERK_STATUSES:
            raise ValueError(f"status must be one of {sorted(CLERK_STATUSES)}, got {self.status!r}")
        _require_id_set("skills", self.skills)
        _require_id_set("regions", self.regions)
        _require_time("idle_since", self.idle_since)
        if self.not_ready_reason is not None:
            if self.status != "not_ready":
                raise ValueError("not_ready_reason is only allowed when status is 'not_ready'")
            _require_id("not_ready_reason", self.not_ready_reason)


def is_eligible(clerk: ClerkState, call: QueuedCall) -> bool:
    """True when `clerk` may be offered `call` now.

    The clerk must be available, hold the call's skill, and serve the booth's region unless the
    item may be handled across regions (跨镇街通办). A call pinned to a preferred clerk (an
    appointment) is eligible for that clerk only.
    """
    if clerk.status != "available":
        return False
    if call.preferred_clerk is not None and call.preferred_clerk != clerk.clerk_id:
        return False
    if call.skill not in clerk.skills:
        return False
    return call.cross_region_allowed or call.region in clerk.regions


def call_sort_key(call: QueuedCall) -> tuple[int, float, str]:
    """Queue order: priority descending, then enqueued_at ascending, then call_id (determinism)."""
    return (-call.priority, call.enqueued_at, call.call_id)


def order_calls(calls: Iterable[QueuedCall]) -> list[QueuedCall]:
    """The calls in the order routing serves them."""
    return sorted(calls, key=call_sort_key)


def _idle_key(clerk: ClerkState) -> tuple[float, str]:
    return (clerk.idle_since, clerk.clerk_id)


def choose_pair(
    calls: Iterable[QueuedCall], clerks: Iterable[ClerkState]
) -> tuple[QueuedCall, ClerkState] | None:
    """The next (call, clerk) to offer, or None when no queued call has an eligible clerk.

    Takes the first call in queue order that some clerk can serve, so a call nobody can serve
    (a rare skill) does not block the calls behind it. Among eligible clerks the longest idle
    wins, ties broken by clerk_id.
    """
    by_idle = sorted(clerks, key=_idle_key)
    for call in order_calls(calls):
        for clerk in by_idle:
            if is_eligible(clerk, call):
                return call, clerk
    return None


DEFAULT_HANDLE_TIME_S = 300.0


def estimate_wait(
    position: int,
    recent_handle_times: Sequence[float],
    available_clerks: int,
    *,
    default_handle_time_s: float = DEFAULT_HANDLE_TIME_S,
) -> float | None:
    """Estimated seconds until the call at 1-based `position` reaches a clerk, or None.

    `available_clerks` is the number of signed-in clerks able to serve the call, busy or not
    (a queued call means they are all busy). The estimate is
    ``position * median_handle_time / available_clerks``: the clerks share the calls up to and
    including this one, each serving one per handle time. It is slightly pessimistic for the
    head of the queue (a busy clerk is on average half-way through), which suits a kiosk: an
    early surprise beats a late one. The median of `recent_handle_times` resists one very long
    call; with no history `default_handle_time_s` is used. None means nobody can serve the
    call now, so the kiosk should offer an appointment (预约) instead of a number.
    """
    if isinstance(position, bool) or not isinstance(position, int) or position < 1:
        raise ValueError(f"position must be an int >= 1, got {position!r}")
    if isinstance(available_clerks, bool) or not isinstance(available_clerks, int) or available_clerks < 0:
        raise ValueError(f"available_clerks must be an int >= 0, got {available_clerks!r}")
    _require_time("default_handle_time_s", default_handle_time_s)
    for value in recent_handle_times:
        _require_time("recent_handle_times item", value)
    if available_clerks == 0:
        return None
    handle = statistics.median(recent_handle_times) if recent_handle_times else default_handle_time_s
    return position * float(handle) / available_clerks
