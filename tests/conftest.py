"""Shared fixtures. The `network` fixture starts the real Fabric network when it is not running."""

from __future__ import annotations

import sys

import pytest
from vpp_network.network import Network, existing_network


def _progress(message: str) -> None:
    # Straight to the terminal: pytest captures fixture output, and a first start
    # (which builds Fabric) takes minutes that should not look like a hang.
    print(f"[network] {message}", file=sys.__stderr__, flush=True)


@pytest.fixture(scope="session")
def network() -> Network:
    """The live network, started for this session if needed and stopped again afterwards."""
    net = existing_network(log=_progress)
    was_running = net.state().get("complete") and all(net.running().values())
    if not was_running:
        net.up()
    yield net
    if not was_running:
        net.down(quiet=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The simulated live day runs before the other live tests.

    It closes its day, and CloseDay refuses while any period of an earlier day is
    cleared but unsettled, or settled in a day not closed (the trust rules). Every live
    test that clears a period settles it and closes its day when it ends, passed or
    failed (the `finished_afterwards` fixture of tests/integration/conftest.py), so a
    reused network keeps no such day; the simulation still goes first, so a cleanup
    that itself failed cannot stop it.

    The admission test runs last (see test_admission_live.py).
    """
    first = [item for item in items if "test_simulate_live" in item.nodeid]
    # The admission of one more aggregator goes last: the network keeps the new member,
    # and the other live tests were written for the aggregators it was created with.
    last = [item for item in items if "test_admission_live" in item.nodeid]
    items[:] = first + [item for item in items if item not in first + last] + last
