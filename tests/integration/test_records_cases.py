"""Cases: numbering per year and region under concurrency, validation, progress check."""

from __future__ import annotations

import re
import threading
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlmodel import Session, select

from records import calls, cases
from records.db import make_engine
from records.errors import InvalidTransitionError, ValidationError
from records.events import list_events, verify_chains
from records.models import Case, CaseStatus
from tests.records_factories import seed

DECIDED = datetime(2026, 3, 2, 10, 0, tzinfo=timezone(timedelta(hours=8)))


def open_one(session, ids, *, region="xh", decided=DECIDED, status=CaseStatus.ACCEPTED, call_id=None, **kw):
    return cases.open_case(
        session, call_session_id=call_id, item_code=ids["item_code"], region_code=region,
        booth_id=ids["booth_id"], clerk_id=ids["clerk_id"], status=status,
        decided_at=decided, deadline=date(2026, 3, 9), **kw)


def test_open_case_numbers_and_logs(records_engine):
    ids = seed(records_engine)
    with Session(records_engine) as session:
        call = calls.create_call(session, booth_id=ids["booth_id"], item_code=ids["item_code"])
        first = open_one(session, ids, call_id=call.id)
        second = open_one(session, ids)
        session.commit()
        assert (first.number, second.number) == ("XH-2026-000001", "XH-2026-000002")
        assert (first.year, first.serial) == (2026, 1)
        assert re.fullmatch(r"[ABCDEFGHJKMNPQRSTUVWXYZ23456789]{8}", first.progress_code)
        opened = [e for e in list_events(session, session_id=call.id) if e.kind == "case.opened"]
        assert len(opened) == 1
        assert opened[0].data["number"] == "XH-2026-000001"
        assert opened[0].data["deadline"] == "2026-03-09"
        assert first.progress_code not in str(opened[0].data)
        assert verify_chains(session).ok


def test_numbering_restarts_per_year_and_per_region(records_engine):
    ids = seed(records_engine, regions=("xh", "gs"))
    # 2026-12-31 23:30 in Shanghai is still 2026 there; 00:30 on 1 January is 2027.
    new_year = datetime(2027, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=8)))
    with Session(records_engine) as session:
        numbers = [
            open_one(session, ids).number,
            open_one(session, ids).number,
            open_one(session, ids, region="gs").number,
            open_one(session, ids, decided=new_year).number,
            open_one(session, ids, region="gs", decided=new_year).number,
            open_one(session, ids).number,
        ]
        session.commit()
    assert numbers == ["XH-2026-000001", "XH-2026-000002", "GS-2026-000001",
                       "XH-2027-000001", "GS-2027-000001", "XH-2026-000003"]


def test_rolled_back_decision_returns_its_serial(records_engine):
    ids = seed(records_engine)
    with Session(records_engine) as session:
        open_one(session, ids)
        session.rollback()
        assert open_one(session, ids).number == "XH-2026-000001"


def test_concurrent_openers_get_unique_serials(records_engine):
    ids = seed(records_engine)
    url = records_engine.url.render_as_string(hide_password=False)
    threads, per_thread = 4, 10
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def worker() -> None:
        engine = make_engine(url)
        try:
            start.wait()
            for _ in range(per_thread):
                with Session(engine) as session:
                    open_one(session, ids)
                    session.commit()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            engine.dispose()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert errors == []
    with Session(records_engine) as session:
        serials = sorted(session.exec(select(Case.serial)))
        assert serials == list(range(1, threads * per_thread + 1))
        assert verify_chains(session).ok


def test_refusal_needs_reason_and_supplement_needs_materials(records_engine):
    ids = seed(records_engine)
    with Session(records_engine) as session:
        with pytest.raises(ValidationError) as info:
            open_one(session, ids, status=CaseStatus.REFUSED, reason="  ")
        assert info.value.code == "reason_required"
        with pytest.raises(ValidationError) as info:
            open_one(session, ids, status=CaseStatus.NEEDS_SUPPLEMENT)
        assert info.value.code == "missing_materials_required"
        refused = open_one(session, ids, status=CaseStatus.REFUSED, reason="不属于本事项受理范围")
        notice = open_one(session, ids, status=CaseStatus.NEEDS_SUPPLEMENT, missing_materials=["hukou"])
        session.commit()
        assert refused.reason and notice.missing_materials == ["hukou"]
        # nothing was drawn by the refused attempts: serials are 1 and 2
        assert (refused.serial, notice.serial) == (1, 2)


def test_case_status_transitions(records_engine):
    ids = seed(records_engine)
    with Session(records_engine) as session:
        notice = open_one(session, ids, status=CaseStatus.NEEDS_SUPPLEMENT, missing_materials=["hukou"])
        refused = open_one(session, ids, status=CaseStatus.REFUSED, reason="r")
        session.commit()
        cases.set_case_status(session, notice.id, CaseStatus.ACCEPTED, actor="user:1")
        cases.set_case_status(session, notice.id, CaseStatus.COMPLETED, actor="user:1")
        session.commit()
        assert notice.status == CaseStatus.COMPLETED
        with pytest.raises(InvalidTransitionError):
            cases.set_case_status(session, refused.id, CaseStatus.ACCEPTED, actor="user:1")
        session.rollback()
        kinds = [e.kind for e in list_events(session)]
        assert kinds.count("case.status_changed") == 2


def test_progress_check(records_engine):
    ids = seed(records_engine)
    with Session(records_engine) as session:
        case = open_one(session, ids)
        session.commit()
        number, code = case.number, case.progress_code
    with Session(records_engine) as session:
        view = cases.check_progress(session, number, code.lower())
        assert view is not None
        assert (view.number, view.status, view.deadline) == (number, CaseStatus.ACCEPTED, date(2026, 3, 9))
        assert view.item_name_zh == "社保参保登记"
        assert not hasattr(view, "progress_code") and not hasattr(view, "clerk_id")
        wrong = ("A" if code[0] != "A" else "B") + code[1:]
        assert cases.check_progress(session, number, wrong) is None
        assert cases.check_progress(session, number, "") is None
        assert cases.check_progress(session, "XH-2026-999999", code) is None
        assert cases.get_case_by_number(session, number.lower()).id == case.id
