"""A call through the real server over real sockets: queue, offer, accept, end, wrap-up."""

from __future__ import annotations

import pytest
from sqlmodel import Session, col, select

from records.db import make_engine
from records.models import CallSession, CallStatus, Event
from signaling.protocol_client import ReplyError
from tests.signaling_fixtures import world


@pytest.fixture
def fast_settings(app_settings):
    return app_settings.with_overrides(offer_timeout_s=1.5, heartbeat_s=1.0, reconnect_grace_s=2.0)


def events_of(settings, call_id):
    engine = make_engine(settings.database_url)
    with Session(engine) as session:
        rows = session.exec(select(Event).where(Event.session_id == call_id).order_by(col(Event.seq))).all()
    engine.dispose()
    return [(e.kind, e.data) for e in rows]


def call_row(settings, call_id) -> CallSession:
    engine = make_engine(settings.database_url)
    with Session(engine) as session:
        row = session.get(CallSession, call_id)
    engine.dispose()
    return row


async def test_a_call_from_request_to_wrap_up(fast_settings):
    with world(fast_settings) as w:
        clerk = await w.clerk("c1")
        booth = await w.booth("b1")
        try:
            assert booth.welcome["booth"]["name"] == "b1" and booth.welcome["service"]["open"] is True
            ack = await booth.request("call.request", item_code=w.item_by_skill["social_insurance"])
            call_id = ack["call_id"]
            offer = await clerk.wait_for("offer")
            assert offer["call_id"] == call_id and offer["booth"]["name"] == "b1"
            accepted = await clerk.request("offer.accept", call_id=call_id)
            assert accepted["booth_id"] == w.booth_ids["b1"]
            connected = await booth.wait_for("call.connected")
            assert connected["clerk"]["name"] == "C1"
            await booth.request("chat.send", call_id=call_id, text="你好")
            chat = await clerk.wait_for("chat.message")
            assert chat["text"] == "你好" and chat["sender"] == "booth"
            await clerk.request("call.end", call_id=call_id)
            await booth.wait_for("call.ended", lambda m: m["call_id"] == call_id)
            await clerk.wait_for("presence.state", lambda m: m["status"] == "wrap_up")
            with pytest.raises(ReplyError) as info:
                await clerk.request("call.end", call_id=call_id)
            assert info.value.code == "call_not_found"
            assert (await clerk.request("wrapup.done", note="办结"))["status"] == "available"
        finally:
            await booth.close()
            await clerk.close()
        kinds = [k for k, _ in events_of(fast_settings, call_id)]
        assert kinds == ["call.queued", "call.offered", "call.answered", "chat.message", "call.ended",
                         "clerk.wrapup_done"]
        assert call_row(fast_settings, call_id).status is CallStatus.ENDED


async def test_unanswered_offer_times_out_and_goes_to_the_next_clerk(fast_settings):
    clerks = {"slow": (["social_insurance"], ["east"]), "quick": (["social_insurance"], ["east"])}
    with world(fast_settings, clerks=clerks) as w:
        slow = await w.clerk("slow")  # longest idle: offered first
        quick = await w.clerk("quick")
        booth = await w.booth("b1")
        try:
            call_id = (await booth.request("call.request", item_code=w.item_by_skill["social_insurance"]))["call_id"]
            await slow.wait_for("offer", lambda m: m["call_id"] == call_id)
            revoked = await slow.wait_for("offer.revoked", timeout_s=5)
            assert revoked["reason"] == "timeout"
            await slow.wait_for("presence.state", lambda m: m["reason"] == "missed_offer")
            await quick.wait_for("offer", lambda m: m["call_id"] == call_id, timeout_s=5)
            await quick.request("offer.accept", call_id=call_id)
            with pytest.raises(ReplyError) as info:
                await slow.request("offer.accept", call_id=call_id)
            assert info.value.code == "offer_gone"
        finally:
            for c in (booth, slow, quick):
                await c.close()
        kinds = [(k, d.get("reason"), d.get("clerk_id")) for k, d in events_of(fast_settings, call_id)]
        assert kinds[:4] == [("call.queued", None, None), ("call.offered", None, w.clerk_ids["slow"]),
                             ("call.requeued", "offer_timeout", w.clerk_ids["slow"]),
                             ("call.offered", None, w.clerk_ids["quick"])]


async def test_booth_hangs_up_while_waiting_counts_as_abandoned(fast_settings):
    with world(fast_settings) as w:
        booth = await w.booth("b1")
        try:
            call_id = (await booth.request("call.request", item_code=w.item_by_skill["social_insurance"]))["call_id"]
            assert (await booth.request("call.cancel", call_id=call_id))["status"] == "abandoned"
        finally:
            await booth.close()
        events = events_of(fast_settings, call_id)
        assert events[-1][0] == "call.abandoned" and events[-1][1]["reason"] == "cancelled"
        assert events[-1][1]["wait_s"] >= 0


async def test_wrap_up_ends_only_with_wrapup_done_and_its_note_lands_on_the_call(fast_settings):
    with world(fast_settings) as w:
        clerk = await w.clerk("c1")
        booth = await w.booth("b1")
        try:
            call_id = (await booth.request("call.request", item_code=w.item_by_skill["social_insurance"]))["call_id"]
            offer = await clerk.wait_for("offer")
            assert offer["transferred"] is False and offer["transfer_note"] == ""
            await clerk.request("offer.accept", call_id=call_id)
            await clerk.request("call.end", call_id=call_id)
            with pytest.raises(ReplyError) as info:
                await clerk.request("presence.set", status="available")
            assert info.value.code == "in_wrap_up"
            await clerk.request("wrapup.done", note="已告知补正材料")
        finally:
            await booth.close()
            await clerk.close()
        assert ("clerk.wrapup_done", {"note": "已告知补正材料"}) in events_of(fast_settings, call_id)


async def test_a_ringing_call_is_announced_as_ringing_not_with_a_queue_estimate(fast_settings):
    with world(fast_settings) as w:
        clerk = await w.clerk("c1")
        booth = await w.booth("b1")
        try:
            call_id = (await booth.request("call.request", item_code=w.item_by_skill["social_insurance"]))["call_id"]
            await clerk.wait_for("offer", lambda m: m["call_id"] == call_id)
            ringing = await booth.wait_for("queue.position", lambda m: m["call_id"] == call_id)
            assert (ringing["ringing"], ringing["estimated_wait_s"], ringing["position"]) == (True, 0, 1)
            # Declined: back in the queue with an estimate (the only clerk may not take it again).
            await clerk.request("offer.decline", call_id=call_id, reason="测试")
            back = await booth.wait_for("queue.position", lambda m: m["call_id"] == call_id and not m["ringing"])
            assert back["estimated_wait_s"] is not None and back["estimated_wait_s"] > 0
        finally:
            await booth.close()
            await clerk.close()
