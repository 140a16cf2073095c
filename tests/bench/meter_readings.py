"""Signed interval readings on the slave channels: readings/s and CPU per reading.

Run against a running network (``make network-up``; VPP_PORT_OFFSET as for
it): ``.venv/bin/python tests/bench/meter_readings.py [--devices 250]``.
For each scope (agg3 alone; agg1..agg6 at once, one client thread per
channel) and batch size (1, 100, 1000 readings per SubmitReadings), each
channel submits its batches one after another (each waits for its commit)
and the channels run concurrently. Reported: committed readings per second
of wall time, and CPU seconds of every network process (peers, orderers,
chaincode servers; /proc) plus the client, per reading. Every reading is
verified twice (the two endorsers, AggN's and the VPPO's meter servers).
Prints a Markdown table and writes JSON next to docs/benchmarks.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from vpp_gateway import connect_as, load_profile
from vpp_network.processes import ProcessTable

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "cli"))
from vppctl import device_sim  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BATCHES = {1: 20, 100: 10, 1000: 4}  # batch size -> transactions per channel
DAY = 90_000  # a day no test or demo uses


def _cpu(home: Path) -> float:
    table = ProcessTable(home / "run", home / "logs")
    total = 0.0
    for name in table.names():
        pid = table.pid(name)
        if pid is None:
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return total + usage.ru_utime + usage.ru_stime


class Channel:
    def __init__(self, agg: int, devices: int) -> None:
        self.agg = agg
        self.name = f"agg{agg}"
        self.gw = connect_as(f"agg{agg}-admin")
        self.grid = connect_as("grid-admin")
        self.meter = self.gw.network(self.name).contract("meter")
        folder = Path(load_profile().wallet).parent / "devices" / f"bench-agg{agg}"
        self.fleet = device_sim.fleet(agg, devices, folder)
        self.slots = 4
        self.cursor = 0  # next unused (hour, slot) index
        self.items: list[list] = []

    def setup(self) -> None:
        certifier = self.grid.network(self.name).contract("meter")

        def submit(contract, fn, *args):
            return json.loads(contract.submit(fn, *args))

        device_sim.setup(self.meter, certifier, self.fleet, submit)
        self.slots = 3600 // json.loads(self.meter.evaluate("GetMeterConfig"))["interval_s"]

    def take(self, count: int) -> list[list]:
        """``count`` fresh signed readings (device-major within each hour slot)."""
        out = []
        while len(out) < count:
            hour, slot = divmod(self.cursor, self.slots)
            period = f"{DAY:05d}-{hour % 24 + 1:02d}"
            if hour >= 24:
                raise RuntimeError("bench: ran out of hours; use fewer batches or more devices")
            for d in self.fleet:
                out.append(d.reading(self.name, period, slot, 100, 0))
            self.cursor += 1
        return out[:count] if count < len(self.fleet) else out

    def run(self, size: int, transactions: int) -> int:
        committed = 0
        for _ in range(transactions):
            batch = self.take(size)[:size]
            result = json.loads(self.meter.submit("SubmitReadings", json.dumps(batch)))
            committed += result["accepted"]
        return committed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--devices", type=int, default=250)
    parser.add_argument("--aggs", type=int, default=6)
    args = parser.parse_args()
    home = Path(load_profile().wallet).parent  # the network's folder: run/, logs/
    channels = {n: Channel(n, args.devices) for n in range(1, args.aggs + 1)}
    print("setting up devices ...", file=sys.stderr)
    with ThreadPoolExecutor(len(channels)) as pool:
        list(pool.map(lambda c: c.setup(), channels.values()))
    results = []
    scopes = (("agg3", [channels[3]]), (f"agg1..agg{args.aggs}", list(channels.values())))
    for scope, members in scopes:
        for size, transactions in BATCHES.items():
            cpu0, t0 = _cpu(home), time.monotonic()
            with ThreadPoolExecutor(len(members)) as pool:
                done = sum(pool.map(lambda c, s=size, n=transactions: c.run(s, n), members))
            wall, cpu = time.monotonic() - t0, _cpu(home) - cpu0
            row = {"scope": scope, "batch": size, "readings": done, "seconds": round(wall, 2),
                   "readings_per_s": round(done / wall, 1),
                   "cpu_ms_per_reading": round(cpu / done * 1000, 3)}  # fmt: skip
            print(json.dumps(row), file=sys.stderr)
            results.append(row)
    print("| channels | batch | readings | s | readings/s | CPU ms/reading |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['scope']} | {r['batch']} | {r['readings']} | {r['seconds']} | "
              f"{r['readings_per_s']} | {r['cpu_ms_per_reading']} |")  # fmt: skip
    (ROOT / "docs" / "benchmarks-meter.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
