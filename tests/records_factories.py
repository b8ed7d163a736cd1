"""Prerequisite rows for records tests, built directly as SQLModel rows.

Tests of the records functions need regions, booths, users and service items
but must not depend on the accounts or catalog modules (written separately).
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from records import calls
from records.models import Booth, Region, Role, ServiceItem, User

ITEM_MATERIALS: list[dict[str, Any]] = [
    {"code": "id_card", "name_zh": "身份证", "name_en": "ID card", "mandatory": True},
    {"code": "hukou", "name_zh": "户口簿", "name_en": "Household register", "mandatory": True},
    {"code": "photo", "name_zh": "照片", "name_en": "Photo", "mandatory": False},
]


def add_region(session: Session, code: str = "xh") -> Region:
    region = Region(code=code, name_zh=f"{code}街道", name_en=f"{code} street")
    session.add(region)
    session.flush()
    return region


def add_booth(session: Session, region_code: str = "xh", name: str | None = None) -> Booth:
    booth = Booth(name=name or f"booth-{secrets.token_hex(4)}", region_code=region_code,
                  token_hash=secrets.token_hex(32))
    session.add(booth)
    session.flush()
    return booth


def add_user(session: Session, role: Role = Role.CLERK, username: str | None = None) -> User:
    user = User(username=username or f"u-{secrets.token_hex(4)}", role=role, password_hash="x",
                skills=["social"], regions=["xh"])
    session.add(user)
    session.flush()
    return user


def add_item(session: Session, code: str = "sb01") -> ServiceItem:
    item = ServiceItem(code=code, name_zh="社保参保登记", name_en="Social insurance registration",
                       category="social", skill="social", materials=list(ITEM_MATERIALS),
                       time_limit_days=5)
    session.add(item)
    session.flush()
    return item


def seed(engine: Engine, regions: tuple[str, ...] = ("xh",)) -> dict[str, Any]:
    """One region (or several), a booth in the first, a clerk, a supervisor and an item; committed."""
    with Session(engine, expire_on_commit=False) as session:
        for code in regions:
            add_region(session, code)
        booth = add_booth(session, regions[0])
        clerk = add_user(session, Role.CLERK)
        supervisor = add_user(session, Role.SUPERVISOR)
        item = add_item(session)
        session.commit()
        return {"booth_id": booth.id, "clerk_id": clerk.id, "supervisor_id": supervisor.id,
                "item_code": item.code, "region_code": regions[0]}


def seed_answered_call(engine: Engine) -> dict[str, Any]:
    """`seed`, then a call at its booth for its item, answered by its clerk; the ids gain "call_id"."""
    ids = seed(engine)
    with Session(engine) as session:
        call = calls.create_call(session, booth_id=ids["booth_id"], item_code=ids["item_code"])
        calls.mark_answered(session, call.id, clerk_id=ids["clerk_id"])
        session.commit()
        ids["call_id"] = call.id
    return ids
