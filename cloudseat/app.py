"""`create_app(settings)`: the one place that wires the packages into an ASGI app.

Nothing is created at import time; the lifespan builds the database engine,
the file store and (when configured) the Redis client, and hangs them on
`app.state` for the routes.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route

from booth import routes as booth_routes
from cloudseat import health
from cloudseat.settings import Settings, ensure_secret_key
from cloudseat.templating import make_templates
from records.db import create_schema, make_engine
from records.storage import FileStore
from seat import routes as seat_routes
from signaling.access import EVERYONE, guarded_route
from signaling.ratelimit import SlidingWindowLimiter

logger = logging.getLogger(__name__)

LOGIN_FAILURES_ALLOWED = 5
LOGIN_FAILURE_WINDOW_S = 300


def app_routes() -> list[BaseRoute]:
    """Every route of the app; each is built with an access rule (see signaling.access)."""
    return [
        guarded_route("/healthz", health.healthz, allow=EVERYONE),
        guarded_route("/readyz", health.readyz, allow=EVERYONE),
        *seat_routes.routes(),
        *booth_routes.routes(),
    ]


def create_app(settings: Settings) -> Starlette:
    """Build the ASGI app for `settings`; resources are created when it starts."""
    settings = ensure_secret_key(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        create_schema(engine)
        app.state.engine = engine
        app.state.store = FileStore(settings.data_dir / "files")
        app.state.redis = None
        if settings.redis_url is not None:
            from redis.asyncio import Redis

            app.state.redis = Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=2)
        logger.info(
            "cloudseat node %s ready: database %s, %s",
            settings.node_id,
            engine.dialect.name,
            "Redis bus" if settings.redis_url else "single-node (in-process) bus",
        )
        try:
            yield
        finally:
            if app.state.redis is not None:
                await app.state.redis.aclose()
            engine.dispose()

    middleware: list[Middleware] = []
    app = Starlette(routes=app_routes(), middleware=middleware, lifespan=lifespan)
    app.state.settings = settings
    app.state.templates = make_templates()
    app.state.login_limiter = SlidingWindowLimiter(LOGIN_FAILURES_ALLOWED, LOGIN_FAILURE_WINDOW_S)
    return app
