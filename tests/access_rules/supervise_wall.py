"""Routes of seat.supervise_wall."""

from tests.access_rules.common import ALL, B, C, D, S, STAFF  # noqa: F401

TABLE: dict = {
    ("GET", "/supervise", "/supervise"): {S, D},
}
