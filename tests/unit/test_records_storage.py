"""FileStore: atomic writes, hashes, and paths that cannot leave the root."""

from __future__ import annotations

import hashlib
import os

import pytest

from records.errors import NotFoundError, UnsafePathError, ValidationError
from records.storage import FileStore


def test_put_bytes_round_trip(tmp_path):
    store = FileStore(tmp_path / "data")
    stored = store.put_bytes("materials", b"hello", ".png")
    assert stored.path.startswith("materials/") and stored.path.endswith(".png")
    assert "\\" not in stored.path and not stored.path.startswith("/")
    assert stored.sha256 == hashlib.sha256(b"hello").hexdigest()
    assert stored.size == 5
    with store.open(stored.path) as fh:
        assert fh.read() == b"hello"
    assert store.sha256_of(stored.path) == stored.sha256
    assert store.absolute(stored.path) == (tmp_path / "data" / stored.path).resolve()
    # no temporary files left behind
    leftovers = [p for p in (tmp_path / "data").rglob("*") if p.name.startswith(".tmp-")]
    assert leftovers == []


def test_equal_bytes_get_distinct_files(tmp_path):
    store = FileStore(tmp_path)
    assert store.put_bytes("prints", b"x").path != store.put_bytes("prints", b"x").path


def test_delete(tmp_path):
    store = FileStore(tmp_path)
    stored = store.put_bytes("prints", b"x", ".pdf")
    assert store.delete(stored.path) is True
    assert store.delete(stored.path) is False
    with pytest.raises(NotFoundError):
        store.open(stored.path)


@pytest.mark.parametrize(
    "relpath",
    ["../outside.txt", "materials/../../outside.txt", "/etc/passwd", "materials/\x00x", "", ".",
     "materials\\..\\x", "C:/windows", "./materials/x"],
)
def test_paths_cannot_escape_the_root(tmp_path, relpath):
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "outside.txt").write_bytes(b"secret")
    store = FileStore(root)
    with pytest.raises(UnsafePathError) as info:
        store.open(relpath)
    assert info.value.code == "unsafe_path"
    with pytest.raises(UnsafePathError):
        store.delete(relpath)
    assert (tmp_path / "outside.txt").exists()


def test_symlink_out_of_the_root_is_refused(tmp_path):
    root = tmp_path / "root"
    (root / "materials").mkdir(parents=True)
    (tmp_path / "outside.txt").write_bytes(b"secret")
    os.symlink(tmp_path / "outside.txt", root / "materials" / "link.txt")
    with pytest.raises(UnsafePathError):
        FileStore(root).sha256_of("materials/link.txt")


@pytest.mark.parametrize("category, suffix", [("../x", ".png"), ("Materials", ".png"), ("materials", "png"),
                                              ("materials", ".p/g"), ("", "")])
def test_bad_category_or_suffix(tmp_path, category, suffix):
    with pytest.raises(ValidationError):
        FileStore(tmp_path).put_bytes(category, b"x", suffix)


def test_relative_maps_inside_paths_only(tmp_path):
    store = FileStore(tmp_path / "root")
    inside = tmp_path / "root" / "recordings" / "a.webm"
    assert store.relative(inside) == "recordings/a.webm"
    with pytest.raises(UnsafePathError):
        store.relative(tmp_path / "elsewhere.webm")
