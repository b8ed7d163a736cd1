"""Prometheus metrics at `/metrics`: what this node holds now, and what it has done.

One `CollectorRegistry` per app (never prometheus_client's global one: tests run many apps
in one process, and a node reports only itself).  `NodeCollector` is its only collector:

- live gauges are read at scrape time (`refresh`, awaited by the endpoint before the
  registry is rendered): the bus's queue and clerk states, the calls whose media this node
  hosts, the media hub's rooms and streams and its RTP receive counters;
- counters are plain ints kept where the counting happens (`Switchboard.stats`,
  `MediaHub.recording_totals`, `records.events.count_appends`): the packages below
  `cloudseat` know nothing of Prometheus, and the hot path pays one integer add.

Every sample carries `node`.  Each node reports its own share (the queued calls of the
booths connected to it, its clerks, its calls, its counters), so a sum over nodes is the
cluster's figure (a max, for the oldest wait).

Who may read it: a scraper from `CLOUDSEAT_METRICS_ALLOW` (no login), or a logged-in admin.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlmodel import Session, select
from starlette.requests import Request
from starlette.responses import Response

from media.hub import MediaHub
from records.events import AppendCounter
from records.models import CallSession, CallStatus
from signaling.access import Kind, client_address, error_response, resolve_principal
from signaling.routing import CLERK_STATUSES
from signaling.switchboard import Switchboard

logger = logging.getLogger(__name__)

MEDIA_KINDS = ("audio", "video")


@dataclass
class Snapshot:
    """The live figures of one scrape; a source that failed is None (and reported down)."""

    queue: dict[tuple[str, str], tuple[int, float]] | None = None  # (region, skill) -> (calls, oldest wait s)
    clerks: dict[str, int] | None = None  # state -> clerks connected here
    calls_live: int | None = None
    up: dict[str, bool] = field(default_factory=dict)  # source -> answered


@dataclass
class RtpTotals:
    """Per-kind packet counters built from the hub's per-stream running totals.

    A stream's own totals vanish with it; adding each scrape's increase per stream (and
    forgetting ended streams) gives counters that only grow, as `rate()` wants.
    """

    received: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MEDIA_KINDS, 0))
    lost: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MEDIA_KINDS, 0))
    _last: dict[str, tuple[int, int]] = field(default_factory=dict)

    def update(self, streams: Iterable[Any]) -> None:
        seen: dict[str, tuple[int, int]] = {}
        for s in streams:
            prev_received, prev_lost = self._last.get(s.key, (0, 0))
            # aiortc's loss is expected - received, which duplicates can make shrink: count only growth.
            received, lost = max(prev_received, s.packets_received), max(prev_lost, s.packets_lost)
            self.received[s.kind] = self.received.get(s.kind, 0) + received - prev_received
            self.lost[s.kind] = self.lost.get(s.kind, 0) + lost - prev_lost
            seen[s.key] = (received, lost)
        self._last = seen


class NodeCollector(Collector):
    """Reads this node's switchboard, media hub and event counter into metric families."""

    def __init__(self, *, node_id: str, switchboard: Switchboard, hub: MediaHub, appends: AppendCounter) -> None:
        self.node_id = node_id
        self.switchboard = switchboard
        self.hub = hub
        self.appends = appends
        self.rtp = RtpTotals()
        self._snapshot = Snapshot()
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        """Read the live figures (bus, database, hub); a failing source is logged and reported down."""
        async with self._lock:  # concurrent scrapes share one read of each source
            snap = Snapshot()
            try:
                snap.queue, snap.clerks = await self._bus_figures()
                snap.up["bus"] = True
            except Exception as exc:  # noqa: BLE001 - e.g. Redis away: the rest is still worth serving
                logger.warning("metrics: bus: %s", exc)
                snap.up["bus"] = False
            try:
                snap.calls_live = await self.switchboard.ledger.read(self._count_live_calls)
                snap.up["database"] = True
            except Exception as exc:  # noqa: BLE001
                logger.warning("metrics: database: %s", exc)
                snap.up["database"] = False
            try:
                self.rtp.update(await self.hub.inbound_rtp())
                snap.up["media"] = True
            except Exception as exc:  # noqa: BLE001
                logger.warning("metrics: media stats: %s", exc)
                snap.up["media"] = False
            self._snapshot = snap

    async def _bus_figures(self) -> tuple[dict[tuple[str, str], tuple[int, float]], dict[str, int]]:
        sb = self.switchboard
        now = time.time()
        queue: dict[tuple[str, str], tuple[int, float]] = {}
        for call in await sb.bus.list_queue():
            if not call.booth_id.isdigit() or int(call.booth_id) not in sb.booths:
                continue  # another node's booth: that node reports it
            count, oldest = queue.get((call.region, call.skill), (0, 0.0))
            queue[(call.region, call.skill)] = (count + 1, max(oldest, now - call.enqueued_at))
        clerks = dict.fromkeys(sorted(CLERK_STATUSES), 0)
        for clerk in await sb.bus.list_clerks():
            if clerk.clerk_id.isdigit() and int(clerk.clerk_id) in sb.clerks:
                clerks[clerk.status] = clerks.get(clerk.status, 0) + 1
        return queue, clerks

    def _count_live_calls(self, session: Session) -> int:
        stmt = select(func.count()).select_from(CallSession).where(
            CallSession.status == CallStatus.ACTIVE, CallSession.media_node == self.node_id)
        return int(session.exec(stmt).one())

    def collect(self) -> Iterator[Metric]:
        node = self.node_id
        snap = self._snapshot
        up = GaugeMetricFamily("cloudseat_metrics_source_up", "Whether the last scrape could read the source.",
                               labels=["node", "source"])
        for source, ok in sorted(snap.up.items()):
            up.add_metric([node, source], 1 if ok else 0)
        yield up
        if snap.queue is not None:
            calls = GaugeMetricFamily("cloudseat_queue_calls", "Calls waiting (offered ones included) whose "
                                      "booth is connected to this node.", labels=["node", "region", "skill"])
            wait = GaugeMetricFamily("cloudseat_queue_oldest_wait_seconds", "How long the longest-waiting of "
                                     "those calls has waited.", labels=["node", "region", "skill"])
            for (region, skill), (count, oldest) in sorted(snap.queue.items()):
                calls.add_metric([node, region, skill], count)
                wait.add_metric([node, region, skill], round(oldest, 3))
            yield calls
            yield wait
        if snap.clerks is not None:
            clerks = GaugeMetricFamily("cloudseat_clerks", "Clerks connected to this node, by routing state.",
                                       labels=["node", "state"])
            for state, count in snap.clerks.items():
                clerks.add_metric([node, state], count)
            yield clerks
        if snap.calls_live is not None:
            yield _gauge("cloudseat_calls_live", "Answered calls whose media this node hosts.", node, snap.calls_live)
        yield from self._connections(node)
        yield from self._media(node)
        yield from self._counters(node)

    def _connections(self, node: str) -> Iterator[Metric]:
        sb = self.switchboard
        family = GaugeMetricFamily("cloudseat_connections", "Sockets open on this node, by role.",
                                   labels=["node", "role"])
        family.add_metric([node, "booth"], len(sb.booths))
        family.add_metric([node, "seat"], len(sb.clerks))
        family.add_metric([node, "supervisor"], sum(len(g) for g in sb.supervisors.values()))
        yield family

    def _media(self, node: str) -> Iterator[Metric]:
        load = self.hub.load()
        yield _gauge("cloudseat_media_rooms", "Calls with a media room on this node's hub.", node, load.rooms)
        yield _gauge("cloudseat_media_participants", "Peer connections to this node's hub.", node,
                     load.participants)
        streams = GaugeMetricFamily("cloudseat_media_streams", "Tracks through the hub: in = published to it, "
                                    "out = forwarded by it.", labels=["node", "direction", "kind"])
        for kind in MEDIA_KINDS:
            streams.add_metric([node, "in", kind], load.published.get(kind, 0))
            streams.add_metric([node, "out", kind], load.forwarded.get(kind, 0))
        yield streams
        yield _gauge("cloudseat_media_recording_tracks", "Tracks being recorded now.", node, load.recording)
        received = CounterMetricFamily("cloudseat_media_packets_received", "RTP packets the hub received.",
                                       labels=["node", "kind"])
        lost = CounterMetricFamily("cloudseat_media_packets_lost", "RTP packets lost on the way to the hub "
                                   "(from sequence gaps).", labels=["node", "kind"])
        for kind in MEDIA_KINDS:
            received.add_metric([node, kind], self.rtp.received.get(kind, 0))
            lost.add_metric([node, kind], self.rtp.lost.get(kind, 0))
        yield received
        yield lost

    def _counters(self, node: str) -> Iterator[Metric]:
        stats = self.switchboard.stats
        yield _counter("cloudseat_offers", "Offers this node made (each rings one clerk).", node, stats.offers)
        yield _counter("cloudseat_offers_expired", "Offers that rang out unanswered.", node, stats.offers_expired)
        abandons = CounterMetricFamily("cloudseat_abandons", "Calls that ended before a clerk answered, by reason.",
                                       labels=["node", "reason"])
        for reason, count in sorted(stats.abandons.items()):
            abandons.add_metric([node, reason], count)
        yield abandons
        yield _counter("cloudseat_event_log_appends", "Events this node committed to the hash-chained log.",
                       node, self.appends.committed)
        totals = self.hub.recording_totals
        yield _counter("cloudseat_recording_bytes", "Encoded media bytes written into recordings.", node,
                       totals.bytes_written)
        yield _counter("cloudseat_recording_files", "Recording files opened.", node, totals.files_opened)


def _gauge(name: str, documentation: str, node: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=["node"])
    family.add_metric([node], value)
    return family


def _counter(name: str, documentation: str, node: str, value: float) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=["node"])
    family.add_metric([node], value)
    return family


@dataclass
class Metrics:
    """What `/metrics` serves: the app's own registry and its collector."""

    registry: CollectorRegistry
    collector: NodeCollector


def make_metrics(*, node_id: str, switchboard: Switchboard, hub: MediaHub, appends: AppendCounter) -> Metrics:
    """A fresh registry holding one `NodeCollector` (built in the app's lifespan)."""
    registry = CollectorRegistry(auto_describe=False)
    collector = NodeCollector(node_id=node_id, switchboard=switchboard, hub=hub, appends=appends)
    registry.register(collector)
    return Metrics(registry, collector)


@functools.cache
def _networks(allow: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in allow)


def address_allowed(address: str, allow: tuple[str, ...]) -> bool:
    """Whether `address` is in one of the networks of `allow` (a bad address never is)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 on a dual-stack socket is 127.0.0.1
    return any(ip in network for network in _networks(allow))


async def metrics_endpoint(request: Request) -> Response:
    """GET /metrics: Prometheus text format; for scrapers from CLOUDSEAT_METRICS_ALLOW and admins."""
    principal = await resolve_principal(request)
    allowed = principal.kind is Kind.ADMIN or address_allowed(client_address(request),
                                                              request.app.state.settings.metrics_allow)
    if not allowed:
        return error_response(403, "forbidden", "metrics are served to CLOUDSEAT_METRICS_ALLOW and to admins")
    metrics: Metrics = request.app.state.metrics
    await metrics.collector.refresh()
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
