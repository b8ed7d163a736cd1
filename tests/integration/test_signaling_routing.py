"""Routing through the real server: who gets which call, in which order, and what the booth sees."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlmodel import Session, col, select

from records.db import make_engine
from records.models import Appointment, Event
from signaling.protocol_client import ReplyError
from tests.signaling_fixtures import clients, world


@pytest.fixture
def fast_settings(app_settings):
    return app_settings.with_overrides(offer_timeout_s=5, heartbeat_s=1.0)


def _local_only_item(skill: str) -> str:
    from records.catalog import default_catalog_path, load_catalog_file

    return next(i.code for i in load_catalog_file(default_catalog_path()).items
                if i.skill == skill and not i.cross_region)


async def test_skill_and_region_decide_eligibility(fast_settings):
    clerks = {"si_east": (["social_insurance"], ["east"]), "med_west": (["medical"], ["west"]),
              "civ_west": (["civil_affairs"], ["west"])}
    with world(fast_settings, clerks=clerks) as w:
        si, med, civ = [await w.clerk(n) for n in ("si_east", "med_west", "civ_west")]
        east, east2, west = await w.booth("b1"), await w.booth("b2"), await w.booth("b3")
        async with clients(si, med, civ, east, east2, west):
            # cross-region medical item from an east booth goes to the west medical clerk (跨镇街通办)
            c1 = (await east.request("call.request", item_code=w.item_by_skill["medical"]))["call_id"]
            assert (await med.wait_for("offer"))["call_id"] == c1
            await med.request("offer.accept", call_id=c1)
            # a local-only civil-affairs item from an east booth may not go to a west clerk
            local = _local_only_item("civil_affairs")
            c2 = (await east2.request("call.request", item_code=local))["call_id"]
            waiting = await east2.wait_for("queue.position", lambda m: m["call_id"] == c2)
            assert waiting["position"] == 1 and waiting["estimated_wait_s"] is None  # nobody may serve it
            # ... while the same item from the west booth does
            c3 = (await west.request("call.request", item_code=local))["call_id"]
            assert (await civ.wait_for("offer"))["call_id"] == c3
            assert not [m for m in si.pushes if m["type"] == "offer"]  # wrong skill: never offered


async def test_priority_resident_goes_first_and_positions_update(fast_settings):
    with world(fast_settings, booths={"b1": "east", "b2": "east", "b3": "east"}) as w:
        item = w.item_by_skill["social_insurance"]
        b1, b2, b3 = [await w.booth(n) for n in ("b1", "b2", "b3")]
        async with clients(b1, b2, b3):
            first = (await b1.request("call.request", item_code=item))["call_id"]
            second = (await b2.request("call.request", item_code=item))["call_id"]
            assert (await b2.wait_for("queue.position", lambda m: m["call_id"] == second))["position"] == 2
            green = (await b3.request("call.request", item_code=item, priority=True))["call_id"]
            assert (await b3.wait_for("queue.position", lambda m: m["call_id"] == green))["position"] == 1
            # the normal callers were pushed back by one
            assert (await b2.wait_for("queue.position", lambda m: m["position"] == 3))["call_id"] == second
            clerk = await w.clerk("c1")
            async with clients(clerk):
                assert (await clerk.wait_for("offer"))["call_id"] == green
                await clerk.request("offer.accept", call_id=green)
                assert (await b2.wait_for("queue.position", lambda m: m["position"] == 2))["call_id"] == second
                moved = await b1.wait_for("queue.position",
                                          lambda m: m["position"] == 1 and m["estimated_wait_s"] is not None)
                assert moved["call_id"] == first and moved["estimated_wait_s"] >= 0


async def test_appointment_due_now_jumps_the_queue_to_its_clerk(fast_settings):
    clerks = {"c1": (["social_insurance"], ["east"]), "chosen": (["social_insurance"], ["east"])}
    with world(fast_settings, clerks=clerks) as w:
        item = w.item_by_skill["social_insurance"]
        engine = make_engine(w.settings.database_url)
        now = datetime.now(timezone.utc)
        with Session(engine) as session:
            appointment = Appointment(booth_id=w.booth_ids["b2"], item_code=item, clerk_id=w.clerk_ids["chosen"],
                                      slot_start=now - timedelta(minutes=5), slot_end=now + timedelta(minutes=25))
            session.add(appointment)
            session.commit()
            appointment_id = appointment.id
        b1, b2 = await w.booth("b1"), await w.booth("b2")
        async with clients(b1, b2):
            (await b1.request("call.request", item_code=item))
            booked = (await b2.request("call.request", item_code=item, appointment_id=appointment_id))["call_id"]
            assert (await b2.wait_for("queue.position", lambda m: m["call_id"] == booked))["position"] == 1
            other = await w.clerk("c1")  # available first, longest idle: still not offered the booked call
            chosen = await w.clerk("chosen")
            async with clients(other, chosen):
                assert (await chosen.wait_for("offer"))["call_id"] == booked
                assert (await other.wait_for("offer"))["call_id"] != booked
            with pytest.raises(ReplyError) as info:  # an appointment is used once
                await b2.request("call.request", item_code=item, appointment_id=appointment_id)
            assert info.value.code in ("appointment_used", "call_in_progress")
        engine.dispose()


async def test_decline_once_with_a_reason_then_the_call_moves_on(fast_settings):
    clerks = {"first": (["social_insurance"], ["east"]), "second": (["social_insurance"], ["east"])}
    with world(fast_settings, clerks=clerks) as w:
        first = await w.clerk("first")
        booth = await w.booth("b1")
        async with clients(first, booth):
            call_id = (await booth.request("call.request", item_code=w.item_by_skill["social_insurance"]))["call_id"]
            await first.wait_for("offer")
            with pytest.raises(ReplyError):
                await first.request("offer.decline", call_id=call_id, reason="   ")
            await first.request("offer.decline", call_id=call_id, reason="正在处理紧急事务")
            # the only eligible clerk gets it again, and may not decline twice
            await first.wait_for("offer", lambda m: m["call_id"] == call_id)
            with pytest.raises(ReplyError) as info:
                await first.request("offer.decline", call_id=call_id, reason="again")
            assert info.value.code == "decline_used"
            await first.request("offer.accept", call_id=call_id)
            await booth.wait_for("call.connected")


async def test_transfer_to_another_skill_carries_the_note(fast_settings):
    clerks = {"si": (["social_insurance"], ["east"]), "med": (["medical"], ["east", "west"])}
    with world(fast_settings, clerks=clerks) as w:
        si, med = await w.clerk("si"), await w.clerk("med")
        booth = await w.booth("b1")
        async with clients(si, med, booth):
            call_id = (await booth.request("call.request", item_code=w.item_by_skill["social_insurance"]))["call_id"]
            await si.wait_for("offer")
            await si.request("offer.accept", call_id=call_id)
            await booth.wait_for("call.connected")
            await booth.request("chat.send", call_id=call_id, text="给社保")
            assert (await si.wait_for("chat.message"))["text"] == "给社保"
            with pytest.raises(ReplyError) as info:
                await si.request("call.transfer", call_id=call_id, to_skill="astrology")
            assert info.value.code == "unknown_skill"
            await si.request("call.transfer", call_id=call_id, to_skill="medical", note="需办理医保异地备案")
            await booth.wait_for("call.transferring")
            with pytest.raises(ReplyError) as info:  # waiting again: nobody to talk to
                await booth.request("chat.send", call_id=call_id, text="还在吗")
            assert info.value.code == "call_not_found"
            await si.wait_for("presence.state", lambda m: m["status"] == "wrap_up")
            offer = await med.wait_for("offer")
            assert offer["call_id"] == call_id and offer["transfer_note"] == "需办理医保异地备案"
            await med.request("offer.accept", call_id=call_id)
            connected = await booth.wait_for("call.connected", lambda m: m["clerk"]["name"] == "MED")
            assert connected["call_id"] == call_id
            await booth.request("chat.send", call_id=call_id, text="给医保")
            assert (await med.wait_for("chat.message"))["text"] == "给医保"
            with pytest.raises(ReplyError) as info:  # the first clerk is out of the call, and anything
                await si.request("chat.send", call_id=call_id, text="我还在")  # sent to it has arrived
            assert info.value.code == "call_not_found"
            assert [m["text"] for m in si.pushes if m.get("type") == "chat.message"] == ["给社保"]
            await med.request("call.end", call_id=call_id)
            await booth.wait_for("call.ended")
            with pytest.raises(ReplyError) as info:
                await booth.request("chat.send", call_id=call_id, text="结束了吗")
            assert info.value.code == "call_not_found"
        engine = make_engine(w.settings.database_url)
        with Session(engine) as session:
            kinds = [e.kind for e in session.exec(select(Event).where(Event.session_id == call_id)
                                                  .order_by(col(Event.seq))) if e.kind.startswith("call.")]
        engine.dispose()
        assert kinds == ["call.queued", "call.offered", "call.answered", "call.transferred", "call.offered",
                         "call.answered", "call.ended"]


async def test_a_booth_may_not_touch_another_booths_call(fast_settings):
    with world(fast_settings) as w:
        b1, b2 = await w.booth("b1"), await w.booth("b2")
        async with clients(b1, b2):
            call_id = (await b1.request("call.request", item_code=w.item_by_skill["social_insurance"]))["call_id"]
            for mtype, fields in (("call.cancel", {}), ("chat.send", {"text": "hi"})):
                with pytest.raises(ReplyError) as info:
                    await b2.request(mtype, call_id=call_id, **fields)
                assert info.value.code == "call_not_found"
            with pytest.raises(ReplyError) as info:
                await b1.request("call.request", item_code=w.item_by_skill["medical"])
            assert info.value.code == "call_in_progress" and info.value.reply["call_id"] == call_id
