"""Ratings (好差评), supervision alerts and print jobs."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from records import alerts, calls, printjobs, ratings
from records.errors import ConflictError, InvalidTransitionError, ValidationError
from records.events import list_events, verify_chains
from records.models import AlertKind, AlertStatus, PrintStatus, RatingLevel
from records.storage import FileStore
from tests.records_factories import seed

PDF = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"


@pytest.fixture
def served(records_engine):
    ids = seed(records_engine)
    with Session(records_engine) as session:
        call = calls.create_call(session, booth_id=ids["booth_id"], item_code=ids["item_code"])
        calls.mark_answered(session, call.id, clerk_id=ids["clerk_id"])
        calls.mark_ended(session, call.id, "hangup_booth")
        session.commit()
        ids["call_id"] = call.id
    return ids


def test_rate_once_only(records_engine, served):
    with Session(records_engine) as session:
        r = ratings.rate(session, session_id=served["call_id"], level=RatingLevel.SATISFIED, comment=" 很好 ")
        session.commit()
        assert (r.level, r.comment) == (RatingLevel.SATISFIED, "很好")
    with Session(records_engine) as session:
        with pytest.raises(ConflictError) as info:
            ratings.rate(session, session_id=served["call_id"], level=1)
        assert info.value.code == "already_rated"
        session.rollback()
        assert ratings.get_rating(session, served["call_id"]).level == RatingLevel.SATISFIED
        given = [e for e in list_events(session) if e.kind == "rating.given"]
        assert len(given) == 1 and given[0].data == {"rating_id": r.id, "level": 4, "comment": "很好"}


def test_rating_validation(records_engine, served):
    with Session(records_engine) as session:
        with pytest.raises(ValidationError) as info:
            ratings.rate(session, session_id=served["call_id"], level=4, comment="x" * 501)
        assert info.value.code == "comment_too_long"
        with pytest.raises(ValidationError) as info:
            ratings.rate(session, session_id=served["call_id"], level=6)
        assert info.value.code == "invalid_rating_level"
        queued = calls.create_call(session, booth_id=served["booth_id"], item_code=served["item_code"])
        with pytest.raises(ValidationError) as info:
            ratings.rate(session, session_id=queued.id, level=5)
        assert info.value.code == "call_not_served"
        assert ratings.rate(session, session_id=served["call_id"], level=5, comment="x" * 500).id


def test_alert_lifecycle(records_engine, served):
    sup = served["supervisor_id"]
    with Session(records_engine) as session:
        a = alerts.raise_alert(session, kind=AlertKind.BLUE, message="差评", session_id=served["call_id"])
        session.commit()
        with pytest.raises(ValidationError) as info:
            alerts.resolve(session, a.id, user_id=sup, note="   ")
        assert info.value.code == "note_required"
        alerts.acknowledge(session, a.id, user_id=sup)
        session.commit()
        with pytest.raises(InvalidTransitionError):
            alerts.acknowledge(session, a.id, user_id=sup)
        session.rollback()
        alerts.resolve(session, a.id, user_id=sup, note="回访群众，已解释")
        session.commit()
        assert (a.status, a.acknowledged_by, a.resolved_by) == (AlertStatus.RESOLVED, sup, sup)
        with pytest.raises(InvalidTransitionError):
            alerts.resolve(session, a.id, user_id=sup, note="again")
        session.rollback()
        kinds = [e.kind for e in list_events(session, session_id=served["call_id"]) if e.kind.startswith("alert.")]
        assert kinds == ["alert.raised", "alert.acknowledged", "alert.resolved"]
        assert alerts.list_alerts(session, status=AlertStatus.RESOLVED)[0].id == a.id


def test_open_alert_can_be_resolved_directly_and_deadline_alerts_do_not_repeat(records_engine, served):
    from datetime import date, datetime, timezone

    from records import cases
    from records.models import CaseStatus

    with Session(records_engine) as session:
        case = cases.open_case(session, call_session_id=served["call_id"], item_code=served["item_code"],
                               region_code="xh", booth_id=served["booth_id"], clerk_id=served["clerk_id"],
                               status=CaseStatus.ACCEPTED, decided_at=datetime.now(timezone.utc),
                               deadline=date(2026, 1, 5))
        first = alerts.raise_alert(session, kind=AlertKind.YELLOW, message="临近期限", case_id=case.id)
        again = alerts.raise_alert(session, kind=AlertKind.YELLOW, message="临近期限", case_id=case.id)
        red = alerts.raise_alert(session, kind=AlertKind.RED, message="超期", case_id=case.id)
        assert again.id == first.id and red.id != first.id
        alerts.resolve(session, first.id, user_id=served["supervisor_id"], note="已办结")
        session.commit()
        assert alerts.raise_alert(session, kind=AlertKind.YELLOW, message="x", case_id=case.id).id != first.id
        assert sum(e.kind == "alert.raised" for e in list_events(session)) == 3
        assert verify_chains(session).ok


def test_print_job_results(records_engine, served, tmp_path):
    store = FileStore(tmp_path / "store")
    with Session(records_engine) as session:
        ok = printjobs.create_print_job(session, store, booth_id=served["booth_id"], document="receipt",
                                        pdf=PDF, session_id=served["call_id"])
        bad = printjobs.create_print_job(session, store, booth_id=served["booth_id"], document="notice",
                                         pdf=PDF, session_id=served["call_id"])
        session.commit()
        assert store.sha256_of(ok.path) == ok.sha256 and ok.path.startswith("prints/")
        printjobs.mark_sent(session, ok.id)
        printjobs.report_print_result(session, ok.id, PrintStatus.PRINTED)
        with pytest.raises(ValidationError) as info:
            printjobs.report_print_result(session, bad.id, PrintStatus.FAILED)
        assert info.value.code == "error_required"
        printjobs.report_print_result(session, bad.id, PrintStatus.FAILED, error="paper out")
        session.commit()
        assert (ok.status, bad.status, bad.error) == (PrintStatus.PRINTED, PrintStatus.FAILED, "paper out")
        with pytest.raises(InvalidTransitionError):
            printjobs.report_print_result(session, ok.id, PrintStatus.FAILED, error="late")
        session.rollback()
        with pytest.raises(ValidationError):
            printjobs.report_print_result(session, ok.id, PrintStatus.SENT)
        with pytest.raises(ValidationError):
            printjobs.create_print_job(session, store, booth_id=served["booth_id"], document="receipt",
                                       pdf=b"<html>")
        kinds = [e.kind for e in list_events(session) if e.kind.startswith("print.")]
        assert kinds == ["print.created", "print.created", "print.sent", "print.printed", "print.failed"]
