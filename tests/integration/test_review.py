"""Session review over the real server: HTTP Range on recordings, the access log, roles and scopes.

The world: regions east and west; booth b1 (east) called and clerk c1 served call E, booth b3 (west)
called and clerk c2 served call W; each call has a recording file (known bytes), an audio track and a
material.  Supervisor `sup` sees everything, `sup_east` only the east region; booths and anonymous
visitors are refused on every review route.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import ExitStack, closing
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlmodel import Session, select

from records.accounts import create_user
from records.calls import create_call, mark_answered, mark_ended
from records.db import make_engine
from records.materials import add_material
from records.models import Event, Role, User
from records.recordings import add_recording
from records.storage import FileStore
from tests.signaling_fixtures import PASSWORD, World, world
from tests.web_clients import anonymous_client, booth_client, login

SIZE = 100_000
DATA = bytes((i * 7 + i // 256) % 256 for i in range(SIZE))  # no two neighbouring ranges look alike


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (20, 120, 200)).save(out, "PNG")
    return out.getvalue()


@dataclass
class Seeded:
    w: World
    calls: dict[str, str]  # "E" / "W" -> call id
    video: dict[str, int]  # recording ids
    audio: dict[str, int]
    material: dict[str, int]
    user_ids: dict[str, int]


def _seed_call(session: Session, store: FileStore, booth_id: int, clerk_id: int, item: str) -> tuple[str, int, int, int]:
    call = create_call(session, booth_id=booth_id, item_code=item)
    mark_answered(session, call.id, clerk_id=clerk_id)
    material = add_material(session, store, session_id=call.id, kind="capture", data=png(), content_type="image/png",
                            actor=f"booth:{booth_id}")
    mark_ended(session, call.id, "hangup_clerk")
    folder = store.root / "recordings" / call.id
    folder.mkdir(parents=True)
    (folder / "booth-face-1.webm").write_bytes(DATA)
    (folder / "booth-audio-1.webm").write_bytes(DATA[:1000])
    video = add_recording(session, store, session_id=call.id, track="booth-face",
                          path=f"recordings/{call.id}/booth-face-1.webm", codec="VP8", duration_s=3.0)
    audio = add_recording(session, store, session_id=call.id, track="booth-audio",
                          path=f"recordings/{call.id}/booth-audio-1.webm", codec="opus", duration_s=3.0)
    assert video.id and audio.id and material.id
    return call.id, video.id, audio.id, material.id


@pytest.fixture
def seeded(app_settings) -> Iterator[Seeded]:
    with world(app_settings) as w:
        engine = make_engine(w.settings.database_url)
        store = FileStore(w.settings.data_dir / "files")
        item = w.item_by_skill["social_insurance"]
        try:
            with Session(engine) as session:
                east = create_user(session, username="sup_east", password=PASSWORD, role=Role.SUPERVISOR,
                                   regions=["east"])
                e = _seed_call(session, store, w.booth_ids["b1"], w.clerk_ids["c1"], item)
                west = _seed_call(session, store, w.booth_ids["b3"], w.clerk_ids["c2"], item)
                sup_id = int(session.exec(select(User.id).where(User.username == "sup")).one() or 0)
                session.commit()
                user_ids = {"sup": sup_id, "sup_east": int(east.id or 0), **w.clerk_ids}
        finally:
            engine.dispose()
        yield Seeded(w, {"E": e[0], "W": west[0]}, {"E": e[1], "W": west[1]}, {"E": e[2], "W": west[2]},
                     {"E": e[3], "W": west[3]}, user_ids)


def access_events(s: Seeded, kind: str) -> list[Event]:
    engine = make_engine(s.w.settings.database_url)
    try:
        with Session(engine) as session:
            return list(session.exec(select(Event).where(Event.kind == kind).order_by(Event.seq)))
    finally:
        engine.dispose()


@pytest.fixture
def clients(seeded: Seeded) -> Iterator[dict[str, httpx.Client]]:
    with ExitStack() as stack:
        out = {name: stack.enter_context(closing(login(seeded.w.url, name, PASSWORD)))
               for name in ("sup", "sup_east", "c1", "c2")}
        out["booth"] = stack.enter_context(closing(booth_client(seeded.w.url, seeded.w.tokens["b1"])))
        out["anonymous"] = stack.enter_context(closing(anonymous_client(seeded.w.url)))
        yield out


def review_paths(s: Seeded, key: str) -> list[str]:
    return [f"/supervise/sessions/{s.calls[key]}", f"/api/supervise/sessions/{s.calls[key]}",
            f"/api/supervise/recordings/{s.video[key]}", f"/api/supervise/materials/{s.material[key]}"]


def test_range_requests_on_a_recording(seeded: Seeded, clients: dict[str, httpx.Client]):
    sup = clients["sup"]
    url = f"/api/supervise/recordings/{seeded.video['E']}"

    whole = sup.get(url)
    assert whole.status_code == 200 and whole.content == DATA
    assert whole.headers["accept-ranges"] == "bytes" and whole.headers["content-type"] == "video/webm"
    assert whole.headers["content-length"] == str(SIZE) and "no-store" in whole.headers["cache-control"]

    first = sup.get(url, headers={"range": "bytes=0-99"})
    assert first.status_code == 206 and first.content == DATA[:100]
    assert first.headers["content-range"] == f"bytes 0-99/{SIZE}" and first.headers["content-length"] == "100"

    middle = sup.get(url, headers={"range": "bytes=500-1499"})
    assert middle.status_code == 206 and middle.content == DATA[500:1500]
    assert middle.headers["content-range"] == f"bytes 500-1499/{SIZE}"

    open_ended = sup.get(url, headers={"range": f"bytes={SIZE - 10}-"})
    assert open_ended.status_code == 206 and open_ended.content == DATA[-10:]

    suffix = sup.get(url, headers={"range": "bytes=-300"})
    assert suffix.status_code == 206 and suffix.content == DATA[-300:]
    assert suffix.headers["content-range"] == f"bytes {SIZE - 300}-{SIZE - 1}/{SIZE}"

    beyond = sup.get(url, headers={"range": f"bytes={SIZE}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{SIZE}"

    audio = sup.get(f"/api/supervise/recordings/{seeded.audio['E']}", headers={"range": "bytes=0-"})
    assert audio.status_code == 206 and audio.headers["content-type"] == "audio/webm" and audio.content == DATA[:1000]


def test_a_playback_is_logged_once_not_per_chunk(seeded: Seeded, clients: dict[str, httpx.Client]):
    sup = clients["sup"]
    url = f"/api/supervise/recordings/{seeded.video['E']}"

    def played() -> list[Event]:
        return access_events(seeded, "recording.played")

    assert played() == []
    # A browser's playback: the first request from byte 0, then chunks and seeks further in.
    assert sup.get(url, headers={"range": "bytes=0-"}).status_code == 206
    for header in ("bytes=65536-", "bytes=20000-29999", "bytes=-300"):
        assert sup.get(url, headers={"range": header}).status_code == 206
    assert sup.head(url).status_code == 200
    events = played()
    assert len(events) == 1
    event = events[0]
    assert event.actor == f"user:{seeded.user_ids['sup']}" and event.session_id == seeded.calls["E"]
    assert event.data == {"recording_id": seeded.video["E"], "track": "booth-face"}
    # A second playback (a download without Range is one too); a refused request logs nothing.
    assert sup.get(url).status_code == 200
    assert clients["c2"].get(url, headers={"range": "bytes=0-"}).status_code == 404
    assert len(played()) == 2


def test_every_material_view_is_logged(seeded: Seeded, clients: dict[str, httpx.Client]):
    sup = clients["sup"]
    url = f"/api/supervise/materials/{seeded.material['E']}"
    for _ in range(2):
        response = sup.get(url)
        assert response.status_code == 200 and response.content == png()
        assert response.headers["content-type"] == "image/png" and "no-store" in response.headers["cache-control"]
    viewed = access_events(seeded, "material.viewed")
    assert len(viewed) == 2
    assert all(e.actor == f"user:{seeded.user_ids['sup']}" and e.session_id == seeded.calls["E"]
               and e.data == {"material_id": seeded.material["E"]} for e in viewed)
    # The session's page lists them in its access log, apart from the call's own time line.
    review = sup.get(f"/api/supervise/sessions/{seeded.calls['E']}").json()
    assert [e["kind"] for e in review["accesses"]] == ["material.viewed", "material.viewed"]
    assert "material.viewed" not in {e["kind"] for e in review["events"]}


def test_the_serving_clerk_sees_their_session_and_no_other(seeded: Seeded, clients: dict[str, httpx.Client]):
    c1, c2 = clients["c1"], clients["c2"]
    for path in review_paths(seeded, "E"):
        assert c1.get(path).status_code == 200, path
        assert c2.get(path).status_code == 404, path
    assert c2.get(f"/api/supervise/recordings/{seeded.video['E']}", headers={"range": "bytes=100-"}).status_code == 404
    listed = c1.get("/api/supervise/sessions").json()
    assert [r["call_id"] for r in listed["sessions"]] == [seeded.calls["E"]] and listed["total"] == 1
    assert [r["call_id"] for r in c2.get("/api/supervise/sessions").json()["sessions"]] == [seeded.calls["W"]]
    # Their pages show the clerk's own navigation, not the supervisor's.
    page = c1.get("/supervise/sessions", headers={"accept": "text/html"}).text
    assert 'data-testid="nav-console"' in page and 'data-testid="nav-wall"' not in page
    assert seeded.calls["E"] in page and seeded.calls["W"] not in page


def test_booths_and_anonymous_get_nothing(seeded: Seeded, clients: dict[str, httpx.Client]):
    paths = ["/supervise/sessions", "/api/supervise/sessions", *review_paths(seeded, "E"), *review_paths(seeded, "W")]
    for path in paths:
        booth = clients["booth"].get(path, headers={"range": "bytes=0-"})
        assert booth.status_code == 403 and booth.json()["error"]["code"] == "forbidden", path
        anonymous = clients["anonymous"].get(path, headers={"range": "bytes=0-"})
        assert anonymous.status_code == 401, path
    assert access_events(seeded, "recording.played") == [] and access_events(seeded, "material.viewed") == []


def test_a_region_scoped_supervisor_sees_only_their_region(seeded: Seeded, clients: dict[str, httpx.Client]):
    east, sup = clients["sup_east"], clients["sup"]
    for path in review_paths(seeded, "W"):
        assert east.get(path).status_code == 404, path
        assert sup.get(path).status_code == 200, path
    for path in review_paths(seeded, "E"):
        assert east.get(path).status_code == 200, path
    assert [r["call_id"] for r in east.get("/api/supervise/sessions").json()["sessions"]] == [seeded.calls["E"]]
    assert east.get("/api/supervise/sessions", params={"region": "west"}).json()["total"] == 0
    assert sup.get("/api/supervise/sessions").json()["total"] == 2
    page = east.get("/supervise/sessions", headers={"accept": "text/html"}).text
    assert seeded.calls["W"] not in page and 'value="west"' not in page


def test_filters_over_http_and_bad_input(seeded: Seeded, clients: dict[str, httpx.Client]):
    sup = clients["sup"]
    by_booth = sup.get("/api/supervise/sessions", params={"booth": seeded.w.booth_ids["b3"]}).json()
    assert [r["call_id"] for r in by_booth["sessions"]] == [seeded.calls["W"]]
    by_clerk = sup.get("/api/supervise/sessions", params={"clerk": seeded.w.clerk_ids["c1"], "outcome": "ended"}).json()
    assert [r["call_id"] for r in by_clerk["sessions"]] == [seeded.calls["E"]]
    assert sup.get("/api/supervise/sessions", params={"rating": "none", "has_alert": "no", "from": "2020-01-01",
                                                      "to": "2099-12-31", "per_page": 1}).json()["pages"] == 2
    assert sup.get("/api/supervise/sessions", params={"outcome": "accepted"}).json()["total"] == 0
    for params in ({"outcome": "won"}, {"rating": "9"}, {"from": "2026-13-01"}, {"booth": "x"}, {"page": "0"},
                   {"has_alert": "maybe"}, {"per_page": "1000"}, {"sort": "asc"}, {"from": "2026-02-01", "to": "2026-01-01"},
                   {"region": "no spaces"}):
        response = sup.get("/api/supervise/sessions", params=params)
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid", params
    page = sup.get("/supervise/sessions", params={"outcome": "won"}, headers={"accept": "text/html"})
    assert page.status_code == 400 and 'role="alert"' in page.text
    assert sup.get("/api/supervise/sessions/not-a-uuid").status_code == 400
    assert sup.get("/api/supervise/sessions/00000000-0000-4000-8000-000000000000").status_code == 404
    assert sup.get("/supervise/sessions/00000000-0000-4000-8000-000000000000",
                   headers={"accept": "text/html"}).status_code == 404
    assert sup.get("/api/supervise/recordings/999999").status_code == 404
    assert sup.get("/api/supervise/materials/999999").status_code == 404


def test_the_session_api_assembles_the_review(seeded: Seeded, clients: dict[str, httpx.Client]):
    review: dict[str, Any] = clients["sup"].get(f"/api/supervise/sessions/{seeded.calls['E']}").json()
    assert review["call"]["call_id"] == seeded.calls["E"] and review["call"]["booth"]["name"] == "b1"
    assert {r["track"]: r["url"] for r in review["recordings"]} == {
        "booth-face": f"/api/supervise/recordings/{seeded.video['E']}",
        "booth-audio": f"/api/supervise/recordings/{seeded.audio['E']}"}
    assert [m["url"] for m in review["materials"]] == [f"/api/supervise/materials/{seeded.material['E']}"]
    kinds = [e["kind"] for e in review["events"]]
    assert kinds[:2] == ["call.queued", "call.answered"] and "material.added" in kinds and "call.ended" in kinds
