"""Queries and meters: reputation, wallet, aggregators, history, version, ping, meter ..."""

from __future__ import annotations

import csv
import io
import json

import pytest
from fake_fabric import FakeFabric, PaperMarket, invoke
from fake_fabric import invoke_ok as ok


@pytest.fixture
def market(fabric: FakeFabric) -> PaperMarket:
    m = PaperMarket(fabric)
    m.register()
    return m


def test_reputation_wallet_aggregators(fabric: FakeFabric, market: PaperMarket) -> None:
    reps = json.loads(ok("reputation", "-o", "json").stdout)
    assert reps[0] == {"a": 1, "agg": "Agg1", "day": None, "reputation": 0.846}
    assert [r["agg"] for r in reps] == [f"Agg{n}" for n in range(1, 7)]
    one = json.loads(ok("reputation", "--agg", "3", "-o", "json").stdout)
    assert one == [{"a": 1, "agg": "Agg3", "day": None, "reputation": 0.965}]
    assert "no day closed yet" in ok("reputation", "--history").stdout
    wallets = json.loads(ok("wallet", "-o", "json").stdout)
    assert {w["wallet"] for w in wallets} == {f"agg{n}" for n in range(1, 7)}
    assert ok("wallet", "--agg", "2", "-o", "csv").stdout == "wallet,owner,balance\nagg2,Agg2,0\n"
    no_identity = invoke("wallet", "--agg", "9")  # as agg9-trader, which the wallet lacks
    assert no_identity.exit_code == 2 and "agg9-trader" in no_identity.stderr
    assert "pass --as" in no_identity.stderr
    missing = invoke("wallet", "--agg", "9", "--as", "vppo-admin")
    assert missing.exit_code == 1 and "Agg9 has no wallet" in missing.stderr
    aggs = json.loads(ok("aggregators", "-o", "json").stdout)
    assert aggs[2] == {
        "agg": "Agg3",
        "balance": 0,
        "channel": "agg3",
        "meters": ["agg3-m1", "agg3-m2"],
        "mspid": "Agg3MSP",
        "region": "R3",
        "reputation": 0.965,
    }
    unknown = invoke("reputation", "--agg", "9", "--as", "grid-admin")
    assert unknown.exit_code == 1 and "refused by chaincode: GetReputation: Agg9" in unknown.stderr


def test_empty_registry(fabric: FakeFabric) -> None:
    result = invoke("reputation")
    assert result.exit_code == 1 and "no aggregator is registered yet" in result.stderr


def test_history_version_ping(fabric: FakeFabric, market: PaperMarket) -> None:
    market.open(1, 13)
    history = json.loads(ok("history", "period~00001~13", "-o", "json").stdout)
    assert len(history) == 1 and history[0]["value"]["status"] == "OPEN"
    assert history[0]["deleted"] is False
    table = ok("history", "day~00001").stdout
    assert '"closed": false' in table
    assert "never written" in ok("history", "order~00001~13~0003").stdout
    versions = json.loads(ok("version", "--agg", "3", "-o", "json").stdout)
    assert [(v["component"], v["channel"]) for v in versions] == [
        ("vppctl", None),
        ("market", "vpp-main"),
        ("meter", "agg3"),
    ]
    pinged = json.loads(ok("ping", "--as", "agg3-trader", "-o", "json").stdout)[0]
    assert pinged["mspid"] == "Agg3MSP" and pinged["channel"] == "vpp-main"
    last = json.loads(ok("ping", "--last", "Agg3MSP", "-o", "json").stdout)[0]
    assert last["tx_id"] == pinged["tx_id"]
    meter_ping = json.loads(ok("ping", "--agg", "2", "-o", "json").stdout)[0]
    assert meter_ping["channel"] == "agg2" and meter_ping["mspid"] == "Agg2MSP"


def test_meter_commands(fabric: FakeFabric, market: PaperMarket) -> None:
    registered = json.loads(
        ok(
            "meter", "register", "agg3-ess", "--agg", "3", "--kind", "ess",
            "--capacity", "200", "--meter", "agg3-m2", "-o", "json",
        ).stdout
    )  # fmt: skip
    assert registered == [
        {
            "capacity_kw": 200,
            "id": "agg3-ess",
            "kind": "ESS",
            "meter": "agg3-m2",
            "status": "PROPOSED",
        }
    ]
    assert fabric.submits("RegisterResource")[-1].identity == "agg3-admin"
    resources = json.loads(ok("meter", "resources", "--agg", "3", "-o", "json").stdout)
    assert {r["id"]: r["status"] for r in resources} == {
        "agg3-site": "CERTIFIED",
        "agg3-load": "CERTIFIED",
        "agg3-ess": "PROPOSED",
    }
    capacity = json.loads(ok("meter", "capacity", "--agg", "3", "-o", "json").stdout)[0]
    assert capacity == {"agg": 3, "supply_kw": 1000, "load_kw": 500}
    uncertified = invoke("meter", "read", "-a", "3", "-t", "1-13", "--as", "agg3-meter2")
    assert uncertified.exit_code == 1 and "no resource of it is certified" in uncertified.stderr
    ok("meter", "certify", "agg3-ess", "-a", "3", "--kind", "ESS", "--capacity", "200",
       "--meter", "agg3-m2")  # fmt: skip
    assert fabric.submits("CertifyResource")[-1].identity == "grid-admin"
    capacity = json.loads(ok("meter", "capacity", "--agg", "3", "-o", "json").stdout)[0]
    assert capacity == {"agg": 3, "supply_kw": 1200, "load_kw": 700}
    market.cleared(1, 13)
    read = json.loads(
        ok("meter", "read", "--agg", "3", "-t", "13", "--imported", "285.6", "-o", "json").stdout
    )[0]
    assert (read["meter"], read["imported_kwh"], read["exported_kwh"]) == ("agg3-m1", 285.6, 0)
    call = fabric.submits("RecordReading")[-1]
    assert call.identity == "agg3-meter1" and call.channel == "agg3"
    assert call.args == ("00001-13", "0", "285600")
    ok("meter", "read", "-a", "3", "-t", "1-13", "--as", "agg3-meter2", "--exported", "1.5")
    twice = invoke("meter", "read", "-a", "3", "-t", "1-13", "--imported", "1")
    assert twice.exit_code == 1 and "already has a reading" in twice.stderr
    wrong = invoke("meter", "read", "-a", "3", "-t", "1-13", "--as", "agg3-trader")
    assert wrong.exit_code == 1 and "issued by GridMSP for Agg3" in wrong.stderr
    rows = list(
        csv.DictReader(
            io.StringIO(ok("meter", "readings", "-a", "3", "-t", "13", "-o", "csv").stdout)
        )
    )
    assert [(r["meter"], r["exported_kwh"], r["imported_kwh"]) for r in rows] == [
        ("agg3-m1", "0", "285.6"),
        ("agg3-m2", "1.5", "0"),
    ]
    unsealed = invoke("meter", "summary", "-a", "3", "-t", "13")
    assert unsealed.exit_code == 1 and "is not sealed on channel agg3" in unsealed.stderr
    sealed = json.loads(ok("meter", "seal", "-a", "3", "-t", "13", "-o", "json").stdout)[0]
    assert sealed["net_exported_kwh"] == -284.1 and sealed["missing_meters"] == []
    summary = json.loads(ok("meter", "summary", "-a", "3", "-t", "13", "-o", "json").stdout)
    assert summary == [sealed]
    assert "(sealed)" in ok("meter", "readings", "-a", "3", "-t", "13").stdout
    bad = invoke("meter", "read", "-a", "3", "-t", "13", "--imported", "0.0001")
    assert bad.exit_code == 2 and "--imported '0.0001': has more than 3 decimals" in bad.stderr
