"""ID numbers: the GB 11643 check digit, validation with stable codes, the one masking rule, the vault."""

from __future__ import annotations

import time

import pytest

from records.errors import ValidationError
from records.privacy import (IdCardVault, LiveIdCard, id_check_digit, mask_id_number, validate_id_name,
                             validate_id_number, vault_of)

GOOD = "11010519491231002X"  # the example printed in GB 11643-1999 itself


def with_check(first17: str) -> str:
    return first17 + id_check_digit(first17)


def test_check_digit_of_the_standard_example_and_of_ordinary_numbers():
    assert id_check_digit(GOOD[:17]) == "X"
    assert id_check_digit("44052418800101001") == "4"  # another published example
    with pytest.raises(ValueError):
        id_check_digit("1234")


@pytest.mark.parametrize("raw", [GOOD, GOOD.lower(), f"  {GOOD} ", with_check("32010619900307123")])
def test_valid_numbers_are_normalised(raw):
    assert validate_id_number(raw) == raw.strip().upper()


@pytest.mark.parametrize("raw, code", [
    ("11010519491231002", "id_number_invalid"),  # 17 characters
    ("11010519491231002X1", "id_number_invalid"),  # 19
    ("01010519491231002X", "id_number_invalid"),  # a region code never starts with 0
    ("1101051949123100XX", "id_number_invalid"),  # X only as the check character
    ("11010519491331002X", "id_number_invalid"),  # month 13
    ("11010519490230002X", "id_number_invalid"),  # 30 February
    (with_check("11010530000101001"), "id_number_invalid"),  # born in the future
    ("110105194912310021", "id_number_checksum"),  # the check character is X, not 1
    ("320106199003071230" if with_check("32010619900307123")[-1] != "0" else "320106199003071231",
     "id_number_checksum"),
    ("１１０１０５１９４９１２３１００２Ｘ", "id_number_invalid"),  # full-width digits
    (110105194912310020, "id_number_invalid"),  # not a string
])
def test_invalid_numbers_are_refused_with_a_stable_code(raw, code):
    with pytest.raises(ValidationError) as caught:
        validate_id_number(raw)
    assert caught.value.code == code
    if isinstance(raw, str) and len(raw) == 18:
        assert raw[6:14] not in caught.value.message  # the message never carries the birth date


def test_masking_keeps_region_and_last_four_only():
    assert mask_id_number("110105199001011234") == "110105********1234"
    assert mask_id_number(GOOD) == "110105********002X"
    assert mask_id_number("110105900101123") == "110105*****1123"  # a 15-digit first-generation number
    assert mask_id_number("12345678") == "****5678"
    assert mask_id_number("123") == "***"
    assert mask_id_number("") == ""


@pytest.mark.parametrize("name, ok", [("张三", True), ("阿依古丽·买买提", True), (" 王五 ", True), ("", False),
                                      ("  ", False), ("<b>李</b>", False), ("李\x00", False), ("长" * 31, False)])
def test_names(name, ok):
    if ok:
        assert validate_id_name(name) == name.strip()
    else:
        with pytest.raises(ValidationError) as caught:
            validate_id_name(name)
        assert caught.value.code == "id_name_invalid"


def test_the_vault_keeps_one_card_per_call_and_forgets():
    vault = IdCardVault()
    vault.put(LiveIdCard("c1", "张三", GOOD, 1))
    vault.put(LiveIdCard("c1", "张三", with_check("32010619900307123"), 2))  # a newer read replaces the old one
    card = vault.get("c1")
    assert card is not None and card.material_id == 2 and card.masked.startswith("320106")
    assert GOOD not in repr(card) and card.number not in repr(card)  # never in a log line by accident
    vault.forget("c1")
    assert vault.get("c1") is None and len(vault) == 0


def test_the_vault_drops_cards_older_than_any_call_and_stays_bounded():
    vault = IdCardVault(max_age_s=60, max_entries=2)
    vault.put(LiveIdCard("old", "甲", GOOD, 1, read_at=time.monotonic() - 120))
    assert vault.get("old") is None
    for n in range(3):
        vault.put(LiveIdCard(f"c{n}", "乙", GOOD, n))
    assert len(vault) == 2 and vault.get("c0") is None and vault.get("c2") is not None


def test_vault_of_makes_one_vault_per_app_state():
    class State:
        pass

    state = State()
    assert vault_of(state) is vault_of(state)
