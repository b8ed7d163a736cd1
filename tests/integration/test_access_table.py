"""Every route x every principal kind: allowed or denied, exactly as this table says.

A route added without a row here fails `test_every_route_has_a_rule`; a rule
changed in code without changing the table fails one of the two.
"""

from __future__ import annotations

import json
from contextlib import closing

import pytest
from starlette.routing import Mount

from signaling.access import GuardedRoute, Kind
from signaling.endpoints import GuardedWebSocketRoute
from signaling.protocol import CLOSE_FORBIDDEN, CLOSE_UNAUTHORIZED, SUBPROTOCOL
from signaling.protocol_client import SESSION_COOKIE, ws_url
from tests.access_rules import A, ALL, B, C, D, S
from tests.access_rules import booth, core, seat
from tests.access_rules import (supervise_alerts, supervise_retention, supervise_review, supervise_stats,
                                supervise_wall)
from tests.web_clients import client_for

# (method, route path as declared, concrete path to request) -> kinds allowed, per owning package
TABLE: dict[tuple[str, str, str], set[str]] = {
    **core.TABLE, **seat.TABLE, **booth.TABLE,
    **supervise_wall.TABLE, **supervise_review.TABLE, **supervise_stats.TABLE, **supervise_alerts.TABLE,
    **supervise_retention.TABLE,
}
# WebSocket endpoints: the principal kinds that get a `welcome`; everyone else is closed with 4401/4403.
SOCKETS: dict[str, set[str]] = {
    "/ws/booth": {B},
    "/ws/seat": {C},
    "/ws/supervisor": {S, D},
}
# Static files are public by design: they hold code and styles, never data.
PUBLIC_MOUNTS = {"/static/seat": "/static/seat/css/console.css", "/static/booth": "/static/booth/css/kiosk.css"}


def declared_rules(app) -> dict[tuple[str, str], set[str]]:
    rules: dict[tuple[str, str], set[str]] = {}
    for route in app.routes:
        if isinstance(route, Mount):
            assert route.path in PUBLIC_MOUNTS, f"mount {route.path} has no rule in the table"
            continue
        if isinstance(route, GuardedWebSocketRoute):
            rules[("WS", route.path)] = {k.value for k in route.rule.allow}
            continue
        assert isinstance(route, GuardedRoute), f"{route.path} is not built with guarded_route"
        for method in route.methods or ():
            if method == "HEAD":
                continue
            rules[(method, route.path)] = {k.value for k in route.rule.allow}
    return rules


def test_every_route_has_a_rule(demo_server):
    server, _ = demo_server
    declared = declared_rules(server.app)
    table = {(m, p): kinds for (m, p, _), kinds in TABLE.items()}
    table.update({("WS", path): kinds for path, kinds in SOCKETS.items()})
    assert set(declared) == set(table), "routes and table differ: add the new route to TABLE"
    for key, kinds in table.items():
        assert declared[key] == kinds, f"{key}: code allows {sorted(declared[key])}, table says {sorted(kinds)}"


def _denied(response) -> bool:
    """Denied by the role check: the guard's JSON 401/403 (not a handler's own 401, nor a CSRF refusal)."""
    if response.status_code not in (401, 403) or "json" not in response.headers.get("content-type", ""):
        return False
    return response.json()["error"]["code"] in {"unauthenticated", "forbidden"}


@pytest.mark.parametrize("kind", sorted(ALL))
def test_route_role_matrix(demo_server, kind):
    server, logins = demo_server
    for (method, _, path), allowed in TABLE.items():
        with closing(client_for(kind, server.url, logins)) as client:  # fresh: POST /logout ends a session
            response = client.request(method, path, follow_redirects=False)
        if kind in allowed:
            assert not _denied(response), f"{kind} should reach {method} {path}, got {response.status_code}"
        else:
            assert _denied(response), f"{kind} must be denied {method} {path}, got {response.status_code}"
    for path in PUBLIC_MOUNTS.values():
        with closing(client_for(kind, server.url, logins)) as client:
            assert client.get(path).status_code == 200


def test_anonymous_page_request_redirects_to_login(demo_server):
    server, logins = demo_server
    with closing(client_for(A, server.url, logins)) as client:
        response = client.get("/seat", headers={"accept": "text/html"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/seat"


def test_kind_values_match_table():
    assert {k.value for k in Kind} == ALL


@pytest.mark.parametrize("kind", sorted(ALL))
async def test_socket_role_matrix(demo_server, kind):
    import asyncio

    import websockets

    server, logins = demo_server
    protocols = [SUBPROTOCOL]
    headers = {}
    if kind == B:
        protocols.append("token." + logins["booths"][0]["token"])
    elif kind != A:
        with closing(client_for(kind, server.url, logins)) as client:
            headers["Cookie"] = f"{SESSION_COOKIE}={client.cookies.get(SESSION_COOKIE)}"
    for path, allowed in SOCKETS.items():
        url = ws_url(server.url, path.rsplit("/", 1)[1])
        async with websockets.connect(url, subprotocols=protocols, additional_headers=headers) as ws:
            if kind in allowed:
                first = json.loads(await asyncio.wait_for(ws.recv(), 5))
                assert first["type"] == "welcome", f"{kind} on {path}: {first}"
            else:
                with pytest.raises(websockets.ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 5)
                expected = CLOSE_UNAUTHORIZED if kind == A else CLOSE_FORBIDDEN
                assert ws.close_code == expected, f"{kind} on {path}: closed {ws.close_code}"


def test_the_favicon_is_served_to_everyone(demo_server):
    import httpx

    server, _logins = demo_server
    icon = httpx.get(f"{server.url}/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO header
    svg = httpx.get(f"{server.url}/static/seat/img/favicon.svg")
    assert svg.status_code == 200 and svg.text.startswith("<svg")
