"""ID card reads through the real server: validation, booth and clerk scoping, masking, the logged reveal.

A Python booth and clerk (protocol clients) hold a live call.  The booth posts what its reader
read (as the booth agent does, with `booth.devices.id_card_form`); the clerk is pushed the
name, the masked number and the photo; the full number comes only on a reveal by the serving
clerk during the live call, which is logged with the masked number; after the call it is gone,
and it is never stored: not in any table, not in the event log, not in the file store.
"""

from __future__ import annotations

import io
from contextlib import closing
from typing import Any

from PIL import Image
from sqlalchemy import MetaData, select as sa_select
from sqlmodel import Session, select

from booth.devices import CardWatch, IdCard, SimulatedIdReader, id_card_form
from records.db import make_engine
from records.models import Event, Material
from tests.integration.test_decisions import live_call
from tests.signaling_fixtures import PASSWORD, World, booth_and_clerk_http, clients, world
from tests.web_clients import anonymous_client, booth_client, login

NUMBER = "11010519491231002X"
MASKED = "110105********002X"


def photo(fmt: str = "JPEG", size: tuple[int, int] = (102, 126)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (225, 210, 190)).save(out, fmt)
    return out.getvalue()


def send_card(http: Any, call_id: str, *, name: str = "张三", number: str = NUMBER, data: bytes | None = None,
              content_type: str = "image/jpeg") -> Any:
    fields, (field_name, filename, ctype, body) = id_card_form(
        call_id, IdCard(name=name, number=number, photo=data if data is not None else photo(), photo_type=content_type))
    return http.post("/api/booth/materials", data=fields, files={field_name: (filename, body, ctype)})


def error_code(response: Any) -> str:
    return str(response.json()["error"]["code"])


def database_text(w: World) -> str:
    """Every row of every table as text: the full number must appear nowhere."""
    engine = make_engine(w.settings.database_url)
    try:
        meta = MetaData()
        meta.reflect(engine)
        with engine.connect() as conn:
            return "\n".join(repr(row) for table in meta.sorted_tables for row in conn.execute(sa_select(table)))
    finally:
        engine.dispose()


def events(w: World, kind: str) -> list[Event]:
    engine = make_engine(w.settings.database_url)
    try:
        with Session(engine) as session:
            return list(session.exec(select(Event).where(Event.kind == kind).order_by(Event.seq)))
    finally:
        engine.dispose()


async def test_a_card_read_reaches_the_serving_clerk_masked_and_reveals_only_for_them(app_settings):
    with world(app_settings) as w:
        booth, clerk, other_booth = await w.booth("b1"), await w.clerk("c1"), await w.booth("b2")
        async with clients(booth, clerk, other_booth):
            call_id = await live_call(w, booth, clerk)
            with booth_and_clerk_http(w) as (b1, b2, c1, c2), closing(login(w.url, "sup", PASSWORD)) as sup, \
                    closing(anonymous_client(w.url)) as anon:
                # Bad reads are refused with a stable code and change nothing.
                assert error_code(send_card(b1, call_id, number="110105194912310021")) == "id_number_checksum"
                assert error_code(send_card(b1, call_id, number="11010519491231")) == "id_number_invalid"
                assert error_code(send_card(b1, call_id, name="")) == "id_name_invalid"
                assert error_code(send_card(b1, call_id, data=b"not a photo")) == "content_mismatch"
                assert error_code(send_card(b1, call_id, data=photo("WEBP"), content_type="image/webp")) \
                    == "content_type_not_allowed"
                no_number = b1.post("/api/booth/materials", data={"call_id": call_id, "kind": "id_photo", "id_name": "张三"},
                                    files={"file": ("p.jpg", photo(), "image/jpeg")})
                assert error_code(no_number) == "invalid"
                assert send_card(b2, call_id).status_code == 404  # another booth's call looks missing
                assert send_card(anon, call_id).status_code in (401, 403)
                assert events(w, "idcard.read") == [] and events(w, "material.added") == []

                # A good read: stored photo, masked everywhere, pushed to the serving clerk.
                made = send_card(b1, call_id, number=NUMBER.lower())
                assert made.status_code == 201, made.text
                body = made.json()
                assert body["kind"] == "id_photo" and body["id_number_masked"] == MASKED
                assert NUMBER not in made.text and NUMBER.lower() not in made.text
                pushed = await clerk.wait_for("idcard.read")
                assert pushed == {"type": "idcard.read", "call_id": call_id, "name": "张三", "id_number_masked": MASKED,
                                  "material_id": body["material_id"],
                                  "photo_url": f"/api/seat/materials/{body['material_id']}"}
                listed = c1.get(f"/api/seat/calls/{call_id}/materials").json()
                assert listed["id_card"]["id_number_masked"] == MASKED and "id_number" not in listed["id_card"]
                assert [m["kind"] for m in listed["materials"]] == ["id_photo"]
                shown = c1.get(listed["id_card"]["photo_url"])
                assert shown.status_code == 200 and shown.headers["content-type"] == "image/jpeg"
                [read] = events(w, "idcard.read")
                assert read.data == {"material_id": body["material_id"], "name": "张三", "id_number_masked": MASKED}

                # The reveal: the serving clerk only, with the CSRF token, logged with the masked form.
                reveal = f"/api/seat/calls/{call_id}/materials?reveal=id_number"
                assert c2.get(reveal).status_code == 404
                assert sup.get(reveal).status_code == 403
                assert b1.get(reveal).status_code == 403
                no_token = c1.get(reveal, headers={"x-csrf-token": ""})
                assert no_token.status_code == 403 and error_code(no_token) == "csrf"
                assert c1.get(f"/api/seat/calls/{call_id}/materials?reveal=everything").status_code == 400
                assert events(w, "idcard.revealed") == []
                revealed = c1.get(reveal)
                assert revealed.status_code == 200, revealed.text
                assert revealed.json()["id_card"]["id_number"] == NUMBER
                assert revealed.headers["cache-control"] == "no-store"
                [logged] = events(w, "idcard.revealed")
                assert logged.actor == f"user:{w.clerk_ids['c1']}" and logged.session_id == call_id
                assert logged.data == {"material_id": body["material_id"], "id_number_masked": MASKED}
                review = sup.get(f"/api/supervise/sessions/{call_id}")
                assert NUMBER not in review.text

                # After the call: no reveal, the summary stays masked, and the number is stored nowhere.
                await clerk.request("call.end", call_id=call_id)
                after = c1.get(reveal)
                assert after.status_code == 409 and error_code(after) == "call_not_active"
                assert c1.get(f"/api/seat/calls/{call_id}/materials").json()["id_card"]["id_number_masked"] == MASKED
                assert send_card(b1, call_id).status_code == 409  # no reads into an ended call
                everything = database_text(w)
                assert MASKED in everything
                assert NUMBER not in everything and NUMBER.lower() not in everything
                for path in (w.settings.data_dir / "files").rglob("*"):
                    if path.is_file():
                        assert NUMBER.encode() not in path.read_bytes()


async def test_a_reveal_needs_a_card_of_this_call(app_settings):
    with world(app_settings) as w:
        booth, clerk = await w.booth("b1"), await w.clerk("c1")
        async with clients(booth, clerk):
            call_id = await live_call(w, booth, clerk)
            with closing(login(w.url, "c1", PASSWORD)) as c1:
                missing = c1.get(f"/api/seat/calls/{call_id}/materials?reveal=id_number")
                assert missing.status_code == 404 and error_code(missing) == "id_card_not_found"
                assert c1.get(f"/api/seat/calls/{call_id}/materials").json()["id_card"] is None
                rows = database_text(w)
                assert "idcard.revealed" not in rows


async def test_the_photo_is_a_material_only_the_serving_clerk_sees_during_the_call(app_settings):
    with world(app_settings) as w:
        booth, clerk = await w.booth("b1"), await w.clerk("c1")
        async with clients(booth, clerk):
            call_id = await live_call(w, booth, clerk)
            with closing(booth_client(w.url, w.tokens["b1"])) as b1, closing(login(w.url, "c1", PASSWORD)) as c1, \
                    closing(login(w.url, "c2", PASSWORD)) as c2:
                data = photo("PNG")
                made = send_card(b1, call_id, data=data, content_type="image/png").json()
                engine = make_engine(w.settings.database_url)
                try:
                    with Session(engine) as session:
                        material = session.get(Material, made["material_id"])
                        assert material is not None and material.kind == "id_photo"
                        assert (material.width, material.height) == (102, 126)
                finally:
                    engine.dispose()
                assert c1.get(f"/api/seat/materials/{made['material_id']}").content == data
                assert c2.get(f"/api/seat/materials/{made['material_id']}").status_code == 404


async def test_the_simulated_reader_sends_a_placed_card_once(app_settings):
    """The booth side: a card counts when it is placed, and goes up as the agent sends it."""
    reader = SimulatedIdReader()
    watch = CardWatch(reader)
    assert watch.poll() is None
    reader.place()
    card = watch.poll()
    assert card is not None and card.number == NUMBER
    assert NUMBER not in repr(card)  # a device log line never carries the number
    assert watch.poll() is None  # still lying there: not read again
    reader.remove()
    assert watch.poll() is None
    reader.place()
    assert watch.poll() == card  # placed again: a new read
    with world(app_settings) as w:
        booth, clerk = await w.booth("b1"), await w.clerk("c1")
        async with clients(booth, clerk):
            call_id = await live_call(w, booth, clerk)
            fields, (field_name, filename, ctype, body) = id_card_form(call_id, card)
            with closing(booth_client(w.url, w.tokens["b1"])) as b1:
                made = b1.post("/api/booth/materials", data=fields, files={field_name: (filename, body, ctype)})
            assert made.status_code == 201, made.text
            pushed = await clerk.wait_for("idcard.read")
            assert (pushed["name"], pushed["id_number_masked"]) == ("测试样例", MASKED)
            with Image.open(io.BytesIO(body)) as img:
                assert img.size == (102, 126)
