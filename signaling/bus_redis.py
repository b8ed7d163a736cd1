"""Redis bus for several `cloudseat serve` nodes sharing presence, queue, offers and pub/sub.

Every step that must be atomic across nodes (enqueue, dequeue, offer, accept, decline, expire,
set_clerk, touch) is one Lua script, registered once per bus and run with EVALSHA. Reads that
must agree with each other use MULTI pipelines.

Keys, all under the configured prefix (put a hash tag in it, ``{cloudseat}:``, if you ever run
Redis Cluster: the scripts build clerk keys from the prefix):

* ``queue``          sorted set call_id -> score (priority, then enqueued_at; see `queue_score`)
* ``calls``          hash call_id -> call JSON (queued calls, offered ones included)
* ``offers``         hash call_id -> offer JSON
* ``offer_deadlines`` sorted set call_id -> deadline
* ``clerks``         set of clerk ids; ``clerk:<id>`` hash with status, skills, regions,
  idle_since, not_ready_reason ('' for none) and offer (the call id it rings for, '' for none)
* ``available``      sorted set clerk_id -> idle_since of the clerks that are available with no
  offer: the routing script's index, kept by every script that changes a clerk's status
* ``presence:<kind>:<id>`` presence JSON with a Redis TTL (a dead node's entries vanish),
  ``presence_idx:<kind>`` sorted set id -> expiry on the bus clock (lists, and lets tests
  drive expiry with an injected clock)
* ``session:<id>``   node id hosting the session's media
* channels are ``chan:<name>``

Floats travel as Python ``repr`` strings and are stored as such (never through Lua's cjson,
which would round them), so times round-trip exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

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
    call_from_json,
    call_to_json,
    check_id,
    check_kind,
    check_next_status,
    check_settable,
    check_ttl,
    encode_message,
    offer_from_json,
    offer_to_json,
    presence_state,
)
from signaling.routing import ClerkState, QueuedCall

logger = logging.getLogger(__name__)

SUBSCRIBE_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 5.0
PING_TIMEOUT_S = 2.0
_LISTEN_POLL_S = 1.0
_LISTEN_BACKOFF_S = 0.5
# Priority bands are this far apart in the queue score; enqueued_at must stay below it.
_PRIORITY_BAND = 1e10
_MAX_PRIORITY = 2
# Queued calls the routing script reads at a time, in routing order.
ROUTE_PAGE = 64


def queue_score(call: QueuedCall) -> float:
    """Sorted-set score: lower is served first; priority bands, then enqueued_at.

    Doubles hold ~16 significant digits, so enqueued_at keeps microsecond resolution; ties at
    equal score fall back to call_id order (Redis orders equal scores by member), as in
    `signaling.routing.call_sort_key`.
    """
    if not 0 <= call.enqueued_at < _PRIORITY_BAND:
        raise ValueError(f"enqueued_at must be in [0, {_PRIORITY_BAND:g}) seconds, got {call.enqueued_at}")
    return (_MAX_PRIORITY - call.priority) * _PRIORITY_BAND + call.enqueued_at


# KEYS: queue, calls, answered. ARGV: call_id, score, call_json, mode ('restore' or 'enqueue').
# Returns the stored call JSON, or false when restoring a call a clerk has taken (see Bus.restore).
_ENQUEUE = """
if ARGV[4] == 'restore' then
  if redis.call('ZSCORE', KEYS[3], ARGV[1]) then return false end
else
  redis.call('ZREM', KEYS[3], ARGV[1])
end
local existing = redis.call('HGET', KEYS[2], ARGV[1])
if existing then return existing end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return ARGV[3]
"""

# KEYS: queue, calls, offers, offer_deadlines, available. ARGV: call_id, clerk key prefix.
# Returns {call JSON, withdrawn offer JSON or ''} or false; a clerk the call was ringing at goes
# back to available.
_DEQUEUE = """
local existing = redis.call('HGET', KEYS[2], ARGV[1])
if not existing then return false end
local offer = redis.call('HGET', KEYS[3], ARGV[1])
if offer then
  local clerk_id = cjson.decode(offer)['clerk_id']
  local clerk_key = ARGV[2] .. clerk_id
  if redis.call('HGET', clerk_key, 'offer') == ARGV[1] then
    redis.call('HSET', clerk_key, 'status', 'available', 'offer', '')
    redis.call('ZADD', KEYS[5], redis.call('HGET', clerk_key, 'idle_since'), clerk_id)
  end
  redis.call('HDEL', KEYS[3], ARGV[1])
  redis.call('ZREM', KEYS[4], ARGV[1])
end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
return {existing, offer or ''}
"""

# KEYS: queue, offers, offer_deadlines, clerk key, available. ARGV: call_id, offer_json, deadline, clerk_id.
_OFFER = """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
local clerk = redis.call('HMGET', KEYS[4], 'status', 'offer')
if clerk[1] ~= 'available' then return 0 end
if clerk[2] and clerk[2] ~= '' then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[4], 'status', 'ringing', 'offer', ARGV[1], 'not_ready_reason', '')
redis.call('ZREM', KEYS[5], ARGV[4])
return 1
"""

# KEYS: queue, calls, offers, offer_deadlines, clerk key, answered. ARGV: call_id, now, clerk_id, memory_s.
# The standing offer must be this clerk's too (a stale `offer` field never takes another's call).
# The call is remembered as answered (for `restore`), and memories older than memory_s dropped.
_ACCEPT = """
if redis.call('HGET', KEYS[5], 'offer') ~= ARGV[1] then return false end
local deadline = redis.call('ZSCORE', KEYS[4], ARGV[1])
local held = redis.call('HGET', KEYS[3], ARGV[1])
if not deadline or not held then return false end
if cjson.decode(held)['clerk_id'] ~= ARGV[3] then return false end
if tonumber(deadline) <= tonumber(ARGV[2]) then return false end
local call = redis.call('HGET', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('HSET', KEYS[5], 'status', 'in_call', 'offer', '', 'not_ready_reason', '')
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', tonumber(ARGV[2]) - tonumber(ARGV[4]))
redis.call('ZADD', KEYS[6], ARGV[2], ARGV[1])
return call
"""

# KEYS: offers, offer_deadlines, clerk key, available. ARGV: call_id, next_status, reason, now, clerk_id.
_DECLINE = """
if redis.call('HGET', KEYS[3], 'offer') ~= ARGV[1] then return 0 end
local held = redis.call('HGET', KEYS[1], ARGV[1])
if not held or cjson.decode(held)['clerk_id'] ~= ARGV[5] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[2] == 'available' then
  redis.call('HSET', KEYS[3], 'status', 'available', 'offer', '', 'not_ready_reason', '', 'idle_since', ARGV[4])
  redis.call('ZADD', KEYS[4], ARGV[4], ARGV[5])
else
  redis.call('HSET', KEYS[3], 'status', 'not_ready', 'offer', '', 'not_ready_reason', ARGV[3])
  redis.call('ZREM', KEYS[4], ARGV[5])
end
return 1
"""

# KEYS: offers, offer_deadlines, available. ARGV: now, clerk key prefix, reason. Returns expired offer JSONs.
_EXPIRE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
local expired = {}
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[2], id)
  local offer = redis.call('HGET', KEYS[1], id)
  if offer then
    redis.call('HDEL', KEYS[1], id)
    local clerk_id = cjson.decode(offer)['clerk_id']
    local clerk_key = ARGV[2] .. clerk_id
    if redis.call('HGET', clerk_key, 'offer') == id then
      redis.call('HSET', clerk_key, 'status', 'not_ready', 'offer', '', 'not_ready_reason', ARGV[3])
      redis.call('ZREM', KEYS[3], clerk_id)
    end
    table.insert(expired, offer)
  end
end
return expired
"""

# KEYS: clerk key, clerks, offers, offer_deadlines, available.
# ARGV: clerk_id, status, skills_json, regions_json, idle_since, not_ready_reason.
# Returns the call id of a withdrawn offer or ''.
_SET_CLERK = """
local held = redis.call('HGET', KEYS[1], 'offer')
if held and held ~= '' then
  redis.call('HDEL', KEYS[3], held)
  redis.call('ZREM', KEYS[4], held)
else
  held = ''
end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'skills', ARGV[3], 'regions', ARGV[4],
  'idle_since', ARGV[5], 'not_ready_reason', ARGV[6], 'offer', '')
redis.call('SADD', KEYS[2], ARGV[1])
if ARGV[2] == 'available' then
  redis.call('ZADD', KEYS[5], ARGV[5], ARGV[1])
else
  redis.call('ZREM', KEYS[5], ARGV[1])
end
return held
"""

# The whole of `route_once` in one script: snapshot, policy and offer are one atomic step, so no
# node loses a race and the cost does not grow with the queue (it is read a page at a time, in
# routing order, and usually the first call is served).  The policy is `signaling.routing`'s,
# transcribed: available clerks without an offer (the ``available`` index, each re-checked),
# longest idle first (ties by id, as Redis orders equal scores); the first call
# in queue order, not already offered, with an eligible clerk (preferred clerk, skill, region or
# cross-region).  The bus contract tests run the same cases against this and the Python policy.
# KEYS: queue, calls, offers, offer_deadlines, available.
# ARGV: clerk key prefix, offered_at ('' = Redis TIME), deadline ('' = offered_at + timeout), timeout, page size.
# Returns the offer JSON or false.
_ROUTE = """
local idle_order = redis.call('ZRANGE', KEYS[5], 0, -1)
if #idle_order == 0 then return false end
local clerks = {}
local function clerk_at(i)
  local clerk = clerks[i]
  if clerk == nil then
    local id = idle_order[i]
    local h = redis.call('HMGET', ARGV[1] .. id, 'status', 'offer', 'skills', 'regions')
    clerk = false
    if h[1] == 'available' and (not h[2] or h[2] == '') then
      clerk = {id = id, skills = {}, regions = {}}
      for _, v in ipairs(cjson.decode(h[3])) do clerk.skills[v] = true end
      for _, v in ipairs(cjson.decode(h[4])) do clerk.regions[v] = true end
    end
    clerks[i] = clerk
  end
  return clerk
end
local page = tonumber(ARGV[5])
local start = 0
while true do
  local ids = redis.call('ZRANGE', KEYS[1], start, start + page - 1)
  if #ids == 0 then return false end
  for _, call_id in ipairs(ids) do
    local text = redis.call('HGET', KEYS[2], call_id)
    if text and redis.call('HEXISTS', KEYS[3], call_id) == 0 then
      local call = cjson.decode(text)
      local pinned = call['preferred_clerk']
      if pinned == cjson.null then pinned = nil end
      for i = 1, #idle_order do
        local clerk = clerk_at(i)
        if clerk and (pinned == nil or pinned == clerk.id) and clerk.skills[call['skill']]
            and (call['cross_region_allowed'] or clerk.regions[call['region']]) then
          local at, deadline = ARGV[2], ARGV[3]
          if at == '' then
            local t = redis.call('TIME')
            at = string.format('%d.%06d', t[1], t[2])
            deadline = string.format('%.6f', tonumber(at) + tonumber(ARGV[4]))
          end
          local offer = '{"call_id": ' .. cjson.encode(call_id) .. ', "clerk_id": ' .. cjson.encode(clerk.id)
            .. ', "offered_at": ' .. at .. ', "deadline": ' .. deadline .. '}'
          redis.call('HSET', KEYS[3], call_id, offer)
          redis.call('ZADD', KEYS[4], deadline, call_id)
          redis.call('HSET', ARGV[1] .. clerk.id, 'status', 'ringing', 'offer', call_id, 'not_ready_reason', '')
          redis.call('ZREM', KEYS[5], clerk.id)
          return offer
        end
      end
    end
  end
  start = start + page
end
"""

# KEYS: presence key, presence index. ARGV: id, now, new expiry, ttl_ms.
_TOUCH = """
local expiry = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not expiry or tonumber(expiry) <= tonumber(ARGV[2]) then return 0 end
if redis.call('PEXPIRE', KEYS[1], ARGV[4]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
"""


# KEYS: presence key, presence index; ARGV: id, now, this node.
_RELEASE_PRESENCE = """
local expiry = redis.call('ZSCORE', KEYS[2], ARGV[1])
local text = redis.call('GET', KEYS[1])
if text and expiry and tonumber(expiry) > tonumber(ARGV[2]) then
  local ok, state = pcall(cjson.decode, text)
  if ok and type(state) == 'table' and state['node'] ~= nil and state['node'] ~= cjson.null
     and state['node'] ~= ARGV[3] then
    return 0
  end
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""


def _clerk_fields(clerk: ClerkState) -> list[str]:
    return [
        clerk.status,
        json.dumps(sorted(clerk.skills)),
        json.dumps(sorted(clerk.regions)),
        repr(float(clerk.idle_since)),
        clerk.not_ready_reason or "",
    ]


def _clerk_from_hash(clerk_id: str, data: dict[str, str]) -> ClerkState:
    return ClerkState(
        clerk_id=clerk_id,
        status=data["status"],
        skills=frozenset(json.loads(data["skills"])),
        regions=frozenset(json.loads(data["regions"])),
        idle_since=float(data["idle_since"]),
        not_ready_reason=data.get("not_ready_reason") or None,
    )


def _ttl_ms(ttl_s: float) -> int:
    return max(1, math.ceil(ttl_s * 1000))


class RedisBus(Bus):
    """The bus over Redis, shared by every node using the same URL and key prefix."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "cloudseat:",
        node_id: str,
        clock: Clock | None = None,
        offer_timeout_s: float = DEFAULT_OFFER_TIMEOUT_S,
        route_attempts: int = DEFAULT_ROUTE_ATTEMPTS,
    ) -> None:
        super().__init__(node_id, clock=clock, offer_timeout_s=offer_timeout_s, route_attempts=route_attempts)
        check_id("url", url)
        if not isinstance(prefix, str):
            raise ValueError(f"prefix must be a string, got {prefix!r}")
        self._prefix = prefix
        # socket_timeout=None: with a socket timeout redis-py wraps every write in
        # asyncio.wait_for, which on Python 3.11 swallows a cancellation that arrives as the
        # write completes (CPython gh-86296), so a cancelled task keeps running its loop.
        # Dead peers are found by TCP keepalive and readiness `ping` carries its own timeout.
        # After a Redis restart the pooled connections are dead; one quick retry on a fresh
        # connection turns that into a short delay instead of a failed request.  (A script whose
        # reply was lost may then run twice; each script's own checks make the second run a no-op.)
        self._redis: aioredis.Redis = aioredis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=None,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_keepalive=True,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 3),
            retry_on_error=[RedisConnectionError],
        )
        self._enqueue = self._redis.register_script(_ENQUEUE)
        self._dequeue = self._redis.register_script(_DEQUEUE)
        self._offer = self._redis.register_script(_OFFER)
        self._accept = self._redis.register_script(_ACCEPT)
        self._decline = self._redis.register_script(_DECLINE)
        self._expire = self._redis.register_script(_EXPIRE)
        self._set_clerk = self._redis.register_script(_SET_CLERK)
        self._touch = self._redis.register_script(_TOUCH)
        self._release_presence = self._redis.register_script(_RELEASE_PRESENCE)
        self._route = self._redis.register_script(_ROUTE)
        # With the wall clock, offers take Redis' TIME inside the routing script (see route_once).
        self._wall_clock = clock is None
        self._pubsub: Any = None  # redis.asyncio.client.PubSub, created on first subscribe
        self._listener: asyncio.Task[None] | None = None
        self._sub_lock = asyncio.Lock()
        self._subscribers: dict[str, set[Subscription]] = {}
        self._confirmations: dict[str, asyncio.Event] = {}
        self._closed = False

    def _key(self, name: str) -> str:
        return self._prefix + name

    def _clerk_key(self, clerk_id: str) -> str:
        return self._key("clerk:" + clerk_id)

    def _queue_keys(self) -> list[str]:
        return [self._key("queue"), self._key("calls"), self._key("offers"), self._key("offer_deadlines")]

    # -- presence --

    async def set_presence(self, kind: PresenceKind, id: str, state: dict[str, Any], ttl_s: float) -> None:
        kind = check_kind(kind)
        check_id("id", id)
        ttl = check_ttl("ttl_s", ttl_s)
        text = encode_message(presence_state(state, self.node_id))
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key(f"presence:{kind}:{id}"), text, px=_ttl_ms(ttl))
            pipe.zadd(self._key(f"presence_idx:{kind}"), {id: self.now() + ttl})
            await pipe.execute()

    async def get_presence(self, kind: PresenceKind, id: str) -> dict[str, Any] | None:
        kind = check_kind(kind)
        check_id("id", id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zscore(self._key(f"presence_idx:{kind}"), id)
            pipe.get(self._key(f"presence:{kind}:{id}"))
            expiry, text = await pipe.execute()
        if expiry is None or text is None or float(expiry) <= self.now():
            return None
        state: dict[str, Any] = json.loads(text)
        return state

    async def list_presence(self, kind: PresenceKind) -> dict[str, dict[str, Any]]:
        kind = check_kind(kind)
        index = self._key(f"presence_idx:{kind}")
        now = self.now()
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(index, "-inf", now)
            pipe.zrange(index, 0, -1)
            _, ids = await pipe.execute()
        if not ids:
            return {}
        texts = await self._redis.mget([self._key(f"presence:{kind}:{i}") for i in ids])
        return {i: json.loads(t) for i, t in zip(ids, texts, strict=True) if t is not None}

    async def touch(self, kind: PresenceKind, id: str, ttl_s: float) -> bool:
        kind = check_kind(kind)
        check_id("id", id)
        ttl = check_ttl("ttl_s", ttl_s)
        now = self.now()
        keys = [self._key(f"presence:{kind}:{id}"), self._key(f"presence_idx:{kind}")]
        return bool(await self._touch(keys=keys, args=[id, now, now + ttl, _ttl_ms(ttl)]))

    async def touch_many(self, kind: PresenceKind, ids: list[str], ttl_s: float) -> list[bool]:
        """All the heartbeats of a sweep in one pipelined round trip."""
        if not ids:
            return []
        check_kind(kind)
        ttl = check_ttl("ttl_s", ttl_s)
        now = self.now()
        async with self._redis.pipeline(transaction=False) as pipe:
            for ident in ids:
                keys = [self._key(f"presence:{kind}:{check_id('id', ident)}"), self._key(f"presence_idx:{kind}")]
                await self._touch(keys=keys, args=[ident, now, now + ttl, _ttl_ms(ttl)], client=pipe)
            results = await pipe.execute()
        return [bool(r) for r in results]

    async def remove_presence(self, kind: PresenceKind, id: str) -> None:
        kind = check_kind(kind)
        check_id("id", id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._key(f"presence:{kind}:{id}"))
            pipe.zrem(self._key(f"presence_idx:{kind}"), id)
            await pipe.execute()

    async def release_presence(self, kind: PresenceKind, id: str) -> bool:
        kind = check_kind(kind)
        check_id("id", id)
        keys = [self._key(f"presence:{kind}:{id}"), self._key(f"presence_idx:{kind}")]
        return bool(await self._release_presence(keys=keys, args=[id, self.now(), self.node_id]))

    # -- clerks --

    async def set_clerk(self, clerk: ClerkState) -> str | None:
        check_settable(clerk)
        keys = [self._clerk_key(clerk.clerk_id), self._key("clerks"), self._key("offers"), self._key("offer_deadlines"),
                self._key("available")]
        held = await self._set_clerk(keys=keys, args=[clerk.clerk_id, *_clerk_fields(clerk)])
        if held:
            logger.info(
                "clerk %s set to %s while ringing: offer of call %s withdrawn", clerk.clerk_id, clerk.status, held
            )
        return held or None

    async def get_clerk(self, clerk_id: str) -> ClerkState | None:
        check_id("clerk_id", clerk_id)
        data = await self._redis.hgetall(self._clerk_key(clerk_id))
        return _clerk_from_hash(clerk_id, data) if data else None

    async def list_clerks(self) -> list[ClerkState]:
        ids = sorted(await self._redis.smembers(self._key("clerks")))
        if not ids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for clerk_id in ids:
                pipe.hgetall(self._clerk_key(clerk_id))
            hashes = await pipe.execute()
        return [_clerk_from_hash(i, h) for i, h in zip(ids, hashes, strict=True) if h]

    # -- queue --

    async def enqueue(self, call: QueuedCall) -> QueuedCall:
        stored = await self._store_call(call, "enqueue")
        assert stored is not None  # only a restore is ever refused
        return stored

    async def restore(self, call: QueuedCall) -> QueuedCall | None:
        return await self._store_call(call, "restore")

    async def _store_call(self, call: QueuedCall, mode: str) -> QueuedCall | None:
        if not isinstance(call, QueuedCall):
            raise ValueError(f"expected a QueuedCall, got {type(call).__name__}")
        stored = await self._enqueue(
            keys=[*self._queue_keys()[:2], self._key("answered")],
            args=[call.call_id, queue_score(call), call_to_json(call), mode],
        )
        return None if stored is None else call_from_json(stored)

    async def dequeue(self, call_id: str, reason: str) -> Dequeued | None:
        check_id("call_id", call_id)
        stored = await self._dequeue(keys=[*self._queue_keys(), self._key("available")],
                                     args=[call_id, self._key("clerk:")])
        if stored is None:
            return None
        logger.info("call %s dequeued: %s", call_id, reason)
        call_text, offer_text = stored
        return Dequeued(call_from_json(call_text), offer_from_json(offer_text) if offer_text else None)

    async def list_queue(self) -> list[QueuedCall]:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrange(self._key("queue"), 0, -1)
            pipe.hgetall(self._key("calls"))
            ids, calls = await pipe.execute()
        return [call_from_json(calls[i]) for i in ids if i in calls]

    async def position(self, call_id: str) -> int | None:
        rank = await self._redis.zrank(self._key("queue"), check_id("call_id", call_id))
        return None if rank is None else int(rank) + 1

    # -- offers --

    async def offer(
        self, call_id: str, clerk_id: str, timeout_s: float | None = None, *, now: float | None = None
    ) -> Offer | None:
        made = self._offer_for(call_id, clerk_id, timeout_s, now)
        keys = [self._key("queue"), self._key("offers"), self._key("offer_deadlines"), self._clerk_key(clerk_id),
                self._key("available")]
        ok = await self._offer(keys=keys, args=[call_id, offer_to_json(made), made.deadline, clerk_id])
        return made if ok else None

    async def accept_offer(self, call_id: str, clerk_id: str, *, now: float | None = None) -> QueuedCall | None:
        check_id("call_id", call_id)
        check_id("clerk_id", clerk_id)
        keys = [*self._queue_keys(), self._clerk_key(clerk_id), self._key("answered")]
        stored = await self._accept(keys=keys, args=[call_id, self.now(now), clerk_id, ANSWERED_MEMORY_S])
        return None if stored is None else call_from_json(stored)

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
        keys = [self._key("offers"), self._key("offer_deadlines"), self._clerk_key(clerk_id), self._key("available")]
        done = bool(await self._decline(keys=keys, args=[call_id, status, reason, self.now(now), clerk_id]))
        if done:
            logger.info("clerk %s declined call %s: %s", clerk_id, call_id, reason)
        return done

    async def expire_offers(self, now: float | None = None) -> list[Offer]:
        keys = [self._key("offers"), self._key("offer_deadlines"), self._key("available")]
        texts = await self._expire(keys=keys, args=[self.now(now), self._key("clerk:"), MISSED_OFFER])
        expired = sorted((offer_from_json(t) for t in texts), key=lambda o: (o.deadline, o.call_id))
        for offer in expired:
            logger.info("offer of call %s to clerk %s expired", offer.call_id, offer.clerk_id)
        return expired

    async def get_offer(self, call_id: str) -> Offer | None:
        text = await self._redis.hget(self._key("offers"), check_id("call_id", call_id))
        return None if text is None else offer_from_json(text)

    async def list_offers(self) -> list[Offer]:
        return [offer_from_json(t) for t in await self._redis.hvals(self._key("offers"))]

    async def route_once(self, now: float | None = None, *, timeout_s: float | None = None) -> Offer | None:
        """`Bus.route_once` as one Lua script (`_ROUTE`): same policy, no race to retry.

        On the wall clock the offer's time is Redis' TIME when the script runs, so it is later than
        any release the script's snapshot already reflects (releases read their clock before
        acting): offer intervals in the event log never overlap.  An injected clock (tests) or an
        explicit `now` is used as given.
        """
        timeout = self._offer_timeout_s if timeout_s is None else check_ttl("timeout_s", timeout_s)
        if now is None and self._wall_clock:
            at, deadline = "", ""
        else:
            at_s = self.now(now)
            at, deadline = repr(at_s), repr(at_s + timeout)
        keys = [*self._queue_keys(), self._key("available")]
        text = await self._route(keys=keys, args=[self._key("clerk:"), at, deadline, repr(timeout), ROUTE_PAGE])
        if text is None:
            return None
        offer = offer_from_json(text)
        logger.info("offered call %s to clerk %s", offer.call_id, offer.clerk_id)
        return offer

    # -- pub/sub --

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        check_id("channel", channel)
        await self._redis.publish(self._key("chan:" + channel), encode_message(message))

    async def subscribe(self, channel: str) -> Subscription:
        check_id("channel", channel)
        if self._closed:
            raise RuntimeError("bus is closed")
        full = self._key("chan:" + channel)
        sub = Subscription(channel, self._unsubscribe)
        async with self._sub_lock:
            subs = self._subscribers.setdefault(full, set())
            subs.add(sub)
            if len(subs) > 1:
                return sub  # channel already live on this node
            confirmed = asyncio.Event()
            self._confirmations[full] = confirmed
            try:
                if self._pubsub is None:
                    self._pubsub = self._redis.pubsub()
                await self._pubsub.subscribe(full)
                if self._listener is None:
                    self._listener = asyncio.create_task(self._listen(), name=f"bus-listener-{self.node_id}")
                await asyncio.wait_for(confirmed.wait(), SUBSCRIBE_TIMEOUT_S)
            except BaseException:
                subs.discard(sub)
                if not subs:
                    del self._subscribers[full]
                self._confirmations.pop(full, None)
                sub.end()
                raise
        return sub

    async def _unsubscribe(self, sub: Subscription) -> None:
        full = self._key("chan:" + sub.channel)
        async with self._sub_lock:
            subs = self._subscribers.get(full)
            if subs is None:
                return
            subs.discard(sub)
            if subs:
                return
            del self._subscribers[full]
            if self._pubsub is not None and not self._closed:
                try:
                    await self._pubsub.unsubscribe(full)
                except RedisError:
                    logger.warning("unsubscribe from %s failed", full, exc_info=True)

    async def _listen(self) -> None:
        """Read the pub/sub connection and fan messages out to local subscribers."""
        while True:
            try:
                message = await self._pubsub.get_message(timeout=_LISTEN_POLL_S)
            except asyncio.CancelledError:
                raise
            except Exception:  # keep listening: redis-py reconnects and resubscribes
                logger.warning("pub/sub listener error on node %s", self.node_id, exc_info=True)
                await asyncio.sleep(_LISTEN_BACKOFF_S)
                continue
            if message is None:
                continue
            kind, channel = message.get("type"), message.get("channel")
            if kind == "subscribe":
                confirmed = self._confirmations.pop(channel, None)
                if confirmed is not None:
                    confirmed.set()
            elif kind == "message":
                try:
                    data = json.loads(message["data"])
                except (TypeError, json.JSONDecodeError):
                    logger.warning("dropped a non-JSON message on %s", channel)
                    continue
                if not isinstance(data, dict):
                    logger.warning("dropped a non-object message on %s", channel)
                    continue
                for i, sub in enumerate(list(self._subscribers.get(channel, ()))):
                    # each subscriber gets its own copy, as in MemoryBus
                    sub.deliver(data if i == 0 else json.loads(message["data"]))

    # -- sessions --

    async def set_session_node(self, session_id: str, node_id: str) -> None:
        await self._redis.set(self._key("session:" + check_id("session_id", session_id)), check_id("node_id", node_id))

    async def get_session_node(self, session_id: str) -> str | None:
        node: str | None = await self._redis.get(self._key("session:" + check_id("session_id", session_id)))
        return node

    async def clear_session_node(self, session_id: str) -> None:
        await self._redis.delete(self._key("session:" + check_id("session_id", session_id)))

    # -- lifecycle --

    async def ping(self) -> bool:
        if self._closed:
            return False
        try:
            async with asyncio.timeout(PING_TIMEOUT_S):
                return bool(await self._redis.ping())
        except (RedisError, OSError, TimeoutError):
            logger.warning("redis ping failed", exc_info=True)
            return False

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for subs in list(self._subscribers.values()):
            for sub in list(subs):
                sub.end()
        self._subscribers.clear()
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        if self._pubsub is not None:
            await self._pubsub.aclose()
            self._pubsub = None
        await self._redis.aclose()
