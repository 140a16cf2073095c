"""vppctl demo paper on the in-memory fabric: totals, explanations, re-runs, package data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fake_fabric import FakeFabric, PaperMarket, invoke
from vppctl import paper_case
from vppctl.periods import Calendar

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "paper_case"
TEST_COPIES = Path(__file__).parent / "data" / "paper_case"

TOTALS_T02 = (
    "t=2 totals: P2P 600.56 kWh (paper 600.56); grid buys 6.14 kWh at 0.24 (paper 6.14); "
    "grid supplies 0 kWh at 0.38 (paper 0)"
)
TOTALS_T13 = (
    "t=13 totals: P2P 707.28 kWh (paper 707.28); grid buys 36.68 kWh at 0.65 (paper 36.68); "
    "grid supplies 0 kWh at 0.86 (paper 0)"
)


def test_demo_prints_both_tables_totals_and_why(fabric: FakeFabric) -> None:
    result = invoke("demo", "paper")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert TOTALS_T02 in out and TOTALS_T13 in out
    assert "next to the paper's Table 6" in out and "next to the paper's Table 7" in out
    assert "The first 3 matches agree with the paper" in out
    assert "rows 4 and 5 match Agg2 (offer 0.32) in round 1 with Agg3 (bidding 0.318)" in out
    assert "dearest seller first" in out
    assert "(vppctl clear --offline): yes" in out
    assert "Day 1 closed" in out and "no reputation moved" in out
    assert "Settlement of 00001-02" in out
    # each order by its own trader, each signature by its own party
    orders = fabric.submits("SubmitOrder")
    assert {c.identity for c in orders} == {f"agg{n}-trader" for n in range(1, 7)}
    for call in fabric.submits("SignContract"):
        assert re.fullmatch(r"agg[1-6]-trader", call.identity)
    statuses = json.loads(invoke("contracts", "-o", "json").stdout)
    assert {c["status"] for c in statuses if c["kind"] == "p2p"} == {"SIGNED"}
    periods = json.loads(invoke("period", "list", "--day", "1", "-o", "json").stdout)
    assert [p["status"] for p in periods] == ["SETTLED", "SETTLED"]
    assert "- t=13: clearing" in result.stderr  # the steps, on stderr


def test_demo_runs_again_on_a_fresh_day_with_the_same_result(fabric: FakeFabric) -> None:
    first = invoke("demo", "paper", "-o", "json")
    assert first.exit_code == 0, first.output
    registrations = len(fabric.submits("ApproveAdmission"))
    loads = len(fabric.submits("LoadTou")) + len(fabric.submits("LoadTopology"))
    resources = len(fabric.submits("RegisterResource"))
    second = invoke("demo", "paper", "-o", "json")
    assert second.exit_code == 0, second.output
    one, two = json.loads(first.stdout), json.loads(second.stdout)
    assert (one["day"], two["day"]) == (1, 2)
    assert two["day_closed"] is True
    for a, b in zip(one["periods"], two["periods"], strict=True):
        assert a["clearing"] == b["clearing"] and a["totals"] == b["totals"]
    assert two["periods"][0]["totals"] == {
        "grid_bought_kwh": 6.14,
        "grid_supplied_kwh": 0,
        "p2p_kwh": 600.56,
    }
    assert two["periods"][1]["paper_totals"]["grid_bought_kwh"] == 36.68
    assert all(p["consistent_with_offline"] for p in two["periods"])
    # set-up is done once
    assert len(fabric.submits("ApproveAdmission")) == registrations == 6
    assert len(fabric.submits("LoadTou")) + len(fabric.submits("LoadTopology")) == loads == 2
    assert len(fabric.submits("RegisterResource")) == resources


def test_deliveries_are_signed_interval_readings_of_the_site_meters(fabric: FakeFabric) -> None:
    """Issue 13: each site meter is a Grid-certified device; the ordered energy arrives as
    four signed 15-minute readings, the storage meter reports its hour, and the seal
    (which AggN may make only once every certified meter reported) carries their root."""
    result = invoke("demo", "paper", "-o", "json")
    assert result.exit_code == 0, result.output
    certified = fabric.submits("CertifyDevice")
    assert sorted(c.channel for c in certified) == [f"agg{n}" for n in range(1, 7)]
    assert {c.identity for c in certified} == {"grid-admin"}
    batches = fabric.submits("SubmitReadings")
    assert len(batches) == 12  # six ordering aggregators, two periods
    assert all(c.identity == f"{c.channel}-admin" for c in batches)
    book = {r.agg: r for r in paper_case.book(2)}
    for call in batches:
        items = json.loads(call.args[0])
        if not items[0][0].endswith("-02"):
            continue
        agg = int(call.channel[3:])
        assert [(i[1], i[2]) for i in items] == [(f"agg{agg}-m1", s) for s in range(4)]
        column = 3 if book[agg].side == "sell" else 4
        assert sum(i[column] for i in items) == book[agg].quantity_wh
    hourly = fabric.submits("RecordReading")
    assert {c.identity for c in hourly} == {f"agg{n}-meter2" for n in range(1, 7)}
    summary = json.loads(invoke("meter", "summary", "--agg", "3", "--period", "1-2",
                                "-o", "json").stdout)  # fmt: skip
    assert summary[0]["missing_meters"] == [] and summary[0]["readings"] == 5
    # A second run reuses the certified keys (kept next to the wallet): no new versions.
    assert invoke("demo", "paper", "-o", "json").exit_code == 0
    assert len(fabric.submits("CertifyDevice")) == 6


def test_no_settle_stops_after_signing(fabric: FakeFabric) -> None:
    result = invoke("demo", "paper", "--no-settle", "-o", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["day_closed"] is None and all(p["settlements"] == [] for p in doc["periods"])
    assert not fabric.submits("SettlePeriod") and not fabric.submits("RegisterResource")
    again = invoke("demo", "paper", "--no-settle", "-o", "json")
    assert json.loads(again.stdout)["day"] == 2


def test_existing_registrations_are_kept_and_explained(fabric: FakeFabric) -> None:
    PaperMarket(fabric).register(reputations_hour=13)
    result = invoke("demo", "paper")
    assert result.exit_code == 0, result.output
    assert not fabric.submits("ApproveAdmission")[6:]  # only the set-up's six
    assert "6 aggregator(s) already registered" in result.stderr
    assert "Agg1 0.823 (book 0.846)" in result.stdout  # t=2 cleared with the ledger's R
    assert TOTALS_T02 in result.stdout and TOTALS_T13 in result.stdout


def test_a_day_taken_meanwhile_moves_to_the_next(
    fabric: FakeFabric, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = PaperMarket(fabric)
    m.register()
    m.open(1, 2)  # someone else took day 1 just after the demo looked
    monkeypatch.setattr(Calendar, "fresh_day", lambda self: 1)
    result = invoke("demo", "paper", "--no-settle", "-o", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["day"] == 2


def test_needs_six_aggregators(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeFabric(aggs=3).install(monkeypatch)
    result = invoke("demo", "paper")
    assert result.exit_code == 1
    assert "the paper's case needs 6 aggregators" in result.stderr
    assert "agg4-trader" in result.stderr and "AGGS=6" in result.stderr


def test_csv_output(fabric: FakeFabric) -> None:
    result = invoke("demo", "paper", "--no-settle", "-o", "csv")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("t,row,round,seller,buyer,quantity_kwh,price,paper_round")
    assert lines[1].startswith("2,1,1,Agg1,Agg6,90.4,0.325086,1,Agg1,Agg6,90.4,0.325,")


@pytest.mark.parametrize("name", paper_case.FILES)
def test_packaged_data_equals_the_shared_case(name: str) -> None:
    packaged = paper_case.read_text(name)
    if (TEST_COPIES / name).exists():
        assert packaged == (TEST_COPIES / name).read_text()
    if not SHARED.is_dir():
        pytest.skip("shared data not next to this checkout")
    assert packaged == (SHARED / name).read_text()


def test_published_tables_parse() -> None:
    t2, t13 = paper_case.published(2), paper_case.published(13)
    assert [r.round for r in t2] == ["1", "1", "1", "1", "1", "grid"]
    assert str(t2[-1].quantity_kwh) == "6.14" and t2[-1].buyer == "Grid"
    p2p_kwh = sum(r.quantity_kwh for r in t13 if not r.is_grid)
    bought_wh = sum(r.quantity_wh for r in paper_case.book(13) if r.side == "buy")
    assert p2p_kwh * 1000 == bought_wh == 707_280
