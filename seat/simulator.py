"""A simulated clerk: takes offers over the real protocol and serves the calls.

`cloudseat seat --simulate` runs it; tests and benchmarks call `run_seat`.
With ``media=True`` each accepted call also connects an aiortc peer to the
hub (synthetic camera and microphone) and receives the booth's face camera,
document camera and voice (see `signaling.protocol_media`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from signaling.protocol_client import ProtocolClient, ReplyError, login_cookie

logger = logging.getLogger(__name__)


@dataclass
class SeatSummary:
    offers: int = 0
    answered: int = 0
    missed: int = 0
    lost: int = 0  # accepted too late: the offer was gone
    media: list[dict[str, Any]] = field(default_factory=list)  # per answered call, with media=True
    media_failed: int = 0

    @property
    def media_ok(self) -> bool:
        """Every answered call got the booth's frames, readable and in order."""
        return self.media_failed == 0 and len(self.media) == self.answered and all(m["ok"] for m in self.media)

    def to_json(self) -> str:
        return json.dumps(asdict(self))


@dataclass(frozen=True)
class SeatPlan:
    answer_after_s: float = 0.0
    handle_s: float = 1.0
    jitter: float = 0.5  # answer and handle times vary by up to this fraction
    calls: int | None = None  # stop after this many answered calls (None: until stopped)
    seed: int | None = None


async def run_seat(base_url: str, username: str, password: str, plan: SeatPlan,
                   stop: asyncio.Event | None = None, ready: asyncio.Event | None = None, *,
                   media: bool = False, on_media: Callable[[Any], None] | None = None) -> SeatSummary:
    """Serve offers until `stop` is set or `plan.calls` calls were handled; set `ready` once available.

    With `media`, each call also publishes synthetic media to the hub; `on_media(peer)`
    is called with each connected `MediaPeer`.
    """
    rng = random.Random(plan.seed)
    summary = SeatSummary()
    stop = stop or asyncio.Event()
    cookie = await asyncio.to_thread(login_cookie, base_url, username, password)
    client = await ProtocolClient.connect(base_url, "seat", cookie=cookie)
    try:
        await client.request("presence.set", status="available")
        if ready is not None:
            ready.set()
        while not stop.is_set() and (plan.calls is None or summary.answered < plan.calls):
            # A console's camera and microphone are open (self-view) before an offer rings.
            tracks = _clerk_tracks() if media else None
            offer = await _next_offer(client, stop, summary)
            if offer is None:
                break
            summary.offers += 1
            await asyncio.sleep(_vary(plan.answer_after_s, plan.jitter, rng))  # the clerk reaching for the button
            try:
                await client.request("offer.accept", call_id=offer["call_id"])
            except ReplyError:
                summary.lost += 1
                await _back_to_available(client)
                continue
            summary.answered += 1
            peer = await _connect_media(client, offer["call_id"], tracks, summary, on_media) if tracks else None
            try:
                await asyncio.sleep(_vary(plan.handle_s, plan.jitter, rng))  # serving the resident
                with contextlib.suppress(ReplyError):  # the resident may have hung up already
                    await client.request("call.end", call_id=offer["call_id"])
            finally:
                if peer is not None:
                    summary.media.append({"call_id": offer["call_id"], "ok": peer.ok, **peer.report()})
                    await peer.close()
            # The server may have settled the clerk already (its presence lapsed under load and it
            # came back not ready): wrap-up is then over, and the clerk carries on from there.
            with contextlib.suppress(ReplyError):
                await client.request("wrapup.done")
    finally:
        await client.close()
    return summary


def _clerk_tracks() -> list[Any]:
    from signaling.protocol_media import clerk_tracks

    return clerk_tracks()


async def _connect_media(client: ProtocolClient, call_id: str, tracks: list[Any], summary: SeatSummary,
                         on_media: Callable[[Any], None] | None) -> Any:
    """Publish camera and microphone; receive the booth's face, document and voice."""
    from signaling.protocol_media import open_peer

    peer = await open_peer(client, call_id, publish=tracks, receive=("video", "video", "audio"))
    if peer is None:
        summary.media_failed += 1
    elif on_media is not None:
        on_media(peer)
    return peer


async def _next_offer(client: ProtocolClient, stop: asyncio.Event, summary: SeatSummary) -> dict | None:
    """Wait for an offer; become available again after a missed one."""
    while not stop.is_set():
        offer_task = asyncio.create_task(client.wait_for("offer", timeout_s=3600))
        missed_task = asyncio.create_task(
            client.wait_for("presence.state", lambda m: m.get("reason") == "missed_offer", timeout_s=3600))
        stop_task = asyncio.create_task(stop.wait())
        done, pending = await asyncio.wait({offer_task, missed_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        if offer_task in done and not offer_task.exception():
            return offer_task.result()
        if missed_task in done and not missed_task.exception():
            summary.missed += 1
            await _back_to_available(client)
            continue
        if client.closed.is_set():
            return None
    return None


async def _back_to_available(client: ProtocolClient) -> None:
    with contextlib.suppress(ReplyError):
        await client.request("presence.set", status="available")


def _vary(value: float, jitter: float, rng: random.Random) -> float:
    return max(0.0, value * (1 + rng.uniform(-jitter, jitter)))
