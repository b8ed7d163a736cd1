"""Dependencies point one way (ARCHITECTURE.md): this test parses every import and fails otherwise."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OURS = {"cloudseat", "records", "signaling", "media", "seat", "booth"}
# package -> our packages it may import
ALLOWED = {
    "records": set(),
    "media": set(),
    "signaling": {"records", "media"},
    "seat": {"records", "signaling"},
    "booth": {"records", "signaling"},
    "cloudseat": OURS - {"cloudseat"},
}
# Modules that run on a booth box install light: the wire protocol only.
LIGHT_BOOTH_MODULES = {"agent", "simulator", "devices"}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_packages_import_only_what_they_may():
    problems = []
    for package, allowed in ALLOWED.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            for name in imports_of(path):
                top = name.split(".")[0]
                if top in OURS and top != package and top not in allowed:
                    problems.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not problems, "\n".join(problems)


def test_light_booth_modules_import_only_the_protocol():
    problems = []
    for path in sorted((ROOT / "booth").rglob("*.py")):
        if path.stem.split("_")[0] not in LIGHT_BOOTH_MODULES and path.parent.name not in LIGHT_BOOTH_MODULES:
            continue
        for name in imports_of(path):
            top = name.split(".")[0]
            if top in OURS and top != "booth" and not name.startswith(("signaling.protocol", "media")):
                problems.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not problems, "\n".join(problems)


def test_the_checker_sees_a_forbidden_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from seat.routes import routes\nimport records.models\n", encoding="utf-8")
    assert imports_of(bad) == {"seat.routes", "records.models"}
