"""Login and logout for clerks, supervisors and admins."""

from __future__ import annotations

import logging

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from records.accounts import authenticate, end_web_session, start_web_session
from records.events import append_event
from records.models import Role
from signaling.access import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Kind,
    Principal,
    client_address,
    new_login_csrf,
    resolve_principal,
    sign_session_id,
)

logger = logging.getLogger(__name__)

HOME_BY_KIND = {
    Kind.CLERK: "/seat",
    Kind.SUPERVISOR: "/supervise",
    Kind.ADMIN: "/supervise",
    Kind.BOOTH: "/kiosk",
}


def home_of(principal: Principal) -> str:
    return HOME_BY_KIND.get(principal.kind, "/login")


def safe_next(value: str | None) -> str | None:
    """Only same-site paths; never `//host` or a scheme (open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    return value


def _cookie_secure(request: Request) -> bool:
    """Secure cookies when the public address is https, or when this server itself speaks TLS."""
    return request.app.state.settings.public_base_url.startswith("https://") or request.url.scheme == "https"


async def login_page(request: Request) -> Response:
    """The login form, with a fresh double-submit CSRF token."""
    principal = await resolve_principal(request)
    if principal.is_staff:
        return RedirectResponse(home_of(principal), status_code=303)
    return _render_login(request, status=200, error=None)


def _render_login(request: Request, *, status: int, error: str | None, username: str = "") -> Response:
    token = new_login_csrf()
    response = request.app.state.templates.TemplateResponse(
        request,
        "login.html",
        {"csrf_token": token, "error": error, "username": username,
         "next": safe_next(request.query_params.get("next")) or ""},
        status_code=status,
    )
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                        secure=_cookie_secure(request), path="/login")
    return response


async def login_submit(request: Request) -> Response:
    """Check the password; on success open a browser session and set its signed cookie."""
    form = await request.form()
    username = str(form.get("username", "")).strip().lower()[:64]
    password = str(form.get("password", ""))[:256]
    next_path = safe_next(str(form.get("next", "")))
    # Per account, and per address only with a much higher bar: a service centre's clerks share
    # one NAT or proxy address, and five typos there must not lock all of them out.
    accounts, addresses = request.app.state.login_limiter, request.app.state.login_address_limiter
    client = client_address(request)
    account_key, address_key = f"user:{username}", f"ip:{client}"
    if accounts.blocked(account_key) or addresses.blocked(address_key):
        return _render_login(request, status=429, error="throttled", username=username)
    settings = request.app.state.settings

    def check() -> tuple[str, Role] | None:
        with Session(request.app.state.engine) as session:
            user = authenticate(session, username, password)
            if user is None:
                append_event(session, kind="user.login_failed", actor="anonymous",
                             data={"username": username, "client": client})
                session.commit()
                return None
            web_session = start_web_session(session, user, max_age_s=settings.session_max_age_s)
            session.commit()
            return web_session.id, user.role

    result = await run_in_threadpool(check)
    if result is None:
        accounts.hit(account_key)
        addresses.hit(address_key)
        return _render_login(request, status=401, error="bad_credentials", username=username)
    session_id, role = result
    # Only the account's count: one good login must not wipe an address's guesses at other accounts.
    accounts.reset(account_key)
    target = next_path or HOME_BY_KIND[Kind(role.value)]
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        sign_session_id(settings.secret_key, session_id),
        max_age=settings.session_max_age_s,
        httponly=True,
        samesite="lax",
        secure=_cookie_secure(request),
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


async def logout(request: Request) -> Response:
    """End the browser session server-side and drop the cookie."""
    principal = await resolve_principal(request)
    if principal.web_session_id is not None:
        def end() -> None:
            with Session(request.app.state.engine) as session:
                end_web_session(session, principal.web_session_id or "")
                session.commit()

        await run_in_threadpool(end)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
