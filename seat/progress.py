"""The public progress page (办件进度查询): case number + progress code from the printed receipt.

Anonymous by design, so it shows only what `records.cases.check_progress`
returns (number, item, status, deadline), never a name, an ID number or a
booth.  Wrong codes are throttled per client address: after
`WRONG_CODES_ALLOWED` misses within `WRONG_CODE_WINDOW_S` the page answers
429 until the window passes, which makes guessing an 8-character code from a
31-letter alphabet hopeless.
"""

from __future__ import annotations

import logging
import re

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from records.cases import CaseProgress, check_progress
from signaling.access import client_address
from signaling.ratelimit import SlidingWindowLimiter

logger = logging.getLogger(__name__)

WRONG_CODES_ALLOWED = 10
WRONG_CODE_WINDOW_S = 600.0
_NUMBER_RE = re.compile(r"[A-Za-z0-9]{1,16}-\d{4}-\d{6}")
_CODE_RE = re.compile(r"[A-Za-z0-9]{4,16}")
STATUS_LABELS = {
    "accepted": ("已受理，正在办理", "Accepted, in progress"),
    "refused": ("不予受理", "Refused"),
    "needs_supplement": ("待补正材料", "Waiting for more documents"),
    "completed": ("已办结", "Completed"),
}


def progress_limiter(request: Request) -> SlidingWindowLimiter:
    """The wrong-code limiter of this app, created on first use."""
    limiter = getattr(request.app.state, "progress_limiter", None)
    if not isinstance(limiter, SlidingWindowLimiter):
        limiter = SlidingWindowLimiter(WRONG_CODES_ALLOWED, WRONG_CODE_WINDOW_S)
        request.app.state.progress_limiter = limiter
    return limiter


def _client_key(request: Request) -> str:
    return f"progress:{client_address(request)}"


def _page(request: Request, *, status_code: int = 200, found: CaseProgress | None = None,
          error: str | None = None, number: str = "") -> Response:
    context = {
        "found": found, "error": error, "number": number,
        "status_label": STATUS_LABELS.get(found.status.value) if found else None,
    }
    response = request.app.state.templates.TemplateResponse(request, "progress.html", context, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the code is in the URL
    return response


async def progress_page(request: Request) -> Response:
    """GET /progress?case=&code=: the case's status, item and deadline; a form without parameters."""
    number = request.query_params.get("case", "").strip().upper()
    code = request.query_params.get("code", "").strip().upper()
    if not number and not code:
        return _page(request)
    limiter = progress_limiter(request)
    key = _client_key(request)
    if limiter.blocked(key):
        return _page(request, status_code=429, error="too_many", number=number[:40])
    found = None
    if _NUMBER_RE.fullmatch(number) and _CODE_RE.fullmatch(code):
        def load() -> CaseProgress | None:
            with Session(request.app.state.engine) as session:
                return check_progress(session, number, code)

        found = await run_in_threadpool(load)
    if found is None:
        limiter.hit(key)
        logger.info("progress check failed for %s from %s", number[:40], key)
        return _page(request, status_code=404, error="not_found", number=number[:40])
    return _page(request, found=found, number=found.number)
