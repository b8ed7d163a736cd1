"""A Python client of the cloudseat protocol: simulators, the booth agent, tests, benchmarks.

Needs only the standard library and `websockets`, so a booth box installs light.
Requests are paired with replies by `id`; everything the server pushes is
kept in order and can be awaited by type.  Heartbeats are sent at the
interval the server's `welcome` asks for.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import re
import ssl
import urllib.parse
import urllib.request
from collections.abc import Callable
from http.cookiejar import CookieJar
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from signaling.protocol import SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX

logger = logging.getLogger(__name__)

SESSION_COOKIE = "cloudseat_session"


class ReplyError(Exception):
    """The server answered a request with `error`."""

    def __init__(self, reply: dict[str, Any]) -> None:
        super().__init__(f"{reply.get('code')}: {reply.get('message')}")
        self.code = str(reply.get("code"))
        self.reply = reply


def ws_url(base_url: str, role: str) -> str:
    """`http://host:port` -> `ws://host:port/ws/<role>`."""
    parts = urllib.parse.urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}/ws/{role}"


def login_cookie(base_url: str, username: str, password: str, timeout_s: float = 10.0) -> str:
    """Log in through the login form (CSRF double-submit) and return the session cookie value."""
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base_url}/login", timeout=timeout_s).read().decode("utf-8")
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if match is None:
        raise RuntimeError("the login page carries no CSRF token")
    form = urllib.parse.urlencode({"username": username, "password": password, "csrf_token": match.group(1)})
    opener.open(urllib.request.Request(f"{base_url}/login", data=form.encode(), method="POST"), timeout=timeout_s)
    for cookie in jar:
        if cookie.name == SESSION_COOKIE and cookie.value:
            return cookie.value
    raise RuntimeError(f"login as {username} failed")


class ProtocolClient:
    """One socket to a cloudseat server."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.welcome: dict[str, Any] = {}
        self.pushes: list[dict[str, Any]] = []
        self._cursors: dict[str, int] = {}  # per type: waiting for one type never skips another
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read_loop())
        self._heartbeat: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()
        self.close_code: int | None = None

    @classmethod
    async def connect(cls, base_url: str, role: str, *, token: str | None = None, cookie: str | None = None,
                      origin: str | None = None, heartbeat: bool = True, open_timeout_s: float = 10.0,
                      ssl_context: ssl.SSLContext | None = None) -> ProtocolClient:
        """Open the socket for `role` (booth: token; seat/supervisor: session cookie) and await `welcome`."""
        protocols = [SUBPROTOCOL] + ([TOKEN_SUBPROTOCOL_PREFIX + token] if token else [])
        headers = {"Cookie": f"{SESSION_COOKIE}={cookie}"} if cookie else None
        connection = await websockets.connect(
            ws_url(base_url, role), subprotocols=protocols, additional_headers=headers,  # type: ignore[arg-type]
            origin=origin, open_timeout=open_timeout_s, max_size=2**20, ping_interval=None,  # type: ignore[arg-type]
            **({"ssl": ssl_context} if ssl_context is not None else {}),  # wss to a private CA's certificate
        )
        client = cls(connection)
        client.welcome = await client.wait_for("welcome", timeout_s=open_timeout_s)
        if heartbeat:
            client._heartbeat = asyncio.create_task(client._heartbeat_loop(float(client.welcome["heartbeat_s"])))
        return client

    async def send_raw(self, text: str) -> None:
        await self.connection.send(text)

    async def request(self, mtype: str, timeout_s: float = 10.0, **fields: Any) -> dict[str, Any]:
        """Send a request and await its reply; raise ReplyError on `error`."""
        request_id = f"r{next(self._ids)}"
        frame = json.dumps({"type": mtype, "id": request_id, **fields}, ensure_ascii=False)
        reply = await self.exchange(frame, request_id, timeout_s)
        if reply.get("type") == "error":
            raise ReplyError(reply)
        return reply

    async def exchange(self, frame: str, request_id: str, timeout_s: float = 10.0) -> dict[str, Any]:
        """Send an encoded frame whose `id` is `request_id` and return its reply, `ack` or `error`.

        For frames `request` cannot build: a test's malformed ones (escaped lone surrogates ...).
        """
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await self.connection.send(frame)
            return await asyncio.wait_for(future, timeout_s)
        finally:
            self._pending.pop(request_id, None)

    async def wait_for(self, mtype: str, predicate: Callable[[dict[str, Any]], bool] | None = None,
                       timeout_s: float = 10.0) -> dict[str, Any]:
        """The next pushed message of `mtype` (matching `predicate`) after the last one of that type taken."""

        def find() -> dict[str, Any] | None:
            for index in range(self._cursors.get(mtype, 0), len(self.pushes)):
                message = self.pushes[index]
                if message.get("type") == mtype and (predicate is None or predicate(message)):
                    self._cursors[mtype] = index + 1
                    return message
            return None

        async def wait() -> dict[str, Any]:
            async with self._changed:
                while True:
                    found = find()
                    if found is not None:
                        return found
                    if self.closed.is_set():
                        raise ConnectionError(f"socket closed ({self.close_code}) before {mtype} arrived")
                    await self._changed.wait()

        return await asyncio.wait_for(wait(), timeout_s)

    async def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        with contextlib.suppress(Exception):
            await self.connection.close()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader

    async def _read_loop(self) -> None:
        try:
            async for raw in self.connection:
                message = json.loads(raw)
                request_id = message.get("re")
                if request_id is not None and request_id in self._pending:  # ack, error, or a ping's pong
                    future = self._pending[request_id]
                    if not future.done():
                        future.set_result(message)
                    continue
                async with self._changed:
                    self.pushes.append(message)
                    self._changed.notify_all()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self.connection.close_code
            self.closed.set()
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionError(f"socket closed ({self.close_code})"))
            async with self._changed:
                self._changed.notify_all()

    async def _heartbeat_loop(self, interval_s: float) -> None:
        with contextlib.suppress(websockets.ConnectionClosed, asyncio.CancelledError):
            while True:
                await asyncio.sleep(interval_s)  # the heartbeat period itself
                await self.connection.send('{"type":"ping"}')
