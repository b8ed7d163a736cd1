"""The three WebSocket endpoints: booth, seat (clerk) and supervisor.

Origin and protocol version are checked before the upgrade is accepted (a
cross-site page gets an HTTP 403).  Credentials and role are checked at the
upgrade too, but a refusal is accepted-and-closed with 4401/4403 (or 1013
when the node is full) because a browser sees only 1006 for an HTTP
refusal and could not tell "your token was revoked" from "network down".
Either way nothing is registered: no presence, no state.  After that, one read loop per socket: oversize frames and
floods close the socket with 1009 / 1008, invalid messages get an `error`
reply and the socket stays usable, and nothing a client sends can raise
out of the loop into the server.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from signaling import booth_flow, seat_flow, wall
from signaling.access import SUPERVISION, Kind, Rule, origin_allowed, resolve_principal
from signaling.connection import Connection
from signaling.protocol import (
    CLOSE_FORBIDDEN,
    CLOSE_POLICY,
    CLOSE_TOO_BIG,
    CLOSE_UNAUTHORIZED,
    MAX_MESSAGE_BYTES,
    ROLE_BOOTH,
    ROLE_SEAT,
    ROLE_SUPERVISOR,
    SUBPROTOCOL,
    IceRefresh,
    Ping,
    ProtocolError,
    parse_message,
    push,
    reply_ack,
    reply_error,
)
from signaling.switchboard import Refused, Switchboard

logger = logging.getLogger(__name__)

CLOSE_TRY_AGAIN = 1013


class RoleFlow:
    """How one role attaches, detaches and handles messages."""

    def __init__(self, role: str, attach: Callable[[Switchboard, Connection], Awaitable[None]],
                 detach: Callable[[Switchboard, Connection], Awaitable[None]],
                 handlers: dict[type, Callable[..., Awaitable[dict[str, Any] | None]]]) -> None:
        self.role = role
        self.attach = attach
        self.detach = detach
        self.handlers = handlers


FLOWS = {
    ROLE_BOOTH: RoleFlow(ROLE_BOOTH, booth_flow.attach, booth_flow.detach, booth_flow.HANDLERS),
    ROLE_SEAT: RoleFlow(ROLE_SEAT, seat_flow.attach, seat_flow.detach, seat_flow.HANDLERS),
    ROLE_SUPERVISOR: RoleFlow(ROLE_SUPERVISOR, wall.attach, wall.detach, wall.HANDLERS),
}


class GuardedWebSocketRoute(WebSocketRoute):
    """A WebSocket route that carries its access rule, like `GuardedRoute`."""

    def __init__(self, path: str, role: str, allow: Iterable[Kind]) -> None:
        self.rule = Rule(frozenset(allow))
        self.role = role

        async def endpoint(websocket: WebSocket) -> None:
            await serve_socket(websocket, role, self.rule)

        super().__init__(path, endpoint, name=f"ws_{role}")


def socket_routes() -> list[GuardedWebSocketRoute]:
    return [
        GuardedWebSocketRoute("/ws/booth", ROLE_BOOTH, {Kind.BOOTH}),
        GuardedWebSocketRoute("/ws/seat", ROLE_SEAT, {Kind.CLERK}),
        GuardedWebSocketRoute("/ws/supervisor", ROLE_SUPERVISOR, SUPERVISION),
    ]


async def serve_socket(websocket: WebSocket, role: str, rule: Rule) -> None:
    """Check the upgrade, then run the socket until it closes."""
    sb: Switchboard = websocket.app.state.switchboard
    settings = websocket.app.state.settings
    offered = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",")]
    if not origin_allowed(websocket, settings.origins) or SUBPROTOCOL not in offered:
        await websocket.close(code=4403)
        return
    principal = await resolve_principal(websocket)
    refusal = None
    if principal.kind not in rule.allow:
        refusal = CLOSE_UNAUTHORIZED if principal.kind is Kind.ANONYMOUS else CLOSE_FORBIDDEN
    elif sb.connection_count >= sb.config.max_connections:
        refusal = CLOSE_TRY_AGAIN
    await websocket.accept(subprotocol=SUBPROTOCOL)
    if refusal is not None:
        await websocket.close(code=refusal)
        return
    conn = Connection(websocket, principal, role, sb.config.limits)
    conn.start()
    flow = FLOWS[role]
    try:
        await flow.attach(sb, conn)
        sb.push_ice(conn)  # right after `welcome`: iceServers with a TURN credential naming this party
        await _read_loop(sb, conn, flow)
    except WebSocketDisconnect:
        pass
    except Exception:  # noqa: BLE001 - one broken socket must never take the node down
        logger.exception("%s: socket failed", conn.key)
    finally:
        try:
            await flow.detach(sb, conn)
        except Exception:  # noqa: BLE001
            logger.exception("%s: detach failed", conn.key)
        await conn.stop()


async def _read_loop(sb: Switchboard, conn: Connection, flow: RoleFlow) -> None:
    websocket = conn.websocket
    while not conn.closed.is_set():
        event = await websocket.receive()
        if event["type"] == "websocket.disconnect":
            return
        text = event.get("text")
        data = text if text is not None else event.get("bytes") or b""
        if len(data) > MAX_MESSAGE_BYTES // 4 and len(data.encode() if isinstance(data, str) else data) > MAX_MESSAGE_BYTES:
            await conn.close_now(CLOSE_TOO_BIG)
            return
        if not conn.heard():
            logger.warning("%s: flooding, closing", conn.key)
            await conn.close_now(CLOSE_POLICY)
            return
        reply = await _handle(sb, conn, flow, data)
        if reply is not None:
            conn.send(reply)


async def _handle(sb: Switchboard, conn: Connection, flow: RoleFlow, data: str | bytes) -> dict[str, Any] | None:
    try:
        message = parse_message(data, flow.role)
    except ProtocolError as exc:
        return reply_error(exc.request_id, exc.code, exc.message)
    if isinstance(message, Ping):
        return push("pong") if message.id is None else push("pong", re=message.id)
    if isinstance(message, IceRefresh):
        fields = sb.ice_fields(conn)
        return push("ice.servers", **fields) if message.id is None else reply_ack(message.id, **fields)
    handler = flow.handlers.get(type(message))
    if handler is None:
        return reply_error(message.id, "not_allowed", f"{flow.role} may not send {message.TYPE}")
    try:
        result = await handler(sb, conn, message)
    except Refused as exc:
        return {**reply_error(message.id, exc.code, exc.message), **exc.extra}
    except Exception:  # noqa: BLE001 - the client gets an error, the session goes on
        logger.exception("%s: handler for %s failed", conn.key, message.TYPE)
        return reply_error(message.id, "internal", "the server could not handle this message")
    # Only a request (a message with an id) is answered on success; errors are always told.
    return None if message.id is None else reply_ack(message.id, **(result or {}))

