"""The in-memory ledger's "nothing written on refusal" checks can fail.

Like a peer, MemoryLedger discards a refused transaction's writes, so
comparing the ledger before and after a refusal could never fail. The
market's rule is stricter (a refusal is decided before the first write),
so the ledger also remembers what a refused call tried to write and its
snapshot includes it. These tests plant a contract that writes and then
refuses, and show that every form of the check catches it.
"""

from __future__ import annotations

import json

import pytest
from certs import vppo_admin
from market_world import World
from vpp_chaincode.ledger import tx
from vpp_chaincode.market import MarketContract
from vpp_shim.api import ChaincodeError, Stub
from vpp_shim.codes import Code
from vpp_shim.testing import MemoryLedger, RefusedWrites


class LeakyMarket(MarketContract):
    """The market plus one function that writes, emits an event, then refuses."""

    @tx
    def Leaky(self, stub: Stub, value: str) -> None:
        stub.put_state("leak", value.encode())
        stub.set_event("Leaked", b"{}")
        raise ChaincodeError(Code.BAD_ARGUMENT, f"Leaky: value {value!r}: refused after writing")

    @tx
    def Clean(self, stub: Stub, value: str) -> None:
        raise ChaincodeError(Code.BAD_ARGUMENT, f"Clean: value {value!r}: refused first")


def test_the_ledger_records_what_a_refused_call_tried_to_write() -> None:
    ledger = MemoryLedger()
    before = ledger.snapshot()
    with pytest.raises(ChaincodeError, match="refused after writing"):
        ledger.invoke(LeakyMarket(), vppo_admin(), "Leaky", "x")
    assert ledger.state == {}  # discarded, as a peer does
    assert ledger.refused == [RefusedWrites("Leaky", ("leak",), "Leaked")]
    assert ledger.snapshot() != before  # so a "ledger unchanged" check fails


def test_a_refusal_that_writes_nothing_leaves_the_snapshot_equal() -> None:
    ledger = MemoryLedger()
    before = ledger.snapshot()
    with pytest.raises(ChaincodeError, match="refused first"):
        ledger.invoke(LeakyMarket(), vppo_admin(), "Clean", "x")
    assert ledger.snapshot() == before and ledger.refused == []


def test_the_worlds_refusal_check_catches_a_write_before_refusing() -> None:
    """World.refusal (the access matrix, bad input, trust rules) fails on a leaky refusal."""
    world = World()
    world.market = LeakyMarket()
    assert world.refusal(vppo_admin(), "Clean", "x") == "Clean: value 'x': refused first"
    with pytest.raises(AssertionError, match=r"refused Leaky wrote before refusing: .*'leak'"):
        world.refusal(vppo_admin(), "Leaky", "x")


def test_a_committed_transaction_records_no_refusal() -> None:
    ledger = MemoryLedger()
    raw = ledger.invoke(MarketContract(), vppo_admin(), "OpenPeriod", "1", "13")
    assert json.loads(raw)["status"] == "OPEN" and ledger.refused == []
