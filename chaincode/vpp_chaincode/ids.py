"""Identifiers used in arguments and keys: periods, contracts, aggregators, meters.

A period is a day number and an hour t (1..24). Its id is ``DDDDD-TT``, zero
padded (``00001-13`` is day 1, 12:00-13:00), so ids and the keys built from
them sort in time order. Inputs may omit the padding (``1-13``); results
always carry the canonical id. A contract id is ``DDDDD-TT-SSSS`` (its
period and its 1-based sequence number within the period, at least four
digits, more once a period has over 9,999 contracts); in keys the sequence
number is nine digits (``SEQ_KEY_WIDTH``) so that every contract of a period
sorts by number.

How many contracts a period can have: at most MAX_AGG orders; each
(buyer, seller) pair matches at most once per round (the clearing loop
visits each pair once), so at most 2 * 5,000 * 4,999 P2P contracts; voiding
turns each into two grid contracts, and every order adds at most one grid
absorption: under 1.6e8 < MAX_SEQ.

Aggregator numbers are padded to four digits in keys (``0003``) so that
Agg2 sorts before Agg10; in arguments ``Agg3``, ``agg3`` or ``3`` are accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vpp_market.units import InputError

MAX_DAY = 99_999
MAX_AGG = 9_999
MAX_SEQ = 999_999_999
SEQ_KEY_WIDTH = 9
HOURS = 24

_PERIOD_RE = re.compile(r"([0-9]{1,5})-([0-9]{1,2})")
_CONTRACT_RE = re.compile(r"([0-9]{1,5})-([0-9]{1,2})-([0-9]{1,9})")
_AGG_RE = re.compile(r"(?:agg)?([1-9][0-9]{0,3})", re.IGNORECASE)
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_CHANNEL_RE = re.compile(r"agg([1-9][0-9]{0,3})")
# Only ASCII spaces and tabs around a value are forgiven: Python's strip() would also
# drop characters it counts as whitespace (U+001C..U+001F, U+0085, U+00A0, U+2028...),
# so "8\x1f" would pass as hour 8.
BLANKS = " \t"


def trim(text: str) -> str:
    """``text`` without the ASCII spaces and tabs around it (nothing else removed)."""
    return text.strip(BLANKS)


@dataclass(frozen=True, slots=True, order=True)
class PeriodId:
    day: int
    hour: int

    @property
    def id(self) -> str:
        return f"{self.day:05d}-{self.hour:02d}"

    @property
    def key_parts(self) -> list[str]:
        """The two composite-key attributes of the period: day and hour, zero padded."""
        return [f"{self.day:05d}", f"{self.hour:02d}"]

    def __str__(self) -> str:
        return self.id


def _int_in(field: str, value: object, text: str, low: int, high: int, what: str) -> int:
    number = int(text)
    if not low <= number <= high:
        raise InputError(field, value, f"{what} {number} is not in {low}..{high}")
    return number


def parse_day(value: object, field: str = "day") -> int:
    """A day number 1..99999 (decimal digits)."""
    text = trim(str(value)) if isinstance(value, (str, int)) else ""
    if isinstance(value, bool) or not text.isdigit() or not text.isascii():
        raise InputError(field, value, "is not a day number (digits only)")
    return _int_in(field, value, text, 1, MAX_DAY, "day")


def parse_hour(value: object, field: str = "t") -> int:
    """An hour period t in 1..24 (t covers [(t-1):00, t:00))."""
    text = trim(str(value)) if isinstance(value, (str, int)) else ""
    if isinstance(value, bool) or not text.isdigit() or not text.isascii():
        raise InputError(field, value, "is not a period hour 1..24 (digits only)")
    return _int_in(field, value, text, 1, HOURS, "hour")


def parse_period(value: object, field: str = "period") -> PeriodId:
    """``DDDDD-TT`` (padding optional) -> PeriodId."""
    m = _PERIOD_RE.fullmatch(trim(value)) if isinstance(value, str) else None
    if m is None:
        raise InputError(field, value, "is not a period id DAY-HOUR such as 00001-13")
    return PeriodId(
        _int_in(field, value, m.group(1), 1, MAX_DAY, "day"),
        _int_in(field, value, m.group(2), 1, HOURS, "hour"),
    )


def contract_id(period: PeriodId, seq: int) -> str:
    return f"{period.id}-{seq:04d}"


def seq_key(seq: int) -> str:
    """A contract's sequence number as a key part: fixed width, so keys sort by number."""
    return f"{seq:0{SEQ_KEY_WIDTH}d}"


def parse_contract_id(value: object, field: str = "contract_id") -> tuple[PeriodId, int]:
    """``DDDDD-TT-SSSS`` -> (period, seq)."""
    m = _CONTRACT_RE.fullmatch(trim(value)) if isinstance(value, str) else None
    if m is None:
        raise InputError(field, value, "is not a contract id DAY-HOUR-SEQ such as 00001-13-0001")
    period = PeriodId(
        _int_in(field, value, m.group(1), 1, MAX_DAY, "day"),
        _int_in(field, value, m.group(2), 1, HOURS, "hour"),
    )
    return period, _int_in(field, value, m.group(3), 1, MAX_SEQ, "sequence number")


def parse_agg(value: object, field: str = "agg") -> int:
    """``Agg3``, ``agg3``, ``3`` or the JSON number 3 -> 3 (1..9999, no leading zero)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    m = _AGG_RE.fullmatch(trim(value)) if isinstance(value, str) else None
    if m is None:
        raise InputError(field, value, "is not an aggregator (AggN or N, 1 <= N <= 9999)")
    return int(m.group(1))


def agg_key(agg: int) -> str:
    return f"{agg:04d}"


def agg_name(agg: int) -> str:
    return f"Agg{agg}"


def agg_channel(agg: int) -> str:
    """Aggregator N's slave channel: ``aggN``."""
    return f"agg{agg}"


def channel_agg(channel: str) -> int | None:
    """The aggregator that owns slave channel ``aggN``, or None for another channel."""
    m = _CHANNEL_RE.fullmatch(channel)
    return int(m.group(1)) if m else None


def parse_name(value: object, field: str) -> str:
    """A resource id, region or MSP ID: 1-64 of letters, digits, '.', '_' and '-'."""
    m = _NAME_RE.fullmatch(trim(value)) if isinstance(value, str) else None
    if m is None:
        raise InputError(
            field, value, "is not a name (1-64 letters, digits, '.', '_', '-'; starts alphanumeric)"
        )
    return m.group(0)


def parse_meter_id(value: object, agg: int, field: str = "meter_id") -> str:
    """A meter id of aggregator N: ``aggN-<name>`` (e.g. ``agg3-m1``), so ids are global."""
    meter = parse_name(value, field)
    if not meter.startswith(f"{agg_channel(agg)}-") or meter == f"{agg_channel(agg)}-":
        raise InputError(field, value, f"is not a meter id of {agg_name(agg)} (agg{agg}-<name>)")
    return meter
