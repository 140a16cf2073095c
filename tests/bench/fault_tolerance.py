"""Fault-tolerance experiment: with N = 3f+1 SmartBFT orderers and k of them crashed,
does a transaction commit, and how fast? (k = 0 .. f+1.)

The VPP consensus literature reports BFT ordering this way: a quorum of 2f+1
correct nodes keeps ordering (N = 4 tolerates f = 1, N = 7 tolerates f = 2);
with f+1 crashed the ordering service must stop rather than fork. Here the
numbers come from the real network, not a model.

Not a pytest module. Run it against a network of its own (it crashes
orderers), for example

    VPP_HOME=$PWD/.fabric/rel VPP_PORT_OFFSET=20000 .venv/bin/python -m vpp_network up
    VPP_HOME=$PWD/.fabric/rel VPP_PORT_OFFSET=20000 .venv/bin/python tests/bench/fault_tolerance.py

    VPP_HOME=$PWD/.fabric/ft7 VPP_PORT_OFFSET=40000 VPP_ORDERERS=7 \\
        .venv/bin/python -m vpp_network up --aggs 1
    VPP_HOME=$PWD/.fabric/ft7 VPP_PORT_OFFSET=40000 VPP_ORDERERS=7 \\
        .venv/bin/python tests/bench/fault_tolerance.py

Per scenario: crash k orderers (SIGKILL), either the k highest-numbered
followers or the current leader plus k-1 followers; submit ``--trials`` Ping
transactions one after another (the smallest write on vpp-main: endorse,
order, commit) and time each from submit to commit; restart the crashed
orderers and time until a new transaction commits, until every peer and
every orderer holds the same chain in the same view, and until the VPPO
peer's Gateway again gets every orderer's acceptance (it keeps failing to
dial a restarted orderer while gRPC's reconnect backoff runs; until then one
more crash can cost the quorum). Transactions whose submission failed
are looked up afterwards: SmartBFT keeps a request that reached a live
orderer in its pool, so a "failed" submission may still commit once a
quorum is back (counted as "late commits").

Writes ``bench-results/fault_tolerance_n<N>.json`` and ``.md`` (the table in
docs/reliability.md) unless told otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from vpp_gateway import GatewayError, connect_as
from vpp_gateway.errors import CommitTimeoutError
from vpp_network.network import Network, existing_network
from vpp_network.plan import MAIN_CHANNEL

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from helpers import (  # noqa: E402 - needs the path above
    bft_leader,
    restore,
    wait_for_gateway_reaching_all_orderers,
    wait_for_one_view,
    wait_for_orderers_at,
    wait_for_same_chain,
)

IDENTITY = "vppo-admin"


@dataclass
class Scenario:
    orderers: int
    f: int
    k: int
    leader_included: bool
    stopped: list[str]
    attempts: int = 0
    commits: int = 0
    latencies_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    failed_tx_ids: list[str] = field(default_factory=list)
    late_commits: int = 0
    recovery_commit_s: float | None = None
    recovery_in_sync_s: float | None = None
    recovery_reachable_s: float | None = None

    @property
    def label(self) -> str:
        if self.k == 0:
            return "none"
        if self.leader_included:
            return "leader" + (f" + {self.k - 1} follower(s)" if self.k > 1 else "")
        return f"{self.k} follower(s)"


def submit_ping(contract: Any, commit_timeout: float) -> tuple[float, str | None, str | None]:
    """(seconds, error text or None, tx id of a failed submission or None)."""
    proposal = contract.new_proposal("Ping")
    started = time.monotonic()
    try:
        proposal.endorse().submit().wait(commit_timeout)
        return time.monotonic() - started, None, None
    except GatewayError as exc:
        return time.monotonic() - started, short_error(exc), proposal.tx_id


def short_error(exc: GatewayError) -> str:
    """The exception class and the gist of its message (no transaction id, no details)."""
    text = exc.message.split(" failed: ", 1)[-1] if " failed: " in exc.message else exc.message
    if isinstance(exc, CommitTimeoutError):
        text = f"not committed within {exc.timeout} s"
    return f"{type(exc).__name__}: {text[:90]}"


def victims(net: Network, k: int, leader_included: bool) -> list[str]:
    """k orderers: the leader first if asked, then the highest-numbered followers."""
    leader = bft_leader(net)
    numbers = [o.number for o in net.plan.orderers]
    chosen: list[int] = []
    if leader_included and k:
        chosen.append(leader or numbers[0])
    for n in reversed(numbers):
        if len(chosen) >= k:
            break
        if n != leader and n not in chosen:
            chosen.append(n)
    return [f"orderer{n}" for n in chosen]


def run_scenario(
    net: Network, k: int, leader_included: bool, trials: int, commit_timeout: float
) -> Scenario:
    n = len(net.plan.orderers)
    f = (n - 1) // 3
    with connect_as(IDENTITY) as gw:
        contract = gw.network(MAIN_CHANNEL).contract("market")
        # A healthy start: one view on every orderer, every peer agrees, and the Gateway
        # gets every orderer's acceptance (after a restart gRPC's reconnect backoff can
        # keep it from dialing the restarted orderer for a while).
        wait_for_one_view(net)
        wait_for_same_chain(net, MAIN_CHANNEL)
        wait_for_gateway_reaching_all_orderers(net)
        names = victims(net, k, leader_included)
        result = Scenario(n, f, k, leader_included, names)
        try:
            for name in names:
                net.stop_process(name, kill=True)
            for _ in range(trials):
                seconds, error, tx_id = submit_ping(contract, commit_timeout)
                result.attempts += 1
                if error is None:
                    result.commits += 1
                    result.latencies_s.append(round(seconds, 3))
                else:
                    result.errors.append(f"{error} ({seconds:.1f} s)")
                    result.failed_tx_ids.append(tx_id or "")
                    if result.attempts >= 2:
                        break  # the outcome is clear; do not wait out more timeouts
        finally:
            restarted_at = time.monotonic()
            restore(net)
        if names:
            while True:
                seconds, error, _ = submit_ping(contract, 120)
                if error is None:
                    break
                if time.monotonic() - restarted_at > 300:
                    raise RuntimeError(f"no commit within 300 s after restarting {names}: {error}")
                time.sleep(0.5)
            result.recovery_commit_s = round(time.monotonic() - restarted_at, 2)
            height, _ = wait_for_same_chain(net, MAIN_CHANNEL, timeout=300)
            wait_for_orderers_at(net, MAIN_CHANNEL, height, timeout=300)
            wait_for_one_view(net, timeout=300)
            result.recovery_in_sync_s = round(time.monotonic() - restarted_at, 2)
            wait_for_gateway_reaching_all_orderers(net, timeout=300)
            result.recovery_reachable_s = round(time.monotonic() - restarted_at, 2)
        network = gw.network(MAIN_CHANNEL)
        for tx_id in result.failed_tx_ids:
            try:
                if network.commit_status(tx_id, timeout=5).valid:
                    result.late_commits += 1
            except CommitTimeoutError:
                pass
    return result


def scenarios_for(n: int) -> list[tuple[int, bool]]:
    f = (n - 1) // 3
    plan = [(0, False)]
    for k in range(1, f + 2):
        plan.append((k, False))
        if k <= f:
            plan.append((k, True))
    return plan


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def rows(results: list[Scenario]) -> list[list[str]]:
    table = []
    for r in results:
        committed = "yes" if r.commits == r.attempts else ("no" if not r.commits else "partly")
        first = r.latencies_s[0] if r.latencies_s else None
        rest = statistics.median(r.latencies_s[1:]) if len(r.latencies_s) > 1 else None
        table.append(
            [
                f"{r.orderers} (f={r.f})",
                f"{r.k}: {r.label}",
                f"{committed} ({r.commits}/{r.attempts})",
                fmt(first),
                fmt(rest),
                (r.errors[0] if r.errors else "-"),
                fmt(r.recovery_commit_s),
                fmt(r.recovery_in_sync_s),
                fmt(r.recovery_reachable_s),
                f"{r.late_commits}/{len(r.failed_tx_ids)}" if r.failed_tx_ids else "-",
            ]
        )
    return table


HEADERS = [
    "orderers",
    "crashed",
    "commits",
    "first tx (s)",
    "next txs, median (s)",
    "error",
    "restart -> commit (s)",
    "restart -> all in sync (s)",
    "restart -> Gateway reaches all (s)",
    "failed txs that committed later",
]


def markdown(results: list[Scenario]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for row in rows(results):
        lines.append("| " + " | ".join(cell.replace("|", "/") for cell in row) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=5, help="transactions per scenario")
    parser.add_argument("--commit-timeout", type=float, default=60.0, help="seconds per tx")
    parser.add_argument("--out", type=Path, default=None, help="file stem (.json and .md)")
    args = parser.parse_args(argv)
    net = existing_network()
    if net.plan.consensus != "BFT":
        parser.error("the experiment is about SmartBFT; this network runs " + net.plan.consensus)
    down = [name for name, pid in net.running().items() if pid is None]
    if down:
        parser.error(f"the network is not fully up ({', '.join(down)} down): run vpp_network up")
    n = len(net.plan.orderers)
    stem = args.out or REPO / "bench-results" / f"fault_tolerance_n{n}"
    console = Console(width=max(Console().width, 160))
    results = []
    for k, leader in scenarios_for(n):
        console.print(
            f"[bold]N={n}: crashing {k} orderer(s){' incl. the leader' if leader else ''}"
        )
        results.append(run_scenario(net, k, leader, args.trials, args.commit_timeout))
    table = Table(title=f"SmartBFT with {n} orderers, k crashed (Ping on {MAIN_CHANNEL})")
    for header in HEADERS:
        table.add_column(header)
    for row in rows(results):
        table.add_row(*row)
    console.print(table)
    stem.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg": os.getloadavg(),
        },
        "network": str(net.plan.net_dir),
        "trials": args.trials,
        "commit_timeout_s": args.commit_timeout,
    }
    Path(f"{stem}.json").write_text(
        json.dumps({**meta, "scenarios": [asdict(r) for r in results]}, indent=2) + "\n"
    )
    Path(f"{stem}.md").write_text(markdown(results))
    console.print(f"written: {stem}.json, {stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
