"""vppctl bid / orders / cancel / contracts / sign against the real chaincode in memory."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from fake_fabric import FakeFabric, PaperMarket, invoke
from typer.testing import Result
from vpp_market.model import PeriodPrices
from vpp_market.quotation import first_quotation


def vppctl(*args: str) -> Result:
    return invoke(*args)


@pytest.fixture
def market(fabric: FakeFabric) -> PaperMarket:
    """Agg1..Agg6 registered, period 1-13 open."""
    m = PaperMarket(fabric)
    m.register()
    m.open(1, 13)
    return m


def orders_of(fabric: FakeFabric, period: str) -> list[dict]:
    raw = fabric.invoke("vppo-admin", "vpp-main", "market", "GetOrderBook", (period,), submit=False)
    return json.loads(raw)["orders"]


def test_bid_with_flags_uses_the_open_period_and_the_trader(
    fabric: FakeFabric, market: PaperMarket
) -> None:
    result = vppctl(
        "bid", "--agg", "3", "--side", "buy", "--qty", "285.6", "--price", "0.713",
        "--reserve", "0.736", "--output", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["period"] == "00001-13" and row["agg"] == "Agg3" and row["side"] == "buy"
    assert (row["quantity_kwh"], row["offer"], row["reserve"]) == (285.6, 0.713, 0.736)
    assert row["replaced"] is False
    assert list(row) == sorted(row)  # stable machine output
    (call,) = fabric.submits("SubmitOrder")
    assert call.identity == "agg3-trader"
    # Sealed: nothing in the arguments (the block keeps them), the order in transient data
    # with a fresh salt, endorsed by the market's endorsers and Agg3's own peer.
    assert call.args == ()
    sent = json.loads(call.transient["order"])
    assert len(sent.pop("salt")) == 64
    assert sent == {
        "agg": "Agg3",
        "period": "00001-13",
        "side": "buy",
        "quantity_kwh": "285.6",
        "offer": "0.713",
        "reserve": "0.736",
    }
    assert call.endorsing_orgs == ("Agg3MSP", "GridMSP", "VPPOMSP")


def test_bid_amends_the_standing_order_with_only_a_price(
    fabric: FakeFabric, market: PaperMarket
) -> None:
    first = vppctl("bid", "-a", "3", "--side", "buy", "-q", "285.6", "-p", "0.713", "-r", "0.736")
    assert first.exit_code == 0, first.output
    again = vppctl("bid", "--agg", "3", "--price", "0.72", "-o", "json")
    assert again.exit_code == 0, again.output
    (row,) = json.loads(again.stdout)
    assert (row["side"], row["quantity_kwh"], row["offer"], row["reserve"]) == (
        "buy",
        285.6,
        0.72,
        0.736,
    )
    assert row["replaced"] is True
    assert len(orders_of(fabric, "00001-13")) == 1


def test_new_bid_reserves_at_the_offer(fabric: FakeFabric, market: PaperMarket) -> None:
    result = vppctl("bid", "--agg", "1", "--side", "sell", "--qty", "10", "--price", "0.7")
    assert result.exit_code == 0, result.output
    (order,) = orders_of(fabric, "00001-13")
    assert order["offer"] == order["reserve"] == 700_000


def test_bid_from_forecast_uses_first_quotation(fabric: FakeFabric, market: PaperMarket) -> None:
    result = vppctl(
        "bid", "--agg", "1", "--forecast-output", "900", "--forecast-load", "581.3",
        "--cost", "0.3", "-o", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    quote = first_quotation(PeriodPrices(13, 860_000, 650_000), 900_000, 581_300, 300_000)
    assert quote is not None
    assert row["side"] == "sell" and row["quantity_kwh"] == 318.7
    assert row["offer"] == quote.offer / 1_000_000 == row["reserve"]


def test_bid_forecast_buyer_and_price_override(fabric: FakeFabric, market: PaperMarket) -> None:
    result = vppctl(
        "bid", "--agg", "3", "--forecast-output", "100", "--forecast-load", "385.6",
        "--price", "0.8", "--reserve", "0.85", "-o", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert (row["side"], row["quantity_kwh"], row["offer"], row["reserve"]) == (
        "buy",
        285.6,
        0.8,
        0.85,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--agg", "3", "--price", "0.713"], "a new order needs --side and --qty"),
        (["--agg", "3", "--side", "buy", "--qty", "1"], "pass --price"),
        (["--side", "buy", "--qty", "1", "--price", "0.7"], "pass --agg N"),
        (["--agg", "3", "--forecast-output", "10"], "go together"),
        (["--agg", "3", "--price", "0.7135001"], "--price '0.7135001': has more than 6 decimals"),
        (["--agg", "3", "--qty", "1.2345", "--side", "buy", "-p", "1"], "more than 3 decimals"),
        (
            ["--agg", "3", "--forecast-output", "10", "--forecast-load", "20", "--side", "sell"],
            "--side sell contradicts the forecast",
        ),
        (["--agg", "3", "--period", "25", "--side", "buy", "-q", "1", "-p", "0.7"], "hour 25"),
    ],
)
def test_bid_usage_errors_are_one_line_exit_2(
    fabric: FakeFabric, market: PaperMarket, args: list[str], message: str
) -> None:
    result = vppctl("bid", *args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("vppctl bid: error: ")
    assert message in result.stderr
    assert not fabric.submits("SubmitOrder")


def test_bid_refused_by_chaincode(fabric: FakeFabric, market: PaperMarket) -> None:
    result = vppctl("bid", "--agg", "3", "--side", "buy", "--qty", "1", "--price", "0.6")
    assert result.exit_code == 1
    assert result.stdout == ""
    line = result.stderr.strip()
    assert line.startswith("vppctl bid: error: refused by chaincode: SubmitOrder: Agg3: offer")
    assert "below the grid purchase price" in line
    assert "\n" not in line and "Traceback" not in result.output


def test_bid_as_another_aggregator_is_refused(fabric: FakeFabric, market: PaperMarket) -> None:
    result = vppctl(
        "bid", "--agg", "3", "--as", "agg4-trader", "--side", "buy", "-q", "1", "-p", "0.7"
    )
    assert result.exit_code == 1
    assert "refused by chaincode" in result.stderr and "may not trade for Agg3" in result.stderr


def test_agg_is_taken_from_the_identity(fabric: FakeFabric, market: PaperMarket) -> None:
    result = vppctl("bid", "--as", "agg5-admin", "--side", "sell", "-q", "5", "-p", "0.7")
    assert result.exit_code == 0, result.output
    (call,) = fabric.submits("SubmitOrder")
    assert call.identity == "agg5-admin" and json.loads(call.transient["order"])["agg"] == "Agg5"


def test_no_open_period_and_several_open_periods(fabric: FakeFabric) -> None:
    m = PaperMarket(fabric)
    m.register()
    none = vppctl("bid", "--agg", "3", "--side", "buy", "-q", "1", "-p", "0.7")
    assert none.exit_code == 1 and "no period is open" in none.stderr
    m.open(1, 13)
    m.open(1, 14)
    several = vppctl("bid", "--agg", "3", "--side", "buy", "-q", "1", "-p", "0.7")
    assert several.exit_code == 2
    assert "several periods are open (00001-13, 00001-14)" in several.stderr
    by_hour = vppctl("bid", "--agg", "3", "-t", "14", "--side", "buy", "-q", "1", "-p", "0.7")
    assert by_hour.exit_code == 0, by_hour.output
    assert orders_of(fabric, "00001-14")[0]["agg"] == 3


def test_orders_in_three_formats(fabric: FakeFabric, market: PaperMarket) -> None:
    market.submit_book(1, 13)
    table = vppctl("orders")
    assert table.exit_code == 0, table.output
    assert "Orders of 00001-13 OPEN" in table.stdout and "285.6" in table.stdout
    assert "\x1b[" not in table.stdout  # no colour off a terminal
    as_json = json.loads(vppctl("orders", "-o", "json").stdout)
    assert [o["agg"] for o in as_json] == ["Agg1", "Agg2", "Agg3", "Agg4", "Agg5", "Agg6"]
    assert as_json[2] == {
        "agg": "Agg3",
        "offer": 0.713,
        "period": "00001-13",
        "quantity_kwh": 285.6,
        "reserve": 0.736,
        "sealed": False,
        "side": "buy",
        "submitter": "trader@agg3",
    }
    rows = list(csv.DictReader(io.StringIO(vppctl("orders", "--output", "csv").stdout)))
    assert rows[3] == {
        "period": "00001-13",
        "agg": "Agg4",
        "side": "buy",
        "quantity_kwh": "421.68",
        "offer": "0.76",
        "reserve": "0.78",
        "sealed": "no",
        "submitter": "trader@agg4",
    }
    mine = json.loads(vppctl("orders", "--agg", "4", "--period", "1-13", "-o", "json").stdout)
    assert [o["agg"] for o in mine] == ["Agg4"] and mine[0]["quantity_kwh"] == 421.68


def test_an_aggregator_sees_its_own_order_and_only_that_others_exist(
    fabric: FakeFabric, market: PaperMarket
) -> None:
    market.submit_book(1, 13)
    seen = json.loads(vppctl("orders", "--as", "agg4-trader", "-o", "json").stdout)
    assert [o["agg"] for o in seen] == ["Agg1", "Agg2", "Agg3", "Agg4", "Agg5", "Agg6"]
    for row in seen:
        sealed = row["agg"] != "Agg4"
        assert row["sealed"] is sealed
        hidden = [row[k] for k in ("side", "quantity_kwh", "offer", "reserve")]
        assert (hidden == [None] * 4) is sealed, row


def test_cancel(fabric: FakeFabric, market: PaperMarket) -> None:
    market.submit_book(1, 13)
    result = vppctl("cancel", "--agg", "3", "-o", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"agg": "Agg3", "cancelled": True, "period": "00001-13"}]
    assert 3 not in [o["agg"] for o in orders_of(fabric, "00001-13")]
    again = vppctl("cancel", "--agg", "3")
    assert again.exit_code == 1 and "Agg3 has no order in period 00001-13" in again.stderr


def test_contracts_and_sign(fabric: FakeFabric) -> None:
    m = PaperMarket(fabric)
    m.register()
    pid = m.cleared(1, 13)
    listed = json.loads(vppctl("contracts", "--period", "13", "-o", "json").stdout)
    assert [c["kind"] for c in listed] == ["p2p"] * 4 + ["grid"] * 2
    assert all(c["status"] == "MATCHED" for c in listed if c["kind"] == "p2p")
    assert listed[0]["id"] == f"{pid}-0001" and listed[0]["signed_by"] == []
    pending = json.loads(vppctl("contracts", "--agg", "4", "--pending", "-o", "json").stdout)
    assert {c["buyer"] for c in pending} == {"Agg4"} and len(pending) == 3

    signed = vppctl("sign", "--agg", "4", "-o", "json")
    assert signed.exit_code == 0, signed.output
    rows = json.loads(signed.stdout)
    assert {r["signed_by"] for r in rows} == {"Agg4"} and len(rows) == 3
    assert {r["status"] for r in rows} == {"MATCHED"}  # the sellers have not signed yet
    assert {c.identity for c in fabric.submits("SignContract")} == {"agg4-trader"}

    one = vppctl("sign", f"{pid}-0001", "--agg", "1", "-o", "json")
    assert json.loads(one.stdout) == [
        {"contract": f"{pid}-0001", "signed_by": "Agg1", "status": "SIGNED"}
    ]
    nothing = vppctl("sign", "--agg", "4")
    assert nothing.exit_code == 0 and "no contract awaits Agg4's signature" in nothing.stderr
    twice = vppctl("sign", f"{pid}-0001", "--agg", "1")
    assert twice.exit_code == 1 and "Agg1 has already signed" in twice.stderr
    not_party = vppctl("sign", f"{pid}-0001", "--agg", "3")
    assert not_party.exit_code == 1 and "is not a party of" in not_party.stderr
    statuses = json.loads(
        vppctl("contracts", "-t", "1-13", "--status", "signed", "-o", "json").stdout
    )
    assert [c["id"] for c in statuses] == [f"{pid}-0001"]


def test_sign_without_period_leaves_abandoned_periods_alone(fabric: FakeFabric) -> None:
    m = PaperMarket(fabric)
    m.register()
    old = m.cleared(1, 2)  # never signed
    pid = m.cleared(2, 13)
    m.sign_all(pid)
    m.deliver(pid, 13)
    assert vppctl("settle", "-t", pid, "--anchor").exit_code == 0
    # A cleared period cannot be abandoned: closing a later day would strand its contracts.
    stuck = vppctl("day", "close", "--day", "2")
    assert stuck.exit_code == 1 and f"cleared but not settled: {old}" in stuck.stderr
    fabric.main.advance(900)  # the signing window: the VPPO may now void the unsigned ones
    assert vppctl("void", "--period", old).exit_code == 0
    m.deliver(old, 2)
    assert vppctl("settle", "-t", old, "--anchor").exit_code == 0
    assert vppctl("day", "close", "--day", "1").exit_code == 0
    assert vppctl("day", "close", "--day", "2").exit_code == 0
    before = len(fabric.submits("SignContract"))
    nothing = vppctl("sign", "--agg", "1")
    assert nothing.exit_code == 0 and "older periods: pass --period" in nothing.stderr
    assert len(fabric.submits("SignContract")) == before
    # Asked explicitly for a voided contract of the closed day, the chaincode refuses.
    raw = fabric.invoke("vppo-admin", "vpp-main", "market", "GetContracts", (old,), submit=False)
    voided = next(c["id"] for c in json.loads(raw)["contracts"] if c["status"] == "VOIDED")
    explicit = vppctl("sign", "--agg", "1", voided, "-o", "json")
    assert explicit.exit_code == 1
    assert f"period {old} is SETTLED" in explicit.stderr


def test_orders_verify_a_shown_order_and_refuse_a_tampered_one(
    fabric: FakeFabric, market: PaperMarket, tmp_path: Any
) -> None:
    market.submit_book(1, 13)
    mine = json.loads(vppctl("orders", "--as", "agg3-trader", "-o", "json").stdout)
    assert mine  # the table rows do not carry the salt: take the order as the chaincode shows it
    book = json.loads(
        fabric.invoke("agg3-trader", "vpp-main", "market", "GetOrderBook", ("1-13",), submit=False)
    )
    (own,) = [o for o in book["orders"] if not o["sealed"]]
    shown = tmp_path / "order.json"
    shown.write_text(json.dumps(own))
    ok = vppctl("orders", "verify", "--file", str(shown), "--as", "agg4-trader")
    assert ok.exit_code == 0, ok.output
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps({**own, "offer": own["offer"] + 1}))
    bad = vppctl("orders", "verify", "--file", str(tampered), "--as", "agg4-trader")
    assert bad.exit_code == 1 and "does not match the hash on the ledger" in bad.stderr
    every = vppctl("orders", "verify", "--period", "1-13", "--as", "grid-admin", "-o", "json")
    assert every.exit_code == 0, every.output
    rows = json.loads(every.stdout)
    assert len(rows) == 6 and all(r["matches"] for r in rows)
