"""One live process per node id on a Redis.

Two nodes started with the same `CLOUDSEAT_NODE_ID` would read each other's pub/sub channel and
presence entries, so their calls hang without a word. A node holds a claim key in Redis whose
value is a nonce of its own process, refreshed every third of its TTL and deleted on a clean
stop. A second process with the same id refuses to start. After a `kill -9` the claim lapses
within `CLAIM_TTL_S`, so `cloudseat serve` waits that long for it before refusing: a restarted
node comes back, a duplicate is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import redis
import redis.asyncio as aioredis

logger = logging.getLogger(__name__)

CLAIM_TTL_S = 10.0
RETRY_S = 0.5

# Take the claim when it is free or already ours (a refresh); never from a live other process.
_CLAIM = """
local held = redis.call('GET', KEYS[1])
if held == false or held == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class NodeIdTaken(RuntimeError):
    """Another live process holds this node id."""

    def __init__(self, node_id: str) -> None:
        super().__init__(f"CLOUDSEAT_NODE_ID: node id {node_id!r} is already running on this Redis; "
                         "give every node its own id")
        self.node_id = node_id


def claim_key(prefix: str, node_id: str) -> str:
    return f"{prefix}node:{node_id}:claim"


def claim_sync(redis_url: str, prefix: str, node_id: str, nonce: str, *, wait_s: float = CLAIM_TTL_S) -> None:
    """Take the claim before the server starts, waiting up to `wait_s` for a crashed holder's to lapse."""
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    deadline = time.monotonic() + wait_s
    try:
        while not client.eval(_CLAIM, 1, claim_key(prefix, node_id), nonce, int(CLAIM_TTL_S * 1000)):
            if time.monotonic() >= deadline:
                raise NodeIdTaken(node_id)
            time.sleep(RETRY_S)  # the lapse is Redis's clock: nothing to wait on but time
    except (redis.RedisError, OSError) as exc:
        # Redis away: start anyway (`/readyz` says 503); the running node takes the claim when it is back.
        logger.warning("cannot check the node id claim: %s", exc)
    finally:
        client.close()


class NodeClaim:
    """The running node's claim: taken at start, refreshed while it runs, released on a clean stop."""

    def __init__(self, redis_url: str, prefix: str, node_id: str, nonce: str) -> None:
        self._client = aioredis.Redis.from_url(redis_url)
        self._key, self._nonce, self._node_id = claim_key(prefix, node_id), nonce, node_id
        self._task: asyncio.Task[None] | None = None

    async def _claim(self) -> bool:
        return bool(await self._client.eval(_CLAIM, 1, self._key, self._nonce, int(CLAIM_TTL_S * 1000)))

    async def start(self) -> None:
        try:
            taken = not await self._claim()
        except (redis.RedisError, OSError) as exc:  # Redis away at start: the refresh takes the claim later
            logger.warning("cannot take the node id claim yet: %s", exc)
            taken = False
        if taken:
            await self._client.aclose()
            raise NodeIdTaken(self._node_id)
        self._task = asyncio.create_task(self._refresh(), name="node-claim")

    async def _refresh(self) -> None:
        warned = False
        while True:
            await asyncio.sleep(CLAIM_TTL_S / 3)
            try:
                if not await self._claim():
                    logger.error("node id %s was taken by another process while Redis lost our claim",
                                 self._node_id)
                warned = False
            except (redis.RedisError, OSError) as exc:
                if not warned:  # Redis away: /readyz says so; the claim is re-taken when it returns
                    logger.warning("cannot refresh the node id claim: %s", exc)
                    warned = True

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(redis.RedisError, OSError):
            await self._client.eval(_RELEASE, 1, self._key, self._nonce)
        await self._client.aclose()
