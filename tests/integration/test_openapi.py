"""/openapi.json describes every HTTP route of the app with its methods, and nothing else."""

from __future__ import annotations

import re
from contextlib import closing

import pytest
from starlette.routing import Mount

from cloudseat.app import app_routes, create_app
from cloudseat.openapi import OPERATIONS, http_operations, openapi_path
from signaling.access import GuardedRoute
from signaling.endpoints import GuardedWebSocketRoute
from tests.live_server import serve
from tests.web_clients import anonymous_client

METHODS = {"get", "post", "put", "patch", "delete"}


def app_http_operations() -> set[tuple[str, str]]:
    """(METHOD, OpenAPI path) of every HTTP route: sockets and static mounts are not operations."""
    routes = app_routes()
    for route in routes:
        assert isinstance(route, (Mount, GuardedWebSocketRoute, GuardedRoute)), f"{route}: of a kind this test ignores"
    return {(m, openapi_path(p)) for m, p in http_operations(routes)}


@pytest.fixture
def document(app_settings):
    with serve(create_app(app_settings)) as server, closing(anonymous_client(server.url)) as client:
        response = client.get("/openapi.json")
        assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
        yield response.json(), server.app


def test_every_http_route_is_described_with_its_methods_and_nothing_else(document):
    doc, app = document
    described = {(method.upper(), path) for path, item in doc["paths"].items() for method in item if method in METHODS}
    routes = {(m, openapi_path(p)) for m, p in http_operations(app.routes)}
    assert routes == app_http_operations()
    assert routes - described == set(), "routes without a description: add them to cloudseat/openapi.py OPERATIONS"
    assert described - routes == set(), "described operations the app does not have"
    assert {(m, openapi_path(p)) for m, p in OPERATIONS} == routes, "OPERATIONS has entries for no route"
    assert not any(p.startswith("/ws/") or p.startswith("/static/") for p in doc["paths"])


def test_operations_carry_their_parameters_roles_and_summaries(document):
    doc, app = document
    assert doc["openapi"].startswith("3.1")
    rules = http_operations(app.routes)
    for (method, declared), route in rules.items():
        op = doc["paths"][openapi_path(declared)][method.lower()]
        assert op["summary"].strip(), (method, declared)
        assert op["x-cloudseat-roles"] == sorted(k.value for k in route.rule.allow), (method, declared)
        path_params = {p["name"] for p in op["parameters"] if p["in"] == "path"}
        assert path_params == set(re.findall(r"\{(\w+)", declared)), (method, declared)
        for p in op["parameters"]:
            if p["in"] == "path" and f"{{{p['name']}:int}}" in declared:
                assert p["schema"]["type"] == "integer"
    hold = doc["paths"]["/api/admin/cases/{number}/legal-hold"]["post"]
    assert hold["x-cloudseat-roles"] == ["admin"] and hold["security"] == [{"session": []}]
    assert hold["requestBody"]["content"]["application/json"]["schema"]["required"] == ["on", "reason"]
    assert doc["paths"]["/api/booth/print-jobs/{job_id}.pdf"]["get"]["security"] == [{"boothToken": []}]
    assert doc["paths"]["/healthz"]["get"]["security"] == []
