"""Typed errors of the media hub.

Every error carries a stable `code` (snake_case ASCII) that the signaling layer
maps to a Chinese and English message for the client; the `message` is for
logs and developers only.  The shape follows `records.errors` on purpose (same
constructor, same attributes) without importing it: `media/` imports nothing of
ours.
"""

from __future__ import annotations


class MediaError(Exception):
    """Base of every error the media hub raises on purpose."""

    default_code = "media_error"

    def __init__(self, code: str | None = None, message: str = "") -> None:
        self.code = code or self.default_code
        self.message = message or self.code
        super().__init__(f"{self.code}: {self.message}")


class PassthroughUnsupported(MediaError):
    """The installed aiortc lacks an internal that encoded passthrough relies on.

    Raised by `media._aiortc_internals` with the attribute and the aiortc
    version in the message, so an upgrade that moved a private name fails at
    the first call with a clear reason instead of silently decoding.
    """

    default_code = "passthrough_unsupported"


class OfferRejected(MediaError, ValueError):
    """An SDP offer the hub cannot answer (no usable media, wrong role, bad SDP)."""

    default_code = "offer_rejected"


class RoomClosed(MediaError):
    """The room was closed; no participant can join it any more."""

    default_code = "room_closed"


class RecordingError(MediaError):
    """A recording file could not be opened, written or recovered."""

    default_code = "recording_failed"
