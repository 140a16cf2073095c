"""Decimal text in, integer fixed-point out, and back again.

Every endorsing peer must compute byte-identical results, so the market never
holds a binary float: energy is Wh, prices are micro-yuan per kWh, reputation
and xi are parts per million (market-rules.md, "Numbers"). Inputs with more
decimal places than the unit can hold are rejected, never rounded, because a
silent rounding would change what the user offered. Trailing zeros are fine
("0.3180000" is exactly 318000 micro-yuan): nothing is lost by dropping them.

Floats are accepted only as a convenience for JSON callers; they are read as
the shortest decimal that prints them (``repr``), so ``0.1`` is ``"0.1"`` and
``0.1 + 0.2`` is rejected for having 17 decimals.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from fractions import Fraction

WH_PER_KWH = 1000
MICRO = 1_000_000
PPM = 1_000_000

# Plain decimal notation only: an exponent or a Unicode digit is more likely a
# mistake (or a spreadsheet artefact) than an intended market input.
_DECIMAL_RE = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?")
_MAX_TEXT = 40  # longer than any energy or price a market could mean
# A decimal with at most 15 significant digits survives str -> float -> repr.
_FLOAT_EXACT_DIGITS = 15


# What may surround an input and is forgiven: ASCII spaces and tabs, nothing else.
# str.strip() would also drop U+001C..U+001F, U+0085, U+00A0, ... ("8\x1f" is no number).
BLANKS = " \t"


def trim(text: str) -> str:
    """``text`` without the ASCII spaces and tabs around it (nothing else removed)."""
    return text.strip(BLANKS)


class InputError(ValueError):
    """A value that is not a valid market input; the message names the field and the value."""

    def __init__(
        self, field: str, value: object, reason: str, *, message: str | None = None
    ) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(message or f"{field} {_show(value)}: {reason}")


def _show(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _text_of(field: str, value: object) -> str:
    """The decimal text a user meant by ``value``, or InputError if it is not a number."""
    if isinstance(value, bool):
        raise InputError(field, value, "is a boolean, not a number")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise InputError(field, value, "is not a finite number")
        text = repr(value)
        if "e" in text or "E" in text:
            # repr uses an exponent outside 1e-4..1e16; Decimal writes it out in full.
            text = format(Decimal(text), "f")
        return text
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise InputError(field, value, "is not a finite number")
        return format(value, "f")
    if isinstance(value, str):
        return trim(value)  # not strip(): "8\x1f" is not a number
    raise InputError(field, value, f"is a {type(value).__name__}, not a decimal number")


def parse_fixed(field: str, value: object, decimals: int, *, maximum: int | None = None) -> int:
    """Read a non-negative decimal with at most ``decimals`` places as an int in 10**-decimals.

    ``maximum`` (in the result's unit) bounds the value, e.g. reputation <= 1.
    """
    text = _text_of(field, value)
    if not text:
        raise InputError(field, value, "is empty")
    if len(text) > _MAX_TEXT:
        raise InputError(field, value, f"is longer than {_MAX_TEXT} characters")
    m = _DECIMAL_RE.fullmatch(text)
    if m is None:
        raise InputError(field, value, "is not a plain decimal number (digits and one '.')")
    sign, whole, frac = m.group(1), m.group(2), (m.group(3) or "").rstrip("0")
    if len(frac) > decimals:
        raise InputError(
            field, value, f"has more than {decimals} decimals (inputs are never rounded)"
        )
    scaled = int(whole) * 10**decimals + int(frac.ljust(decimals, "0") or "0")
    if sign and scaled:
        raise InputError(field, value, "is negative")
    if maximum is not None and scaled > maximum:
        raise InputError(field, value, f"is above {format_fixed(maximum, decimals)}")
    return scaled


def parse_kwh(value: object, field: str = "quantity_kwh") -> int:
    """kWh (at most 3 decimals) -> Wh."""
    return parse_fixed(field, value, 3)


def parse_kw(value: object, field: str = "limit_kw") -> int:
    """kW (at most 3 decimals) -> W; over an hourly period q W of flow carries q Wh."""
    return parse_fixed(field, value, 3)


def parse_price(value: object, field: str = "price") -> int:
    """yuan/kWh (at most 6 decimals) -> micro-yuan per kWh."""
    return parse_fixed(field, value, 6)


def parse_reputation(value: object, field: str = "reputation") -> int:
    """Reputation in [0, 1] (at most 6 decimals) -> ppm in [0, 1_000_000]."""
    return parse_fixed(field, value, 6, maximum=PPM)


def format_fixed(scaled: int, decimals: int) -> str:
    """The shortest exact decimal text of ``scaled`` * 10**-decimals: 90400, 3 -> "90.4"."""
    sign = "-" if scaled < 0 else ""
    whole, frac = divmod(abs(scaled), 10**decimals)
    frac_text = str(frac).rjust(decimals, "0").rstrip("0")
    return f"{sign}{whole}.{frac_text}" if frac_text else f"{sign}{whole}"


def format_kwh(wh: int) -> str:
    """Wh -> kWh text, e.g. 90400 -> "90.4"."""
    return format_fixed(wh, 3)


def format_yuan(micro: int) -> str:
    """micro-yuan -> yuan text, e.g. 325086 -> "0.325086"."""
    return format_fixed(micro, 6)


def format_ppm(ppm: int) -> str:
    """ppm -> a fraction of one, e.g. 545103 -> "0.545103"."""
    return format_fixed(ppm, 6)


def json_number(scaled: int, decimals: int) -> int | float:
    """A JSON number that ``json.dumps`` prints as exactly ``format_fixed(scaled, decimals)``.

    Whole values become ints (75, not 75.0). Others become the float nearest to
    the decimal, whose ``repr`` is that decimal as long as it has at most 15
    significant digits (below 1e-4 Python writes it with an exponent, 1e-06,
    which is still exactly the decimal); beyond 15 digits (10**12 kWh) the
    value is refused rather than printed inexactly.
    """
    text = format_fixed(scaled, decimals)
    if scaled % 10**decimals == 0:
        return int(text)
    if len(text.lstrip("-0.").replace(".", "")) > _FLOAT_EXACT_DIGITS:
        raise ValueError(f"{text} has more significant digits than a JSON number keeps exactly")
    return float(text)


# The largest scaled value (Wh, micro-yuan) every output format prints exactly: 15
# significant digits, e.g. 999,999,999,999.999 kWh. Offline inputs beyond it are refused
# at their cell, so a book never clears as a table and then fails as JSON.
JSON_EXACT_MAX = 10**_FLOAT_EXACT_DIGITS - 1


def _within_exact(field: str, value: object, scaled: int, decimals: int) -> int:
    if scaled > JSON_EXACT_MAX:
        raise InputError(
            field,
            value,
            f"is above {format_fixed(JSON_EXACT_MAX, decimals)}: results are printed as JSON "
            f"numbers, exact to {_FLOAT_EXACT_DIGITS} significant digits",
        )
    return scaled


def parse_exact_kwh(value: object, field: str = "quantity_kwh") -> int:
    """parse_kwh, at most JSON_EXACT_MAX Wh (offline book files)."""
    return _within_exact(field, value, parse_kwh(value, field), 3)


def parse_exact_price(value: object, field: str = "price") -> int:
    """parse_price, at most JSON_EXACT_MAX micro-yuan (offline book and TOU files)."""
    return _within_exact(field, value, parse_price(value, field), 6)


def kwh_json(wh: int) -> int | float:
    """Wh -> kWh as an exact JSON number (90400 -> 90.4)."""
    return json_number(wh, 3)


def yuan_json(micro: int) -> int | float:
    """micro-yuan -> yuan as an exact JSON number (325086 -> 0.325086)."""
    return json_number(micro, 6)


def ppm_json(ppm: int) -> int | float:
    """ppm -> fraction of one as an exact JSON number (545103 -> 0.545103)."""
    return json_number(ppm, 6)


def div_half_even(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded to the nearest int, ties to even (exact integer math)."""
    if denominator == 0:
        raise ZeroDivisionError("div_half_even by zero")
    if denominator < 0:
        numerator, denominator = -numerator, -denominator
    quotient, remainder = divmod(numerator, denominator)  # floor division: 0 <= remainder < den
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


def round_half_even(value: Fraction) -> int:
    """Round an exact Fraction once to the nearest int, ties to even, as the spec requires."""
    return div_half_even(value.numerator, value.denominator)
