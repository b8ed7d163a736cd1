"""Routes of seat.supervise_alerts."""

from tests.access_rules.common import ALL, B, C, D, S, STAFF  # noqa: F401

TABLE: dict = {
    ("GET", "/supervise/alerts", "/supervise/alerts"): {S, D},
    ("GET", "/api/supervise/alerts", "/api/supervise/alerts"): {S, D},
    ("POST", "/api/supervise/alerts/{alert_id:int}/ack", "/api/supervise/alerts/999999/ack"): {S, D},
    ("POST", "/api/supervise/alerts/{alert_id:int}/resolve", "/api/supervise/alerts/999999/resolve"): {S, D},
    ("GET", "/api/supervise/alert-rules", "/api/supervise/alert-rules"): {S, D},
    ("PUT", "/api/supervise/alert-rules/global", "/api/supervise/alert-rules/global"): {D},
    ("PUT", "/api/supervise/alert-rules/items/{code}", "/api/supervise/alert-rules/items/SB-001"): {D},
}
