from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.domain.cost import (
    ASSUMED_MINUTES_PER_CALL,
    PriceTable,
    call_cost_micros,
    estimate_cost_micros,
    format_usd,
)


def test_default_prices_match_the_seed():
    p = PriceTable()
    assert p.base == Decimal("0.05")
    assert p.llm == Decimal("0.015")
    assert p.stt == Decimal("0.003")
    assert p.tts == Decimal("0.005")
    assert p.per_minute == Decimal("0.073")
    assert p.per_minute_micros == 73_000


def test_estimate_uses_three_minute_calls():
    p = PriceTable()
    assert ASSUMED_MINUTES_PER_CALL == 3
    assert estimate_cost_micros(0, p) == 0
    assert estimate_cost_micros(1, p) == 219_000  # 3 x 0.073
    assert estimate_cost_micros(1000, p) == 219_000_000
    assert estimate_cost_micros(10_000, p) == 2_190_000_000
    assert estimate_cost_micros(10, p, minutes_per_call=Decimal("1.5")) == 1_095_000


def test_estimate_rejects_negative():
    with pytest.raises(ValueError):
        estimate_cost_micros(-1, PriceTable())
    with pytest.raises(ValueError):
        estimate_cost_micros(1, PriceTable(), minutes_per_call=Decimal(-1))


def test_call_cost_per_second_round_half_up():
    p = PriceTable()
    assert call_cost_micros(0, p) == 0
    assert call_cost_micros(60, p) == 73_000
    assert call_cost_micros(180, p) == 219_000
    assert call_cost_micros(1, p) == 1217  # 1216.666... -> 1217
    assert call_cost_micros(2, p) == 2433  # 2433.333... -> 2433
    assert call_cost_micros(30.5, p) == 37108  # 37108.333...
    # Exactly half a micro rounds up (a price of 30 micros/min = 0.5 micro/s)
    half = PriceTable(base=Decimal("0.00003"), llm=0, stt=0, tts=0)  # 30 micros/min = 0.5 micro/s
    assert call_cost_micros(1, half) == 1
    assert call_cost_micros(3, half) == 2  # 1.5 -> 2


def test_call_cost_rejects_bad_durations():
    with pytest.raises(ValueError):
        call_cost_micros(-1, PriceTable())
    with pytest.raises(ValueError):
        call_cost_micros(float("nan"), PriceTable())
    with pytest.raises(ValueError):
        call_cost_micros(float("inf"), PriceTable())


@given(st.integers(min_value=0, max_value=10_000), st.integers(min_value=0, max_value=10_000))
def test_call_cost_monotonic_and_nearly_additive(a, b):
    p = PriceTable()
    assert call_cost_micros(a, p) <= call_cost_micros(a + b, p)
    # per-call rounding costs at most one micro per call
    assert abs(call_cost_micros(a, p) + call_cost_micros(b, p) - call_cost_micros(a + b, p)) <= 1


def test_from_env_string():
    p = PriceTable.from_env_string("base=0.05,llm=0.015,stt=0.003,tts=0.005")
    assert p == PriceTable()
    p = PriceTable.from_env_string(" base = 0.06 , TTS=0.01 ")
    assert p.base == Decimal("0.06") and p.tts == Decimal("0.01") and p.llm == Decimal("0.015")
    assert PriceTable.from_env_string("") == PriceTable()
    assert PriceTable.from_env_string(PriceTable().to_env_string()) == PriceTable()


@pytest.mark.parametrize(
    "junk",
    [
        "base",
        "base=abc",
        "base=-0.01",
        "base=NaN",
        "base=Infinity",
        "gpu=0.1",
        "base=0.1,base=0.2",
        "base=0.1,,llm=0.2",
        ",",
        "base=1000",
    ],
)
def test_from_env_string_rejects_junk(junk):
    with pytest.raises(ValueError):
        PriceTable.from_env_string(junk)


def test_price_table_coerces_and_validates():
    assert PriceTable(base=0.05).base == Decimal("0.05")
    assert PriceTable(llm="0.015").llm == Decimal("0.015")
    with pytest.raises(ValueError):
        PriceTable(base=Decimal(-1))


@pytest.mark.parametrize(
    "micros, text",
    [
        (0, "$0.00"),
        (12_340_000, "$12.34"),
        (219_000_000, "$219.00"),
        (1_234_567_891, "$1,234.57"),
        (1_200, "$0.0012"),
        (1_217, "$0.0012"),
        (50, "$0.0001"),
        (10_000, "$0.01"),
        (15_000, "$0.02"),  # half up
        (-1_500_000, "-$1.50"),
        (-1_200, "-$0.0012"),
    ],
)
def test_format_usd(micros, text):
    assert format_usd(micros) == text
