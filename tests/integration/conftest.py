"""Fixtures of the live tests (the `network` fixture itself is in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from helpers import settle_cleared


@pytest.fixture
def settled_afterwards(network: object) -> Iterator[list[str]]:
    """Periods the test clears; each is settled when the test ends, passed or failed.

    A period left CLEARED and unsettled makes CloseDay of every later day NOT_READY,
    so on a reused network the next simulated or demo day could not close.
    """
    periods: list[str] = []
    yield periods
    for period in periods:
        settle_cleared(period)
