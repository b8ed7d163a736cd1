"""Routes of the seat package (login, consoles, staff APIs)."""

from tests.access_rules.common import ALL, B, C, STAFF

TABLE = {
    ("GET", "/", "/"): ALL,
    ("GET", "/favicon.ico", "/favicon.ico"): ALL,
    ("GET", "/login", "/login"): ALL,
    ("POST", "/login", "/login"): ALL,
    ("POST", "/logout", "/logout"): STAFF,
    ("GET", "/seat", "/seat"): {C},
    ("GET", "/api/seat/items/{code}", "/api/seat/items/SB-001"): {C},
    ("GET", "/api/seat/directory", "/api/seat/directory"): {C},
    ("GET", "/api/seat/history", "/api/seat/history"): {C},
    ("GET", "/api/seat/calls/{call_id}", "/api/seat/calls/00000000-0000-4000-8000-000000000000"): {C},
    ("POST", "/api/seat/calls/{call_id}/capture", "/api/seat/calls/00000000-0000-4000-8000-000000000000/capture"): {C},
    ("GET", "/api/seat/calls/{call_id}/materials", "/api/seat/calls/00000000-0000-4000-8000-000000000000/materials"): {C},
    ("GET", "/api/seat/materials/{material_id:int}", "/api/seat/materials/1"): {C},
    ("POST", "/api/seat/materials/{material_id:int}/tick", "/api/seat/materials/1/tick"): {C},
    ("POST", "/api/seat/calls/{call_id}/decision", "/api/seat/calls/00000000-0000-4000-8000-000000000000/decision"): {C},
    ("GET", "/progress", "/progress"): ALL,
    ("GET", "/api/me", "/api/me"): STAFF | {B},
}
