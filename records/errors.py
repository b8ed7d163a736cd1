"""Typed errors of the records layer.

Every error carries a stable `code` (snake_case ASCII) that callers map to a
Chinese and English message for the client; the `message` is for logs and
developers only.  Subclasses say which family an error belongs to, so callers
can map families to HTTP statuses without knowing every code.
"""

from __future__ import annotations


class RecordsError(Exception):
    """Base of every error the records layer raises on purpose."""

    default_code = "records_error"

    def __init__(self, code: str | None = None, message: str = "") -> None:
        self.code = code or self.default_code
        self.message = message or self.code
        super().__init__(f"{self.code}: {self.message}")


class NotFoundError(RecordsError):
    """A row the caller named does not exist (codes like `call_not_found`)."""

    default_code = "not_found"


class ValidationError(RecordsError, ValueError):
    """Input that no state of the database would make acceptable."""

    default_code = "invalid"


class InvalidTransitionError(RecordsError):
    """A status change the current status does not allow."""

    default_code = "invalid_transition"


class ConflictError(RecordsError):
    """The change collides with an existing row (e.g. `already_rated`)."""

    default_code = "conflict"


class UnsafePathError(ValidationError):
    """A stored-file path that is not a plain relative path inside the store root."""

    default_code = "unsafe_path"
