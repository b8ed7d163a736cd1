"""`cloudseat serve --certfile/--keyfile`: https and wss from uvicorn's own TLS, and a bad pair refused.

A real `cloudseat serve` process with a certificate made at test time. A client that trusts
exactly that certificate loads a page, gets a Secure cookie and opens a booth socket over wss.
A key that does not match its certificate, or a missing file, is one line and exit 2.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from signaling.protocol_client import ProtocolClient
from tests.cluster import free_port
from tests.tls_certs import CertPair, make_cert_pair


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSEAT_")}
    env.update(CLOUDSEAT_DATA_DIR=str(data_dir), **extra)
    return env


def seed_booth(data_dir: Path, base_url: str) -> str:
    """A region and a booth made with the admin commands; the booth's token."""
    env = cli_env(data_dir, CLOUDSEAT_PUBLIC_BASE_URL=base_url)
    subprocess.run([sys.executable, "-m", "cloudseat", "admin", "create-region", "--code", "xihu",
                    "--name-zh", "西湖街道", "--name-en", "Xihu"], env=env, check=True, capture_output=True)
    made = subprocess.run([sys.executable, "-m", "cloudseat", "admin", "create-booth", "--name", "booth-a",
                           "--region", "xihu", "--json"], env=env, check=True, capture_output=True, text=True)
    return str(json.loads(made.stdout)["token"])


def wait_https_ready(url: str, pair: CertPair, proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/readyz", verify=pair.client_context(), timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)  # polling a starting process: there is no event to wait on
    raise RuntimeError(f"{url} not ready after {timeout_s} s")


async def test_serve_over_tls_gives_https_secure_cookies_and_wss(tmp_path: Path) -> None:
    pair = make_cert_pair(tmp_path / "tls")
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    data_dir = tmp_path / "var"
    token = seed_booth(data_dir, url)
    env = cli_env(data_dir, CLOUDSEAT_PUBLIC_BASE_URL=url)
    with open(tmp_path / "server.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "cloudseat", "serve", "--port", str(port),
                                 "--certfile", str(pair.certfile), "--keyfile", str(pair.keyfile)],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_https_ready(url, pair, proc)
        with httpx.Client(base_url=url, verify=pair.client_context()) as client:
            page = client.get("/login")
            assert page.status_code == 200 and "<form" in page.text
            cookies = page.headers.get_list("set-cookie")
            assert cookies and all("Secure" in c for c in cookies), cookies
        # Plain http to the TLS port is refused, not served.
        try:
            plain = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
            assert plain.status_code >= 400
        except httpx.TransportError:
            pass
        booth = await ProtocolClient.connect(url, "booth", token=token, ssl_context=pair.client_context(),
                                             origin=url)
        try:
            assert booth.welcome["role"] == "booth"
            pong = await booth.request("ping")
            assert pong["type"] == "pong"
        finally:
            await booth.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) in (0, -signal.SIGTERM)
    assert b"Traceback" not in (tmp_path / "server.log").read_bytes()


def test_a_key_that_is_not_the_certificate_s_or_a_missing_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    one, other = make_cert_pair(tmp_path / "one"), make_cert_pair(tmp_path / "other")
    cases = {
        "do not make a pair": [str(one.certfile), str(other.keyfile)],
        "no such file": [str(tmp_path / "missing.pem"), str(one.keyfile)],
    }
    for expected, (certfile, keyfile) in cases.items():
        refused = subprocess.run([sys.executable, "-m", "cloudseat", "serve", "--port", str(free_port()),
                                  "--certfile", certfile, "--keyfile", keyfile],
                                 env=cli_env(tmp_path / "var"), capture_output=True, text=True, timeout=60)
        lines = [line for line in refused.stderr.splitlines() if line.strip()]
        assert refused.returncode == 2, refused.stderr
        assert len(lines) == 1 and expected in lines[0], lines
    alone = subprocess.run([sys.executable, "-m", "cloudseat", "serve", "--certfile", str(one.certfile)],
                           env=cli_env(tmp_path / "var"), capture_output=True, text=True, timeout=60)
    assert alone.returncode == 2 and "--keyfile" in alone.stderr
