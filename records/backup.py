"""Backup and restore of the database and every stored file it names, consistent while serving.

A backup directory holds::

    manifest.json       written last: format, created_at, schema revision, database kind,
                        and the size and SHA-256 of the dump, of every file and every extra
    database.sqlite     SQLite: a copy made with the online backup API (one step, one snapshot)
    database.pgdump     PostgreSQL: `pg_dump --format=custom` of an exported snapshot
    files/<path>        every stored file a row of the snapshot names, at its store path
    extra/<name>        small files of the data dir the caller names (the secret key)

Consistent means: the dump is one snapshot of the database, and the files
copied are exactly those the dumped rows name (materials and recordings not
purged, print jobs, the recording manifests the event log names), each
hashed against its row as it is copied.  Files written after the snapshot
belong to rows the dump does not have and are not needed.  On PostgreSQL the
rows are read in the very transaction whose snapshot pg_dump dumps
(`pg_export_snapshot` / `pg_dump --snapshot`); on SQLite they are read from
the copy itself.  A file the snapshot names that is gone or changed by the
time it is copied (a purge running at the same moment) fails the backup
naming it: run backups and purges at different times.

The file queries select only the columns they need, so a database behind
the newest revision (back up before migrating) is read as well.  They name
the same files `records.verify` checks; keep the two in step.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import col

from records.errors import RecordsError, UnsafePathError
from records.migrate import HEAD_REVISION, schema_state
from records.models import Event, Material, PrintJob, Recording
from records.storage import FileStore
from records.verify import MANIFEST_EVENTS

logger = logging.getLogger(__name__)

FORMAT = 1
MANIFEST = "manifest.json"
DUMPS = {"sqlite": "database.sqlite", "postgresql": "database.pgdump"}
FILES_DIR = "files"
EXTRA_DIR = "extra"
_CHUNK = 1 << 20


class BackupError(RecordsError):
    """A backup or restore was refused or failed; `code` says which, the message names the file or step."""

    default_code = "backup_failed"

    @property
    def integrity(self) -> bool:
        """A file is missing or its hash is wrong (as opposed to a refusal of bad input)."""
        return self.code in ("hash_mismatch", "file_missing")


@dataclass(frozen=True)
class BackupSummary:
    """What `backup` wrote or `restore` restored (the manifest's headline)."""

    directory: Path
    created_at: str
    schema_revision: str | None
    database: str
    files: int
    bytes: int

    def to_json(self) -> dict[str, Any]:
        return {"directory": str(self.directory), "created_at": self.created_at,
                "schema_revision": self.schema_revision, "database": self.database,
                "files": self.files, "bytes": self.bytes}


# --------------------------------------------------------------------------- backup

def backup(engine: Engine, store: FileStore, target: Path, *, extra: Mapping[str, Path] | None = None) -> BackupSummary:
    """Write a backup of `engine`'s database and `store`'s named files into `target` (absent or empty).

    `extra`: name -> file of the data dir to keep as well (skipped when absent).
    """
    target = Path(target)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError("backup_dir_not_empty", f"{target} exists and is not an empty directory")
    kind = _kind(engine)
    target.mkdir(parents=True, exist_ok=True)
    try:
        return _backup_into(engine, store, target, kind, extra or {})
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)  # it was empty: leave no half backup that looks like one
        raise


def _backup_into(engine: Engine, store: FileStore, target: Path, kind: str, extra: Mapping[str, Path]) -> BackupSummary:
    dump = target / DUMPS[kind]
    created_at = datetime.now(timezone.utc).isoformat()
    if kind == "sqlite":
        _sqlite_snapshot(engine, dump)
        snapshot = create_engine(f"sqlite:///{dump}")
        try:
            with snapshot.connect() as conn:
                revision, named = schema_state(conn).revision, list(named_files(conn))
        finally:
            snapshot.dispose()
    else:
        revision, named = _pg_snapshot(engine, dump)
    files = [_copy_checked(store.absolute(path), target / FILES_DIR / path, path, sha256, where=f"{label} {row_id}")
             for label, row_id, path, sha256 in _unique(named)]
    extras = []
    for name, path in sorted(extra.items()):
        if Path(path).is_file():
            extras.append({"name": name, **_copy_hashed(Path(path), target / EXTRA_DIR / name)})
    manifest = {"format": FORMAT, "created_at": created_at, "schema_revision": revision,
                "database": {"kind": kind, "file": dump.name, "size": dump.stat().st_size, "sha256": _sha256(dump)},
                "files": files, "extra": extras}
    _write_json(target / MANIFEST, manifest)
    summary = BackupSummary(target, created_at, revision, kind, len(files), sum(f["size"] for f in files))
    logger.info("backup of the %s database at revision %s and %d files (%d bytes) in %s",
                kind, revision, summary.files, summary.bytes, target)
    return summary


def _kind(engine: Engine) -> str:
    kind = engine.dialect.name
    if kind not in DUMPS:
        raise BackupError("unsupported_database", f"cannot back up a {kind} database (SQLite or PostgreSQL only)")
    return kind


def named_files(conn: Connection) -> Iterator[tuple[str, int | None, str, str]]:
    """(label, row id, store path, sha256) of every file the database says must exist."""
    queries = [
        ("material", select(col(Material.id), col(Material.path), col(Material.sha256))
         .where(col(Material.purged_at).is_(None)).order_by(col(Material.id))),
        ("recording", select(col(Recording.id), col(Recording.path), col(Recording.sha256))
         .where(col(Recording.purged_at).is_(None)).order_by(col(Recording.id))),
        ("print job", select(col(PrintJob.id), col(PrintJob.path), col(PrintJob.sha256)).order_by(col(PrintJob.id))),
    ]
    for label, stmt in queries:
        for row_id, path, sha256 in conn.execute(stmt):
            yield label, row_id, path, sha256
    events = (select(col(Event.seq), col(Event.data)).where(col(Event.kind).in_(MANIFEST_EVENTS))
              .order_by(col(Event.seq)))
    for seq, data in conn.execute(events):
        data = data if isinstance(data, dict) else json.loads(data)
        if isinstance(data.get("manifest"), str) and isinstance(data.get("manifest_sha256"), str):
            yield "recording manifest of event seq", seq, data["manifest"], data["manifest_sha256"]


def _unique(named: list[tuple[str, int | None, str, str]]) -> Iterator[tuple[str, int | None, str, str]]:
    seen: set[str] = set()
    for entry in named:
        if entry[2] not in seen:
            seen.add(entry[2])
            yield entry


def _sqlite_snapshot(engine: Engine, dump: Path) -> None:
    """Copy the live database with SQLite's online backup API in one step (one read transaction)."""
    source_path = engine.url.database
    if not source_path or source_path == ":memory:":
        raise BackupError("unsupported_database", "cannot back up an in-memory SQLite database")
    if not Path(source_path).is_file():  # sqlite3.connect would create an empty one
        raise BackupError("no_database", f"no SQLite database at {source_path}")
    source = sqlite3.connect(source_path, timeout=30)
    copy = sqlite3.connect(dump)
    try:
        source.backup(copy)  # pages=-1: every page in one step, so the copy is one snapshot
        copy.execute("PRAGMA journal_mode=DELETE")  # a self-contained file, no -wal beside it
        copy.commit()
    finally:
        copy.close()
        source.close()


def _libpq_url(engine: Engine) -> tuple[str, dict[str, str]]:
    """The engine's URL for pg_dump / pg_restore (no driver suffix), the password in the environment."""
    url = engine.url.set(drivername="postgresql")
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
        url = url.set(password=None)
    return url.render_as_string(hide_password=False), env


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError("tool_missing", f"{name} is not on PATH (install the PostgreSQL client tools)")
    return path


def _pg_snapshot(engine: Engine, dump: Path) -> tuple[str | None, list[tuple[str, int | None, str, str]]]:
    """pg_dump the snapshot of an open REPEATABLE READ transaction, and read the file rows in it."""
    pg_dump = _tool("pg_dump")
    url, env = _libpq_url(engine)
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
        snapshot_id = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
        done = subprocess.run([pg_dump, "--format=custom", f"--snapshot={snapshot_id}", f"--file={dump}",
                               f"--dbname={url}"], capture_output=True, text=True, env=env)
        if done.returncode != 0:
            raise BackupError("dump_failed", f"pg_dump failed: {_last_line(done.stderr)}")
        return schema_state(conn).revision, list(named_files(conn))


def _last_line(text_: str) -> str:
    lines = [line for line in text_.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no message)"


def _copy_checked(source: Path, dest: Path, path: str, sha256: str, *, where: str) -> dict[str, Any]:
    """Copy one stored file, failing unless its bytes hash to what its row says."""
    try:
        copied = _copy_hashed(source, dest)
    except FileNotFoundError:
        raise BackupError("file_missing", f"{where} {path}: missing (deleted since the snapshot? a purge running "
                                          "at the same time; run the backup again)") from None
    if copied["sha256"] != sha256:
        dest.unlink(missing_ok=True)
        raise BackupError("hash_mismatch", f"{where} {path}: sha256 differs from its row (run cloudseat verify)")
    return {"path": path, **copied}


def _copy_hashed(source: Path, dest: Path) -> dict[str, Any]:
    """Copy `source` to `dest` (via a temporary name, fsynced), returning its size and SHA-256."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    with open(source, "rb") as src:
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return {"size": size, "sha256": digest.hexdigest()}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _write_json(path: Path, document: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.part")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(document, fh, ensure_ascii=False, indent=1)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


# --------------------------------------------------------------------------- restore

def read_manifest(source: Path) -> dict[str, Any]:
    """The backup's manifest.json, refused unless it is one this code wrote."""
    path = Path(source) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError("not_a_backup", f"{source} has no {MANIFEST} (not a backup, or an unfinished one)") from None
    except (OSError, ValueError) as exc:
        raise BackupError("not_a_backup", f"{path} is unreadable: {exc.__class__.__name__}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError("not_a_backup", f"{path} is not a cloudseat backup manifest of format {FORMAT}")
    return manifest


def check_backup(source: Path, manifest: dict[str, Any]) -> None:
    """Hash every file of the backup against its manifest; raise naming the first that differs."""
    database = manifest["database"]
    entries = [(source / str(database["file"]), database["sha256"], "database dump")]
    entries += [(_inside(source / FILES_DIR, str(f["path"])), f["sha256"], f"file {f['path']}")
                for f in manifest["files"]]
    entries += [(_inside(source / EXTRA_DIR, str(e["name"])), e["sha256"], f"extra {e['name']}")
                for e in manifest["extra"]]
    for path, sha256, what in entries:
        try:
            actual = _sha256(path)
        except FileNotFoundError:
            raise BackupError("file_missing", f"backup {what}: {path} is missing") from None
        if actual != sha256:
            raise BackupError("hash_mismatch", f"backup {what}: sha256 differs from the manifest")


def _inside(root: Path, relpath: str) -> Path:
    """`relpath` under `root`, refused if a tampered manifest points outside it (FileStore's rules)."""
    try:
        return FileStore(root).absolute(relpath)
    except UnsafePathError as exc:
        raise BackupError("not_a_backup", f"manifest names an unsafe path: {exc.message}") from None


def target_problems(engine: Engine, store_root: Path, extra_targets: Mapping[str, Path],
                    data_dir: Path | None = None) -> list[str]:
    """Why the target is not empty: tables in the database, files in the store or the data dir."""
    problems = []
    if _database_tables(engine):
        problems.append("the database has tables")
    if store_root.exists() and any(p.is_file() for p in store_root.rglob("*")):
        problems.append(f"{store_root} holds files")
    problems += [f"{path} exists" for path in extra_targets.values() if Path(path).exists()]
    if data_dir is not None and data_dir.is_dir():
        own = {store_root.resolve(), *(Path(p).resolve() for p in extra_targets.values()), *_sqlite_files(engine)}
        others = sorted(p.name for p in data_dir.iterdir() if p.resolve() not in own)
        if others:
            problems.append(f"{data_dir} holds {', '.join(others[:5])}")
    return problems


def _database_tables(engine: Engine) -> list[str]:
    if engine.dialect.name == "sqlite" and not Path(str(engine.url.database)).exists():
        return []
    with engine.connect() as conn:
        return inspect(conn).get_table_names()


def _sqlite_files(engine: Engine) -> list[Path]:
    """The SQLite database file and its journals (empty for PostgreSQL)."""
    if engine.dialect.name != "sqlite" or not engine.url.database:
        return []
    base = Path(engine.url.database).resolve()
    return [base, *(base.with_name(base.name + s) for s in ("-wal", "-shm", "-journal"))]


def restore(engine: Engine, source: Path, *, store_root: Path, extra_targets: Mapping[str, Path] | None = None,
            data_dir: Path | None = None, force: bool = False) -> BackupSummary:
    """Restore a backup into an empty database and store (or, with `force`, over what is there).

    Checks the manifest and every hash before touching the target, then
    hashes every file again as it copies it.  `extra_targets`: name -> where
    an extra of the backup goes (those the backup lacks are left alone).
    `data_dir`: refused unless it holds nothing but the store, the extras and
    the SQLite database.  The database comes back at the revision it was
    dumped at; `cloudseat admin migrate` upgrades it if that is behind.
    """
    source = Path(source)
    extra_targets = dict(extra_targets or {})
    manifest = read_manifest(source)
    kind = _kind(engine)
    if manifest["database"]["kind"] != kind:
        raise BackupError("kind_mismatch", f"the backup holds a {manifest['database']['kind']} database; "
                                           f"the target is {kind}")
    check_backup(source, manifest)
    problems = target_problems(engine, store_root, extra_targets, data_dir)
    if problems and not force:
        raise BackupError("target_not_empty", f"refusing to restore over a target that is not empty "
                                              f"({'; '.join(problems)}); --force replaces it")
    dump = source / str(manifest["database"]["file"])
    if kind == "sqlite":
        _restore_sqlite(engine, dump)
    else:
        _restore_pg(engine, dump, clean=bool(problems))
    if store_root.exists() and force:
        shutil.rmtree(store_root)
    for entry in manifest["files"]:
        path = str(entry["path"])
        dest = FileStore(store_root).absolute(path)
        _copy_checked(_inside(source / FILES_DIR, path), dest, path, entry["sha256"], where="backup file")
    for entry in manifest["extra"]:
        dest = extra_targets.get(str(entry["name"]))
        if dest is not None:
            _copy_hashed(_inside(source / EXTRA_DIR, str(entry["name"])), Path(dest))
            os.chmod(dest, 0o600)
    revision = manifest.get("schema_revision")
    files = manifest["files"]
    logger.info("restored the %s database at revision %s and %d files from %s%s", kind, revision, len(files),
                source, "" if revision == HEAD_REVISION else "; run cloudseat admin migrate")
    return BackupSummary(source, str(manifest["created_at"]), revision, kind, len(files),
                         sum(int(f["size"]) for f in files))


def _restore_sqlite(engine: Engine, dump: Path) -> None:
    """Put the dump in place of the database file (journals of the old one removed first)."""
    engine.dispose()
    files = _sqlite_files(engine)
    if not files:
        raise BackupError("unsupported_database", "cannot restore into an in-memory SQLite database")
    for path in files:
        path.unlink(missing_ok=True)
    _copy_hashed(dump, files[0])


def _restore_pg(engine: Engine, dump: Path, *, clean: bool) -> None:
    """pg_restore the dump in one transaction (with `clean`: dropping the dump's objects first)."""
    pg_restore = _tool("pg_restore")
    url, env = _libpq_url(engine)
    engine.dispose()
    command = [pg_restore, "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
               f"--dbname={url}"]
    if clean:
        command += ["--clean", "--if-exists"]
    done = subprocess.run([*command, str(dump)], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise BackupError("restore_failed", f"pg_restore failed: {_last_line(done.stderr)}")

