"""Phone normalisation and masking rules (server.domain.phone)."""

from __future__ import annotations

import phonenumbers
import pytest

from server.domain.phone import (
    REASON_EMPTY,
    REASON_FORMAT,
    REASON_INVALID,
    REASON_NO_COUNTRY_CODE,
    _format_e164,
    check_region,
    looks_like_phone,
    mask_phone,
    normalize_phone,
    phone_outcome,
    phone_outcomes,
)

VALID = ["+14155552671", "+442071838750", "+919876543210", "+81312345678", "+61212345678"]


@pytest.mark.parametrize("number", VALID)
def test_exact_e164_is_valid_and_not_normalized(number: str) -> None:
    result = normalize_phone(number, None)
    assert result.ok and result.e164 == number and result.normalized is False
    assert result.reason is None


def test_test_numbers_are_valid_in_installed_metadata() -> None:
    for number in VALID:
        assert phonenumbers.is_valid_number(phonenumbers.parse(number, None))


@pytest.mark.parametrize(
    "raw",
    ["+1 415 555 2671", "+1-415-555-2671", "+1.415.555.2671", "+1 (415) 555-2671", "  +14155552671 "],
)
def test_plus_number_with_punctuation_is_normalized(raw: str) -> None:
    result = normalize_phone(raw, None)
    assert result.e164 == "+14155552671"
    assert result.normalized is (raw.strip() != "+14155552671")


def test_surrounding_spaces_alone_do_not_count_as_normalized() -> None:
    assert normalize_phone("  +14155552671 ", None).normalized is False


def test_national_number_without_region_is_invalid() -> None:
    result = normalize_phone("(415) 555-2671", None)
    assert not result.ok and result.reason == REASON_NO_COUNTRY_CODE


def test_national_number_with_default_region_is_normalized() -> None:
    result = normalize_phone("(415) 555-2671", "US")
    assert result.e164 == "+14155552671" and result.normalized is True
    assert normalize_phone("020 7183 8750", "GB").e164 == "+442071838750"


def test_00_international_prefix_is_rejected_even_with_region() -> None:
    for region in (None, "GB"):
        result = normalize_phone("00442071838750", region)
        assert not result.ok and "00" in (result.reason or "")


def test_invalid_for_country_is_rejected() -> None:
    result = normalize_phone("+14155", None)
    assert not result.ok
    result = normalize_phone("+11234567890", None)  # US area codes never start with 1
    assert result.reason == REASON_INVALID


@pytest.mark.parametrize("raw", ["+1-800-FLOWERS", "+1415555267a", "+14155552671 ext 5", "call me"])
def test_letters_are_invalid(raw: str) -> None:
    result = normalize_phone(raw, "US")
    assert not result.ok and "letters" in (result.reason or "")


def test_spreadsheet_scientific_notation_gets_a_specific_reason() -> None:
    result = normalize_phone("1.41555E+10", "US")
    assert not result.ok and "spreadsheet" in (result.reason or "")


@pytest.mark.parametrize("raw", ["+1415#5552671", "+1 415 555 2671;", "１４１５５５５２６７１", "+1415*555"])
def test_other_symbols_are_invalid(raw: str) -> None:
    assert not normalize_phone(raw, "US").ok


def test_plus_in_the_middle_is_invalid() -> None:
    assert normalize_phone("1+4155552671", "US").reason == REASON_FORMAT


def test_empty_and_blank() -> None:
    assert normalize_phone("", None).reason == REASON_EMPTY
    assert normalize_phone("   ", "US").reason == REASON_EMPTY


def test_unknown_country_code_and_too_long() -> None:
    assert not normalize_phone("+999123456789", None).ok
    assert not normalize_phone("+1415555267112345678", None).ok
    assert not normalize_phone("+" + "1" * 60, None).ok


def test_outcome_is_e164_or_reason_and_bulk_matches_single() -> None:
    raws = VALID + ["+1 415 555 2671", "", "abc", "+1415"]
    outcomes = phone_outcomes(raws, None)
    assert outcomes == [phone_outcome(r, None) for r in raws]
    for raw, outcome in zip(raws, outcomes):
        result = normalize_phone(raw, None)
        assert (outcome if outcome.startswith("+") else None) == result.e164
        assert outcome.startswith("+") or outcome == result.reason


@pytest.mark.parametrize("number", VALID + ["+390612345678", "+3903123456"])
def test_fast_e164_formatting_matches_phonenumbers(number: str) -> None:
    parsed = phonenumbers.parse(number, None)
    assert _format_e164(parsed) == phonenumbers.format_number(
        parsed, phonenumbers.PhoneNumberFormat.E164
    )


def test_check_region() -> None:
    assert check_region(None) is None
    assert check_region("") is None
    assert check_region(" us ") == "US"
    with pytest.raises(ValueError):
        check_region("XX")


def test_looks_like_phone() -> None:
    assert looks_like_phone("+1 (415) 555-2671")
    assert looks_like_phone("4155552671")
    assert not looks_like_phone("phone")
    assert not looks_like_phone("12")
    assert not looks_like_phone("2024-01-01x")


# --- masking --------------------------------------------------------------


def test_mask_matches_design_example() -> None:
    assert mask_phone("+12025550123") == "+1202555••23"


@pytest.mark.parametrize("number", VALID)
def test_mask_hides_digits_and_keeps_last_two(number: str) -> None:
    masked = mask_phone(number)
    assert masked.endswith(number[-2:]) and "••" in masked
    assert masked.startswith(number[:3])
    assert number not in masked
    assert len(masked.replace("••", "")) <= len(number) - 2


@pytest.mark.parametrize("garbage", ["", "+", "+123", "hello", "4155552671", "+1415abc2671", "+" + "1" * 20])
def test_mask_fully_masks_garbage(garbage: str) -> None:
    assert mask_phone(garbage) == "••••"
