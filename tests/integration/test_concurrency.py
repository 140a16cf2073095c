"""Six aggregators submitting and replacing orders at the same time, on the live network.

Each aggregator's trader (its own identity, through its own peer) runs in its
own thread and, round after round, replaces its orders for two periods with
new values, both in flight together. Every fourth round it also sends a second
replacement of the same order right behind the first: both are endorsed
against the same committed version, so when they land in one block Fabric
commits the first and invalidates the other with MVCC_READ_CONFLICT. A
conflicted replacement is re-submitted (as ``submit(retry_on_conflict=N)``
does, here by hand so that conflicts are counted) until it commits. So is a
replacement whose endorsement failed because the two endorsing peers were
at different heights ("ProposalResponsePayloads do not match"): the client
gets that error at once and nothing reached the orderers.

Every attempt is recorded with its transaction ID, validation code and block,
and checked against the ledger: each aggregator's order is in each period's
book exactly once, carrying the value of its last valid transaction (the
highest block: Fabric lets at most one write of a key per block be valid);
the key's history holds exactly the valid transactions, none lost, none
twice; every peer of vpp-main returns the same book.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
from helpers import (
    ensure_aggregators,
    market,
    open_test_period,
    org_admin,
    query,
    sealed_order,
    wait_for_same_chain,
)
from vpp_gateway import EndorseError, GatewayError, connect_as
from vpp_market.units import format_kwh, format_yuan
from vpp_network.plan import MAIN_CHANNEL

pytestmark = pytest.mark.network

ROUNDS = 20
RACE_EVERY = 4
MAX_RETRIES = 8
COMMIT_TIMEOUT = 120.0
# The two endorsers (VPPO, Grid) read the order key at different versions when one has
# not yet committed the block with the previous replacement: Fabric refuses to assemble
# the transaction. Nothing reached the orderers; the client tries again.
MISMATCH = "ENDORSEMENT_MISMATCH"
RETRYABLE = {"MVCC_READ_CONFLICT", "PHANTOM_READ_CONFLICT", MISMATCH}


@dataclass
class Attempt:
    agg: int
    period: str
    value: dict[str, Any]
    tx_id: str = ""
    code: str = ""  # VALID, MVCC_READ_CONFLICT, ... or the exception class of a failure
    block: int = -1
    retry: int = 0  # 0 for the first submission of a value, n for its n-th re-submission


@dataclass
class Tally:
    attempts: list[Attempt] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, attempt: Attempt) -> None:
        with self.lock:
            self.attempts.append(attempt)

    def counts(self) -> Counter[str]:
        return Counter(a.code for a in self.attempts)


def new_value(rng: random.Random, agg: int, period: dict[str, Any]) -> dict[str, Any]:
    """A valid order with random side, quantity and prices inside the period's TOU band."""
    side = rng.choice(["buy", "sell"])
    low, high = period["purchase"], period["sale"]
    offer = rng.randrange(low, high + 1, 1000) if high - low >= 1000 else low
    reserve = rng.randint(offer, high) if side == "buy" else rng.randint(low, offer)
    return {
        "agg": f"Agg{agg}",
        "period": period["period"],
        "side": side,
        "quantity_kwh": format_kwh(rng.randint(1, 500_000)),
        "offer": format_yuan(offer),
        "reserve": format_yuan(reserve),
    }


def trader(agg: int, periods: list[dict[str, Any]], tally: Tally, seed: int) -> None:
    rng = random.Random(seed * 1000 + agg)
    with connect_as(f"agg{agg}-trader") as gw:
        contract = market(gw)
        owners = ["VPPOMSP", "GridMSP", f"Agg{agg}MSP"]

        def settle(attempt: Attempt, commit: Any) -> None:
            """Waits for the commit; re-submits the same value while it conflicts."""
            while True:
                try:
                    status = commit.status(COMMIT_TIMEOUT)
                    attempt.code, attempt.block = status.validation_code, status.block_number
                except GatewayError as exc:
                    attempt.code = type(exc).__name__
                tally.add(attempt)
                if attempt.code not in ("MVCC_READ_CONFLICT", "PHANTOM_READ_CONFLICT"):
                    return
                if attempt.retry >= MAX_RETRIES:
                    return
                time.sleep(min(0.05 * 2**attempt.retry, 1.0) * rng.uniform(0.5, 1.5))
                retry = Attempt(agg, attempt.period, attempt.value, retry=attempt.retry + 1)
                attempt, commit = send(retry)
                if commit is None:
                    return

        def send(attempt: Attempt) -> tuple[Attempt, Any]:
            """Endorses and submits; an endorsement mismatch is recorded and tried again.

            Returns the attempt that is in flight (a new one after a mismatch) and its
            Commit, or None for the commit if it could not be submitted.
            """
            while True:
                try:
                    # A replaced order's key carries AggN's key-level policy: name its
                    # endorsers, or a Gateway whose first endorser has not yet seen the
                    # key plans VPPO+Grid only (ENDORSEMENT_POLICY_FAILURE on commit).
                    commit = contract.submit_async(
                        "SubmitOrder", **sealed_order(json.dumps(attempt.value), owners)
                    )
                    attempt.tx_id = commit.tx_id
                    return attempt, commit
                except EndorseError as exc:
                    mismatch = "ProposalResponsePayloads do not match" in str(exc)
                    attempt.code = MISMATCH if mismatch else type(exc).__name__
                except GatewayError as exc:
                    attempt.code = type(exc).__name__
                    mismatch = False
                tally.add(attempt)
                if not mismatch or attempt.retry >= MAX_RETRIES:
                    return attempt, None
                time.sleep(0.05 * rng.uniform(0.5, 1.5))
                attempt = Attempt(agg, attempt.period, attempt.value, retry=attempt.retry + 1)

        for round_no in range(ROUNDS):
            values = [new_value(rng, agg, p) for p in periods]
            if round_no % RACE_EVERY == RACE_EVERY - 1:
                values.append(new_value(rng, agg, periods[0]))  # races the first one
            in_flight = []
            for value in values:  # all endorsed and submitted before any is awaited
                attempt, commit = send(Attempt(agg, value["period"], value))
                if commit is not None:
                    in_flight.append((attempt, commit))
            for attempt, commit in in_flight:
                settle(attempt, commit)


def test_six_aggregators_submit_and_replace_concurrently(network: Any) -> None:
    aggs = list(range(1, min(6, network.plan.aggs) + 1))
    ensure_aggregators(aggs)
    with connect_as("vppo-admin") as gw:
        periods = [open_test_period(market(gw)) for _ in range(2)]
    tally = Tally()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(aggs)) as pool:
        for future in [pool.submit(trader, n, periods, tally, 7) for n in aggs]:
            future.result()
    seconds = time.monotonic() - started
    counts = tally.counts()
    conflicts = counts["MVCC_READ_CONFLICT"] + counts["PHANTOM_READ_CONFLICT"]
    print(
        f"\n{len(tally.attempts)} transactions by {len(aggs)} aggregators in {seconds:.0f} s: "
        f"{dict(counts)}; {conflicts} MVCC conflicts and {counts[MISMATCH]} endorsement "
        f"mismatches, all retried ({sum(1 for a in tally.attempts if a.retry)} re-submissions)"
    )
    # Nothing failed for another reason, and every retryable failure was retried until valid.
    assert set(counts) <= {"VALID"} | RETRYABLE, counts
    gave_up = [a for a in tally.attempts if a.code != "VALID" and a.retry >= MAX_RETRIES]
    assert not gave_up, gave_up

    valid = [a for a in tally.attempts if a.code == "VALID"]
    height, _ = wait_for_same_chain(network, MAIN_CHANNEL, max(a.block for a in valid) + 1)
    lost = duplicated = wrong = 0
    with connect_as("vppo-admin") as gw:
        contract = market(gw)
        for period in periods:
            pid = period["period"]
            book = query(contract, "GetOrderBook", pid)["orders"]
            by_agg = Counter(o["agg"] for o in book)
            duplicated += sum(c - 1 for c in by_agg.values())
            assert sorted(by_agg) == aggs, f"{pid}: book has {sorted(by_agg)}"
            day, hour = pid.split("-")
            for order in book:
                mine = [a for a in valid if a.agg == order["agg"] and a.period == pid]
                last = max(mine, key=lambda a: a.block)
                blocks = [a.block for a in mine]
                assert blocks.count(last.block) == 1, "two valid writes of one key in one block"
                key = f"order~{day}~{hour}~{order['agg']:04d}"
                history = query(contract, "GetHistory", key)["history"]
                in_history = [e["tx_id"] for e in history if not e["is_delete"]]
                lost += len({a.tx_id for a in mine} - set(in_history))
                duplicated += len(in_history) - len(set(in_history))
                assert set(in_history) == {a.tx_id for a in mine}, (pid, order["agg"])
                stored = {k: order[k] for k in ("side", "quantity_wh", "offer", "reserve")}
                if order["tx_id"] != last.tx_id or stored != _units(last.value):
                    wrong += 1
    print(
        f"checked at height {height}: {len(valid)} valid orders, lost {lost}, "
        f"duplicated {duplicated}, book not at the last value {wrong}"
    )
    assert (lost, duplicated, wrong) == (0, 0, 0)
    # Every peer of vpp-main has the same book: VPPO and Grid see it whole, every other
    # organisation the same public records (sealed orders: agg, hash, last transaction).
    books = {}
    for org in network.plan.peer_orgs:
        with connect_as(org_admin(org.name)) as gw:
            books[org.name] = [
                query(market(gw), "GetOrderBook", p["period"])["orders"] for p in periods
            ]
    assert books["Grid"] == books["VPPO"]
    public = [[_public(o) for o in book] for book in books["VPPO"]]
    assert all([[_public(o) for o in book] for book in b] == public for b in books.values()), (
        sorted(name for name, b in books.items() if [[_public(o) for o in x] for x in b] != public)
    )


def _public(order: dict[str, Any]) -> tuple[Any, ...]:
    return order["period"], order["agg"], order["hash"], order["tx_id"]


def _units(value: dict[str, Any]) -> dict[str, Any]:
    """An order's decimal text as the integers the ledger stores."""
    from vpp_market.units import parse_kwh, parse_price

    return {
        "side": value["side"],
        "quantity_wh": parse_kwh(value["quantity_kwh"]),
        "offer": parse_price(value["offer"]),
        "reserve": parse_price(value["reserve"]),
    }
