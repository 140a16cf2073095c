"""A full trading day on the live network: orders -> clearing -> signatures -> meters ->
anchoring -> settlement -> the day's reputation update (the paper's t=2 and t=13 books).

Expected money and reputation are computed here from the spec's formulas, independently
of vpp_market's implementation, from what the ledger holds.
"""

from __future__ import annotations

import csv
import json
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import pytest
from helpers import certify_test_resources, sealed_order
from vpp_gateway import connect_as
from vpp_gateway.errors import GatewayError

pytestmark = pytest.mark.network

DATA = Path(__file__).parents[1] / "unit" / "data" / "paper_case"
MAIN = "vpp-main"
# Delivery behaviour (metered / ordered): sellers 1% short (inside the 2% tolerance),
# buyers take 5% more than ordered (outside it).
SELLER_FACTOR = Fraction(99, 100)
BUYER_FACTOR = Fraction(105, 100)


def rows(name: str) -> list[dict[str, str]]:
    with open(DATA / name, newline="") as handle:
        return list(csv.DictReader(handle))


def half_even(x: Fraction) -> int:
    return round(x)  # Python rounds Fractions half to even


class Session:
    """One gateway per identity, reused for the whole day."""

    def __init__(self) -> None:
        self._gateways: dict[str, object] = {}

    def contract(self, identity: str, channel: str, chaincode: str):
        return self.network_of(identity, channel).contract(chaincode)

    def submit(self, identity: str, fn: str, *args: str, channel: str = MAIN) -> dict:
        """Submits, then waits (strictly, Timeouts.peers = 30 s) until every peer of the
        channel has the block: the next step may be endorsed by any of them. An order
        (SubmitOrder's one argument) is sent sealed, in transient data."""
        chaincode = "market" if channel == MAIN else "meter"
        contract = self.contract(identity, channel, chaincode)
        if fn == "SubmitOrder":
            raw = contract.submit(fn, wait_for_peers=True, **sealed_order(args[0]))
        else:
            raw = contract.submit(fn, *args, wait_for_peers=True)
        return json.loads(raw or b"null")

    def evaluate(self, identity: str, fn: str, *args: str, channel: str = MAIN) -> dict:
        chaincode = "market" if channel == MAIN else "meter"
        return json.loads(self.contract(identity, channel, chaincode).evaluate(fn, *args))

    def network_of(self, identity: str, channel: str):
        if identity not in self._gateways:
            self._gateways[identity] = connect_as(identity)
        return self._gateways[identity].network(channel)

    def close(self) -> None:
        for gw in self._gateways.values():
            gw.close()


@pytest.fixture(scope="module")
def session(network):
    s = Session()
    yield s
    s.close()


def parallel(jobs) -> list:
    with ThreadPoolExecutor(max_workers=6) as pool:
        return [f.result() for f in [pool.submit(job) for job in jobs]]


def ensure_registered(s: Session) -> None:
    reputations = {r["agg"]: r["reputation"] for r in rows("book_t02.csv")}
    for agg in rows("aggregators.csv"):
        n = int(agg["agg"][3:])
        try:
            s.evaluate("vppo-admin", "GetAggregator", agg["agg"])
        except GatewayError:
            meters = json.dumps([f"agg{n}-m1", f"agg{n}-m2"])
            s.submit(f"agg{n}-admin", "RequestAdmission", agg["agg"], agg["region"], meters)
            s.submit("vppo-admin", "ApproveAdmission", agg["agg"], reputations[agg["agg"]])
        certify_test_resources(n)


def fresh_day(s: Session) -> int:
    calendar = s.evaluate("vppo-admin", "GetCalendar")
    return max([calendar["last_closed_day"], *(d["day"] for d in calendar["days"])]) + 1


def trade_period(s: Session, day: int, t: int, book: str) -> str:
    period = f"{day:05d}-{t:02d}"
    s.submit("vppo-admin", "OpenPeriod", str(day), str(t))

    def order(row):
        n = int(row["agg"][3:])
        body = {k: row[k] for k in ("side", "quantity_kwh", "offer", "reserve")}
        body.update(agg=row["agg"], period=period)
        return lambda: s.submit(f"agg{n}-trader", "SubmitOrder", json.dumps(body))

    parallel([order(r) for r in rows(book)])
    s.submit("vppo-admin", "ClosePeriod", period)
    s.submit("vppo-admin", "ClearPeriod", period)
    contracts = s.evaluate("vppo-admin", "GetContracts", period)["contracts"]
    for n in range(1, 7):  # every peer of vpp-main holds the same contracts
        assert s.evaluate(f"agg{n}-admin", "GetContracts", period)["contracts"] == contracts
    assert s.evaluate("grid-admin", "GetContracts", period)["contracts"] == contracts
    p2p = [c for c in contracts if c["kind"] == "p2p"]
    parallel(
        [
            (lambda c=c, n=n: s.submit(f"agg{n}-trader", "SignContract", c["id"]))
            for c in p2p
            for n in (c["seller"], c["buyer"])
        ]
    )
    return period


def deliver(s: Session, period: str) -> dict[int, int]:
    """Meters record what each aggregator delivered, its admin seals, the VPPO anchors."""
    book = s.evaluate("vppo-admin", "GetOrderBook", period)["orders"]
    metered: dict[int, int] = {}

    def meter_and_seal(order):
        n, q = order["agg"], order["quantity_wh"]
        if order["side"] == "sell":
            metered[n] = half_even(q * SELLER_FACTOR)
            exported, imported = metered[n], 0
        else:
            metered[n] = half_even(q * BUYER_FACTOR)
            exported, imported = 0, metered[n]
        ch = f"agg{n}"
        s.submit(f"agg{n}-meter1", "RecordReading", period, str(exported), "0", channel=ch)
        s.submit(f"agg{n}-meter2", "RecordReading", period, "0", str(imported), channel=ch)
        s.submit(f"agg{n}-admin", "SealPeriod", period, channel=ch)
        s.submit("vppo-admin", "AnchorDelivery", period, f"Agg{n}")

    parallel([(lambda o=o: meter_and_seal(o)) for o in book])
    return metered


def expected_nets(s: Session, period: str, metered: dict[int, int]) -> dict[int, int]:
    """Each aggregator's net money for the period, from the spec's settlement rules."""
    book = s.evaluate("vppo-admin", "GetOrderBook", period)
    sale, purchase = book["sale"], book["purchase"]
    contracts = s.evaluate("vppo-admin", "GetContracts", period)["contracts"]
    net: dict[int, int] = {}
    for order in book["orders"]:
        n, q = order["agg"], order["quantity_wh"]
        deviation = metered[n] - q
        total = 0
        for c in contracts:
            money = half_even(Fraction(c["quantity_wh"] * c["price"], 1000))
            if c["kind"] == "p2p" and n in (c["seller"], c["buyer"]):
                total += money if c["seller"] == n else -money
            elif c["kind"] == "grid" and c["agg"] == n:
                total += money if order["side"] == "sell" else -money
        if order["side"] == "sell":
            price = purchase if deviation > 0 else sale
            total += half_even(Fraction(deviation * price, 1000))
        else:
            price = sale if deviation > 0 else purchase
            total -= half_even(Fraction(deviation * price, 1000))
        net[n] = total
    return net


def test_full_day_from_orders_to_reputation(session, finished_afterwards):
    s = session
    ensure_registered(s)
    day = fresh_day(s)
    finished_afterwards += [f"{day:05d}-02", f"{day:05d}-13"]  # if it stops before settling
    before_wallets = {
        w["wallet"]: w["balance"] for w in s.evaluate("vppo-admin", "GetWallets")["wallets"]
    }
    before_rep = {
        n: s.evaluate("vppo-admin", "GetReputation", f"Agg{n}")["current"] for n in range(1, 7)
    }

    periods = [trade_period(s, day, 2, "book_t02.csv"), trade_period(s, day, 13, "book_t13.csv")]
    coefficients: dict[int, list[Fraction]] = {}
    expected_delta: dict[int, int] = {}
    for period in periods:
        metered = deliver(s, period)
        for n, value in expected_nets(s, period, metered).items():
            expected_delta[n] = expected_delta.get(n, 0) + value
        book = s.evaluate("vppo-admin", "GetOrderBook", period)["orders"]
        for order in book:
            dev = Fraction(abs(metered[order["agg"]] - order["quantity_wh"]), order["quantity_wh"])
            a = Fraction(1) if dev <= Fraction(2, 100) else max(Fraction(0), 1 - dev)
            coefficients.setdefault(order["agg"], []).append(a)
        settled = s.submit("vppo-admin", "SettlePeriod", period)
        assert sum(settled["wallet_deltas"].values()) == 0
        with pytest.raises(GatewayError, match="already been settled"):
            s.submit("vppo-admin", "SettlePeriod", period)

    wallets = s.evaluate("vppo-admin", "GetWallets")
    assert wallets["total"] == 0
    after = {w["wallet"]: w["balance"] for w in wallets["wallets"]}
    for n, delta in expected_delta.items():
        assert after[f"agg{n}"] - before_wallets.get(f"agg{n}", 0) == delta, f"Agg{n}"

    closed = s.submit("vppo-admin", "CloseDay", str(day))
    for n in range(1, 7):
        prev = before_rep[n]
        r_prev, a_prev = Fraction(prev["r_ppm"], 10**6), Fraction(prev["a_ppm"], 10**6)
        a_day = sum(coefficients[n]) / len(coefficients[n])
        a_day = Fraction(half_even(a_day * 10**6), 10**6)
        step = (a_day - a_prev) ** 2
        r = r_prev + step * (1 - r_prev) if a_day >= a_prev else r_prev - step * r_prev
        assert closed["reputations_ppm"][f"Agg{n}"] == half_even(r * 10**6), f"Agg{n}"
        history = s.evaluate(f"agg{n}-trader", "GetReputation", f"Agg{n}")["history"]
        assert history[-1]["day"] == day


def test_a_meter_of_agg3_cannot_write_to_agg4(session):
    with pytest.raises(GatewayError):
        session.submit("agg3-meter1", "RecordReading", "00001-01", "1", "0", channel="agg4")


def test_an_aggregator_cannot_settle(session):
    with pytest.raises(GatewayError, match="only the VPPO"):
        session.submit("agg3-trader", "SettlePeriod", "00001-02")
