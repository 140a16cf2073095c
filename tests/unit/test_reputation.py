"""Reputation: evaluation with the 2% tolerance, daily mean, the R update and its bounds."""

from __future__ import annotations

from fractions import Fraction

import pytest
from vpp_market.reputation import (
    close_day,
    daily_coefficient_ppm,
    evaluation,
    evaluation_ppm,
    update_reputation,
)


@pytest.mark.parametrize(
    ("q", "e", "ppm"),
    [
        (100_000, 100_000, 1_000_000),
        (100_000, 102_000, 1_000_000),  # dev exactly 2%: within tolerance
        (100_000, 98_000, 1_000_000),
        (100_000, 102_001, 979_990),  # dev 2.001% -> 1 - dev
        (100_000, 90_000, 900_000),
        (100_000, 0, 0),
        (100_000, 250_000, 0),  # dev 150% -> max(0, -0.5)
        (3, 2, 666_667),  # 2/3 rounded once
    ],
)
def test_evaluation(q: int, e: int, ppm: int) -> None:
    assert evaluation_ppm(q, e) == ppm


def test_evaluation_is_exact() -> None:
    assert evaluation(3, 2) == Fraction(2, 3)


def test_evaluation_needs_a_positive_quantity() -> None:
    with pytest.raises(ValueError, match="quantity_wh 0"):
        evaluation(0, 1)


def test_daily_coefficient_is_the_exact_mean_rounded_once() -> None:
    assert daily_coefficient_ppm([(100_000, 100_000), (100_000, 90_000)]) == 950_000
    # (0 + 1/3) / 2 = 1/6 = 166666.67 -> 166667; rounding a per period first would
    # give (0 + 333333) / 2 = 166666.5 -> 166666.
    assert daily_coefficient_ppm([(1, 0), (3, 1)]) == 166_667
    assert daily_coefficient_ppm([]) is None


def test_reputation_rises_when_performance_improves() -> None:
    # 0.5 + (1 - 0.8)^2 * (1 - 0.5) = 0.52
    assert update_reputation(500_000, 800_000, 1_000_000) == 520_000


def test_reputation_falls_when_performance_worsens() -> None:
    # 0.5 - (0.8 - 1)^2 * 0.5 = 0.48
    assert update_reputation(500_000, 1_000_000, 800_000) == 480_000


def test_steady_performance_leaves_reputation_unchanged() -> None:
    assert update_reputation(700_000, 600_000, 600_000) == 700_000
    assert update_reputation(700_000, 1_000_000, 1_000_000) == 700_000


def test_reputation_stays_within_bounds() -> None:
    assert update_reputation(0, 0, 1_000_000) == 1_000_000  # 0 + 1 * (1 - 0)
    assert update_reputation(1_000_000, 1_000_000, 0) == 0  # 1 - 1 * 1
    assert update_reputation(1_000_000, 0, 500_000) == 1_000_000
    assert update_reputation(0, 1_000_000, 0) == 0


def test_reputation_rounds_once_half_even() -> None:
    # 2 - 0.25 * 2 = 1.5 -> 2 ; 6 - 0.25 * 6 = 4.5 -> 4
    assert update_reputation(2, 1_000_000, 500_000) == 2
    assert update_reputation(6, 1_000_000, 500_000) == 4
    # 0.333333 - 0.25 * 0.333333 = 0.24999975 -> 0.25
    assert update_reputation(333_333, 1_000_000, 500_000) == 250_000


def test_reputation_refuses_values_outside_ppm() -> None:
    with pytest.raises(ValueError, match="r_prev_ppm 1000001"):
        update_reputation(1_000_001, 0, 0)


def test_close_day_carries_over_without_orders() -> None:
    step = close_day(846_000, 900_000, [])
    assert step.carried_over
    assert (step.r_ppm, step.a_ppm) == (846_000, 900_000)


def test_close_day_updates_from_the_days_periods() -> None:
    # a_d = (1 + 0.9) / 2 = 0.95 < a_prev = 1: R = 0.5 - 0.0025 * 0.5 = 0.49875
    step = close_day(500_000, 1_000_000, [(100_000, 101_000), (100_000, 90_000)])
    assert step.a_day_ppm == 950_000
    assert step.r_ppm == 498_750
    assert step.a_ppm == 950_000
    # the next day back to perfect: R = 0.49875 + 0.0025 * 0.50125 = 0.5000031 -> 500_003
    nxt = close_day(step.r_ppm, step.a_ppm, [(100_000, 100_000)])
    assert nxt.r_ppm == 500_003
