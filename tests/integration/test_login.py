"""Login, session cookie, CSRF, throttling and logout against the live server."""

from __future__ import annotations

from contextlib import closing
from datetime import timedelta

import httpx
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
