"""`cloudseat admin migrate | backup | restore`: the commands that move the whole database.

Kept apart from `cloudseat.cli` (which registers them with one call) because
none of them may run `create_schema` first: migrate exists to fix a schema
that start-up refuses, backup must not stamp or create anything in what it
copies, and restore wants an empty target.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from cloudseat.cli import EXIT_OK, CommandError, _emit
from cloudseat.settings import Settings


def register(admin_cmds: Any) -> None:
    """Add the subcommands to `cloudseat admin`'s subparsers."""
    migrate = admin_cmds.add_parser("migrate", help="upgrade the database schema to this version's revision "
                                                    "(adopts a database made before migrations)")
    migrate.add_argument("--json", action="store_true")
    migrate.set_defaults(handler=cmd_migrate)


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from records.db import make_engine
    from records.migrate import SchemaError, upgrade

    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # keep "Running upgrade ..." lines only
    engine = make_engine(settings.database_url)
    try:
        result = upgrade(engine)
    except SchemaError as exc:
        raise CommandError(f"{exc.code}: {exc.message}") from None
    finally:
        engine.dispose()
    if result.applied:
        human = (f"schema upgraded from {result.before or 'an empty database'} to {result.after} "
                 f"(applied {', '.join(result.applied)})"
                 + ("; adopted a database made before migrations at revision 0001" if result.adopted else ""))
    else:
        human = f"schema already at revision {result.after}"
    _emit(args, result.to_json(), human)
    return EXIT_OK

