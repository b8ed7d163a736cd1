"""Bad input on the real server: a clear `invalid` naming the field, the socket kept, nothing in the log.

Lone surrogates (valid JSON, not valid Unicode), date-times that match the pattern but do not
exist, and integers no database id column holds. Before these checks a chat line with a lone
surrogate dropped the clerk's socket without a close frame and never reached the event log.
"""

from __future__ import annotations

import json
import logging
from contextlib import closing

import pytest

from records.models import Event
from tests.signaling_fixtures import PASSWORD, rows, world
from tests.web_clients import booth_client, login

CALL = "00000000-0000-4000-8000-000000000000"
BIG = 2**63


def raw_frame(**fields: object) -> str:
    """JSON with ASCII escapes, as a broken client would send it (`"\\ud800"` stays a lone surrogate)."""
    return json.dumps(fields, ensure_ascii=True)


async def refused(client, request_id: str, **fields: object) -> dict:
    await client.send_raw(raw_frame(id=request_id, **fields))
    return await client.wait_for("error", lambda m: m.get("re") == request_id)


def assert_no_error_logged(caplog: pytest.LogCaptureFixture) -> None:
    loud = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert loud == [], [r.getMessage() for r in loud]


async def test_lone_surrogates_in_relayed_text_are_refused_and_the_call_goes_on(app_settings, caplog):
    caplog.set_level(logging.INFO)
    with world(app_settings) as w:
        clerk = await w.clerk("c1")
        booth = await w.booth("b1")
        try:
            call_id = (await booth.request("call.request", item_code=w.item_by_skill["social_insurance"]))["call_id"]
            await clerk.wait_for("offer")
            await clerk.request("offer.accept", call_id=call_id)
            await booth.wait_for("call.connected")

            error = await refused(clerk, "bad-chat", type="chat.send", call_id=call_id, text="请\ud800出示")
            assert error["code"] == "invalid" and "text" in error["message"]
            error = await refused(booth, "bad-key", type="chat.send", call_id=call_id, text="x", **{"\udc00": 1})
            assert error["code"] == "invalid"

            # Both sockets are still open and the call still relays and logs chat.
            await clerk.request("chat.send", call_id=call_id, text="请出示身份证")
            assert (await booth.wait_for("chat.message"))["text"] == "请出示身份证"
            await clerk.request("call.end", call_id=call_id)
            await booth.wait_for("call.ended")
            error = await refused(clerk, "bad-note", type="wrapup.done", note="\ud83d")
            assert error["code"] == "invalid" and "note" in error["message"]
            assert (await clerk.request("wrapup.done", note="办结"))["status"] == "available"
            assert clerk.close_code is None and booth.close_code is None
        finally:
            await booth.close()
            await clerk.close()
        chats = [e.data["text"] for e in rows(w, Event, Event.kind == "chat.message")]
        assert chats == ["请出示身份证"]
    assert_no_error_logged(caplog)


@pytest.mark.parametrize("slot_start", [
    "2027-02-30T10:00:00+08:00",  # no 30 February
    "2027-03-01T25:00:00+08:00",  # no hour 25
    "2027-03-01T10:61:00+08:00",
    "2027-03-01T10:00:00+25:00",  # no such offset
])
async def test_date_times_that_do_not_exist_are_invalid_naming_the_field(app_settings, caplog, slot_start):
    with world(app_settings) as w:
        booth = await w.booth("b1")
        try:
            error = await refused(booth, "slot", type="appointment.book",
                                  item_code=w.item_by_skill["social_insurance"], slot_start=slot_start)
            assert error["code"] == "invalid" and "slot_start" in error["message"]
            assert booth.close_code is None
        finally:
            await booth.close()
    assert_no_error_logged(caplog)


async def test_integers_past_64_bits_are_invalid_on_the_socket(app_settings, caplog):
    with world(app_settings) as w:
        booth, clerk = await w.booth("b1"), await w.clerk("c1")
        try:
            item = w.item_by_skill["social_insurance"]
            error = await refused(booth, "big-appt", type="call.request", item_code=item, appointment_id=BIG)
            assert error["code"] == "invalid" and "appointment_id" in error["message"]
            error = await refused(clerk, "big-clerk", type="call.transfer", call_id=CALL, to_clerk_id=BIG)
            assert error["code"] == "invalid" and "to_clerk_id" in error["message"]
            # The booth can still call.
            assert (await booth.request("call.request", item_code=item))["call_id"]
        finally:
            await booth.close()
            await clerk.close()
    assert_no_error_logged(caplog)


def test_http_apis_refuse_surrogates_and_huge_ids_as_invalid(app_settings, caplog):
    with world(app_settings) as w:
        with closing(booth_client(w.url, w.tokens["b1"])) as booth:
            body = '{"call_id": "%s", "level": 5, "comment": "\\ud800"}' % CALL
            response = booth.post("/api/booth/ratings", content=body, headers={"content-type": "application/json"})
            assert response.status_code == 400 and response.json()["error"]["code"] == "invalid"
            assert "comment" in response.json()["error"]["message"]
            response = booth.post("/api/booth/ratings", json={"call_id": CALL, "level": BIG})
            assert response.status_code == 400 and response.json()["error"]["code"] == "invalid"
            response = booth.post(f"/api/booth/print-jobs/{BIG}/result", json={"status": "printed"})
            assert response.status_code == 400 and response.json()["error"]["code"] == "invalid"
            assert "job_id" in response.json()["error"]["message"]
            # A huge id that fits is simply not found, as before.
            response = booth.post(f"/api/booth/print-jobs/{BIG - 1}/result", json={"status": "printed"})
            assert response.status_code == 404
    assert_no_error_logged(caplog)


@pytest.mark.parametrize("path, code", [("/api/supervise/stats", "invalid_date"), ("/api/supervise/stats.csv", "invalid_date"),
                                        ("/api/supervise/sessions", "invalid")])
def test_date_query_parameters_at_the_edges_of_the_calendar_are_refused_not_a_500(app_settings, caplog, path, code):
    with world(app_settings) as w, closing(login(w.url, "sup", PASSWORD)) as sup:
        for name in ("from", "to"):
            for raw in ("0001-01-01", "9999-12-31", "20261207", "2026-W49-1", "2026-02-30", "２０２６-01-01"):
                response = sup.get(path, params={name: raw})
                assert response.status_code == 400, (name, raw, response.status_code, response.text[:200])
                assert response.json()["error"]["code"] == code and name in response.json()["error"]["message"]
        assert sup.get(path, params={"from": "2026-01-01", "to": "2026-01-31"}).status_code == 200
    assert_no_error_logged(caplog)


@pytest.mark.parametrize("path", ["/supervise/stats", "/supervise/sessions"])
def test_date_query_parameters_of_the_pages_are_refused_not_a_500(app_settings, caplog, path):
    with world(app_settings) as w, closing(login(w.url, "sup", PASSWORD)) as sup:
        page = sup.get(path, params={"to": "9999-12-31"}, headers={"accept": "text/html"})
        assert page.status_code == 400, page.status_code
    assert_no_error_logged(caplog)
