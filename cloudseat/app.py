"""`create_app(settings)`: the one place that wires the packages into an ASGI app.

Nothing is created at import time; the lifespan builds the database engine,
the file store and (when configured) the Redis client, and hangs them on
`app.state` for the routes.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from booth import routes as booth_routes
from media import MediaHub
from cloudseat import health
from cloudseat.metrics import make_metrics, metrics_endpoint
from cloudseat.openapi import openapi_endpoint
from cloudseat.settings import Settings, ensure_secret_key
from cloudseat.templating import make_templates
from records.db import create_schema, make_engine
from records.events import count_appends
from records.privacy import IdCardVault
from records.storage import FileStore
from seat import routes as seat_routes
from signaling.access import EVERYONE, Kind, booth_principals, guarded_route
from signaling.batch_loader import BatchLoader
from signaling.bus import Bus
from signaling.bus_memory import MemoryBus
from signaling.connection import ConnectionLimits
from signaling.endpoints import socket_routes
from signaling.ledger import Ledger
from signaling.media_flow import MediaFlow
from signaling.node_claim import NodeClaim
from signaling.ratelimit import SlidingWindowLimiter
from signaling.supervision_sweep import start_alert_sweeps, stop_alert_sweeps
from signaling.switchboard import Switchboard, SwitchboardConfig
from signaling.turn_credentials import IceConfig, principal_name

logger = logging.getLogger(__name__)

LOGIN_FAILURES_ALLOWED = 5
LOGIN_FAILURE_WINDOW_S = 300
# Per client address, across accounts: high enough for a whole service centre behind one NAT.
LOGIN_ADDRESS_FAILURES_ALLOWED = 50


def app_routes() -> list[BaseRoute]:
    """Every route of the app; each is built with an access rule (see signaling.access)."""
    return [
        guarded_route("/healthz", health.healthz, allow=EVERYONE),
        guarded_route("/readyz", health.readyz, allow=EVERYONE),
        # A scraper does not log in: the endpoint admits anonymous callers only from
        # CLOUDSEAT_METRICS_ALLOW; admins from anywhere.
        guarded_route("/metrics", metrics_endpoint, allow={Kind.ANONYMOUS, Kind.ADMIN}),
        # Public: it describes routes the pages' public scripts already name, and holds no data.
        guarded_route("/openapi.json", openapi_endpoint, allow=EVERYONE),
        *socket_routes(),
        *seat_routes.routes(),
        *booth_routes.routes(),
    ]


def make_bus(settings: Settings) -> Bus:
    """The Redis bus when configured (several nodes), else the in-process one."""
    if settings.redis_url is not None:
        from signaling.bus_redis import RedisBus

        return RedisBus(settings.redis_url, prefix=settings.redis_prefix, node_id=settings.node_id,
                        offer_timeout_s=settings.offer_timeout_s)
    return MemoryBus(settings.node_id, offer_timeout_s=settings.offer_timeout_s)


def switchboard_config(settings: Settings) -> SwitchboardConfig:
    return SwitchboardConfig(
        node_id=settings.node_id,
        limits=ConnectionLimits(heartbeat_s=settings.heartbeat_s),
        offer_timeout_s=settings.offer_timeout_s,
        reconnect_grace_s=settings.reconnect_grace_s,
        sweep_s=min(5.0, settings.heartbeat_s),
        timezone=settings.timezone,
        ice=ice_config(settings),
    )


def ice_config(settings: Settings) -> IceConfig:
    """What every socket is told about ICE: the static servers plus TURN REST credentials."""
    return IceConfig(static_servers=tuple(s.as_browser_dict() for s in settings.ice_servers),
                     turn_urls=settings.turn_urls, turn_secret=settings.turn_secret,
                     ttl_s=settings.turn_ttl_s, policy=settings.ice_policy)


def make_media_hub(settings: Settings) -> MediaHub:
    """The media hub with exactly the configured ICE servers (none by default) and host addresses."""
    from aiortc import RTCIceServer

    static = [RTCIceServer(urls=s.urls, username=s.username, credential=s.credential) for s in settings.ice_servers]
    if settings.ice_policy != "relay" or not settings.turn_urls:
        return MediaHub(ice_servers=static, host_addresses=list(settings.media_addresses) or None)
    # Relay policy: the parties reach the hub only through TURN, so the hub takes a relay
    # candidate too (its own time-limited credential per peer, named after the node in coturn's
    # log) and keeps its host candidates, which the relay reaches directly.
    ice = ice_config(settings)
    principal = principal_name("hub", settings.node_id)

    def hub_servers() -> list[RTCIceServer]:
        return [RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
                for s in ice.servers_for(principal)[0]]

    return MediaHub(ice_servers=hub_servers, host_addresses=list(settings.media_addresses) or None)


def create_app(settings: Settings, *, node_nonce: str | None = None) -> Starlette:
    """Build the ASGI app for `settings`; resources (engine, bus, switchboard) are created when it starts.

    `node_nonce`: the node id claim `cloudseat serve` took before starting (signaling.node_claim).
    """
    settings = ensure_secret_key(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        claim = None
        if settings.redis_url is not None:
            claim = NodeClaim(settings.redis_url, settings.redis_prefix, settings.node_id,
                              node_nonce or uuid.uuid4().hex)
            await claim.start()
        engine = make_engine(settings.database_url)
        create_schema(engine)
        app.state.engine = engine
        appends = count_appends(engine)  # before anything of this app appends
        # Booth tokens of sockets and API requests, looked up in batches (a reconnect storm is one query per batch).
        app.state.booth_principals = BatchLoader(functools.partial(booth_principals, engine))
        app.state.store = FileStore(settings.data_dir / "files")
        app.state.id_cards = IdCardVault()  # full ID numbers of live calls, in memory only
        app.state.bus = make_bus(settings)
        app.state.switchboard = Switchboard(app.state.bus, Ledger(engine), switchboard_config(settings))
        await app.state.switchboard.start()
        # Recovers the rooms a crash left before the node takes calls, then opens a room per accepted call.
        app.state.media = MediaFlow(app.state.switchboard, make_media_hub(settings), app.state.store)
        await app.state.media.start()
        app.state.metrics = make_metrics(node_id=settings.node_id, switchboard=app.state.switchboard,
                                         hub=app.state.media.hub, appends=appends)
        app.state.alert_sweeps = start_alert_sweeps(app.state)  # 电子监察: yellow/red deadline alerts
        logger.info(
            "cloudseat node %s ready: database %s, %s",
            settings.node_id,
            engine.dialect.name,
            "Redis bus" if settings.redis_url else "single-node (in-process) bus",
        )
        try:
            yield
        finally:
            await stop_alert_sweeps(app.state.alert_sweeps)
            await app.state.switchboard.stop()
            await app.state.media.stop()  # open rooms close: their recordings are finished and registered
            await app.state.bus.close()
            engine.dispose()
            if claim is not None:
                await claim.stop()

    middleware: list[Middleware] = []
    app = Starlette(routes=app_routes(), middleware=middleware, lifespan=lifespan)
    app.state.settings = settings
    app.state.templates = make_templates()
    app.state.login_limiter = SlidingWindowLimiter(LOGIN_FAILURES_ALLOWED, LOGIN_FAILURE_WINDOW_S)
    app.state.login_address_limiter = SlidingWindowLimiter(LOGIN_ADDRESS_FAILURES_ALLOWED, LOGIN_FAILURE_WINDOW_S)
    return app
