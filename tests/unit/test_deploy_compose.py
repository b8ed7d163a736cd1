"""CI lint of deploy/compose.yaml: `docker compose config` where the client has compose, and a
structural check with PyYAML always (no Docker engine runs here)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SERVICES = {"migrate", "node-1", "node-2", "postgres", "redis", "coturn", "nginx"}
# Files the operator puts in place (secrets, certificates, and the coturn config of docs/turn.md).
PROVIDED_BY_OPERATOR = {"tls", "coturn/turnserver.conf"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_every_service_has_an_image_a_healthcheck_and_waits_for_healthy_dependencies(compose):
    services = compose["services"]
    assert set(services) == SERVICES
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        if name != "migrate":  # a one-shot job
            assert service["healthcheck"]["test"], name
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, (name, dependency)
            assert condition["condition"] in {"service_healthy", "service_completed_successfully"}, (name, dependency)
    for node in ("node-1", "node-2"):
        env = services[node]["environment"]
        assert env["CLOUDSEAT_NODE_ID"] == node
        assert env["CLOUDSEAT_REDIS_URL"].startswith("redis://redis:")
        assert env["CLOUDSEAT_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert "/readyz" in " ".join(services[node]["healthcheck"]["test"])
        assert services[node]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_nginx_is_the_trusted_proxy_and_its_upstreams_are_the_nodes(compose):
    services = compose["services"]
    nginx_ip = services["nginx"]["networks"]["cloudseat"]["ipv4_address"]
    assert services["node-1"]["environment"]["CLOUDSEAT_TRUSTED_PROXIES"] == nginx_ip
    shipped = (DEPLOY / "nginx" / "cloudseat.conf").read_text()
    for node in ("node-1", "node-2"):
        assert f"server {services[node]['networks']['cloudseat']['ipv4_address']}:8000 " in shipped, node


def test_referenced_files_exist_in_the_repository(compose):
    build = compose["x-node"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).is_file()
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                relative = source[2:]
                assert relative in PROVIDED_BY_OPERATOR or (DEPLOY / relative).exists(), (name, source)
            else:
                assert source in compose["volumes"], (name, source)


def test_docker_compose_config_accepts_it_where_available(tmp_path):
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("no `docker compose` client here; the structure is checked with PyYAML above")
    env = {"POSTGRES_PASSWORD": "x", "CLOUDSEAT_SECRET_KEY": "y" * 40, "PATH": "/usr/bin:/bin:/usr/local/bin"}
    result = subprocess.run([docker, "compose", "-f", str(DEPLOY / "compose.yaml"), "config", "--quiet"],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
