"""Demo data: regions, the sample catalogue, two booths and one user of each role.

Seeds only an empty database, and writes the logins to `<data dir>/demo.json`
so scripts and newcomers can drive the demo; a later start reads that file
back instead of inventing new passwords.

The demo's regions have no service hours (always open): a newcomer trying it at
night must not be told the service is closed. `cloudseat admin load-catalog
--regions` loads the sample regions with their real hours.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from records.accounts import create_booth, create_user
from records.catalog import (
    default_catalog_path,
    default_regions_path,
    load_catalog_file,
    load_regions_file,
    upsert_catalog,
    upsert_regions,
)
from records.models import Region, Role, User

logger = logging.getLogger(__name__)

DEMO_FILE = "demo.json"


@dataclass(frozen=True)
class DemoLogins:
    """What demo.json holds: booths with tokens, users with passwords, items with skills."""

    booths: list[dict[str, str]]
    users: list[dict[str, str]]
    items: list[dict[str, str]]

    def as_json(self) -> dict[str, Any]:
        return {"booths": self.booths, "users": self.users, "items": self.items}


def seed_demo(engine: Engine, data_dir: Path) -> DemoLogins:
    """Seed an empty database, or return the logins a previous seed wrote."""
    path = data_dir / DEMO_FILE
    with Session(engine) as session:
        has_users = session.exec(select(User)).first() is not None
    if has_users:
        if not path.exists():
            raise RuntimeError(f"the database already has users but {path} is missing; not seeding")
        return _read(path)
    logins = _seed(engine)
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(logins.as_json(), ensure_ascii=False, indent=2), encoding="utf-8")
    tmp.chmod(0o600)
    tmp.replace(path)
    return logins


def _read(path: Path) -> DemoLogins:
    raw = json.loads(path.read_text(encoding="utf-8"))
    return DemoLogins(booths=raw["booths"], users=raw["users"], items=raw["items"])


def _password() -> str:
    return "demo-" + secrets.token_urlsafe(9)


def _seed(engine: Engine) -> DemoLogins:
    catalog = load_catalog_file(default_catalog_path())
    regions = load_regions_file(default_regions_path())
    region_codes = [r.code for r in regions]
    first, second = region_codes[0], region_codes[1 % len(region_codes)]
    skills = sorted({item.skill for item in catalog.items})
    first_skill = catalog.items[0].skill
    users_spec: list[tuple[str, Role, str, list[str], list[str]]] = [
        ("clerk1", Role.CLERK, "王晓敏", [first_skill, *(s for s in skills[:3] if s != first_skill)], [first]),
        ("clerk2", Role.CLERK, "李建国", [s for s in skills if s != first_skill][:3] or [first_skill], [second]),
        ("supervisor1", Role.SUPERVISOR, "陈监督", [], []),
        ("admin1", Role.ADMIN, "系统管理员", [], []),
    ]
    booths_spec = [("晓屋-01", first, "社区服务中心一楼"), ("晓屋-02", second, "村民委员会大厅")]
    users: list[dict[str, str]] = []
    booths: list[dict[str, str]] = []
    with Session(engine) as session:
        upsert_regions(session, regions)
        for row in session.exec(select(Region)):
            row.service_hours = {}  # always open: the demo works at any hour; the sample file keeps real hours
            session.add(row)
        upsert_catalog(session, catalog)
        for username, role, display, user_skills, user_regions in users_spec:
            password = _password()
            create_user(session, username=username, password=password, role=role, display_name=display,
                        skills=user_skills, regions=user_regions, actor="system:demo")
            users.append({"username": username, "password": password, "role": role.value})
        for name, region, address in booths_spec:
            _booth, token = create_booth(session, name=name, region_code=region, address=address, actor="system:demo")
            booths.append({"name": name, "region": region, "token": token})
        session.commit()
    items = [{"code": item.code, "skill": item.skill} for item in catalog.items]
    logger.info("seeded demo data: %d users, %d booths, %d items", len(users), len(booths), len(items))
    return DemoLogins(booths=booths, users=users, items=items)
