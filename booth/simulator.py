"""A simulated booth: asks for calls over the real protocol, like a kiosk would.

`cloudseat booth --simulate` runs it; tests and benchmarks call `run_booth`.
Imports only the protocol client, so it runs on a light booth box.  With
``media=True`` it also connects an aiortc peer to the call's media hub after
`call.connected` (face camera, document camera, microphone, all synthetic;
see `signaling.protocol_media`, imported only then), receives the clerk's
camera and voice, and reports per call what it sent and received.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from signaling.protocol_client import ProtocolClient, ReplyError

logger = logging.getLogger(__name__)


@dataclass
class BoothSummary:
    """What one simulated booth did; printed as the last JSON line."""

    calls: int = 0
    answered: int = 0
    abandoned: int = 0
    failed: int = 0
    wait_s: list[float] = field(default_factory=list)
    call_ids: list[str] = field(default_factory=list)
    media: list[dict[str, Any]] = field(default_factory=list)  # per answered call, with media=True
    media_failed: int = 0

    @property
    def all_answered(self) -> bool:
        return self.calls > 0 and self.answered == self.calls and self.failed == 0

    @property
    def media_ok(self) -> bool:
        """Every answered call got the clerk's frames, readable and in order."""
        return self.media_failed == 0 and len(self.media) == self.answered and all(m["ok"] for m in self.media)

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("call_ids")
        return json.dumps(data)


@dataclass(frozen=True)
class BoothPlan:
    """How the simulated resident behaves."""

    item_code: str
    calls: int = 1
    priority: bool = False
    # Chance that the resident hangs up before answer, after a wait drawn from [0, abandon_after_s].
    abandon_rate: float = 0.0
    abandon_after_s: float = 2.0
    answer_timeout_s: float = 120.0  # a call not answered by then counts as failed
    end_timeout_s: float = 600.0
    seed: int | None = None


async def run_booth(base_url: str, token: str, plan: BoothPlan, *, media: bool = False,
                    on_media: Callable[[Any], None] | None = None) -> BoothSummary:
    """Make `plan.calls` calls one after the other; return what happened.

    With `media`, each answered call also publishes synthetic media to the hub;
    `on_media(peer)` is called with each connected `MediaPeer` (tests watch it).
    """
    rng = random.Random(plan.seed)
    summary = BoothSummary()
    client = await ProtocolClient.connect(base_url, "booth", token=token)
    try:
        for _ in range(plan.calls):
            summary.calls += 1
            await _one_call(client, plan, rng, summary, media=media, on_media=on_media)
    finally:
        await client.close()
    return summary


async def _one_call(client: ProtocolClient, plan: BoothPlan, rng: random.Random, summary: BoothSummary, *,
                    media: bool = False, on_media: Callable[[Any], None] | None = None) -> None:
    started = time.monotonic()
    try:
        ack = await client.request("call.request", item_code=plan.item_code, priority=plan.priority)
    except ReplyError as exc:
        logger.warning("call refused: %s", exc)
        summary.failed += 1
        return
    call_id = ack["call_id"]
    summary.call_ids.append(call_id)
    abandon = rng.random() < plan.abandon_rate
    patience = rng.uniform(0, plan.abandon_after_s) if abandon else plan.answer_timeout_s
    try:
        await client.wait_for("call.connected", lambda m: m["call_id"] == call_id, timeout_s=patience)
    except asyncio.TimeoutError:
        with contextlib.suppress(ReplyError):
            cancelled = await client.request("call.cancel", call_id=call_id)
            if cancelled.get("status") == "abandoned":
                summary.abandoned += 1
                return
        # Answered just as we hung up: the clerk ends it as usual.
        if not abandon:
            summary.failed += 1
            return
    summary.wait_s.append(round(time.monotonic() - started, 3))
    peer = await _connect_media(client, call_id, summary, on_media) if media else None
    try:
        await client.wait_for("call.ended", lambda m: m["call_id"] == call_id, timeout_s=plan.end_timeout_s)
        summary.answered += 1
    except asyncio.TimeoutError:
        summary.failed += 1
    finally:
        if peer is not None:
            summary.media.append({"call_id": call_id, "ok": peer.ok, **peer.report()})
            await peer.close()


async def _connect_media(client: ProtocolClient, call_id: str, summary: BoothSummary,
                         on_media: Callable[[Any], None] | None) -> Any:
    """Publish face, document and microphone; receive the clerk's camera and voice."""
    from signaling.protocol_media import booth_tracks, open_peer

    peer = await open_peer(client, call_id, publish=booth_tracks(), receive=("video", "audio"))
    if peer is None:
        summary.media_failed += 1
    elif on_media is not None:
        on_media(peer)
    return peer
