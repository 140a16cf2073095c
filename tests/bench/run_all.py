"""`make bench`: every benchmark on this machine, results in docs/benchmarks.{json,md}.

    .venv/bin/python tests/bench/run_all.py [--seconds 10] [--skip-raft] [--no-write] ...

1. offline clearing (tests/bench/bench_clearing.py) at 1k, 10k and 100k orders;
2. a fresh BFT benchmark network (.fabric/bench, ports +13000): submission
   throughput and latency of Noop, Ping, SubmitOrder and SubmitOrders (an
   aggregator's 24 hourly orders of a day) with 1, 8 and 32 submitters;
   ClearPeriod of 100, 1,000 and 5,000 orders; peak memory of every process;
   then the shim A/B: the same SubmitOrders/SubmitOrder runs and a ClearPeriod
   with write batching and multi-key reads off (as before) and on;
3. the same submission runs and A/B on a fresh Raft network
   (.fabric/bench-raft, ports +21000, 3 orderers);
4. `vppctl simulate` (tests/bench/bench_simulate.py): a simulated year
   offline, and a simulated day (24 periods, 6 aggregators) on the fresh BFT
   network before anything else uses it (ledger day 1; the throughput runs
   then use days 2..); its own block in docs/benchmarks.md;
5. the Grid's AC power-flow check (tests/bench/bench_grid.py), off-chain: a
   period of six aggregators and one of 1,000 contracts; its own block;
6. signed interval readings on the slave channels (tests/bench/meter_readings.py),
   after the other runs on the fresh BFT network (its certified devices never report, so
   nothing may seal after it): batches of 1, 100 and 1,000 readings on agg3
   alone and on all six channels at once; its own block;
7. admitting a seventh aggregator to the BFT network once everything else
   has run on it (tests/bench/bench_admission.py): seconds per step, network
   and client CPU; its own block.

Networks are created and removed here, beside (never instead of) the
developer's own network, and only they run the benchmark market contract
(BenchSeedBook). The machine is assumed shared: load averages are
recorded next to every number. Benchmarks report; they assert nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import bench_admission
import bench_clearing
import bench_grid
import bench_simulate
import live_clearing
import load
import meter_readings
import report
from benchnet import REPO, Batch, BenchNet
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from workload import (
    Lane,
    Payload,
    Session,
    constant,
    day_orders,
    fresh_day,
    lanes,
    open_days,
    ready,
    register_aggregators,
    single_orders,
    wait_in_sync,
)

FUNCTIONS = ("Noop", "Ping", "SubmitOrder", "SubmitOrders")
RAFT_FUNCTIONS = ("Noop", "SubmitOrder", "SubmitOrders")
# Both bench networks sit below the kernel's ephemeral range (32768-60999), where any
# outgoing connection can hold a port the moment a node wants to listen on it: BFT
# at 20011-22104, Raft at 28011-30104, the user's own network at 7011-9104.
RAFT_PORT_SHIFT = 8_000  # the Raft network's ports sit this far above the BFT network's
CLEARING_DAY = 500  # clearing periods live far from the days the throughput runs use


def networks(args: argparse.Namespace) -> dict[str, BenchNet]:
    fabric = REPO / ".fabric"
    bft_offset = args.port_offset
    return {
        "bft": BenchNet(
            "bft", fabric / "bench", bft_offset, "BFT", 4, batch=Batch(*args.bft_batch)
        ),
        "raft": BenchNet(
            "raft",
            fabric / "bench-raft",
            bft_offset + RAFT_PORT_SHIFT,
            "etcdraft",
            3,
            batch=Batch(*args.raft_batch),
        ),
    }


def payload_factory(function: str, days: range, seed: int) -> Callable[[Lane], Iterator[Payload]]:
    if function == "SubmitOrder":
        return lambda lane: single_orders(lane, days, seed)
    if function == "SubmitOrders":
        return lambda lane: day_orders(lane, days, seed)
    return lambda lane: constant(function)(lane, days, seed)


def git_info() -> dict[str, Any]:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return done.stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}


class Bench:
    """One `make bench` run: options, progress display, the results document."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.console = Console()
        self.log_file = REPO / ".fabric" / "bench-logs" / "network.log"
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.started = time.monotonic()
        self.doc: dict[str, Any] = {
            "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": "make bench" if os.environ.get("MAKELEVEL") else " ".join(sys.argv),
            "fabric_version": _fabric_version(),
            "git": git_info(),
            "machine": bench_clearing.machine(),
            "load_avg_start": list(os.getloadavg()),
            "settings": {
                "seconds": args.seconds,
                "warmup": args.warmup,
                "submitters": args.submitters,
                "days_open": args.days,
                "clearing_sizes": args.clearing_sizes,
            },
            "networks": [],
        }
        self.simulate: dict[str, Any] = bench_simulate.new_doc()
        self.admission: dict[str, Any] = bench_admission.new_doc()
        self.grid: dict[str, Any] | None = None
        self.meter: dict[str, Any] | None = None

    # --- offline -------------------------------------------------------------------
    def offline(self, progress: Progress) -> None:
        sizes, repeats = self.args.offline_sizes, self.args.repeats
        literal = bench_clearing.LITERAL
        runs = [(n, case) for n in sizes for case in bench_clearing.CASES]
        runs += [(n, literal) for n in sizes if n <= 10_000]  # O(n^2): 100k would take minutes
        task = progress.add_task("offline clearing", total=len(runs))
        rows = []
        books: dict[int, list[Any]] = {}
        for n, case in runs:
            progress.update(task, description=f"offline clearing: {case}, {n:,} orders")
            book = books.setdefault(n, bench_clearing.synthetic_book(n))
            if case == literal:
                seconds, result = bench_clearing.time_clear(
                    book, None, 1, bench_clearing.literal_clear()
                )
            else:
                seconds, result = bench_clearing.time_clear(
                    book, bench_clearing.CASES[case](n), repeats
                )
            supplied = sum(o.quantity_wh for o in book if o.side.value == "sell")
            rows.append(
                {
                    "case": case,
                    "orders": n,
                    "seconds": round(seconds, 4),
                    "matches": len(result.matches),
                    "sold_p2p_share": round(
                        sum(m.quantity_wh for m in result.matches) / supplied, 3
                    ),
                }
            )
            progress.advance(task)
        exponents = {
            case: round(
                bench_clearing.growth_exponent(
                    [(r["orders"], r["seconds"]) for r in rows if r["case"] == case]
                ),
                2,
            )
            for case in [*bench_clearing.CASES, literal]
            if sum(r["case"] == case for r in rows) >= 2
        }
        self.doc["offline_clearing"] = {
            "repeats": repeats,
            "seed": bench_clearing.SEED,
            "results": rows,
            "growth_exponent": exponents,
            "load_avg": list(os.getloadavg()),
        }

    def simulate_offline(self, progress: Progress) -> None:
        days = self.args.simulate_days
        task = progress.add_task(f"vppctl simulate: {days} days offline", total=None)
        try:
            self.simulate["offline"] = bench_simulate.offline(days)
        except Exception as exc:  # noqa: BLE001 - reported in the results, next phase runs
            self.simulate["errors"].append(f"offline: {type(exc).__name__}: {exc}"[:500])
        progress.remove_task(task)
        row = self.simulate.get("offline")
        if row:
            self.console.print(
                f"  simulated {days} days offline in {row['seconds']} s "
                f"(plots {row['plots_seconds']} s)",
                highlight=False,
            )

    def simulate_day(self, net: BenchNet, session: Session, progress: Progress) -> bool:
        """A simulated day on the fresh network (ledger day 1); True if it ran."""
        task = progress.add_task(f"{net.name}: vppctl simulate, one day live", total=None)
        self.simulate["live_network"] = (
            f"fresh bench network, {net.consensus}, {net.orderers} orderers, {net.aggs + 2} peers"
        )
        try:
            row = bench_simulate.live_day(net.profile_path, cpu_snapshot=net.cpu_seconds)
        except Exception as exc:  # noqa: BLE001 - reported in the results
            self.simulate["errors"].append(f"live day: {type(exc).__name__}: {exc}"[:500])
            self.console.print(f"  [red]simulated day failed: {exc}[/]")
            return False
        finally:
            progress.remove_task(task)
        self.simulate["live"] = row
        self.console.print(
            f"  simulated day live: {row['seconds']} s, {row['transactions']:,} tx, "
            f"{row.get('cpu_ms_per_tx', '?')} CPU ms/tx",
            highlight=False,
        )
        return True

    # --- one live network ----------------------------------------------------------------
    def live(
        self, net: BenchNet, functions: tuple[str, ...], clearing: bool, progress: Progress
    ) -> None:
        task = progress.add_task(f"{net.name}: creating the network", total=None)
        started = time.perf_counter()
        attempts = net.up(self.log_file)
        result: dict[str, Any] = {
            "up_attempts": attempts,
            "network": net.describe(),
            "up_s": round(time.perf_counter() - started, 1),
        }
        self.doc["networks"].append(result)
        session = Session(net.profile_path)
        result["errors"] = []
        try:
            progress.update(
                task, description=f"{net.name}: registering, opening {self.args.days} days"
            )
            ready(session)
            if clearing and not self.args.skip_simulate:
                self.simulate_day(net, session, progress)
            register_aggregators(session, net.aggs)
            # After the simulated day, also one that failed half-way (its open periods
            # made OpenPeriod of "day 1" refuse: PERIOD_EXISTS, and the bench stop).
            first = fresh_day(session)
            days = range(first, first + self.args.days)
            open_days(session, days)
            wait_in_sync(session, ["VPPOMSP", "GridMSP"])
            result["idle_cores"] = load.idle_cores(net)
            result["throughput"] = self.throughput(net, session, functions, days, progress)
            if clearing:
                self.guarded(result, "clearing", lambda: self.clearing(session, progress))
            result["memory"] = net.memory()
            if self.args.ab and "SubmitOrders" in functions:
                self.guarded(result, "shim_ab", lambda: self.shim_ab(net, session, days, progress))
            if net.name == "bft" and not self.args.skip_meter:
                self.guarded(result, "meter_readings", lambda: self.meter_readings(net, progress))
            if net.name == "bft" and not self.args.skip_admission:
                self.admit(net, progress)
        finally:
            session.close()
            progress.update(task, description=f"{net.name}: removing the network")
            if not self.args.keep_networks:
                net.clean(self.log_file)
            progress.remove_task(task)

    def admit(self, net: BenchNet, progress: Progress) -> None:
        """One more aggregator joins the network it measured (the last thing it does)."""
        task = progress.add_task(f"{net.name}: admitting Agg{net.aggs + 1}", total=None)
        self.admission["network"] = (
            f"the BFT bench network after its runs, {net.orderers} orderers, {net.aggs + 2} peers"
        )
        try:
            row = bench_admission.admit(net.env(), net.aggs, net.cpu_seconds, self.log_file)
            self.admission["result"] = row
            self.console.print(
                f"  admitted {row['admitted']} in {row['seconds']} s "
                f"({row['network_cpu_s']} network + {row['client_cpu_s']} client CPU s)",
                highlight=False,
            )
        except Exception as exc:  # noqa: BLE001 - reported in the results
            self.admission["errors"].append(f"{type(exc).__name__}: {exc}"[:500])
            self.console.print(f"  [red]admission failed: {exc}[/]")
        finally:
            progress.remove_task(task)

    def guarded(self, result: dict[str, Any], name: str, phase: Callable[[], Any]) -> None:
        """Runs one phase; a failure is recorded in the results and the next phase runs."""
        try:
            result[name] = phase()
        except Exception as exc:  # noqa: BLE001 - reported, not hidden: see results["errors"]
            message = f"{name}: {type(exc).__name__}: {exc}"[:500]
            result["errors"].append(message)
            self.console.print(f"  [red]{message}[/]")

    def throughput(
        self,
        net: BenchNet,
        session: Session,
        functions: tuple[str, ...],
        days: range,
        progress: Progress,
    ) -> list[dict[str, Any]]:
        results = []
        for function in functions:
            for submitters in self.args.submitters:
                wait_in_sync(session, ["VPPOMSP", "GridMSP"])
                label = f"{net.name}: {function} x{submitters}"
                task = progress.add_task(label, total=self.args.seconds)

                def tick(
                    elapsed: float, tx: int, orders: int, task: Any = task, label: str = label
                ) -> None:
                    rate = tx / elapsed if elapsed > 0 else 0.0
                    extra = f", {orders / elapsed:.0f} orders/s" if orders and elapsed > 0 else ""
                    progress.update(
                        task, completed=elapsed, description=f"{label}: {rate:.1f} tx/s{extra}"
                    )

                run = load.run(
                    net,
                    session,
                    lanes(submitters, net.aggs),
                    payload_factory(function, days, seed=len(results) + 1),
                    function,
                    seconds=self.args.seconds,
                    warmup=self.args.warmup,
                    progress=tick,
                )
                row = run.as_dict()
                results.append(row)
                progress.remove_task(task)
                self.console.print(
                    f"  {label}: {row['tx_per_s']:.1f} tx/s"
                    + (f" ({row['orders_per_s']:.0f} orders/s)" if row["orders"] else "")
                    + f", p50 {row['p50_ms']:.0f} ms, p95 {row['p95_ms']:.0f} ms, "
                    f"{row['failures']} failed, load {row['load_avg_1m_5m'][0]:.1f}",
                    highlight=False,
                )
        return results

    def shim_ab(
        self, net: BenchNet, session: Session, days: range, progress: Progress
    ) -> list[dict[str, Any]]:
        """The same runs with the shim's batching off, then on again, back to back.

        Off is how the shim worked before (one round trip per ledger call);
        measuring both in a row on the same network keeps the machine's
        changing load out of the comparison as far as possible.
        """
        rows = []
        for variant in ("off", "on"):
            task = progress.add_task(f"shim A/B: restarting the market, batching {variant}")
            net.restart_market(self.log_file, VPP_SHIM_PEER_FEATURES=variant)
            ready(session)
            progress.remove_task(task)
            for function, submitters in (("SubmitOrders", 8), ("SubmitOrder", 8)):
                wait_in_sync(session, ["VPPOMSP", "GridMSP"])
                run = load.run(
                    net,
                    session,
                    lanes(submitters, net.aggs),
                    payload_factory(function, days, seed=100 + len(rows)),
                    function,
                    seconds=self.args.seconds,
                    warmup=self.args.warmup,
                )
                rows.append({"batching": variant, "kind": "load", **run.as_dict()})
                self.console.print(
                    f"  shim batching {variant}: {function} x{submitters}: "
                    f"{run.orders_per_s:.0f} orders/s, p50 {run.percentile(0.5):.0f} ms",
                    highlight=False,
                )
            day = CLEARING_DAY + 10 + len(rows)
            cleared = live_clearing.clear_once(session, day, 13, 1_000)
            cleared["load_avg"] = list(os.getloadavg())
            rows.append({"batching": variant, "kind": "clearing", **cleared})
            self.console.print(
                f"  shim batching {variant}: ClearPeriod of 1,000: endorse "
                f"{cleared['endorse_s']:.2f} s, seeding {cleared['seed_s']:.1f} s",
                highlight=False,
            )
        return rows

    def meter_readings(self, net: BenchNet, progress: Progress) -> str:
        """Signed interval readings (issue 13) on this network; the rows go to their own block."""
        task = progress.add_task(f"{net.name}: signed meter readings", total=None)

        def say(text: str) -> None:
            progress.update(task, description=f"{net.name}: {text[:100]}")

        try:
            doc = meter_readings.run(
                net.profile_path,
                devices=self.args.meter_devices,
                aggs=net.aggs,
                cpu=net.cpu_seconds,
                say=say,
            )
        finally:
            progress.remove_task(task)
        self.meter = {
            "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "network": f"the fresh bench network ({net.consensus}, {net.orderers} orderers, "
            f"{net.aggs + 2} peers)",
            **doc,
        }
        for row in doc["rows"]:
            self.console.print(
                f"  meter readings {row['scope']} x{row['batch']}: "
                + (
                    f"failed: {row['error']}"
                    if "error" in row
                    else f"{row['readings_per_s']} readings/s, "
                    f"{row['cpu_ms_per_reading']} CPU ms/reading"
                ),
                highlight=False,
            )
        return "see docs/benchmarks-meter.json"

    def clearing(self, session: Session, progress: Progress) -> list[dict[str, Any]]:
        sizes = self.args.clearing_sizes
        task = progress.add_task("on-network clearing", total=len(sizes))
        results = []
        for i, n in enumerate(sizes):

            def say(text: str, task: Any = task) -> None:
                progress.update(task, description=f"on-network clearing: {text}")

            row = live_clearing.clear_once(session, CLEARING_DAY + i, 13, n, progress=say)
            row["load_avg"] = list(os.getloadavg())
            results.append(row)
            progress.advance(task)
            self.console.print(
                f"  ClearPeriod of {n:,} orders: endorse {row['endorse_s']:.2f} s, "
                f"order+commit {row['order_commit_s']:.2f} s, "
                f"{row['envelope_bytes'] / 1024:,.0f} KiB, {row['matches']:,} matches",
                highlight=False,
            )
        progress.remove_task(task)
        return results

    # --- all of it ------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        nets = networks(self.args)
        columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
        with Progress(*columns, console=self.console) as progress:
            if not self.args.skip_offline:
                self.offline(progress)
                self.console.print("  offline clearing done", highlight=False)
            if not self.args.skip_simulate and self.args.simulate_days:
                self.simulate_offline(progress)
            if not self.args.skip_grid:
                task = progress.add_task("the Grid's power-flow check (vpp_grid)", total=None)
                self.grid = {**bench_grid.new_doc(), **bench_grid.run(3), "repeat": 3}
                progress.remove_task(task)
            if not self.args.skip_bft:
                self.live(nets["bft"], self.args.functions, not self.args.skip_clearing, progress)
            if not self.args.skip_raft:
                raft_functions = tuple(f for f in RAFT_FUNCTIONS if f in self.args.functions)
                self.live(nets["raft"], raft_functions, False, progress)
        self.doc["load_avg_end"] = list(os.getloadavg())
        self.doc["duration_s"] = round(time.monotonic() - self.started)
        return self.doc


def _fabric_version() -> str:
    from vpp_network.plan import FABRIC_VERSION

    return FABRIC_VERSION


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10.0, help="measuring window per run")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds before the window opens")
    p.add_argument("--submitters", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--functions", nargs="+", default=list(FUNCTIONS), choices=FUNCTIONS)
    p.add_argument("--days", type=int, default=30, help="days of periods opened per network")
    for name in ("bft", "raft"):
        p.add_argument(
            f"--{name}-batch",
            nargs=2,
            metavar=("INTERVAL", "COUNT"),
            default=[Batch.interval, Batch.max_count],
            type=str,
            help=f"{name} block cutting: max interval (e.g. 100ms) and max transactions",
        )
    p.add_argument("--clearing-sizes", type=int, nargs="+", default=[100, 1_000, 5_000])
    p.add_argument("--offline-sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    p.add_argument("--repeats", type=int, default=3, help="offline clearing: best of N")
    p.add_argument("--skip-offline", action="store_true")
    p.add_argument("--skip-bft", action="store_true")
    p.add_argument("--skip-raft", action="store_true")
    p.add_argument("--skip-clearing", action="store_true")
    p.add_argument("--skip-simulate", action="store_true", help="no vppctl simulate timings")
    p.add_argument("--skip-grid", action="store_true", help="no grid power-flow check timings")
    p.add_argument(
        "--skip-admission", action="store_true", help="no add-aggregator timings (BFT network)"
    )
    p.add_argument("--simulate-days", type=int, default=365, help="offline simulated days")
    p.add_argument("--skip-meter", action="store_true", help="no signed meter readings timings")
    p.add_argument("--meter-devices", type=int, default=250, help="devices per slave channel")
    p.add_argument(
        "--no-ab",
        dest="ab",
        action="store_false",
        help="skip the shim A/B (write batching and multi-key reads off vs on)",
    )
    p.add_argument(
        "--port-offset",
        type=int,
        default=13_000,
        help="port shift of the BFT network; Raft's is 8000 higher (two engineers' benches "
        "on one machine need different values below the ephemeral range, e.g. 4000)",
    )
    p.add_argument("--keep-networks", action="store_true", help="do not remove them at the end")
    p.add_argument("--json", type=Path, default=REPO / "docs" / "benchmarks.json")
    p.add_argument("--markdown", type=Path, default=REPO / "docs" / "benchmarks.md")
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/ alone")
    args = p.parse_args(argv)
    args.functions = tuple(args.functions)
    args.bft_batch = (args.bft_batch[0], int(args.bft_batch[1]))
    args.raft_batch = (args.raft_batch[0], int(args.raft_batch[1]))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench = Bench(args)
    doc = bench.run()
    text = json.dumps(doc, indent=2) + "\n"
    if args.no_write:
        bench.console.print(report.render(doc), highlight=False)
        return 0
    args.json.write_text(text)
    report.write_markdown(doc, args.markdown)
    if not args.skip_simulate:
        bench_simulate.write(
            bench.simulate, args.markdown, args.json.with_name("benchmarks-simulate.json")
        )
    if bench.grid:
        bench_grid.write(bench.grid, args.markdown, args.json.with_name("benchmarks-grid.json"))
    if bench.meter:
        meter_readings.write(
            bench.meter, args.markdown, args.json.with_name("benchmarks-meter.json")
        )
    if "result" in bench.admission or bench.admission["errors"]:
        bench_admission.write(
            bench.admission, args.markdown, args.json.with_name("benchmarks-admission.json")
        )
    bench.console.print(
        f"results: {args.json} and {args.markdown} ({doc['duration_s'] / 60:.1f} min)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
