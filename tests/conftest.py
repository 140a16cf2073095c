"""Shared fixtures. The `network` fixture starts the real Fabric network when it is not running."""

from __future__ import annotations

import pytest
from vpp_network.network import Network
from vpp_network.plan import DEFAULT_AGGS, NetworkPlan


def _network() -> Network:
    probe = Network(NetworkPlan())
    return Network(NetworkPlan(aggs=probe.state().get("aggs") or DEFAULT_AGGS))


@pytest.fixture(scope="session")
def network() -> Network:
    """The live network, started for this session if needed and stopped again afterwards."""
    net = _network()
    was_running = net.state().get("complete") and all(net.running().values())
    if not was_running:
        net.up()
    yield net
    if not was_running:
        net.down(quiet=True)
