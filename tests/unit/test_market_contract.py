"""The market chaincode on vpp-main, end to end in memory: the paper's t=13 period.

Six aggregators (Agg1..Agg6 in regions R1..R6 on the 10 MW tie-line chain)
are registered with the book's reputations; their traders submit the t=13
book; the VPPO clears it; both parties sign every contract; each aggregator's
slave channel seals its metered delivery, which the market anchors
cross-channel (MemoryLedger.peers); the VPPO settles the period once and
closes the day. Every refusal is checked to leave state, history and events
unchanged.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from certs import (
    agg_admin,
    agg_meter,
    agg_trader,
    grid_admin,
    vppo_admin,
    vppo_client,
)
from market_world import ReadSpy
from sealed_orders import invoke, market_ledger, proposal
from vpp_chaincode.market import MarketContract
from vpp_chaincode.meter import MeterContract
from vpp_market.book import read_aggregators, read_book, read_tie_lines, with_regions
from vpp_market.clearing import clear
from vpp_market.tou import prices_for
from vpp_market.units import parse_kwh
from vpp_shim.api import Caller, ChaincodeError, create_composite_key
from vpp_shim.testing import MemoryLedger

DATA = Path(__file__).parent / "data" / "paper_case"
P = "00001-13"
VPPO = vppo_admin()


def book_rows() -> list[dict[str, str]]:
    with open(DATA / "book_t13.csv", newline="") as handle:
        return list(csv.DictReader(handle))


class World:
    """vpp-main with the market chaincode, and agg1..agg6 each with the meter chaincode."""

    def __init__(self) -> None:
        self.main = market_ledger()
        self.market = MarketContract()
        self.meter = MeterContract()
        self.slaves: dict[int, MemoryLedger] = {}
        for n in range(1, 7):
            slave = MemoryLedger(channel_id=f"agg{n}")
            self.slaves[n] = slave
            self.main.peers[(f"agg{n}", "meter")] = (self.meter, slave)
            slave.peers[("vpp-main", "market")] = (self.market, self.main)

    def call(self, caller: Caller, function: str, *args: str) -> Any:
        raw = invoke(self.main, self.market, caller, function, *args)
        return json.loads(raw) if raw else None

    def slave_call(self, n: int, caller: Caller, function: str, *args: str) -> Any:
        raw = self.slaves[n].invoke(self.meter, caller, function, *args)
        return json.loads(raw) if raw else None

    def snapshot(self) -> Any:
        return self.main.snapshot()

    def refused(self, caller: Caller, function: str, *args: str, match: str) -> str:
        """The call fails with a message matching ``match`` and writes nothing at all."""
        before = self.snapshot()
        with pytest.raises(ChaincodeError, match=match) as caught:
            invoke(self.main, self.market, caller, function, *args)
        assert self.snapshot() == before
        return str(caught.value)

    # --- the scenario, step by step ------------------------------------------------
    def register_all(self) -> None:
        reputations = {int(r["agg"][3:]): r["reputation"] for r in book_rows()}
        for n in range(1, 7):
            meters = json.dumps([f"agg{n}-m1", f"agg{n}-m2"])
            self.admit(n, f"R{n}", reputations[n], meters)
        with open(DATA / "tie_lines.csv", newline="") as handle:
            lines = list(csv.DictReader(handle))
        self.call(VPPO, "LoadTopology", json.dumps(lines))

    def admit(self, n: int, region: str, reputation: str = "", meters: str = "") -> Any:
        """Admission by consent: AggN's admin asks, the VPPO approves (with R_0); then its
        certified capacity (which bounds its orders) is synced to vpp-main."""
        self.call(agg_admin(n), "RequestAdmission", f"Agg{n}", region, meters)
        admitted = self.call(VPPO, "ApproveAdmission", f"Agg{n}", reputation)
        if n in self.slaves:  # Agg7 has no channel here: it never orders
            self.certify_meters(n)
            self.call(VPPO, "SyncCapacity", f"Agg{n}")
        return admitted

    def submit_book(self) -> None:
        for row in book_rows():
            n = int(row["agg"][3:])
            order = {k: row[k] for k in ("side", "quantity_kwh", "offer", "reserve")}
            order.update(agg=row["agg"], period="1-13")
            self.call(agg_trader(n), "SubmitOrder", json.dumps(order))

    def cleared(self) -> dict[str, Any]:
        self.register_all()
        self.call(VPPO, "OpenPeriod", "1", "13")
        self.submit_book()
        self.call(VPPO, "ClosePeriod", P)
        return self.call(VPPO, "ClearPeriod", P)

    def contracts(self) -> list[dict[str, Any]]:
        return self.call(VPPO, "GetContracts", P)["contracts"]

    def sign_all(self) -> None:
        for c in self.contracts():
            if c["kind"] == "p2p":
                self.call(agg_trader(c["seller"]), "SignContract", c["id"])
                self.call(agg_trader(c["buyer"]), "SignContract", c["id"])

    def certified(self, n: int, *terms: str) -> None:
        """A resource of Agg n that its admin proposes and the Grid certifies."""
        self.slave_call(n, agg_admin(n), "RegisterResource", *terms)
        self.slave_call(n, grid_admin(), "CertifyResource", *terms)

    def certify_meters(self, n: int) -> None:
        """Agg n's PV on meter m1 and load on m2, 3000 kW each (they bound orders and readings)."""
        if not self.slave_call(n, agg_trader(n), "GetResources")["meters"]:
            self.certified(n, f"pv{n}", "PV", "3000", f"agg{n}-m1")
            self.certified(n, f"ld{n}", "load", "3000", f"agg{n}-m2")

    def deliver(self, n: int, exported_wh: int, imported_wh: int, period: str = P) -> None:
        """Agg n's meters report (m1 exports, m2 imports), its admin seals, VPPO anchors."""
        self.certify_meters(n)
        self.slave_call(n, agg_meter(n, 1), "RecordReading", period, str(exported_wh), "0")
        self.slave_call(n, agg_meter(n, 2), "RecordReading", period, "0", str(imported_wh))
        self.slave_call(n, agg_admin(n), "SealPeriod", period)
        self.call(VPPO, "AnchorDelivery", period, f"Agg{n}")


@pytest.fixture
def world() -> World:
    return World()


def expected_clearing() -> Any:
    topology = read_tie_lines(DATA / "tie_lines.csv")
    book = with_regions(
        read_book(DATA / "book_t13.csv"), read_aggregators(DATA / "aggregators.csv"), topology
    )
    return clear(book.orders, prices_for(13), topology)


# --- reading and identity ------------------------------------------------------------
def test_version_lists_the_transactions(world: World) -> None:
    info = world.call(agg_trader(1), "Version")
    assert info["name"] == "market" and info["version"] == "1.0"
    assert {"SubmitOrder", "ClearPeriod", "SettlePeriod"} <= set(info["transactions"])
    assert world.main.state == {}


def test_ping_is_a_health_write_keyed_by_msp(world: World) -> None:
    result = world.call(grid_admin(), "Ping")
    key = create_composite_key("ping", ["GridMSP"])
    assert json.loads(world.main.state[key])["tx_id"] == result["tx_id"]
    history = world.call(grid_admin(), "GetHistory", "ping~GridMSP")["history"]
    assert [h["value"]["mspid"] for h in history] == ["GridMSP"]


# --- the paper's t=13 period ---------------------------------------------------------
def test_paper_t13_book_cleared_by_vppo(world: World) -> None:
    summary = world.cleared()
    expected = expected_clearing()
    assert summary["matches"] == len(expected.matches)
    assert summary["grid_bought_wh"] == 36_680  # the spec: grid takes 36.68 kWh at 0.65
    assert summary["grid_supplied_wh"] == 0
    assert summary["reputations_ppm"]["Agg3"] == 922_000
    assert summary["topology"] is True
    contracts = world.contracts()
    p2p = [c for c in contracts if c["kind"] == "p2p"]
    assert [(c["round"], c["seller"], c["buyer"], c["quantity_wh"], c["price"]) for c in p2p] == [
        (m.round, m.seller, m.buyer, m.quantity_wh, m.price) for m in expected.matches
    ]
    assert all(c["status"] == "MATCHED" and c["signatures"] == [] for c in p2p)
    grid = [
        (c["agg"], c["side"], c["quantity_wh"], c["price"])
        for c in contracts
        if c["kind"] == "grid"
    ]
    assert grid == [(g.agg, g.side.value, g.quantity_wh, g.price) for g in expected.grid]
    assert all(price == 650_000 for *_, price in grid)
    assert [c["id"] for c in contracts] == [f"{P}-{i:04d}" for i in range(1, len(contracts) + 1)]
    assert world.main.events[-1][1] == "PeriodCleared"
    assert json.loads(world.main.events[-1][2]) == summary
    assert world.call(VPPO, "GetPeriod", P)["status"] == "CLEARED"


def test_contracts_signed_by_both_parties(world: World) -> None:
    world.cleared()
    first = next(c for c in world.contracts() if c["kind"] == "p2p")
    half = world.call(agg_trader(first["seller"]), "SignContract", first["id"])
    assert half == {"contract": first["id"], "signed_by": first["seller"]}
    assert world.main.events[-1][1] == "ContractSignature"
    status = {c["id"]: c["status"] for c in world.contracts()}
    assert status[first["id"]] == "MATCHED"
    world.call(agg_admin(first["buyer"]), "SignContract", first["id"])
    status = {c["id"]: c["status"] for c in world.contracts()}
    assert status[first["id"]] == "SIGNED"
    for c in world.contracts():
        if c["kind"] == "p2p" and c["id"] != first["id"]:
            world.call(agg_trader(c["seller"]), "SignContract", c["id"])
            world.call(agg_trader(c["buyer"]), "SignContract", c["id"])
    statuses = {c["id"]: c["status"] for c in world.contracts() if c["kind"] == "p2p"}
    assert set(statuses.values()) == {"SIGNED"}
    # the agg filter
    mine = world.call(agg_trader(4), "GetContracts", "", "Agg4")["contracts"]
    assert mine and all(4 in (c["seller"], c["buyer"]) for c in mine)


def test_each_signature_is_its_own_key(world: World) -> None:
    """Both parties can sign in one block: neither reads what the other writes."""
    world.cleared()
    c = next(c for c in world.contracts() if c["kind"] == "p2p")
    seq = f"{c['seq']:09d}"  # the key part: nine digits, so contracts sort by number
    spies = []
    for party in (c["seller"], c["buyer"]):
        stub = ReadSpy(world.main, agg_trader(party), "SignContract", [c["id"]], {})
        world.market.invoke(stub)
        spies.append(stub)
    seller, buyer = spies
    assert set(seller.writes) == {
        create_composite_key("signature", ["00001", "13", seq, f"{c['seller']:04d}"])
    }
    assert set(buyer.writes) == {
        create_composite_key("signature", ["00001", "13", seq, f"{c['buyer']:04d}"])
    }
    assert not set(seller.writes) & set(buyer.reads)
    assert not set(buyer.writes) & set(seller.reads)


def _settle_ready(world: World) -> dict[int, tuple[int, int]]:
    """Clear, sign, deliver (sellers 1% short, buyers 5% over) and anchor every aggregator."""
    world.cleared()
    world.sign_all()
    metered = {}
    for row in book_rows():
        n, q = int(row["agg"][3:]), parse_kwh(row["quantity_kwh"])
        if row["side"] == "sell":
            metered[n] = (q, q * 99 // 100)
            world.deliver(n, exported_wh=q * 99 // 100, imported_wh=123)
        else:
            metered[n] = (q, q * 105 // 100)
            world.deliver(n, exported_wh=7, imported_wh=q * 105 // 100)
    return metered


def test_settle_once_moves_wallets_that_sum_to_zero(world: World) -> None:
    metered = _settle_ready(world)
    result = world.call(VPPO, "SettlePeriod", P)
    wallets = world.call(agg_trader(1), "GetWallets")
    assert wallets["total"] == 0
    balances = {w["wallet"]: w["balance"] for w in wallets["wallets"]}
    assert set(balances) == {"grid", *(f"agg{n}" for n in range(1, 7))}
    assert all(balances[name] == b for name, b in result["balances"].items())
    assert sum(result["wallet_deltas"].values()) == 0
    # Agg6 sold its 31 kWh to the grid at 0.65 and delivered 1% short (0.31 kWh at 0.86):
    # 31 * 0.65 = 20.15 yuan in, 0.31 * 0.86 = 0.2666 yuan out.
    assert metered[6] == (31_000, 30_690)
    assert balances["agg6"] == 20_150_000 - 266_600
    # Agg3 bought 285.6 kWh from Agg2 in round 2 and drew 5% more (14.28 kWh at 0.86).
    c23 = next(c for c in world.contracts() if c["buyer"] == 3)
    assert (c23["seller"], c23["quantity_wh"]) == (2, 285_600)
    pay = (285_600 * c23["price"] + 500) // 1000  # exact here: 285.6 * price has no half
    assert balances["agg3"] == -(pay + 14_280 * 860_000 // 1000)
    assert world.call(VPPO, "GetPeriod", P)["status"] == "SETTLED"
    assert world.main.events[-1][1] == "PeriodSettled"
    world.refused(VPPO, "SettlePeriod", P, match="already been settled")


def test_settle_names_what_is_missing(world: World) -> None:
    world.cleared()
    message = world.refused(VPPO, "SettlePeriod", P, match="cannot settle yet")
    assert "lacks the signature of Agg1 and Agg4" in message
    assert "delivery of Agg3 is not anchored" in message
    world.sign_all()
    message = world.refused(VPPO, "SettlePeriod", P, match="cannot settle yet")
    assert "signature" not in message
    assert "delivery of Agg6 is not anchored" in message
    progress = world.call(VPPO, "GetPeriod", P)["progress"]
    assert len(progress["missing_for_settlement"]) == 6


def test_anchor_delivery_reads_the_sealed_slave_channel(world: World) -> None:
    world.cleared()  # Agg3's meters m1 (PV) and m2 (load) are certified since its admission
    world.slave_call(3, agg_meter(3, 1), "RecordReading", P, "0", "0")
    world.slave_call(3, agg_meter(3, 2), "RecordReading", P, "0", "290000")
    world.refused(VPPO, "AnchorDelivery", P, "Agg3", match="channel agg3 has no sealed delivery")
    world.slave_call(3, agg_admin(3), "SealPeriod", P)
    delivery = world.call(VPPO, "AnchorDelivery", P, "Agg3")
    summary = world.slave_call(3, VPPO, "DeliverySummary", P)
    assert delivery["metered_wh"] == 290_000 and delivery["side"] == "buy"
    assert delivery["sha256"] == summary["sha256"]
    assert delivery["sealed_tx"] == summary["sealed_tx"]
    world.refused(VPPO, "AnchorDelivery", P, "Agg3", match="already anchored")
    world.refused(agg_admin(3), "AnchorDelivery", P, "Agg3", match="only the VPPO admin")


def test_anchor_refuses_an_aggregator_without_order(world: World) -> None:
    world.cleared()
    world.admit(7, "R6")
    world.refused(VPPO, "AnchorDelivery", P, "Agg7", match="Agg7 has no order in period")


def test_void_unsigned_turns_contracts_into_grid_absorption(world: World) -> None:
    world.cleared()
    p2p = [c for c in world.contracts() if c["kind"] == "p2p"]
    signed, unsigned = p2p[0], p2p[1:]
    world.call(agg_trader(signed["seller"]), "SignContract", signed["id"])
    world.call(agg_trader(signed["buyer"]), "SignContract", signed["id"])
    world.call(agg_trader(unsigned[0]["seller"]), "SignContract", unsigned[0]["id"])  # half
    # The signing window (default 900 s of ledger time after clearing) must pass first.
    world.refused(VPPO, "VoidUnsigned", P, match="signing window .* is open")
    world.main.advance(900)
    result = world.call(VPPO, "VoidUnsigned", P)
    assert result["voided"] == [c["id"] for c in unsigned]
    assert len(result["grid_contracts"]) == 2 * len(unsigned)
    contracts = {c["id"]: c for c in world.contracts()}
    for c in unsigned:
        assert contracts[c["id"]]["status"] == "VOIDED"
        made = [g for g in contracts.values() if g.get("voided_from") == c["id"]]
        assert sorted((g["agg"], g["side"], g["quantity_wh"], g["price"]) for g in made) == sorted(
            [
                (c["seller"], "sell", c["quantity_wh"], 650_000),
                (c["buyer"], "buy", c["quantity_wh"], 860_000),
            ]
        )
    world.refused(
        agg_trader(unsigned[0]["buyer"]), "SignContract", unsigned[0]["id"], match="voided"
    )
    assert world.call(VPPO, "VoidUnsigned", P)["voided"] == []
    for row in book_rows():
        n, q = int(row["agg"][3:]), parse_kwh(row["quantity_kwh"])
        world.deliver(n, q if row["side"] == "sell" else 0, q if row["side"] == "buy" else 0)
    result = world.call(VPPO, "SettlePeriod", P)
    assert sum(result["wallet_deltas"].values()) == 0


def test_close_day_updates_reputation_with_history(world: World) -> None:
    metered = _settle_ready(world)
    world.admit(7, "R6", "0.4")
    world.refused(VPPO, "CloseDay", "1", match="periods not settled: 00001-13 is CLEARED")
    world.call(VPPO, "SettlePeriod", P)
    summary = world.call(VPPO, "CloseDay", "1")
    # Sellers 1% short: within 2% -> a = 1 = a_0 -> R unchanged.
    assert summary["reputations_ppm"]["Agg1"] == 823_000
    # Buyers 5% over: a = 0.95 < 1 -> R = R - 0.0025 * R.
    assert metered[3][1] == 299_880
    assert summary["reputations_ppm"]["Agg3"] == 922_000 - 2_305
    assert summary["reputations_ppm"]["Agg4"] == 753_000 - 1_882  # 751117.5 -> 751118 (even)
    # Agg7 had no order: carried over.
    assert summary["reputations_ppm"]["Agg7"] == 400_000
    rep = world.call(agg_trader(3), "GetReputation", "Agg3")
    assert rep["current"] == {"agg": 3, "r_ppm": 919_695, "a_ppm": 950_000, "day": 1}
    (day1,) = rep["history"]
    assert day1["a_day_ppm"] == 950_000 and day1["r_prev_ppm"] == 922_000
    assert day1["periods"] == [
        {"period": P, "quantity_wh": 285_600, "metered_wh": 299_880, "a_ppm": 950_000}
    ]
    assert world.call(VPPO, "GetReputation", "7")["history"][0]["carried_over"] is True
    world.refused(VPPO, "CloseDay", "1", match="already closed")
    world.refused(VPPO, "OpenPeriod", "1", "14", match="day 1 is closed")
    # the next clearing reads the updated reputation
    assert world.call(VPPO, "GetAggregator", "Agg3")["reputation"]["r_ppm"] == 919_695


def test_close_day_needs_earlier_settled_days_closed(world: World) -> None:
    world.register_all()
    world.call(VPPO, "OpenPeriod", "2", "1")
    world.call(VPPO, "ClosePeriod", "2-1")
    world.call(VPPO, "ClearPeriod", "2-1")
    world.call(VPPO, "SettlePeriod", "2-1")  # no orders: nothing to sign or anchor
    for step in ("OpenPeriod", "ClosePeriod", "ClearPeriod", "SettlePeriod"):
        world.call(VPPO, step, *(("3", "1") if step == "OpenPeriod" else ("3-1",)))
    world.refused(VPPO, "CloseDay", "3", match="day 2 has settled periods and is not closed")
    world.call(VPPO, "CloseDay", "2")
    world.call(VPPO, "CloseDay", "3")  # no orders: everyone carried over


def test_a_day_whose_periods_never_settled_is_skipped(world: World) -> None:
    world.register_all()
    world.call(VPPO, "OpenPeriod", "2", "1")  # abandoned: never cleared nor settled
    world.call(VPPO, "OpenPeriod", "3", "5")
    world.call(VPPO, "ClosePeriod", "3-5")
    world.call(VPPO, "ClearPeriod", "3-5")
    world.call(VPPO, "SettlePeriod", "3-5")
    world.refused(VPPO, "CloseDay", "2", match="periods not settled: 00002-01 is OPEN")
    world.call(VPPO, "CloseDay", "3")
    calendar = world.call(VPPO, "GetCalendar")
    assert calendar["last_closed_day"] == 3
    assert [(d["day"], d.get("closed", False)) for d in calendar["days"]] == [
        (2, False),
        (3, True),
    ]


# --- orders -------------------------------------------------------------------------
def _order(**overrides: Any) -> str:
    order = {
        "agg": "Agg3",
        "period": P,
        "side": "buy",
        "quantity_kwh": "285.6",
        "offer": "0.713",
        "reserve": "0.736",
    }
    order.update(overrides)
    return json.dumps({k: v for k, v in order.items() if v is not None})


@pytest.fixture
def open_world(world: World) -> World:
    world.register_all()
    world.call(VPPO, "OpenPeriod", "1", "13")
    return world


def test_submit_order_writes_only_its_own_key(open_world: World) -> None:
    before = dict(open_world.main.state)
    result = open_world.call(agg_trader(3), "SubmitOrder", _order())
    assert "quantity_wh" not in result and "offer" not in result  # the block keeps the result
    assert len(result["hash"]) == 64 and result["replaced"] is False
    mine = open_world.call(agg_trader(3), "GetOrderBook", P)["orders"][0]
    assert mine["quantity_wh"] == 285_600 and mine["offer"] == 713_000
    changed = {k for k in open_world.main.state if open_world.main.state.get(k) != before.get(k)}
    assert changed == {create_composite_key("order", ["00001", "13", "0003"])}


def test_order_path_reads_no_hot_key(open_world: World) -> None:
    """SubmitOrder reads its aggregator, the period, its own order and its aggregator's
    capacity; writes only its order.

    Nothing it reads is written by another aggregator's order, so bids of
    different aggregators in one block never invalidate each other.
    """
    _, transient = proposal("SubmitOrder", [_order()])
    stub = ReadSpy(open_world.main, agg_trader(3), "SubmitOrder", [], transient)
    open_world.market.invoke(stub)
    assert set(stub.reads) == {
        create_composite_key("aggregator", ["0003"]),
        create_composite_key("period", ["00001", "13"]),
        create_composite_key("order", ["00001", "13", "0003"]),
        # Its own order bound, written only by SyncCapacity of Agg3 (test_bounded_orders).
        create_composite_key("capacity", ["0003"]),
    }
    assert set(stub.writes) == {create_composite_key("order", ["00001", "13", "0003"])}


def test_order_replace_and_cancel_while_open(open_world: World) -> None:
    open_world.call(agg_trader(3), "SubmitOrder", _order())
    again = open_world.call(agg_admin(3), "SubmitOrder", _order(quantity_kwh=100, offer=0.72))
    assert again["replaced"] is True
    book = open_world.call(VPPO, "GetOrderBook", P)
    assert [o["quantity_wh"] for o in book["orders"]] == [100_000]
    assert book["orders"][0]["offer"] == 720_000  # a JSON number read as its decimal text
    assert open_world.call(agg_trader(3), "CancelOrder", P, "Agg3")["cancelled"] is True
    assert open_world.call(VPPO, "GetOrderBook", P)["orders"] == []
    open_world.refused(agg_trader(3), "CancelOrder", P, "Agg3", match="Agg3 has no order")


@pytest.mark.parametrize(
    ("order", "match"),
    [
        (_order(quantity_kwh="1.2345"), "quantity_kwh '1.2345': has more than 3 decimals"),
        (_order(quantity_kwh="0"), "quantity_kwh '0': is not > 0"),
        (_order(quantity_kwh="-5"), "quantity_kwh '-5': is negative"),
        (_order(offer="0.6"), r"offer: 0.6 yuan/kWh is below the grid purchase price f_t = 0.65"),
        (_order(reserve="0.9"), r"reserve: 0.9 yuan/kWh is above the grid sale price s_t = 0.86"),
        (_order(reserve="0.7"), r"a buyer's reserve 0.7 is below its offer 0.713"),
        (_order(side="sell"), r"a seller's reserve 0.736 is above its offer 0.713"),
        (_order(side="hold"), "side 'hold': is not 'sell' or 'buy'"),
        (_order(offer="0.7131234"), "offer '0.7131234': has more than 6 decimals"),
        (_order(offer=True), "offer True: is a boolean"),
        (_order(period="1-25"), "period '1-25': hour 25 is not in 1..24"),
        (_order(period="1-14"), "period 00001-14 has not been opened"),
        (_order(agg="Agg9"), "Agg9 is not registered"),
        (_order(agg="Agg03"), "agg 'Agg03': is not an aggregator"),
        (_order(reserve=None), "field 'reserve' is missing"),
        (_order(price="1"), "unknown field 'price'"),
        (_order(reputation="0.9"), "reputation is not part of an order"),
        ('{"agg": "Agg3", "offer": NaN}', "order .* is not valid JSON"),
        ("[1, 2]", "is not a JSON object"),
        ("{", "is not valid JSON"),
    ],
)
def test_invalid_orders_name_field_and_value(open_world: World, order: str, match: str) -> None:
    open_world.refused(agg_trader(3), "SubmitOrder", order, match=match)


def test_orders_only_for_the_callers_own_aggregator(open_world: World) -> None:
    open_world.refused(
        agg_trader(4), "SubmitOrder", _order(), match="Agg4MSP/trader may not trade for Agg3"
    )
    open_world.refused(agg_meter(3), "SubmitOrder", _order(), match="GridMSP/meter may not trade")
    open_world.refused(VPPO, "SubmitOrder", _order(), match="VPPOMSP/admin may not trade")
    open_world.refused(agg_trader(4), "CancelOrder", P, "Agg3", match="may not trade for Agg3")


def test_ordering_after_the_gate_is_refused(open_world: World) -> None:
    open_world.call(agg_trader(3), "SubmitOrder", _order())
    open_world.call(VPPO, "ClosePeriod", P)
    open_world.refused(agg_trader(3), "SubmitOrder", _order(), match="CLOSED: the gate is closed")
    open_world.refused(agg_trader(3), "CancelOrder", P, "Agg3", match="the gate is closed")


# --- the VPPO's transactions ---------------------------------------------------------
@pytest.mark.parametrize("caller", [vppo_client(), grid_admin(), agg_admin(1), agg_trader(1)])
@pytest.mark.parametrize(
    ("function", "args"),
    [
        ("ApproveAdmission", ("9",)),
        ("LoadTou", ('[[0, 24, "0.5", "0.3"]]',)),
        ("LoadTopology", ("[]",)),
        ("OpenPeriod", ("1", "13")),
        ("ClosePeriod", (P,)),
        ("ClearPeriod", (P,)),
        ("VoidUnsigned", (P,)),
        ("AnchorDelivery", (P, "Agg1")),
        ("SettlePeriod", (P,)),
        ("CloseDay", ("1",)),
    ],
)
def test_vppo_transactions_refuse_everyone_else(
    world: World, caller: Caller, function: str, args: tuple[str, ...]
) -> None:
    world.refused(caller, function, *args, match=f"{function}: only the VPPO admin")


def test_clearing_twice_and_before_the_gate_is_refused(world: World) -> None:
    world.register_all()
    world.call(VPPO, "OpenPeriod", "1", "13")
    world.refused(VPPO, "ClearPeriod", P, match="is OPEN: close the gate first")
    world.refused(VPPO, "OpenPeriod", "1", "13", match="already open")
    world.call(VPPO, "ClosePeriod", P)
    world.call(VPPO, "ClearPeriod", P)
    world.refused(VPPO, "ClearPeriod", P, match="is CLEARED: it has already been cleared")
    world.refused(VPPO, "ClosePeriod", P, match="is CLEARED")


def test_signing_someone_elses_contract_is_refused(world: World) -> None:
    world.cleared()
    contracts = world.contracts()
    c = next(c for c in contracts if c["kind"] == "p2p" and 6 not in (c["seller"], c["buyer"]))
    world.refused(agg_trader(6), "SignContract", c["id"], match="Agg6MSP/trader is not a party")
    world.refused(agg_meter(c["seller"]), "SignContract", c["id"], match="is not a party")
    world.refused(VPPO, "SignContract", c["id"], match="is not a party")
    world.call(agg_trader(c["seller"]), "SignContract", c["id"])
    world.refused(agg_admin(c["seller"]), "SignContract", c["id"], match="has already signed")
    g = next(c for c in contracts if c["kind"] == "grid")
    world.refused(agg_trader(g["agg"]), "SignContract", g["id"], match="grid contract")
    world.refused(agg_trader(1), "SignContract", f"{P}-0999", match="does not exist")
    world.refused(agg_trader(1), "SignContract", "x", match="contract_id 'x'")


def test_admission_validation(world: World) -> None:
    world.admit(1, "R1", "", '["agg1-m1"]')
    agg = world.call(agg_trader(1), "GetAggregator", "1")
    assert agg["reputation"] == {"agg": 1, "r_ppm": 500_000, "a_ppm": 1_000_000, "day": None}
    assert agg["wallet"] == {"wallet": "agg1", "balance": 0}
    assert agg["mspid"] == "Agg1MSP" and agg["requested_tx"] and agg["registered_tx"]
    world.refused(agg_admin(1), "RequestAdmission", "1", "R1", match="already registered")
    world.call(agg_admin(2), "RequestAdmission", "2", "R2")
    world.refused(
        VPPO, "ApproveAdmission", "2", "1.5", match="initial_reputation '1.5': is above 1"
    )
    world.refused(
        agg_admin(2), "RequestAdmission", "2", "R2", '["agg1-m1"]', match="not a meter id of Agg2"
    )
    world.refused(agg_admin(2), "RequestAdmission", "2", "", match="region ''")
    world.refused(agg_admin(2), "RequestAdmission", "0", "R2", match="agg '0'")
    world.refused(VPPO, "ApproveAdmission", "3", match="Agg3 has not asked to be admitted")


def test_load_tou_applies_to_periods_opened_afterwards(world: World) -> None:
    world.call(VPPO, "OpenPeriod", "1", "13")
    bands = [
        {"start_hour": 0, "end_hour": 24, "grid_sale_price": "0.5", "grid_purchase_price": 0.3}
    ]
    world.call(VPPO, "LoadTou", json.dumps(bands))
    world.call(VPPO, "OpenPeriod", "1", "14")
    assert world.call(VPPO, "GetPeriod", P)["sale"] == 860_000
    later = world.call(VPPO, "GetPeriod", "1-14")
    assert (later["sale"], later["purchase"]) == (500_000, 300_000)
    world.refused(VPPO, "LoadTou", "[[0, 12, 0.5, 0.3]]", match="no band covers 12:00-13:00")
    world.refused(VPPO, "LoadTou", '[{"start": 0}]', match=r"bands\[0\]: expected the fields")


def test_load_topology_must_be_a_tree(world: World) -> None:
    lines = [["R1", "R2", "10"], ["R2", "R3", "10"], ["R3", "R1", "10"]]
    world.refused(VPPO, "LoadTopology", json.dumps(lines), match="closes a loop")
    world.refused(VPPO, "LoadTopology", '[["R1", "R2", "-1"]]', match=r"lines\[0\].limit_kw '-1'")


def test_clearing_refuses_a_region_outside_the_topology(world: World) -> None:
    """Admission and LoadTopology keep regions on the tree; ClearPeriod still checks."""
    world.admit(3, "R9")
    world.refused(VPPO, "LoadTopology", '[["R1", "R2", "10"]]', match="Agg3 \\(R9\\)")
    # A ledger from before the rule: the topology stored directly.
    world.main.state[create_composite_key("config", ["topology"])] = json.dumps(
        {"lines": [{"a": "R1", "b": "R2", "limit_w": 10}], "loaded_tx": "old"}
    ).encode()
    world.call(VPPO, "OpenPeriod", "1", "13")
    world.call(agg_trader(3), "SubmitOrder", _order())
    world.call(VPPO, "ClosePeriod", P)
    world.refused(VPPO, "ClearPeriod", P, match="region: 'R9' is not a region of the topology")


def test_history_and_wallets_queries(world: World) -> None:
    _settle_ready(world)
    world.call(VPPO, "SettlePeriod", P)
    history = world.call(agg_trader(2), "GetHistory", "wallet~agg2")["history"]
    assert [h["value"]["balance"] for h in history][-1] == 0  # oldest last: registration
    assert history[0]["value"]["balance"] > 0
    world.refused(agg_trader(2), "GetHistory", "wallet", match="is not of the form")
    world.refused(agg_trader(2), "Nope", match="unknown function 'Nope'")
    world.refused(agg_trader(2), "GetWallets", "extra", match="wrong number of arguments")


def test_server_entry_point_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    from vpp_chaincode import server

    monkeypatch.setenv("CHAINCODE_SERVER_ADDRESS", "127.0.0.1:9001")
    monkeypatch.setenv("CHAINCODE_ID", "market_1.0:abc")
    args = server.parse_args(["market"])
    assert (args.contract, args.address, args.chaincode_id) == (
        "market",
        "127.0.0.1:9001",
        "market_1.0:abc",
    )
    args = server.parse_args(["meter", "--address", "0.0.0.0:9002", "--chaincode-id", "m:1"])
    assert (args.address, args.chaincode_id) == ("0.0.0.0:9002", "m:1")
    assert isinstance(server.CONTRACTS["meter"](), MeterContract)
    monkeypatch.delenv("CHAINCODE_SERVER_ADDRESS")
    with pytest.raises(SystemExit):
        server.parse_args(["market"])


def test_work_on_a_closed_day_is_refused(world: World) -> None:
    """A period of a closed day can no longer move money: its reputation step is taken."""
    world.register_all()
    world.call(VPPO, "OpenPeriod", "1", "2")  # abandoned: never cleared (a cleared one blocks)
    world.call(VPPO, "ClosePeriod", "1-2")
    world.call(VPPO, "OpenPeriod", "2", "5")
    world.call(VPPO, "ClosePeriod", "2-5")
    world.call(VPPO, "ClearPeriod", "2-5")
    world.call(VPPO, "SettlePeriod", "2-5")
    world.call(VPPO, "CloseDay", "2")  # day 1 skipped: nothing of it settled
    for fn in ("SettlePeriod", "VoidUnsigned"):
        world.refused(VPPO, fn, "1-2", match="belongs to day 1, which is closed")
    world.refused(VPPO, "AnchorDelivery", "1-2", "Agg1", match="which is closed")


def test_registrations_of_different_aggregators_never_conflict(world: World) -> None:
    """Each admission step reads only its own aggregator, MSP, request and meter keys."""
    for function, caller_of, args_of in (
        ("RequestAdmission", agg_admin, lambda n: [f"Agg{n}", f"R{n}", f'["agg{n}-m1"]']),
        ("ApproveAdmission", lambda n: VPPO, lambda n: [f"Agg{n}", "0.5"]),
    ):
        stubs = []
        for n in (1, 2):
            stub = ReadSpy(world.main, caller_of(n), function, args_of(n), {})
            world.market.invoke(stub)
            stubs.append(stub)
        first, second = stubs
        assert not set(first.writes) & set(second.reads), function
        assert not set(second.writes) & set(first.reads), function
        for stub in stubs:
            world.main.commit(stub)
