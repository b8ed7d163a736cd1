"""Service hours, appointments, the supervisors' wall and invitations, through the real server."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, select

from records.db import make_engine
from records.models import Appointment
from signaling.protocol_client import ReplyError
from tests.signaling_fixtures import ALWAYS_OPEN, clients, world

TZ = ZoneInfo("Asia/Shanghai")


def closed_for_three_days() -> tuple[dict, datetime]:
    """Hours whose next three local days are holidays: closed now, open on day four at 09:00."""
    today = datetime.now(TZ).date()
    holidays = [(today + timedelta(days=d)).isoformat() for d in range(3)]
    every_day = [{"start": "09:00", "end": "17:00"}]
    hours = {"timezone": "Asia/Shanghai", "weekdays": every_day, "saturday": every_day, "sunday": every_day,
             "holidays": holidays}
    reopening = datetime.combine(today + timedelta(days=3), datetime.min.time(), TZ).replace(hour=9)
    return hours, reopening


@pytest.fixture
def fast_settings(app_settings):
    return app_settings.with_overrides(heartbeat_s=1.0)


async def test_outside_service_hours_the_booth_is_told_closed_with_the_next_opening(fast_settings):
    hours, reopening = closed_for_three_days()
    with world(fast_settings, regions={"east": hours, "west": ALWAYS_OPEN}) as w:
        closed, open_ = await w.booth("b1"), await w.booth("b3")
        async with clients(closed, open_):
            assert closed.welcome["service"] == {"open": False, "next_opening": reopening.isoformat(),
                                                 "clerks_online": 0}
            assert open_.welcome["service"]["open"] is True
            with pytest.raises(ReplyError) as info:
                await closed.request("call.request", item_code=w.item_by_skill["social_insurance"])
            assert info.value.code == "closed"
            assert datetime.fromisoformat(info.value.reply["next_opening"]) == reopening
            # booking the reopening slot works; a slot still inside the holidays does not
            booked = await closed.request("appointment.book", item_code=w.item_by_skill["social_insurance"],
                                          slot_start=reopening.isoformat(), contact="138****0000")
            assert datetime.fromisoformat(booked["slot_start"]) == reopening
            with pytest.raises(ReplyError) as info:
                await closed.request("appointment.book", item_code=w.item_by_skill["social_insurance"],
                                     slot_start=(reopening - timedelta(days=1)).isoformat())
            assert info.value.code == "bad_slot"
            with pytest.raises(ReplyError) as info:
                await closed.request("appointment.book", item_code=w.item_by_skill["social_insurance"],
                                     slot_start="2020-01-01T09:00:00+08:00")
            assert info.value.code == "bad_slot"
        engine = make_engine(w.settings.database_url)
        with Session(engine) as session:
            rows = session.exec(select(Appointment)).all()
        engine.dispose()
        assert [(r.booth_id, r.status) for r in rows] == [(w.booth_ids["b1"], "booked")]
        assert rows[0].slot_end - rows[0].slot_start == timedelta(minutes=30)


async def test_supervisor_wall_sees_booths_clerks_queue_and_invitations(fast_settings):
    with world(fast_settings) as w:
        sup = await w.supervisor()
        async with clients(sup):
            assert sup.welcome["role"] == "supervisor" and sup.welcome["wall"]["queue"] == []
            clerk = await w.clerk("c1")
            booth = await w.booth("b1")
            async with clients(clerk, booth):
                await sup.wait_for("wall.booth", lambda m: m["booth_id"] == w.booth_ids["b1"])
                await sup.wait_for("wall.clerk", lambda m: m["clerk_id"] == w.clerk_ids["c1"]
                                   and m["status"] == "available")
                await booth.request("device.status", devices={"printer": "paper_out"})
                devices = await sup.wait_for("wall.devices")
                assert devices["devices"] == {"printer": "paper_out"}
                call_id = (await booth.request("call.request",
                                               item_code=w.item_by_skill["social_insurance"]))["call_id"]
                await clerk.wait_for("offer")
                snapshot = (await sup.request("wall.snapshot"))["wall"]
                assert [q["call_id"] for q in snapshot["queue"]] == [call_id]
                assert snapshot["queue"][0]["offered_to"] == w.clerk_ids["c1"]
                assert {c["clerk_id"]: c["status"] for c in snapshot["clerks"]}[w.clerk_ids["c1"]] == "ringing"
                await clerk.request("offer.accept", call_id=call_id)
                await sup.wait_for("wall.call", lambda m: m["call_id"] == call_id and m["status"] == "active")
                await clerk.request("call.invite_supervisor", call_id=call_id, note="群众对政策有疑问")
                invite = await sup.wait_for("call.invite")
                assert invite["call_id"] == call_id and invite["note"] == "群众对政策有疑问"
                with pytest.raises(ReplyError) as info:  # supervisors watch; they do not take calls
                    await sup.request("offer.accept", call_id=call_id)
                assert info.value.code == "not_allowed"
