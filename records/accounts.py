"""Accounts: people who log in (argon2id), booth devices (hashed tokens) and browser sessions.

Booth tokens are 256-bit random strings, so a plain SHA-256 of the token is
a sufficient stored form (nothing to brute-force) and lets us look a booth
up by its hash in one indexed query.  Passwords are low-entropy and get
argon2id.  Every change here is an event in the same transaction.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import bindparam
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Connection
from sqlmodel import Session, select

from records.errors import RecordsError
from records.events import append_event
from records.models import Booth, Region, Role, User, WebSession, as_utc, utcnow

logger = logging.getLogger(__name__)

USERNAME_RE = re.compile(r"^[a-z][a-z0-9_.-]{1,31}$")
SKILL_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MIN_PASSWORD_LENGTH = 8
BOOTH_TOKEN_PREFIX = "cst_"

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified against when the username does not exist, so a miss costs as much as a hit.
_DUMMY_HASH = _hasher.hash("cloudseat-dummy-password")


class AccountError(RecordsError):
    """An account operation was refused; `code` is stable for clients."""


@dataclass(frozen=True)
class ResolvedSession:
    """A valid browser session and the active user it belongs to."""

    web_session: WebSession
    user: User


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def hash_booth_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: Role,
    display_name: str = "",
    skills: list[str] | tuple[str, ...] = (),
    regions: list[str] | tuple[str, ...] = (),
    actor: str = "system",
) -> User:
    """Create a user after validating every field; raises AccountError with a stable code."""
    if not USERNAME_RE.match(username):
        raise AccountError("invalid_username", "username: 2-32 lowercase letters, digits, _ . - starting with a letter")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError("weak_password", f"password: at least {MIN_PASSWORD_LENGTH} characters")
    for skill in skills:
        if not SKILL_RE.match(skill):
            raise AccountError("invalid_skill", f"skill {skill!r}: lowercase letters, digits and _")
    _require_regions(session, regions)
    if session.exec(select(User).where(User.username == username)).first() is not None:
        raise AccountError("username_taken", f"username {username!r} already exists")
    user = User(
        username=username,
        display_name=display_name or username,
        role=Role(role),
        password_hash=hash_password(password),
        skills=sorted(set(skills)),
        regions=sorted(set(regions)),
    )
    session.add(user)
    session.flush()
    append_event(
        session,
        kind="user.created",
        actor=actor,
        data={"user_id": user.id, "username": username, "role": user.role.value,
              "skills": user.skills, "regions": user.regions},
    )
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with this username and password, or None (same cost either way)."""
    user = session.exec(select(User).where(User.username == username)).first()
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        session.add(user)
    return user


def start_web_session(session: Session, user: User, *, max_age_s: int, now: datetime | None = None) -> WebSession:
    """Open a browser session; the caller signs its id into the cookie."""
    now = now or utcnow()
    web_session = WebSession(
        id=secrets.token_urlsafe(32),
        user_id=_id(user),
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        expires_at=now + timedelta(seconds=max_age_s),
    )
    session.add(web_session)
    append_event(session, kind="user.login", actor=f"user:{user.id}", data={"username": user.username})
    return web_session


def resolve_web_session(session: Session, session_id: str, *, now: datetime | None = None) -> ResolvedSession | None:
    """The live session and its active user, or None if unknown, expired, revoked or the user is disabled."""
    now = now or utcnow()
    web_session = session.get(WebSession, session_id)
    if web_session is None or web_session.revoked_at is not None:
        return None
    if as_utc(web_session.expires_at) <= now:
        return None
    user = session.get(User, web_session.user_id)
    if user is None or not user.active:
        return None
    return ResolvedSession(web_session, user)


def end_web_session(session: Session, session_id: str, *, now: datetime | None = None) -> None:
    """Revoke a browser session (logout); unknown ids are ignored."""
    web_session = session.get(WebSession, session_id)
    if web_session is None or web_session.revoked_at is not None:
        return
    web_session.revoked_at = now or utcnow()
    session.add(web_session)
    append_event(session, kind="user.logout", actor=f"user:{web_session.user_id}", data={})


def create_booth(
    session: Session, *, name: str, region_code: str, address: str = "", actor: str = "system"
) -> tuple[Booth, str]:
    """Create a booth and return it with its token; the token is shown once and only its hash kept."""
    name = name.strip()
    if not 1 <= len(name) <= 64:
        raise AccountError("invalid_booth_name", "booth name: 1-64 characters")
    _require_regions(session, [region_code])
    if session.exec(select(Booth).where(Booth.name == name)).first() is not None:
        raise AccountError("booth_name_taken", f"booth {name!r} already exists")
    token = BOOTH_TOKEN_PREFIX + secrets.token_urlsafe(32)
    booth = Booth(name=name, region_code=region_code, address=address, token_hash=hash_booth_token(token))
    session.add(booth)
    session.flush()
    append_event(
        session, kind="booth.created", actor=actor, booth_id=booth.id,
        data={"name": name, "region": region_code},
    )
    return booth, token


def booth_token_hash(token: str) -> str | None:
    """The stored hash of a well-formed booth token; None for anything that cannot be one."""
    if not token.startswith(BOOTH_TOKEN_PREFIX) or len(token) > 128:
        return None
    return hash_booth_token(token)


def booth_by_token(session: Session, token: str) -> Booth | None:
    """The non-revoked booth holding this token, or None."""
    token_hash = booth_token_hash(token)
    if token_hash is None:
        return None
    booth = session.exec(select(Booth).where(Booth.token_hash == token_hash)).first()
    if booth is None or booth.revoked_at is not None:
        return None
    return booth


@dataclass(frozen=True)
class BoothIdentity:
    """Who a booth token names: what a socket or request of that booth is allowed to be."""

    id: int
    name: str
    region_code: str


_BOOTH = Booth.__table__
_BOOTHS_BY_TOKEN_HASH = (  # built once: each batch differs only in its hashes
    sa_select(_BOOTH.c.token_hash, _BOOTH.c.id, _BOOTH.c.name, _BOOTH.c.region_code)
    .where(_BOOTH.c.token_hash.in_(bindparam("hashes", expanding=True)), _BOOTH.c.revoked_at.is_(None)))


def booths_by_token_hashes(conn: Connection, token_hashes: Sequence[str]) -> dict[str, BoothIdentity]:
    """The non-revoked booths holding these token hashes, in one Core query.

    Called for every booth that connects, in batches; a Core connection costs half what an ORM
    session does for the same query, which shows in a reconnect storm.
    """
    rows = conn.execute(_BOOTHS_BY_TOKEN_HASH, {"hashes": list(token_hashes)})
    return {token_hash: BoothIdentity(booth_id, name, region) for token_hash, booth_id, name, region in rows}


def revoke_booth(session: Session, *, name: str, actor: str = "system", now: datetime | None = None) -> Booth:
    """Revoke a booth's token: its kiosk and agent are refused from then on."""
    booth = session.exec(select(Booth).where(Booth.name == name)).first()
    if booth is None:
        raise AccountError("unknown_booth", f"no booth named {name!r}")
    if booth.revoked_at is None:
        booth.revoked_at = now or utcnow()
        session.add(booth)
        append_event(session, kind="booth.revoked", actor=actor, booth_id=booth.id, data={"name": name})
    return booth


def create_region(
    session: Session, *, code: str, name_zh: str, name_en: str, service_hours: dict[str, object] | None = None
) -> Region:
    """Create a region (镇街); a thin helper so callers need not know the table."""
    if not re.match(r"^[a-z][a-z0-9_-]{0,31}$", code):
        raise AccountError("invalid_region", "region code: lowercase letters, digits, _ -")
    if session.get(Region, code) is not None:
        raise AccountError("region_exists", f"region {code!r} already exists")
    region = Region(code=code, name_zh=name_zh, name_en=name_en, service_hours=dict(service_hours or {}))
    session.add(region)
    session.flush()
    append_event(session, kind="region.created", data={"code": code})
    return region


def _require_regions(session: Session, codes: list[str] | tuple[str, ...]) -> None:
    for code in codes:
        if session.get(Region, code) is None:
            raise AccountError("unknown_region", f"no region with code {code!r}")


def _id(row: User) -> int:
    assert row.id is not None, "row must be flushed before use"
    return row.id
