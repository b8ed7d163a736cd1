"""Faults on two real nodes sharing Redis and PostgreSQL lose nothing (each prints its figure).

- Redis restarted (empty: it keeps nothing on disk) while each node carries a live call and a
  queued one: `/readyz` says 503 on both meanwhile; afterwards the live calls carry on and every
  queued call is offered exactly once and answered.
- A node killed (SIGKILL) under a live call whose case is opened: its booth reconnects to the other
  node within 10 s, the call resumes in place (same call, no new case) and the chat goes on.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import Counter
from contextlib import closing

import httpx
import pytest
from sqlmodel import Session, col, select

from records.db import make_engine
from records.models import CallSession, CallStatus, Case, Event, ServiceItem
from signaling.protocol_client import ProtocolClient, login_cookie
from tests.cluster import cluster, private_redis, seed_cluster_world, wait_ready
from tests.signaling_fixtures import PASSWORD, clients
from tests.web_clients import login

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

CLERKS = {"c1": (["social_insurance"], ["east"]), "c2": (["social_insurance"], ["east"])}
BOOTHS = {"b1": "east", "b2": "east", "b3": "east", "b4": "east"}


def _events(database_url: str) -> list[Event]:
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            return list(session.exec(select(Event).order_by(col(Event.seq))))
    finally:
        engine.dispose()


async def _clerk(url: str, name: str) -> ProtocolClient:
    clerk = await ProtocolClient.connect(url, "seat", cookie=login_cookie(url, name, PASSWORD))
    await clerk.request("presence.set", status="available")
    return clerk


async def _live_call(booth: ProtocolClient, clerk: ProtocolClient, item: str) -> str:
    call_id = (await booth.request("call.request", item_code=item))["call_id"]
    await clerk.wait_for("offer", lambda m: m["call_id"] == call_id, timeout_s=15)
    await clerk.request("offer.accept", call_id=call_id)
    await booth.wait_for("call.connected", lambda m: m["call_id"] == call_id)
    return str(call_id)


async def _chat_reaches(sender: ProtocolClient, receiver: ProtocolClient, call_id: str, text: str) -> None:
    await sender.request("chat.send", call_id=call_id, text=text)
    await receiver.wait_for("chat.message", lambda m: m["call_id"] == call_id and m["text"] == text, timeout_s=10)


async def test_redis_restarted_under_calls_on_two_nodes_loses_and_doubles_nothing(tmp_path, postgres_url):
    with private_redis(tmp_path) as (url, redis_server):
        seeded = seed_cluster_world(tmp_path, postgres_url, booths=BOOTHS, clerks=CLERKS)
        item = seeded["item_by_skill"]["social_insurance"]
        with cluster(tmp_path, postgres_url, url, size=2, CLOUDSEAT_HEARTBEAT_S="0.5") as c:
            tokens = seeded["tokens"]
            c1, c2 = await _clerk(c[0].url, "c1"), await _clerk(c[1].url, "c2")
            b1 = await ProtocolClient.connect(c[0].url, "booth", token=tokens["b1"])
            b2 = await ProtocolClient.connect(c[1].url, "booth", token=tokens["b2"])
            b3 = await ProtocolClient.connect(c[0].url, "booth", token=tokens["b3"])
            b4 = await ProtocolClient.connect(c[1].url, "booth", token=tokens["b4"])
            async with clients(c1, c2, b1, b2, b3, b4):
                live = {}
                for booth, clerk in ((b1, c1), (b2, c2)):
                    live[await _live_call(booth, clerk, item)] = (booth, clerk)
                queued = [(await b.request("call.request", item_code=item))["call_id"] for b in (b3, b4)]

                stopped_at = time.monotonic()
                redis_server.stop()
                async with httpx.AsyncClient() as http:
                    for node in c.nodes:
                        ready = await http.get(f"{node.url}/readyz")
                        assert ready.status_code == 503 and ready.json()["checks"]["redis"] == "unavailable"
                redis_server.start()  # empty
                for node in c.nodes:
                    await asyncio.to_thread(wait_ready, node.url, None, 20)
                ready_s = time.monotonic() - stopped_at

                # The live calls carry on: chat both ways on each.
                for call_id, (booth, clerk) in live.items():
                    await _chat_reaches(booth, clerk, call_id, f"after-restart-{call_id[:4]}")
                    await _chat_reaches(clerk, booth, call_id, f"reply-{call_id[:4]}")
                # The clerks finish; each queued call is offered (once) and answered.
                answered = set()
                for call_id, (booth, clerk) in live.items():
                    await clerk.request("call.end", call_id=call_id)
                    await clerk.wait_for("presence.state", lambda m: m["status"] == "wrap_up")
                    await clerk.request("wrapup.done")
                for clerk in (c1, c2):
                    offer = await clerk.wait_for("offer", lambda m: m["call_id"] in queued, timeout_s=20)
                    await clerk.request("offer.accept", call_id=offer["call_id"])
                    answered.add(offer["call_id"])
                assert answered == set(queued)
                resumed_s = time.monotonic() - stopped_at

    events = _events(postgres_url)
    offered = Counter(e.session_id for e in events if e.kind == "call.offered")
    assert all(offered[call_id] == 1 for call_id in queued), offered
    assert all(offered[call_id] == 1 for call_id in live), offered
    print(json.dumps({"figure": "Redis restart, 2 nodes", "live_calls": len(live), "queued_calls": len(queued),
                      "ready_again_s": round(ready_s, 2), "queued_answered_s": round(resumed_s, 2),
                      "offers_per_queued_call": [offered[q] for q in queued]}))


async def test_a_killed_node_s_booth_resumes_on_the_other_node_within_10_s_keeping_its_case(
        tmp_path, postgres_url, redis_url):
    seeded = seed_cluster_world(tmp_path, postgres_url, booths=BOOTHS, clerks=CLERKS)
    item = seeded["item_by_skill"]["social_insurance"]
    with cluster(tmp_path, postgres_url, redis_url, size=2, CLOUDSEAT_HEARTBEAT_S="0.5",
                 CLOUDSEAT_RECONNECT_GRACE_S="30") as c:
        clerk = await _clerk(c[0].url, "c1")
        booth = await ProtocolClient.connect(c[1].url, "booth", token=seeded["tokens"]["b1"])
        async with clients(clerk, booth):
            call_id = await _live_call(booth, clerk, item)
            engine = make_engine(postgres_url)
            with Session(engine) as session:
                mandatory = [str(m["code"]) for m in session.get(ServiceItem, item).materials if m.get("mandatory")]
            with closing(login(c[0].url, "c1", PASSWORD)) as http:
                decided = await asyncio.to_thread(http.post, f"/api/seat/calls/{call_id}/decision",
                                                  json={"outcome": "accept", "accept_without": mandatory})
            assert decided.status_code == 201, decided.text
            number = decided.json()["case"]["number"]

            killed_at = time.monotonic()
            c[1].kill(signal.SIGKILL)  # the booth's node dies
            await asyncio.wait_for(booth.closed.wait(), 10)
            again = await ProtocolClient.connect(c[0].url, "booth", token=seeded["tokens"]["b1"])
            async with clients(again):
                back_s = time.monotonic() - killed_at
                assert again.welcome["node"] == "node-0"
                assert again.welcome["call"] == {"call_id": call_id, "status": "active", "item_code": item}
                await _chat_reaches(again, clerk, call_id, "我还在")
                await _chat_reaches(clerk, again, call_id, "好的，继续办理")
            with Session(engine) as session:
                cases = list(session.exec(select(Case).where(Case.session_id == call_id)))
                call = session.get(CallSession, call_id)
            engine.dispose()
    assert [k.number for k in cases] == [number] and call.status is CallStatus.ACTIVE
    print(json.dumps({"figure": "node killed, booth back on the other node", "back_in_call_s": round(back_s, 2)}))
    assert back_s <= 10.0
