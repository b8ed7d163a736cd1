"""Routes of the booth package (kiosk page and booth-facing APIs)."""

from tests.access_rules.common import ALL, B

TABLE = {
    ("GET", "/kiosk", "/kiosk"): ALL,
    ("GET", "/api/booth/catalog", "/api/booth/catalog"): {B},
    ("GET", "/api/booth/slots", "/api/booth/slots?item_code=SB-001"): {B},
    ("POST", "/api/booth/ratings", "/api/booth/ratings"): {B},
    ("POST", "/api/booth/complaints", "/api/booth/complaints"): {B},
    ("POST", "/api/booth/materials", "/api/booth/materials"): {B},
    ("GET", "/api/booth/print-jobs/{job_id:int}.pdf", "/api/booth/print-jobs/1.pdf"): {B},
    ("POST", "/api/booth/print-jobs/{job_id:int}/result", "/api/booth/print-jobs/1/result"): {B},
    ("GET", "/api/booth/appointments/{appointment_id:int}", "/api/booth/appointments/1"): {B},
}
