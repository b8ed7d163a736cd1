"""Capture, gallery, ticks and the clerk's decision over the real HTTP routes and sockets.

A Python booth and clerk (protocol clients) hold a live call; the booth uploads a still, the
clerk views and ticks it and decides; the document comes down to the booth, which reports it
printed.  The deadline counts working days of the region's calendar (holidays skipped).
"""

from __future__ import annotations

import hashlib
import io
import re
from contextlib import closing
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from PIL import Image

from records.models import Case, CaseStatus, Event, PrintJob, PrintStatus
from signaling.service_hours import WorkCalendar
from tests.pdf_text import pdf_text
from tests.signaling_fixtures import PASSWORD, World, clients, rows, world
from tests.web_clients import anonymous_client, booth_client, login

ITEM = "SB-004"  # 社会保障卡补领换领: 5 working days; id_card and photo mandatory
ZONE = ZoneInfo("Asia/Shanghai")
ALL_DAY = [{"start": "00:00", "end": "23:59"}]


def holiday_hours(today: date) -> dict[str, Any]:
    """Open every day and all day, but the three days after today are public holidays."""
    return {"timezone": "Asia/Shanghai", "weekdays": ALL_DAY, "saturday": ALL_DAY, "sunday": ALL_DAY,
            "holidays": [(today + timedelta(days=d)).isoformat() for d in (1, 2, 3)]}


def expected_deadline(today: date, n: int, holidays: set[date]) -> date:
    day = today
    while n:
        day += timedelta(days=1)
        if day.weekday() < 5 and day not in holidays:
            n -= 1
    return day


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 180, 120)).save(out, "PNG")
    return out.getvalue()



async def live_call(w: World, booth: Any, clerk: Any, item: str = ITEM) -> str:
    call_id = (await booth.request("call.request", item_code=item))["call_id"]
    await clerk.wait_for("offer", lambda m: m["call_id"] == call_id)
    await clerk.request("offer.accept", call_id=call_id)
    await booth.wait_for("call.connected", lambda m: m["call_id"] == call_id)
    return str(call_id)


def upload(http: Any, call_id: str, data: bytes, content_type: str = "image/png") -> Any:
    return http.post("/api/booth/materials", data={"call_id": call_id},
                     files={"file": ("doc.png", data, content_type)})


async def test_capture_tick_accept_print_and_progress(app_settings):
    today = datetime.now(ZONE).date()
    hours = holiday_hours(today)
    with world(app_settings, regions={"east": hours, "west": {}}) as w:
        booth, clerk = await w.booth("b1"), await w.clerk("c1")
        other_booth = await w.booth("b2")
        async with clients(booth, clerk, other_booth):
            call_id = await live_call(w, booth, clerk)
            with closing(booth_client(w.url, w.tokens["b1"])) as b1, \
                    closing(booth_client(w.url, w.tokens["b2"])) as b2, \
                    closing(login(w.url, "c1", PASSWORD)) as c1, \
                    closing(login(w.url, "c2", PASSWORD)) as c2, \
                    closing(anonymous_client(w.url)) as anon:
                # The clerk asks for a capture: the booth is pushed capture.request.
                assert c1.post(f"/api/seat/calls/{call_id}/capture", json={"material_code": "id_card"}).status_code == 202
                request = await booth.wait_for("capture.request")
                assert request == {"type": "capture.request", "call_id": call_id, "material_code": "id_card"}
                assert c2.post(f"/api/seat/calls/{call_id}/capture", json={}).status_code == 404

                # The booth uploads a still: validated, hashed, sized; the clerk is told.
                data = png(1600, 1200)
                made = upload(b1, call_id, data)
                assert made.status_code == 201, made.text
                material = made.json()
                assert (material["width"], material["height"]) == (1600, 1200)
                assert material["sha256"] == hashlib.sha256(data).hexdigest()
                added = await clerk.wait_for("material.added")
                assert added["material_id"] == material["material_id"] and added["sha256"] == material["sha256"]
                assert (added["width"], added["height"]) == (1600, 1200)
                assert upload(b1, call_id, b"not an image").json()["error"]["code"] == "content_mismatch"
                assert upload(b2, call_id, data).status_code == 404  # another booth's call

                # Gallery, bytes (logged), tick; another clerk sees none of it.
                listed = c1.get(f"/api/seat/calls/{call_id}/materials").json()["materials"]
                assert [m["material_id"] for m in listed] == [material["material_id"]]
                image = c1.get(f"/api/seat/materials/{material['material_id']}")
                assert image.status_code == 200 and image.content == data
                assert image.headers["content-type"] == "image/png"
                assert c2.get(f"/api/seat/calls/{call_id}/materials").status_code == 404
                assert c2.get(f"/api/seat/materials/{material['material_id']}").status_code == 404
                viewed = rows(w, Event, Event.kind == "material.viewed")
                assert len(viewed) == 1 and viewed[0].actor == f"user:{w.clerk_ids['c1']}"
                ticked = c1.post(f"/api/seat/materials/{material['material_id']}/tick", json={"checklist_code": "id_card"})
                assert ticked.status_code == 200 and ticked.json()["checklist_code"] == "id_card"
                assert c1.post(f"/api/seat/materials/{material['material_id']}/tick",
                               json={"checklist_code": "nope"}).json()["error"]["code"] == "unknown_checklist_code"

                # Refusals of ill-formed decisions, and of anyone but the serving clerk.
                decide = f"/api/seat/calls/{call_id}/decision"
                assert c1.post(decide, json={"outcome": "refuse"}).json()["error"]["code"] == "reason_required"
                assert c1.post(decide, json={"outcome": "supplement"}).json()["error"]["code"] \
                    == "missing_materials_required"
                assert c1.post(decide, json={"outcome": "maybe"}).json()["error"]["code"] == "invalid_outcome"
                assert c1.post(decide, json={"outcome": "supplement", "missing_materials": ["x9"]}
                               ).json()["error"]["code"] == "unknown_checklist_code"
                assert c2.post(decide, json={"outcome": "accept"}).status_code == 404
                assert rows(w, Case) == []  # nothing half-done

                # 受理 with a mandatory material (photo) unticked needs the clerk to name exactly it.
                for confirm in ([], ["id_card"], ["photo", "id_card"]):
                    refused = c1.post(decide, json={"outcome": "accept", "accept_without": confirm})
                    assert refused.status_code == 409 and refused.json()["error"]["code"] == "materials_unticked"
                    assert "photo" in refused.json()["error"]["message"]
                assert c1.post(decide, json={"outcome": "refuse", "reason": "x", "accept_without": ["photo"]}
                               ).json()["error"]["code"] == "invalid"
                assert rows(w, Case) == []

                # 受理: case number, deadline across the holidays, the receipt pushed to the booth.
                accepted = c1.post(decide, json={"outcome": "accept", "accept_without": ["photo"]})
                assert accepted.status_code == 201, accepted.text
                body = accepted.json()
                number = body["case"]["number"]
                assert re.fullmatch(rf"EAST-{today.year}-000001", number)
                holidays = {date.fromisoformat(d) for d in hours["holidays"]}
                deadline = expected_deadline(today, 5, holidays)
                assert body["case"]["deadline"] == deadline.isoformat()
                assert deadline > expected_deadline(today, 5, set())  # the holidays did count
                push = await booth.wait_for("print.request")
                job_id = body["print_job"]["id"]
                assert push == {"type": "print.request", "call_id": call_id, "print_job_id": job_id,
                                "document": "receipt", "case_number": number,
                                "url": f"/api/booth/print-jobs/{job_id}.pdf"}
                assert body["print_job"]["status"] == "sent"
                assert c1.post(decide, json={"outcome": "accept", "accept_without": ["photo"]}
                               ).json()["error"]["code"] == "already_decided"
                waived = rows(w, Event, Event.kind == "case.accepted_without_materials")
                assert len(waived) == 1 and waived[0].actor == f"user:{w.clerk_ids['c1']}"
                assert waived[0].data["case_number"] == number and waived[0].session_id == call_id
                assert [m["code"] for m in waived[0].data["materials"]] == ["photo"]

                pdf = b1.get(push["url"])
                assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
                assert pdf.content.startswith(b"%PDF-")
                text = pdf_text(pdf.content)
                case = rows(w, Case, Case.number == number)[0]
                assert "受理通知书" in text and number in text and "社会保障卡补领换领" in text
                assert f"{deadline.year}年{deadline.month}月{deadline.day}日" in text
                assert "b1" in text and "C1" in text and case.progress_code in text
                assert f"http://127.0.0.1:8000/progress?case={number}&code={case.progress_code}" in text
                assert b2.get(push["url"]).status_code == 404  # another booth's job

                printed = b1.post(f"/api/booth/print-jobs/{job_id}/result", json={"status": "printed"})
                assert printed.status_code == 200, printed.text
                result = await clerk.wait_for("print.result")
                assert result["print_job_id"] == job_id and result["status"] == "printed"
                assert rows(w, PrintJob, PrintJob.id == job_id)[0].status is PrintStatus.PRINTED
                assert b1.post(f"/api/booth/print-jobs/{job_id}/result", json={"status": "printed"}).status_code == 409

                # The public progress page: the right code shows the status, nothing personal.
                page = anon.get(f"/progress?case={number}&code={case.progress_code}", headers={"accept": "text/html"})
                assert page.status_code == 200
                assert number in page.text and "已受理" in page.text and deadline.isoformat() in page.text
                for personal in ("b1", "C1", "c1", case.progress_code):
                    assert personal not in page.text.replace(f"code={case.progress_code}", "")
                for attempt in range(10):
                    wrong = anon.get(f"/progress?case={number}&code=WRONGCD{attempt}")
                    assert wrong.status_code == 404
                assert anon.get(f"/progress?case={number}&code=WRONGCDX").status_code == 429
                blocked = anon.get(f"/progress?case={number}&code={case.progress_code}")
                assert blocked.status_code == 429 and "查询错误次数过多" in blocked.text
                assert case.status is CaseStatus.ACCEPTED and case.deadline == deadline


async def test_refusal_and_supplement_documents(app_settings):
    with world(app_settings) as w:
        booth, clerk = await w.booth("b1"), await w.clerk("c1")
        async with clients(booth, clerk):
            with closing(booth_client(w.url, w.tokens["b1"])) as b1, closing(login(w.url, "c1", PASSWORD)) as c1:
                call_id = await live_call(w, booth, clerk)
                refused = c1.post(f"/api/seat/calls/{call_id}/decision",
                                  json={"outcome": "refuse", "reason": "不属于本事项受理范围"})
                assert refused.status_code == 201
                assert refused.json()["case"]["deadline"] is None
                push = await booth.wait_for("print.request")
                assert push["document"] == "refusal"
                text = pdf_text(b1.get(push["url"]).content)
                assert "不予受理通知书" in text and "不属于本事项受理范围" in text
                failed = b1.post(f"/api/booth/print-jobs/{push['print_job_id']}/result", json={"status": "failed"})
                assert failed.json()["error"]["code"] == "error_required"
                b1.post(f"/api/booth/print-jobs/{push['print_job_id']}/result",
                        json={"status": "failed", "error": "paper_out"})
                assert (await clerk.wait_for("print.result"))["error"] == "paper_out"
                await clerk.request("call.end", call_id=call_id)
                assert c1.post(f"/api/seat/calls/{call_id}/capture", json={}).json()["error"]["code"] \
                    == "call_not_active"
                await clerk.request("wrapup.done")

                call_id = await live_call(w, booth, clerk)
                notice = c1.post(f"/api/seat/calls/{call_id}/decision",
                                 json={"outcome": "supplement", "missing_materials": ["photo", "id_card"]})
                assert notice.status_code == 201
                push = await booth.wait_for("print.request")
                text = pdf_text(b1.get(push["url"]).content)
                assert "补正材料一次性告知书" in text
                assert "1. 近期免冠彩色证件照" in text and "2. 居民身份证原件" in text
                case = rows(w, Case, Case.session_id == call_id)[0]
                assert case.status is CaseStatus.NEEDS_SUPPLEMENT and case.missing_materials == ["photo", "id_card"]
                assert case.number.endswith("000002")


def test_region_calendar_counts_working_weekends():
    from signaling.service_hours import add_working_days, calendar_of

    hours = {"weekdays": ALL_DAY, "holidays": [f"2025-10-0{d}" for d in range(1, 9)],
             "working_weekends": ["2025-10-11"]}
    zone, calendar = calendar_of(hours, "Asia/Shanghai", region="x")
    assert str(zone) == "Asia/Shanghai"
    # 国庆: 1-8 Oct off, Saturday 11 Oct worked (调休).
    assert add_working_days(date(2025, 9, 30), 5, calendar) == date(2025, 10, 14)
    assert calendar_of(None, "Asia/Shanghai")[1] == WorkCalendar()
    assert calendar_of({"weekdays": "nonsense"}, "Asia/Shanghai")[1] == WorkCalendar()  # invalid: Mon-Fri


async def test_a_kiosk_without_an_agent_reports_browser_not_printed(app_settings):
    with world(app_settings) as w:
        booth, clerk = await w.booth("b1"), await w.clerk("c1")
        async with clients(booth, clerk):
            with closing(booth_client(w.url, w.tokens["b1"])) as b1, closing(login(w.url, "c1", PASSWORD)) as c1:
                call_id = await live_call(w, booth, clerk)
                decided = c1.post(f"/api/seat/calls/{call_id}/decision", json={"outcome": "refuse", "reason": "不属于本事项"})
                assert decided.status_code == 201, decided.text
                job_id = (await booth.wait_for("print.request"))["print_job_id"]
                handed = b1.post(f"/api/booth/print-jobs/{job_id}/result", json={"status": "browser"})
                assert handed.status_code == 200 and handed.json()["status"] == "browser"
                result = await clerk.wait_for("print.result", lambda m: m["print_job_id"] == job_id)
                assert result["status"] == "browser"
                # Recorded as what is known: handed to the browser's dialog, not printed.
                assert rows(w, PrintJob, PrintJob.id == job_id)[0].status is PrintStatus.SENT
                kinds = [e.kind for e in rows(w, Event, Event.session_id == call_id)]
                assert "print.browser" in kinds and "print.printed" not in kinds
