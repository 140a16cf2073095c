"""BenchSeedBook: absent from the production market; a benchmark one seeds what clearing reads.

The benchmarks need 1,000+ orders in one period, more than a network has
aggregator orgs. The seeding function exists only in the benchmark subclass
of the market contract, which only benchmark networks serve, and must never
touch a real aggregator.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from certs import agg_admin, agg_trader, grid_admin, vppo_admin
from vpp_chaincode import server
from vpp_chaincode.benchmarket import BenchMarketContract
from vpp_chaincode.market import MarketContract
from vpp_shim.api import ChaincodeError
from vpp_shim.codes import Code
from vpp_shim.testing import MemoryLedger

VPPO = vppo_admin()
P = "00002-13"


def make(bench: bool = True) -> tuple[MemoryLedger, MarketContract]:
    ledger = MemoryLedger(channel_id="vpp-main")
    contract = BenchMarketContract() if bench else MarketContract()
    ledger.invoke(contract, VPPO, "OpenPeriod", "2", "13")
    return ledger, contract


def call(ledger: MemoryLedger, contract: MarketContract, caller: Any, fn: str, *args: str) -> Any:
    raw = ledger.invoke(contract, caller, fn, *args)
    return json.loads(raw) if raw else None


def test_the_production_contract_has_no_such_function(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not even with the old environment flag set: no switch turns production into bench."""
    monkeypatch.setenv("VPP_MARKET_BENCH", "1")
    ledger, contract = make(bench=False)
    before = ledger.snapshot()
    with pytest.raises(ChaincodeError, match="unknown function 'BenchSeedBook'") as refused:
        ledger.invoke(contract, VPPO, "BenchSeedBook", P, "1000", "10")
    assert refused.value.code == Code.UNKNOWN_FUNCTION
    assert ledger.snapshot() == before
    assert "BenchSeedBook" not in MarketContract().transactions()


def test_the_bench_contract_adds_exactly_bench_seeding() -> None:
    """Everything else is the production market, unchanged (same name, same functions)."""
    bench, production = BenchMarketContract(), MarketContract()
    assert bench.name == production.name == "market"
    assert set(bench.transactions()) - set(production.transactions()) == {"BenchSeedBook"}
    assert set(production.transactions()) <= set(bench.transactions())


def test_the_chaincode_server_serves_the_production_market_by_default() -> None:
    """`python -m vpp_chaincode.server market` (what network-up starts) has no seeding;
    only the `market-bench` contract, which benchmark networks ask for, has it."""
    assert server.CONTRACTS["market"] is MarketContract
    assert server.CONTRACTS["market-bench"] is BenchMarketContract


def test_seeded_book_is_cleared_by_the_production_path() -> None:
    ledger, contract = make()
    seeded = call(ledger, contract, VPPO, "BenchSeedBook", P, "1000", "60", "7")
    assert seeded == {"period": P, "first_agg": 1000, "count": 60, "seed": 7}
    call(ledger, contract, VPPO, "BenchSeedBook", P, "1060", "40", "7")
    book = call(ledger, contract, VPPO, "GetOrderBook", P)
    assert len(book["orders"]) == 100
    assert {o["side"] for o in book["orders"]} == {"buy", "sell"}
    assert all(book["purchase"] <= o["offer"] <= book["sale"] for o in book["orders"])
    registered = call(ledger, contract, VPPO, "GetAggregator", "1042")
    assert registered["bench"] is True and registered["mspid"] == "Bench1042MSP"
    call(ledger, contract, VPPO, "ClosePeriod", P)
    summary = call(ledger, contract, VPPO, "ClearPeriod", P)
    assert summary["orders"] == 100 and summary["matches"] > 0


def test_same_arguments_write_identical_state() -> None:
    """Both endorsers run the call; they must produce byte-identical writes."""
    states = []
    for _ in range(2):
        ledger, contract = make()
        ledger.clock_ns = 1  # same timestamp for both runs
        ledger.invoke(contract, VPPO, "BenchSeedBook", P, "1000", "20", "3")
        states.append({k: v for k, v in ledger.state.items() if b"bench-seed" in v})
    strip = [{k: json.loads(v) | {"tx_id": ""} for k, v in s.items()} for s in states]
    assert strip[0] == strip[1] and len(strip[0]) == 20


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((P, "999", "10"), "synthetic aggregators are numbered 1000..9999"),
        ((P, "9995", "10"), "synthetic aggregators are numbered"),
        ((P, "1000", "0"), r"count 0: is not in 1\.\.1000"),
        ((P, "1000", "1001"), r"count 1001: is not in 1\.\.1000"),
        ((P, "1000", "-1"), "count '-1': is not a non-negative integer"),
        (("00002-14", "1000", "10"), "has not been opened"),
    ],
)
def test_bad_arguments(args: tuple[str, ...], match: str) -> None:
    ledger, contract = make()
    with pytest.raises(ChaincodeError, match=match):
        ledger.invoke(contract, VPPO, "BenchSeedBook", *args)


def test_only_the_vppo_admin_and_only_while_open() -> None:
    ledger, contract = make()
    for caller in (grid_admin(), agg_admin(1), agg_trader(1)):
        with pytest.raises(ChaincodeError, match="only the VPPO admin"):
            ledger.invoke(contract, caller, "BenchSeedBook", P, "1000", "10")
    call(ledger, contract, VPPO, "ClosePeriod", P)
    with pytest.raises(ChaincodeError, match="the gate is closed"):
        ledger.invoke(contract, VPPO, "BenchSeedBook", P, "1000", "10")


def test_never_touches_a_real_aggregator() -> None:
    ledger, contract = make()
    call(ledger, contract, agg_admin(1005), "RequestAdmission", "1005", "R1")
    call(ledger, contract, VPPO, "ApproveAdmission", "1005")
    before = ledger.snapshot()
    with pytest.raises(ChaincodeError, match="Agg1005 is a registered .non-benchmark. aggregator"):
        ledger.invoke(contract, VPPO, "BenchSeedBook", P, "1000", "10")
    assert ledger.snapshot() == before
