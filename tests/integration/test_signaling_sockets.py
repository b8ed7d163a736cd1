"""Socket hardening: refused upgrades leave nothing behind, floods and oversize frames are closed,
silent peers are dropped, and a bad message gets an error while the socket stays usable."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from sqlmodel import Session

from records.accounts import revoke_booth
from records.db import make_engine
from signaling.protocol import (
    CLOSE_FORBIDDEN,
    CLOSE_HEARTBEAT,
    CLOSE_POLICY,
    CLOSE_REPLACED,
    CLOSE_TOO_BIG,
    CLOSE_UNAUTHORIZED,
    MAX_MESSAGE_BYTES,
    SUBPROTOCOL,
)
from signaling.protocol_client import ReplyError, login_cookie, ws_url
from tests.signaling_fixtures import PASSWORD, world


@pytest.fixture
def fast_settings(app_settings):
    return app_settings.with_overrides(heartbeat_s=0.5, reconnect_grace_s=1.0)


async def _refused(url: str, **kw) -> int:
    """HTTP status of an upgrade refused before the handshake (cross-site, wrong protocol)."""
    with pytest.raises(websockets.InvalidStatus) as info:
        async with websockets.connect(url, open_timeout=5, **kw):
            pass
    return info.value.response.status_code


async def _closed_at_once(url: str, **kw) -> int:
    """Close code of a socket whose credentials were refused: closed before any message."""
    async with websockets.connect(url, open_timeout=5, **kw) as ws:
        with pytest.raises(websockets.ConnectionClosed):
            message = await asyncio.wait_for(ws.recv(), 5)
            pytest.fail(f"a refused socket received {message!r}")
        return ws.close_code


async def test_refused_upgrades_leave_no_state(fast_settings):
    with world(fast_settings) as w:
        bus = w.server.app.state.bus
        booth_url = ws_url(w.url, "booth")
        token = w.tokens["b1"]
        assert await _refused(booth_url, subprotocols=[SUBPROTOCOL, f"token.{token}"],
                              origin="https://evil.example") == 403
        assert await _refused(booth_url, subprotocols=[f"token.{token}"]) == 403  # no protocol version
        assert await _closed_at_once(booth_url, subprotocols=[SUBPROTOCOL]) == CLOSE_UNAUTHORIZED  # no token
        assert await _closed_at_once(booth_url, subprotocols=[SUBPROTOCOL, "token.cst_wrong"]) == CLOSE_UNAUTHORIZED
        cookie = login_cookie(w.url, "c1", PASSWORD)
        as_clerk = {"additional_headers": {"Cookie": f"cloudseat_session={cookie}"}, "subprotocols": [SUBPROTOCOL]}
        assert await _closed_at_once(booth_url, **as_clerk) == CLOSE_FORBIDDEN  # a clerk is not a booth
        assert await _closed_at_once(ws_url(w.url, "supervisor"), **as_clerk) == CLOSE_FORBIDDEN
        engine = make_engine(w.settings.database_url)
        with Session(engine) as session:
            revoke_booth(session, name="b2")
            session.commit()
        engine.dispose()
        revoked = [SUBPROTOCOL, f"token.{w.tokens['b2']}"]
        assert await _closed_at_once(booth_url, subprotocols=revoked) == CLOSE_UNAUTHORIZED
        assert await bus.list_presence("booth") == {}
        assert await bus.list_presence("clerk") == {}
        assert w.server.app.state.switchboard.connection_count == 0
        ok = await w.booth("b1", origin=w.url)  # the right token from our own pages still works
        assert ok.welcome["role"] == "booth"
        assert set(await bus.list_presence("booth")) == {str(w.booth_ids["b1"])}
        await ok.close()


async def test_bad_messages_get_errors_and_the_socket_stays_usable(fast_settings):
    with world(fast_settings) as w:
        booth = await w.booth("b1")
        try:
            await booth.send_raw("{not json")
            err = await booth.wait_for("error")
            assert err["code"] == "bad_json"
            with pytest.raises(ReplyError) as info:
                await booth.request("call.request", item_code="NO-SUCH")
            assert info.value.code == "unknown_item"
            with pytest.raises(ReplyError) as info:
                await booth.request("offer.accept", call_id="00000000-0000-0000-0000-000000000000")
            assert info.value.code == "not_allowed"
            with pytest.raises(ReplyError) as info:
                await booth.request("call.cancel", call_id="00000000-0000-0000-0000-000000000000")
            assert info.value.code == "call_not_found"
            pong = await booth.request("device.status", devices={"printer": "paper_out"})
            assert pong["type"] == "ack"
        finally:
            await booth.close()


async def test_flooding_socket_is_closed_and_others_feel_nothing(fast_settings):
    with world(fast_settings) as w:
        calm = await w.booth("b1")
        flood = await w.booth("b2")
        try:
            for _ in range(200):
                try:
                    await flood.send_raw('{"type":"ping"}')
                except websockets.ConnectionClosed:
                    break
            await asyncio.wait_for(flood.closed.wait(), 5)
            assert flood.close_code == CLOSE_POLICY
            assert (await calm.request("device.status", devices={"camera": "ok"}))["type"] == "ack"
        finally:
            await calm.close()
            await flood.close()


async def test_oversized_frame_is_closed_with_1009(fast_settings):
    with world(fast_settings) as w:
        big = await w.booth("b1")
        other = await w.booth("b2")
        try:
            payload = json.dumps({"type": "chat.send", "call_id": "x", "text": "字" * MAX_MESSAGE_BYTES})
            await big.send_raw(payload)
            await asyncio.wait_for(big.closed.wait(), 5)
            assert big.close_code == CLOSE_TOO_BIG
            assert (await other.request("device.status", devices={"camera": "ok"}))["type"] == "ack"
        finally:
            await big.close()
            await other.close()


async def test_a_silent_peer_is_dropped_and_its_presence_goes(fast_settings):
    with world(fast_settings) as w:
        bus = w.server.app.state.bus
        silent = await w.booth("b1", heartbeat=False)
        alive = await w.booth("b2")  # sends pings every heartbeat_s
        try:
            await asyncio.wait_for(silent.closed.wait(), 10)
            assert silent.close_code == CLOSE_HEARTBEAT
            assert str(w.booth_ids["b1"]) not in await bus.list_presence("booth")
            assert str(w.booth_ids["b2"]) in await bus.list_presence("booth")
            assert not alive.closed.is_set()
        finally:
            await silent.close()
            await alive.close()


async def test_a_second_connection_replaces_the_first(fast_settings):
    with world(fast_settings) as w:
        first = await w.booth("b1")
        second = await w.booth("b1")
        try:
            await asyncio.wait_for(first.closed.wait(), 5)
            assert first.close_code == CLOSE_REPLACED
            assert (await second.request("device.status", devices={"camera": "ok"}))["type"] == "ack"
            presence = await w.server.app.state.bus.list_presence("booth")
            assert str(w.booth_ids["b1"]) in presence
        finally:
            await first.close()
            await second.close()
