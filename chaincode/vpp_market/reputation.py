"""Reputation (credit value): per-period evaluation and the daily update.

market-rules.md, "Reputation". Per traded period, dev = |E - Q| / Q and the
evaluation coefficient is a = 1 within the 2% tolerance, else max(0, 1 - dev).
Once a day, a_d is the mean of that day's coefficients and

    a_d >= a_(d-1):  R_d = R_(d-1) + (a_d - a_(d-1))^2 * (1 - R_(d-1))
    a_d <  a_(d-1):  R_d = R_(d-1) - (a_d - a_(d-1))^2 * R_(d-1)

With no order that day, R and a carry over unchanged.

Rounding: each stored value is rounded once, half-to-even, to ppm, from exact
arithmetic: a_d from the exact per-period coefficients (not from rounded
ones), R_d from the stored ppm values R_(d-1), a_(d-1) and a_d. So anyone can
re-derive R_d from the stored history alone, and no error accumulates inside
one day's computation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from vpp_market.units import PPM, round_half_even

TOLERANCE = Fraction(2, 100)
INITIAL_COEFFICIENT_PPM = PPM  # a_0 = 1
DEFAULT_REPUTATION_PPM = PPM // 2  # R_0 = 0.5 unless set at registration


def evaluation(quantity_wh: int, metered_wh: int) -> Fraction:
    """Exact evaluation coefficient a of one traded period (Q > 0, E >= 0)."""
    if quantity_wh <= 0:
        raise ValueError(f"quantity_wh {quantity_wh} must be positive")
    if metered_wh < 0:
        raise ValueError(f"metered_wh {metered_wh} is negative")
    dev = Fraction(abs(metered_wh - quantity_wh), quantity_wh)
    if dev <= TOLERANCE:
        return Fraction(1)
    return max(Fraction(0), 1 - dev)


def evaluation_ppm(quantity_wh: int, metered_wh: int) -> int:
    """The evaluation coefficient of one period in ppm (for display and audit)."""
    return round_half_even(evaluation(quantity_wh, metered_wh) * PPM)


def daily_coefficient_ppm(deliveries: Sequence[tuple[int, int]]) -> int | None:
    """a_d in ppm: the mean over the day's traded periods of (Q, E); None if none traded."""
    if not deliveries:
        return None
    total = sum((evaluation(q, e) for q, e in deliveries), Fraction(0))
    return round_half_even(total * PPM / len(deliveries))


def _ppm_arg(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= PPM:
        raise ValueError(f"{name} {value!r} is not a ppm value in [0, {PPM}]")


def update_reputation(r_prev_ppm: int, a_prev_ppm: int, a_day_ppm: int) -> int:
    """R_d in ppm from R_(d-1), a_(d-1) and a_d (all ppm), clamped to [0, 1e6]."""
    _ppm_arg("r_prev_ppm", r_prev_ppm)
    _ppm_arg("a_prev_ppm", a_prev_ppm)
    _ppm_arg("a_day_ppm", a_day_ppm)
    change = Fraction((a_day_ppm - a_prev_ppm) ** 2, PPM * PPM)
    if a_day_ppm >= a_prev_ppm:
        r = r_prev_ppm + change * (PPM - r_prev_ppm)
    else:
        r = r_prev_ppm - change * r_prev_ppm
    return min(PPM, max(0, round_half_even(Fraction(r))))


@dataclass(frozen=True, slots=True)
class DayUpdate:
    """One aggregator's reputation step for one day (all ppm)."""

    r_prev_ppm: int
    a_prev_ppm: int
    a_day_ppm: int | None  # None: no order that day, carried over
    r_ppm: int
    a_ppm: int  # the a_(d) stored for the next day

    @property
    def carried_over(self) -> bool:
        return self.a_day_ppm is None


def close_day(r_prev_ppm: int, a_prev_ppm: int, deliveries: Sequence[tuple[int, int]]) -> DayUpdate:
    """The day's update from the (Q, E) of every period the aggregator had an order."""
    a_day = daily_coefficient_ppm(deliveries)
    if a_day is None:
        _ppm_arg("r_prev_ppm", r_prev_ppm)
        _ppm_arg("a_prev_ppm", a_prev_ppm)
        return DayUpdate(r_prev_ppm, a_prev_ppm, None, r_prev_ppm, a_prev_ppm)
    r = update_reputation(r_prev_ppm, a_prev_ppm, a_day)
    return DayUpdate(r_prev_ppm, a_prev_ppm, a_day, r, a_day)
