"""Routes assembled by cloudseat/ itself."""

from tests.access_rules.common import ALL, A, D

TABLE = {
    ("GET", "/healthz", "/healthz"): ALL,
    ("GET", "/readyz", "/readyz"): ALL,
    # anonymous only from CLOUDSEAT_METRICS_ALLOW (loopback by default, as in this test): see test_metrics
    ("GET", "/metrics", "/metrics"): {A, D},
    ("GET", "/openapi.json", "/openapi.json"): ALL,
}
