"""One authenticated WebSocket: its outbox, its flood limit and its heartbeat deadline.

Writes go through a bounded outbox drained by one writer task, so a slow
client never blocks whoever sends to it; a client that lets its outbox
overflow is closed rather than allowed to grow memory.  The read loop
lives in `signaling.endpoints`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from signaling.access import Principal
from signaling.protocol import CLOSE_POLICY, encode
from signaling.turn_credentials import principal_name

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectionLimits:
    """Per-socket limits; defaults suit a kiosk or console, tests shorten them."""

    heartbeat_s: float = 15.0  # clients ping at this interval
    heartbeat_grace: float = 2.0  # closed after heartbeat_s * grace of silence (30 s by default)
    max_messages_per_s: int = 20
    flood_window_s: float = 1.0
    outbox_size: int = 256

    def __post_init__(self) -> None:
        if self.heartbeat_s <= 0 or self.heartbeat_grace < 1:
            raise ValueError("heartbeat_s must be > 0 and heartbeat_grace >= 1")
        if self.max_messages_per_s < 1 or self.flood_window_s <= 0 or self.outbox_size < 1:
            raise ValueError("flood and outbox limits must be positive")

    @property
    def silence_limit_s(self) -> float:
        return self.heartbeat_s * self.heartbeat_grace


class Connection:
    """A live socket of one principal on this node."""

    def __init__(self, websocket: WebSocket, principal: Principal, role: str, limits: ConnectionLimits) -> None:
        self.websocket = websocket
        self.principal = principal
        self.role = role
        self.limits = limits
        self.last_heard = time.monotonic()
        self._arrivals: deque[float] = deque()
        self._outbox: asyncio.Queue[str | None] = asyncio.Queue(maxsize=limits.outbox_size)
        self._writer: asyncio.Task[None] | None = None
        # Pushes that race the welcome (a wall change while a supervisor's snapshot is read) wait
        # here, so `welcome` is always the first frame; None once it has been sent.
        self._before_welcome: list[str] | None = []
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        # When the TURN credential this socket was last sent expires (None: none sent, or static).
        self.ice_expires_at: float | None = None

    @property
    def key(self) -> str:
        """How deliveries address this socket: `booth:<id>`, `clerk:<id>` or `supervisor:<id>`."""
        p = self.principal
        if self.role == "booth":
            return f"booth:{p.booth_id}"
        return f"{'clerk' if self.role == 'seat' else 'supervisor'}:{p.user_id}"

    @property
    def turn_principal(self) -> str:
        """Who this socket's TURN credential names in coturn's log: `booth-3`, `clerk-wangxm`."""
        p = self.principal
        if self.role == "booth":
            return principal_name("booth", p.booth_id if p.booth_id is not None else "unknown")
        return principal_name("clerk" if self.role == "seat" else "supervisor", p.username or p.user_id or "unknown")

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_loop(), name=f"ws-writer {self.key}")

    def heard(self) -> bool:
        """Count an arriving frame; False when the client exceeds its message rate (flooding)."""
        now = time.monotonic()
        self.last_heard = now
        arrivals = self._arrivals
        arrivals.append(now)
        while arrivals and arrivals[0] <= now - self.limits.flood_window_s:
            arrivals.popleft()
        return len(arrivals) <= self.limits.max_messages_per_s * self.limits.flood_window_s

    def silent_for(self) -> float:
        return time.monotonic() - self.last_heard

    def send(self, message: dict[str, Any]) -> None:
        """Queue a message for this socket; never blocks. Overflow closes the socket."""
        if self.closed.is_set():
            return
        held = self._before_welcome
        try:
            if held is None:
                self._outbox.put_nowait(encode(message))
            elif message.get("type") == "welcome":
                self._before_welcome = None
                for text in (encode(message), *held):
                    self._outbox.put_nowait(text)
            elif len(held) < self.limits.outbox_size:
                held.append(encode(message))
            else:
                raise asyncio.QueueFull
        except asyncio.QueueFull:
            logger.warning("%s: outbox full, closing the slow client", self.key)
            self.close_soon(CLOSE_POLICY)

    def close_soon(self, code: int) -> None:
        """Close after what is already queued has been written."""
        if self.close_code is None:
            self.close_code = code
        try:
            self._outbox.put_nowait(None)
        except asyncio.QueueFull:
            asyncio.get_running_loop().create_task(self.close_now(code))

    async def close_now(self, code: int) -> None:
        if self.close_code is None:
            self.close_code = code
        if self.websocket.application_state != WebSocketState.DISCONNECTED:
            try:
                await self.websocket.close(code=self.close_code)
            except (RuntimeError, OSError):
                pass
        self.closed.set()

    async def _write_loop(self) -> None:
        try:
            while True:
                text = await self._outbox.get()
                if text is None:
                    await self.close_now(self.close_code or 1000)
                    return
                await self.websocket.send_text(text)
        except (RuntimeError, OSError, asyncio.CancelledError, WebSocketDisconnect):
            # The peer went away while we wrote (or the server is stopping and closed it): the
            # read loop notices and cleans up. Nothing to log: it is not a fault of ours.
            self.closed.set()
        except Exception:  # noqa: BLE001 - a writer must never take the node down
            logger.exception("%s: writer failed", self.key)
            self.closed.set()

    async def stop(self) -> None:
        """Stop the writer (the read loop has ended)."""
        self.closed.set()
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
            try:
                await self._writer
            except asyncio.CancelledError:
                pass
