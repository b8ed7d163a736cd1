"""Pure parts of the event log: the canonical form and the hash formula."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta, timezone

import pytest

from records.errors import RecordsError, ValidationError
from records.events import GENESIS_HASH, chain_hash, canonical_json
from records.models import CaseStatus


def test_canonical_json_sorts_keys_without_spaces_and_keeps_unicode():
    assert canonical_json({"b": 1, "a": [1, "西湖"]}) == '{"a":[1,"西湖"],"b":1}'.encode("utf-8")


def test_canonical_json_datetimes_are_utc_with_microseconds():
    shanghai = timezone(timedelta(hours=8))
    aware = datetime(2026, 3, 1, 17, 30, tzinfo=shanghai)
    naive_utc = datetime(2026, 3, 1, 9, 30)
    expected = b'"2026-03-01T09:30:00.000000+00:00"'
    assert canonical_json(aware) == expected
    assert canonical_json(naive_utc) == expected
    assert canonical_json(date(2026, 3, 2)) == b'"2026-03-02"'


def test_canonical_json_enums_become_values():
    assert canonical_json({"s": CaseStatus.REFUSED}) == b'{"s":"refused"}'


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), {1, 2}, object()])
def test_canonical_json_rejects_values_without_one_form(bad):
    with pytest.raises(ValidationError) as info:
        canonical_json({"x": bad})
    assert isinstance(info.value, RecordsError)
    assert info.value.code == "non_canonical_value"


def test_chain_hash_is_sha256_of_prev_hex_then_canonical_json():
    fields = {"seq": 1, "kind": "k", "data": {}}
    expected = hashlib.sha256(GENESIS_HASH.encode("ascii") + b'{"data":{},"kind":"k","seq":1}').hexdigest()
    assert chain_hash(GENESIS_HASH, fields) == expected
    assert chain_hash("1" * 64, fields) != expected
