"""The VPPO's commands: register, tou, topology, period, clear, void, anchor, settle, day close."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from fake_fabric import FakeFabric, PaperMarket, invoke
from fake_fabric import invoke_ok as ok
from typer.testing import Result
from vpp_market.book import (
    read_aggregators,
    read_book,
    read_tie_lines,
    result_to_json,
    with_regions,
)
from vpp_market.clearing import clear
from vpp_market.tou import prices_for

DATA = Path(__file__).parent / "data" / "paper_case"


def vppctl(*args: str) -> Result:
    return invoke(*args)


@pytest.fixture
def market(fabric: FakeFabric) -> PaperMarket:
    m = PaperMarket(fabric)
    m.register(reputations_hour=13)
    return m


def test_register_defaults_and_options(fabric: FakeFabric) -> None:
    row = json.loads(ok("register", "--agg", "3", "--region", "R3", "-o", "json").stdout)[0]
    assert row == {
        "agg": "Agg3",
        "channel": "agg3",
        "meters": [],
        "mspid": "Agg3MSP",
        "region": "R3",
        "reputation": 0.5,
    }
    (asked,) = fabric.submits("RequestAdmission")
    assert asked.identity == "agg3-admin" and asked.args == ("Agg3", "R3", "")
    (approved,) = fabric.submits("ApproveAdmission")
    assert approved.identity == "vppo-admin" and approved.args == ("Agg3", "")
    full = ok(
        "register", "-a", "4", "--region", "R4", "--reputation", "0.782",
        "--meter", "agg4-m1", "--meter", "agg4-m2", "-o", "json",
    )  # fmt: skip
    assert json.loads(full.stdout)[0]["meters"] == ["agg4-m1", "agg4-m2"]
    again = vppctl("register", "--agg", "3", "--region", "R3")
    assert again.exit_code == 1 and "Agg3 is already registered" in again.stderr
    bad = vppctl("register", "--agg", "5", "--region", "R5", "--reputation", "1.5")
    assert bad.exit_code == 2 and "--reputation '1.5': is above 1" in bad.stderr
    # Nobody registers an MSP it does not hold: Agg6's admin cannot ask for Agg5.
    other = vppctl("register", "--agg", "5", "--region", "R5", "--admin", "agg6-admin")
    assert other.exit_code == 1 and "only the Agg5MSP admin may ask" in other.stderr
    # Each organisation's own step: Agg5 asks, a trader cannot approve, the VPPO does.
    asked5 = ok("register", "--agg", "5", "--region", "R5", "--step", "request", "-o", "json")
    assert json.loads(asked5.stdout)[0]["mspid"] == "Agg5MSP"
    trader = vppctl("register", "--agg", "5", "--step", "approve", "--as", "agg5-trader")
    assert trader.exit_code == 1 and "only the VPPO admin may do this" in trader.stderr
    done = ok("register", "--agg", "5", "--step", "approve", "-o", "json")
    assert json.loads(done.stdout)[0]["region"] == "R5"
    missing = vppctl("register", "--agg", "6")
    assert missing.exit_code == 2 and "--region" in missing.stderr


def test_tou_and_topology_load_and_show(fabric: FakeFabric, tmp_path: Path) -> None:
    default = json.loads(ok("tou", "show", "-o", "json").stdout)
    assert default[0] == {"end_hour": 7, "purchase": 0.24, "sale": 0.38, "start_hour": 23}
    flat = tmp_path / "flat.csv"
    flat.write_text("start_hour,end_hour,grid_sale_price,grid_purchase_price\n0,24,0.5,0.25\n")
    loaded = json.loads(ok("tou", "load", str(flat), "-o", "json").stdout)
    assert loaded == [{"end_hour": 24, "purchase": 0.25, "sale": 0.5, "start_hour": 0}]
    assert json.loads(ok("tou", "show", "-o", "json").stdout) == loaded
    assert "loaded by" in ok("tou", "show").stdout

    gap = tmp_path / "gap.csv"
    gap.write_text("start_hour,end_hour,grid_sale_price,grid_purchase_price\n0,23,0.5,0.25\n")
    refused = vppctl("tou", "load", str(gap))
    assert refused.exit_code == 2 and "no band covers 23:00-24:00" in refused.stderr

    assert "none loaded" in ok("topology", "show").stdout
    lines = json.loads(ok("topology", "load", str(DATA / "tie_lines.csv"), "-o", "json").stdout)
    assert lines[0] == {"from_region": "R1", "limit_kw": 10000, "to_region": "R2"}
    assert len(json.loads(ok("topology", "show", "-o", "json").stdout)) == 5
    csv_rows = list(csv.DictReader(io.StringIO(ok("topology", "show", "-o", "csv").stdout)))
    assert csv_rows[-1] == {"from_region": "R5", "to_region": "R6", "limit_kw": "10000"}


def test_period_open_close_show_list(fabric: FakeFabric, market: PaperMarket) -> None:
    opened = json.loads(ok("period", "open", "-t", "2", "-t", "13", "-o", "json").stdout)
    assert [(p["period"], p["status"], p["sale"], p["purchase"]) for p in opened] == [
        ("00001-02", "OPEN", 0.38, 0.24),
        ("00001-13", "OPEN", 0.86, 0.65),
    ]
    listed = json.loads(ok("period", "list", "-o", "json").stdout)
    assert [p["period"] for p in listed] == ["00001-02", "00001-13"]
    ambiguous = vppctl("period", "close")
    assert ambiguous.exit_code == 2 and "several periods are open" in ambiguous.stderr
    closed = json.loads(ok("period", "close", "-t", "2", "-o", "json").stdout)
    assert closed[0]["status"] == "CLOSED"
    closed = json.loads(ok("period", "close", "-o", "json").stdout)  # the only open one
    assert closed[0]["period"] == "00001-13"
    shown = json.loads(ok("period", "show", "-t", "1-2", "-o", "json").stdout)[0]
    assert shown["status"] == "CLOSED" and shown["hours"] == "01:00-02:00"
    again = vppctl("period", "open", "-t", "1-2")
    assert again.exit_code == 1 and "already open or past" in again.stderr
    other_day = json.loads(ok("period", "open", "-t", "5", "--day", "3", "-o", "json").stdout)
    assert other_day[0]["period"] == "00003-05"
    assert [
        p["period"] for p in json.loads(ok("period", "list", "--day", "3", "-o", "json").stdout)
    ] == ["00003-05"]


def test_clear_on_the_network_prints_like_offline(fabric: FakeFabric, market: PaperMarket) -> None:
    market.open(1, 13)
    market.submit_book(1, 13)
    still_open = vppctl("clear", "--period", "13")
    assert still_open.exit_code == 1 and "is OPEN: close the gate first" in still_open.stderr
    cleared = ok("clear", "--period", "13", "--close", "--json")
    topology = read_tie_lines(DATA / "tie_lines.csv")
    book = with_regions(
        read_book(DATA / "book_t13.csv"), read_aggregators(DATA / "aggregators.csv"), topology
    )
    assert json.loads(cleared.stdout) == result_to_json(
        clear(book.orders, prices_for(13), topology)
    )
    assert [c.function for c in fabric.submits()][-2:] == ["ClosePeriod", "ClearPeriod"]
    twice = vppctl("clear", "--period", "1-13")
    assert twice.exit_code == 1 and "already been cleared" in twice.stderr


def test_clear_table_and_csv(fabric: FakeFabric, market: PaperMarket) -> None:
    market.open(1, 2)
    market.submit_book(1, 2)
    table = ok("clear", "-t", "2", "--close")
    assert "Period 00001-02 (01:00-02:00)" in table.stdout
    assert "P2P 600.56 kWh in 5 matches; the grid buys 6.14 kWh" in table.stdout
    market.open(1, 13)
    market.submit_book(1, 13)
    rows = list(csv.DictReader(io.StringIO(ok("clear", "-t", "13", "--close", "-o", "csv").stdout)))
    assert [r["kind"] for r in rows] == ["p2p"] * 4 + ["grid"] * 2
    assert rows[-1] == {
        "kind": "grid", "round": "", "seller": "Agg6", "buyer": "Grid",
        "quantity_kwh": "31", "price": "0.65", "xi": "",
    }  # fmt: skip


def _settle_ready(market: PaperMarket, hour: int = 13) -> str:
    pid = market.cleared(1, hour)
    market.sign_all(pid)
    market.deliver(pid, hour)
    return pid


def test_settle_anchors_and_prints_settlements(fabric: FakeFabric, market: PaperMarket) -> None:
    pid = _settle_ready(market)
    missing = vppctl("settle", "--period", "13")
    assert missing.exit_code == 1
    assert "cannot settle yet" in missing.stderr and "not anchored" in missing.stderr
    settled = ok("settle", "--period", "13", "--anchor", "-o", "json")
    rows = json.loads(settled.stdout)
    assert [r["agg"] for r in rows] == [f"Agg{n}" for n in range(1, 7)]
    agg6 = rows[-1]
    assert agg6 == {
        "a": 1, "agg": "Agg6", "contracted_kwh": 0, "delivered_kwh": 31, "deviation_kwh": 0,
        "expenditure": 0, "grid_kwh": 31, "income": 20.15, "net": 20.15, "period": pid,
        "quantity_kwh": 31, "side": "sell",
    }  # fmt: skip
    assert json.loads(ok("settlements", "-t", "13", "-o", "json").stdout) == rows
    mine = json.loads(ok("settlements", "-t", "13", "--agg", "3", "-o", "json").stdout)
    assert [r["agg"] for r in mine] == ["Agg3"]
    table = ok("settlements", "-t", "1-13").stdout
    for header in ("Contracted", "Delivered", "Deviation", "Income", "Expenditure", "Net"):
        assert header in table
    again = vppctl("settle", "-t", "13")
    assert again.exit_code == 1 and "is SETTLED" in again.stderr
    wallets = json.loads(ok("wallet", "-o", "json").stdout)
    assert round(sum(w["balance"] for w in wallets), 6) == 0


def test_settlements_before_settling(fabric: FakeFabric, market: PaperMarket) -> None:
    market.cleared(1, 13)
    early = vppctl("settlements", "--period", "13")
    assert early.exit_code == 1 and "is CLEARED, not settled yet" in early.stderr


def test_lookups_use_the_market_queries(fabric: FakeFabric, market: PaperMarket) -> None:
    """One GetCalendar finds the periods; GetPeriod only for those shown; no raw key reads."""
    _settle_ready(market)
    ok("settle", "--period", "13", "--anchor")
    market.open(1, 2)
    market.open(3, 5)

    def evaluated(*args: str) -> list[tuple[str, tuple[str, ...]]]:
        start = len(fabric.calls)
        ok(*args)
        return [(c.function, c.args) for c in fabric.calls[start:] if not c.submitted]

    listed = evaluated("period", "list")
    assert [f for f, _ in listed].count("GetCalendar") == 1
    assert sorted(a for f, a in listed if f == "GetPeriod") == [
        ("00001-02",),
        ("00001-13",),
        ("00003-05",),
    ]
    assert evaluated("settlements", "-t", "13") == [
        ("GetCalendar", ()),
        ("GetPeriod", ("00001-13",)),
        ("GetSettlements", ("00001-13",)),
    ]
    assert evaluated("tou", "show") == [("GetConfig", ("tou",))]
    assert evaluated("topology", "show") == [("GetConfig", ("topology",))]
    assert "GetHistory" not in {c.function for c in fabric.calls}


def test_a_bare_hour_finds_a_closed_days_period(fabric: FakeFabric, market: PaperMarket) -> None:
    _settle_ready(market)
    ok("settle", "--period", "13", "--anchor")
    ok("day", "close")
    market.open(2, 14)
    shown = json.loads(ok("period", "show", "-t", "13", "-o", "json").stdout)[0]
    assert (shown["period"], shown["status"]) == ("00001-13", "SETTLED")
    assert len(json.loads(ok("settlements", "-t", "13", "-o", "json").stdout)) == 6
    missing = vppctl("period", "show", "-t", "7")
    assert missing.exit_code == 1 and "no period with hour 7 found" in missing.stderr


def test_void_and_anchor_and_day_close(fabric: FakeFabric, market: PaperMarket) -> None:
    pid = market.cleared(1, 13)
    early = vppctl("void", "--period", "13")
    assert early.exit_code == 1 and "signing window" in early.stderr, early.stderr
    fabric.main.advance(900)  # the default signing window, in ledger time
    voided = ok("void", "--period", "13", "-o", "json")
    grid = json.loads(voided.stdout)
    assert len(grid) == 8 and {c["voided_from"] for c in grid} == {
        f"{pid}-000{i}" for i in range(1, 5)
    }
    assert ok("void", "-t", "13").stdout.count("nothing was unsigned") == 1
    market.deliver(pid, 13)
    anchored = json.loads(ok("anchor", "--period", "13", "--agg", "3", "-o", "json").stdout)
    assert anchored[0]["agg"] == "Agg3" and anchored[0]["metered_kwh"] == 285.6
    rest = json.loads(ok("anchor", "--period", "13", "-o", "json").stdout)
    assert sorted(r["agg"] for r in rest) == ["Agg1", "Agg2", "Agg4", "Agg5", "Agg6"]
    none_left = vppctl("anchor", "--period", "13")
    assert none_left.exit_code == 1 and "already anchored" in none_left.stderr
    ok("settle", "-t", "13")
    closed = json.loads(ok("day", "close", "-o", "json").stdout)
    assert [r["agg"] for r in closed] == [f"Agg{n}" for n in range(1, 7)]
    history = json.loads(ok("reputation", "--agg", "3", "--history", "-o", "json").stdout)
    assert history[0]["day"] == 1 and history[0]["a_day"] == 1
    nothing = vppctl("day", "close")
    assert nothing.exit_code == 1 and "no day with periods is waiting" in nothing.stderr


def test_market_config_set_show_and_the_signing_window(fabric: FakeFabric) -> None:
    default = json.loads(ok("config", "show", "-o", "json").stdout)[0]
    assert (default["signing_window_s"], default["seal_deadline_s"]) == (900, 3600)
    assert "defaults, never set" in ok("config", "show").stdout
    ok("config", "set", "--signing-window", "5")
    shown = json.loads(ok("config", "show", "-o", "json").stdout)[0]
    assert (shown["signing_window_s"], shown["seal_deadline_s"]) == (5, 3600)
    assert vppctl("config", "set").exit_code == 2
    trader = vppctl("config", "set", "--seal-deadline", "1", "--as", "agg3-trader")
    assert trader.exit_code == 1 and "only the VPPO admin" in trader.stderr
    m = PaperMarket(fabric)
    m.register()
    pid = m.cleared(1, 13)
    early = vppctl("void", "--period", pid)
    assert early.exit_code == 1 and "5 s after clearing" in early.stderr
    fabric.main.advance(5)
    assert vppctl("void", "--period", pid).exit_code == 0


def test_topology_remove(fabric: FakeFabric) -> None:
    PaperMarket(fabric).register()  # loads the paper's tie-lines
    removed = ok("topology", "remove")
    assert "unlimited" in removed.stdout + removed.stderr
    assert "none loaded" in ok("topology", "show").stdout
    again = vppctl("topology", "remove")
    assert again.exit_code == 1 and "no topology is loaded" in again.stderr


def test_orders_shows_a_period_still_open_on_a_closed_day(
    fabric: FakeFabric, market: PaperMarket
) -> None:
    """Closing day 2 skips day 1 if none of its periods settled, and leaves 1-02 OPEN
    (orders may still arrive): `vppctl orders` without --period lists it with day 3's."""
    market.open(1, 2)
    market.submit_book(1, 2)
    pid = market.cleared(2, 13)
    market.sign_all(pid)
    market.deliver(pid, 13)
    ok("settle", "--period", pid, "--anchor")
    ok("day", "close", "--day", "2")
    market.open(3, 14)
    shown = vppctl("orders")
    assert shown.exit_code == 0, shown.output
    title = " ".join(shown.stdout.split())  # the table title may wrap
    assert "00001-02 OPEN" in title and "00003-14 OPEN" in title
    rows = json.loads(ok("orders", "-o", "json").stdout)
    assert {r["period"] for r in rows} == {"00001-02"}  # 3-14 has no orders yet
    assert len(rows) == 6
