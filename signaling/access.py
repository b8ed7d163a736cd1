"""Who is asking, and may they: principals, role guards, CSRF and Origin checks.

Every HTTP route is built with `guarded_route`, which names the principal
kinds allowed; the route-by-role test enumerates the app's routes and fails
for any route built without a rule.  Sockets use the same resolution at the
upgrade.

Principals come from one of two credentials:
- people: a signed cookie carrying only a browser-session id (records.accounts);
- booth devices: their token, as `Authorization: Bearer <token>` or, for
  browsers opening a WebSocket (which cannot set headers), as a
  `Sec-WebSocket-Protocol` entry `token.<token>`.
The app state must provide `engine` (SQLAlchemy) and `settings` (with
`secret_key`, `session_max_age_s` and `origins`).
"""

from __future__ import annotations

import enum
import functools
import hmac
import ipaddress
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from records.accounts import BoothIdentity, booth_by_token, booth_token_hash, booths_by_token_hashes, resolve_web_session
from records.db import read_only
from signaling.protocol import INT_MAX, INT_MIN, TOKEN_SUBPROTOCOL_PREFIX

logger = logging.getLogger(__name__)

SESSION_COOKIE = "cloudseat_session"
LOGIN_CSRF_COOKIE = "cloudseat_login_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FORM_FIELD = "csrf_token"

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Kind(str, enum.Enum):
    """Principal kinds; the user roles plus the booth device and nobody."""

    ANONYMOUS = "anonymous"
    BOOTH = "booth"
    CLERK = "clerk"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


EVERYONE: frozenset[Kind] = frozenset(Kind)
STAFF: frozenset[Kind] = frozenset({Kind.CLERK, Kind.SUPERVISOR, Kind.ADMIN})
SUPERVISION: frozenset[Kind] = frozenset({Kind.SUPERVISOR, Kind.ADMIN})


@dataclass(frozen=True)
class Principal:
    """The authenticated party of one request or socket."""

    kind: Kind
    user_id: int | None = None
    username: str = ""
    display_name: str = ""
    booth_id: int | None = None
    booth_name: str = ""
    region: str | None = None  # the booth's region
    skills: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()  # regions a user may serve or see
    web_session_id: str | None = None
    csrf_token: str | None = None
    via_cookie: bool = False

    @property
    def actor(self) -> str:
        """How the event log names this principal."""
        if self.user_id is not None:
            return f"user:{self.user_id}"
        if self.booth_id is not None:
            return f"booth:{self.booth_id}"
        return "anonymous"

    @property
    def is_staff(self) -> bool:
        return self.kind in STAFF


ANONYMOUS = Principal(Kind.ANONYMOUS)


class AccessDenied(Exception):
    """Raised inside handlers when an object-level check fails (e.g. another booth's session)."""

    def __init__(self, code: str = "forbidden", message: str = "not allowed") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def cookie_serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt="cloudseat.session")


def sign_session_id(secret_key: str, session_id: str) -> str:
    return cookie_serializer(secret_key).dumps(session_id)


def unsign_session_id(secret_key: str, value: str, max_age_s: int) -> str | None:
    try:
        session_id = cookie_serializer(secret_key).loads(value, max_age=max_age_s)
    except BadSignature:
        return None
    return session_id if isinstance(session_id, str) else None


def booth_token_from(conn: HTTPConnection) -> str | None:
    """A booth token presented as a Bearer header or a WebSocket subprotocol entry."""
    auth = conn.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    for proto in _subprotocols(conn):
        if proto.startswith(TOKEN_SUBPROTOCOL_PREFIX):
            return proto[len(TOKEN_SUBPROTOCOL_PREFIX):] or None
    return None


def _subprotocols(conn: HTTPConnection) -> list[str]:
    raw = conn.headers.get("sec-websocket-protocol", "")
    return [p.strip() for p in raw.split(",") if p.strip()]


def resolve_principal_sync(engine: Any, settings: Any, conn: HTTPConnection) -> Principal:
    """Resolve the principal of a request or socket upgrade (blocking: database reads)."""
    token = booth_token_from(conn)
    with Session(read_only(engine)) as session:
        if token is not None:
            booth = booth_by_token(session, token)
            if booth is None:
                return ANONYMOUS
            return _booth_principal(BoothIdentity(booth.id or 0, booth.name, booth.region_code))
        cookie = conn.cookies.get(SESSION_COOKIE)
        if not cookie:
            return ANONYMOUS
        session_id = unsign_session_id(settings.secret_key, cookie, settings.session_max_age_s)
        if session_id is None:
            return ANONYMOUS
        resolved = resolve_web_session(session, session_id)
        if resolved is None:
            return ANONYMOUS
        user = resolved.user
        return Principal(
            Kind(user.role.value),
            user_id=user.id,
            username=user.username,
            display_name=user.display_name,
            skills=tuple(user.skills),
            regions=tuple(user.regions),
            web_session_id=resolved.web_session.id,
            csrf_token=resolved.web_session.csrf_token,
            via_cookie=True,
        )


def _booth_principal(booth: BoothIdentity) -> Principal:
    return Principal(Kind.BOOTH, booth_id=booth.id, booth_name=booth.name, region=booth.region_code)


def booth_principals(engine: Any, token_hashes: list[str]) -> dict[str, Principal]:
    """The principals of the booths holding these token hashes, in one read (a `BatchLoader` fetch)."""
    with read_only(engine).connect() as conn:
        found = booths_by_token_hashes(conn, token_hashes)
    return {token_hash: _booth_principal(booth) for token_hash, booth in found.items()}


async def resolve_principal(conn: HTTPConnection) -> Principal:
    """Resolve once per request; cached on `conn.state.principal`.

    Booth tokens go through the app's `booth_principals` batch loader when it has one, so that
    thousands of kiosks reconnecting at once cost a few queries, not one thread hop each.
    """
    cached = getattr(conn.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    state = conn.app.state
    token = booth_token_from(conn)
    loader = getattr(state, "booth_principals", None)
    if token is not None and loader is not None:
        token_hash = booth_token_hash(token)
        found = await loader.get(token_hash) if token_hash is not None else None
        principal = found if isinstance(found, Principal) else ANONYMOUS
    else:
        principal = await run_in_threadpool(resolve_principal_sync, state.engine, state.settings, conn)
    conn.state.principal = principal
    return principal


@functools.cache
def _networks(trusted: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in trusted)


def _is_trusted(address: str, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(conn: HTTPConnection) -> str:
    """The client's address: the peer's, or, behind a trusted proxy, the last untrusted X-Forwarded-For hop.

    Read from the right: each trusted proxy appends the address it saw, and only the entries
    our own proxies appended can be believed (anything further left is the client's to invent).
    """
    peer = conn.client.host if conn.client else "unknown"
    networks = _networks(conn.app.state.settings.trusted_proxies)
    if not networks or not _is_trusted(peer, networks):
        return peer
    hops = [h.strip() for h in ",".join(conn.headers.getlist("x-forwarded-for")).split(",") if h.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, networks):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # a garbled hop: the proxy's own address is the one we know
    return hops[0] if hops else peer


def origin_allowed(conn: HTTPConnection, allowed: Iterable[str]) -> bool:
    """True when the Origin header (if sent) is one of ours.

    Browsers always send Origin on cross-site unsafe requests and on WebSocket
    upgrades; a request without one comes from a non-browser client, which
    carries no ambient cookie risk.
    """
    origin = conn.headers.get("origin")
    if origin is None:
        return True
    return origin.rstrip("/") in set(allowed) or origin.rstrip("/") == _own_origin(conn)


def _own_origin(conn: HTTPConnection) -> str:
    """The origin a browser shows for pages of this host (a socket's ws:// is its page's http://)."""
    host = conn.headers.get("host", "")
    scheme = {"ws": "http", "wss": "https"}.get(conn.url.scheme, conn.url.scheme)
    return f"{scheme}://{host}"


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


async def csrf_ok(request: Request, principal: Principal) -> bool:
    """Unsafe requests authenticated by cookie must echo the session's CSRF token.

    The token comes in the X-CSRF-Token header (JSON) or a `csrf_token` form
    field.  Anonymous forms (login) use a double-submit cookie instead.
    Bearer-authenticated requests carry no ambient credential and pass.
    """
    if request.method not in UNSAFE_METHODS:
        return True
    if not origin_allowed(request, request.app.state.settings.origins):
        return False
    if principal.kind is Kind.BOOTH:
        return True
    expected = principal.csrf_token if principal.via_cookie else request.cookies.get(LOGIN_CSRF_COOKIE)
    if not expected:
        return False
    presented = request.headers.get(CSRF_HEADER)
    if presented is None and _is_form(request):
        form = await request.form()
        value = form.get(CSRF_FORM_FIELD)
        presented = value if isinstance(value, str) else None
    return presented is not None and hmac.compare_digest(presented, expected)


def _is_form(request: Request) -> bool:
    ctype = request.headers.get("content-type", "")
    return ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data"))


def wants_html(request: Request) -> bool:
    return request.method == "GET" and "text/html" in request.headers.get("accept", "")


def error_response(status: int, code: str, message: str) -> JSONResponse:
    """The one JSON error shape: a stable code the client translates, and an English message."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Rule:
    """The principal kinds a route admits; read by the route-by-role test."""

    allow: frozenset[Kind]
    csrf: bool = True


def guard(endpoint: Endpoint, rule: Rule) -> Endpoint:
    """Wrap an endpoint with the role check and CSRF check of `rule`."""

    async def guarded(request: Request) -> Response:
        principal = await resolve_principal(request)
        if principal.kind not in rule.allow:
            if principal.kind is Kind.ANONYMOUS:
                if wants_html(request):
                    return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
                return error_response(401, "unauthenticated", "log in or present a booth token")
            return error_response(403, "forbidden", "your role may not use this")
        if rule.csrf and not await csrf_ok(request, principal):
            return error_response(403, "csrf", "missing or wrong CSRF token or origin")
        bad = _out_of_range_param(request.path_params)
        if bad is not None:
            return error_response(400, "invalid", f"path parameter {bad} is out of range")
        try:
            return await endpoint(request)
        except AccessDenied as exc:
            return error_response(403, exc.code, exc.message)

    guarded.__name__ = getattr(endpoint, "__name__", "guarded")
    guarded.__doc__ = endpoint.__doc__
    return guarded


def _out_of_range_param(params: dict[str, Any]) -> str | None:
    """The first integer path parameter a database id column cannot hold (`{x:int}` takes any digits)."""
    return next((name for name, value in params.items()
                 if isinstance(value, int) and not INT_MIN <= value <= INT_MAX), None)


class GuardedRoute(Route):
    """A Starlette Route that carries its access rule."""

    def __init__(
        self,
        path: str,
        endpoint: Endpoint,
        *,
        allow: Iterable[Kind],
        methods: Sequence[str] = ("GET",),
        name: str | None = None,
        csrf: bool = True,
    ) -> None:
        self.rule = Rule(frozenset(allow), csrf)
        super().__init__(path, guard(endpoint, self.rule), methods=list(methods), name=name or endpoint.__name__)


def guarded_route(
    path: str,
    endpoint: Endpoint,
    *,
    allow: Iterable[Kind],
    methods: Sequence[str] = ("GET",),
    name: str | None = None,
    csrf: bool = True,
) -> GuardedRoute:
    return GuardedRoute(path, endpoint, allow=allow, methods=methods, name=name, csrf=csrf)

