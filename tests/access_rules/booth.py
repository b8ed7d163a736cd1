"""Routes of the booth package (kiosk page and booth-facing APIs)."""

from tests.access_rules.common import ALL

TABLE = {
    ("GET", "/kiosk", "/kiosk"): ALL,
}
