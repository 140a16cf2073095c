"""`vppctl capacity sync|show` on the in-memory fabric: the bound of orders, and when it is stale.

PaperMarket certifies each aggregator a PV of 1000 kW and a load of 500 kW on
agg<N> and syncs them, so Agg3 may sell 1000 kWh and buy 500 kWh an hour.
"""

from __future__ import annotations

import json

import pytest
from fake_fabric import FakeFabric, PaperMarket, invoke
from fake_fabric import invoke_ok as ok


@pytest.fixture
def market(fabric: FakeFabric) -> PaperMarket:
    m = PaperMarket(fabric)
    m.register()
    m.open(1, 13)
    return m


def bid(qty: str, side: str = "sell") -> object:
    price = "0.70" if side == "sell" else "0.80"
    return invoke("bid", "--agg", "3", "--side", side, "--qty", qty, "--price", price)


def test_show_bounds_next_to_what_agg_n_certifies(fabric: FakeFabric, market: PaperMarket) -> None:
    rows = json.loads(ok("capacity", "show", "--all", "-o", "json").stdout)
    assert [r["agg"] for r in rows] == [f"Agg{n}" for n in range(1, 7)]
    assert rows[2] == {
        "agg": "Agg3",
        "sell_max_kwh": 1000,
        "buy_max_kwh": 500,
        "certified_supply_kw": 1000,
        "certified_load_kw": 500,
        "status": "in sync",
        "synced_by": "VPPOMSP",
        "synced_tx": rows[2]["synced_tx"],
    }
    assert "Sell ≤ kWh" in ok("capacity", "show", "--agg", "3").stdout


def test_a_certification_counts_once_synced_and_the_refusal_names_both_numbers(
    fabric: FakeFabric, market: PaperMarket
) -> None:
    over = bid("1000.001")
    assert over.exit_code == 1
    assert "quantity_kwh 1000.001 exceeds Agg3's bound of 1000 kWh" in over.stderr
    assert over.stderr.rstrip().endswith("[ORDER_OVER_CAPACITY]")
    ok("meter", "register", "agg3-wt", "-a", "3", "--kind", "WT", "--capacity", "200")
    ok("meter", "certify", "agg3-wt", "-a", "3", "--kind", "WT", "--capacity", "200")
    (row,) = json.loads(ok("capacity", "show", "--agg", "3", "-o", "json").stdout)
    assert (row["sell_max_kwh"], row["certified_supply_kw"]) == (1000, 1200)
    assert row["status"] == "stale: vppctl capacity sync --agg 3"
    assert bid("1200").exit_code == 1  # vpp-main still has the old bound
    (synced,) = json.loads(ok("capacity", "sync", "--agg", "3", "-o", "json").stdout)
    assert synced["sell_max_kwh"] == 1200 and synced["synced_by"] == "Agg3MSP"
    assert fabric.submits("SyncCapacity")[-1].identity == "agg3-trader"
    assert bid("1200").exit_code == 0


def test_sync_all_as_the_vppo_and_usage_errors(fabric: FakeFabric, market: PaperMarket) -> None:
    rows = json.loads(ok("capacity", "sync", "--all", "-o", "json").stdout)
    assert len(rows) == 6 and {r["synced_by"] for r in rows} == {"VPPOMSP"}
    assert {c.identity for c in fabric.submits("SyncCapacity")[-6:]} == {"vppo-admin"}
    neither = invoke("capacity", "sync")
    assert neither.exit_code == 2 and "--agg N, or --all" in neither.stderr
    both = invoke("capacity", "show", "--agg", "3", "--all")
    assert both.exit_code == 2
    other = invoke("capacity", "sync", "--agg", "3", "--as", "agg4-trader")
    assert other.exit_code == 1 and "[NOT_AUTHORIZED]" in other.stderr


def test_retire_withdraws_the_bound_on_vpp_main_at_once(
    fabric: FakeFabric, market: PaperMarket
) -> None:
    """A retirement must not leave vpp-main's bound stale until someone remembers to sync:
    Agg3 could go on offering the retired PV's energy. `meter retire` syncs as the Grid."""
    assert bid("1000").exit_code == 0
    retired = ok("meter", "retire", "agg3-site", "-a", "3")
    assert "sell ≤ 0 kWh, buy ≤ 500 kWh" in " ".join(retired.stdout.split())  # as wrapped
    assert fabric.submits("SyncCapacity")[-1].identity == "grid-admin"
    (row,) = json.loads(ok("capacity", "show", "--agg", "3", "-o", "json").stdout)
    assert (row["sell_max_kwh"], row["status"]) == (0, "in sync")
    over = bid("0.001")
    assert over.exit_code == 1 and "[ORDER_OVER_CAPACITY]" in over.stderr
