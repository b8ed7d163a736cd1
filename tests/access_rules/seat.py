"""Routes of the seat package (login, consoles, staff APIs)."""

from tests.access_rules.common import ALL, B, C, D, S, STAFF

TABLE = {
    ("GET", "/", "/"): ALL,
    ("GET", "/login", "/login"): ALL,
    ("POST", "/login", "/login"): ALL,
    ("POST", "/logout", "/logout"): STAFF,
    ("GET", "/seat", "/seat"): {C},
    ("GET", "/supervise", "/supervise"): {S, D},
    ("GET", "/api/me", "/api/me"): STAFF | {B},
}
