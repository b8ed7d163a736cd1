"""Media requests between nodes: every bus message validates itself, and the request/response
over the in-process bus answers, refuses, notices a silent node and leaks no subscription."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from signaling.bus_memory import MemoryBus
from signaling.media_rpc import (
    MediaNotice,
    MediaReply,
    MediaRequest,
    MediaRpc,
    check_result,
    media_channel,
    new_request_id,
    reply_channel,
)
from signaling.switchboard import Refused

CALL = "5f0c2a4e-8d1b-4c3a-9e57-0b6f1d2c3a4b"
SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
RID = "0123456789abcdef0123456789abcdef"


def offer(**changes: Any) -> dict[str, Any]:
    message = {"kind": "request", "op": "rtc.offer", "request_id": RID, "origin": "node-0", "call_id": CALL,
               "participant": "booth", "role": "booth", "user_id": None, "sdp": SDP,
               "tracks": {"0": "face", "1": "document", "2": "audio"}, "reason": None}
    message.update(changes)
    return message


def monitor(op: str = "monitor.join", **changes: Any) -> dict[str, Any]:
    message = {"kind": "request", "op": op, "request_id": RID, "origin": "node-0", "call_id": CALL,
               "participant": "monitor-7", "role": "monitor", "user_id": 7}
    message.update(changes)
    return message


# ---------------------------------------------------------------- requests
def test_a_request_survives_the_trip_through_json() -> None:
    request = MediaRequest.from_message(offer())
    assert request.participant == "booth" and request.tracks["1"] == "document"
    assert MediaRequest.from_message(request.to_message()) == request
    leave = MediaRequest.from_message(monitor("monitor.leave", reason="disconnected"))
    assert leave.user_id == 7 and leave.reason == "disconnected"
    clerk = MediaRequest.from_message(offer(participant="clerk", role="clerk", tracks={"a": "camera"}))
    assert clerk.role == "clerk"


@pytest.mark.parametrize("message, why", [
    ("not an object", "JSON object"),
    (offer(kind="notice"), "not a media request"),
    (offer(op="call.end"), "op must be"),
    (offer(request_id="../node:node-1"), "request_id"),
    (offer(request_id=None), "request_id"),
    (offer(origin=""), "origin"),
    (offer(origin=["node-0"]), "origin"),
    (offer(call_id=CALL.upper()), "call_id"),
    (offer(role="admin"), "role must be"),
    (offer(participant="clerk"), "participant must be 'booth'"),
    (offer(user_id=7), "only a monitor"),
    (offer(sdp="hello"), "v=0"),
    (offer(sdp=None), "sdp must be a string"),
    (offer(sdp=SDP + "\x00"), "NUL"),
    (offer(sdp="v=0\r\n" + "a" * 33000), "larger than"),
    (offer(tracks={"0": "camera"}), "cannot publish"),  # a booth has no camera track
    (offer(tracks={"0": "face", "1": "face"}), "once"),
    (offer(tracks={"m/0": "face"}), "mid"),
    (offer(tracks=["face"]), "tracks must be"),
    (offer(tracks={str(i): "audio" for i in range(9)}), "at most 8"),
    (offer(participant="monitor-7", role="monitor", user_id=7, tracks={"0": "audio"}), "cannot publish"),
    (monitor(participant="monitor-8"), "participant must be 'monitor-7'"),
    (monitor(user_id=True, participant="monitor-True"), "user_id"),
    (monitor(user_id=0, participant="monitor-0"), "user_id"),
    (monitor(user_id="7"), "user_id"),
    (monitor(role="booth", participant="booth", user_id=None), "monitors only"),
    (monitor(sdp=SDP), "carries no sdp"),
    (monitor(reason="left"), "carries no reason"),
    (monitor("monitor.leave"), "reason must be"),
    (monitor("monitor.leave", reason="kicked"), "reason must be"),
])
def test_a_malformed_request_is_refused(message: Any, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        MediaRequest.from_message(message)


# ---------------------------------------------------------------- replies, notices, results
@pytest.mark.parametrize("message, why", [
    ({"kind": "done", "request_id": RID}, "kind"),
    ({"kind": "ok", "request_id": "r1"}, "request_id"),
    ({"kind": "ok", "request_id": RID, "result": ["x"]}, "result"),
    ({"kind": "error", "request_id": RID, "code": "Bad Code", "message": ""}, "code"),
    ({"kind": "error", "request_id": RID, "code": "x", "message": 5}, "message"),
    ({"kind": "error", "request_id": RID, "code": "x", "message": "", "extra": {"type": "ack"}}, "not allowed"),
    ({"kind": "error", "request_id": RID, "code": "x", "message": "", "extra": {"node": {"a": 1}}}, "scalar"),
    ([], "JSON object"),
])
def test_a_malformed_reply_is_refused(message: Any, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        MediaReply.from_message(message)


def test_an_error_reply_carries_its_code_and_extra() -> None:
    reply = MediaReply.from_message({"kind": "error", "request_id": RID, "code": "bad_track", "message": "no",
                                     "extra": {"node": "node-1"}})
    assert MediaReply.from_message(reply.to_message()) == reply


SLOT = {"mid": "3", "kind": "video", "publisher": "clerk", "track": "camera"}


@pytest.mark.parametrize("message, why", [
    ({"op": "monitor.ended", "reason": None}, "reason"),
    ({"op": "monitor.ended", "reason": "call_ended", "slots": [SLOT]}, "no slots"),
    ({"op": "monitor.slots", "reason": "x"}, "no reason"),
    ({"op": "monitor.slots", "slots": [{**SLOT, "kind": "data"}]}, "kind"),
    ({"op": "monitor.slots", "slots": [{**SLOT, "publisher": "<script>"}]}, "publisher"),
    ({"op": "monitor.slots", "slots": "all"}, "slots must be"),
    ({"op": "monitor.slots", "user_id": 0}, "user_id"),
    ({"op": "monitor.push"}, "op must be"),
    ({"kind": "request"}, "not a media notice"),
])
def test_a_malformed_notice_is_refused(message: dict[str, Any], why: str) -> None:
    full = {"kind": "notice", "origin": "node-1", "call_id": CALL, "user_id": 7, **message}
    with pytest.raises(ValueError, match=why):
        MediaNotice.from_message(full)


def test_a_notice_keeps_only_the_known_keys_of_a_slot() -> None:
    notice = MediaNotice.from_message({"kind": "notice", "op": "monitor.slots", "origin": "node-1", "call_id": CALL,
                                       "user_id": 7, "slots": [{**SLOT, "evil": "x"}]})
    assert notice.slots == [SLOT]


def test_a_result_is_rebuilt_for_the_client() -> None:
    request = MediaRequest.from_message(offer())
    ack = check_result(request, {"call_id": "other", "sdp": SDP, "slots": [SLOT], "more": 1})
    assert ack == {"call_id": CALL, "sdp": SDP, "slots": [SLOT]}  # the call id is the asked one
    with pytest.raises(ValueError, match="session description"):
        check_result(request, {"sdp": "nope", "slots": []})
    join = MediaRequest.from_message(monitor())
    assert check_result(join, {"media_node": "node-1", "tracks": [{"publisher": "booth", "kind": "video",
                                                                     "track": "face"}]})["media_node"] == "node-1"
    with pytest.raises(ValueError, match="tracks"):
        check_result(join, {"media_node": "node-1", "tracks": None})


# ---------------------------------------------------------------- request/response over the bus
class Node:
    """One node's MediaRpc with a scripted media side."""

    def __init__(self, bus: MemoryBus, **timing: float) -> None:
        self.bus = bus
        self.served: list[MediaRequest] = []
        self.notices: list[MediaNotice] = []
        self.answer: Any = {"sdp": SDP, "slots": [SLOT]}
        self.delay_s = 0.0
        self.rpc = MediaRpc(bus, bus.node_id, serve=self.serve, notice=self.notice, **timing)

    async def serve(self, request: MediaRequest) -> dict[str, Any]:
        self.served.append(request)
        await asyncio.sleep(self.delay_s)  # stands for a slow hub
        if isinstance(self.answer, Exception):
            raise self.answer
        return dict(self.answer)

    async def notice(self, notice: MediaNotice) -> None:
        self.notices.append(notice)


@pytest.fixture
async def pair() -> AsyncIterator[tuple[Node, Node]]:
    bus_a = MemoryBus("node-a")
    bus_b = bus_a.sibling("node-b")
    a, b = Node(bus_a, keepalive_s=0.05, silence_s=0.4), Node(bus_b, keepalive_s=0.05, silence_s=0.4)
    await a.rpc.start()
    await b.rpc.start()
    yield a, b
    await a.rpc.stop()
    await b.rpc.stop()
    assert not bus_a._state.subscribers, "a subscription leaked"
    await bus_a.close()
    await bus_b.close()


def request(**changes: Any) -> MediaRequest:
    return MediaRequest.from_message(offer(request_id=new_request_id(), origin="node-a", **changes))


def channels(node: Node) -> set[str]:
    return set(node.bus._state.subscribers)


async def test_a_request_is_answered_by_the_media_node(pair: tuple[Node, Node]) -> None:
    a, b = pair
    ack = await a.rpc.request("node-b", request())
    assert ack == {"call_id": CALL, "sdp": SDP, "slots": [SLOT]}
    assert [r.participant for r in b.served] == ["booth"] and not a.served
    assert channels(a) == {media_channel("node-a"), media_channel("node-b")}  # the reply channel is gone


async def test_a_refusal_comes_back_with_its_code_and_extra(pair: tuple[Node, Node]) -> None:
    a, b = pair
    b.answer = Refused("not_monitoring", "send monitor.join first", node="node-b")
    with pytest.raises(Refused) as info:
        await a.rpc.request("node-b", request())
    assert (info.value.code, info.value.extra) == ("not_monitoring", {"node": "node-b"})
    b.answer = RuntimeError("the hub broke")
    with pytest.raises(Refused) as info:
        await a.rpc.request("node-b", request())
    assert info.value.code == "media_unavailable"


async def test_a_slow_but_alive_media_node_is_waited_for(pair: tuple[Node, Node]) -> None:
    a, b = pair
    b.delay_s = 1.0  # longer than the silence limit: the keepalives carry it
    assert (await a.rpc.request("node-b", request()))["sdp"] == SDP


async def test_a_node_nobody_answers_for_is_unavailable_promptly(pair: tuple[Node, Node]) -> None:
    a, _b = pair
    started = time.monotonic()
    with pytest.raises(Refused) as info:
        await a.rpc.request("node-gone", request())
    assert info.value.code == "media_unavailable" and info.value.extra == {"node": "node-gone"}
    assert time.monotonic() - started < 2.0
    assert reply_channel("x") not in channels(a) and len(channels(a)) == 2


async def test_a_media_node_that_stops_mid_request_is_unavailable(pair: tuple[Node, Node]) -> None:
    a, b = pair
    b.delay_s = 30.0
    asking = asyncio.create_task(a.rpc.request("node-b", request()))
    while not b.served:
        await asyncio.sleep(0.01)  # polling a list: the scripted side offers no event
    await b.rpc.stop()  # the media node goes away with the request in hand
    with pytest.raises(Refused) as info:
        await asyncio.wait_for(asking, 2.0)
    assert info.value.code == "media_unavailable"


async def test_a_malformed_request_gets_bad_request_and_never_reaches_the_hub(pair: tuple[Node, Node]) -> None:
    a, b = pair
    rid = new_request_id()
    replies = await a.bus.subscribe(reply_channel(rid))
    await a.bus.publish(media_channel("node-b"), offer(request_id=rid, participant="clerk"))
    reply = await asyncio.wait_for(anext(replies), 2.0)
    await replies.close()
    assert reply["kind"] == "error" and reply["code"] == "bad_request" and not b.served
    await a.bus.publish(media_channel("node-b"), {"kind": "request", "request_id": "nope"})  # no reply possible
    await a.bus.publish(media_channel("node-b"), {"kind": "gossip"})
    assert (await a.rpc.request("node-b", request()))["sdp"] == SDP  # the listener goes on


async def test_notices_arrive_validated(pair: tuple[Node, Node]) -> None:
    a, b = pair
    await b.rpc.notify("node-a", MediaNotice(op="monitor.slots", origin="node-b", call_id=CALL, user_id=7,
                                             slots=[SLOT]))
    await b.bus.publish(media_channel("node-a"), {"kind": "notice", "op": "monitor.slots", "origin": "node-b",
                                                  "call_id": CALL, "user_id": -1, "slots": []})
    await b.rpc.notify("node-a", MediaNotice(op="monitor.ended", origin="node-b", call_id=CALL, user_id=7,
                                             reason="call_ended"))
    while len(a.notices) < 2:
        await asyncio.sleep(0.01)  # polling a list: the scripted side offers no event
    assert [(n.op, n.slots, n.reason) for n in a.notices] == [("monitor.slots", [SLOT], None),
                                                             ("monitor.ended", [], "call_ended")]
