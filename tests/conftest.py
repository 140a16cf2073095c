"""Shared fixtures. The `network` fixture starts the real Fabric network when it is not running."""

from __future__ import annotations

import pytest
from vpp_network.network import Network, existing_network


@pytest.fixture(scope="session")
def network() -> Network:
    """The live network, started for this session if needed and stopped again afterwards."""
    net = existing_network()
    was_running = net.state().get("complete") and all(net.running().values())
    if not was_running:
        net.up()
    yield net
    if not was_running:
        net.down(quiet=True)
