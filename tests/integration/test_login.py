"""Login, session cookie, CSRF, throttling and logout against the live server."""

from __future__ import annotations

from contextlib import closing
from datetime import timedelta

import httpx
import pytest
from sqlmodel import Session, select

from records.db import make_engine
from records.models import Event, WebSession, utcnow
from signaling.access import SESSION_COOKIE
from tests.web_clients import CSRF_INPUT, login


def _user(logins, role):
    return next(u for u in logins["users"] if u["role"] == role)


def _login_form(client: httpx.Client) -> str:
    page = client.get("/login", headers={"accept": "text/html"})
    assert page.status_code == 200
    match = CSRF_INPUT.search(page.text)
    assert match
    return match.group(1)


def test_clerk_logs_in_and_gets_a_hardened_cookie(demo_server):
    server, logins = demo_server
    clerk = _user(logins, "clerk")
    with httpx.Client(base_url=server.url) as client:
        token = _login_form(client)
        response = client.post("/login", data={"username": clerk["username"], "password": clerk["password"],
                                               "csrf_token": token})
        assert response.status_code == 303 and response.headers["location"] == "/seat"
        set_cookie = next(v for v in response.headers.get_list("set-cookie") if v.startswith(SESSION_COOKIE))
        lowered = set_cookie.lower()
        assert "httponly" in lowered and "samesite=lax" in lowered and "max-age=" in lowered
        page = client.get("/seat", headers={"accept": "text/html"})
        assert page.status_code == 200 and "王晓敏" in page.text
    # the cookie holds a signed id, not the user's data
    assert clerk["username"] not in set_cookie


def test_wrong_password_is_refused_and_logged(demo_server, app_settings):
    server, logins = demo_server
    with httpx.Client(base_url=server.url) as client:
        token = _login_form(client)
        response = client.post("/login", data={"username": "clerk1", "password": "nope-nope", "csrf_token": token})
    assert response.status_code == 401
    assert 'id="login-error"' in response.text
    assert SESSION_COOKIE not in response.cookies
    engine = make_engine(app_settings.database_url)
    with Session(engine) as session:
        kinds = [e.kind for e in session.exec(select(Event).where(Event.kind == "user.login_failed"))]
    engine.dispose()
    assert kinds == ["user.login_failed"]


def test_login_without_double_submit_token_is_refused(demo_server):
    server, logins = demo_server
    clerk = _user(logins, "clerk")
    with httpx.Client(base_url=server.url) as client:
        response = client.post("/login", data={"username": clerk["username"], "password": clerk["password"],
                                               "csrf_token": "forged"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "csrf"


def test_repeated_failures_are_throttled_even_with_the_right_password(demo_server):
    server, logins = demo_server
    clerk = _user(logins, "clerk")
    with httpx.Client(base_url=server.url) as client:
        for _ in range(5):
            token = _login_form(client)
            assert client.post("/login", data={"username": clerk["username"], "password": "wrong-password",
                                               "csrf_token": token}).status_code == 401
        token = _login_form(client)
        response = client.post("/login", data={"username": clerk["username"], "password": clerk["password"],
                                               "csrf_token": token})
    assert response.status_code == 429


def test_unsafe_request_needs_the_session_csrf_token(demo_server):
    server, logins = demo_server
    clerk = _user(logins, "clerk")
    with closing(login(server.url, clerk["username"], clerk["password"])) as client:
        csrf = client.headers.pop("x-csrf-token")
        refused = client.post("/logout", follow_redirects=False)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf"
        cross_site = client.post("/logout", headers={"x-csrf-token": csrf, "origin": "https://evil.example"},
                                 follow_redirects=False)
        assert cross_site.status_code == 403
        assert client.get("/api/me").status_code == 200  # still logged in
        done = client.post("/logout", headers={"x-csrf-token": csrf}, follow_redirects=False)
        assert done.status_code == 303


def test_logout_revokes_the_session_server_side(demo_server):
    server, logins = demo_server
    clerk = _user(logins, "clerk")
    with closing(login(server.url, clerk["username"], clerk["password"])) as client:
        stolen = client.cookies.get(SESSION_COOKIE)
        assert client.post("/logout", follow_redirects=False).status_code == 303
    with httpx.Client(base_url=server.url, cookies={SESSION_COOKIE: stolen}) as replay:
        assert replay.get("/api/me", headers={"accept": "application/json"}).status_code == 401


def test_expired_or_tampered_sessions_are_anonymous(demo_server, app_settings):
    server, logins = demo_server
    clerk = _user(logins, "clerk")
    with closing(login(server.url, clerk["username"], clerk["password"])) as client:
        cookie = client.cookies.get(SESSION_COOKIE)
    with httpx.Client(base_url=server.url, cookies={SESSION_COOKIE: cookie[:-2] + "xx"}) as tampered:
        assert tampered.get("/api/me", headers={"accept": "application/json"}).status_code == 401
    engine = make_engine(app_settings.database_url)
    with Session(engine) as session:
        for web_session in session.exec(select(WebSession)):
            web_session.expires_at = utcnow() - timedelta(seconds=1)
            session.add(web_session)
        session.commit()
    engine.dispose()
    with httpx.Client(base_url=server.url, cookies={SESSION_COOKIE: cookie}) as expired:
        assert expired.get("/api/me", headers={"accept": "application/json"}).status_code == 401


def test_next_parameter_cannot_redirect_off_site(demo_server):
    server, logins = demo_server
    clerk = _user(logins, "clerk")
    with httpx.Client(base_url=server.url) as client:
        token = _login_form(client)
        response = client.post("/login", data={"username": clerk["username"], "password": clerk["password"],
                                               "csrf_token": token, "next": "//evil.example/x"})
    assert response.headers["location"] == "/seat"


def test_booth_token_authenticates_and_revocation_takes_effect(demo_server, app_settings):
    from records.accounts import revoke_booth

    server, logins = demo_server
    booth = logins["booths"][0]
    headers = {"authorization": f"Bearer {booth['token']}", "accept": "application/json"}
    with httpx.Client(base_url=server.url, headers=headers) as client:
        me = client.get("/api/me").json()
        assert (me["kind"], me["booth_name"], me["region"]) == ("booth", booth["name"], booth["region"])
        engine = make_engine(app_settings.database_url)
        with Session(engine) as session:
            revoke_booth(session, name=booth["name"])
            session.commit()
        engine.dispose()
        assert client.get("/api/me").status_code == 401
    wrong = {"authorization": "Bearer cst_" + "x" * 43, "accept": "application/json"}
    with httpx.Client(base_url=server.url, headers=wrong) as client:
        assert client.get("/api/me").status_code == 401


def _try_login(client: httpx.Client, username: str, password: str, **headers: str) -> int:
    token = _login_form(client)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token},
                       headers=headers).status_code


def test_one_accounts_failures_do_not_lock_out_the_others_behind_the_same_address(demo_server):
    server, logins = demo_server
    first, second = [u for u in logins["users"] if u["role"] == "clerk"][:2]
    with httpx.Client(base_url=server.url) as client:
        for _ in range(5):
            assert _try_login(client, first["username"], "wrong-password") == 401
        assert _try_login(client, first["username"], first["password"]) == 429
        # Same address (a service centre's NAT), another account: not throttled.
        assert _try_login(client, second["username"], second["password"]) == 303


def test_an_address_guessing_across_many_accounts_is_throttled_at_a_higher_bar(demo_server):
    from cloudseat.app import LOGIN_ADDRESS_FAILURES_ALLOWED

    server, logins = demo_server
    clerk = _user(logins, "clerk")
    with httpx.Client(base_url=server.url) as client:
        for n in range(LOGIN_ADDRESS_FAILURES_ALLOWED - 1):
            assert _try_login(client, f"nobody{n}", "wrong-password") == 401
        assert _try_login(client, clerk["username"], clerk["password"]) == 303  # still under the bar
        client.cookies.clear()  # logged out again
        assert _try_login(client, "nobody-last", "wrong-password") == 401
        assert _try_login(client, clerk["username"], clerk["password"]) == 429


def _failed_login_clients(settings) -> list[str]:
    engine = make_engine(settings.database_url)
    with Session(engine) as session:
        events = session.exec(select(Event).where(Event.kind == "user.login_failed").order_by(Event.id)).all()
    engine.dispose()
    return [e.data["client"] for e in events]


@pytest.mark.parametrize("trusted", [(), ("127.0.0.0/8",)])
def test_the_forwarded_address_counts_only_from_a_trusted_proxy(app_settings, trusted):
    from cloudseat.app import create_app
    from cloudseat.demo import seed_demo
    from records.db import create_schema
    from tests.live_server import serve

    settings = app_settings.with_overrides(trusted_proxies=trusted)
    engine = make_engine(settings.database_url)
    create_schema(engine)
    seed_demo(engine, settings.data_dir)
    engine.dispose()
    with serve(create_app(settings)) as server, httpx.Client(base_url=server.url) as client:
        # The client invents a first hop; the (pretend) proxy on loopback appends the address it saw.
        assert _try_login(client, "clerk1", "wrong", **{"x-forwarded-for": "10.9.9.9, 198.51.100.23"}) == 401
        assert _try_login(client, "clerk1", "wrong") == 401
    expected = ["198.51.100.23", "127.0.0.1"] if trusted else ["127.0.0.1", "127.0.0.1"]
    assert _failed_login_clients(settings) == expected
