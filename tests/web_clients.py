"""HTTP clients logged in as each kind of principal, against a live server."""

from __future__ import annotations

import re

import httpx

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def login(base_url: str, username: str, password: str) -> httpx.Client:
    """A client holding a logged-in session cookie; `client.headers` carries its CSRF token."""
    client = httpx.Client(base_url=base_url, headers={"accept": "application/json"})
    page = client.get("/login", headers={"accept": "text/html"})
    token = CSRF_INPUT.search(page.text)
    assert token, "login page has no CSRF token"
    response = client.post("/login", data={"username": username, "password": password, "csrf_token": token.group(1)})
    assert response.status_code == 303, f"login failed: {response.status_code} {response.text[:200]}"
    me = client.get("/api/me").json()
    client.headers["x-csrf-token"] = me["csrf_token"]
    return client


def booth_client(base_url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers={"authorization": f"Bearer {token}", "accept": "application/json"})


def anonymous_client(base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers={"accept": "application/json"})


def client_for(kind: str, base_url: str, logins: dict) -> httpx.Client:
    """A client for `kind` (anonymous, booth, clerk, supervisor, admin) from demo logins."""
    if kind == "anonymous":
        return anonymous_client(base_url)
    if kind == "booth":
        return booth_client(base_url, logins["booths"][0]["token"])
    user = next(u for u in logins["users"] if u["role"] == kind)
    return login(base_url, user["username"], user["password"])
