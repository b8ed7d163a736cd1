"""Schema migrations on SQLite and PostgreSQL: create_all equals the migrations, upgrades keep every row.

Each test gets its own empty database from the `database_url` fixture (a file
in tmp_path, or a fresh PostgreSQL schema dropped afterwards).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from records import migrate
from records.db import create_schema, make_engine
from records.migrate import SchemaError
from records.storage import FileStore
from records.verify import verify_all
from tests.records_factories import fill_every_table


@pytest.fixture
def engine(database_url: str):
    eng = make_engine(database_url)
    try:
        yield eng
    finally:
        eng.dispose()


def at_0001(engine: Engine) -> None:
    """A database at revision 0001, made by the migrations themselves."""
    result = migrate.upgrade(engine, "0001")
    assert result.after == "0001"


def every_row(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the models, in primary-key order."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            stmt = select(table).order_by(*table.primary_key.columns)
            out[table.name] = [tuple(row) for row in conn.execute(stmt)]
    return out


def indexes_of(engine: Engine, table: str) -> set[str]:
    with engine.connect() as conn:
        return {str(i["name"]) for i in inspect(conn).get_indexes(table)}


def schema_diffs(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)


def test_head_constant_follows_the_scripts():
    revisions = migrate.script_revisions()
    assert revisions[-1] == migrate.HEAD_REVISION
    assert tuple(revisions[:-1]) == migrate._OLDER_REVISIONS
    assert revisions[0] == migrate.BASE_REVISION


@pytest.mark.parametrize("build", ["migrations", "create_schema"])
def test_create_all_equals_the_migrations_at_head(engine, build):
    """Both ways of making a database give exactly the models' schema, stamped at head."""
    if build == "migrations":
        assert migrate.upgrade(engine).applied == migrate.script_revisions()
    else:
        create_schema(engine)
    assert schema_diffs(engine) == []
    assert migrate.current_revision(engine) == migrate.HEAD_REVISION
    # Alembic itself reads the stamp create_schema wrote without it.
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == migrate.HEAD_REVISION


def test_revision_0001_is_the_schema_before_0002(engine):
    at_0001(engine)
    diffs = schema_diffs(engine)
    assert [(d[0], d[1].name) for d in diffs] == [("add_index", "ix_case_created_at")]


def test_upgrade_from_0001_keeps_every_row_and_adds_the_index(engine, tmp_path):
    at_0001(engine)
    store = FileStore(tmp_path / "files")
    fill_every_table(engine, store)
    before = every_row(engine)
    empty = sorted(name for name, rows in before.items() if not rows)
    assert empty == [], f"the test data leaves tables empty: {empty}"
    assert "ix_case_created_at" not in indexes_of(engine, "case")

    result = migrate.upgrade(engine)

    assert (result.before, result.after, result.applied, result.adopted) == ("0001", "0002", ["0002"], False)
    assert every_row(engine) == before
    assert "ix_case_created_at" in indexes_of(engine, "case")
    assert schema_diffs(engine) == []
    with Session(engine) as session:
        report = verify_all(session, store)
    assert report.ok, report.first_break
    assert migrate.upgrade(engine).applied == []  # at head: nothing to do


def test_create_schema_refuses_a_database_behind_head(engine):
    at_0001(engine)
    with pytest.raises(SchemaError) as caught:
        create_schema(engine)
    assert caught.value.code == "schema_behind"
    assert "0001" in caught.value.message and "cloudseat admin migrate" in caught.value.message
    assert migrate.current_revision(engine) == "0001"  # refused, not touched


def test_an_unknown_revision_is_refused_by_start_and_by_migrate(engine):
    create_schema(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    for action in (create_schema, migrate.upgrade):
        with pytest.raises(SchemaError) as caught:
            action(engine)
        assert caught.value.code == "schema_unknown" and "9999" in caught.value.message


def pre_alembic(engine: Engine) -> None:
    """A database as create_all made it before migrations existed: the 0001 tables, no version table."""
    at_0001(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))


def test_a_database_made_before_migrations_is_adopted(engine, tmp_path):
    pre_alembic(engine)
    store = FileStore(tmp_path / "files")
    fill_every_table(engine, store)
    before = every_row(engine)
    with pytest.raises(SchemaError) as caught:
        create_schema(engine)
    assert caught.value.code == "schema_unversioned" and "cloudseat admin migrate" in caught.value.message

    result = migrate.upgrade(engine)

    assert (result.before, result.after, result.applied, result.adopted) == ("0001", "0002", ["0002"], True)
    assert every_row(engine) == before
    assert schema_diffs(engine) == []
    create_schema(engine)  # at head now: starts


def test_adoption_refuses_tables_that_are_not_0001(engine):
    pre_alembic(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_booth_region_code"))
        conn.execute(text("CREATE TABLE scratch (id INTEGER PRIMARY KEY)"))
    with pytest.raises(SchemaError) as caught:
        migrate.upgrade(engine)
    assert caught.value.code == "schema_not_adoptable"
    assert "table booth lacks index ix_booth_region_code" in caught.value.message
    assert "table scratch is not part of the schema" in caught.value.message
    with engine.connect() as conn:
        assert "alembic_version" not in inspect(conn).get_table_names()  # nothing stamped


def test_nodes_starting_together_on_an_empty_database_make_it_once(engine):
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def start() -> None:
        barrier.wait()
        try:
            create_schema(engine)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    assert schema_diffs(engine) == []


# --------------------------------------------------------------------------- the command line

def cli(data_dir: Path, database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSEAT_")}
    env.update(CLOUDSEAT_DATA_DIR=str(data_dir), CLOUDSEAT_DATABASE_URL=database_url)
    return subprocess.run([sys.executable, "-m", "cloudseat", *args], capture_output=True, text=True, env=env,
                          timeout=60)


def test_admin_migrate_upgrades_and_commands_refuse_until_then(engine, database_url, tmp_path):
    import json

    at_0001(engine)
    data_dir = tmp_path / "var"
    for command in (["verify"], ["serve", "--port", "0"]):
        refused = cli(data_dir, database_url, *command)
        assert refused.returncode == 2, (command, refused.stderr)
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and "cloudseat admin migrate" in lines[0] and "Traceback" not in refused.stderr

    done = cli(data_dir, database_url, "admin", "migrate", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"before": "0001", "after": "0002", "applied": ["0002"], "adopted": False}
    again = cli(data_dir, database_url, "admin", "migrate")
    assert again.returncode == 0 and "already at revision 0002" in again.stdout
    assert cli(data_dir, database_url, "verify").returncode == 0


def test_a_drafted_revision_follows_head_and_is_empty_while_the_models_match(tmp_path):
    import shutil

    scripts = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    path = migrate.draft_revision("nothing changed", scripts)
    assert path.parent == scripts / "versions" and path.name.startswith("0003_")
    source = path.read_text(encoding="utf-8")
    assert 'revision: str = "0003"' in source or "revision: str = '0003'" in source
    assert "down_revision: str | None = '0002'" in source or 'down_revision: str | None = "0002"' in source
    upgrade = source.split("def upgrade() -> None:\n", 1)[1].split("\ndef ", 1)[0]
    assert [line.strip() for line in upgrade.splitlines() if line.strip() and not line.strip().startswith("#")] \
        == ["pass"]
    assert migrate.script_revisions(scripts) == [*migrate.script_revisions(), "0003"]
