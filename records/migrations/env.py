"""Alembic environment: runs on the connection `records.migrate` hands over.

`records.migrate` puts an open connection (inside its transaction, holding
the migration lock) into `config.attributes["connection"]`; nothing here
opens its own.  SQLite gets batch mode, so a future ALTER that SQLite cannot
do in place is rendered as copy-and-rename.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

from records import models  # noqa: F401  (registers the tables on SQLModel.metadata)


def _render_item(type_: str, obj: Any, _autogen_context: Any) -> str | bool:
    """Draft revisions say sa.String, not sqlmodel's AutoString: the scripts import only sqlalchemy."""
    if type_ == "type" and isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    return False


config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through records.migrate (cloudseat admin migrate), not the alembic command")

context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    render_item=_render_item,
)
with context.begin_transaction():
    context.run_migrations()
