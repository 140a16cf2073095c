"""The hosts layout, live: every organisation and orderer on a machine of its own.

`make test-hosts` (root) brings up a network with VPP_LAYOUT=hosts in
.fabric/hosts-test and checks what the layout promises (docs/deployment.md):
each organisation's peer, CA and chaincode servers, and each orderer, run in
their own network namespace; nothing of ours listens on the host's 127.0.0.1
(or anywhere but the machine's own address); peers of different
organisations talk over their namespace addresses; the paper demo runs on it
from the root namespace; and network-down removes the namespaces, links and
hosts files it made, and nothing else.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from vpp_network import hosts
from vpp_network.network import Network
from vpp_network.plan import PeerOrg

pytestmark = pytest.mark.network

LISTEN = "0A"
ESTABLISHED = "01"


def _sockets(pid: int) -> list[tuple[str, int, str, int, str, str]]:
    """(local ip, local port, remote ip, remote port, state, inode) of every TCP socket in
    the network namespace ``pid`` runs in (/proc/<pid>/net/tcp{,6}; IPv4-mapped as IPv4)."""
    rows = []
    for table in ("tcp", "tcp6"):
        lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        for line in lines:
            cols = line.split()
            (lip, lport), (rip, rport) = (_endpoint(c) for c in cols[1:3])
            rows.append((lip, lport, rip, rport, cols[3], cols[9]))
    return rows


def _socket_inodes(pid: int) -> set[str]:
    """The sockets process ``pid`` holds open (its fds ``socket:[inode]``)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _endpoint(hex_endpoint: str) -> tuple[str, int]:
    ip_hex, port_hex = hex_endpoint.split(":")
    raw = bytes.fromhex(ip_hex)
    # /proc prints each 32-bit word in host (little-endian) byte order.
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    ip = ipaddress.ip_address(words)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return str(ip), int(port_hex, 16)


def _pids(network: Network) -> dict[str, int]:
    pids = {s.name: network.procs.pid(s.name) for s in network.process_specs()}
    assert all(pids.values()), f"not running: {[n for n, p in pids.items() if not p]}"
    return pids  # type: ignore[return-value]


def _org_of(network: Network, process: str) -> PeerOrg | None:
    for org in network.plan.peer_orgs:
        if process in (org.peer_host, f"ca.{org.domain}") or process.endswith(
            f"-{org.name.lower()}"
        ):
            return org
    return None


def test_every_organisation_and_orderer_is_a_machine_of_its_own(network: Network) -> None:
    plan = network.plan
    assert plan.layout == "hosts"
    pids = _pids(network)
    by_namespace: dict[str, set[str]] = {}
    for spec in network.process_specs():
        assert spec.namespace, f"{spec.name} runs in the root namespace"
        assert hosts.namespace_of_pid(pids[spec.name]) == spec.namespace, spec.name
        # The recorded PID is the program itself (ip netns exec exec'd it), not `ip`.
        exe = os.readlink(f"/proc/{pids[spec.name]}/exe")
        assert exe == os.path.realpath(spec.argv[0]), (spec.name, exe)
        by_namespace.setdefault(spec.namespace, set()).add(spec.name)
    for org in plan.peer_orgs:
        machine = plan.host_of(org).namespace
        assert machine is not None
        # The organisation's peer, CA and its own chaincode servers, and nothing else.
        assert {_org_of(network, name) for name in by_namespace[machine]} == {org}
        assert {org.peer_host, f"ca.{org.domain}"} <= by_namespace[machine]
    for orderer in plan.orderers:
        assert by_namespace[plan.host_of(orderer).namespace or ""] == {orderer.name}
    assert len(by_namespace) == len(plan.hosts)


def test_nothing_listens_on_the_hosts_loopback(network: Network) -> None:
    """Each machine's listeners are on its own address only: not 127.0.0.1, not 0.0.0.0,
    and none of them is visible in the host's (root) namespace."""
    plan = network.plan
    pids = _pids(network)
    for spec in network.process_specs():
        host = plan.host_of(_org_of(network, spec.name) or _orderer_node(network, spec.name))
        listeners = [s for s in _sockets(pids[spec.name]) if s[4] == LISTEN]
        assert listeners, f"{spec.name}: no listener in its namespace"
        for lip, lport, *_ in listeners:
            assert lip == host.address, f"{spec.name}'s machine listens on {lip}:{lport}"
        assert set(spec.ports) <= {lport for _, lport, *_ in listeners}, spec.name
    # The host's own (root) namespace: no listener there belongs to any of our processes.
    root = {s[5] for s in _sockets(os.getpid()) if s[4] == LISTEN}
    for name, pid in pids.items():
        assert not root & _socket_inodes(pid), f"{name} listens in the host's namespace"


def _orderer_node(network: Network, process: str) -> object:
    for orderer in network.plan.orderers:
        if process == orderer.name:
            return orderer
    assert process == "ca.ord.vpp.local", process
    return None


def test_peers_reach_each_other_only_through_namespace_addresses(network: Network) -> None:
    """Gossip, deliveries and chaincode calls: every established connection of a peer's
    machine runs between addresses of the layout's subnet, never over 127.0.0.1, and
    each peer talks to another organisation's peer at that peer's address."""
    plan = network.plan
    pids = _pids(network)
    subnet = ipaddress.ip_network(f"{hosts.bridge_address(plan)}/24", strict=False)
    peer_endpoints = {(plan.host_of(o).address, o.port): o for o in plan.peer_orgs}
    for org in plan.peer_orgs:
        connections = [s for s in _sockets(pids[org.peer_host]) if s[4] == ESTABLISHED]
        assert connections, f"{org.peer_host}: no connections"
        for lip, lport, rip, rport, *_ in connections:
            assert ipaddress.ip_address(lip) in subnet, (org.peer_host, lip, lport)
            assert ipaddress.ip_address(rip) in subnet, (org.peer_host, rip, rport)
        others = {
            peer_endpoints[(rip, rport)]
            for _, _, rip, rport, *_ in connections
            if (rip, rport) in peer_endpoints and peer_endpoints[(rip, rport)] != org
        }
        incoming = {
            rip
            for lip, lport, rip, *_ in connections
            if (lip, lport) == (plan.host_of(org).address, org.port)
            and rip != plan.host_of(org).address
        }
        assert others or incoming, f"{org.peer_host} talks to no other organisation's peer"


def test_names_resolve_per_machine_and_the_host_file_is_untouched(network: Network) -> None:
    plan = network.plan
    expected = hosts.hosts_file_text(plan)
    for host in plan.hosts:
        seen = subprocess.run(
            ["ip", "netns", "exec", host.namespace or "", "cat", "/etc/hosts"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert seen == expected, host.namespace
    assert "vpp.local" not in Path("/etc/hosts").read_text()
    # A name is dialled as the name everywhere inside the network (channel config).
    profile = json.loads(plan.profile_file.read_text())
    for org in plan.peer_orgs:
        assert profile["peers"][org.peer_host]["address"].startswith(plan.host_of(org).address)


def test_the_paper_demo_runs_from_the_root_namespace(network: Network) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vppctl", "demo", "paper", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=900,
        env=dict(os.environ, VPP_HOME=str(network.plan.net_dir)),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["day_closed"]
    assert [p["t"] for p in report["periods"]] == [2, 13]
    for period in report["periods"]:
        assert period["consistent_with_offline"]
        totals, paper = period["totals"], period["paper_totals"]
        assert totals == paper, (period["t"], totals, paper)


def test_down_removes_its_machines_and_nothing_else(network: Network) -> None:
    """Runs last: a bystander namespace and /etc/netns folder with our prefix survive."""
    plan = network.plan
    bystander = f"vpp-{hosts.subnet(plan)}-bystander"
    subprocess.run(["ip", "netns", "add", bystander], check=True)
    folder = hosts.NETNS_ETC / bystander
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hosts").write_text("127.0.0.1 localhost\n")
    try:
        network.down(quiet=True)
        left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        for host in plan.hosts:
            assert host.namespace not in left.split(), host.namespace
            assert not (hosts.NETNS_ETC / (host.namespace or "")).exists()
        assert bystander in left
        assert (folder / "hosts").exists()
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        assert hosts.bridge_name(plan) not in links
        assert all(hosts.veth_name(h) not in links for h in plan.hosts)
        assert not network.procs.names() or not any(network.running().values())
    finally:
        subprocess.run(["ip", "netns", "del", bystander], check=False)
        (folder / "hosts").unlink(missing_ok=True)
        folder.rmdir()
        if not any(hosts.NETNS_ETC.iterdir()):
            hosts.NETNS_ETC.rmdir()
