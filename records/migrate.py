"""Schema revisions: check them at every start, and upgrade on `cloudseat admin migrate`.

The Alembic scripts live in `records/migrations/` (0001 is the schema as it
stood when migrations began).  Starting an app must stay cheap (the test
suite starts hundreds of servers), so `ensure_schema` never imports Alembic:
a database at head costs one catalogue query and one SELECT, and a new empty
database is made with `create_all` and stamped at head (a test proves that
equals running every migration).  Anything else (behind head, unknown
revision, tables without a revision) is refused with one message telling
the operator to run `cloudseat admin migrate`, which imports Alembic and
upgrades, adopting a database made by `create_all` before migrations
existed.

Every change runs in one transaction holding a lock: the write lock SQLite
takes at BEGIN IMMEDIATE (see `records.db`), or a transaction-level advisory
lock on PostgreSQL, so two nodes starting at once on an empty database do not
both create it.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table, create_engine, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

from records import models  # noqa: F401  (registers the tables on SQLModel.metadata)
from records.db import read_only
from records.errors import RecordsError

if TYPE_CHECKING:
    from alembic.config import Config

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# The newest revision in migrations/versions; tests/integration/test_migrations.py keeps them equal.
HEAD_REVISION = "0002"
BASE_REVISION = "0001"  # what a database made before migrations existed is adopted as
VERSION_TABLE = "alembic_version"
MIGRATE_HINT = "run `cloudseat admin migrate` (back up first: `cloudseat admin backup DIR`)"
_PG_LOCK_KEY = zlib.crc32(b"cloudseat.schema")  # pg_advisory_xact_lock's key, fixed for every node

# Alembic's own version table, as `alembic stamp` makes it; `_stamp` writes it without importing Alembic.
_version_table = Table(VERSION_TABLE, MetaData(),
                       Column("version_num", String(32), nullable=False),
                       PrimaryKeyConstraint("version_num", name="alembic_version_pkc"))


class SchemaError(RecordsError):
    """The database's schema is not the one this code runs on; the message says what to do."""

    default_code = "schema_mismatch"


@dataclass(frozen=True)
class SchemaState:
    """What a database holds: its tables (without the version table) and its revision (None: unversioned)."""

    tables: frozenset[str]
    has_version_table: bool
    revision: str | None

    @property
    def empty(self) -> bool:
        return not self.tables and not self.has_version_table


@dataclass(frozen=True)
class MigrationResult:
    """What `upgrade` did: the revision before and after, the revisions applied, and whether it adopted."""

    before: str | None
    after: str
    applied: list[str] = field(default_factory=list)
    adopted: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"before": self.before, "after": self.after, "applied": self.applied, "adopted": self.adopted}


def schema_state(conn: Connection) -> SchemaState:
    """The tables of the connection's default schema and the revision stamped there."""
    names = set(inspect(conn).get_table_names())
    has_version = VERSION_TABLE in names
    revision = None
    if has_version:
        rows = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
        revision = rows[0] if len(rows) == 1 else None  # several rows: branches, which we never make
    return SchemaState(frozenset(names - {VERSION_TABLE}), has_version, revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is stamped at, or None (empty, or made before migrations)."""
    with read_only(engine).connect() as conn:
        return schema_state(conn).revision


def ensure_schema(engine: Engine) -> None:
    """Make a new empty database at head, leave one at head alone, refuse anything else.

    Raises SchemaError (code `schema_behind`, `schema_unversioned` or
    `schema_unknown`) with a message naming the revision and the command to run.
    """
    with read_only(engine).connect() as conn:
        if schema_state(conn).revision == HEAD_REVISION:
            return
    with engine.begin() as conn:
        _lock(conn)
        state = schema_state(conn)  # again, under the lock: another node may have just made it
        if state.revision == HEAD_REVISION:
            return
        if state.empty:
            SQLModel.metadata.create_all(conn, checkfirst=False)
            _stamp(conn, HEAD_REVISION)
            logger.info("created the database schema at revision %s", HEAD_REVISION)
            return
        raise _refusal(state)


def _refusal(state: SchemaState) -> SchemaError:
    if not state.has_version_table:
        return SchemaError("schema_unversioned", "the database has tables but no schema revision (made before "
                                                 f"migrations existed); this cloudseat needs {HEAD_REVISION}: "
                                                 + MIGRATE_HINT)
    if state.revision in _OLDER_REVISIONS:
        return SchemaError("schema_behind", f"the database schema is at revision {state.revision}, this cloudseat "
                                            f"needs {HEAD_REVISION}: " + MIGRATE_HINT)
    return SchemaError("schema_unknown", f"the database schema is at revision {state.revision!r}, which this "
                                         f"cloudseat does not know (it needs {HEAD_REVISION}; a newer cloudseat "
                                         "may have migrated it)")


# Revisions before head, oldest first; a test keeps this in step with migrations/versions.
_OLDER_REVISIONS = ("0001",)


def _lock(conn: Connection) -> None:
    """Serialise schema changes across processes (SQLite: BEGIN IMMEDIATE has already done it)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})


def _stamp(conn: Connection, revision: str) -> None:
    """Record `revision` as the database's one revision, as `alembic stamp` does."""
    _version_table.create(conn, checkfirst=True)
    conn.execute(_version_table.delete())
    conn.execute(_version_table.insert().values(version_num=revision))


# --------------------------------------------------------------------------- upgrading (imports Alembic)

def alembic_config(conn: Connection, scripts: Path = MIGRATIONS_DIR) -> Config:
    """An Alembic config for the packaged scripts that runs on `conn` (see migrations/env.py)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(scripts))
    config.attributes["connection"] = conn
    return config


def script_revisions(scripts: Path = MIGRATIONS_DIR) -> list[str]:
    """Every revision in migrations/versions, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(scripts))
    return [s.revision for s in reversed(list(script.walk_revisions()))]


def draft_revision(message: str, scripts: Path = MIGRATIONS_DIR) -> Path:
    """Write the next revision (`000N_<slug>.py`) with what the models changed since head, for a developer to edit.

    Compares the models with a scratch in-memory SQLite database built by the
    migrations, so it needs no server; the ops are rendered in batch mode,
    which runs on PostgreSQL as well.  Read the draft before committing it,
    and bump HEAD_REVISION and _OLDER_REVISIONS (a test insists).
    """
    from alembic import command

    known = script_revisions(scripts)
    rev_id = f"{int(known[-1]) + 1:04d}"
    scratch = create_engine("sqlite://")
    try:
        with scratch.begin() as conn:
            config = alembic_config(conn, scripts)
            command.upgrade(config, "head")
            script = command.revision(config, message=message, autogenerate=True, rev_id=rev_id)
    finally:
        scratch.dispose()
    if script is None or isinstance(script, list):
        raise RuntimeError("alembic wrote no single revision")
    return Path(script.path)


def upgrade(engine: Engine, revision: str = "head") -> MigrationResult:
    """Upgrade the database to `revision` (default head), adopting one made before migrations.

    An empty database gets every migration in turn.  A database with our
    tables and no revision is checked against revision 0001 and stamped there
    (`adopt`) before it is upgraded; a database at a revision these scripts do
    not know is refused.
    """
    from alembic import command

    known = script_revisions()
    with engine.begin() as conn:
        _lock(conn)
        state = schema_state(conn)
        adopted = False
        if not state.has_version_table and state.tables:
            adopt(conn, state)
            adopted = True
        elif state.has_version_table and state.revision not in known:
            raise _refusal(SchemaState(state.tables, True, state.revision or "(none)"))
        before = BASE_REVISION if adopted else state.revision
        command.upgrade(alembic_config(conn), revision)
        after = schema_state(conn).revision
    start = known.index(before) + 1 if before in known else 0
    applied = known[start:known.index(after) + 1] if after in known else []
    if applied:
        logger.info("schema upgraded from %s to %s (%s)", before or "an empty database", after, ", ".join(applied))
    return MigrationResult(before=before, after=after or "", applied=applied, adopted=adopted)


def adopt(conn: Connection, state: SchemaState | None = None) -> None:
    """Stamp a database made by `create_all` before migrations at 0001, after checking its tables match 0001.

    Raises SchemaError (`schema_not_adoptable`) naming the first differences
    when the tables, their columns or their indexes are not those of 0001.
    """
    state = state or schema_state(conn)
    expected = revision_layout(BASE_REVISION)
    problems = layout_differences(expected, table_layout(conn))
    if problems:
        raise SchemaError("schema_not_adoptable", f"the tables are not those of revision {BASE_REVISION}, so it "
                                                  f"cannot be adopted: {'; '.join(problems[:5])}"
                                                  + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""))
    _stamp(conn, BASE_REVISION)
    logger.info("adopted a database made before migrations at revision %s", BASE_REVISION)


Layout = dict[str, tuple[frozenset[str], frozenset[str]]]


def table_layout(conn: Connection) -> Layout:
    """table -> (column names, names of its explicit `ix_` indexes), without the version table."""
    inspector = inspect(conn)
    layout: Layout = {}
    for table in inspector.get_table_names():
        if table == VERSION_TABLE:
            continue
        columns = frozenset(c["name"] for c in inspector.get_columns(table))
        indexes = frozenset(str(i["name"]) for i in inspector.get_indexes(table) if str(i["name"]).startswith("ix_"))
        layout[table] = (columns, indexes)
    return layout


def revision_layout(revision: str) -> Layout:
    """The layout the migrations make up to `revision`, built in a throwaway in-memory SQLite."""
    from alembic import command

    scratch = create_engine("sqlite://")
    try:
        with scratch.begin() as conn:
            command.upgrade(alembic_config(conn), revision)
            return table_layout(conn)
    finally:
        scratch.dispose()


def layout_differences(expected: Layout, actual: Layout) -> list[str]:
    """Human lines for every table, column or index in one layout and not the other."""
    problems: list[str] = []
    for table in sorted(expected.keys() - actual.keys()):
        problems.append(f"table {table} is missing")
    for table in sorted(actual.keys() - expected.keys()):
        problems.append(f"table {table} is not part of the schema")
    for table in sorted(expected.keys() & actual.keys()):
        (want_cols, want_ix), (have_cols, have_ix) = expected[table], actual[table]
        problems += [f"table {table} lacks column {c}" for c in sorted(want_cols - have_cols)]
        problems += [f"table {table} has an unknown column {c}" for c in sorted(have_cols - want_cols)]
        problems += [f"table {table} lacks index {i}" for i in sorted(want_ix - have_ix)]
        problems += [f"table {table} has an unknown index {i}" for i in sorted(have_ix - want_ix)]
    return problems


if __name__ == "__main__":  # python -m records.migrate "add booth.model column": drafts the next revision
    import sys

    if len(sys.argv) != 2 or not sys.argv[1].strip():
        print("usage: python -m records.migrate MESSAGE", file=sys.stderr)
        raise SystemExit(2)
    print(draft_revision(sys.argv[1]))
