"""Fixtures of the live tests (the `network` fixture itself is in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from helpers import finish_day, open_days


@pytest.fixture
def finished_afterwards(network: object) -> Iterator[list[str]]:
    """Periods the test clears; when it ends, passed or failed, each one's day is finished:
    every period of the day settled and the day closed (helpers.finish_day).

    A period left CLEARED and unsettled, or a settled one in a day left open, makes
    CloseDay of every later day NOT_READY: on a reused network the next demo or
    simulated day could not close.
    """
    periods: list[str] = []
    yield periods
    for day in sorted({int(period.split("-")[0]) for period in periods}):
        finish_day(day)


@pytest.fixture
def open_days_finished_afterwards(network: object) -> Iterator[None]:
    """For a test that picks its own day (vppctl simulate takes the first day without
    periods): when it ends, passed or failed, every day not yet closed is finished.

    A simulated day that fails half-way (a loaded machine) leaves cleared periods
    behind; without this every later test that closes a day failed NOT_READY.
    """
    yield
    for day in open_days():
        finish_day(day)
