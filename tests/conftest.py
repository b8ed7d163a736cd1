"""Shared fixtures: database engines for the records contract tests.

`records_engine` is parametrised over SQLite (a file in tmp_path) and
PostgreSQL (a throwaway database created per test on the server at
CLOUDSEAT_TEST_POSTGRES_URL, default the machine's local server).  The
PostgreSQL variant skips with a clear reason where no server answers, and
CI sets CLOUDSEAT_REQUIRE_SERVICES=1 to turn that skip into a failure.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from records.db import create_schema, make_engine

POSTGRES_ADMIN_URL = os.environ.get(
    "CLOUDSEAT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("CLOUDSEAT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_SERVICES = os.environ.get("CLOUDSEAT_REQUIRE_SERVICES") == "1"


def skip_or_fail(reason: str) -> None:
    """Skip where a service is missing on a developer's machine; fail in CI."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing: {reason}")
    pytest.skip(reason)


def _postgres_admin_engine() -> Engine:
    return make_engine(POSTGRES_ADMIN_URL)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL schema (first on the search path), dropped after the test.

    A schema per test instead of a database per test: CREATE DATABASE costs
    over a second, a schema a few milliseconds, and isolation is the same.
    """
    from sqlalchemy import text

    admin = _postgres_admin_engine()
    name = f"cs_t_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any connection failure means "no server here"
        admin.dispose()
        skip_or_fail(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {exc.__class__.__name__}")
    separator = "&" if "?" in POSTGRES_ADMIN_URL else "?"
    try:
        yield f"{POSTGRES_ADMIN_URL}{separator}options=-csearch_path%3D{name}"
    finally:
        _drop_schema(admin, name)
        admin.dispose()


def _drop_schema(admin: Any, name: str, attempts: int = 5) -> None:
    """Drop a test's schema. A server the test stopped may still be finishing a write (a
    background thread's transaction), and PostgreSQL may then pick the DROP as a deadlock's
    victim: that aborts only the DROP, so it is tried again."""
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    for attempt in range(attempts):
        try:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
            return
        except OperationalError as exc:
            if "deadlock" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))  # cleanup back-off, not a synchronisation


@pytest.fixture
def redis_url() -> str:
    """The test Redis's URL, once it answers a ping (skipped, or failed in CI, where it does not)."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError as exc:
        skip_or_fail(f"Redis not reachable at {REDIS_URL}: {exc}")
    return REDIS_URL


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL for each backend the records must work on."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'records.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def records_engine(database_url: str) -> Iterator[Engine]:
    """An engine with the schema created, on SQLite and on PostgreSQL."""
    engine = make_engine(database_url)
    create_schema(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def app_settings(tmp_path: Path):
    """Settings for one test's app: SQLite and files under tmp_path, no Redis."""
    from cloudseat.settings import Settings

    return Settings(data_dir=tmp_path / "var", public_base_url="http://127.0.0.1:8000")


@pytest.fixture
def demo_server(app_settings):
    """The real app on uvicorn with demo data; yields (server, logins dict)."""
    from cloudseat.app import create_app
    from cloudseat.demo import seed_demo
    from records.db import create_schema, make_engine
    from tests.live_server import serve

    engine = make_engine(app_settings.database_url)
    create_schema(engine)
    logins = seed_demo(engine, app_settings.data_dir).as_json()
    engine.dispose()
    with serve(create_app(app_settings)) as server:
        yield server, logins
