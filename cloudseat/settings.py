"""Settings read from the environment, validated once at start.

There is no global settings instance: `Settings.from_env()` builds one and
`create_app(settings)` takes it, so tests build as many as they like.
A bad value raises `SettingsError` whose message is one line naming the
variable, which the command line prints before exiting.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

ENV_PREFIX = "CLOUDSEAT_"
SECRET_KEY_FILE = "secret_key"
MAX_RETENTION_DAYS = 36_500  # a century: anything longer is a typo, not a policy
LOG_FORMATS = ("text", "json")
ICE_POLICIES = ("all", "relay")
# TURN REST credentials: at least a minute (a page must get to its first offer), at most a week
# (a leaked credential should not outlive the week it leaked in).
TURN_TTL_BOUNDS_S = (60, 7 * 86_400)
MIN_TURN_SECRET = 16


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class IceServer:
    """One STUN/TURN server handed to clients and used by the hub."""

    urls: str
    username: str | None = None
    credential: str | None = None

    def __post_init__(self) -> None:
        if not self.urls.startswith(("stun:", "turn:", "turns:")):
            raise ValueError(f"ICE server URL must start with stun:, turn: or turns:, got {self.urls!r}")

    def as_browser_dict(self) -> dict[str, str]:
        """The shape RTCPeerConnection's `iceServers` expects."""
        out = {"urls": self.urls}
        if self.username is not None:
            out["username"] = self.username
        if self.credential is not None:
            out["credential"] = self.credential
        return out


@dataclass(frozen=True)
class Settings:
    """Everything the server needs to start; immutable once read."""

    data_dir: Path = Path("var")
    database_url: str = ""
    redis_url: str | None = None
    secret_key: str | None = None
    public_base_url: str = "http://127.0.0.1:8000"
    # Extra origins allowed to open sockets and post forms (the public base URL always is).
    allowed_origins: tuple[str, ...] = ()
    # No STUN by default: aiortc's default public STUN stalls 5 s per gathering on a closed network.
    ice_servers: tuple[IceServer, ...] = ()
    # TURN servers that get a time-limited credential per party (coturn use-auth-secret), the
    # secret shared with coturn's static-auth-secret, and how long a credential lives.
    turn_urls: tuple[str, ...] = ()
    turn_secret: str | None = None
    turn_ttl_s: int = 86_400
    # RTCPeerConnection iceTransportPolicy for booths, clerks and monitors: `relay` forces media
    # through TURN (the hub then also takes a relay candidate).
    ice_policy: str = "all"
    # Addresses the media hub advertises in its candidates (NAT 1:1 mapping, or 127.0.0.1 on loopback-only hosts).
    media_addresses: tuple[str, ...] = ()
    node_id: str = "node-1"
    # Reverse proxies (nginx) whose X-Forwarded-For is believed; the peer address is used otherwise.
    trusted_proxies: tuple[str, ...] = ()
    session_max_age_s: int = 8 * 3600
    offer_timeout_s: float = 20.0
    # Clients ping this often; a socket silent for twice as long is closed (dead peer within 30 s).
    heartbeat_s: float = 15.0
    # A booth or clerk that vanished this long loses its waiting or live call.
    reconnect_grace_s: float = 30.0
    redis_prefix: str = "cloudseat:"
    timezone: str = "Asia/Shanghai"
    log_level: str = "INFO"
    # `text` (one human line per record) or `json` (one JSON object per line, for log shippers).
    log_format: str = "text"
    tls_certfile: Path | None = None  # uvicorn's own TLS (`cloudseat serve --certfile`); nginx in front is the other way
    tls_keyfile: Path | None = None
    # Who may read /metrics without logging in (a Prometheus scraper): IPs or CIDR networks,
    # matched against the client address (so behind nginx, list nginx in trusted_proxies).
    # Logged-in admins may read it from anywhere.
    metrics_allow: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    # Retention (`cloudseat purge`), counted in days from the end of the call.  Recordings: 180
    # days, the six months service-hall rules commonly require video of window service to be
    # kept; long enough for a complaint (差评) or an appeal to be raised and reviewed.  Materials:
    # 3650 days, ten years, the shortest common retention period of case files; they are the
    # evidence of a decision and outlive the recording of the conversation.  Set both to local
    # archive rules; a case under legal hold keeps everything whatever these say.
    retention_recordings_days: int = 180
    retention_materials_days: int = 3650
    extra: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{self.data_dir / 'cloudseat.db'}")
        _check_database_url(self.database_url)
        if self.redis_url is not None:
            _check_url("CLOUDSEAT_REDIS_URL", self.redis_url, ("redis", "rediss", "unix"))
        _check_url("CLOUDSEAT_PUBLIC_BASE_URL", self.public_base_url, ("http", "https"))
        for origin in self.allowed_origins:
            _check_url("CLOUDSEAT_ALLOWED_ORIGINS", origin, ("http", "https"))
        if self.session_max_age_s < 60:
            raise SettingsError("CLOUDSEAT_SESSION_MAX_AGE_S: must be at least 60 seconds")
        if not 1 <= self.offer_timeout_s <= 300:
            raise SettingsError("CLOUDSEAT_OFFER_TIMEOUT_S: must be between 1 and 300 seconds")
        if not 0.1 <= self.heartbeat_s <= 120:
            raise SettingsError("CLOUDSEAT_HEARTBEAT_S: must be between 0.1 and 120 seconds")
        if not 0 <= self.reconnect_grace_s <= 3600:
            raise SettingsError("CLOUDSEAT_RECONNECT_GRACE_S: must be between 0 and 3600 seconds")
        if self.secret_key is not None and len(self.secret_key) < 32:
            raise SettingsError("CLOUDSEAT_SECRET_KEY: must be at least 32 characters")
        _check_turn(self)
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise SettingsError("CLOUDSEAT_TLS_CERTFILE and CLOUDSEAT_TLS_KEYFILE: set both or neither")
        if self.log_format not in LOG_FORMATS:
            raise SettingsError("CLOUDSEAT_LOG_FORMAT: must be text or json")
        for var, days in (("CLOUDSEAT_RETENTION_RECORDINGS_DAYS", self.retention_recordings_days),
                          ("CLOUDSEAT_RETENTION_MATERIALS_DAYS", self.retention_materials_days)):
            if not 1 <= days <= MAX_RETENTION_DAYS:
                raise SettingsError(f"{var}: must be between 1 and {MAX_RETENTION_DAYS} days")

    @property
    def origins(self) -> frozenset[str]:
        """Origins whose browsers may post forms and open sockets."""
        return frozenset({_origin_of(self.public_base_url), *map(_origin_of, self.allowed_origins)})

    @property
    def uses_redis(self) -> bool:
        return self.redis_url is not None

    def with_overrides(self, **changes: object) -> "Settings":
        """A copy with some fields changed (tests and the CLI use it)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """Read `CLOUDSEAT_*` variables; raise SettingsError naming the first bad one."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(ENV_PREFIX + name)
            return value.strip() if value is not None and value.strip() != "" else None

        kwargs: dict[str, object] = {}
        if (v := get("DATA_DIR")) is not None:
            kwargs["data_dir"] = Path(v)
        if (v := get("DATABASE_URL")) is not None:
            kwargs["database_url"] = v
        if (v := get("REDIS_URL")) is not None:
            kwargs["redis_url"] = v
        if (v := get("SECRET_KEY")) is not None:
            kwargs["secret_key"] = v
        if (v := get("PUBLIC_BASE_URL")) is not None:
            kwargs["public_base_url"] = v.rstrip("/")
        if (v := get("ALLOWED_ORIGINS")) is not None:
            kwargs["allowed_origins"] = tuple(o.strip().rstrip("/") for o in v.split(",") if o.strip())
        if (v := get("ICE_SERVERS")) is not None:
            kwargs["ice_servers"] = _parse_ice_servers(v, get("TURN_USERNAME"), get("TURN_PASSWORD"))
        if (v := get("TURN_URLS")) is not None:
            kwargs["turn_urls"] = tuple(u.strip() for u in v.split(",") if u.strip())
        if (v := get("TURN_SECRET")) is not None:
            kwargs["turn_secret"] = v
        if (v := get("TURN_TTL_S")) is not None:
            kwargs["turn_ttl_s"] = _parse_int("TURN_TTL_S", v)
        if (v := get("ICE_POLICY")) is not None:
            kwargs["ice_policy"] = v.lower()
        if (v := get("MEDIA_ADDRESSES")) is not None:
            kwargs["media_addresses"] = _parse_addresses(v)
        if (v := get("TRUSTED_PROXIES")) is not None:
            kwargs["trusted_proxies"] = _parse_networks("TRUSTED_PROXIES", v)
        if (v := get("TLS_CERTFILE")) is not None:
            kwargs["tls_certfile"] = Path(v)
        if (v := get("TLS_KEYFILE")) is not None:
            kwargs["tls_keyfile"] = Path(v)
        if (v := get("NODE_ID")) is not None:
            kwargs["node_id"] = v
        if (v := get("SESSION_MAX_AGE_S")) is not None:
            kwargs["session_max_age_s"] = _parse_int("SESSION_MAX_AGE_S", v)
        if (v := get("OFFER_TIMEOUT_S")) is not None:
            kwargs["offer_timeout_s"] = _parse_float("OFFER_TIMEOUT_S", v)
        if (v := get("HEARTBEAT_S")) is not None:
            kwargs["heartbeat_s"] = _parse_float("HEARTBEAT_S", v)
        if (v := get("RECONNECT_GRACE_S")) is not None:
            kwargs["reconnect_grace_s"] = _parse_float("RECONNECT_GRACE_S", v)
        if (v := get("REDIS_PREFIX")) is not None:
            kwargs["redis_prefix"] = v
        if (v := get("TIMEZONE")) is not None:
            kwargs["timezone"] = _check_timezone(v)
        if (v := get("RETENTION_RECORDINGS_DAYS")) is not None:
            kwargs["retention_recordings_days"] = _parse_int("RETENTION_RECORDINGS_DAYS", v)
        if (v := get("RETENTION_MATERIALS_DAYS")) is not None:
            kwargs["retention_materials_days"] = _parse_int("RETENTION_MATERIALS_DAYS", v)
        if (v := get("LOG_LEVEL")) is not None:
            if v.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
                raise SettingsError("CLOUDSEAT_LOG_LEVEL: must be DEBUG, INFO, WARNING or ERROR")
            kwargs["log_level"] = v.upper()
        if (v := get("LOG_FORMAT")) is not None:
            kwargs["log_format"] = v.lower()
        if (v := get("METRICS_ALLOW")) is not None:
            # `none`: no address is enough, only logged-in admins read /metrics
            kwargs["metrics_allow"] = () if v.lower() == "none" else _parse_networks("METRICS_ALLOW", v)
        return cls(**kwargs)  # type: ignore[arg-type]


def _parse_networks(name: str, value: str) -> tuple[str, ...]:
    """Comma-separated IP addresses or CIDR networks, normalised (`10.0.0.5` -> `10.0.0.5/32`)."""
    out = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        try:
            out.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError:
            raise SettingsError(f"{ENV_PREFIX}{name}: {part!r} is not an IP address or network") from None
    return tuple(out)


def ensure_secret_key(settings: Settings) -> Settings:
    """Return settings with a secret key, generating one into the data dir on first start.

    The key signs session cookies; keeping it in the data dir means restarts keep
    users logged in without anyone having to invent a key for the demo.
    """
    if settings.secret_key is not None:
        return settings
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / SECRET_KEY_FILE
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
        logger.info("generated a new secret key in %s", path)
    key = path.read_text().strip()
    if len(key) < 32:
        raise SettingsError(f"CLOUDSEAT_SECRET_KEY: the key in {path} is shorter than 32 characters")
    return settings.with_overrides(secret_key=key)


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _check_url(var: str, value: str, schemes: tuple[str, ...]) -> None:
    parts = urlsplit(value)
    if parts.scheme not in schemes or (parts.scheme != "unix" and not parts.netloc):
        raise SettingsError(f"{var}: expected a {'/'.join(schemes)} URL, got {value!r}")


def _check_database_url(value: str) -> None:
    scheme = value.split("://", 1)[0] if "://" in value else ""
    if scheme not in {"sqlite", "postgresql", "postgresql+psycopg"}:
        raise SettingsError(
            f"CLOUDSEAT_DATABASE_URL: expected sqlite:///PATH or postgresql+psycopg://..., got {value!r}"
        )


def _check_timezone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"CLOUDSEAT_TIMEZONE: unknown time zone {value!r}") from None
    return value


def _parse_int(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise SettingsError(f"CLOUDSEAT_{name}: expected a whole number, got {value!r}") from None


def _parse_float(name: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise SettingsError(f"CLOUDSEAT_{name}: expected a number, got {value!r}") from None


def _parse_ice_servers(value: str, username: str | None, password: str | None) -> tuple[IceServer, ...]:
    servers = []
    for url in (u.strip() for u in value.split(",")):
        if not url:
            continue
        is_turn = url.startswith(("turn:", "turns:"))
        try:
            servers.append(
                IceServer(url, username if is_turn else None, password if is_turn else None)
            )
        except ValueError as exc:
            raise SettingsError(f"CLOUDSEAT_ICE_SERVERS: {exc}") from None
        if is_turn and (username is None or password is None):
            raise SettingsError("CLOUDSEAT_TURN_USERNAME: TURN servers need CLOUDSEAT_TURN_USERNAME and CLOUDSEAT_TURN_PASSWORD")
    return tuple(servers)


def _check_turn(s: Settings) -> None:
    """TURN REST settings hang together; each refusal names its variable."""
    for url in s.turn_urls:
        if not url.startswith(("turn:", "turns:")):
            raise SettingsError(f"CLOUDSEAT_TURN_URLS: {url!r} must start with turn: or turns:")
    if s.turn_urls and s.turn_secret is None:
        raise SettingsError("CLOUDSEAT_TURN_SECRET: CLOUDSEAT_TURN_URLS need the secret shared with coturn")
    if s.turn_secret is not None and len(s.turn_secret) < MIN_TURN_SECRET:
        raise SettingsError(f"CLOUDSEAT_TURN_SECRET: must be at least {MIN_TURN_SECRET} characters")
    low, high = TURN_TTL_BOUNDS_S
    if not low <= s.turn_ttl_s <= high:
        raise SettingsError(f"CLOUDSEAT_TURN_TTL_S: must be between {low} and {high} seconds")
    if s.ice_policy not in ICE_POLICIES:
        raise SettingsError("CLOUDSEAT_ICE_POLICY: must be all or relay")
    has_turn = bool(s.turn_urls) or any(i.urls.startswith(("turn:", "turns:")) for i in s.ice_servers)
    if s.ice_policy == "relay" and not has_turn:
        raise SettingsError("CLOUDSEAT_ICE_POLICY: relay needs a TURN server (CLOUDSEAT_TURN_URLS)")


def _parse_addresses(value: str) -> tuple[str, ...]:
    import ipaddress

    out = []
    for item in (a.strip() for a in value.split(",")):
        if not item:
            continue
        try:
            ipaddress.ip_address(item)
        except ValueError:
            raise SettingsError(f"CLOUDSEAT_MEDIA_ADDRESSES: {item!r} is not an IP address") from None
        out.append(item)
    return tuple(out)
