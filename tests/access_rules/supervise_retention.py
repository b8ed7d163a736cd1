"""Routes of seat.supervise_retention."""

from tests.access_rules.common import ALL, B, C, D, S, STAFF  # noqa: F401

TABLE: dict = {
    ("POST", "/api/admin/cases/{number}/legal-hold", "/api/admin/cases/XH-2026-000001/legal-hold"): {D},
}
