"""Protocol parsing: every bad frame gets a stable code, every good one a typed message."""

from __future__ import annotations

import json
import uuid

import pytest

from signaling.protocol import (
    MAX_MESSAGE_BYTES,
    MESSAGE_TYPES,
    CallRequest,
    CallTransfer,
    DeviceStatus,
    PresenceSet,
    ProtocolError,
    encode,
    parse_message,
    reply_error,
)

CALL = str(uuid.uuid4())


def frame(**obj) -> str:
    return json.dumps(obj)


def code_of(raw, role="booth") -> str:
    with pytest.raises(ProtocolError) as info:
        parse_message(raw, role)
    return info.value.code


def test_good_messages_parse_to_their_types():
    msg = parse_message(frame(type="call.request", id="r1", item_code="SB-001", priority=True), "booth")
    assert msg == CallRequest(item_code="SB-001", priority=True, id="r1")
    status = parse_message(frame(type="device.status", devices={"printer": "paper_out"}), "booth")
    assert isinstance(status, DeviceStatus) and status.devices == {"printer": "paper_out"}
    assert parse_message(frame(type="presence.set", status="not_ready", reason="break"), "seat") == \
        PresenceSet(status="not_ready", reason="break")
    assert parse_message(frame(type="call.transfer", call_id=CALL, to_skill="medical", note="医保"), "seat") == \
        CallTransfer(call_id=CALL, to_skill="medical", note="医保")


@pytest.mark.parametrize("raw, code", [
    ("not json", "bad_json"),
    ("[1, 2]", "bad_message"),
    (frame(id="x"), "bad_message"),
    (frame(type="teleport"), "unknown_type"),
    (frame(type="ping", v=2), "unsupported_version"),
    (frame(type="call.request"), "invalid"),  # missing item_code
    (frame(type="call.request", item_code="SB 001"), "invalid"),
    (frame(type="call.request", item_code="SB-001", priority="yes"), "invalid"),
    (frame(type="call.request", item_code="SB-001", extra=1), "invalid"),
    (frame(type="call.request", item_code="SB-001", id="bad id!"), "invalid"),
    (frame(type="call.cancel", call_id="123"), "invalid"),
    (frame(type="device.status", devices={"toaster": "ok"}), "invalid"),
    (frame(type="device.status", devices={"printer": "on fire"}), "invalid"),
    (frame(type="device.status", devices={}), "invalid"),
    (frame(type="appointment.book", item_code="SB-001", slot_start="tomorrow"), "invalid"),
    (frame(type="appointment.book", item_code="SB-001", slot_start="2027-02-30T10:00+08:00"), "invalid"),
    (frame(type="appointment.book", item_code="SB-001", slot_start="2027-03-01T10:00+25:00"), "invalid"),
    ('{"type": "chat.send", "call_id": "%s", "text": "\\ud800"}' % CALL, "invalid"),
    ('{"type": "device.status", "devices": {"printer": "\\udfff"}}', "invalid"),
    (frame(type="call.request", item_code="SB-001", appointment_id=2**63), "invalid"),
    ('{"type": "call.request", "item_code": "SB-001", "appointment_id": NaN}', "bad_json"),
    (frame(type="presence.set", status="available"), "not_allowed"),  # a booth is not a clerk
    (b'{"type": "ping"}', "binary_frame"),
    ("x" * (MAX_MESSAGE_BYTES + 1), "too_big"),
])
def test_bad_frames_get_stable_codes(raw, code):
    assert code_of(raw) == code


@pytest.mark.parametrize("obj", [
    {"type": "presence.set", "status": "not_ready"},
    {"type": "presence.set", "status": "available", "reason": "break"},
    {"type": "presence.set", "status": "in_call"},
    {"type": "call.transfer", "call_id": CALL},
    {"type": "call.transfer", "call_id": CALL, "to_skill": "a", "to_clerk_id": 2},
    {"type": "offer.decline", "call_id": CALL, "reason": "   "},
    {"type": "chat.send", "call_id": CALL, "text": "x" * 1001},
])
def test_clerk_message_rules(obj):
    assert code_of(frame(**obj), "seat") == "invalid"


def test_the_request_id_survives_into_the_error_reply():
    with pytest.raises(ProtocolError) as info:
        parse_message(frame(type="call.request", id="q-7"), "booth")
    assert info.value.request_id == "q-7"
    reply = reply_error(info.value.request_id, info.value.code, info.value.message)
    assert json.loads(encode(reply))["re"] == "q-7"


def test_every_message_type_is_documented():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text(encoding="utf-8")
    missing = [t for t in MESSAGE_TYPES if f"`{t}`" not in doc]
    assert not missing, f"docs/protocol.md lacks {missing}"
