"""Call sessions: creation, validated transitions and their events."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from records import calls
from records.errors import InvalidTransitionError, NotFoundError, RecordsError
from records.events import list_events, verify_chains
from records.models import CallStatus
from tests.records_factories import add_booth, add_user, seed


def test_call_lifecycle_logs_each_step(records_engine):
    ids = seed(records_engine)
    with Session(records_engine) as session:
        call = calls.create_call(session, booth_id=ids["booth_id"], item_code=ids["item_code"], priority=2)
        session.commit()
        call_id = call.id
    with Session(records_engine) as session:
        calls.mark_offered(session, call_id, clerk_id=ids["clerk_id"])
        calls.mark_answered(session, call_id, clerk_id=ids["clerk_id"], media_node="node-1")
        session.commit()
    with Session(records_engine) as session:
        calls.mark_ended(session, call_id, "hangup_clerk")
        session.commit()
    with Session(records_engine) as session:
        call = calls.get_call(session, call_id)
        assert call.status == CallStatus.ENDED
        assert call.region_code == "xh"
        assert call.clerk_id == ids["clerk_id"]
        assert call.end_reason == "hangup_clerk"
        assert call.answered_at is not None and call.ended_at is not None
        kinds = [e.kind for e in list_events(session, session_id=call_id)]
        assert kinds == ["call.queued", "call.offered", "call.answered", "call.ended"]
        assert list_events(session, session_id=call_id)[0].data["region_code"] == "xh"
        assert verify_chains(session).ok


def test_region_is_the_booths(records_engine):
    ids = seed(records_engine, regions=("xh", "gs"))
    with Session(records_engine) as session:
        booth = add_booth(session, "gs")
        call = calls.create_call(session, booth_id=booth.id, item_code=ids["item_code"])
        assert call.region_code == "gs"


@pytest.mark.parametrize("steps, bad", [
    ([], "mark_ended"),  # queued call cannot end: it was never answered
    (["answer", "end"], "mark_answered"),
    (["answer", "end"], "mark_abandoned"),
    (["abandon"], "mark_answered"),
])
def test_invalid_transitions_are_refused_without_an_event(records_engine, steps, bad):
    ids = seed(records_engine)
    with Session(records_engine) as session:
        call = calls.create_call(session, booth_id=ids["booth_id"], item_code=ids["item_code"])
        for step in steps:
            if step == "answer":
                calls.mark_answered(session, call.id, clerk_id=ids["clerk_id"])
            elif step == "end":
                calls.mark_ended(session, call.id, "hangup_booth")
            else:
                calls.mark_abandoned(session, call.id)
        session.commit()
        before = len(list_events(session))
        status = call.status
        with pytest.raises(InvalidTransitionError) as info:
            fn = getattr(calls, bad)
            if bad == "mark_answered":
                fn(session, call.id, clerk_id=ids["clerk_id"])
            elif bad == "mark_ended":
                fn(session, call.id, "x")
            else:
                fn(session, call.id)
        assert info.value.code == "invalid_transition"
        session.rollback()
        assert calls.get_call(session, call.id).status == status
        assert len(list_events(session)) == before


def test_requeue_after_offer_timeout(records_engine):
    ids = seed(records_engine)
    with Session(records_engine) as session:
        call = calls.create_call(session, booth_id=ids["booth_id"], item_code=ids["item_code"])
        calls.mark_offered(session, call.id, clerk_id=ids["clerk_id"])
        calls.mark_requeued(session, call.id)
        assert (call.status, call.clerk_id) == (CallStatus.QUEUED, None)
        calls.mark_abandoned(session, call.id)
        session.commit()
        assert [e.kind for e in list_events(session, session_id=call.id)] == [
            "call.queued", "call.offered", "call.requeued", "call.abandoned"]


def test_offer_and_release_written_out_of_order_are_both_logged_and_the_row_follows_the_newer_offer(
        records_engine):
    """Node B's offer to clerk 2 can reach the log before node A's release of clerk 1's offer."""
    ids = seed(records_engine)
    with Session(records_engine) as session:
        other = add_user(session).id
        session.flush()
        call = calls.create_call(session, booth_id=ids["booth_id"], item_code=ids["item_code"])
        calls.mark_offered(session, call.id, clerk_id=ids["clerk_id"], extra={"offered_at": 1.0})
        calls.mark_offered(session, call.id, clerk_id=other, extra={"offered_at": 3.0})  # B, before A's release
        assert (call.status, call.clerk_id) == (CallStatus.OFFERED, other)
        calls.mark_requeued(session, call.id, extra={"clerk_id": ids["clerk_id"], "at": 2.0})  # A's release, late
        assert (call.status, call.clerk_id) == (CallStatus.OFFERED, other), "a stale release undid the newer offer"
        calls.mark_requeued(session, call.id, extra={"clerk_id": other, "at": 4.0})
        assert (call.status, call.clerk_id) == (CallStatus.QUEUED, None)
        session.commit()
        logged = [(e.kind, e.data.get("clerk_id")) for e in list_events(session, session_id=call.id)]
    assert logged == [("call.queued", None), ("call.offered", ids["clerk_id"]), ("call.offered", other),
                      ("call.requeued", ids["clerk_id"]), ("call.requeued", other)]


def test_an_offer_or_release_written_after_the_answer_is_logged_and_leaves_the_row_alone(records_engine):
    ids = seed(records_engine)
    with Session(records_engine) as session:
        other = add_user(session).id
        session.flush()
        call = calls.create_call(session, booth_id=ids["booth_id"], item_code=ids["item_code"])
        calls.mark_answered(session, call.id, clerk_id=ids["clerk_id"])
        calls.mark_offered(session, call.id, clerk_id=other, extra={"offered_at": 1.0})  # written late
        calls.mark_requeued(session, call.id, extra={"clerk_id": other, "at": 1.5})
        assert (call.status, call.clerk_id) == (CallStatus.ACTIVE, ids["clerk_id"])
        calls.mark_ended(session, call.id, "hangup_booth")
        calls.mark_requeued(session, call.id, extra={"clerk_id": other, "at": 1.6})
        assert call.status is CallStatus.ENDED
        session.commit()
        kinds = [e.kind for e in list_events(session, session_id=call.id)]
    assert kinds == ["call.queued", "call.answered", "call.offered", "call.requeued", "call.ended",
                     "call.requeued"]


def test_unknown_booth_item_or_call(records_engine):
    ids = seed(records_engine)
    with Session(records_engine) as session:
        with pytest.raises(NotFoundError) as info:
            calls.create_call(session, booth_id=9999, item_code=ids["item_code"])
        assert info.value.code == "booth_not_found"
        with pytest.raises(NotFoundError) as info:
            calls.create_call(session, booth_id=ids["booth_id"], item_code="nope")
        assert info.value.code == "item_not_found"
        with pytest.raises(RecordsError) as info:
            calls.get_call(session, "missing")
        assert info.value.code == "call_not_found"


def test_list_calls_filters(records_engine):
    ids = seed(records_engine)
    with Session(records_engine) as session:
        a = calls.create_call(session, booth_id=ids["booth_id"], item_code=ids["item_code"])
        b = calls.create_call(session, booth_id=ids["booth_id"], item_code=ids["item_code"])
        calls.mark_answered(session, b.id, clerk_id=ids["clerk_id"])
        session.commit()
        assert {c.id for c in calls.list_calls(session)} == {a.id, b.id}
        assert [c.id for c in calls.list_calls(session, status=CallStatus.ACTIVE)] == [b.id]
        assert [c.id for c in calls.list_calls(session, clerk_id=ids["clerk_id"])] == [b.id]
        assert calls.list_calls(session, region_code="other") == []
        assert len(calls.list_calls(session, limit=1)) == 1
