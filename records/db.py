"""Database engine creation and schema set-up for SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from records import models  # noqa: F401  (registers the tables on SQLModel.metadata)

logger = logging.getLogger(__name__)

READ_ONLY_OPTION = "cloudseat_read_only"


def normalise_url(url: str) -> str:
    """Use psycopg 3 for plain postgresql:// URLs (SQLAlchemy would pick psycopg2)."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for `url`; SQLite files get WAL, foreign keys and a busy timeout."""
    url = normalise_url(url)
    kwargs: dict[str, Any] = {"echo": echo}
    if url.startswith("sqlite"):
        path = url.split("sqlite:///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "postgresql":
        event.listen(engine, "connect", _postgres_utc)
    if url.startswith("sqlite"):
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN; take the write lock at BEGIN
        # so read-then-write sequences (chain heads, case serials) serialise.
        event.listen(engine, "begin", _sqlite_begin_immediate)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # let SQLAlchemy's "begin" event issue BEGIN
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _postgres_utc(dbapi_connection: Any, _record: Any) -> None:
    """Timestamps are UTC whatever the server's TimeZone setting says."""
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    dbapi_connection.execute("SET TIME ZONE 'UTC'")
    dbapi_connection.autocommit = autocommit


def _sqlite_begin_immediate(conn: Any) -> None:
    # Read-only work takes a deferred BEGIN: under WAL it neither waits for nor blocks the writer.
    read_only = conn.get_execution_options().get(READ_ONLY_OPTION, False)
    conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def read_only(engine: Engine) -> Engine:
    """A view of `engine` for transactions that only read (no write lock on SQLite)."""
    return engine.execution_options(**{READ_ONLY_OPTION: True})


def create_schema(engine: Engine) -> None:
    """Make a new empty database at the newest schema revision; leave one at it alone.

    Refuses (records.migrate.SchemaError, one message naming the command to
    run) a database behind it, at an unknown revision, or made before
    migrations: `cloudseat admin migrate` upgrades those.
    """
    from records.migrate import ensure_schema  # records.migrate imports this module

    ensure_schema(engine)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def ping(engine: Engine) -> None:
    """Raise if the database does not answer a trivial query."""
    with Session(engine) as session:
        session.exec(text("SELECT 1"))  # type: ignore[call-overload]
