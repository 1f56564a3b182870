"""Issue 16: number → (country, US state/territory) from the area code."""

from __future__ import annotations

import pytest

from server.domain.jurisdiction.holidays_cache import holiday_dates, is_holiday
from server.domain.jurisdiction.regions import (
    Region,
    resolve_region,
    state_from_description,
)


@pytest.mark.parametrize(
    "number, country, state",
    [
        ("+13055550123", "US", "FL"),  # geocoder: "Florida"
        ("+12125550123", "US", "NY"),  # "New York, NY" (city form)
        ("+13105550123", "US", "CA"),  # "California"
        ("+12135550123", "US", "CA"),  # "Los Angeles, CA"
        ("+12065550123", "US", "WA"),  # "Washington State"
        ("+12025550123", "US", "DC"),  # "Washington D.C."
        ("+14055550123", "US", "OK"),
        ("+14105550123", "US", "MD"),
        ("+15045550123", "US", "LA"),  # Louisiana vs. Los Angeles: no confusion
        ("+17755550123", "US", "NV"),
        ("+18005550123", "US", ""),  # toll-free: no state
        ("+18885550123", "US", ""),
        ("+17875550123", "US", "PR"),  # territory
        ("+16715550123", "US", "GU"),
        ("+14165550123", "CA", ""),  # Toronto: NANP, not US
        ("+16045550123", "CA", ""),
        ("+18765550123", "JM", ""),  # Jamaica
        ("+12425550123", "BS", ""),  # Bahamas
        ("+442079460123", "GB", ""),
        ("not a number", "", ""),
    ],
)
def test_resolve_region(number, country, state):
    assert resolve_region(number) == Region(country, state)


def test_jurisdiction_codes():
    assert Region("US", "FL").jurisdictions == ("US", "US-FL")
    assert Region("US", "").jurisdictions == ("US",)
    assert Region("CA", "").jurisdictions == ("CA",)
    assert Region("", "").jurisdictions == ()


@pytest.mark.parametrize(
    "text, code",
    [("Florida", "FL"), ("Chicago, IL", "IL"), ("Washington State", "WA"), ("washington d.c.", "DC"),
     ("", ""), ("Atlantis", ""), ("Somewhere, ZZ", "")],
)
def test_state_from_description(text, code):
    assert state_from_description(text) == code


def test_holidays_from_package():
    from datetime import date

    assert is_holiday("US", "AL", date(2026, 12, 25))
    assert is_holiday("US", "UT", date(2026, 7, 24))  # Pioneer Day
    assert not is_holiday("US", "UT", date(2026, 7, 23))
    assert holiday_dates("XX", "", 2026) == {}  # unknown country: no holidays, no crash
