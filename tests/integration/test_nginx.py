"""The shipped deploy/nginx/cloudseat.conf, run by a real nginx in front of two real nodes.

The config under test is the shipped file with only its example values replaced (ports, host
name, certificate, upstream servers); each replacement must hit exactly as often as expected,
so an edit of the shipped file is an edit of what is tested.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
import websockets

from booth.materials import MAX_UPLOAD_BYTES
from cloudseat.app import create_app
from signaling.protocol import SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX
from tests.cluster import free_port
from tests.conftest import skip_or_fail
from tests.live_server import serve
from tests.signaling_fixtures import seed_world
from tests.tls_certs import HOST_NAME, CertPair, make_cert_pair

SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "cloudseat.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CLIENT, STRANGER = "127.0.0.2", "127.0.0.3"  # loopback addresses a test client connects from


def generated_config(shipped: str, *, http_port: int, https_port: int, upstreams: list[int],
                     cert: CertPair) -> str:
    """The shipped server config with its example values replaced; each must be found as often as shipped."""
    replacements = [
        ("listen 80;", f"listen 127.0.0.1:{http_port};", 1),
        ("listen [::]:80;\n", "", 1),
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;", 1),
        ("listen [::]:443 ssl http2;\n", "", 1),
        ("server_name seat.example.gov.cn;", f"server_name {HOST_NAME};", 2),
        ("/etc/cloudseat/tls/fullchain.pem", str(cert.certfile), 1),
        ("/etc/cloudseat/tls/privkey.pem", str(cert.keyfile), 1),
        ("server 10.0.0.11:8000 ", f"server 127.0.0.1:{upstreams[0]} ", 1),
        ("server 10.0.0.12:8000 ", f"server 127.0.0.1:{upstreams[1]} ", 1),
    ]
    out = shipped
    for old, new, count in replacements:
        assert out.count(old) == count, f"the shipped config no longer has {old!r} {count} time(s)"
        out = out.replace(old, new)
    return out


def main_config(directory: Path, server_config: Path) -> str:
    """An nginx.conf of the test's own (no daemon, files under `directory`) including the server config."""
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers must read the test's private temp dir
    return (f"{user}daemon off;\nworker_processes 1;\npid {directory}/nginx.pid;\nerror_log {directory}/error.log warn;\n"
            "events { worker_connections 256; }\n"
            f"http {{\n  access_log {directory}/access.log;\n  client_body_temp_path {directory}/body;\n"
            f"  proxy_temp_path {directory}/proxy;\n  include {server_config};\n}}\n")


def _nginx_present() -> None:
    if not Path(NGINX).exists():
        skip_or_fail(f"no nginx at {NGINX} (apt-get install nginx-light)")


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"nginx exited with {proc.returncode}"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)  # polling a starting process: there is no event to wait on
    raise AssertionError(f"nginx not listening on {port} after {timeout_s} s")


@contextmanager
def nginx(directory: Path, upstreams: list[int], cert: CertPair) -> Iterator[tuple[int, int]]:
    directory.mkdir(parents=True, exist_ok=True)
    http_port, https_port = free_port(), free_port()
    server_config = directory / "cloudseat.conf"
    server_config.write_text(generated_config(SHIPPED.read_text(), http_port=http_port, https_port=https_port,
                                              upstreams=upstreams, cert=cert))
    conf = directory / "nginx.conf"
    conf.write_text(main_config(directory, server_config))
    checked = subprocess.run([NGINX, "-t", "-q", "-c", str(conf), "-p", str(directory)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    proc = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(directory)], stderr=subprocess.DEVNULL)
    try:
        _wait_listening(https_port, proc)
        _wait_listening(http_port, proc)
        yield http_port, https_port
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_upload_limit_fits_the_apps():
    limit = re.search(r"client_max_body_size (\d+)m;", SHIPPED.read_text())
    assert limit, "client_max_body_size not set in MB"
    assert MAX_UPLOAD_BYTES + 64 * 1024 <= int(limit.group(1)) * 1024 * 1024 <= 2 * MAX_UPLOAD_BYTES


async def test_nginx_in_front_of_two_nodes(tmp_path, app_settings):
    _nginx_present()
    cert = make_cert_pair(tmp_path / "tls")
    settings = app_settings.with_overrides(public_base_url=f"https://{HOST_NAME}", trusted_proxies=("127.0.0.1/32",),
                                           metrics_allow=(f"{CLIENT}/32",))
    seeded = seed_world(settings)
    with ExitStack() as stack:
        nodes = [stack.enter_context(serve(create_app(settings.with_overrides(node_id=f"node-{n}")))) for n in "ab"]
        http_port, https_port = stack.enter_context(nginx(tmp_path / "nginx", [n.port for n in nodes], cert))
        base = f"https://127.0.0.1:{https_port}"
        trust = cert.client_context()

        def client(source: str) -> httpx.Client:
            return stack.enter_context(httpx.Client(transport=httpx.HTTPTransport(local_address=source, verify=trust)))

        via_nginx, stranger = client(CLIENT), client(STRANGER)
        # https pages through either node, with the security headers.
        page = via_nginx.get(f"{base}/login", headers={"accept": "text/html"})
        assert page.status_code == 200 and 'name="csrf_token"' in page.text
        assert page.headers["strict-transport-security"].startswith("max-age=")
        assert page.headers["x-content-type-options"] == "nosniff"
        assert {via_nginx.get(f"{base}/healthz").json()["node"] for _ in range(4)} == {"node-a", "node-b"}
        # Plain http is sent to https.
        redirect = via_nginx.get(f"http://127.0.0.1:{http_port}/login?next=/seat", headers={"host": HOST_NAME})
        assert redirect.status_code == 301 and redirect.headers["location"] == f"https://{HOST_NAME}/login?next=/seat"

        # The nodes see the client's own address (from nginx's X-Forwarded-For, nginx being trusted):
        # /metrics is open to CLIENT only.
        assert via_nginx.get(f"{base}/metrics").status_code == 200
        assert stranger.get(f"{base}/metrics").status_code == 403
        forged = {"x-forwarded-for": CLIENT}  # nginx appends the real peer: the last untrusted hop
        assert stranger.get(f"{base}/metrics", headers=forged).status_code == 403
        # Straight to a node, a forged header is not believed: the peer is no trusted proxy.
        assert stranger.get(f"http://127.0.0.1:{nodes[0].port}/metrics", headers=forged).status_code == 403

        # wss through nginx: the booth's socket is upgraded and gets its welcome.
        protocols = [SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX + seeded["tokens"]["b1"]]
        async with websockets.connect(f"wss://127.0.0.1:{https_port}/ws/booth", ssl=trust, server_hostname=HOST_NAME,
                                      origin=f"https://{HOST_NAME}", subprotocols=protocols, open_timeout=10) as ws:
            welcome = json.loads(await ws.recv())
        assert welcome["type"] == "welcome" and welcome["role"] == "booth"
