"""Liveness and readiness probes for load balancers and the demo script."""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from records.db import ping as ping_database

logger = logging.getLogger(__name__)


async def healthz(request: Request) -> Response:
    """The process is up and serving."""
    return JSONResponse({"status": "ok", "node": request.app.state.settings.node_id})


async def readyz(request: Request) -> Response:
    """The dependencies answer: the database and, when configured, Redis. 503 otherwise."""
    checks: dict[str, str] = {}
    try:
        await run_in_threadpool(ping_database, request.app.state.engine)
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        logger.warning("readiness: database: %s", exc)
        checks["database"] = "unavailable"
    if request.app.state.settings.uses_redis:
        try:
            checks["redis"] = "ok" if await request.app.state.bus.ping() else "unavailable"
        except Exception as exc:  # noqa: BLE001
            logger.warning("readiness: redis: %s", exc)
            checks["redis"] = "unavailable"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ready" if ready else "unavailable", "checks": checks},
                        status_code=200 if ready else 503)
