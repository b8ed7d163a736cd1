"""The signaling bus: presence, clerk state, the call queue, offers, pub/sub and session placement.

One interface, two implementations picked at start-up (as LiveKit does for node routing):
`signaling.bus_memory.MemoryBus` for the embedded single-process mode and
`signaling.bus_redis.RedisBus` when ``CLOUDSEAT_REDIS_URL`` is set and several nodes share
the work. Both pass the same contract suite (``tests/bus_contract.py``).

Contract, in both implementations:

* Presence entries live for `ttl_s` seconds of the bus clock unless touched; a lapsed entry
  is gone, so the sockets of a dead node disappear without anyone cleaning up after it.
* A call is *queued* from `enqueue` until it is accepted or dequeued. Enqueue is idempotent
  on `call_id`: re-enqueueing keeps the stored call and so its place (a booth that reconnects
  to another node re-enqueues with its original `enqueued_at`).
* An offer reserves a queued call for one clerk. `offer` succeeds only when the call is
  queued without an offer and the clerk is ``available`` without an offer, and then marks
  both in one atomic step (clerk -> ``ringing``). Hence no call is ever offered to two clerks
  and no clerk ever holds two offers, whatever the number of concurrent callers or nodes.
  An offered call stays in the queue at its place; declining or expiring an offer just
  releases it.
* Only `offer` makes a clerk ``ringing`` (`set_clerk` refuses it); `set_clerk` on a ringing
  clerk withdraws its offer (a clerk logging out while ringing releases the call).
* Times are seconds from the bus clock (``time.time`` unless a test injects one); methods
  that take ``now`` use the clock when it is None.

Redis keeps nothing on disk in our deployments. Losing Redis loses the queue, and that is
handled above the bus: booths re-enqueue on reconnect with their original `enqueued_at`,
and idempotent enqueue puts them back in place. Nothing more is needed here.

The routing loop (calling `route_once` after queue or clerk changes and `expire_offers` on
a timer) belongs to session orchestration; the bus only provides the atomic steps.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal, get_args

from signaling.routing import ClerkState, QueuedCall, choose_pair

logger = logging.getLogger(__name__)

PresenceKind = Literal["booth", "clerk"]
PRESENCE_KINDS: frozenset[str] = frozenset(get_args(PresenceKind))
NextStatus = Literal["available", "not_ready"]
MISSED_OFFER = "missed_offer"
# How long a bus remembers that it handed a call to a clerk, so that `restore` cannot put it back.
ANSWERED_MEMORY_S = 3600.0
DEFAULT_OFFER_TIMEOUT_S = 20.0
DEFAULT_ROUTE_ATTEMPTS = 3
Clock = Callable[[], float]


@dataclass(frozen=True)
class Offer:
    """A call reserved for one clerk until `deadline` (bus clock seconds)."""

    call_id: str
    clerk_id: str
    offered_at: float
    deadline: float

    def __post_init__(self) -> None:
        for name in ("call_id", "clerk_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty string, got {value!r}")
        for name in ("offered_at", "deadline"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if not self.deadline > self.offered_at:
            raise ValueError(f"deadline {self.deadline} must be after offered_at {self.offered_at}")


@dataclass(frozen=True)
class Dequeued:
    """A call taken out of the queue, and the offer that was ringing for it then (if any).

    Both come from the same atomic step: the clerk named is the one whose offer was withdrawn,
    even when the call was re-offered an instant before (reading the offer first would race).
    """

    call: QueuedCall
    offer: Offer | None


# -- serialisation shared by the implementations (JSON floats round-trip exactly via repr) --


def call_to_json(call: QueuedCall) -> str:
    """Canonical JSON of a queued call."""
    return json.dumps(
        {
            "call_id": call.call_id,
            "booth_id": call.booth_id,
            "item_code": call.item_code,
            "skill": call.skill,
            "region": call.region,
            "cross_region_allowed": call.cross_region_allowed,
            "priority": call.priority,
            "enqueued_at": call.enqueued_at,
            "preferred_clerk": call.preferred_clerk,
            "appointment_id": call.appointment_id,
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def call_from_json(text: str) -> QueuedCall:
    """Inverse of `call_to_json`; ValueError on anything malformed."""
    data = _load_object(text, "call")
    try:
        return QueuedCall(**data)
    except TypeError as exc:
        raise ValueError(f"malformed call: {exc}") from None


def offer_to_json(offer: Offer) -> str:
    """Canonical JSON of an offer."""
    return json.dumps(
        {
            "call_id": offer.call_id,
            "clerk_id": offer.clerk_id,
            "offered_at": offer.offered_at,
            "deadline": offer.deadline,
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def offer_from_json(text: str) -> Offer:
    """Inverse of `offer_to_json`; ValueError on anything malformed."""
    data = _load_object(text, "offer")
    try:
        return Offer(**data)
    except TypeError as exc:
        raise ValueError(f"malformed offer: {exc}") from None


def _load_object(text: str, what: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except (TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"malformed {what}: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"malformed {what}: expected a JSON object")
    return data


def encode_message(message: dict[str, Any]) -> str:
    """JSON text of a pub/sub message; ValueError unless it is a JSON-able dict.

    Both implementations deliver a decoded copy, so a subscriber never shares an object with
    the publisher (in-process that would hide bugs that Redis would expose).
    """
    if not isinstance(message, dict):
        raise ValueError(f"message must be a dict, got {type(message).__name__}")
    try:
        return json.dumps(message, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"message is not JSON-able: {exc}") from None


# -- argument checks shared by the implementations --


def check_id(name: str, value: object) -> str:
    """A non-empty identifier string, else ValueError."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def check_kind(kind: object) -> str:
    """A presence kind, else ValueError."""
    if kind not in PRESENCE_KINDS:
        raise ValueError(f"presence kind must be one of {sorted(PRESENCE_KINDS)}, got {kind!r}")
    return str(kind)


def check_ttl(name: str, value: object) -> float:
    """A positive finite number of seconds, else ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


def check_settable(clerk: ClerkState) -> None:
    """`set_clerk` may not invent a ringing clerk: only `offer` rings, so offers stay consistent."""
    if not isinstance(clerk, ClerkState):
        raise ValueError(f"expected a ClerkState, got {type(clerk).__name__}")
    if clerk.status == "ringing":
        raise ValueError("status 'ringing' is set by offer(), not by set_clerk()")


def check_next_status(value: object) -> str:
    """A status a clerk may go to after declining, else ValueError."""
    if value not in get_args(NextStatus):
        raise ValueError(f"next_status must be one of {list(get_args(NextStatus))}, got {value!r}")
    return str(value)


def presence_state(state: dict[str, Any], node_id: str) -> dict[str, Any]:
    """The stored presence state: the caller's dict plus the node holding the socket."""
    if not isinstance(state, dict):
        raise ValueError(f"presence state must be a dict, got {type(state).__name__}")
    stored = dict(state)
    stored.setdefault("node", node_id)
    encode_message(stored)  # must survive the trip through Redis
    return stored


class Subscription:
    """Messages of one channel for one local subscriber; iterate with ``async for``.

    Messages queue here until read; past `max_pending` the oldest are dropped (logged) so a
    stuck consumer cannot exhaust memory. Iteration ends when the subscription is closed.
    """

    def __init__(
        self,
        channel: str,
        on_close: Callable[[Subscription], Any] | None = None,
        *,
        max_pending: int = 1000,
    ) -> None:
        self.channel = channel
        self._on_close = on_close
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._max_pending = max_pending
        self._closed = False

    @property
    def closed(self) -> bool:
        """True once closed; no more messages will arrive."""
        return self._closed

    def deliver(self, message: dict[str, Any]) -> None:
        """Hand a message to this subscriber (called by the bus, never blocks)."""
        if self._closed:
            return
        if self._queue.qsize() >= self._max_pending:
            self._queue.get_nowait()
            logger.warning("subscription %s: dropped a message, consumer too slow", self.channel)
        self._queue.put_nowait(message)

    def end(self) -> None:
        """Mark closed and wake the reader (called by the bus on close)."""
        if not self._closed:
            self._closed = True
            self._queue.put_nowait(None)

    async def close(self) -> None:
        """Stop receiving; the bus unsubscribes the channel when its last subscriber leaves."""
        if self._closed:
            return
        self.end()
        if self._on_close is not None:
            result = self._on_close(self)
            if asyncio.iscoroutine(result):
                await result

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self

    async def __anext__(self) -> dict[str, Any]:
        if self._closed and self._queue.empty():
            raise StopAsyncIteration
        message = await self._queue.get()
        if message is None:
            raise StopAsyncIteration
        return message

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class Bus(ABC):
    """The bus interface; see the module docstring for the contract both implementations keep."""

    def __init__(
        self,
        node_id: str,
        *,
        clock: Clock | None = None,
        offer_timeout_s: float = DEFAULT_OFFER_TIMEOUT_S,
        route_attempts: int = DEFAULT_ROUTE_ATTEMPTS,
    ) -> None:
        self._node_id = check_id("node_id", node_id)
        self._clock: Clock = time.time if clock is None else clock
        self._offer_timeout_s = check_ttl("offer_timeout_s", offer_timeout_s)
        if isinstance(route_attempts, bool) or not isinstance(route_attempts, int) or route_attempts < 1:
            raise ValueError(f"route_attempts must be an int >= 1, got {route_attempts!r}")
        self._route_attempts = route_attempts

    @property
    def node_id(self) -> str:
        """The node this bus speaks for (stored in presence, used for session placement)."""
        return self._node_id

    def now(self, now: float | None = None) -> float:
        """`now` if given, else the bus clock."""
        return self._clock() if now is None else float(now)

    # -- presence --

    @abstractmethod
    async def set_presence(self, kind: PresenceKind, id: str, state: dict[str, Any], ttl_s: float) -> None:
        """Publish that a booth/clerk socket is connected here; ``state["node"]`` defaults to this node."""

    @abstractmethod
    async def get_presence(self, kind: PresenceKind, id: str) -> dict[str, Any] | None:
        """The live presence state, or None when absent or lapsed."""

    @abstractmethod
    async def list_presence(self, kind: PresenceKind) -> dict[str, dict[str, Any]]:
        """All live presence entries of a kind, by id."""

    @abstractmethod
    async def touch(self, kind: PresenceKind, id: str, ttl_s: float) -> bool:
        """Heartbeat: extend a live entry to now + ttl_s; False when it has already lapsed."""

    async def touch_many(self, kind: PresenceKind, ids: list[str], ttl_s: float) -> list[bool]:
        """`touch` for many entries at once (one round trip where the backend allows)."""
        return [await self.touch(kind, i, ttl_s) for i in ids]

    @abstractmethod
    async def remove_presence(self, kind: PresenceKind, id: str) -> None:
        """Forget an entry at once (clean disconnect)."""

    @abstractmethod
    async def release_presence(self, kind: PresenceKind, id: str) -> bool:
        """Forget an entry unless another node holds it live, atomically; False when one does.

        What a node does when its socket of a booth or clerk closes: if the party has already
        reconnected elsewhere, that node's entry must stay.  A read then a remove could delete
        an entry written in between (and costs two round trips).
        """

    # -- clerk routing state --

    @abstractmethod
    async def set_clerk(self, clerk: ClerkState) -> str | None:
        """Store a clerk's routing state; withdraws an offer the clerk holds (call stays queued).

        Returns the id of the call whose offer was withdrawn, so the caller can log the release.
        """

    @abstractmethod
    async def get_clerk(self, clerk_id: str) -> ClerkState | None:
        """The clerk's state, None when never set."""

    @abstractmethod
    async def list_clerks(self) -> list[ClerkState]:
        """All clerks, in no particular order."""

    # -- queue --

    @abstractmethod
    async def enqueue(self, call: QueuedCall) -> QueuedCall:
        """Queue a call; if `call_id` is already queued, keep and return the stored call.

        A call queued again on purpose after it was answered (a transfer) is queued; the memory
        of its answer (see `restore`) is dropped.
        """

    @abstractmethod
    async def restore(self, call: QueuedCall) -> QueuedCall | None:
        """Queue a call the records say is waiting, unless this bus handed it to a clerk.

        For rebuilding the queue from the records (after Redis lost it): the records lag the bus,
        so a row read as waiting may belong to a call the bus has just given to a clerk; putting
        it back would ring another clerk for a call already being served.  The bus remembers
        answered calls for `ANSWERED_MEMORY_S` and returns None for them.
        """

    @abstractmethod
    async def dequeue(self, call_id: str, reason: str) -> Dequeued | None:
        """Remove a queued call (resident hung up, appointment instead ...), withdrawing its offer.

        Returns the call with the withdrawn offer, or None when it was not queued. A clerk the
        call was ringing at goes back to available.
        """

    @abstractmethod
    async def list_queue(self) -> list[QueuedCall]:
        """All queued calls (offered ones included) in routing order."""

    @abstractmethod
    async def position(self, call_id: str) -> int | None:
        """1-based place of a queued call in routing order, None when not queued."""

    # -- offers --

    @abstractmethod
    async def offer(
        self, call_id: str, clerk_id: str, timeout_s: float | None = None, *, now: float | None = None
    ) -> Offer | None:
        """Atomically reserve a queued, unoffered call for an available clerk holding no offer.

        On success the clerk is ``ringing`` and the offer lasts `timeout_s` (default: the bus's
        offer timeout). None when any condition fails; nothing changes then. Skills and regions
        are not re-checked here: eligibility is policy, applied by `route_once`.
        """

    @abstractmethod
    async def accept_offer(self, call_id: str, clerk_id: str, *, now: float | None = None) -> QueuedCall | None:
        """Atomically take the call: only the offered clerk, only before the deadline.

        On success the call leaves the queue and the clerk is ``in_call``; returns the call.
        None otherwise (not offered to this clerk, withdrawn, or past its deadline).
        """

    @abstractmethod
    async def decline_offer(
        self,
        call_id: str,
        clerk_id: str,
        reason: str,
        *,
        next_status: NextStatus = "not_ready",
        now: float | None = None,
    ) -> bool:
        """Release the offer; the call keeps its place in the queue.

        The clerk goes ``not_ready`` with `reason`, or ``available`` (idle since now, so it goes
        behind clerks who have waited longer). False when the clerk holds no such offer.
        """

    @abstractmethod
    async def expire_offers(self, now: float | None = None) -> list[Offer]:
        """Release every offer whose deadline is <= now; their clerks go ``not_ready``
        (reason ``missed_offer``). Returns the expired offers."""

    @abstractmethod
    async def get_offer(self, call_id: str) -> Offer | None:
        """The offer standing for a call, if any."""

    @abstractmethod
    async def list_offers(self) -> list[Offer]:
        """All standing offers, in no particular order."""

    async def route_once(self, now: float | None = None, *, timeout_s: float | None = None) -> Offer | None:
        """Offer the next call to the best clerk (policy in `signaling.routing`).

        Reads a snapshot, picks a pair, then relies on the atomic `offer`; if another node
        won the race the snapshot is re-read, up to `route_attempts` times. None when no call
        can be offered (or every attempt lost a race: the caller routes again on the next event).
        """
        for attempt in range(1, self._route_attempts + 1):
            clerks = [c for c in await self.list_clerks() if c.status == "available"]
            if not clerks:
                return None  # nobody to offer to: an idle tick never reads the queue
            queue = await self.list_queue()
            offered = {o.call_id for o in await self.list_offers()}
            pair = choose_pair((c for c in queue if c.call_id not in offered), clerks)
            if pair is None:
                return None
            call, clerk = pair
            # The offer's time is read after the snapshot that showed the call and the clerk free,
            # so it is later than the release that freed them (releases read the clock before
            # acting): offer intervals in the event log then never overlap while the bus is right.
            at = self.now(now)
            made = await self.offer(call.call_id, clerk.clerk_id, timeout_s, now=at)
            if made is not None:
                logger.info("offered call %s to clerk %s", call.call_id, clerk.clerk_id)
                return made
            logger.debug("route attempt %d lost a race for %s/%s", attempt, call.call_id, clerk.clerk_id)
        return None

    # -- pub/sub between nodes --

    @abstractmethod
    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        """Send a JSON-able dict to every subscriber of `channel` on every node."""

    @abstractmethod
    async def subscribe(self, channel: str) -> Subscription:
        """Receive the channel's messages published from now on (the subscription is live on return)."""

    # -- session placement --

    @abstractmethod
    async def set_session_node(self, session_id: str, node_id: str) -> None:
        """Record which node hosts a session's media (both ends connect there)."""

    @abstractmethod
    async def get_session_node(self, session_id: str) -> str | None:
        """The node hosting a session, None when unknown."""

    @abstractmethod
    async def clear_session_node(self, session_id: str) -> None:
        """Forget a finished session's placement."""

    # -- lifecycle --

    @abstractmethod
    async def ping(self) -> bool:
        """Readiness: True when the backend answers."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections and end this node's subscriptions; idempotent."""

    def _offer_for(self, call_id: str, clerk_id: str, timeout_s: float | None, now: float | None) -> Offer:
        """The Offer an `offer` call would create (validates its arguments)."""
        check_id("call_id", call_id)
        check_id("clerk_id", clerk_id)
        timeout = self._offer_timeout_s if timeout_s is None else check_ttl("timeout_s", timeout_s)
        at = self.now(now)
        return Offer(call_id=call_id, clerk_id=clerk_id, offered_at=at, deadline=at + timeout)
