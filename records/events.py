"""The append-only, hash-chained event log.

Every event is on the global chain; an event with a `session_id` is also on
that call session's chain, so one session's history can be verified (and
handed over) on its own.

Hash formula (both chains; `||` is byte concatenation)::

    hash         = sha256( prev_hash.encode("ascii")
                           || canonical_json({"seq", "ts", "kind", "actor",
                                              "session_id", "booth_id", "data"}) ).hexdigest()
    session_hash = sha256( session_prev_hash.encode("ascii")
                           || canonical_json({"seq", "session_seq", "ts", "kind", "actor",
                                              "session_id", "booth_id", "data"}) ).hexdigest()

`prev_hash` of the first event of a chain is the genesis hash, 64 zeros.  The
previous hash enters as its 64 lowercase hex characters (ASCII), not as the
32 raw bytes.  `ts` enters as ISO-8601 UTC with microseconds
(`2026-03-01T09:30:00.000000+00:00`).  The row's `id` and the hash columns
are not hashed: `id` is assigned by the database and says nothing about
order, which `seq` does.

Appends serialise on `ChainHead` rows locked with SELECT ... FOR UPDATE
(PostgreSQL) or on the write lock SQLite takes at BEGIN IMMEDIATE (see
`records.db`).  Lock order is always the global head first, then a session
head; every records function that reads state to validate a change (a
status transition, "rated once", a case serial) takes the global head first
(`lock_log`) and only then reads and locks anything else, so two
transactions never wait on each other in opposite order.  This relies on
READ COMMITTED (PostgreSQL's default): a statement issued after the lock is
granted sees what the previous holder committed.
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import insert as sa_insert
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col, select

from records.errors import ValidationError
from records.models import ChainHead, Event

logger = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
GLOBAL_CHAIN = "global"
SESSION_CHAIN_PREFIX = "session:"

# The content fields of a row, in the order they are documented above.
GLOBAL_FIELDS = ("seq", "ts", "kind", "actor", "session_id", "booth_id", "data")
SESSION_FIELDS = ("seq", "session_seq", "ts", "kind", "actor", "session_id", "booth_id", "data")


# --------------------------------------------------------------------------- canonical form


def _utc_naive(value: datetime) -> datetime:
    """UTC without tzinfo: what both SQLite and PostgreSQL `timestamp` columns give back."""
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        # Naive datetimes are UTC by the records' convention (see models.utcnow).
        return _utc_naive(value).replace(tzinfo=timezone.utc).isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (set, frozenset)):
        raise TypeError("sets have no canonical order")
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def canonical_json(obj: Any) -> bytes:
    """The one byte form that is hashed: sorted keys, no spaces, UTF-8, no NaN.

    Datetimes become ISO-8601 UTC with microseconds and dates ISO, so a value
    hashes the same before it is stored and after it is read back.
    """
    try:
        text = json.dumps(
            obj,
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
            default=_json_default,
        )
    except (TypeError, ValueError) as exc:
        raise ValidationError("non_canonical_value", f"cannot canonicalise: {exc}") from exc
    return text.encode("utf-8")


def chain_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """sha256(prev_hash as ASCII hex || canonical_json(fields)), lowercase hex."""
    digest = hashlib.sha256()
    digest.update(prev_hash.encode("ascii"))
    digest.update(canonical_json(fields))
    return digest.hexdigest()


def global_fields(event: Event) -> dict[str, Any]:
    """The fields of `event` the global hash covers."""
    return {name: getattr(event, name) for name in GLOBAL_FIELDS}


def session_fields(event: Event) -> dict[str, Any]:
    """The fields of `event` the session-chain hash covers."""
    return {name: getattr(event, name) for name in SESSION_FIELDS}


# --------------------------------------------------------------------------- heads and appends


def session_chain(session_id: str) -> str:
    """The ChainHead key of a call session's chain."""
    return SESSION_CHAIN_PREFIX + session_id


def lock_head(session: Session, chain: str, *, initial_hash: str = GENESIS_HASH) -> ChainHead:
    """Lock (creating lazily) the ChainHead row `chain` until the transaction ends.

    Also serves as a counter row for other sequences (case serials).  Creation
    is INSERT ... ON CONFLICT DO NOTHING so two first appenders cannot both
    insert; the loser waits for the winner's row and then locks it.
    """
    stmt = (
        select(ChainHead)
        .where(ChainHead.chain == chain)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    head = session.exec(stmt).first()
    if head is None:
        session.execute(_insert_ignore(session, {"chain": chain, "seq": 0, "hash": initial_hash}))
        head = session.exec(stmt).one()
    return head


def _insert_ignore(session: Session, values: dict[str, Any]) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(ChainHead).values(**values).on_conflict_do_nothing(index_elements=["chain"])
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(ChainHead).values(**values).on_conflict_do_nothing(index_elements=["chain"])
    return sa_insert(ChainHead).values(**values)  # other databases: a race surfaces as IntegrityError


def lock_log(session: Session) -> None:
    """Take the global chain lock now, before reading rows the caller will change.

    Every records function that changes state and logs it calls this first,
    which both serialises its read-validate-write and fixes the lock order.
    """
    lock_head(session, GLOBAL_CHAIN)


def append_event(
    session: Session,
    *,
    kind: str,
    actor: str = "system",
    session_id: str | None = None,
    booth_id: int | None = None,
    data: dict[str, Any] | None = None,
    ts: datetime | None = None,
) -> Event:
    """Append one event to the global chain (and its session chain); do not commit.

    The caller's transaction carries the event together with the change it
    records: both commit or neither does.  The chain heads stay locked until
    that transaction ends, so keep it short.
    """
    return append_events(session, [dict(kind=kind, actor=actor, session_id=session_id, booth_id=booth_id,
                                        data=data, ts=ts)])[0]


def append_events(session: Session, entries: Sequence[dict[str, Any]]) -> list[Event]:
    """Append several events in order, each as `append_event` would; do not commit.

    Each chain head is locked and written once for the whole batch and the rows are inserted
    together, which is what makes a burst (thousands of booths coming back online) cheap.
    Every entry is validated before anything is added, so a bad one leaves the log untouched.
    The returned events are not attached to the session (the log is append-only).
    """
    return [Event(**row) for row in append_event_rows(session, entries)]


def append_event_rows(session: Session, entries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """`append_events` returning the stored column values instead of model objects.

    For bursts whose caller needs nothing back: building thousands of ORM objects cost more
    than hashing and inserting the rows.
    """
    prepared = [_prepared(**entry) for entry in entries]
    head = lock_head(session, GLOBAL_CHAIN)
    # The chain is carried in locals and written to the (ORM) head once: its attribute
    # bookkeeping per event cost more than the hashing in a burst of presence events.
    seq, last_hash = head.seq, head.hash
    session_heads: dict[str, ChainHead] = {}
    rows: list[dict[str, Any]] = []
    for kind, actor, session_id, booth_id, stored_data, stored_ts in prepared:
        seq += 1
        row: dict[str, Any] = {"seq": seq, "ts": stored_ts, "kind": kind, "actor": actor,
                               "session_id": session_id, "booth_id": booth_id, "data": stored_data,
                               "prev_hash": last_hash, "session_seq": None, "session_prev_hash": None,
                               "session_hash": None}
        row["hash"] = last_hash = chain_hash(last_hash, {name: row[name] for name in GLOBAL_FIELDS})
        if session_id is not None:
            shead = session_heads.get(session_id)
            if shead is None:
                shead = session_heads[session_id] = lock_head(session, session_chain(session_id))
            row["session_seq"] = shead.seq + 1
            row["session_prev_hash"] = shead.hash
            row["session_hash"] = chain_hash(shead.hash, {name: row[name] for name in SESSION_FIELDS})
            shead.seq, shead.hash = row["session_seq"], row["session_hash"]
        rows.append(row)
    if rows:
        head.seq, head.hash = seq, last_hash
    session.add(head)
    session.add_all(session_heads.values())
    session.flush()
    # One multi-row INSERT, not the ORM's unit of work (append-only rows need no ORM state).
    session.execute(sa_insert(Event.__table__), rows)
    _note_pending(session.connection(), len(rows))
    logger.debug("appended %d events up to seq %d", len(rows), head.seq)
    return rows


# --------------------------------------------------------------------------- counting appends

_PENDING_APPENDS = "cloudseat_pending_event_appends"


@dataclass
class AppendCounter:
    """Events committed through one engine since `count_appends` (a plain int, for metrics)."""

    committed: int = 0


def _note_pending(conn: Connection, count: int) -> None:
    # Held on the connection until its transaction ends: only a commit makes them appended.
    conn.info[_PENDING_APPENDS] = conn.info.get(_PENDING_APPENDS, 0) + count


def count_appends(engine: Engine) -> AppendCounter:
    """Count the events that `engine`'s transactions commit; rolled-back appends do not count.

    Per engine, not per process: tests run several apps (engines) in one process, and the
    command line's engines never install one.  The cost is a dict update per append batch.
    """
    counter = AppendCounter()

    def committed(conn: Connection) -> None:
        counter.committed += conn.info.pop(_PENDING_APPENDS, 0)

    def rolled_back(conn: Connection) -> None:
        conn.info.pop(_PENDING_APPENDS, None)

    sa_event.listen(engine, "commit", committed)
    sa_event.listen(engine, "rollback", rolled_back)
    return counter


def _prepared(
    *,
    kind: str,
    actor: str = "system",
    session_id: str | None = None,
    booth_id: int | None = None,
    data: dict[str, Any] | None = None,
    ts: datetime | None = None,
) -> tuple[str, str, str | None, int | None, dict[str, Any], datetime]:
    """One event's fields validated, in the form that is stored and hashed."""
    if not kind or len(kind) > 48:
        raise ValidationError("invalid_event_kind", f"kind must be 1..48 chars: {kind!r}")
    if len(actor) > 64:
        raise ValidationError("invalid_event_actor", "actor longer than 64 chars")
    if session_id is not None and (not session_id or len(session_id) > 36):
        raise ValidationError("invalid_session_id", f"session id must be 1..36 chars: {session_id!r}")
    # Store exactly what is hashed: round-trip the data through its canonical form
    # (dates become strings, tuples lists) and cut the timestamp to naive UTC.
    stored_data: dict[str, Any] = json.loads(canonical_json(data)) if data else {}
    return kind, actor, session_id, booth_id, stored_data, _utc_naive(ts or datetime.now(timezone.utc))


def record(engine: Engine, **kwargs: Any) -> Event:
    """Append one event in a transaction of its own and commit it.

    For events that record no other change (logins, accesses, device reports).
    Takes the keyword arguments of `append_event`.
    """
    with Session(engine, expire_on_commit=False) as session:
        event = append_event(session, **kwargs)
        session.commit()
        return event


def list_events(
    session: Session,
    *,
    session_id: str | None = None,
    kind: str | None = None,
    after_seq: int = 0,
    limit: int = 500,
) -> list[Event]:
    """Events in chain order, optionally one session's timeline or one kind."""
    stmt = select(Event).where(Event.seq > after_seq)
    if session_id is not None:
        stmt = stmt.where(Event.session_id == session_id)
    if kind is not None:
        stmt = stmt.where(Event.kind == kind)
    return list(session.exec(stmt.order_by(col(Event.seq)).limit(limit)))


# --------------------------------------------------------------------------- verification


class BreakKind(str, enum.Enum):
    HASH_MISMATCH = "hash mismatch"  # the row's content no longer gives its hash
    SEQ_GAP = "seq gap"  # a sequence number is missing (row deleted) or repeated
    PREV_LINK_BROKEN = "prev link broken"  # prev_hash is not the previous row's hash
    HEAD_MISMATCH = "head mismatch"  # the chain head disagrees with the last row


@dataclass(frozen=True)
class ChainBreak:
    """Where a chain first stops verifying.

    `seq` is the global seq of the offending row, or for a gap the missing
    seq (on a session chain: the global seq of the row found where the
    missing one should be, and `session_seq` the missing number).
    """

    chain: str  # "global" or "session:<id>"
    kind: BreakKind
    seq: int | None
    event_id: int | None
    expected: str
    found: str
    session_seq: int | None = None

    def describe(self) -> str:
        """One human line, e.g. `event seq 17 (global chain): hash mismatch`."""
        if self.chain == GLOBAL_CHAIN:
            where = "global chain"
        else:
            where = f"session chain {self.chain[len(SESSION_CHAIN_PREFIX):]}"
            if self.session_seq is not None:
                where += f", session_seq {self.session_seq}"
        subject = f"event seq {self.seq}" if self.seq is not None else "chain head"
        return f"{subject} ({where}): {self.kind.value} (expected {self.expected}, found {self.found})"


@dataclass(frozen=True)
class ChainReport:
    """Result of walking every chain; `first_break` is None when all verify."""

    checked_events: int
    checked_chains: int
    first_break: ChainBreak | None

    @property
    def ok(self) -> bool:
        return self.first_break is None


@contextmanager
def _stream(session: Session, stmt: Any) -> Iterator[Iterator[Event]]:
    """Rows in batches (a server-side cursor on PostgreSQL), closed even on an early return."""
    result = session.exec(stmt.execution_options(yield_per=1000))
    try:
        yield iter(result)
    finally:
        result.close()


def _check_global(session: Session) -> tuple[int, ChainBreak | None]:
    expected_seq, prev = 1, GENESIS_HASH
    count = 0
    with _stream(session, select(Event).order_by(col(Event.seq))) as rows:
        for ev in rows:
            count += 1
            brk = _check_row(GLOBAL_CHAIN, ev, ev.seq, expected_seq, ev.prev_hash, prev,
                             ev.hash, chain_hash(ev.prev_hash, global_fields(ev)))
            if brk is not None:
                return count, brk
            expected_seq, prev = ev.seq + 1, ev.hash
    head = session.get(ChainHead, GLOBAL_CHAIN, populate_existing=True)
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS_HASH)
    if (head_seq, head_hash) != (expected_seq - 1, prev):
        # Rows after the last one present were deleted (or the head was edited).
        return count, ChainBreak(GLOBAL_CHAIN, BreakKind.HEAD_MISMATCH, head_seq, None,
                                 f"head at seq {expected_seq - 1} {prev}",
                                 f"head at seq {head_seq} {head_hash}")
    return count, None


def _check_row(chain: str, ev: Event, seq: int | None, expected_seq: int,
               prev_found: str | None, prev_expected: str, hash_found: str | None,
               hash_expected: str, *, session_seq: bool = False) -> ChainBreak | None:
    """Check one row's sequence number, link and hash, in that order."""

    def brk(kind: BreakKind, at: int | None, expected: str, found: str) -> ChainBreak:
        if session_seq:
            return ChainBreak(chain, kind, ev.seq, ev.id, expected, found, session_seq=at)
        return ChainBreak(chain, kind, at, ev.id, expected, found)

    if seq != expected_seq:
        # Name the missing number: that is the row someone removed.
        at = expected_seq if seq is None or seq > expected_seq else seq
        return brk(BreakKind.SEQ_GAP, at, f"seq {expected_seq}", f"seq {seq}")
    if prev_found != prev_expected:
        return brk(BreakKind.PREV_LINK_BROKEN, seq, prev_expected, str(prev_found))
    if hash_found != hash_expected:
        return brk(BreakKind.HASH_MISMATCH, seq, hash_expected, str(hash_found))
    return None


def _check_sessions(session: Session) -> tuple[int, ChainBreak | None]:
    chains = 0
    seen: set[str] = set()
    current: str | None = None
    expected_seq, prev = 1, GENESIS_HASH
    stmt = (
        select(Event)
        .where(col(Event.session_id).is_not(None))
        .order_by(col(Event.session_id), col(Event.session_seq).nulls_first())
    )

    def head_break(sid: str, last_seq: int, last_hash: str) -> ChainBreak | None:
        head = session.get(ChainHead, session_chain(sid), populate_existing=True)
        found = (head.seq, head.hash) if head else (0, GENESIS_HASH)
        if found != (last_seq, last_hash):
            return ChainBreak(session_chain(sid), BreakKind.HEAD_MISMATCH, None, None,
                              f"head at session_seq {last_seq} {last_hash}",
                              f"head at session_seq {found[0]} {found[1]}")
        return None

    with _stream(session, stmt) as rows:
        for ev in rows:
            assert ev.session_id is not None
            if ev.session_id != current:
                if current is not None and (b := head_break(current, expected_seq - 1, prev)):
                    return chains, b
                current, expected_seq, prev = ev.session_id, 1, GENESIS_HASH
                seen.add(current)
                chains += 1
            computed = chain_hash(ev.session_prev_hash or "", session_fields(ev))
            b = _check_row(session_chain(current), ev, ev.session_seq, expected_seq,
                           ev.session_prev_hash, prev, ev.session_hash, computed, session_seq=True)
            if b is not None:
                return chains, b
            expected_seq, prev = expected_seq + 1, ev.session_hash or ""
    if current is not None and (b := head_break(current, expected_seq - 1, prev)):
        return chains, b

    # Heads of sessions whose events have all gone.
    heads = session.exec(
        select(ChainHead).where(col(ChainHead.chain).startswith(SESSION_CHAIN_PREFIX))
    )
    for head in heads:
        if head.chain[len(SESSION_CHAIN_PREFIX):] not in seen and head.seq != 0:
            return chains, ChainBreak(head.chain, BreakKind.HEAD_MISMATCH, None, None,
                                      "head at session_seq 0", f"head at session_seq {head.seq}")
    return chains, None


def verify_chains(session: Session) -> ChainReport:
    """Recompute every hash of the global chain and of every session chain.

    Reports the FIRST break: the global chain is walked first (in seq
    order), then the session chains (in session id order), each followed by
    its head.  Read-only.
    """
    checked, brk = _check_global(session)
    chains = 1
    if brk is None:
        session_chains, brk = _check_sessions(session)
        chains += session_chains
    if brk is not None:
        logger.warning("event chain broken: %s", brk.describe())
    return ChainReport(checked_events=checked, checked_chains=chains, first_break=brk)
