"""Every message type of the protocol, with generated bad fields, over real sockets to a real server.

For each role's socket and each type that role may send, Hypothesis builds frames from the type's
own field names with values of every JSON shape: wrong types, integers past 64 bits, lone
surrogates, date-times that match the pattern but do not exist, NULs, deep nesting, unknown and
missing fields. Each frame must get a reply with a stable code that is never `internal`; the socket
must stay open; and the server must log nothing at ERROR.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from dataclasses import fields
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signaling.protocol import _ISO_RE, MESSAGE_TYPES, ROLE_BOOTH, ROLE_SEAT, ROLE_SUPERVISOR
from signaling.protocol_client import ProtocolClient
from tests.signaling_fixtures import world

pytestmark = pytest.mark.slow

# A client sends at most this many frames a second: the server closes a socket past 20 (flooding),
# which is behaviour of its own, tested elsewhere.
FRAMES_PER_S = 15

surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
texts = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.one_of(surrogates, st.characters()), min_size=1, max_size=10),
    st.sampled_from(["", "\x00", "a" * 5000, "00000000-0000-4000-8000-000000000000", "SB-001", "available"]),
    st.from_regex(_ISO_RE, fullmatch=True),
)
scalars = st.one_of(
    st.none(), st.booleans(), texts, st.floats(allow_nan=False, allow_infinity=False),
    st.integers(), st.integers(min_value=2**63 - 2, max_value=2**70), st.integers(max_value=-(2**63) + 1),
)
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)), max_leaves=12)


@st.composite
def frames(draw: st.DrawFn, mtype: str) -> dict[str, Any]:
    names = [f.name for f in fields(MESSAGE_TYPES[mtype]) if f.name != "id"]
    chosen = draw(st.lists(st.sampled_from(names), unique=True)) if names else []
    body: dict[str, Any] = {name: draw(json_values) for name in chosen}
    if draw(st.booleans()):
        body[draw(texts)] = draw(json_values)  # an unknown (or badly spelt) field
    return {"type": mtype, **body}


ROLE_OF_SOCKET = {"booth": ROLE_BOOTH, "clerk": ROLE_SEAT, "supervisor": ROLE_SUPERVISOR}


def types_for(role: str) -> list[str]:
    return sorted(t for t, cls in MESSAGE_TYPES.items() if role in cls.ROLES)


class LoopThread:
    """An event loop of its own, so Hypothesis's synchronous test body can drive async sockets."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout_s: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


async def exchange(client: ProtocolClient, frame: dict[str, Any], request_id: str) -> dict[str, Any]:
    reply = await client.exchange(json.dumps({**frame, "id": request_id}, ensure_ascii=True), request_id)
    await asyncio.sleep(1 / FRAMES_PER_S)  # the client's pace, not a wait for anything
    return reply


@pytest.mark.parametrize("socket_kind", ["booth", "clerk", "supervisor"])
def test_generated_bad_fields_never_cost_a_socket_or_an_error_line(app_settings, caplog, socket_kind):
    caplog.set_level(logging.WARNING)
    role = ROLE_OF_SOCKET[socket_kind]
    counter = iter(range(10**9))
    codes: dict[str, int] = {}
    with world(app_settings) as w:
        loop = LoopThread()
        try:
            connect = {"booth": lambda: w.booth("b1"), "clerk": lambda: w.clerk("c1"),
                       "supervisor": lambda: w.supervisor()}[socket_kind]
            client = loop.run(connect())

            @settings(max_examples=60, deadline=None, derandomize=True,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
            @given(frame=st.sampled_from(types_for(role)).flatmap(frames))
            def check(frame: dict[str, Any]) -> None:
                reply = loop.run(exchange(client, frame, f"f{next(counter)}"))
                code = reply.get("code", "ack") if reply["type"] == "error" else "ack"
                codes[code] = codes.get(code, 0) + 1
                assert code != "internal", (frame, reply)
                assert client.close_code is None and not client.closed.is_set(), frame

            check()
            # Still a working socket after all that.
            assert loop.run(client.request("ping" if socket_kind != "supervisor" else "wall.snapshot")) is not None
            loop.run(client.close())
        finally:
            loop.stop()
    loud = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert loud == [], [r.getMessage() for r in loud]
    assert sum(codes.values()) >= 60 and "invalid" in codes, codes
