"""Catalogue and regions upsert into the records on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from records.catalog import (
    Catalog,
    default_catalog_path,
    default_regions_path,
    get_item,
    list_items,
    load_catalog_file,
    load_regions_file,
    upsert_catalog,
    upsert_regions,
)
from records.models import Region, ServiceItem


def _count(session: Session, model: type[ServiceItem] | type[Region]) -> int:
    return session.exec(select(func.count()).select_from(model)).one()


@contextmanager
def _writes(engine: Engine) -> Iterator[list[str]]:
    """Collect the INSERT/UPDATE/DELETE statements the engine runs meanwhile."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().split(" ", 1)[0].upper() in {"INSERT", "UPDATE", "DELETE"}:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_upsert_twice_is_idempotent(records_engine: Engine) -> None:
    catalog = load_catalog_file(default_catalog_path())
    with Session(records_engine) as session:
        assert upsert_catalog(session, catalog) == (len(catalog.items), 0)
        session.commit()
    with Session(records_engine) as session, _writes(records_engine) as writes:
        assert upsert_catalog(session, catalog) == (0, 0)
        session.commit()
    assert writes == []
    with Session(records_engine) as session:
        assert _count(session, ServiceItem) == len(catalog.items)
        row = get_item(session, "SB-003")
        assert row is not None
        assert row.materials == [m.to_dict() for m in catalog.item("SB-003").materials]
        assert row.name_zh == "社会保障卡申领"
        assert row.active


def test_changed_item_is_updated(records_engine: Engine) -> None:
    catalog = load_catalog_file(default_catalog_path())
    with Session(records_engine) as session:
        upsert_catalog(session, catalog)
        session.commit()
    changed = dataclasses.replace(catalog.item("ZF-002"), time_limit_days=5)
    newer = Catalog(
        categories=catalog.categories,
        items=tuple(changed if item.code == "ZF-002" else item for item in catalog.items),
    )
    with Session(records_engine) as session:
        assert upsert_catalog(session, newer) == (0, 1)
        session.commit()
    with Session(records_engine) as session:
        row = get_item(session, "ZF-002")
        assert row is not None and row.time_limit_days == 5


def test_removed_item_becomes_inactive_and_returns(records_engine: Engine) -> None:
    catalog = load_catalog_file(default_catalog_path())
    with Session(records_engine) as session:
        upsert_catalog(session, catalog)
        session.commit()
    without = Catalog(categories=catalog.categories, items=tuple(i for i in catalog.items if i.code != "SC-005"))
    with Session(records_engine) as session:
        assert upsert_catalog(session, without) == (0, 1)
        session.commit()
    with Session(records_engine) as session:
        assert upsert_catalog(session, without) == (0, 0)
        row = get_item(session, "SC-005")
        assert row is not None and not row.active  # kept, not deleted
        assert _count(session, ServiceItem) == len(catalog.items)
        assert "SC-005" not in {r.code for r in list_items(session)}
        assert "SC-005" in {r.code for r in list_items(session, active_only=False)}
    with Session(records_engine) as session:
        assert upsert_catalog(session, catalog) == (0, 1)
        session.commit()
    with Session(records_engine) as session:
        row = get_item(session, "SC-005")
        assert row is not None and row.active


def test_list_items_filters_by_category_in_code_order(records_engine: Engine) -> None:
    catalog = load_catalog_file(default_catalog_path())
    with Session(records_engine) as session:
        upsert_catalog(session, catalog)
        session.commit()
    with Session(records_engine) as session:
        everything = list_items(session)
        assert [r.code for r in everything] == sorted(i.code for i in catalog.items)
        medical = list_items(session, category="medical_insurance")
        expected = sorted(i.code for i in catalog.items if i.category == "medical_insurance")
        assert [r.code for r in medical] == expected
        assert all(r.skill == "medical" for r in medical)
        assert list_items(session, category="no_such_category") == []
        assert get_item(session, "XX-999") is None


def test_regions_upsert_is_idempotent_and_round_trips(records_engine: Engine) -> None:
    regions = load_regions_file(default_regions_path())
    with Session(records_engine) as session:
        assert upsert_regions(session, regions) == (3, 0)
        session.commit()
    with Session(records_engine) as session, _writes(records_engine) as writes:
        assert upsert_regions(session, regions) == (0, 0)
        session.commit()
    assert writes == []
    renamed = [dataclasses.replace(regions[0], name_en="Dongcheng Street")] + list(regions[1:])
    with Session(records_engine) as session:
        assert upsert_regions(session, renamed) == (0, 1)
        session.commit()
    with Session(records_engine) as session:
        assert _count(session, Region) == 3
        nanhu = session.get(Region, "nanhu")
        assert nanhu is not None
        assert nanhu.service_hours == dict(regions[1].service_hours)
        assert nanhu.service_hours["lunch_service"] is True
        dongcheng = session.get(Region, "dongcheng")
        assert dongcheng is not None and dongcheng.name_en == "Dongcheng Street"
