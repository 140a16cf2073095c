"""A closed-loop load run: N submitters, each submit -> wait for commit -> next, for a fixed time.

Only transactions that commit VALID inside the measuring window (after a
warm-up) count; latency is from building the proposal to the commit status,
i.e. what a trader waits for. CPU seconds of every network process and of
this client process are sampled at the window's edges, so each result also
says where the machine's time went per transaction.
"""

from __future__ import annotations

import os
import resource
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from benchnet import BenchNet
from vpp_gateway import GatewayError
from workload import MAIN, MARKET, Lane, Payload, Session


@dataclass
class LoadResult:
    """What one run measured (all times in the window after warm-up)."""

    network: str
    function: str
    submitters: int
    seconds: float
    transactions: int
    orders: int
    failures: int
    latencies_ms: list[float] = field(repr=False)
    load_avg: tuple[float, float]
    cpu_s: dict[str, float]
    failure_examples: list[str] = field(default_factory=list)

    @property
    def tx_per_s(self) -> float:
        return self.transactions / self.seconds

    @property
    def orders_per_s(self) -> float:
        return self.orders / self.seconds

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def as_dict(self) -> dict[str, Any]:
        per_tx = {k: round(v / max(self.transactions, 1) * 1000, 2) for k, v in self.cpu_s.items()}
        return {
            "network": self.network,
            "function": self.function,
            "submitters": self.submitters,
            "seconds": round(self.seconds, 2),
            "transactions": self.transactions,
            "orders": self.orders,
            "failures": self.failures,
            "failure_examples": self.failure_examples[:3],
            "tx_per_s": round(self.tx_per_s, 1),
            "orders_per_s": round(self.orders_per_s, 1),
            "p50_ms": round(self.percentile(0.50), 1),
            "p95_ms": round(self.percentile(0.95), 1),
            "mean_ms": round(statistics.fmean(self.latencies_ms), 1) if self.latencies_ms else None,
            "load_avg_1m_5m": list(self.load_avg),
            "cpu_s": {k: round(v, 2) for k, v in self.cpu_s.items()},
            "cpu_ms_per_tx": per_tx,
        }


def _client_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cpu_snapshot(net: BenchNet) -> dict[str, float]:
    return {**net.cpu_seconds(), "client": _client_cpu()}


def _group(cpu: dict[str, float]) -> dict[str, float]:
    """Per-process CPU summed into orderers, peers, each chaincode (all organisations'
    servers of it: ``chaincode-market-vppo`` counts as ``chaincode-market``) and the client."""
    groups: dict[str, float] = {}
    for name, seconds in cpu.items():
        if name.startswith("orderer"):
            key = "orderers"
        elif name.startswith("peer"):
            key = "peers"
        elif name.startswith("chaincode-"):
            key = "-".join(name.split("-")[:2])
        else:
            key = name
        groups[key] = groups.get(key, 0.0) + seconds
    return groups


def idle_cores(net: BenchNet, seconds: float = 5.0) -> dict[str, float]:
    """CPU the idle network uses (cores, per process kind): heartbeats, gossip, keepalives.

    Every per-transaction CPU figure includes this background, which matters
    most at low rates (one submitter).
    """
    before = _cpu_snapshot(net)
    time.sleep(seconds)
    after = _cpu_snapshot(net)
    used = _group({k: after.get(k, 0.0) - before.get(k, 0.0) for k in after if k != "client"})
    return {k: round(v / seconds, 3) for k, v in used.items()}


def run(
    net: BenchNet,
    session: Session,
    lane_list: list[Lane],
    payloads: Callable[[Lane], Iterator[Payload]],
    function: str,
    *,
    seconds: float,
    warmup: float,
    progress: Callable[[float, int, int], None] = lambda *_: None,
) -> LoadResult:
    """Runs one closed-loop load and returns what happened inside the measuring window."""
    stop = threading.Event()
    lock = threading.Lock()
    done: list[tuple[float, float, int]] = []  # (start, end, orders) of VALID commits
    failures: list[tuple[float, str]] = []

    def submitter(lane: Lane) -> None:
        gateway = session.gateway(lane.identity, fresh=True)
        contract = gateway.network(MAIN).contract(MARKET)
        stream = payloads(lane)
        try:
            while not stop.is_set():
                fn, args, orders, kwargs = next(stream)
                start = time.perf_counter()
                try:
                    contract.submit(fn, *args, commit_timeout=120, **kwargs)
                except (GatewayError, TimeoutError) as exc:
                    with lock:
                        failures.append((time.perf_counter(), f"{fn}: {exc}"[:300]))
                    continue
                end = time.perf_counter()
                with lock:
                    done.append((start, end, orders))
        finally:
            gateway.close()

    threads = [threading.Thread(target=submitter, args=(lane,), daemon=True) for lane in lane_list]
    for t in threads:
        t.start()
    time.sleep(warmup)
    window_start = time.perf_counter()
    cpu_before = _cpu_snapshot(net)
    while (elapsed := time.perf_counter() - window_start) < seconds:
        with lock:
            committed = [d for d in done if d[1] >= window_start]
        progress(elapsed, len(committed), sum(d[2] for d in committed))
        time.sleep(0.25)
    window_end = time.perf_counter()
    cpu_after = _cpu_snapshot(net)
    load = os.getloadavg()
    stop.set()
    for t in threads:
        t.join(timeout=180)
    inside = [d for d in done if window_start <= d[1] <= window_end]
    failed = [f for f in failures if window_start <= f[0] <= window_end]
    cpu = {k: cpu_after.get(k, 0.0) - cpu_before.get(k, 0.0) for k in cpu_after}
    return LoadResult(
        network=net.name,
        function=function,
        submitters=len(lane_list),
        seconds=window_end - window_start,
        transactions=len(inside),
        orders=sum(d[2] for d in inside),
        failures=len(failed),
        latencies_ms=[(end - start) * 1000 for start, end, _ in inside],
        load_avg=(round(load[0], 2), round(load[1], 2)),
        cpu_s=_group(cpu),
        failure_examples=[f[1] for f in failed],
    )
