"""`media/` imports nothing else of ours (ARCHITECTURE.md), and only one module
touches aiortc's private internals."""

from __future__ import annotations

import ast
import re
from pathlib import Path

MEDIA = Path(__file__).resolve().parents[2] / "media"
OURS = {"records", "signaling", "seat", "booth", "cloudseat"}


def imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return modules


def test_media_imports_nothing_of_ours() -> None:
    offenders = {
        path.name: sorted(m for m in imported_modules(path) if m.split(".")[0] in OURS)
        for path in MEDIA.glob("*.py")
    }
    assert {name: mods for name, mods in offenders.items() if mods} == {}


def test_private_aiortc_names_stay_in_one_module() -> None:
    private = re.compile(r"_RTCRtp\w+__|\._send_rtcp_pli|\._send_keyframe|\._codecs\b|\._connection\b|\._local_candidates")
    users = sorted(p.name for p in MEDIA.glob("*.py") if private.search(p.read_text()))
    assert users == ["_aiortc_internals.py"]
