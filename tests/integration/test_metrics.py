"""/metrics on a real server: the figures move as a real call flow moves, and only allowed callers read them.

Scrapes go over HTTP and are parsed with prometheus_client's own parser, so a malformed
exposition fails too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import closing

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func
from sqlmodel import Session, select

from booth.simulator import BoothPlan, run_booth
from cloudseat.app import create_app
from records.accounts import create_user
from records.db import make_engine
from records.models import Event, Recording, Role
from seat.simulator import SeatPlan, run_seat
from signaling.protocol_media import MediaPeer
from tests.live_server import serve
from tests.media_helpers import wait_until
from tests.signaling_fixtures import PASSWORD, World, clients, seed_world, world
from tests.web_clients import anonymous_client, login

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition, by (sample name, labels)."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset({"node": "node-1", **labels}.items())))


async def scrape(url: str) -> Samples:
    async with httpx.AsyncClient(base_url=url) as client:  # async: the simulators share this loop
        response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


async def scrape_until(url: str, check: Callable[[Samples], bool], what: str, timeout_s: float = 10.0) -> Samples:
    """Scrape until `check` holds (the figures follow the flow a moment later, never before)."""
    deadline = time.monotonic() + timeout_s
    while True:
        samples = await scrape(url)
        if check(samples):
            return samples
        assert time.monotonic() < deadline, f"metrics never showed {what}: {sorted(samples)[:50]}"
        await asyncio.sleep(0.05)  # polling the endpoint: the server tells no one when a figure moves


def event_count(settings) -> int:
    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as session:
            return int(session.exec(select(func.count()).select_from(Event)).one())
    finally:
        engine.dispose()


@pytest.fixture(params=["memory", "redis"])
def fast_settings(request, app_settings):
    """The in-process bus and the Redis bus (its queue and clerk reads are what the gauges show)."""
    settings = app_settings.with_overrides(offer_timeout_s=5.0, heartbeat_s=1.0, reconnect_grace_s=2.0)
    if request.param == "redis":
        import uuid

        settings = settings.with_overrides(redis_url=request.getfixturevalue("redis_url"),
                                           redis_prefix=f"test:{uuid.uuid4().hex[:12]}:")
    return settings


async def test_queue_calls_offers_abandons_and_event_appends_follow_a_call_flow(fast_settings):
    seeded = seed_world(fast_settings)
    events_before = event_count(fast_settings)  # seeding wrote these, through another engine
    with serve(create_app(fast_settings)) as server:
        w = World(server=server, settings=fast_settings, **seeded)
        queue = dict(region="east", skill="social_insurance")
        start = await scrape(w.url)
        assert value(start, "cloudseat_offers_total") == 0
        assert value(start, "cloudseat_calls_live") == 0
        assert value(start, "cloudseat_queue_calls", **queue) is None

        clerk = await w.clerk("c1", available=False)
        booth = await w.booth("b1")
        async with clients(clerk, booth):
            call_id = (await booth.request("call.request", item_code=w.item_by_skill["social_insurance"]))["call_id"]
            waiting = await scrape(w.url)
            assert value(waiting, "cloudseat_queue_calls", **queue) == 1
            assert value(waiting, "cloudseat_queue_oldest_wait_seconds", **queue) >= 0
            assert value(waiting, "cloudseat_connections", role="booth") == 1
            assert value(waiting, "cloudseat_clerks", state="not_ready") == 1

            await clerk.request("presence.set", status="available")
            await clerk.wait_for("offer", lambda m: m["call_id"] == call_id)
            ringing = await scrape(w.url)
            assert value(ringing, "cloudseat_offers_total") == 1
            assert value(ringing, "cloudseat_clerks", state="ringing") == 1
            assert value(ringing, "cloudseat_queue_calls", **queue) == 1  # an offered call still waits

            await clerk.request("offer.accept", call_id=call_id)
            await booth.wait_for("call.connected")
            live = await scrape(w.url)
            assert value(live, "cloudseat_calls_live") == 1
            assert value(live, "cloudseat_clerks", state="in_call") == 1
            assert value(live, "cloudseat_queue_calls", **queue) is None
            assert value(live, "cloudseat_offers_total") == 1

            await clerk.request("call.end", call_id=call_id)
            await booth.wait_for("call.ended")
            ended = await scrape(w.url)
            assert value(ended, "cloudseat_calls_live") == 0
            assert value(ended, "cloudseat_clerks", state="wrap_up") == 1

            cancelled = (await booth.request("call.request", item_code=w.item_by_skill["social_insurance"]))["call_id"]
            await booth.request("call.cancel", call_id=cancelled)
            gone = await scrape(w.url)
            assert value(gone, "cloudseat_abandons_total", reason="cancelled") == 1
            assert value(gone, "cloudseat_offers_total") == 1  # the clerk was in wrap-up: never offered

        # Every event this server committed, and no other: the log's growth since seeding.
        def appended_match(samples: Samples) -> bool:
            return value(samples, "cloudseat_event_log_appends_total") == event_count(fast_settings) - events_before

        final = await scrape_until(w.url, appended_match, "event appends equal to the log's growth")
        assert value(final, "cloudseat_event_log_appends_total") > 0


async def test_a_media_call_shows_streams_packets_and_recording_bytes(tmp_path):
    from cloudseat.settings import Settings

    settings = Settings(data_dir=tmp_path / "var", public_base_url="http://127.0.0.1:8000")
    with world(settings) as w:
        booth_peers: list[MediaPeer] = []
        seat_peers: list[MediaPeer] = []
        ready = asyncio.Event()
        seat_task = asyncio.create_task(run_seat(w.url, "c1", PASSWORD, SeatPlan(handle_s=6.0, jitter=0.0, calls=1),
                                                 ready=ready, media=True, on_media=seat_peers.append))
        await asyncio.wait_for(ready.wait(), 20)
        booth_task = asyncio.create_task(run_booth(
            w.url, w.tokens["b1"], BoothPlan(item_code=w.item_by_skill["social_insurance"], answer_timeout_s=30),
            media=True, on_media=booth_peers.append))
        await wait_until(lambda: bool(booth_peers and seat_peers), 30, "both media peers")
        await booth_peers[0].wait_frames("clerk-camera", 5, 20)
        await seat_peers[0].wait_frames("booth-face", 5, 20)

        # booth: face, document, microphone; clerk: camera, microphone -- in, and each forwarded to the other
        def all_streams(samples: Samples) -> bool:
            return all(value(samples, "cloudseat_media_streams", direction=d, kind=k) == n
                       for d in ("in", "out") for k, n in (("video", 3), ("audio", 2)))

        during = await scrape_until(w.url, all_streams, "3 video and 2 audio streams in and out")
        assert value(during, "cloudseat_media_rooms") == 1
        assert value(during, "cloudseat_media_participants") == 2
        assert value(during, "cloudseat_media_recording_tracks") == 5
        assert value(during, "cloudseat_media_packets_received_total", kind="video") > 0
        assert value(during, "cloudseat_media_packets_received_total", kind="audio") > 0
        assert value(during, "cloudseat_media_packets_lost_total", kind="video") >= 0
        assert value(during, "cloudseat_recording_bytes_total") > 0
        later = await scrape_until(
            w.url, lambda s: value(s, "cloudseat_recording_bytes_total") > value(during, "cloudseat_recording_bytes_total")
            and value(s, "cloudseat_media_packets_received_total", kind="video")
            > value(during, "cloudseat_media_packets_received_total", kind="video"),
            "recording bytes and packets growing during the call")
        assert value(later, "cloudseat_calls_live") == 1

        await asyncio.wait_for(seat_task, 60)
        await asyncio.wait_for(booth_task, 60)

        def recorded() -> list[Recording]:
            engine = make_engine(settings.database_url)
            try:
                with Session(engine) as session:
                    return list(session.exec(select(Recording)))
            finally:
                engine.dispose()

        after = await scrape_until(w.url, lambda s: value(s, "cloudseat_media_rooms") == 0, "the room closed")
        await wait_until(lambda: len(recorded()) == 5, 30, "five recording rows")
        files = recorded()
        written = value(after, "cloudseat_recording_bytes_total")
        # Payload bytes only: the files hold them plus container framing (under 1 % measured).
        assert 0.95 * sum(r.size for r in files) < written <= sum(r.size for r in files)
        assert value(after, "cloudseat_recording_files_total") == 5
        assert value(after, "cloudseat_calls_live") == 0
        assert value(after, "cloudseat_media_streams", direction="in", kind="video") == 0


def _add_admin(settings) -> None:
    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as session:
            create_user(session, username="root", password=PASSWORD, role=Role.ADMIN, display_name="ROOT")
            session.commit()
    finally:
        engine.dispose()


def test_metrics_are_refused_outside_the_allowed_addresses_except_to_admins(app_settings):
    settings = app_settings.with_overrides(metrics_allow=("10.1.0.0/16",), trusted_proxies=("127.0.0.1/32",))
    with world(settings) as w:
        _add_admin(settings)
        with closing(anonymous_client(w.url)) as anonymous:
            refused = anonymous.get("/metrics")  # from 127.0.0.1, not allowed here
            assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
            assert "cloudseat_" not in refused.text
            # Behind the trusted proxy (127.0.0.1) the client is the forwarded address.
            assert anonymous.get("/metrics", headers={"x-forwarded-for": "203.0.113.9"}).status_code == 403
            scraper = anonymous.get("/metrics", headers={"x-forwarded-for": "10.1.2.3"})
            assert scraper.status_code == 200 and "cloudseat_offers_total" in scraper.text
        with closing(login(w.url, "root", PASSWORD)) as admin:
            assert admin.get("/metrics", headers={"x-forwarded-for": "203.0.113.9"}).status_code == 200
        with closing(login(w.url, "c1", PASSWORD)) as clerk:
            assert clerk.get("/metrics", headers={"x-forwarded-for": "10.1.2.3"}).status_code == 403
