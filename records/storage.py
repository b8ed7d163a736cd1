"""Content files (materials, recordings, printed documents) under the data dir.

Rows keep a path relative to the store root (POSIX form) and the file's
SHA-256; the store guarantees a path can never name a file outside the root,
whatever a row or a request says.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from records.errors import NotFoundError, UnsafePathError, ValidationError

logger = logging.getLogger(__name__)

_CATEGORY = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_SUFFIX = re.compile(r"^(\.[a-z0-9]{1,10})?$")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class StoredFile:
    """A file just written: its relative POSIX path, SHA-256 (hex) and size in bytes."""

    path: str
    sha256: str
    size: int


class FileStore:
    """Files under `root`, addressed by validated relative paths."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def put_bytes(self, category: str, data: bytes, suffix: str = "") -> StoredFile:
        """Write `data` atomically to a fresh name under `category/` and return where.

        Written to a temporary file in the target directory, fsynced, then
        renamed, so a crash leaves either no file or the whole file.  Names are
        random (not the hash) so two uploads of equal bytes stay two files that
        can be purged independently.
        """
        if not _CATEGORY.match(category):
            raise ValidationError("invalid_category", f"bad storage category {category!r}")
        if not _SUFFIX.match(suffix):
            raise ValidationError("invalid_suffix", f"bad file suffix {suffix!r}")
        sha = hashlib.sha256(data).hexdigest()
        relpath = f"{category}/{sha[:2]}/{secrets.token_hex(16)}{suffix}"
        target = self.absolute(relpath)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(target.parent)
        logger.debug("stored %s (%d bytes)", relpath, len(data))
        return StoredFile(path=relpath, sha256=sha, size=len(data))

    def absolute(self, relpath: str) -> Path:
        """The absolute path of `relpath`, refused unless it stays inside the root.

        Refuses empty paths, NUL, backslashes, absolute paths, `.`/`..`
        components, and (after resolving symlinks) anything outside the root.
        """
        if not isinstance(relpath, str) or not relpath:
            raise UnsafePathError(message="empty path")
        if "\x00" in relpath or "\\" in relpath:
            raise UnsafePathError(message=f"forbidden character in {relpath!r}")
        pure = PurePosixPath(relpath)
        if pure.is_absolute() or relpath.startswith("/"):
            raise UnsafePathError(message=f"absolute path {relpath!r}")
        if any(part in ("..", ".") for part in relpath.split("/")) or ":" in pure.parts[0]:
            raise UnsafePathError(message=f"path component not allowed in {relpath!r}")
        candidate = (self.root / pure).resolve()
        if not candidate.is_relative_to(self.root) or candidate == self.root:
            raise UnsafePathError(message=f"{relpath!r} resolves outside the store")
        return candidate

    def relative(self, path: Path) -> str:
        """The store path of an absolute `path` inside the root (e.g. a finished recording)."""
        resolved = Path(path).resolve()
        if not resolved.is_relative_to(self.root) or resolved == self.root:
            raise UnsafePathError(message=f"{path} is not inside the store")
        relpath = resolved.relative_to(self.root).as_posix()
        self.absolute(relpath)  # same rules as every other path
        return relpath

    def open(self, relpath: str) -> BinaryIO:
        """Open a stored file for reading (binary)."""
        path = self.absolute(relpath)
        try:
            return path.open("rb")
        except FileNotFoundError as exc:
            raise NotFoundError("file_not_found", f"no stored file {relpath}") from exc

    def exists(self, relpath: str) -> bool:
        return self.absolute(relpath).is_file()

    def sha256_of(self, relpath: str) -> str:
        """SHA-256 (hex) of a stored file, read in chunks so recordings need no memory."""
        digest = hashlib.sha256()
        with self.open(relpath) as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    def size_of(self, relpath: str) -> int:
        try:
            return self.absolute(relpath).stat().st_size
        except FileNotFoundError as exc:
            raise NotFoundError("file_not_found", f"no stored file {relpath}") from exc

    def delete(self, relpath: str) -> bool:
        """Remove a stored file; False if it was already gone."""
        path = self.absolute(relpath)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        logger.info("deleted stored file %s", relpath)
        return True


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (POSIX); not every platform can open a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
