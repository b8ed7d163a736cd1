"""ID card reads and signatures in the records layer, on SQLite and PostgreSQL.

The photo becomes an `id_photo` material, the log gets `idcard.read` with the masked number and
never the full one, and a refused read stores nothing.  Signatures are PNGs within their limits.
"""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image
from sqlmodel import Session, select

from records import materials
from records.errors import ValidationError
from records.events import list_events
from records.models import Event, Material
from records.storage import FileStore
from tests.records_factories import seed_answered_call

NUMBER = "11010519491231002X"
MASKED = "110105********002X"


def image(fmt: str, size: tuple[int, int] = (102, 126)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (230, 220, 200)).save(out, fmt)
    return out.getvalue()


@pytest.fixture
def call_env(records_engine, tmp_path):
    return seed_answered_call(records_engine), FileStore(tmp_path / "store")


def test_a_card_read_stores_the_photo_and_logs_only_the_masked_number(records_engine, call_env):
    ids, store = call_env
    photo = image("JPEG")
    with Session(records_engine) as session:
        read = materials.record_id_card_read(session, store, session_id=ids["call_id"], name=" 张三 ",
                                             number=NUMBER.lower(), photo=photo, content_type="image/jpeg",
                                             actor="booth:1")
        session.commit()
        assert (read.name, read.number, read.masked) == ("张三", NUMBER, MASKED)
        assert (read.material.kind, read.material.width, read.material.height) == ("id_photo", 102, 126)
        events = list_events(session, session_id=ids["call_id"])
        assert [e.kind for e in events][-2:] == ["material.added", "idcard.read"]
        assert events[-1].data == {"material_id": read.material.id, "name": "张三", "id_number_masked": MASKED}
        everything = json.dumps([e.data for e in session.exec(select(Event))], ensure_ascii=False)
        assert NUMBER not in everything and NUMBER.lower() not in everything
        summary = materials.latest_id_card(session, ids["call_id"])
        assert summary is not None
        assert {k: summary[k] for k in ("name", "id_number_masked", "material_id")} == \
            {"name": "张三", "id_number_masked": MASKED, "material_id": read.material.id}


@pytest.mark.parametrize("number, name, code", [
    ("110105194912310021", "张三", "id_number_checksum"),
    ("1101051949123100", "张三", "id_number_invalid"),
    (NUMBER, "", "id_name_invalid"),
])
def test_a_refused_read_stores_nothing(records_engine, call_env, number, name, code):
    ids, store = call_env
    with Session(records_engine) as session:
        with pytest.raises(ValidationError) as caught:
            materials.record_id_card_read(session, store, session_id=ids["call_id"], name=name, number=number,
                                          photo=image("PNG"), content_type="image/png", actor="booth:1")
        assert caught.value.code == code
        session.rollback()
        assert session.exec(select(Material)).all() == []
        assert [e for e in session.exec(select(Event)) if e.kind in ("idcard.read", "material.added")] == []
        assert materials.latest_id_card(session, ids["call_id"]) is None
    assert not (store.root / "materials").exists() or not any((store.root / "materials").rglob("*.*"))


@pytest.mark.parametrize("kind, data, content_type, code", [
    ("signature", image("JPEG", (800, 300)), "image/jpeg", "content_type_not_allowed"),
    ("signature", b"\x89PNG\r\n\x1a\n not really", "image/png", "content_mismatch"),
    ("signature", image("PNG", (5000, 300)), "image/png", "image_too_large"),
    ("signature", b"", "image/png", "empty_file"),
    ("id_photo", image("WEBP"), "image/webp", "content_type_not_allowed"),
    ("id_photo", image("PNG", (2000, 2000)), "image/png", "image_too_large"),
    ("sticker", image("PNG"), "image/png", "invalid_material_kind"),
])
def test_kind_rules(records_engine, call_env, kind, data, content_type, code):
    ids, store = call_env
    with Session(records_engine) as session:
        with pytest.raises(ValidationError) as caught:
            materials.add_material(session, store, session_id=ids["call_id"], kind=kind, data=data,
                                   content_type=content_type, actor="booth:1")
        assert caught.value.code == code


def test_a_signature_over_its_byte_limit_is_refused_as_too_large():
    rule = materials.KIND_RULES["signature"]
    noisy = io.BytesIO()
    Image.effect_noise((1500, 1500), 100).convert("RGB").save(noisy, "PNG")  # noise does not compress
    data = noisy.getvalue()
    assert len(data) > rule.max_bytes
    with pytest.raises(ValidationError) as caught:
        materials.check_kind("signature", "image/png", data)
    assert caught.value.code == "file_too_large"


def test_a_signature_png_is_accepted(records_engine, call_env):
    ids, store = call_env
    with Session(records_engine) as session:
        m = materials.add_material(session, store, session_id=ids["call_id"], kind="signature",
                                   data=image("PNG", (1200, 400)), content_type="image/png", actor="booth:1")
        session.commit()
        assert (m.kind, m.content_type, m.width) == ("signature", "image/png", 1200)
