"""Time-limited TURN credentials (coturn `use-auth-secret`, the "TURN REST API").

coturn and cloudseat share one secret; coturn never stores per-user passwords.  For each
party cloudseat makes a username `"<expiry-unix>:<principal>"` and a password
`base64(HMAC-SHA1(secret, username))`; coturn recomputes the HMAC and refuses a username
whose expiry has passed.  So a page or a socket only ever holds a credential that dies by
itself, and coturn's log names the booth or clerk behind every allocation.

The pure functions come first (tests call them directly); `IceConfig` puts them together
into what one socket is sent: the ICE servers for RTCPeerConnection and the ICE
transport policy.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from typing import Any

ICE_POLICIES = ("all", "relay")
# A refresh is pushed when less than this share of the lifetime is left (never under a minute).
REFRESH_SHARE = 0.2
_UNSAFE = re.compile(r"[^A-Za-z0-9_.@-]")


def principal_name(kind: str, ident: str | int) -> str:
    """`booth-3`, `clerk-wangxm`: who a credential belongs to, as coturn logs it.

    The REST username separates expiry and principal with `:`, so neither part may carry one;
    anything outside a plain ASCII set becomes `_` (coturn logs bytes as they are).
    """
    return _UNSAFE.sub("_", f"{kind}-{ident}")[:64]


def rest_username(principal: str, expires_at: int) -> str:
    """The coturn REST username: expiry first, because coturn reads the time before the `:`."""
    if ":" in principal:
        raise ValueError("a TURN principal must not contain ':' (coturn's separator)")
    return f"{int(expires_at)}:{principal}"


def rest_credential(secret: str, username: str) -> str:
    """base64(HMAC-SHA1(secret, username)): what coturn's `static-auth-secret` checks."""
    digest = hmac.new(secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


@dataclass(frozen=True)
class TurnCredential:
    """One party's TURN username and password, valid until `expires_at` (unix seconds)."""

    username: str
    credential: str
    expires_at: int


def issue_credential(secret: str, principal: str, ttl_s: int, now: float | None = None) -> TurnCredential:
    """A credential for `principal` that coturn accepts for `ttl_s` seconds from `now`."""
    if ttl_s <= 0:
        raise ValueError("ttl_s must be positive")
    expires_at = int(time.time() if now is None else now) + int(ttl_s)
    username = rest_username(principal, expires_at)
    return TurnCredential(username, rest_credential(secret, username), expires_at)


def refresh_due(expires_at: float, ttl_s: float, now: float | None = None) -> bool:
    """Whether a socket holding a credential to `expires_at` should be sent a fresh one now."""
    left = expires_at - (time.time() if now is None else now)
    return left < max(60.0, ttl_s * REFRESH_SHARE)


@dataclass(frozen=True)
class IceConfig:
    """What the node tells every authenticated socket about ICE.

    `static_servers`: RTCIceServer dicts from CLOUDSEAT_ICE_SERVERS (with the static TURN
    user, if any), sent as they are.  `turn_urls` + `turn_secret`: servers that get a fresh
    REST credential per party.  `policy`: the RTCPeerConnection `iceTransportPolicy`.
    """

    static_servers: tuple[dict[str, str], ...] = ()
    turn_urls: tuple[str, ...] = ()
    turn_secret: str | None = None
    ttl_s: int = 86_400
    policy: str = "all"

    def __post_init__(self) -> None:
        if self.policy not in ICE_POLICIES:
            raise ValueError(f"policy must be one of {', '.join(ICE_POLICIES)}")
        if self.turn_urls and not self.turn_secret:
            raise ValueError("turn_urls need a turn_secret")
        if self.ttl_s <= 0:
            raise ValueError("ttl_s must be positive")

    @property
    def issues_credentials(self) -> bool:
        return bool(self.turn_urls and self.turn_secret)

    def servers_for(self, principal: str, now: float | None = None) -> tuple[list[dict[str, str]], int | None]:
        """The iceServers for one party and when its TURN credential expires (None: never)."""
        servers = [dict(s) for s in self.static_servers]
        if not self.issues_credentials:
            return servers, None
        assert self.turn_secret is not None
        cred = issue_credential(self.turn_secret, principal, self.ttl_s, now)
        servers += [{"urls": url, "username": cred.username, "credential": cred.credential}
                    for url in self.turn_urls]
        return servers, cred.expires_at

    def message_fields(self, principal: str, now: float | None = None) -> dict[str, Any]:
        """The fields of `ice.servers` (and of the `ice.refresh` ack) for one party."""
        servers, expires_at = self.servers_for(principal, now)
        return {"ice_servers": servers, "ice_transport_policy": self.policy, "expires_at": expires_at}
