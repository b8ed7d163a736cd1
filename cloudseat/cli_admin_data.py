"""`cloudseat admin migrate | backup | restore`: the commands that move the whole database.

Kept apart from `cloudseat.cli` (which registers them with one call) because
none of them may run `create_schema` first: migrate exists to fix a schema
that start-up refuses, backup must not stamp or create anything in what it
copies, and restore wants an empty target.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cloudseat.cli import EXIT_CHECK_FAILED, EXIT_OK, CommandError, _emit
from cloudseat.settings import SECRET_KEY_FILE, Settings


def register(admin_cmds: Any) -> None:
    """Add the subcommands to `cloudseat admin`'s subparsers."""
    migrate = admin_cmds.add_parser("migrate", help="upgrade the database schema to this version's revision "
                                                    "(adopts a database made before migrations)")
    migrate.add_argument("--json", action="store_true")
    migrate.set_defaults(handler=cmd_migrate)

    backup = admin_cmds.add_parser("backup", help="copy the database and every stored file it names into DIR "
                                                  "(consistent while serving)")
    backup.add_argument("dir", metavar="DIR", help="where to write the backup (absent or empty)")
    backup.add_argument("--json", action="store_true")
    backup.set_defaults(handler=cmd_backup)

    restore = admin_cmds.add_parser("restore", help="restore a backup into an empty database and data dir")
    restore.add_argument("dir", metavar="DIR", help="a directory `cloudseat admin backup` wrote")
    restore.add_argument("--force", action="store_true", help="replace a database and stored files already there")
    restore.add_argument("--json", action="store_true")
    restore.set_defaults(handler=cmd_restore)


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from records.db import make_engine
    from records.migrate import upgrade

    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # keep "Running upgrade ..." lines only
    engine = make_engine(settings.database_url)
    try:
        result = _run(lambda: upgrade(engine))
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


def _data_paths(settings: Settings) -> tuple[Path, dict[str, Path]]:
    """The file store's root and the extras of the data dir a backup keeps (the secret key)."""
    return settings.data_dir / "files", {SECRET_KEY_FILE: settings.data_dir / SECRET_KEY_FILE}


def _run(action: Callable[[], Any]) -> Any:
    """Run a migrate, backup or restore; refusals and failures become one line (exit 2, or 1 for integrity)."""
    from sqlalchemy.exc import SQLAlchemyError

    from records.backup import BackupError
    from records.errors import RecordsError

    try:
        return action()
    except BackupError as exc:
        if exc.integrity:
            raise CheckFailed(f"{exc.code}: {exc.message}") from None
        raise CommandError(f"{exc.code}: {exc.message}") from None
    except RecordsError as exc:  # records.migrate.SchemaError: behind, unknown, not adoptable
        raise CommandError(f"{exc.code}: {exc.message}") from None
    except (OSError, SQLAlchemyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CommandError(f"{exc.__class__.__name__}: {first}") from None


class CheckFailed(CommandError):
    """A file is missing or its hash is wrong: the command exits 1, not 2."""


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    from records.backup import backup
    from records.db import make_engine
    from records.storage import FileStore

    store_root, extra = _data_paths(settings)
    engine = make_engine(settings.database_url)
    try:
        summary = _run(lambda: backup(engine, FileStore(store_root), Path(args.dir), extra=extra))
    except CheckFailed as exc:
        print(f"cloudseat: {exc}", file=sys.stderr)
        return EXIT_CHECK_FAILED
    finally:
        engine.dispose()
    _emit(args, summary.to_json(), f"backup written to {summary.directory}: {summary.database} database at "
                                   f"revision {summary.schema_revision}, {summary.files} files ({summary.bytes} bytes)")
    return EXIT_OK


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    from records.backup import restore
    from records.db import make_engine
    from records.migrate import HEAD_REVISION

    store_root, extra = _data_paths(settings)
    engine = make_engine(settings.database_url)
    try:
        summary = _run(lambda: restore(engine, Path(args.dir), store_root=store_root, extra_targets=extra,
                                       data_dir=settings.data_dir, force=args.force))
    except CheckFailed as exc:
        print(f"cloudseat: {exc}", file=sys.stderr)
        return EXIT_CHECK_FAILED
    finally:
        engine.dispose()
    behind = summary.schema_revision != HEAD_REVISION
    payload = {**summary.to_json(), "needs_migrate": behind}
    human = (f"restored from {summary.directory} (made {summary.created_at}): {summary.database} database at "
             f"revision {summary.schema_revision}, {summary.files} files ({summary.bytes} bytes)"
             + ("; run `cloudseat admin migrate` next" if behind else ""))
    _emit(args, payload, human)
    return EXIT_OK
