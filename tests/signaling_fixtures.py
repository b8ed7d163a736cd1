"""A live server seeded for signaling tests: regions, items, booths, clerks; sockets for each."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from sqlmodel import Session, col, select

from cloudseat.app import create_app
from cloudseat.settings import Settings
from records.accounts import create_booth, create_region, create_user
from records.catalog import default_catalog_path, load_catalog_file, upsert_catalog
from records.db import create_schema, make_engine
from records.models import CallSession, Event, Recording, Role
from signaling.protocol_client import ProtocolClient, login_cookie
from tests.live_server import LiveServer, serve
from tests.web_clients import booth_client, login

PASSWORD = "test-password-1"
ALWAYS_OPEN: dict[str, Any] = {}  # a region without hours takes calls at any time


@dataclass
class World:
    """What a signaling test talks to."""

    server: LiveServer
    settings: Settings
    tokens: dict[str, str] = field(default_factory=dict)  # booth name -> token
    booth_ids: dict[str, int] = field(default_factory=dict)
    clerk_ids: dict[str, int] = field(default_factory=dict)
    item_by_skill: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    async def booth(self, name: str, **kw: Any) -> ProtocolClient:
        return await ProtocolClient.connect(self.url, "booth", token=self.tokens[name], **kw)

    async def clerk(self, username: str, *, available: bool = True, **kw: Any) -> ProtocolClient:
        cookie = login_cookie(self.url, username, PASSWORD)
        client = await ProtocolClient.connect(self.url, "seat", cookie=cookie, **kw)
        if available:
            await client.request("presence.set", status="available")
        return client

    async def supervisor(self, username: str = "sup") -> ProtocolClient:
        return await ProtocolClient.connect(self.url, "supervisor", cookie=login_cookie(self.url, username, PASSWORD))


def seed_world(settings: Settings, *, regions: dict[str, dict[str, Any]] | None = None,
               booths: dict[str, str] | None = None,
               clerks: dict[str, tuple[list[str], list[str]]] | None = None) -> dict[str, Any]:
    """Regions (code -> service hours), booths (name -> region), clerks (username -> (skills, regions))."""
    regions = regions if regions is not None else {"east": ALWAYS_OPEN, "west": ALWAYS_OPEN}
    booths = booths if booths is not None else {"b1": "east", "b2": "east", "b3": "west"}
    clerks = clerks if clerks is not None else {"c1": (["social_insurance"], ["east"]),
                                                "c2": (["medical"], ["west"])}
    engine = make_engine(settings.database_url)
    create_schema(engine)
    out: dict[str, Any] = {"tokens": {}, "booth_ids": {}, "clerk_ids": {}, "item_by_skill": {}}
    with Session(engine) as session:
        for code, hours in regions.items():
            create_region(session, code=code, name_zh=code, name_en=code, service_hours=hours)
        catalog = load_catalog_file(default_catalog_path())
        upsert_catalog(session, catalog)
        for item in catalog.items:  # the first cross-region item of each skill
            if item.cross_region:
                out["item_by_skill"].setdefault(item.skill, item.code)
        for name, region in booths.items():
            booth, token = create_booth(session, name=name, region_code=region)
            out["tokens"][name], out["booth_ids"][name] = token, booth.id
        for username, (skills, clerk_regions) in clerks.items():
            user = create_user(session, username=username, password=PASSWORD, role=Role.CLERK,
                               display_name=username.upper(), skills=skills, regions=clerk_regions)
            out["clerk_ids"][username] = user.id
        create_user(session, username="sup", password=PASSWORD, role=Role.SUPERVISOR, display_name="SUP")
        session.commit()
    engine.dispose()
    return out


@contextmanager
def world(settings: Settings, *, tls: tuple[Path, Path] | None = None, host_name: str = "127.0.0.1",
          **seed: Any) -> Iterator[World]:
    seeded = seed_world(settings, **seed)
    with serve(create_app(settings), tls=tls, host_name=host_name) as server:
        yield World(server=server, settings=settings, **seeded)


@asynccontextmanager
async def clients(*opened: ProtocolClient) -> AsyncIterator[None]:
    try:
        yield
    finally:
        for client in opened:
            await client.close()


@contextmanager
def booth_and_clerk_http(w: World) -> Iterator[tuple[httpx.Client, httpx.Client, httpx.Client, httpx.Client]]:
    """HTTP clients of booths b1 and b2 (their tokens) and of clerks c1 and c2 (logged in), closed on the way out."""
    with closing(booth_client(w.url, w.tokens["b1"])) as b1, closing(booth_client(w.url, w.tokens["b2"])) as b2, \
            closing(login(w.url, "c1", PASSWORD)) as c1, closing(login(w.url, "c2", PASSWORD)) as c2:
        yield b1, b2, c1, c2


def rows(w: World, model: Any, *where: Any) -> list[Any]:
    """The world's records of `model` matching `where`, read in a short-lived engine of their own."""
    engine = make_engine(w.settings.database_url)
    try:
        with Session(engine) as session:
            return list(session.exec(select(model).where(*where)))
    finally:
        engine.dispose()


def call_records(settings: Settings, call_id: str, *, events_by: Any = Event.id,
                 ) -> tuple[CallSession | None, list[Recording], list[Event]]:
    """A call's row, its recordings (by id) and its events (by `events_by`), read in an engine of their own."""
    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as session:
            call = session.get(CallSession, call_id)
            recordings = list(session.exec(select(Recording).where(Recording.session_id == call_id)
                                           .order_by(col(Recording.id))))
            events = list(session.exec(select(Event).where(Event.session_id == call_id).order_by(col(events_by))))
            return call, recordings, events
    finally:
        engine.dispose()
