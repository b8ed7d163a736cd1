"""CI lint of deploy/systemd: `systemd-analyze verify` passes on the shipped units, with nothing to say.

verify also checks that ExecStart's binary exists; /srv/cloudseat is not installed here, so the
copies under test point it at a stand-in script (that one path, nothing else, is rewritten).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import skip_or_fail

UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
INSTALLED = "/srv/cloudseat/.venv/bin/cloudseat"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
# The template is verified as an instance: its name is the node id.
AS_VERIFIED = {"cloudseat@.service": "cloudseat@node-1.service"}


def _copies(directory: Path, edit: dict[str, tuple[str, str]] | None = None) -> list[Path]:
    directory.mkdir()
    stand_in = directory / "cloudseat"
    stand_in.write_text("#!/bin/sh\nexit 0\n")
    stand_in.chmod(0o755)
    out = []
    for unit in sorted(UNITS.glob("cloudseat*.service")) + sorted(UNITS.glob("cloudseat*.timer")):
        text = unit.read_text()
        if unit.name != "cloudseat-backup.timer":
            assert INSTALLED in text, f"{unit.name} no longer runs {INSTALLED}"
        text = text.replace(INSTALLED, str(stand_in))
        if edit and unit.name in edit:
            old, new = edit[unit.name]
            assert old in text
            text = text.replace(old, new)
        path = directory / AS_VERIFIED.get(unit.name, unit.name)
        path.write_text(text)
        out.append(path)
    return out


def _verify(units: list[Path]) -> subprocess.CompletedProcess[str]:
    if not Path(SYSTEMD_ANALYZE).exists():
        skip_or_fail(f"no systemd-analyze at {SYSTEMD_ANALYZE}")
    return subprocess.run([SYSTEMD_ANALYZE, "verify", *map(str, units)], capture_output=True, text=True,
                          cwd=units[0].parent, timeout=60)


def test_the_shipped_units_verify_cleanly(tmp_path):
    units = _copies(tmp_path / "units")
    assert {u.name for u in units} == {"cloudseat@node-1.service", "cloudseat-backup.service", "cloudseat-backup.timer"}
    result = _verify(units)
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr


@pytest.mark.parametrize("unit, old, new", [
    ("cloudseat@.service", "Restart=on-failure", "Restart=sometimes"),
    ("cloudseat@.service", "ProtectSystem=strict", "ProtectSystm=strict"),
    ("cloudseat-backup.timer", "OnCalendar=*-*-* 02:30:00", "OnCalendar=nightly at half past two"),
    ("cloudseat-backup.service", "Type=oneshot", "Type=once"),
], ids=["bad-value", "unknown-key", "bad-calendar", "bad-type"])
def test_a_broken_copy_fails(tmp_path, unit, old, new):
    result = _verify(_copies(tmp_path / "units", {unit: (old, new)}))
    assert result.returncode != 0 or result.stdout + result.stderr != ""


def test_the_units_are_hardened_and_read_the_env_file():
    node = (UNITS / "cloudseat@.service").read_text()
    for line in ("EnvironmentFile=/etc/cloudseat/cloudseat.env", "Environment=CLOUDSEAT_NODE_ID=%i",
                 "ProtectSystem=strict", "ReadWritePaths=/srv/cloudseat/var", "NoNewPrivileges=yes",
                 "PrivateTmp=yes", "Restart=on-failure", "User=cloudseat"):
        assert line in node.splitlines(), line
    stop = int(next(l for l in node.splitlines() if l.startswith("TimeoutStopSec=")).split("=")[1])
    assert stop >= 60  # rooms close and recordings are registered on SIGTERM
    backup = (UNITS / "cloudseat-backup.service").read_text()
    assert "cloudseat admin backup" in backup and "EnvironmentFile=/etc/cloudseat/cloudseat.env" in backup
    example = (UNITS / "cloudseat.env.example").read_text()
    for name in ("CLOUDSEAT_DATABASE_URL", "CLOUDSEAT_REDIS_URL", "CLOUDSEAT_SECRET_KEY",
                 "CLOUDSEAT_PUBLIC_BASE_URL", "CLOUDSEAT_TRUSTED_PROXIES", "CLOUDSEAT_PORT", "CLOUDSEAT_HOST"):
        assert f"\n{name}=" in example, name


def test_the_example_env_file_is_valid_settings():
    from cloudseat.settings import Settings

    lines = (UNITS / "cloudseat.env.example").read_text().splitlines()
    env = dict(l.split("=", 1) for l in lines if l and not l.startswith("#"))
    settings = Settings.from_env(env)
    assert settings.uses_redis and settings.public_base_url.startswith("https://") and settings.trusted_proxies
