"""Run the real app on uvicorn on an ephemeral loopback port, in a background thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from starlette.applications import Starlette


STOP_TIMEOUT_S = 120.0  # a stop that takes longer is a hang, and fails the test


@dataclass(frozen=True)
class LiveServer:
    app: Starlette
    port: int
    scheme: str = "http"
    host: str = "127.0.0.1"  # the name clients use (a TLS test maps a non-loopback name to 127.0.0.1)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


@contextmanager
def serve(app: Starlette, *, timeout_s: float = 20.0, tls: tuple[Path, Path] | None = None,
          host_name: str = "127.0.0.1") -> Iterator[LiveServer]:
    """Start uvicorn on 127.0.0.1:0 (https with `tls` = (certfile, keyfile)), wait until it listens, stop it afterwards."""
    certfile, keyfile = tls if tls is not None else (None, None)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", ws="websockets-sansio", lifespan="on",
                            proxy_headers=False,  # as `cloudseat serve`: the app decides whom to believe
                            ssl_certfile=certfile, ssl_keyfile=keyfile)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    started = threading.Event()

    def wait_started() -> None:
        while thread.is_alive() and not server.started:
            started.wait(0.01)

    wait_started()
    if not server.started:
        thread.join(timeout_s)
        raise RuntimeError("uvicorn failed to start (see the log above)")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield LiveServer(app, port, "https" if tls else "http", host_name)
    finally:
        server.should_exit = True
        # Wait for the whole shutdown, however slow the machine: the lifespan still writes (open
        # rooms register their recordings), and a test that went on to drop its schema under that
        # write was PostgreSQL's deadlock victim, and left a connection open at exit.
        thread.join(STOP_TIMEOUT_S)
        if thread.is_alive():
            raise RuntimeError(f"uvicorn did not stop within {STOP_TIMEOUT_S:.0f} s")
