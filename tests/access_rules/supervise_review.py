"""Routes of seat.supervise_review: staff only; which sessions a clerk or a scoped supervisor sees is
checked per object (tests/integration/test_review.py)."""

from tests.access_rules.common import ALL, B, C, D, S, STAFF  # noqa: F401

_CALL = "00000000-0000-4000-8000-000000000000"

TABLE: dict = {
    ("GET", "/supervise/sessions", "/supervise/sessions"): STAFF,
    ("GET", "/supervise/sessions/{call_id}", f"/supervise/sessions/{_CALL}"): STAFF,
    ("GET", "/api/supervise/sessions", "/api/supervise/sessions"): STAFF,
    ("GET", "/api/supervise/sessions/{call_id}", f"/api/supervise/sessions/{_CALL}"): STAFF,
    ("GET", "/api/supervise/recordings/{recording_id:int}", "/api/supervise/recordings/1"): STAFF,
    ("GET", "/api/supervise/materials/{material_id:int}", "/api/supervise/materials/1"): STAFF,
}
