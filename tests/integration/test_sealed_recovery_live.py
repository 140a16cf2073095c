"""Sealed orders when a member peer of ``orderBook`` goes down or loses its ledger (issue 11).

The collection's members are the VPPO and the Grid, one peer each, and every order needs
both of their endorsements (docs/sealed-orders.md, "A peer that was down"). So a member
peer cannot miss an order by being down when it is placed: the order is refused. What it
can miss, and how it gets the order back, is shown here on the Grid's peer, the VPPO's
being the other member:

- it crashes (SIGKILL) after endorsing an order, which then commits while it is down:
  on restart it commits that block with the order taken from its own transient store
  (on disk), and still holds the orders it had before (its private data store);
- it is rebuilt from a snapshot of the VPPO's ledger, the way Fabric rebuilds or adds a
  peer without replaying the chain: a snapshot carries the orders' hashes, never their
  private data, so the peer refuses to show or clear the book (ORDER_DATA_MISSING) until
  its reconciler has pulled the orders from the VPPO's peer; then the period clears to
  the same contracts as ``vppctl clear --offline`` of the VPPO's book.

The Fabric log lines that say where the data came from are part of what is checked.
Timings are printed (``pytest -s``) for docs/sealed-orders.md, never asserted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    clear_here_and_offline,
    ensure_aggregators,
    market,
    open_test_period,
    order_json,
    restore,
    sealed_order,
    stopped,
    wait_for_same_chain,
    wait_until,
    wait_until_endorsable,
    with_retry,
)
from vpp_gateway import EvaluateError, connect_as
from vpp_gateway.errors import EndorseError
from vpp_network import fabric_cli
from vpp_network.network import Network
from vpp_network.plan import MAIN_CHANNEL
from vpp_shim.codes import Code

pytestmark = pytest.mark.network

SELLER, BUYER = 3, 4
TIMINGS: list[str] = []
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")
_RECONCILED_RE = re.compile(
    r"Reconciliation cycle finished successfully\. reconciled (\d+) private data keys "
    r"from blocks range \[(\d+) - (\d+)\]"
)


@pytest.fixture(scope="module", autouse=True)
def timings() -> Any:
    yield
    print("\nsealed-order recovery timings:")
    for line in TIMINGS:
        print(f"  - {line}")


class PeerLog:
    """The lines a peer logged since this object was made (its log is appended to)."""

    def __init__(self, net: Network, peer_host: str) -> None:
        self.path = net.procs.log_file(peer_host)
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def lines(self) -> list[str]:
        with open(self.path, "rb") as log:
            log.seek(self.offset)
            return _ANSI_RE.sub("", log.read().decode(errors="replace")).splitlines()

    def wait_for(self, matches: Callable[[str], bool], timeout: float, what: str) -> str:
        return wait_until(
            lambda: next((ln for ln in self.lines() if matches(ln)), None), timeout, what
        )


def grid_book(pid: str) -> dict[str, Any]:
    """GetOrderBook as the Grid's admin, run on the Grid's own peer."""
    with connect_as("grid-admin") as gw:
        proposal = market(gw).new_proposal("GetOrderBook", pid, endorsing_orgs=["GridMSP"])
        return json.loads(proposal.evaluate())


def vppo_book(pid: str) -> dict[str, Any]:
    with connect_as("vppo-admin") as gw:
        proposal = market(gw).new_proposal("GetOrderBook", pid, endorsing_orgs=["VPPOMSP"])
        return json.loads(proposal.evaluate())


def by_agg(book: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {o["agg"]: o for o in book["orders"]}


def height(net: Network, org: Any) -> int:
    return fabric_cli.channel_height(net.plan, org, MAIN_CHANNEL)[0]


@pytest.fixture(scope="module")
def placed(network: Network) -> dict[str, Any]:
    """An open period with Agg3's sealed sell order, committed on every peer."""
    ensure_aggregators([SELLER, BUYER])
    wait_until_endorsable("vppo-admin", f"agg{SELLER}-trader", f"agg{BUYER}-trader")
    with connect_as("vppo-admin") as gw:
        period = open_test_period(market(gw))
    pid = period["period"]
    sell = order_json(SELLER, pid, "sell", 80_000, period["purchase"] + 20_000, period["purchase"])
    with connect_as(f"agg{SELLER}-trader") as gw:
        commit = market(gw).submit_async("SubmitOrder", **sealed_order(sell))
        status = commit.status(timeout=120)
        assert status.valid, status
        gw.network(MAIN_CHANNEL).wait_for_peers(commit)
    return {"period": period, "pid": pid, "blocks": {SELLER: status.block_number}}


def test_a_member_peer_that_crashed_after_endorsing_commits_the_order_from_its_transient_store(
    network: Network, placed: dict[str, Any]
) -> None:
    """Endorsed by the VPPO, the Grid and Agg4, then the Grid's peer is killed and the order
    is sent for ordering: it commits without the Grid. While the Grid's peer is down no
    order can be placed at all. Restarted, the Grid's peer commits the block with the
    order from its transient store and still has the order committed before the crash."""
    grid = network.plan.grid
    pid, period = placed["pid"], placed["period"]
    buy = order_json(BUYER, pid, "buy", 60_000, period["sale"] - 10_000, period["sale"])
    log = PeerLog(network, grid.peer_host)
    with connect_as(f"agg{BUYER}-trader") as gw:
        contract = market(gw)
        transaction = contract.new_proposal("SubmitOrder", **sealed_order(buy)).endorse()
        with stopped(network, grid.peer_host, kill=True):
            status = transaction.submit().status(timeout=120)  # Agg4's peer saw it commit
            assert status.valid, status
            again = order_json(BUYER, pid, "buy", 70_000, period["sale"] - 10_000, period["sale"])
            with pytest.raises(EndorseError) as refused:
                contract.submit("SubmitOrder", **sealed_order(again))
            assert refused.value.chaincode_message is None  # the peer, not the market, refused
            down_at = time.monotonic()
        placed["blocks"][BUYER] = status.block_number
    # Nothing of the refused order was written: the VPPO still has the first one.
    assert by_agg(vppo_book(pid))[BUYER]["quantity_wh"] == 60_000
    wait_until(
        lambda: height(network, grid) > status.block_number, 180, "the Grid's peer catches up"
    )
    caught_up = time.monotonic() - down_at
    line = log.wait_for(
        lambda ln: f"for block [{status.block_number}]" in ln and "write sets" in ln,
        30,
        f"the Grid's peer logs where block {status.block_number}'s private data came from",
    )
    assert "1 from transient store" in line and "0 from other peers" in line, line
    book = by_agg(grid_book(pid))
    assert book[SELLER]["quantity_wh"] == 80_000 and book[BUYER]["quantity_wh"] == 60_000
    assert book == by_agg(vppo_book(pid))
    TIMINGS.append(f"Grid's peer restarted after SIGKILL to caught up: {caught_up:.1f} s")


def _snapshot_of_the_vppo(network: Network) -> Path:
    """A snapshot of vpp-main that the VPPO's peer takes now; its folder."""
    plan = network.plan
    root = fabric_cli.snapshots_dir(plan, plan.vppo, MAIN_CHANNEL)

    def folders() -> set[Path]:
        return set(root.iterdir()) if root.exists() else set()

    before = folders()
    started = time.monotonic()
    fabric_cli.request_snapshot(plan, plan.vppo, MAIN_CHANNEL)
    snapshot = wait_until(
        lambda: next(
            (d for d in folders() - before if (d / "_snapshot_additional_metadata.json").exists()),
            None,
        ),
        120,
        "the VPPO's peer writes its snapshot",
    )
    TIMINGS.append(
        f"snapshot of vpp-main (last block {snapshot.name}) by the VPPO's peer: "
        f"{time.monotonic() - started:.1f} s"
    )
    return snapshot


def _rejoin_the_grid_from(network: Network, snapshot: Path) -> None:
    """The Grid's peer stops, leaves vpp-main (its ledger of it deleted), starts and joins
    vpp-main again from ``snapshot``."""
    plan = network.plan
    grid = plan.grid
    network.stop_process(grid.peer_host)
    fabric_cli.unjoin(plan, grid, MAIN_CHANNEL, network.spec(grid.peer_host).env)
    started = time.monotonic()
    network.start_process(grid.peer_host)
    fabric_cli.join_by_snapshot(plan, grid, snapshot)
    wait_until(
        lambda: (
            not fabric_cli.join_by_snapshot_running(plan, grid)
            and MAIN_CHANNEL in fabric_cli.peer_channels(plan, grid)
        ),
        180,
        "the Grid's peer joins vpp-main from the snapshot",
    )
    TIMINGS.append(
        f"Grid's peer started and joined vpp-main from the snapshot: "
        f"{time.monotonic() - started:.1f} s"
    )


def _grid_answer(pid: str) -> tuple[str, Any]:
    """The Grid's GetOrderBook on its own peer: ("book", book) or ("missing", the refusal)."""
    try:
        return ("book", grid_book(pid))
    except EvaluateError as exc:
        if exc.code != Code.ORDER_DATA_MISSING:
            raise  # e.g. its Gateway does not know its channel yet: asked again
        return ("missing", exc)


# Opt-in: in one CI run of three (16:13 UTC 2026-12-04, quiet machine) the rebuilt peer's
# reconciler failed every 5 s for 150 s with "Empty membership" ("Do not know any peer in
# the channel that matches the policies") although the VPPO's peer was back in its view;
# the other runs reconciled in ~5 s (397 keys of blocks 7-496 in one cycle). Why it stalled
# is not established (docs/sealed-orders.md); until it is, the README's test command does
# not depend on it.
RECONCILE_ENV = "VPP_TEST_SNAPSHOT_RECONCILE"


@pytest.mark.skipif(
    os.environ.get(RECONCILE_ENV) != "1",
    reason=f"opt-in ({RECONCILE_ENV}=1): Fabric's reconciler stalled once in three runs",
)
def test_a_member_peer_rebuilt_from_a_snapshot_reconciles_the_book_before_clearing(
    network: Network, placed: dict[str, Any], tmp_path: Path, finished_afterwards: list[str]
) -> None:
    """The VPPO's peer takes a snapshot and stops; the Grid's peer is rebuilt from it. With
    no other member up, the rebuilt peer has the orders' hashes and not the orders, and
    refuses the book. The VPPO's peer comes back (its orders survived the restart), the
    Grid's reconciler pulls the orders from it, and the period clears as offline."""
    plan = network.plan
    vppo = plan.vppo
    pid, period = placed["pid"], placed["period"]
    finished_afterwards.append(pid)  # settled and its day closed afterwards
    expected = by_agg(vppo_book(pid))
    snapshot: Path | None = None
    try:
        snapshot = _snapshot_of_the_vppo(network)
        network.stop_process(vppo.peer_host)
        log = PeerLog(network, plan.grid.peer_host)
        _rejoin_the_grid_from(network, snapshot)
        kind, answer = with_retry(
            lambda: _grid_answer(pid), 120, "the rebuilt Grid's peer answers GetOrderBook"
        )
        assert kind == "missing", answer  # never a partial book
        assert "does not hold the sealed" in str(answer), answer
        assert not [ln for ln in log.lines() if _RECONCILED_RE.search(ln)]
        started = time.monotonic()
        network.start_process(vppo.peer_host)
        line = log.wait_for(
            lambda ln: _RECONCILED_RE.search(ln) is not None and MAIN_CHANNEL in ln,
            150,
            "the Grid's peer reconciles vpp-main's private data from the VPPO's peer",
        )
        took = time.monotonic() - started
        keys, low, high = (int(g) for g in _RECONCILED_RE.search(line).groups())  # type: ignore[union-attr]
        for agg, block in placed["blocks"].items():
            assert low <= block <= high, (agg, block, line)
        assert by_agg(grid_book(pid)) == expected
        assert by_agg(vppo_book(pid)) == expected  # the VPPO's peer kept them over its restart
        TIMINGS.append(
            f"VPPO's peer started to the Grid's peer reconciled ({keys} private data keys of "
            f"blocks {low}-{high}): {took:.1f} s"
        )
    finally:
        _leave_the_grid_on_vpp_main(network, snapshot)
    wait_for_same_chain(network, MAIN_CHANNEL, timeout=180)
    wait_until_endorsable("vppo-admin", "grid-admin")
    started = time.monotonic()
    book = {"orders": [expected[agg] for agg in sorted(expected)]}
    on_network, offline = clear_here_and_offline(period, book, tmp_path)
    assert offline == on_network
    named = {m[side] for m in on_network["matches"] for side in ("seller", "buyer")}
    assert named | {g["agg"] for g in on_network["grid"]} == {f"Agg{SELLER}", f"Agg{BUYER}"}
    TIMINGS.append(f"clearing after the rebuild: {time.monotonic() - started:.1f} s")


def _leave_the_grid_on_vpp_main(network: Network, snapshot: Path | None) -> None:
    """Whatever happened, the Grid's peer runs and is on vpp-main again; the snapshot goes."""
    plan = network.plan
    restore(network)
    try:
        if MAIN_CHANNEL not in fabric_cli.peer_channels(plan, plan.grid):
            if snapshot is None or not snapshot.exists():
                raise AssertionError("the Grid's peer left vpp-main and no snapshot is left")
            if not fabric_cli.join_by_snapshot_running(plan, plan.grid):
                fabric_cli.join_by_snapshot(plan, plan.grid, snapshot)
            wait_until(
                lambda: MAIN_CHANNEL in fabric_cli.peer_channels(plan, plan.grid),
                180,
                "the Grid's peer is back on vpp-main",
            )
    finally:
        if snapshot is not None:
            shutil.rmtree(snapshot, ignore_errors=True)
