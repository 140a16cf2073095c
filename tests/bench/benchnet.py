"""Throwaway benchmark networks beside the user's: own state folder, shifted ports, bench flag.

`make bench` must not disturb the network a developer is working with, so
every benchmark network lives under ``.fabric/bench*`` with its ports
shifted by an offset (docs/network.md, VPP_HOME / VPP_PORT_OFFSET), is
created fresh and removed afterwards. It is the only kind of network whose
market chaincode servers run the benchmark contract (``market-bench``:
the production market plus BenchSeedBook, vpp_chaincode/benchmarket.py).

Batch settings are module constants of ``vpp_network.configs``; to try other
values without touching the network code, the network is created in a child
process (``python tests/bench/benchnet.py up ...``) that sets them first.

Processes are found through the network's own PID files, never by name.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DEFAULT_NETWORK = REPO / ".fabric" / "network"
# What the market's servers run on a benchmark network (vpp_chaincode.server CONTRACTS).
SERVED_CONTRACTS = {"market": "market-bench"}


@dataclass(frozen=True)
class Batch:
    """Block cutting: SmartBFT RequestBatchMaxInterval/Count, Raft BatchTimeout/MaxMessageCount."""

    interval: str = "100ms"
    max_count: int = 500


@dataclass(frozen=True)
class BenchNet:
    """One benchmark network: where it lives, its ports, its ordering service."""

    name: str
    home: Path
    port_offset: int
    consensus: str = "BFT"
    orderers: int = 4
    aggs: int = 6
    batch: Batch = field(default_factory=Batch)

    def __post_init__(self) -> None:
        if self.home.resolve() == DEFAULT_NETWORK.resolve() or self.port_offset == 0:
            raise ValueError("a benchmark network needs its own VPP_HOME and a port offset")

    def env(self) -> dict[str, str]:
        return dict(
            os.environ,
            VPP_HOME=str(self.home),
            VPP_PORT_OFFSET=str(self.port_offset),
            VPP_CONSENSUS=self.consensus,
            VPP_ORDERERS=str(self.orderers),
        )

    @property
    def profile_path(self) -> Path:
        return self.home / "connection.json"

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "consensus": self.consensus,
            "orderers": self.orderers,
            "peers": self.aggs + 2,
            "aggregator_orgs": self.aggs,
            "batch": asdict(self.batch),
            "port_offset": self.port_offset,
        }

    # --- life cycle -------------------------------------------------------------------
    def _network_cli(self, command: str, log: Path) -> None:
        argv = [sys.executable, "-m", "vpp_network", command]
        if command == "up":
            argv = [
                sys.executable,
                __file__,
                "up",
                "--aggs",
                str(self.aggs),
                "--batch-interval",
                self.batch.interval,
                "--batch-count",
                str(self.batch.max_count),
            ]
        with log.open("a") as out:
            done = subprocess.run(argv, env=self.env(), stdout=out, stderr=subprocess.STDOUT)
        if done.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            raise RuntimeError(f"{self.name}: vpp_network {command} failed:\n{tail}")

    def up(self, log: Path, attempts: int = 3) -> int:
        """Creates the network from scratch (an old one at the same place is removed first).

        On a loaded machine a first network-up occasionally fails while
        committing the chaincode definitions (the two endorsing peers have not
        both committed the approvals yet: "ProposalResponsePayloads do not
        match"); it is then cleaned and tried again. Returns the attempts used.
        """
        for attempt in range(1, attempts + 1):
            self.clean(log)
            try:
                self._network_cli("up", log)
                return attempt
            except RuntimeError:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    def clean(self, log: Path) -> None:
        if self.home.exists():
            self._network_cli("clean", log)

    def restart_market(self, log: Path, **env: str) -> None:
        """Restarts every organisation's market chaincode server with extra environment
        (A/B runs of the shim).

        Stops the processes we started (PID files), then lets network-up start
        what is missing; the peers reconnect on the next transaction.
        """
        from vpp_network.processes import ProcessTable

        table = ProcessTable(self.home / "run", self.home / "logs")
        for name in table.names():
            if name == "chaincode-market" or name.startswith("chaincode-market-"):
                table.stop(name)
        argv = [sys.executable, "-m", "vpp_network", "up"]
        with log.open("a") as out:
            done = subprocess.run(
                argv, env={**self.env(), **env}, stdout=out, stderr=subprocess.STDOUT
            )
        if done.returncode != 0:
            raise RuntimeError(f"{self.name}: restarting the market chaincode failed; see {log}")

    # --- processes ----------------------------------------------------------------------
    def pids(self) -> dict[str, int]:
        """Live processes of this network, from its PID files (PID and start time checked)."""
        from vpp_network.processes import ProcessTable

        table = ProcessTable(self.home / "run", self.home / "logs")
        return {n: pid for n in table.names() if (pid := table.pid(n)) is not None}

    def memory(self) -> dict[str, dict[str, int]]:
        """Peak (VmHWM) and current (VmRSS) resident memory per process, in KiB."""
        return {name: proc_memory(pid) for name, pid in self.pids().items()}

    def cpu_seconds(self) -> dict[str, float]:
        """User + system CPU time so far, per process."""
        return {name: proc_cpu_seconds(pid) for name, pid in self.pids().items()}


def proc_memory(pid: int) -> dict[str, int]:
    fields = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                fields[key] = int(value.split()[0])
    except OSError:
        pass
    return {"peak_kib": fields.get("VmHWM", 0), "rss_kib": fields.get("VmRSS", 0)}


def proc_cpu_seconds(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # Fields 14 and 15 (utime, stime) counted from 1; after ")" they are 11 and 12 (0-based).
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


def _up(args: argparse.Namespace) -> int:
    """Runs in the child: set the batch constants and the served market contract, then
    the ordinary network-up (which records the contract with the new network)."""
    from vpp_network import configs
    from vpp_network import network as network_module
    from vpp_network.network import NetworkError, existing_network

    network_module.SERVED_CONTRACTS = dict(SERVED_CONTRACTS)
    configs.BATCH_MAX_INTERVAL = args.batch_interval
    configs.BATCH_TIMEOUT = args.batch_interval
    configs.BATCH_MAX_COUNT = args.batch_count
    try:
        existing_network(args.aggs).up()
    except NetworkError as exc:
        print(exc.message, file=sys.stderr)
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description="create a benchmark network (used by run_all)")
    parser.add_argument("command", choices=["up"])
    parser.add_argument("--aggs", type=int, default=6)
    parser.add_argument("--batch-interval", default=Batch.interval)
    parser.add_argument("--batch-count", type=int, default=Batch.max_count)
    args = parser.parse_args()
    if "VPP_HOME" not in os.environ or not os.environ.get("VPP_PORT_OFFSET"):
        parser.error("only for benchmark networks (VPP_HOME and VPP_PORT_OFFSET set)")
    return _up(args)


if __name__ == "__main__":
    sys.exit(main())
