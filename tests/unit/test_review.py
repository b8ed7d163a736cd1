"""Pure helpers of the review: segments of a recording path, content types, time formats, event details."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from records.models import Recording
from records.review import recording_content_type, recording_segment
from seat.supervise_review import clock, event_detail, local_time

CALL = "8c1d2a34-5b6c-4d7e-8f90-a1b2c3d4e5f6"


def rec(track: str, codec: str, suffix: str) -> Recording:
    return Recording(session_id=CALL, track=track, path=f"recordings/{CALL}/{track}{suffix}", codec=codec,
                     duration_s=1.0, size=1, sha256="0" * 64)


def test_segments_follow_the_directory_suffix():
    assert recording_segment(f"recordings/{CALL}/booth-face-1.webm") == 1
    assert recording_segment(f"recordings/{CALL}.2/booth-face-1.webm") == 2
    assert recording_segment(f"recordings/{CALL}.13/x.mkv") == 13
    assert recording_segment("elsewhere/file.webm") == 1


def test_content_types_browsers_play():
    assert recording_content_type(rec("booth-face", "VP8", ".webm")) == "video/webm"
    assert recording_content_type(rec("booth-audio", "opus", ".webm")) == "audio/webm"
    assert recording_content_type(rec("booth-face", "H264", ".mkv")) == "video/x-matroska"


def test_clock_and_local_time():
    assert clock(None) == "" and clock(0) == "0:00" and clock(65.9) == "1:05" and clock(3725) == "1:02:05"
    assert local_time("2026-03-01T01:30:05+00:00", ZoneInfo("Asia/Shanghai")) == "2026-03-01 09:30:05"
    assert local_time(None, ZoneInfo("Asia/Shanghai")) == ""


def test_event_details_say_what_happened():
    assert event_detail({"kind": "chat.message", "data": {"text": "请出示身份证"}}) == ("请出示身份证", "请出示身份证")
    zh, en = event_detail({"kind": "case.opened", "data": {"status": "accepted", "number": "EAST-2026-000001"}})
    assert zh == "受理 · EAST-2026-000001" and en == "Accepted · EAST-2026-000001"
    assert event_detail({"kind": "rating.given", "data": {"level": 2, "comment": "慢"}})[1] == "Dissatisfied 慢"
    assert event_detail({"kind": "recording.played", "data": {"track": "booth-face"}}) == ("居民人像", "Resident camera")
    assert event_detail({"kind": "unknown.kind", "data": {}}) == ("", "")
