"""BenchSeedBook: dead on a production market; on a benchmark one it seeds what clearing reads.

The benchmarks need 1,000+ orders in one period, more than a network has
aggregator orgs. The seeding function must stay dead unless the chaincode
process was started with VPP_MARKET_BENCH=1, and must never touch a real
aggregator.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from certs import agg_admin, agg_trader, grid_admin, vppo_admin
from vpp_chaincode import benchseed
from vpp_chaincode.market import MarketContract
from vpp_shim.api import ChaincodeError
from vpp_shim.testing import MemoryLedger

VPPO = vppo_admin()
P = "00002-13"


def make(bench: bool | None) -> tuple[MemoryLedger, MarketContract]:
    ledger = MemoryLedger(channel_id="vpp-main")
    contract = MarketContract(bench_seeding=bench)
    ledger.invoke(contract, VPPO, "OpenPeriod", "2", "13")
    return ledger, contract


def call(ledger: MemoryLedger, contract: MarketContract, caller: Any, fn: str, *args: str) -> Any:
    raw = ledger.invoke(contract, caller, fn, *args)
    return json.loads(raw) if raw else None


def test_refused_without_the_environment_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(benchseed.ENV_FLAG, raising=False)
    ledger, contract = make(None)
    before = dict(ledger.state)
    with pytest.raises(ChaincodeError, match="BenchSeedBook: disabled; .*VPP_MARKET_BENCH=1"):
        ledger.invoke(contract, VPPO, "BenchSeedBook", P, "1000", "10")
    assert ledger.state == before


@pytest.mark.parametrize("value", ["0", "true", "yes", ""])
def test_only_the_exact_flag_value_enables_it(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(benchseed.ENV_FLAG, value)
    assert MarketContract().bench_seeding is False
    monkeypatch.setenv(benchseed.ENV_FLAG, "1")
    assert MarketContract().bench_seeding is True


def test_flag_is_read_when_the_contract_is_created(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(benchseed.ENV_FLAG, raising=False)
    ledger, contract = make(None)
    monkeypatch.setenv(benchseed.ENV_FLAG, "1")  # too late for this process's contract
    with pytest.raises(ChaincodeError, match="disabled"):
        ledger.invoke(contract, VPPO, "BenchSeedBook", P, "1000", "10")


def test_seeded_book_is_cleared_by_the_production_path() -> None:
    ledger, contract = make(True)
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
        ledger, contract = make(True)
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
    ledger, contract = make(True)
    with pytest.raises(ChaincodeError, match=match):
        ledger.invoke(contract, VPPO, "BenchSeedBook", *args)


def test_only_the_vppo_admin_and_only_while_open() -> None:
    ledger, contract = make(True)
    for caller in (grid_admin(), agg_admin(1), agg_trader(1)):
        with pytest.raises(ChaincodeError, match="only the VPPO admin"):
            ledger.invoke(contract, caller, "BenchSeedBook", P, "1000", "10")
    call(ledger, contract, VPPO, "ClosePeriod", P)
    with pytest.raises(ChaincodeError, match="the gate is closed"):
        ledger.invoke(contract, VPPO, "BenchSeedBook", P, "1000", "10")


def test_never_touches_a_real_aggregator() -> None:
    ledger, contract = make(True)
    call(ledger, contract, agg_admin(1005), "RequestAdmission", "1005", "R1")
    call(ledger, contract, VPPO, "ApproveAdmission", "1005")
    before = dict(ledger.state)
    with pytest.raises(ChaincodeError, match="Agg1005 is a registered .non-benchmark. aggregator"):
        ledger.invoke(contract, VPPO, "BenchSeedBook", P, "1000", "10")
    assert ledger.state == before
