"""Fixtures shared by the unit tests: vppctl's in-memory fabric, our chaincode server, a peer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

# ``invoke_ok`` asserts for the CLI tests: rewrite it so a failure reads like one in a test.
pytest.register_assert_rewrite("fake_fabric")

from fake_fabric import FakeFabric  # noqa: E402
from fake_peer import FakePeer, connected_peer, running_server  # noqa: E402
from vpp_shim.server import ChaincodeServer  # noqa: E402


@pytest.fixture
def fabric(monkeypatch: pytest.MonkeyPatch) -> FakeFabric:
    """The in-memory Fabric, with vppctl's ``connect`` and wallet pointed at it."""
    return FakeFabric().install(monkeypatch)


@pytest.fixture(scope="module")
def server() -> Iterator[ChaincodeServer]:
    """The chaincode server on an ephemeral port, one per test module (DemoContract)."""
    with running_server() as srv:
        yield srv


@pytest.fixture
def peer(server: ChaincodeServer) -> Iterator[FakePeer]:
    """A fake peer connected to ``server``, through the handshake."""
    with connected_peer(server) as p:
        yield p
