"""Routes of seat.supervise_stats."""

from tests.access_rules.common import ALL, B, C, D, S, STAFF  # noqa: F401

TABLE: dict = {
    ("GET", "/supervise/stats", "/supervise/stats"): {S, D},
    ("GET", "/api/supervise/stats", "/api/supervise/stats"): {S, D},
    ("GET", "/api/supervise/stats.csv", "/api/supervise/stats.csv?period=week&by=clerk"): {S, D},
}
