"""Signatures through the real server: the clerk asks, the booth uploads a PNG, the clerk sees it.

A Python booth and clerk hold a live call.  `POST /api/seat/calls/{id}/capture {"kind":
"signature"}` pushes `signature.request` to the booth (logged `signature.requested`); the
booth's PNG becomes a material of kind `signature` (logged `material.added`) and the clerk is
pushed `material.added` with that kind.  Anything but a real PNG within the limits, another
booth's call, or a call that is over is refused with a stable code, and nothing is stored.
"""

from __future__ import annotations

import io
from contextlib import closing
from typing import Any

import pytest
from PIL import Image
from sqlmodel import Session, select

from records.db import make_engine
from records.models import Event, Material
from tests.integration.test_decisions import live_call
from tests.signaling_fixtures import World, booth_and_clerk_http, clients, world
from tests.web_clients import booth_client


def signature_png(size: tuple[int, int] = (1200, 400)) -> bytes:
    image = Image.new("RGBA", size, (255, 255, 255, 0))
    image.paste((20, 20, 20, 255), (100, 180, size[0] - 100, 200))  # one stroke
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def sign(http: Any, call_id: str, data: bytes, content_type: str = "image/png", **extra: str) -> Any:
    return http.post("/api/booth/materials", data={"call_id": call_id, "kind": "signature", **extra},
                     files={"file": ("signature.png", data, content_type)})


def stored(w: World) -> tuple[list[Material], list[Event]]:
    engine = make_engine(w.settings.database_url)
    try:
        with Session(engine) as session:
            return list(session.exec(select(Material))), list(session.exec(select(Event).order_by(Event.seq)))
    finally:
        engine.dispose()


def error_code(response: Any) -> str:
    return str(response.json()["error"]["code"])


async def test_the_clerk_asks_the_booth_signs_and_the_clerk_gets_the_signature(app_settings):
    with world(app_settings) as w:
        booth, clerk, other_booth = await w.booth("b1"), await w.clerk("c1"), await w.booth("b2")
        async with clients(booth, clerk, other_booth):
            call_id = await live_call(w, booth, clerk)
            with booth_and_clerk_http(w) as (b1, b2, c1, c2):
                ask = f"/api/seat/calls/{call_id}/capture"
                assert c2.post(ask, json={"kind": "signature"}).status_code == 404  # not their call
                assert error_code(c1.post(ask, json={"kind": "autograph"})) == "invalid"
                assert error_code(c1.post(ask, json={"kind": "signature", "material_code": "id_card"})) == "invalid"
                asked = c1.post(ask, json={"kind": "signature"})
                assert asked.status_code == 202 and asked.json()["kind"] == "signature"
                assert await booth.wait_for("signature.request") == {"type": "signature.request", "call_id": call_id}
                requested = [e for e in stored(w)[1] if e.kind == "signature.requested"]
                assert len(requested) == 1 and requested[0].actor == f"user:{w.clerk_ids['c1']}"

                data = signature_png()
                made = sign(b1, call_id, data)
                assert made.status_code == 201, made.text
                body = made.json()
                assert (body["kind"], body["content_type"], body["width"], body["height"]) == \
                    ("signature", "image/png", 1200, 400)
                added = await clerk.wait_for("material.added")
                assert added["kind"] == "signature" and added["material_id"] == body["material_id"]
                listed = c1.get(f"/api/seat/calls/{call_id}/materials").json()["materials"]
                assert [(m["material_id"], m["kind"]) for m in listed] == [(body["material_id"], "signature")]
                assert c1.get(listed[0]["url"]).content == data
                materials, log = stored(w)
                assert [m.kind for m in materials] == ["signature"]
                assert [e.data["kind"] for e in log if e.kind == "material.added"] == ["signature"]
                assert sign(b2, call_id, data).status_code == 404  # another booth's call looks missing

                await clerk.request("call.end", call_id=call_id)
                assert error_code(sign(b1, call_id, data)) == "call_not_active"
                assert error_code(c1.post(ask, json={"kind": "signature"})) == "call_not_active"
                assert len(stored(w)[0]) == 1


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (600, 200), (255, 255, 255)).save(out, "JPEG")
    return out.getvalue()


@pytest.mark.parametrize("data, content_type, extra, status, code", [
    (b"\x89PNG\r\n\x1a\nnot a png at all", "image/png", {}, 400, "content_mismatch"),
    (jpeg(), "image/png", {}, 400, "content_mismatch"),  # a JPEG that says it is a PNG
    (jpeg(), "image/jpeg", {}, 400, "content_type_not_allowed"),
    (b"", "image/png", {}, 400, "empty_file"),
    (signature_png((5000, 200)), "image/png", {}, 400, "image_too_large"),
    (signature_png(), "image/png", {"material_code": "id_card"}, 400, "invalid"),
    (signature_png(), "image/png", {"id_number": "11010519491231002X"}, 400, "invalid"),
])
async def test_bad_signatures_are_refused_and_store_nothing(app_settings, data, content_type, extra, status, code):
    with world(app_settings) as w:
        booth, clerk = await w.booth("b1"), await w.clerk("c1")
        async with clients(booth, clerk):
            call_id = await live_call(w, booth, clerk)
            with closing(booth_client(w.url, w.tokens["b1"])) as b1:
                refused = sign(b1, call_id, data, content_type, **extra)
                assert (refused.status_code, error_code(refused)) == (status, code)
                materials, log = stored(w)
                assert materials == [] and not [e for e in log if e.kind == "material.added"]


async def test_a_signature_over_the_size_limit_is_413(app_settings):
    noisy = io.BytesIO()
    Image.effect_noise((1500, 1500), 100).convert("RGB").save(noisy, "PNG")  # > 2 MB, does not compress
    with world(app_settings) as w:
        booth, clerk = await w.booth("b1"), await w.clerk("c1")
        async with clients(booth, clerk):
            call_id = await live_call(w, booth, clerk)
            with closing(booth_client(w.url, w.tokens["b1"])) as b1:
                refused = sign(b1, call_id, noisy.getvalue())
                assert (refused.status_code, error_code(refused)) == (413, "file_too_large")
                assert stored(w)[0] == []
