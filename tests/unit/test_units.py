"""Strict decimal parsing into the spec's integer units, formatting back, half-even rounding."""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from vpp_market.units import (
    InputError,
    div_half_even,
    format_kwh,
    format_yuan,
    kwh_json,
    parse_kw,
    parse_kwh,
    parse_price,
    parse_reputation,
    ppm_json,
    round_half_even,
    yuan_json,
)


@pytest.mark.parametrize(
    ("text", "wh"),
    [
        ("90.4", 90_400),
        ("58.34", 58_340),
        ("0.001", 1),
        ("75", 75_000),
        ("  282.5 ", 282_500),
        ("90.4000", 90_400),  # trailing zeros lose nothing
        ("0", 0),
        ("-0", 0),
        (90.4, 90_400),
        (75, 75_000),
        (Decimal("1.25"), 1_250),
        (1e-3, 1),
        (1e20, 10**23),
    ],
)
def test_parse_kwh_accepts_exact_values(text: object, wh: int) -> None:
    assert parse_kwh(text) == wh


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("1.2345", "more than 3 decimals"),
        (0.1 + 0.2, "more than 3 decimals"),
        ("-1", "negative"),
        (-0.5, "negative"),
        ("nan", "plain decimal"),
        ("inf", "plain decimal"),
        (float("nan"), "finite"),
        (float("inf"), "finite"),
        (Decimal("NaN"), "finite"),
        ("1e3", "plain decimal"),
        ("1,5", "plain decimal"),
        ("1.2.3", "plain decimal"),
        (".5", "plain decimal"),
        ("5.", "plain decimal"),
        ("+5", "plain decimal"),
        ("٣", "plain decimal"),  # a non-ASCII digit
        ("", "empty"),
        ("   ", "empty"),
        ("1" * 41, "longer than"),
        (True, "boolean"),
        (None, "not a decimal"),
        ([1], "not a decimal"),
    ],
)
def test_parse_kwh_rejects_with_field_value_and_reason(value: object, reason: str) -> None:
    with pytest.raises(InputError) as info:
        parse_kwh(value, "quantity_kwh")
    assert isinstance(info.value, ValueError)
    assert info.value.field == "quantity_kwh"
    assert reason in info.value.reason
    message = str(info.value)
    assert "quantity_kwh" in message
    assert (repr(value) if isinstance(value, str) else str(value)) in message


def test_price_has_six_decimals_and_reputation_is_bounded() -> None:
    assert parse_price("0.325086") == 325_086
    assert parse_price("0.38") == 380_000
    with pytest.raises(InputError, match="more than 6 decimals"):
        parse_price("0.3250861", "offer")
    assert parse_reputation("0.846") == 846_000
    assert parse_reputation("1") == 1_000_000
    assert parse_reputation("0") == 0
    with pytest.raises(InputError, match="above 1"):
        parse_reputation("1.000001")
    with pytest.raises(InputError, match="negative"):
        parse_reputation("-0.1")
    assert parse_kw("10000") == 10_000_000


def test_formatting_is_exact_and_shortest() -> None:
    assert format_kwh(90_400) == "90.4"
    assert format_kwh(75_000) == "75"
    assert format_kwh(1) == "0.001"
    assert format_yuan(325_086) == "0.325086"
    assert format_yuan(240_000) == "0.24"
    assert format_yuan(-5) == "-0.000005"


def test_json_numbers_print_exactly() -> None:
    doc = {
        "q": kwh_json(90_400),
        "p": yuan_json(325_086),
        "x": ppm_json(545_103),
        "w": kwh_json(75_000),
    }
    assert json.dumps(doc) == '{"q": 90.4, "p": 0.325086, "x": 0.545103, "w": 75}'
    with pytest.raises(ValueError, match="significant digits"):
        kwh_json(10**18 + 1)


@given(st.integers(min_value=0, max_value=10**15 - 1))
def test_kwh_round_trips_through_text_and_json(wh: int) -> None:
    assert parse_kwh(format_kwh(wh)) == wh
    assert parse_kwh(json.loads(json.dumps(kwh_json(wh)))) == wh
    assert json.dumps(kwh_json(wh)) == format_kwh(wh)


@given(st.integers(min_value=0, max_value=10**9))
def test_micro_yuan_round_trips_through_json(micro: int) -> None:
    # Below 1e-4 Python prints an exponent (1e-06): still exactly the same number.
    assert Decimal(json.dumps(yuan_json(micro))) == Decimal(format_yuan(micro))
    assert parse_price(json.loads(json.dumps(yuan_json(micro)))) == micro


@pytest.mark.parametrize(
    ("fraction", "expected"),
    [
        (Fraction(5, 2), 2),
        (Fraction(7, 2), 4),
        (Fraction(-5, 2), -2),
        (Fraction(-7, 2), -4),
        (Fraction(10, 4), 2),
        (Fraction(11, 4), 3),
        (Fraction(9, 4), 2),
        (Fraction(-9, 4), -2),
        (Fraction(3), 3),
        (Fraction(504_534_000_000, 1_552_000), 325_086),  # the paper's first t=2 price
    ],
)
def test_round_half_even(fraction: Fraction, expected: int) -> None:
    assert round_half_even(fraction) == expected


@given(
    st.integers(min_value=-(10**12), max_value=10**12), st.integers(min_value=1, max_value=10**6)
)
def test_div_half_even_agrees_with_python_round(numerator: int, denominator: int) -> None:
    # Fraction.__round__ rounds half to even: an independent reference.
    assert div_half_even(numerator, denominator) == round(Fraction(numerator, denominator))
    assert div_half_even(-numerator, -denominator) == round(Fraction(numerator, denominator))
