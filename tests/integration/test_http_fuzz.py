"""Every HTTP route the OpenAPI document describes, with generated bad input, against a real server.

The operations come from the served `/openapi.json` (so a new route is fuzzed as soon as it is
described, and `test_openapi.py` makes sure every route is). For each, Hypothesis builds path
parameters (huge and negative integers, non-UUIDs), query parameters and JSON bodies from the
operation's own field names with values of every JSON shape (wrong types, 64-bit overflow, lone
surrogates, NULs, nesting, unknown fields), and sends them as the role the route admits. The
server must answer each with a 2xx-4xx (never 5xx), a 4xx must carry the one error shape, and
nothing may be logged at ERROR.
"""

from __future__ import annotations

import json
import logging
import re
from contextlib import ExitStack, closing
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session

from records.accounts import create_user
from records.db import make_engine
from records.models import Role
from tests.integration.test_protocol_fuzz import json_values, texts
from tests.signaling_fixtures import PASSWORD, world
from tests.web_clients import booth_client, login

pytestmark = pytest.mark.slow

# Ending the fuzzing session's own login would only test the login page; it has its own tests.
SKIPPED = {("post", "/logout"), ("post", "/login")}
EXAMPLES_PER_OPERATION = 25
ROLE_PREFERENCE = ("clerk", "supervisor", "admin", "booth", "anonymous")

path_ints = st.one_of(st.integers(min_value=-5, max_value=50), st.integers(min_value=2**62, max_value=2**70))
path_texts = st.one_of(
    st.sampled_from(["00000000-0000-4000-8000-000000000000", "00000000-0000-4000-8000-00000000000G", "x", "SB-001",
                     "EAST-2026-000001", "a" * 300, "%00", "..", "ＡＢＣ"]),
    st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="/?#%"), min_size=1,
            max_size=40),
)


query_values = st.one_of(
    texts.filter(lambda t: "\x00" not in t and not re.search(r"[\ud800-\udfff]", t)),
    st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", fullmatch=True),  # dates, real and not, year 0000 to 9999
    st.sampled_from(["0001-01-01", "9999-12-31", "2026-02-30", "20261207", "2026-W49-1", "-1", "1e309"]),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
)


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if (method, path) in SKIPPED:
                continue
            content = op.get("requestBody", {}).get("content", {})
            if content and "application/json" not in content:
                continue  # forms and uploads: validated by their own tests (test_bad_input, test_decisions)
            found.append((method, path, op))
    return found


@st.composite
def requests(draw: st.DrawFn, method: str, path: str, op: dict[str, Any]) -> tuple[str, dict[str, str], str | None]:
    url = path
    for param in op.get("parameters", []):
        if param["in"] != "path":
            continue
        value = draw(path_ints) if param["schema"].get("type") == "integer" else draw(path_texts)
        url = url.replace("{" + param["name"] + "}", str(value))
    query = {p["name"]: draw(query_values) for p in op.get("parameters", []) if p["in"] == "query" and draw(st.booleans())}
    body = None
    schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    if schema is not None:
        names = sorted(schema.get("properties", {}))
        chosen = draw(st.lists(st.sampled_from(names), unique=True)) if names else []
        payload: Any = {name: draw(json_values) for name in chosen}
        if draw(st.booleans()):
            payload[draw(texts)] = draw(json_values)
        if draw(st.integers(0, 9)) == 0:
            payload = draw(json_values)  # not even an object
        body = json.dumps(payload)  # ensure_ascii: a lone surrogate travels as its \\u escape
    return url, query, body


def _role(op: dict[str, Any]) -> str:
    roles = op["x-cloudseat-roles"]
    return next(r for r in ROLE_PREFERENCE if r in roles)


def test_every_described_route_answers_bad_input_with_a_4xx_never_a_5xx(app_settings, caplog):
    caplog.set_level(logging.WARNING)
    with world(app_settings) as w, ExitStack() as stack:
        engine = make_engine(app_settings.database_url)
        with Session(engine) as session:
            create_user(session, username="adm", password=PASSWORD, role=Role.ADMIN, display_name="ADM")
            session.commit()
        engine.dispose()
        clients = {
            "clerk": stack.enter_context(closing(login(w.url, "c1", PASSWORD))),
            "supervisor": stack.enter_context(closing(login(w.url, "sup", PASSWORD))),
            "admin": stack.enter_context(closing(login(w.url, "adm", PASSWORD))),
            "booth": stack.enter_context(closing(booth_client(w.url, w.tokens["b1"]))),
        }
        clients["anonymous"] = clients["booth"]  # routes open to everyone: any caller will do
        doc = clients["clerk"].get("/openapi.json").json()
        ops = operations(doc)
        assert len(ops) > 40, len(ops)
        seen: set[tuple[str, str]] = set()

        def send(method: str, path: str, op: dict[str, Any], data: st.DataObject) -> None:
            url, query, body = data.draw(requests(method, path, op))
            headers = {"content-type": "application/json"} if body is not None else {}
            response = clients[_role(op)].request(method.upper(), url, params=query, content=body, headers=headers)
            seen.add((method, path))
            assert response.status_code < 500, (method, url, query, body, response.status_code, response.text[:300])
            if response.status_code >= 400 and response.headers.get("content-type", "").startswith("application/json"):
                error = response.json()["error"]
                assert isinstance(error["code"], str) and error["code"] != "internal", error

        # Every operation gets its own examples: a route with a rare bug is not starved by the others.
        for method, path, op in ops:
            @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True,
                      suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
            @given(st.data())
            def fuzz_one(data: st.DataObject) -> None:
                send(method, path, op, data)  # noqa: B023 - run at once, inside this iteration

            fuzz_one()
        print(json.dumps({"figure": "HTTP fuzz", "operations": len(ops), "operations_hit": len(seen),
                          "examples_each": EXAMPLES_PER_OPERATION}))
        assert len(seen) == len(ops)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors][:5]
