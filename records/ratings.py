"""The resident's 好差评 (five-level rating) of a call: one per call session."""

from __future__ import annotations

import logging

from sqlmodel import Session, select

from records.errors import ConflictError, NotFoundError, ValidationError
from records.events import append_event, lock_log
from records.models import CallSession, CallStatus, Rating, RatingLevel

logger = logging.getLogger(__name__)

MAX_COMMENT = 500
# A resident can only rate a call a clerk actually served.
RATEABLE = frozenset({CallStatus.ACTIVE, CallStatus.ENDED})


def rate(
    session: Session,
    *,
    session_id: str,
    level: RatingLevel | int,
    comment: str = "",
    actor: str | None = None,
) -> Rating:
    """Record the rating of a served call; event `rating.given`.

    Raises ConflictError `already_rated` on a second rating: the first one
    stands (好差评 cannot be changed after the fact).  Bad ratings (1-2)
    are the caller's cue to raise a blue alert.
    """
    try:
        level = RatingLevel(level)
    except ValueError as exc:
        raise ValidationError("invalid_rating_level", f"rating level {level!r}") from exc
    comment = comment.strip()
    if len(comment) > MAX_COMMENT:
        raise ValidationError("comment_too_long", f"comment longer than {MAX_COMMENT} characters")
    lock_log(session)  # serialises concurrent ratings of one call: the check below sees the winner
    call = session.get(CallSession, session_id, populate_existing=True)
    if call is None:
        raise NotFoundError("call_not_found", f"no call session {session_id!r}")
    if call.status not in RATEABLE:
        raise ValidationError("call_not_served", f"call {session_id} is {call.status.value}")
    if session.exec(select(Rating).where(Rating.session_id == session_id)).first() is not None:
        raise ConflictError("already_rated", f"call {session_id} is already rated")
    rating = Rating(session_id=session_id, level=level, comment=comment)
    session.add(rating)
    session.flush()
    append_event(session, kind="rating.given", actor=actor or f"booth:{call.booth_id}",
                 session_id=session_id, booth_id=call.booth_id,
                 data={"rating_id": rating.id, "level": int(level), "comment": comment})
    return rating


def get_rating(session: Session, session_id: str) -> Rating | None:
    """The rating of a call, if the resident gave one."""
    return session.exec(select(Rating).where(Rating.session_id == session_id)).first()
