"""What the live benchmarks submit: market setup, and one key space per submitter.

A submitter is one client thread acting as an aggregator's trader, with its
own gRPC connection to that aggregator's peer, submitting one transaction
at a time and waiting for its commit (a closed loop, as a trading desk
would). Concurrent submitters never touch the same key: submitter i trades
for aggregator ``i % aggs + 1`` and owns every k-th period (SubmitOrder) or
day (SubmitOrders) of that aggregator, k being the number of submitters
sharing it. So no transaction fails on an MVCC conflict and what is measured
is the network, not contention. When a submitter has used all its periods it
starts over; the order then replaces its earlier one (the same code path,
result ``replaced: true``).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fabric_protos.common import ledger_pb2
from vpp_gateway import (
    ConnectionProfile,
    EndorseError,
    EvaluateError,
    Gateway,
    GatewayError,
    SubmitError,
    connect_as,
    load_profile,
)
from vpp_market.tou import PAPER_TOU

MAIN = "vpp-main"
MARKET = "market"
HOURS = range(1, 25)


def yuan(micro: int) -> str:
    """micro-yuan -> exact decimal text (the chaincode refuses binary floats)."""
    return f"{micro // 1_000_000}.{micro % 1_000_000:06d}"


def order_for(agg: int, day: int, hour: int, rng: random.Random) -> dict[str, str]:
    """A valid order of ``agg`` for (day, hour), priced inside that hour's TOU band."""
    prices = PAPER_TOU.prices_for(hour)
    low, span = prices.purchase, prices.sale - prices.purchase
    sell = agg % 2 == 1
    offer = low + rng.randint(span // 4, span * 3 // 4)
    reserve = max(low, offer - span // 10) if sell else min(prices.sale, offer + span // 10)
    quantity_wh = rng.randint(1, 500_000)
    return {
        "agg": f"Agg{agg}",
        "period": f"{day}-{hour}",
        "side": "sell" if sell else "buy",
        "quantity_kwh": f"{quantity_wh // 1000}.{quantity_wh % 1000:03d}",
        "offer": yuan(offer),
        "reserve": yuan(reserve),
    }


class Session:
    """Gateways to one benchmark network, one per identity for setup calls."""

    def __init__(self, profile_path: Path) -> None:
        self.profile: ConnectionProfile = load_profile(profile_path)
        self._gateways: dict[str, Gateway] = {}
        self._lock = threading.Lock()

    def gateway(self, identity: str, *, fresh: bool = False) -> Gateway:
        """A shared gateway per identity, or with ``fresh`` a new connection (caller closes it)."""
        if fresh:
            return connect_as(identity, profile=self.profile)
        with self._lock:
            if identity not in self._gateways:
                self._gateways[identity] = connect_as(identity, profile=self.profile)
            return self._gateways[identity]

    def market(self, identity: str) -> Any:
        return self.gateway(identity).network(MAIN).contract(MARKET)

    def close(self) -> None:
        for gateway in self._gateways.values():
            gateway.close()
        self._gateways.clear()


def ready(session: Session, timeout: float = 60.0) -> None:
    """Waits until the VPPO can get a transaction endorsed and committed.

    Right after the chaincode definitions are committed the gateways may not
    yet know which peers can endorse ("no combination of peers ..."); a fresh
    network is usable a few seconds later.
    """
    vppo = session.market("vppo-admin")
    deadline = time.monotonic() + timeout
    while True:
        try:
            vppo.submit("Noop")
            return
        except GatewayError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def register_aggregators(session: Session, aggs: int) -> None:
    """Admits Agg1..AggN (regions R1..R6 in turn), skipping those already there.

    Admission by consent: each aggregator's own admin asks, then the VPPO approves.
    """
    vppo = session.market("vppo-admin")
    for n in range(1, aggs + 1):
        try:
            vppo.evaluate("GetAggregator", f"Agg{n}")
            continue
        except EvaluateError:
            pass
        session.market(f"agg{n}-admin").submit("RequestAdmission", f"Agg{n}", f"R{(n - 1) % 6 + 1}")
        wait_in_sync(session, ["VPPOMSP", "GridMSP"])
        vppo.submit("ApproveAdmission", f"Agg{n}")
        # The next registration range-reads every aggregator on both endorsing peers;
        # both must have committed this one, or their results differ (and are refused).
        wait_in_sync(session, ["VPPOMSP", "GridMSP"])
    for n in range(1, aggs + 1):
        certify_capacity(session, n)


# Certified capacity of every benchmark aggregator, each way: order_for's largest order.
BENCH_CAPACITY_KW = "500"


def certify_capacity(session: Session, n: int) -> None:
    """Agg n's PV and load of BENCH_CAPACITY_KW on meter agg<n>-m1, synced to vpp-main.

    Orders are bounded by certified capacity x 1 h (trust rules): Agg n's admin
    proposes, the Grid certifies, the VPPO syncs; what is done already is kept.
    """

    def meter(identity: str) -> Any:
        return session.gateway(identity).network(f"agg{n}").contract("meter")

    resources = decode(meter("vppo-admin").evaluate("GetResources"))["resources"]
    have = {r["id"]: r["status"] for r in resources}
    for rid, kind in ((f"bench-pv-{n}", "PV"), (f"bench-load-{n}", "load")):
        terms = (rid, kind, BENCH_CAPACITY_KW, f"agg{n}-m1")
        # Each step is read by the next one's endorsers: every peer must have it first.
        if rid not in have:
            meter(f"agg{n}-admin").submit("RegisterResource", *terms, wait_for_peers=True)
        if have.get(rid) != "CERTIFIED":
            meter("grid-admin").submit("CertifyResource", *terms, wait_for_peers=True)
    certified = decode(meter("vppo-admin").evaluate("GetCapacity"))
    vppo = session.market("vppo-admin")
    try:
        synced = decode(vppo.evaluate("GetCapacity", f"Agg{n}"))
    except EvaluateError:
        synced = None
    if synced is None or any(synced[f] != certified[f] for f in ("supply_w", "load_w")):
        vppo.submit("SyncCapacity", f"Agg{n}", wait_for_peers=True)


def decode(raw: bytes) -> Any:
    return json.loads(raw) if raw else None


def fresh_day(session: Session) -> int:
    """The first day after every day that has periods and after the last closed one.

    The measured days start here, not at a fixed number: a simulated day that stopped
    half-way leaves some of its periods open, and opening them again is refused.
    """
    calendar = json.loads(session.market("vppo-admin").evaluate("GetCalendar"))
    return max([calendar["last_closed_day"], *(d["day"] for d in calendar["days"])]) + 1


def open_days(session: Session, days: range, threads: int = 12) -> None:
    """OpenPeriod for every hour of ``days``, several at a time (they never conflict)."""
    vppo = session.market("vppo-admin")
    jobs = [(day, hour) for day in days for hour in HOURS]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(lambda j: submit_confirmed(vppo, "OpenPeriod", str(j[0]), str(j[1])), jobs))


def submit_confirmed(contract: Any, function: str, *args: str, attempts: int = 10) -> None:
    """Submits a setup transaction; when the orderers' answer is lost (SubmitError: with
    SmartBFT under load "request already processed" although the transaction is ordered)
    its commit status decides, so the setup neither stops nor submits it twice. An
    endorsement refused before anything was ordered (a loaded machine's Gateway briefly
    finding "no combination of peers") is tried again a second later."""
    for attempt in range(attempts):
        try:
            contract.submit(function, *args)
            return
        except SubmitError as exc:
            status = contract.network.commit_status(exc.tx_id, timeout=60)
            if not status.valid:
                raise
            return
        except EndorseError:
            if attempt == attempts - 1:
                raise
            time.sleep(1.0)


def wait_in_sync(session: Session, mspids: list[str], timeout: float = 30.0) -> None:
    """Waits until the given orgs' peers report the same vpp-main height (setup committed).

    A submit waits for the commit on the submitter's own peer only; the next
    transaction reading those keys is simulated on the VPPO's and the Grid's
    peers, and if one of them lags the two results differ and the Gateway
    refuses the endorsement ("ProposalResponsePayloads do not match").
    """
    qscc = session.gateway("vppo-admin").network(MAIN).contract("qscc")
    deadline = time.monotonic() + timeout
    while True:
        heights = {
            ledger_pb2.BlockchainInfo.FromString(
                qscc.new_proposal("GetChainInfo", MAIN, endorsing_orgs=[m]).evaluate()
            ).height
            for m in mspids
        }
        if len(heights) == 1 or time.monotonic() > deadline:
            return
        time.sleep(0.2)


@dataclass(frozen=True)
class Lane:
    """One submitter's identity and the (aggregator, keys) it owns."""

    index: int
    agg: int
    share: int  # how many submitters trade for this aggregator
    position: int  # this submitter's rank among them

    @property
    def identity(self) -> str:
        return f"agg{self.agg}-trader"


def lanes(submitters: int, aggs: int) -> list[Lane]:
    """Submitter i trades for aggregator i % aggs + 1, as the (i // aggs)-th of its traders."""
    counts = [len(range(a, submitters, aggs)) for a in range(aggs)]
    return [Lane(i, i % aggs + 1, counts[i % aggs], i // aggs) for i in range(submitters)]


# function, arguments, orders in it, and the submit's keyword arguments (sealed orders
# travel as transient data and name their endorsers: VPPO, Grid and the aggregator).
Payload = tuple[str, list[str], int, dict[str, Any]]


def sealed(agg: int, key: str, value: Any, rng: random.Random) -> dict[str, Any]:
    """The submit keywords of sealed orders: each with a salt, in transient data ``key``."""

    def salted(order: dict[str, str]) -> dict[str, str]:
        return {**order, "salt": f"{rng.getrandbits(256):064x}"}

    body = [salted(o) for o in value] if isinstance(value, list) else salted(value)
    return {
        "transient": {key: json.dumps(body)},
        "endorsing_orgs": ["VPPOMSP", "GridMSP", f"Agg{agg}MSP"],
    }


def single_orders(lane: Lane, days: range, seed: int) -> Iterator[Payload]:
    """SubmitOrder for every period this lane owns, in time order, starting over at the end."""
    rng = random.Random(f"{seed}:{lane.index}")
    periods = [(d, h) for d in days for h in HOURS][lane.position :: lane.share]
    while True:
        for day, hour in periods:
            order = order_for(lane.agg, day, hour, rng)
            yield "SubmitOrder", [], 1, sealed(lane.agg, "order", order, rng)


def day_orders(lane: Lane, days: range, seed: int, per_tx: int = 24) -> Iterator[Payload]:
    """SubmitOrders with ``per_tx`` hours of one day of this lane's aggregator per transaction."""
    rng = random.Random(f"{seed}:{lane.index}")
    owned = list(days)[lane.position :: lane.share] or list(days)[:1]
    while True:
        for day in owned:
            hours = list(HOURS)[:per_tx]
            batch = [order_for(lane.agg, day, h, rng) for h in hours]
            yield "SubmitOrders", [], len(batch), sealed(lane.agg, "orders", batch, rng)


def constant(function: str) -> Callable[[Lane, range, int], Iterator[Payload]]:
    """A payload stream that repeats one argument-less call (Noop, Ping)."""

    def stream(lane: Lane, days: range, seed: int) -> Iterator[Payload]:
        while True:
            yield function, [], 0, {}

    return stream
