"""The supervisors' live wall through the real server: snapshot and delta contents, region scope.

Real sockets (`ProtocolClient`) against the app on uvicorn, on SQLite and PostgreSQL (the
snapshot reads booths, regions and live calls from the records).  Deltas reach each
supervisor in publication order, so "a scoped supervisor got the last east push and no west
push before it" proves the west pushes were filtered, not merely late.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlmodel import Session

from records.accounts import create_user
from records.db import make_engine
from records.models import Role
from signaling.protocol_client import ProtocolClient, ReplyError
from signaling.switchboard import wall_visible
from tests.signaling_fixtures import PASSWORD, World, clients, world


@pytest.fixture
def wall_settings(app_settings, database_url):
    return app_settings.with_overrides(database_url=database_url)


def add_supervisor(w: World, username: str, regions: list[str]) -> None:
    engine = make_engine(w.settings.database_url)
    with Session(engine) as session:
        create_user(session, username=username, password=PASSWORD, role=Role.SUPERVISOR,
                    display_name=username.upper(), regions=regions)
        session.commit()
    engine.dispose()


def by_id(rows: list[dict[str, Any]], key: str) -> dict[Any, dict[str, Any]]:
    return {r[key]: r for r in rows}


async def snapshot(sup: ProtocolClient) -> dict[str, Any]:
    return (await sup.request("wall.snapshot"))["wall"]


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float) -> None:
    """Until `check()` holds: for what the server writes in the background (a batch, a flush)."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s"
        await asyncio.sleep(0.1)  # re-asking the server, not synchronising with it


async def test_snapshot_and_deltas_show_booths_clerks_queue_and_live_calls(wall_settings):
    with world(wall_settings) as w:
        b1, c1 = w.booth_ids["b1"], w.clerk_ids["c1"]
        item = w.item_by_skill["social_insurance"]
        sup = await w.supervisor()
        async with clients(sup):
            wall = sup.welcome["wall"]
            assert wall["scope"] is None and abs(wall["now"] - time.time()) < 5
            assert [r["code"] for r in wall["regions"]] == ["east", "west"]
            booths = by_id(wall["booths"], "booth_id")
            assert set(booths) == set(w.booth_ids.values())
            assert booths[b1] == {"booth_id": b1, "name": "b1", "region": "east", "online": False,
                                  "status": "offline", "node": None, "last_seen": None, "devices": {}}
            assert wall["clerks"] == [] and wall["queue"] == [] and wall["calls"] == []

            clerk = await w.clerk("c1")
            booth = await w.booth("b1")
            async with clients(clerk, booth):
                available = await sup.wait_for("wall.clerk", lambda m: m["clerk_id"] == c1 and m["status"] == "available")
                assert available["name"] == "C1" and available["regions"] == ["east"]
                assert available["skills"] == ["social_insurance"]
                online = await sup.wait_for("wall.booth", lambda m: m["booth_id"] == b1)
                assert online["region"] == "east" and online["state"]["status"] == "idle"
                await booth.request("device.status", devices={"printer": "paper_out", "camera": "ok"})
                devices = await sup.wait_for("wall.devices")
                assert devices["region"] == "east" and devices["devices"]["printer"] == "paper_out"

                call_id = (await booth.request("call.request", item_code=item))["call_id"]
                queued = await sup.wait_for("wall.queue", lambda m: m["call_id"] == call_id)
                entry = queued["entry"]
                assert queued["region"] == "east" and entry["booth_name"] == "b1" and entry["item_code"] == item
                assert entry["item_name_zh"] and entry["skill"] == "social_insurance" and entry["priority"] == 0
                assert abs(entry["enqueued_at"] - time.time()) < 5
                await clerk.wait_for("offer")
                ringing = await sup.wait_for("wall.clerk", lambda m: m["clerk_id"] == c1 and m["status"] == "ringing")
                offered = await sup.wait_for("wall.queue", lambda m: m["call_id"] == call_id
                                             and m["entry"] and m["entry"]["offered_to"] == c1)
                assert offered["entry"]["enqueued_at"] == entry["enqueued_at"]

                wall = await snapshot(sup)
                assert [q["call_id"] for q in wall["queue"]] == [call_id]
                assert wall["queue"][0]["offered_to"] == c1 and wall["queue"][0]["waiting_s"] >= 0
                clerk_row = by_id(wall["clerks"], "clerk_id")[c1]
                assert clerk_row["status"] == "ringing" and clerk_row["since"] == ringing["since"]  # time in state
                assert clerk_row["online"] is True and clerk_row["name"] == "C1"
                booth_row = by_id(wall["booths"], "booth_id")[b1]
                assert booth_row["online"] and booth_row["status"] == "queued"
                assert booth_row["devices"] == {"printer": "paper_out", "camera": "ok"}
                assert abs(booth_row["last_seen"] - time.time()) < 5

                await clerk.request("offer.accept", call_id=call_id)
                live = await sup.wait_for("wall.call", lambda m: m["call_id"] == call_id and m["status"] == "active")
                assert (live["region"], live["booth_id"], live["booth_name"]) == ("east", b1, "b1")
                assert (live["clerk_id"], live["clerk_name"], live["item_code"]) == (c1, "C1", item)
                assert live["item_name_zh"] and abs(live["started_at"] - time.time()) < 5
                in_call = await sup.wait_for("wall.clerk", lambda m: m["clerk_id"] == c1 and m["status"] == "in_call")

                wall = await snapshot(sup)
                assert wall["queue"] == []
                assert [c["call_id"] for c in wall["calls"]] == [call_id]
                assert {k: wall["calls"][0][k] for k in live if k not in ("type", "status")} == \
                    {k: v for k, v in live.items() if k not in ("type", "status")}
                assert by_id(wall["clerks"], "clerk_id")[c1]["since"] == in_call["since"]

                await clerk.request("call.end", call_id=call_id)
                ended = await sup.wait_for("wall.call", lambda m: m["call_id"] == call_id and m["status"] == "ended")
                assert ended["region"] == "east" and ended["booth_id"] == b1
                wrap = await sup.wait_for("wall.clerk", lambda m: m["clerk_id"] == c1 and m["status"] == "wrap_up")
                assert wrap["since"] >= in_call["since"]
            gone = await sup.wait_for("wall.booth", lambda m: m["booth_id"] == b1 and m["state"] is None)
            assert gone["region"] == "east" and gone["name"] == "b1" and abs(gone["last_seen"] - time.time()) < 5

            async def offline_with_last_seen() -> bool:
                row = by_id((await snapshot(sup))["booths"], "booth_id")[b1]
                return row["status"] == "offline" and row["last_seen"] is not None

            await eventually(offline_with_last_seen, 10)  # the records note a booth leaving in a batch
            assert (await snapshot(sup))["calls"] == []


async def test_a_scoped_supervisor_sees_only_their_regions_in_snapshot_and_deltas(wall_settings):
    with world(wall_settings) as w:
        add_supervisor(w, "sup-east", ["east"])
        east_sup, all_sup = await w.supervisor("sup-east"), await w.supervisor()
        b3 = w.booth_ids["b3"]
        c1, c2 = w.clerk_ids["c1"], w.clerk_ids["c2"]
        async with clients(east_sup, all_sup):
            wall = east_sup.welcome["wall"]
            assert wall["scope"] == ["east"]
            assert [r["code"] for r in wall["regions"]] == ["east"]
            assert {b["booth_id"] for b in wall["booths"]} == {w.booth_ids["b1"], w.booth_ids["b2"]}

            # West: a clerk, a booth, a call waiting, ringing, then live, a device report and an invitation.
            west_clerk = await w.clerk("c2")
            west_booth = await w.booth("b3")
            east_clerk = await w.clerk("c1")
            east_booth = await w.booth("b1")
            async with clients(west_clerk, west_booth, east_clerk, east_booth):
                await west_booth.request("device.status", devices={"printer": "error"})
                west_call = (await west_booth.request("call.request", item_code=w.item_by_skill["medical"]))["call_id"]
                await west_clerk.wait_for("offer")
                wall = await snapshot(east_sup)
                assert wall["queue"] == [] and b3 not in {b["booth_id"] for b in wall["booths"]}
                assert c2 not in {c["clerk_id"] for c in wall["clerks"]}
                assert c1 in {c["clerk_id"] for c in wall["clerks"]}
                await west_clerk.request("offer.accept", call_id=west_call)
                await west_clerk.request("call.invite_supervisor", call_id=west_call, note="west")
                await all_sup.wait_for("call.invite", lambda m: m["call_id"] == west_call)
                wall = await snapshot(east_sup)
                assert wall["calls"] == [] and wall["queue"] == []
                everything = await snapshot(all_sup)
                assert [c["call_id"] for c in everything["calls"]] == [west_call]
                with pytest.raises(ReplyError) as info:  # nor can they monitor it
                    await east_sup.request("monitor.join", call_id=west_call)
                assert info.value.code == "call_not_found"

                # East: devices and a call the east supervisor does see, live, then ended: the last push.
                await east_booth.request("device.status", devices={"printer": "ok"})
                east_call = (await east_booth.request("call.request",
                                                      item_code=w.item_by_skill["social_insurance"]))["call_id"]
                await east_clerk.wait_for("offer")
                await east_clerk.request("offer.accept", call_id=east_call)
                await east_sup.wait_for("wall.call", lambda m: m["call_id"] == east_call and m["status"] == "active")
                wall = await snapshot(east_sup)
                assert [c["call_id"] for c in wall["calls"]] == [east_call]
                await west_clerk.request("call.end", call_id=west_call)
                await east_clerk.request("call.end", call_id=east_call)
                await all_sup.wait_for("wall.call", lambda m: m["call_id"] == east_call and m["status"] == "ended")
                await east_sup.wait_for("wall.call", lambda m: m["call_id"] == east_call and m["status"] == "ended")

            # Pushes arrive in publication order: everything west was published before that last push.
            seen_by_all = all_sup.pushes
            assert any(m.get("region") == "west" for m in seen_by_all)
            assert any(m.get("type") == "wall.clerk" and m["clerk_id"] == c2 for m in seen_by_all)
            leaked = [m for m in east_sup.pushes
                      if m.get("region") == "west" or m.get("booth_id") == b3 or m.get("call_id") == west_call
                      or (m.get("type") == "wall.clerk" and m.get("clerk_id") == c2)]
            assert leaked == []
            east_types = {m["type"] for m in east_sup.pushes}
            assert {"wall.booth", "wall.devices", "wall.clerk", "wall.queue", "wall.call"} <= east_types


def test_wall_visible_scopes_by_region_and_clerk_regions():
    alert = {"type": "wall.alert", "alert": {"id": 1, "kind": "red", "region_code": "west"}}
    assert wall_visible((), alert) and wall_visible(("west",), alert) and not wall_visible(("east",), alert)
    assert wall_visible(("east",), {"type": "wall.booth", "region": "east"})
    assert not wall_visible(("east",), {"type": "wall.booth", "region": "west"})
    assert wall_visible(("east", "north"), {"type": "wall.clerk", "regions": ["north"]})
    assert not wall_visible(("east",), {"type": "wall.clerk", "regions": []})
    # A push that names no region goes to unscoped supervisors only.
    no_region = {"type": "wall.alert", "alert": {"id": 2, "region_code": None}}
    assert wall_visible((), no_region) and not wall_visible(("east",), no_region)


async def test_a_burst_of_booths_coming_and_going_is_logged_in_order_with_last_seen(wall_settings):
    """Presence is written in batches (one UPDATE and one INSERT per batch): nothing may be lost."""
    from sqlmodel import col, select

    from records.events import verify_chains
    from records.models import Booth, Event

    names = [f"p{i:02d}" for i in range(40)]
    with world(wall_settings, booths={name: "east" for name in names}) as w:
        booths = await asyncio.gather(*(w.booth(name) for name in names))
        async with clients(*booths[:10]):  # ten stay; thirty leave at once
            for booth in booths[10:]:
                await booth.close()
            engine = make_engine(w.settings.database_url)
            try:
                def logged() -> tuple[list[Event], list[Booth]]:
                    with Session(engine) as session:
                        events = list(session.exec(select(Event).where(col(Event.kind).in_(
                            ["booth.online", "booth.offline"])).order_by(col(Event.seq))))
                        return events, list(session.exec(select(Booth)))

                async def all_written() -> bool:
                    events, _ = await asyncio.to_thread(logged)
                    return sum(e.kind == "booth.offline" for e in events) == 30

                await eventually(all_written, 15)
                events, rows = await asyncio.to_thread(logged)
                ids = {w.booth_ids[name] for name in names}
                online = [e.booth_id for e in events if e.kind == "booth.online"]
                offline = [e.booth_id for e in events if e.kind == "booth.offline"]
                assert sorted(online) == sorted(ids), "every booth's coming online is one event"
                assert sorted(offline) == sorted(w.booth_ids[n] for n in names[10:])
                for booth_id in offline:  # each booth left after it came
                    came = next(e.seq for e in events if e.kind == "booth.online" and e.booth_id == booth_id)
                    left = next(e.seq for e in events if e.kind == "booth.offline" and e.booth_id == booth_id)
                    assert came < left
                seen = {r.id: r.last_seen_at for r in rows if r.id in ids}
                assert all(at is not None for at in seen.values()), seen
                with Session(engine) as session:
                    report = verify_chains(session)
                assert report.ok, report.first_break
            finally:
                engine.dispose()


async def test_welcome_is_the_first_frame_even_while_the_wall_is_busy(app_settings):
    """A supervisor connecting while clerks change state gets `welcome` first, never a `wall.clerk` before it."""
    with world(app_settings) as w:
        clerks = [await w.clerk("c1"), await w.clerk("c2")]
        stop = asyncio.Event()

        async def churn(clerk) -> None:
            while not stop.is_set():
                await clerk.request("presence.set", status="not_ready", reason="break")
                await clerk.request("presence.set", status="available")

        churners = [asyncio.create_task(churn(c)) for c in clerks]
        try:
            for _ in range(15):
                supervisors = await asyncio.gather(*(w.supervisor() for _ in range(3)))
                try:
                    for sup in supervisors:
                        assert sup.pushes[0]["type"] == "welcome", [p["type"] for p in sup.pushes[:3]]
                    # The wall did push to them meanwhile (the race this guards against was live).
                    await supervisors[0].wait_for("wall.clerk")
                finally:
                    for sup in supervisors:
                        await sup.close()
        finally:
            stop.set()
            await asyncio.gather(*churners)
            for clerk in clerks:
                await clerk.close()
