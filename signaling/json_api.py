"""Plumbing shared by the JSON APIs of the booth and seat packages.

One refusal type, one mapping from the records' typed errors to HTTP
statuses, and one way to run a records transaction off the event loop, so
every API answers errors in the same `{"error": {"code", "message"}}` shape.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any, TypeVar

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from records.errors import ConflictError, InvalidTransitionError, NotFoundError, RecordsError, ValidationError
from signaling.access import error_response
from signaling.protocol import first_bad_value

T = TypeVar("T")

# Checked in order: the first matching class decides the status.
STATUS_OF: tuple[tuple[type[RecordsError], int], ...] = (
    (NotFoundError, 404), (ConflictError, 409), (InvalidTransitionError, 409), (ValidationError, 400))
STATUS_OF_CODE = {"file_too_large": 413}


class ApiError(Exception):
    """A refusal with an HTTP status and a stable code the client translates."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


async def respond(request: Request, handler: Callable[[Request], Awaitable[Response]]) -> Response:
    """Run `handler`; refusals and records errors become the one JSON error shape."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message)
    except RecordsError as exc:
        status = STATUS_OF_CODE.get(exc.code) or next((s for cls, s in STATUS_OF if isinstance(exc, cls)), 400)
        return error_response(status, exc.code, exc.message)


async def transact(request: Request, work: Callable[[Session], T]) -> T:
    """`work(session)` in one committed transaction of the app's database, off the event loop."""

    def job() -> T:
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            result = work(session)
            session.commit()
            return result

    return await run_in_threadpool(job)


async def json_object(request: Request, *, max_bytes: int, empty_ok: bool = False) -> dict[str, Any]:
    """The request body as a JSON object: 413 `too_big` over `max_bytes`, 400 `bad_json` otherwise.

    `empty_ok`: an empty body is `{}` (for actions whose fields are all optional).
    """
    raw = await request.body()
    if len(raw) > max_bytes:
        raise ApiError(413, "too_big", f"body larger than {max_bytes} bytes")
    if not raw and empty_ok:
        return {}
    try:
        body = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        raise ApiError(400, "bad_json", "the body must be a JSON object")
    bad = first_bad_value(body)
    if bad is not None:
        raise ApiError(400, "invalid", bad)
    return body


def uuid_param(request: Request, name: str = "call_id") -> str:
    """A path parameter that must be a UUID in its canonical lowercase form (400 `invalid` otherwise)."""
    raw = str(request.path_params[name])
    try:
        value = str(uuid.UUID(raw))
    except ValueError:
        raise ApiError(400, "invalid", f"{name} must be a UUID") from None
    if value != raw:
        raise ApiError(400, "invalid", f"{name} must be a lowercase UUID")
    return value


_DAY_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Days a query may name: wide enough for any record, narrow enough that a range's arithmetic and
# its conversion to UTC cannot overflow Python's dates (year 1 or 9999 would: a 500 otherwise).
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(9000, 12, 31)


def query_day(raw: str, name: str, *, code: str = "invalid") -> date:
    """A `YYYY-MM-DD` query value (only that form: Python 3.11 would also take `20261207` or a
    week date) between FIRST_DAY and LAST_DAY; ApiError 400 `code` naming `name` otherwise."""
    try:
        if not _DAY_RE.fullmatch(raw):
            raise ValueError(raw)
        day = date.fromisoformat(raw)
    except ValueError:
        raise ApiError(400, code, f"{name} must be a date YYYY-MM-DD") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ApiError(400, code, f"{name} must be between {FIRST_DAY} and {LAST_DAY}")
    return day
