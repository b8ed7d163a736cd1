"""Contract tests of the hash-chained event log on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from records.db import make_engine
from records.events import (
    GENESIS_HASH,
    BreakKind,
    append_event,
    chain_hash,
    global_fields,
    list_events,
    record,
    session_fields,
    verify_chains,
)
from records.models import ChainHead, Event


def url_of(engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def fill(engine, n: int = 30) -> None:
    """n events; every third on session "s-a", every fifth on "s-b"."""
    for i in range(1, n + 1):
        sid = "s-a" if i % 3 == 0 else ("s-b" if i % 5 == 0 else None)
        record(engine, kind="test.tick", actor="user:1", session_id=sid, booth_id=i % 2 or None,
               data={"i": i, "text": "受理", "nested": {"z": 1, "a": [1.5, None, True]}})


def tamper(engine, sql: str) -> None:
    with engine.begin() as conn:
        conn.execute(text(sql))


def verify(engine):
    with Session(engine) as session:
        return verify_chains(session)


def test_append_links_and_verifies(records_engine):
    fill(records_engine, 30)
    with Session(records_engine) as session:
        events = list_events(session)
        assert [e.seq for e in events] == list(range(1, 31))
        assert events[0].prev_hash == GENESIS_HASH
        for prev, ev in zip(events, events[1:]):
            assert ev.prev_hash == prev.hash
            assert ev.hash == chain_hash(ev.prev_hash, global_fields(ev))
        a = list_events(session, session_id="s-a")
        assert [e.session_seq for e in a] == list(range(1, 11))
        assert a[0].session_prev_hash == GENESIS_HASH
        assert a[1].session_prev_hash == a[0].session_hash
        assert a[1].session_hash == chain_hash(a[0].session_hash, session_fields(a[1]))
        assert all(e.session_seq is None for e in events if e.session_id is None)
        head = session.get(ChainHead, "global")
        assert (head.seq, head.hash) == (30, events[-1].hash)
    report = verify(records_engine)
    assert report.ok and report.first_break is None
    assert report.checked_events == 30
    assert report.checked_chains == 3


def test_empty_log_verifies(records_engine):
    assert verify(records_engine).ok


def test_append_does_not_commit(records_engine):
    with Session(records_engine) as session:
        append_event(session, kind="test.rolled_back")
        session.rollback()
    record(records_engine, kind="test.kept")
    with Session(records_engine) as session:
        events = list_events(session)
    assert [(e.seq, e.kind) for e in events] == [(1, "test.kept")]
    assert verify(records_engine).ok


@pytest.mark.parametrize("sql, seq, kind", [
    ("UPDATE event SET data = '{\"i\": 999}' WHERE seq = 17", 17, BreakKind.HASH_MISMATCH),
    ("UPDATE event SET kind = 'test.forged' WHERE seq = 12", 12, BreakKind.HASH_MISMATCH),
    ("UPDATE event SET actor = 'user:2' WHERE seq = 1", 1, BreakKind.HASH_MISMATCH),
    ("UPDATE event SET booth_id = 7 WHERE seq = 22", 22, BreakKind.HASH_MISMATCH),
    ("DELETE FROM event WHERE seq = 17", 17, BreakKind.SEQ_GAP),
    ("DELETE FROM event WHERE seq = 30", 30, BreakKind.HEAD_MISMATCH),
    ("UPDATE event SET prev_hash = hash WHERE seq = 9", 9, BreakKind.PREV_LINK_BROKEN),
])
def test_tampering_is_named_at_its_seq(records_engine, sql, seq, kind):
    fill(records_engine, 30)
    assert verify(records_engine).ok
    tamper(records_engine, sql)
    report = verify(records_engine)
    assert not report.ok
    brk = report.first_break
    assert (brk.chain, brk.kind, brk.seq) == ("global", kind, seq)
    assert brk.describe().startswith(f"event seq {seq} (global chain): {kind.value}")


def test_rewritten_hash_breaks_the_next_link(records_engine):
    """A forger who recomputes one row's hash still breaks the link of the row after it."""
    fill(records_engine, 10)
    with Session(records_engine) as session:
        ev = session.exec(select(Event).where(Event.seq == 4)).one()
        ev.data = {"i": 0}
        forged = chain_hash(ev.prev_hash, global_fields(ev))
    tamper(records_engine, f"UPDATE event SET data = '{{\"i\": 0}}', hash = '{forged}' WHERE seq = 4")
    brk = verify(records_engine).first_break
    assert (brk.kind, brk.seq) == (BreakKind.PREV_LINK_BROKEN, 5)


def test_session_chain_tampering_is_found(records_engine):
    fill(records_engine, 30)
    # Only the session columns change: the global chain still verifies.
    tamper(records_engine, "UPDATE event SET session_seq = 99 WHERE seq = 9")
    brk = verify(records_engine).first_break
    assert brk.chain == "session:s-a"
    assert brk.kind == BreakKind.SEQ_GAP
    assert brk.session_seq == 3  # s-a's third event (global seq 9) is no longer at 3


def test_session_chain_head_mismatch(records_engine):
    fill(records_engine, 30)
    tamper(records_engine, "UPDATE chainhead SET seq = 5 WHERE chain = 'session:s-b'")
    brk = verify(records_engine).first_break
    assert (brk.chain, brk.kind) == ("session:s-b", BreakKind.HEAD_MISMATCH)


def test_tampering_global_head_is_found(records_engine):
    fill(records_engine, 5)
    tamper(records_engine, "UPDATE chainhead SET hash = '" + "f" * 64 + "' WHERE chain = 'global'")
    brk = verify(records_engine).first_break
    assert (brk.chain, brk.kind) == ("global", BreakKind.HEAD_MISMATCH)


def test_concurrent_appends_from_separate_engines_are_gapless(records_engine):
    threads, per_thread = 4, 50
    url = url_of(records_engine)
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def worker(n: int) -> None:
        engine = make_engine(url)
        try:
            start.wait()
            for i in range(per_thread):
                # Half the appends also land on one shared session chain.
                record(engine, kind="test.concurrent", actor=f"thread:{n}",
                       session_id="shared" if i % 2 else None, data={"n": n, "i": i})
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            engine.dispose()

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert errors == []
    with Session(records_engine) as session:
        seqs = list(session.exec(select(Event.seq).order_by(Event.seq)))
        shared = list(session.exec(select(Event.session_seq).where(Event.session_id == "shared")
                                   .order_by(Event.session_seq)))
        senders = {tuple(e.data.values()) for e in session.exec(select(Event))}
    assert seqs == list(range(1, threads * per_thread + 1))
    assert shared == list(range(1, threads * per_thread // 2 + 1))
    assert len(senders) == threads * per_thread
    report = verify(records_engine)
    assert report.ok, report.first_break
    assert report.checked_events == threads * per_thread


def test_head_of_a_session_without_events_is_found(records_engine):
    fill(records_engine, 6)
    tamper(records_engine, "INSERT INTO chainhead (chain, seq, hash) VALUES ('session:ghost', 2, '" + "a" * 64 + "')")
    brk = verify(records_engine).first_break
    assert (brk.chain, brk.kind) == ("session:ghost", BreakKind.HEAD_MISMATCH)


def test_case_counters_in_the_head_table_are_not_chains(records_engine):
    tamper(records_engine, "INSERT INTO chainhead (chain, seq, hash) VALUES ('case:xh:2026', 7, '')")
    fill(records_engine, 3)
    assert verify(records_engine).ok


def test_count_appends_counts_committed_events_only(records_engine):
    from records.events import append_events, count_appends

    counter = count_appends(records_engine)
    record(records_engine, kind="test.one")
    with Session(records_engine) as session:
        append_events(session, [dict(kind="test.batch"), dict(kind="test.batch", session_id="s-c")])
        session.commit()
    assert counter.committed == 3
    with Session(records_engine) as session:
        append_event(session, kind="test.rolled_back")
        session.rollback()
    with Session(records_engine) as session:
        append_event(session, kind="test.never_committed")  # closed without commit: rolled back
    record(records_engine, kind="test.two")
    assert counter.committed == 4
    with Session(records_engine) as session:
        assert len(list_events(session)) == 4
