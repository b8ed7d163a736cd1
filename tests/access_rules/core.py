"""Routes assembled by cloudseat/ itself."""

from tests.access_rules.common import ALL

TABLE = {
    ("GET", "/healthz", "/healthz"): ALL,
    ("GET", "/readyz", "/readyz"): ALL,
}
