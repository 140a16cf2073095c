"""network-up / network-down / network-clean / network-status.

`up` is idempotent and resumable: the first run builds binaries, creates
crypto, channels and chaincode definitions; later runs only start what is
not running, on the ledgers already on disk. `down` stops only the
processes whose PID files we wrote; `clean` also removes the state.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from vpp_network import build, chaincode_tls, configs, enrolment, fabric_cli, hosts, readiness
from vpp_network import ca as ca_servers
from vpp_network.plan import (
    DEFAULT_AGGS,
    FABRIC_VERSION,
    ORDERER_COUNT,
    ChaincodeServer,
    NetworkPlan,
    PeerOrg,
    port_offset,
)
from vpp_network.processes import ProcessSpec, ProcessTable, port_listening, port_owner

Log = Callable[[str], None]

# The contract a chaincode's servers run (``python -m vpp_chaincode.server <contract>``)
# where it is not the chaincode's own name. Empty for every network `make network-up`
# creates; tests/bench sets {"market": "market-bench"} (BenchSeedBook) in the process that
# creates a benchmark network. Stored with the network when it is created, so a later
# `up` (a restart) serves the same contract, and changing it later has no effect.
SERVED_CONTRACTS: dict[str, str] = {}


class NetworkError(SystemExit):
    """Ends `make network-*` with a one-paragraph explanation (exit code 1)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _log(message: str) -> None:
    print(message, flush=True)


def existing_network(
    aggs: int | None = None, log: Log = _log, layout: str | None = None
) -> Network:
    """The network described by the state on disk (or a default one if there is none).

    Shape settings given explicitly (``aggs``, ``layout``, or VPP_CONSENSUS /
    VPP_ORDERERS / VPP_LAYOUT in the environment) win over the stored ones, so `up`
    can refuse a mismatch clearly.
    """
    state = Network(NetworkPlan(layout="loopback"), log).state()
    plan = NetworkPlan(
        aggs=aggs or state.get("aggs") or DEFAULT_AGGS,
        consensus=os.environ.get("VPP_CONSENSUS") or state.get("consensus") or "BFT",
        orderer_count=int(os.environ.get("VPP_ORDERERS") or state.get("orderers") or ORDERER_COUNT),
        layout=layout or os.environ.get("VPP_LAYOUT") or state.get("layout") or "loopback",
    )
    return Network(plan, log)


class Network:
    def __init__(self, plan: NetworkPlan, log: Log = _log) -> None:
        self.plan = plan
        self.log = log
        self.procs = ProcessTable(plan.run_dir, plan.log_dir)

    # --- persistent state ------------------------------------------------------------
    def state(self) -> dict:
        try:
            return json.loads(self.plan.state_file.read_text())
        except (OSError, ValueError):
            return {}

    def save_state(self, **changes: object) -> None:
        state = self.state() | changes
        self.plan.state_file.parent.mkdir(parents=True, exist_ok=True)
        self.plan.state_file.write_text(json.dumps(state, indent=2) + "\n")

    # --- process specs -----------------------------------------------------------------
    def process_specs(self) -> list[ProcessSpec]:
        plan = self.plan
        bin_dir = plan.bin_dir
        # A CA runs from its own folder; a network made before the CAs has none.
        specs = [
            ca_servers.process_spec(plan, ca)
            for ca in plan.cas
            if (plan.ca_home(ca) / ca_servers.CONFIG_FILE).exists()
        ]
        specs += [
            ProcessSpec(
                o.name,
                [str(bin_dir / "orderer")],
                dict(os.environ, FABRIC_CFG_PATH=str(plan.node_home(o.name))),
                (o.port, o.admin_port, o.operations_port),
                namespace=plan.host_of(o).namespace,
            )
            for o in plan.orderers
        ]
        specs += [
            ProcessSpec(
                org.peer_host,
                [str(bin_dir / "peer"), "node", "start"],
                dict(
                    os.environ,
                    FABRIC_CFG_PATH=str(plan.node_home(org.peer_host)),
                    **self._peer_client_tls_env(org),
                ),
                (org.port, org.chaincode_port, org.operations_port),
                namespace=plan.host_of(org).namespace,
            )
            for org in plan.peer_orgs
        ]
        packages = self.packages()
        for cc in plan.chaincodes:
            for org in plan.chaincode_orgs(cc):
                if org.mspid in packages.get(cc.name, {}):
                    specs.append(self._chaincode_spec(cc, org, packages[cc.name][org.mspid]))
        return specs

    def packages(self) -> dict[str, dict[str, str]]:
        """Installed package ids: {chaincode: {MSP ID: label:hash}} (one per organisation)."""
        packages = self.state().get("packages", {})
        return {k: v for k, v in packages.items() if isinstance(v, dict)}

    def _peer_client_tls_env(self, org: PeerOrg) -> dict[str, str]:
        cert, key = chaincode_tls.peer_client_files(self.plan, org)
        return {chaincode_tls.CLIENT_CERT_ENV: str(cert), chaincode_tls.CLIENT_KEY_ENV: str(key)}

    def _chaincode_spec(self, cc: ChaincodeServer, org: PeerOrg, package_id: str) -> ProcessSpec:
        """``org``'s own server of ``cc``: mutual TLS, accepting only ``org``'s peer."""
        tls = chaincode_tls.server_tls(self.plan, org, cc)
        port = cc.port(org)
        served = self.state().get("served_contracts", {}).get(cc.name, cc.name)
        host = self.plan.host_of(org)
        return ProcessSpec(
            cc.process_name(org),
            [
                sys.executable,
                "-m",
                "vpp_chaincode.server",
                served,
                "--address",
                f"{host.address}:{port}",
                "--chaincode-id",
                package_id,
            ],
            dict(
                os.environ,
                PYTHONUNBUFFERED="1",
                CHAINCODE_TLS_DISABLED="false",
                CHAINCODE_TLS_CERT=str(tls.cert),
                CHAINCODE_TLS_KEY=str(tls.key),
                CHAINCODE_CLIENT_CA_CERT=str(tls.client_ca),
                CHAINCODE_CLIENT_NAMES=",".join(tls.client_names),
            ),
            (port,),
            namespace=host.namespace,
        )

    def running(self) -> dict[str, int | None]:
        return {s.name: self.procs.pid(s.name) for s in self.process_specs()}

    # --- one process at a time (fault tests and experiments) ------------------------
    def spec(self, name: str) -> ProcessSpec:
        """The spec of process ``name`` (``orderer2``, ``peer0.agg3.vpp.local``, ...)."""
        specs = {s.name: s for s in self.process_specs()}
        if name not in specs:
            raise KeyError(f"no process {name!r}; the network has {', '.join(specs)}")
        return specs[name]

    def stop_process(self, name: str, *, kill: bool = False) -> bool:
        """Stops one process we started; True if it was running.

        ``kill`` sends SIGKILL at once, as a crash would (no graceful shutdown);
        otherwise SIGTERM, then SIGKILL after 15 s, as ``down`` does.
        """
        self.spec(name)
        pid = self.procs.pid(name)
        if pid is None:
            return False
        if kill:
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 15
            while self.procs.pid(name) is not None and time.monotonic() < deadline:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
                time.sleep(0.05)
        self.procs.stop(name)
        return True

    def start_process(self, name: str) -> int:
        """Starts one process of ``process_specs()`` if it is not running and waits until
        it is ready (orderer: admin port; peer: /healthz; chaincode: its port); its PID."""
        self._start([self.spec(name)], self._ready)
        pid = self.procs.pid(name)
        if pid is None:
            raise NetworkError(f"{name} is not running after start")
        return pid

    def _ready(self, spec: ProcessSpec) -> bool:
        pid = self.procs.pid(spec.name)
        if spec.name.startswith("ca."):
            ca = next(c for c in self.plan.cas if c.name == spec.name)
            return ca_servers.ready(self.plan, ca)
        if spec.name.startswith("orderer"):
            return port_listening(spec.ports[1], pid)
        if spec.name.startswith("peer"):
            org = next(o for o in self.plan.peer_orgs if o.peer_host == spec.name)
            return _healthy(self.plan.host_of(org).address, spec.ports[2])
        return port_listening(spec.ports[0], pid)

    # --- up --------------------------------------------------------------------------------
    def up(self) -> None:
        plan = self.plan
        state = self.state()
        wanted = {
            "aggs": plan.aggs,
            "consensus": plan.consensus,
            "orderers": plan.orderer_count,
            "layout": plan.layout,
        }
        for name, value in wanted.items():
            default = "loopback" if name == "layout" else value  # older states: loopback
            if state.get("complete") and state.get(name, default) != value:
                raise NetworkError(
                    f"network-up: the network on disk was created with {name}={state[name]}, "
                    f"not {value}; run `make network-clean` first to recreate it"
                )
        if state.get("complete") and not self._per_org_chaincode(state):
            raise NetworkError(
                "network-up: the network on disk predates per-organisation chaincode servers "
                "over mutual TLS and channel policies that need each channel's steward; "
                "run `make network-clean` first to recreate it"
            )
        if state.get("complete") and not (plan.net_dir / "ca").is_dir():
            raise NetworkError(
                "network-up: the network on disk predates the organisations' Fabric CAs "
                "(its certificates came from cryptogen); run `make network-clean` first to "
                "recreate it"
            )
        if state and not state.get("complete"):
            self.log("A previous network-up did not finish; starting over from a clean state.")
            self.down(quiet=True)
            self.clean(quiet=True)
            state = {}
        if state.get("complete") and all(self.running().values()):
            self._upgrade_definitions()
            self.log(f"Network already running ({len(self.running())} processes); nothing to do.")
            return
        started = time.monotonic()
        if plan.layout == "hosts":
            try:
                hosts.check_supported()
            except hosts.HostsError as exc:
                raise NetworkError(f"network-up: {exc}") from exc
        self._warn_if_ephemeral()
        build.ensure_binaries(plan, self.log)
        fresh = not state.get("complete")
        if fresh:
            plan.net_dir.mkdir(parents=True, exist_ok=True)
            self.save_state(
                aggs=plan.aggs,
                consensus=plan.consensus,
                orderers=plan.orderer_count,
                layout=plan.layout,
                complete=False,
                fabric_version=FABRIC_VERSION,
                served_contracts=dict(SERVED_CONTRACTS),
            )
            for ca in plan.cas:
                ca_servers.write_server_config(plan, ca)
        try:
            if plan.layout == "hosts":
                self.log("Creating the machines (network namespaces, bridge, hosts files) ...")
                try:
                    hosts.Machines(plan, self.log).up()
                except hosts.HostsError as exc:
                    raise NetworkError(f"network-up: {exc}") from exc
            self._start_cas()
            if not fresh:  # settings changed since the network was made apply from now on
                configs.refresh_peer_configs(plan)
            if fresh:
                self.log("Enrolling nodes, admins, traders and meters from the CAs ...")
                took = enrolment.generate(plan, self.log)
                self.log(f"  enrolled in {took:.1f} s")
                self.log("Writing channel blocks and node configs ...")
                configs.write_channel_blocks(plan)
                configs.write_node_configs(plan)
            self._start_nodes()
            if fresh:
                self._create_channels()
                self._deploy_chaincode()
            else:
                self._start_chaincode_servers()
                self._upgrade_definitions()
            self.write_connection_profile()
            self.log("Waiting until every peer can get transactions endorsed (gossip) ...")
            try:
                waited = readiness.wait_until_endorsable(plan)
            except TimeoutError as exc:
                raise NetworkError(f"network-up: {exc}") from exc
            self.log(f"  endorsable after {waited:.1f} s")
            self.save_state(complete=True)
        except BaseException:
            self.down(quiet=True)
            raise
        self.log(
            f"Network up in {time.monotonic() - started:.0f} s. `make network-status` shows it."
        )

    def _warn_if_ephemeral(self) -> None:
        """Ports inside the kernel's range for outgoing connections can be taken by any
        client socket on the machine at any moment; a server then cannot bind them."""
        low, high = ephemeral_port_range()
        ports = self.plan.listen_ports()  # the plan's: on a fresh network nothing is on disk yet
        inside = [p for p in ports if low <= p <= high]
        if inside:
            self.log(
                f"Warning: ports {min(inside)}-{max(inside)} lie in the kernel's ephemeral range "
                f"({low}-{high}); an outgoing connection may hold one when its server starts "
                f'("cannot listen on"). A VPP_PORT_OFFSET up to '
                f"{low - 1 - (max(ports) - port_offset())} avoids it."
            )

    @staticmethod
    def _per_org_chaincode(state: dict) -> bool:
        packages = state.get("packages", {})
        return bool(packages) and all(isinstance(v, dict) for v in packages.values())

    def _check_ports(self, specs: list[ProcessSpec]) -> None:
        for spec in specs:
            if self.procs.pid(spec.name) is not None or spec.namespace:
                continue  # a namespace of ours holds only our own processes
            for port in spec.ports:
                owner = port_owner(port)
                if owner:
                    raise NetworkError(
                        f"network-up: port 127.0.0.1:{port} needed by {spec.name} is in use "
                        f"by {owner}; stop it or change the port plan (docs/network.md)"
                    )

    def _start(self, specs: list[ProcessSpec], ready: Callable[[ProcessSpec], bool]) -> None:
        specs = [s for s in specs if self.procs.pid(s.name) is None]
        if not specs:
            return
        self._check_ports(specs)
        for spec in specs:
            self.procs.start(spec)
        self.log(f"  started {', '.join(s.name for s in specs)}")
        deadline = time.monotonic() + 60
        pending = list(specs)
        while pending:
            for spec in list(pending):
                if self.procs.pid(spec.name) is None:
                    raise NetworkError(
                        f"network-up: {spec.name} exited during start; last lines of "
                        f"{self.procs.log_file(spec.name)}:\n{self.procs.tail(spec.name)}"
                    )
                if ready(spec):
                    pending.remove(spec)
            if pending and time.monotonic() > deadline:
                names = ", ".join(s.name for s in pending)
                raise NetworkError(f"network-up: {names} not ready after 60 s; see their logs")
            time.sleep(0.2)

    def _start_cas(self) -> None:
        specs = [s for s in self.process_specs() if s.name.startswith("ca.")]
        self.log(f"Starting {len(specs)} Fabric CA servers ...")
        started = time.monotonic()
        self._start(specs, self._ready)
        self.log(f"  CAs ready in {time.monotonic() - started:.1f} s")

    def _start_nodes(self) -> None:
        specs = self.process_specs()
        orderers = [s for s in specs if s.name.startswith("orderer")]
        peers = [s for s in specs if s.name.startswith("peer")]
        self.log(f"Starting {len(orderers)} orderers ({self.plan.consensus}) ...")
        self._start(orderers, self._ready)
        self.log(f"Starting {len(peers)} peers ...")
        self._start(peers, self._ready)

    def _start_chaincode_servers(self) -> None:
        specs = [s for s in self.process_specs() if s.name.startswith("chaincode-")]
        if specs:
            self.log("Starting chaincode servers ...")
            self._start(specs, self._ready)

    def _create_channels(self) -> None:
        plan = self.plan
        self.log(f"Creating {len(plan.channels)} channels on the orderers (osnadmin) ...")
        jobs = [(o, c.name) for c in plan.channels for o in plan.orderers]
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda j: fabric_cli.osn_join(plan, *j), jobs))
        self.log("Joining peers to their channels ...")
        joins = [(org, c.name) for c in plan.channels for org in c.orgs]
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda j: self._join_with_retry(*j), joins))

    def _join_with_retry(self, org: PeerOrg, channel: str) -> None:
        # The orderers may still be electing a leader for a brand-new channel.
        for attempt in range(20):
            try:
                fabric_cli.peer_join(self.plan, org, channel)
                return
            except fabric_cli.FabricCommandError:
                if attempt == 19:
                    raise
                time.sleep(0.5)

    def _deploy_chaincode(self) -> None:
        """Each organisation installs its own package of each chaincode it runs (naming its
        own server), the servers start, then every channel approves and commits."""
        plan = self.plan
        chaincode_tls.issue_server_certs(plan)
        packages: dict[str, dict[str, str]] = {}
        jobs = []
        for cc in plan.chaincodes:
            orgs = plan.chaincode_orgs(cc)
            packages[cc.name] = {}
            for org in orgs:
                path = fabric_cli.write_ccaas_package(plan, cc, org)
                packages[cc.name][org.mspid] = fabric_cli.package_id(plan, cc, org)
                jobs.append((org, path))
            self.log(f"Installing {cc.name} (CCaaS) on {len(orgs)} peers, one package per org ...")
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda j: fabric_cli.install(plan, *j), jobs))
        self.save_state(packages=packages)
        self._start_chaincode_servers()
        self.log("Approving and committing chaincode definitions ...")
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(
                pool.map(
                    lambda c: fabric_cli.approve_and_commit(
                        plan, c.name, packages[c.chaincode.name]
                    ),
                    plan.channels,
                )
            )
        self._remember_definitions()

    def _remember_definitions(self) -> None:
        self.save_state(
            definitions={c.name: fabric_cli.definition_digest(c) for c in self.plan.channels}
        )

    def _upgrade_definitions(self) -> None:
        """A network made before a definition changed (e.g. the sealed orders' collections)
        gets the new definition: every member approves the next sequence, then it commits."""
        plan = self.plan
        known = self.state().get("definitions", {})
        packages = self.packages()
        # A channel the state does not know yet (a network made before definitions were
        # remembered) changed only if it has collections now: none had any before them.
        stale = [
            c
            for c in plan.channels
            if known.get(c.name) != fabric_cli.definition_digest(c)
            and (c.name in known or c.collections)
        ]
        if not stale:
            if set(known) != {c.name for c in plan.channels}:
                self._remember_definitions()
            return
        self.log(f"Upgrading the chaincode definition on {len(stale)} channels ...")
        readiness.wait_until_endorsable(plan)  # approvals need the peers in gossip
        for channel in stale:
            sequence = fabric_cli.committed_sequence(plan, channel) + 1
            fabric_cli.approve_and_commit(
                plan, channel.name, packages[channel.chaincode.name], sequence
            )
        self._remember_definitions()

    # --- down / clean -----------------------------------------------------------------------
    def down(self, quiet: bool = False) -> None:
        names = self.procs.names()
        # Chaincode servers and peers first, orderers last.
        order = sorted(names, key=lambda n: (n.startswith("orderer"), n.startswith("peer"), n))
        stopped = [n for n in order if self.procs.stop(n)]
        machines = hosts.Machines(self.plan, self.log)
        removed = machines.down() if machines.exists() else 0
        if not quiet:
            self.log(f"Stopped {len(stopped)} processes." if stopped else "Nothing was running.")
            if removed:
                self.log(f"Removed {removed} network namespaces, their links and hosts files.")

    def clean(self, quiet: bool = False) -> None:
        if any(self.procs.pid(n) for n in self.procs.names()):
            raise NetworkError("network-clean: the network is running; `make network-down` first")
        if self.plan.net_dir.exists():
            shutil.rmtree(self.plan.net_dir)
        if not quiet:
            self.log(f"Removed {self.plan.net_dir}")

    # --- connection profile ---------------------------------------------------------------------
    def write_connection_profile(self) -> Path:
        plan = self.plan
        profile = {
            "name": "vpp-fabric",
            "fabric_version": FABRIC_VERSION,
            "wallet": str(plan.wallet_dir),
            "organizations": {org.mspid: {"peers": [org.peer_host]} for org in plan.peer_orgs},
            "peers": {
                org.peer_host: {
                    "mspid": org.mspid,
                    "address": f"{plan.host_of(org).address}:{org.port}",
                    "host": org.peer_host,
                    "tls_ca": str(plan.peer_tls_ca(org)),
                    "operations": f"{plan.host_of(org).address}:{org.operations_port}",
                }
                for org in plan.peer_orgs
            },
            "orderers": {
                o.host: {
                    "address": f"{plan.host_of(o).address}:{o.port}",
                    "host": o.host,
                    "tls_ca": str(plan.orderer_tls_ca()),
                }
                for o in plan.orderers
            },
            "channels": {
                c.name: {
                    "peers": [org.peer_host for org in c.orgs],
                    "chaincodes": [c.chaincode.name],
                    "endorsers": list(c.endorsers),
                }
                for c in plan.channels
            },
            # Read by vpp_ca (vppctl identity ...): each organisation's CA, by MSP ID.
            "certificateAuthorities": {
                ca.mspid: {
                    "org": ca.org,
                    "url": ca.url,
                    "caname": ca.name,
                    "tls_ca": str(plan.ca_home(ca) / "ca-cert.pem"),
                }
                for ca in plan.cas
            },
        }
        plan.profile_file.write_text(json.dumps(profile, indent=2) + "\n")
        return plan.profile_file


def ephemeral_port_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports (Linux default 32768-60999)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _healthy(address: str, port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{address}:{port}/healthz", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False
