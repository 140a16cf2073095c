"""Faults on the live network: orderers, a peer and the chaincode server stop and come back.

Each test injects one fault through the network's own process control
(``Network.stop_process`` / ``start_process``, PID files, never by name),
checks what a user sees while it lasts (orders still commit, or a clear
error and nothing written), then restores every process and checks that
the network converged: every peer of vpp-main at the same height with the
same last block hash, every orderer back in one SmartBFT view. The autouse
fixture restores the network even when a test fails, so the next test (and
the next CI job) finds all processes running.

No timing is asserted: waits are on conditions, with generous deadlines.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import (
    bft_leader,
    book_by_agg,
    chain_info,
    ensure_aggregators,
    market,
    open_test_period,
    order_json,
    org_admin,
    query,
    restore,
    sealed_order,
    stopped,
    wait_for_gateway_reaching_all_orderers,
    wait_for_one_view,
    wait_for_orderers_at,
    wait_for_same_chain,
    wait_until,
    with_retry,
)
from vpp_gateway import Contract, GatewayError, connect_as
from vpp_gateway.errors import CommitTimeoutError, EndorseError, SubmitError
from vpp_network.network import Network
from vpp_network.plan import MAIN_CHANNEL

pytestmark = pytest.mark.network

AGGS = (1, 2, 3)
SCENARIOS: list[str] = []  # what ran, for the summary at the end


def converge(net: Network) -> int:
    """Waits until the orderers share one view, every peer has the same vpp-main chain, every
    orderer holds it, and the Gateways these tests use get every orderer's acceptance again
    (a Gateway keeps failing to dial a restarted orderer while gRPC's reconnect backoff
    runs; a test crashing another orderer meanwhile would find no quorum)."""
    bft = net.plan.consensus == "BFT"
    if bft:
        wait_for_one_view(net, timeout=180)
    height, _ = wait_for_same_chain(net, MAIN_CHANNEL, timeout=180)
    wait_for_orderers_at(net, MAIN_CHANNEL, height, timeout=180)
    if bft:  # a Raft Gateway sends each transaction to one orderer only
        for org in ("VPPO", *(f"Agg{n}" for n in AGGS if n <= net.plan.aggs)):
            wait_for_gateway_reaching_all_orderers(net, org, timeout=180)
    return wait_for_same_chain(net, MAIN_CHANNEL, timeout=180)[0]


@pytest.fixture(autouse=True)
def whole_network(network: Network) -> Iterator[Network]:
    """All processes running before and after every test, whatever the test did."""
    restore(network)
    yield network
    restore(network)
    converge(network)


@pytest.fixture(scope="module", autouse=True)
def summary() -> Iterator[None]:
    """Prints the fault scenarios that passed (pytest -s shows it), for the issue's record."""
    yield
    print(f"\nfault scenarios passed: {len(SCENARIOS)}")
    for line in SCENARIOS:
        print(f"  - {line}")


@pytest.fixture(scope="module")
def period(network: Network) -> dict[str, Any]:
    ensure_aggregators(AGGS)
    with connect_as("vppo-admin") as gw:
        return open_test_period(market(gw))


class Trader:
    """Aggregator n's trader submitting orders (its own identity and, unless told, peer)."""

    def __init__(self, n: int, period: dict[str, Any], peer: str | None = None) -> None:
        self.n = n
        self.period = period
        self.gateway = connect_as(f"agg{n}-trader", peer=peer)
        self.contract: Contract = market(self.gateway)
        self.sent = 0

    def order(self, quantity_wh: int) -> str:
        p = self.period
        return order_json(self.n, p["period"], "buy", quantity_wh, p["purchase"], p["sale"])

    def submit(self, quantity_wh: int | None = None, **kwargs: Any) -> dict[str, Any]:
        """SubmitOrder; an endorsement mismatch (the two endorsers briefly at different
        heights, see test_concurrency.py) is retried, any other failure raised."""
        self.sent += 1
        quantity = quantity_wh or 1000 + self.sent
        text = self.order(quantity)
        for attempt in range(6):
            try:
                sealed = sealed_order(text, kwargs.pop("endorsing_orgs", None))
                placed = json.loads(self.contract.submit("SubmitOrder", **sealed, **kwargs))
                # The result is the public record; the order itself is what was sent.
                return {**placed, "quantity_wh": quantity}
            except EndorseError as exc:
                if "ProposalResponsePayloads do not match" not in str(exc) or attempt == 5:
                    raise
                time.sleep(0.2)
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.gateway.close()


def quantities_everywhere(net: Network, period: str, agg: int) -> dict[str, int | None]:
    """Agg's order quantity in the book as each peer of vpp-main returns it.

    Orders are sealed: the VPPO, the Grid and the aggregator itself see the quantity;
    another aggregator's peer shows only the public record, which counts as that
    quantity when its hash is the clearing organisations' (the same order)."""
    views = {}
    for org in net.plan.peer_orgs:
        with connect_as(org_admin(org.name)) as gw:
            views[org.name] = book_by_agg(market(gw), period).get(agg)
    full = {o["hash"]: o["quantity_wh"] for o in views.values() if o and "quantity_wh" in o}
    return {name: (full.get(o["hash"]) if o else None) for name, o in views.items()}


def public_records(book: dict[str, Any]) -> list[tuple[Any, str]]:
    """What every member sees alike of a sealed book: each order's aggregator and hash."""
    return sorted((o["agg"], o["hash"]) for o in book["orders"])


# --- ordering service -----------------------------------------------------------------------
def leader_and_followers(net: Network) -> tuple[str, list[str]]:
    """The current SmartBFT leader of vpp-main and the other orderers, highest number first."""
    leader = bft_leader(net) or 1
    followers = sorted((o.number for o in net.plan.orderers if o.number != leader), reverse=True)
    return f"orderer{leader}", [f"orderer{n}" for n in followers]


@pytest.mark.parametrize("which", ["follower", "leader"])
def test_orders_commit_with_one_orderer_down(
    network: Network, period: dict[str, Any], which: str
) -> None:
    """f = 1 of 4 crashed: every order still commits; the leader's crash costs a view change."""
    if len(network.plan.orderers) < 4 or network.plan.consensus != "BFT":
        pytest.skip("needs 4 or more SmartBFT orderers")
    converge(network)
    leader, followers = leader_and_followers(network)
    victim = followers[0] if which == "follower" else leader
    trader = Trader(1, period)
    try:
        with stopped(network, victim, kill=True):
            for _ in range(3):
                stored = trader.submit(commit_timeout=120)
            assert stored["quantity_wh"] == 1000 + trader.sent
    finally:
        trader.close()
    converge(network)
    assert set(quantities_everywhere(network, period["period"], 1).values()) == {1000 + trader.sent}
    if which == "leader":
        assert bft_leader(network) != int(victim.removeprefix("orderer")), "no view change?"
    SCENARIOS.append(f"1 of 4 orderers crashed ({which}, {victim}): 3 of 3 orders committed")


def test_two_orderers_down_refuse_cleanly_and_catch_up(
    network: Network, period: dict[str, Any]
) -> None:
    """f+1 = 2 of 4 crashed: no quorum. The submission fails with a clear error, no peer gets
    a block while they are down, and after the restart every orderer and peer converges on
    one chain. The failed transaction either commits later (SmartBFT kept it in the pool of
    the orderers still running) or not at all, the same on every peer: never half-written."""
    if len(network.plan.orderers) != 4 or network.plan.consensus != "BFT":
        pytest.skip("needs exactly 4 SmartBFT orderers")
    trader = Trader(2, period)
    try:
        trader.submit(5000)  # a committed value to compare with
        converge(network)
        hashes = chain_info(network, MAIN_CHANNEL)
        _, followers = leader_and_followers(network)
        with stopped(network, *followers[:2], kill=True):
            with pytest.raises((SubmitError, CommitTimeoutError)) as caught:
                trader.submit(7000, commit_timeout=20)
            err = caught.value
            text = str(err)
            assert "orderer" in text or "not committed within" in text, text
            # Nothing was cut without a quorum: every peer still has exactly the old chain.
            assert chain_info(network, MAIN_CHANNEL) == hashes
            assert set(quantities_everywhere(network, period["period"], 2).values()) == {5000}
        converge(network)
        late = committed(trader, err.tx_id, 60)
        converge(network)
        seen = set(quantities_everywhere(network, period["period"], 2).values())
        if seen == {7000} and not late:  # it committed just after we stopped waiting
            late = committed(trader, err.tx_id, 10)
        assert seen == ({7000} if late else {5000}), (late, seen)
        # And ordering works again.
        assert trader.submit(9000)["quantity_wh"] == 9000
    finally:
        trader.close()
    SCENARIOS.append(
        f"2 of 4 orderers crashed: refused with {type(err).__name__}; the failed transaction "
        f"{'committed after the restart' if late else 'never committed'}; orderers and peers "
        "converged"
    )


def committed(trader: Trader, tx_id: str, timeout: float) -> bool:
    """Whether the transaction committed VALID within ``timeout`` seconds."""
    try:
        return trader.gateway.network(MAIN_CHANNEL).commit_status(tx_id, timeout=timeout).valid
    except CommitTimeoutError:
        return False


# --- a peer ---------------------------------------------------------------------------------
def test_peer_restarted_during_a_stream_of_orders_catches_up(
    network: Network, period: dict[str, Any]
) -> None:
    """An aggregator's peer (not an endorser) stops while others keep trading, then catches up
    to the same height, block hash and order book as the other peers."""
    victim_org = network.plan.agg_orgs[-1]
    streamers = [Trader(n, period) for n in (1, 2)]
    stop = threading.Event()
    errors: list[str] = []

    def stream(trader: Trader) -> None:
        while not stop.is_set():
            try:
                trader.submit()
            except GatewayError as exc:  # reported below, never swallowed
                errors.append(str(exc))
                return

    threads = [threading.Thread(target=stream, args=(t,)) for t in streamers]
    try:
        for t in threads:
            t.start()
        wait_until(lambda: sum(t.sent for t in streamers) >= 4, 60, "orders before the stop")
        with stopped(network, victim_org.peer_host):
            mark = sum(t.sent for t in streamers)
            wait_until(lambda: sum(t.sent for t in streamers) >= mark + 6, 120, "orders while down")
        # restarted (by the context manager) while the stream goes on
        mark = sum(t.sent for t in streamers)
        wait_until(lambda: sum(t.sent for t in streamers) >= mark + 4, 120, "orders after restart")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=180)
        for t in streamers:
            t.close()
    assert not errors, errors
    converge(network)
    for channel in (MAIN_CHANNEL, f"agg{victim_org.agg_number}"):
        wait_for_same_chain(network, channel, timeout=180)
    with connect_as(org_admin(victim_org.name)) as gw:  # through the restarted peer itself
        book = query(market(gw), "GetOrderBook", period["period"])
    with connect_as("vppo-admin") as gw:
        vppo_book = query(market(gw), "GetOrderBook", period["period"])
    assert public_records(book) == public_records(vppo_book)  # sealed: hashes alike
    SCENARIOS.append(
        f"peer {victim_org.peer_host} stopped and restarted during "
        f"{sum(t.sent for t in streamers)} orders: caught up"
    )


def test_an_endorsing_peer_down_refuses_cleanly(network: Network, period: dict[str, Any]) -> None:
    """The market needs VPPO AND Grid: with the Grid's peer down an order cannot be endorsed;
    the client is told so at once and nothing is written."""
    trader = Trader(3, period)
    try:
        trader.submit(4000)
        with stopped(network, network.plan.grid.peer_host):
            with pytest.raises(EndorseError) as caught:
                trader.submit(4100)
            assert caught.value.chaincode_message is None
            assert "endorse" in str(caught.value).lower(), str(caught.value)
        converge(network)
        assert book_by_agg(trader.contract, period["period"])[3]["quantity_wh"] == 4000
        assert trader.submit(4200)["quantity_wh"] == 4200
    finally:
        trader.close()
    SCENARIOS.append("endorsing peer (Grid) stopped: refused at endorsement, nothing written")


# --- chaincode server -----------------------------------------------------------------------
def test_market_chaincode_killed_and_restarted(network: Network, period: dict[str, Any]) -> None:
    """SIGKILL the Grid's market chaincode server: each organisation runs its own, so orders
    fail cleanly (the Grid must endorse) while every other organisation's peer still answers
    queries from its own server; the Grid's peer reconnects when it is back, nothing lost."""
    trader = Trader(1, period)
    grid_server = network.plan.market.process_name(network.plan.grid)
    try:
        trader.submit(3000)
        with connect_as("vppo-admin") as gw:
            book_before = book_by_agg(market(gw), period["period"])
        agg1_view = book_by_agg(trader.contract, period["period"])  # sealed but for its own
        with stopped(network, grid_server, kill=True):
            with pytest.raises(EndorseError) as submit_err:
                trader.submit(3100)
            assert submit_err.value.chaincode_message is None  # the peer: chaincode unreachable
            assert "chaincode" in str(submit_err.value).lower(), str(submit_err.value)
            # Agg1's peer executes queries on Agg1's own server, untouched by the Grid's crash.
            assert book_by_agg(trader.contract, period["period"]) == agg1_view
            # Only the Grid's own peer is left without a server (the Gateway would otherwise
            # fall back to another organisation's peer for a query).
            with connect_as("grid-admin") as gw, pytest.raises(EndorseError) as grid_query:
                gw.network(MAIN_CHANNEL).contract("market").new_proposal(
                    "GetOrderBook", period["period"], endorsing_orgs=["GridMSP"]
                ).evaluate()
            assert grid_query.value.chaincode_message is None
        # Back: the first calls may still find a peer reconnecting; wait for a clean answer.
        with connect_as("grid-admin") as gw:
            book_after = with_retry(
                lambda: book_by_agg(market(gw), period["period"]), 120, "Grid's market answers"
            )
        assert book_after == book_before  # nothing lost, and the refused order never written
        assert trader.submit(3200)["quantity_wh"] == 3200
    finally:
        trader.close()
    SCENARIOS.append(
        "Grid's market chaincode SIGKILLed: orders refused, other orgs still query, reconnected"
    )


# --- the whole network ----------------------------------------------------------------------
def test_down_and_up_keep_ledgers_wallets_and_reputations(
    network: Network, period: dict[str, Any]
) -> None:
    """``make network-down`` then ``make network-up`` (Network.down / up) keep every ledger:
    the registry, wallets, reputations, the order book and key histories read the same."""

    def snapshot() -> dict[str, Any]:
        with connect_as("grid-admin") as gw:
            contract = market(gw)
            return {
                "wallets": query(contract, "GetWallets"),
                "reputations": [query(contract, "GetReputation", f"Agg{n}") for n in AGGS],
                "aggregators": [query(contract, "GetAggregator", f"Agg{n}") for n in AGGS],
                "book": query(contract, "GetOrderBook", period["period"]),
                "calendar": query(contract, "GetCalendar"),
            }

    trader = Trader(2, period)
    try:
        trader.submit(6000)
    finally:
        trader.close()
    height = converge(network)
    before = snapshot()
    network.down(quiet=True)
    try:
        assert not any(network.running().values())
    finally:
        network.up()
    converge(network)
    after = with_retry(snapshot, 120, "the market answers after network-up")
    assert after == before
    assert wait_for_same_chain(network, MAIN_CHANNEL)[0] >= height
    SCENARIOS.append("network down and up: wallets, reputations, registry and book unchanged")
