"""In-process bus for the embedded single-node mode.

Every method body runs without awaiting between its reads and writes, so under asyncio each
operation is one critical section: `offer` checks and reserves in one step just as the Redis
Lua scripts do. Keep it that way; an ``await`` inside a check-then-write would break the
"one call, one clerk" invariants.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from typing import Any

from signaling.bus import (
    ANSWERED_MEMORY_S,
    DEFAULT_OFFER_TIMEOUT_S,
    DEFAULT_ROUTE_ATTEMPTS,
    MISSED_OFFER,
    Dequeued,
    Bus,
    Clock,
    NextStatus,
    Offer,
    PresenceKind,
    Subscription,
    check_id,
    check_kind,
    check_next_status,
    check_settable,
    check_ttl,
    encode_message,
    presence_state,
)
from signaling.routing import ClerkState, QueuedCall, call_sort_key

logger = logging.getLogger(__name__)


@dataclass
class _MemoryState:
    """Everything the bus knows; shared by sibling buses to model several nodes in one process."""

    presence: dict[tuple[str, str], tuple[dict[str, Any], float]] = field(default_factory=dict)
    clerks: dict[str, ClerkState] = field(default_factory=dict)
    clerk_offer: dict[str, str] = field(default_factory=dict)  # clerk_id -> call_id
    calls: dict[str, QueuedCall] = field(default_factory=dict)
    offers: dict[str, Offer] = field(default_factory=dict)  # call_id -> offer
    sessions: dict[str, str] = field(default_factory=dict)
    answered: dict[str, float] = field(default_factory=dict)  # call_id -> when a clerk took it
    subscribers: dict[str, set[Subscription]] = field(default_factory=dict)


class MemoryBus(Bus):
    """The bus in one process ("single-node routing")."""

    def __init__(
        self,
        node_id: str = "local",
        *,
        clock: Clock | None = None,
        offer_timeout_s: float = DEFAULT_OFFER_TIMEOUT_S,
        route_attempts: int = DEFAULT_ROUTE_ATTEMPTS,
        _state: _MemoryState | None = None,
    ) -> None:
        super().__init__(node_id, clock=clock, offer_timeout_s=offer_timeout_s, route_attempts=route_attempts)
        self._state = _MemoryState() if _state is None else _state
        self._own_subscriptions: set[Subscription] = set()
        self._closed = False

    def sibling(self, node_id: str) -> MemoryBus:
        """Another node's view of the same state, so multi-node contracts run without Redis."""
        return MemoryBus(
            node_id,
            clock=self._clock,
            offer_timeout_s=self._offer_timeout_s,
            route_attempts=self._route_attempts,
            _state=self._state,
        )

    # -- presence --

    async def set_presence(self, kind: PresenceKind, id: str, state: dict[str, Any], ttl_s: float) -> None:
        key = (check_kind(kind), check_id("id", id))
        stored = json.loads(encode_message(presence_state(state, self.node_id)))
        self._state.presence[key] = (stored, self.now() + check_ttl("ttl_s", ttl_s))

    def _live_presence(self, key: tuple[str, str], now: float) -> dict[str, Any] | None:
        entry = self._state.presence.get(key)
        if entry is None:
            return None
        if entry[1] <= now:
            del self._state.presence[key]
            return None
        return entry[0]

    async def get_presence(self, kind: PresenceKind, id: str) -> dict[str, Any] | None:
        state = self._live_presence((check_kind(kind), check_id("id", id)), self.now())
        return None if state is None else json.loads(json.dumps(state))

    async def list_presence(self, kind: PresenceKind) -> dict[str, dict[str, Any]]:
        kind = check_kind(kind)
        now = self.now()
        result: dict[str, dict[str, Any]] = {}
        for key in [k for k in self._state.presence if k[0] == kind]:
            state = self._live_presence(key, now)
            if state is not None:
                result[key[1]] = json.loads(json.dumps(state))
        return result

    async def touch(self, kind: PresenceKind, id: str, ttl_s: float) -> bool:
        key = (check_kind(kind), check_id("id", id))
        ttl = check_ttl("ttl_s", ttl_s)
        now = self.now()
        state = self._live_presence(key, now)
        if state is None:
            return False
        self._state.presence[key] = (state, now + ttl)
        return True

    async def remove_presence(self, kind: PresenceKind, id: str) -> None:
        self._state.presence.pop((check_kind(kind), check_id("id", id)), None)

    async def release_presence(self, kind: PresenceKind, id: str) -> bool:
        key = (check_kind(kind), check_id("id", id))
        state = self._live_presence(key, self.now())
        if state is not None and state.get("node") not in (None, self.node_id):
            return False
        self._state.presence.pop(key, None)
        return True

    # -- clerks --

    async def set_clerk(self, clerk: ClerkState) -> str | None:
        check_settable(clerk)
        held = self._state.clerk_offer.pop(clerk.clerk_id, None)
        if held is not None:
            self._state.offers.pop(held, None)
            logger.info(
                "clerk %s set to %s while ringing: offer of call %s withdrawn", clerk.clerk_id, clerk.status, held
            )
        self._state.clerks[clerk.clerk_id] = clerk
        return held

    async def get_clerk(self, clerk_id: str) -> ClerkState | None:
        return self._state.clerks.get(check_id("clerk_id", clerk_id))

    async def list_clerks(self) -> list[ClerkState]:
        return list(self._state.clerks.values())

    # -- queue --

    async def enqueue(self, call: QueuedCall) -> QueuedCall:
        if not isinstance(call, QueuedCall):
            raise ValueError(f"expected a QueuedCall, got {type(call).__name__}")
        self._state.answered.pop(call.call_id, None)
        existing = self._state.calls.get(call.call_id)
        if existing is not None:
            logger.debug("call %s re-enqueued, keeps its place", call.call_id)
            return existing
        self._state.calls[call.call_id] = call
        return call

    async def restore(self, call: QueuedCall) -> QueuedCall | None:
        if not isinstance(call, QueuedCall):
            raise ValueError(f"expected a QueuedCall, got {type(call).__name__}")
        if call.call_id in self._state.answered:
            return None
        return await self.enqueue(call)

    async def dequeue(self, call_id: str, reason: str) -> Dequeued | None:
        check_id("call_id", call_id)
        call = self._state.calls.pop(call_id, None)
        if call is None:
            return None
        offer = self._state.offers.pop(call_id, None)
        if offer is not None and self._state.clerk_offer.get(offer.clerk_id) == call_id:
            del self._state.clerk_offer[offer.clerk_id]
            clerk = self._state.clerks[offer.clerk_id]
            self._state.clerks[offer.clerk_id] = replace(clerk, status="available")
        logger.info("call %s dequeued: %s", call_id, reason)
        return Dequeued(call, offer)

    async def list_queue(self) -> list[QueuedCall]:
        return sorted(self._state.calls.values(), key=call_sort_key)

    async def position(self, call_id: str) -> int | None:
        call = self._state.calls.get(check_id("call_id", call_id))
        if call is None:
            return None
        mine = call_sort_key(call)
        return 1 + sum(1 for other in self._state.calls.values() if call_sort_key(other) < mine)

    # -- offers --

    async def offer(
        self, call_id: str, clerk_id: str, timeout_s: float | None = None, *, now: float | None = None
    ) -> Offer | None:
        made = self._offer_for(call_id, clerk_id, timeout_s, now)
        state = self._state
        clerk = state.clerks.get(clerk_id)
        if (
            call_id not in state.calls
            or call_id in state.offers
            or clerk is None
            or clerk.status != "available"
            or clerk_id in state.clerk_offer
        ):
            return None
        state.offers[call_id] = made
        state.clerk_offer[clerk_id] = call_id
        state.clerks[clerk_id] = replace(clerk, status="ringing", not_ready_reason=None)
        return made

    def _release(self, offer: Offer) -> ClerkState | None:
        """Drop an offer; return its clerk if the clerk still held it."""
        state = self._state
        state.offers.pop(offer.call_id, None)
        if state.clerk_offer.get(offer.clerk_id) != offer.call_id:
            return None
        del state.clerk_offer[offer.clerk_id]
        return state.clerks[offer.clerk_id]

    async def accept_offer(self, call_id: str, clerk_id: str, *, now: float | None = None) -> QueuedCall | None:
        check_id("call_id", call_id)
        check_id("clerk_id", clerk_id)
        at = self.now(now)
        state = self._state
        offer = state.offers.get(call_id)
        if offer is None or offer.clerk_id != clerk_id or state.clerk_offer.get(clerk_id) != call_id:
            return None
        if offer.deadline <= at:
            return None
        clerk = self._release(offer)
        assert clerk is not None  # checked above
        state.clerks[clerk_id] = replace(clerk, status="in_call", not_ready_reason=None)
        state.answered = {c: t for c, t in state.answered.items() if t > at - ANSWERED_MEMORY_S}
        state.answered[call_id] = at
        return state.calls.pop(call_id)

    async def decline_offer(
        self,
        call_id: str,
        clerk_id: str,
        reason: str,
        *,
        next_status: NextStatus = "not_ready",
        now: float | None = None,
    ) -> bool:
        check_id("call_id", call_id)
        check_id("clerk_id", clerk_id)
        check_id("reason", reason)
        status = check_next_status(next_status)
        at = self.now(now)
        offer = self._state.offers.get(call_id)
        if offer is None or offer.clerk_id != clerk_id or self._state.clerk_offer.get(clerk_id) != call_id:
            return False
        clerk = self._release(offer)
        assert clerk is not None
        if status == "available":
            self._state.clerks[clerk_id] = replace(clerk, status="available", not_ready_reason=None, idle_since=at)
        else:
            self._state.clerks[clerk_id] = replace(clerk, status="not_ready", not_ready_reason=reason)
        logger.info("clerk %s declined call %s: %s", clerk_id, call_id, reason)
        return True

    async def expire_offers(self, now: float | None = None) -> list[Offer]:
        at = self.now(now)
        expired = sorted(
            (o for o in self._state.offers.values() if o.deadline <= at), key=lambda o: (o.deadline, o.call_id)
        )
        for offer in expired:
            clerk = self._release(offer)
            if clerk is not None:
                self._state.clerks[offer.clerk_id] = replace(clerk, status="not_ready", not_ready_reason=MISSED_OFFER)
            logger.info("offer of call %s to clerk %s expired", offer.call_id, offer.clerk_id)
        return expired

    async def get_offer(self, call_id: str) -> Offer | None:
        return self._state.offers.get(check_id("call_id", call_id))

    async def list_offers(self) -> list[Offer]:
        return list(self._state.offers.values())

    # -- pub/sub --

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        check_id("channel", channel)
        text = encode_message(message)
        for sub in list(self._state.subscribers.get(channel, ())):
            sub.deliver(json.loads(text))

    async def subscribe(self, channel: str) -> Subscription:
        check_id("channel", channel)
        if self._closed:
            raise RuntimeError("bus is closed")
        sub = Subscription(channel, self._unsubscribe)
        self._state.subscribers.setdefault(channel, set()).add(sub)
        self._own_subscriptions.add(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        self._own_subscriptions.discard(sub)
        subs = self._state.subscribers.get(sub.channel)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._state.subscribers[sub.channel]

    # -- sessions --

    async def set_session_node(self, session_id: str, node_id: str) -> None:
        self._state.sessions[check_id("session_id", session_id)] = check_id("node_id", node_id)

    async def get_session_node(self, session_id: str) -> str | None:
        return self._state.sessions.get(check_id("session_id", session_id))

    async def clear_session_node(self, session_id: str) -> None:
        self._state.sessions.pop(check_id("session_id", session_id), None)

    # -- lifecycle --

    async def ping(self) -> bool:
        return not self._closed

    async def close(self) -> None:
        self._closed = True
        for sub in list(self._own_subscriptions):
            await sub.close()
