"""The hosts layout's machines: one Linux network namespace per organisation and orderer.

``NetworkPlan.host_of`` says which machine runs what, at which address and under
which host names; this module makes those machines exist on one Linux host (as
root) and removes them again:

* a bridge ``vpp<o>br`` in the root namespace with address 10.203.<o>.1/24, so
  clients (vppctl, tests, the admin CLIs of network-up) reach every machine by
  its address without any route or NAT being changed;
* per machine a namespace ``vpp-<o>-<machine>`` holding one end of a veth pair
  (``eth0``, its address/24, plus its own loopback), the other end
  (``vpp<o>h<n>``) on the bridge;
* per namespace ``/etc/netns/<namespace>/hosts``, mapping every machine's host
  names to its address. ``ip netns exec`` bind-mounts it over ``/etc/hosts``
  for the process it starts, so peers, orderers and the peer's chaincode
  dialling resolve host names the way real machines would use DNS, while the
  host's own ``/etc/hosts`` (shared with everything else on it) is never
  touched. Clients in the root namespace dial addresses and check the TLS
  host name (the connection profile carries both), so they need no entries.

Everything created is recorded in ``run/hosts.json`` before it is created, and
``down`` removes exactly what the record lists: never a namespace, link or
file this network did not make. Needs root and iproute2 (``ip``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from vpp_network.plan import HOSTS_NET, Host, NetworkPlan, port_offset

NETNS_ETC = Path("/etc/netns")
RECORD = "hosts.json"


class HostsError(RuntimeError):
    """The hosts layout cannot be set up or torn down here (one line, says why)."""


def subnet(plan: NetworkPlan) -> int:
    """The third octet of this network's /24: VPP_PORT_OFFSET / 1000."""
    return int(plan.hosts[0].address.split(".")[2]) if plan.layout == "hosts" else 0


def bridge_name(plan: NetworkPlan) -> str:
    return f"vpp{port_offset() // 1000 % 256}br"


def bridge_address(plan: NetworkPlan) -> str:
    return f"{HOSTS_NET}.{port_offset() // 1000 % 256}.1"


def veth_name(host: Host) -> str:
    """The root-namespace end of ``host``'s link: ``vpp7h34`` (at most 15 characters)."""
    _, _, o, n = host.address.split(".")
    return f"vpp{o}h{n}"


def hosts_file_text(plan: NetworkPlan) -> str:
    """The /etc/hosts every namespace sees: its own loopback and every machine's names."""
    lines = ["127.0.0.1 localhost"]
    lines += [f"{h.address} {' '.join(h.names)}" for h in plan.hosts]
    return "\n".join(lines) + "\n"


def check_supported() -> None:
    """Refuses early, in one line, where namespaces cannot be made."""
    if not sys.platform.startswith("linux"):
        raise HostsError("LAYOUT=hosts needs Linux network namespaces")
    if os.geteuid() != 0:
        raise HostsError("LAYOUT=hosts needs root (it creates network namespaces and a bridge)")
    if shutil.which("ip") is None:
        raise HostsError("LAYOUT=hosts needs iproute2's `ip` command")


def _ip(*args: str) -> str:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise HostsError(f"ip {' '.join(args)}: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


def _namespaces() -> set[str]:
    return {line.split()[0] for line in _ip("netns", "list").splitlines() if line.strip()}


def _link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True).returncode == 0


class Machines:
    """Creates and removes the hosts layout's namespaces, bridge and hosts files."""

    def __init__(self, plan: NetworkPlan, log: Callable[[str], None] = print) -> None:
        self.plan = plan
        self.log = log
        self.record_file = plan.run_dir / RECORD

    # --- the record of what we made ----------------------------------------------------
    def record(self) -> dict[str, list[str]]:
        try:
            data = json.loads(self.record_file.read_text())
        except (OSError, ValueError):
            data = {}
        return {k: list(data.get(k, [])) for k in ("bridges", "namespaces", "links", "paths")}

    def _note(self, kind: str, name: str) -> None:
        """Writes ``name`` into the record before it is created (so a crash half-way
        still leaves it listed for ``down``)."""
        record = self.record()
        if name not in record[kind]:
            record[kind].append(name)
            self.record_file.parent.mkdir(parents=True, exist_ok=True)
            self.record_file.write_text(json.dumps(record, indent=2) + "\n")

    def exists(self) -> bool:
        return self.record_file.exists()

    # --- up ----------------------------------------------------------------------------
    def up(self) -> None:
        """Makes every machine of the plan (those already made by us are kept)."""
        check_supported()
        plan = self.plan
        ours = self.record()
        present = _namespaces()
        foreign = [
            h.namespace
            for h in plan.hosts
            if h.namespace in present and h.namespace not in ours["namespaces"]
        ]
        bridge = bridge_name(plan)
        if _link_exists(bridge) and bridge not in ours["bridges"]:
            foreign.append(f"bridge {bridge}")
        if foreign:
            raise HostsError(
                f"LAYOUT=hosts: {', '.join(str(f) for f in foreign)} exist(s) but this network "
                f"did not create them ({self.record_file}); another network with "
                f"VPP_PORT_OFFSET={port_offset()}? Use another offset or remove them"
            )
        if not _link_exists(bridge):
            self._note("bridges", bridge)
            _ip("link", "add", bridge, "type", "bridge")
            _ip("addr", "add", f"{bridge_address(plan)}/24", "dev", bridge)
            _ip("link", "set", bridge, "up")
        if not NETNS_ETC.exists():
            self._note("paths", str(NETNS_ETC))
            NETNS_ETC.mkdir(mode=0o755)
        text = hosts_file_text(plan)
        made = 0
        for host in plan.hosts:
            assert host.namespace is not None
            if host.namespace not in present:
                self._make(host, bridge)
                made += 1
            folder = NETNS_ETC / host.namespace
            self._note("paths", str(folder))
            folder.mkdir(exist_ok=True)
            (folder / "hosts").write_text(text)
        if made:
            self.log(
                f"  {made} machines (network namespaces vpp-{subnet(plan)}-*) on bridge {bridge} "
                f"{bridge_address(plan)}/24"
            )

    def _make(self, host: Host, bridge: str) -> None:
        ns, outer = host.namespace or "", veth_name(host)
        inner = f"{outer}i"  # renamed eth0 once inside
        self._note("namespaces", ns)
        _ip("netns", "add", ns)
        self._note("links", outer)
        if _link_exists(outer):
            _ip("link", "del", outer)
        _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        _ip("link", "set", inner, "netns", ns)
        _ip("link", "set", outer, "master", bridge)
        _ip("link", "set", outer, "up")
        _ip("-n", ns, "link", "set", inner, "name", "eth0")
        _ip("-n", ns, "addr", "add", f"{host.address}/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "link", "set", "lo", "up")

    # --- down --------------------------------------------------------------------------
    def down(self) -> int:
        """Removes what the record lists (links, namespaces, hosts files, bridge, in that
        order); returns how many namespaces went. Missing items are skipped."""
        if not self.exists():
            return 0
        record = self.record()
        for link in record["links"]:
            if _link_exists(link):
                _ip("link", "del", link)
        present = _namespaces()
        gone = 0
        for ns in record["namespaces"]:
            if ns in present:
                _ip("netns", "del", ns)
                gone += 1
        for path in sorted(record["paths"], key=len, reverse=True):
            folder = Path(path)
            if folder != NETNS_ETC:
                (folder / "hosts").unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # not empty: someone else's files; leave it
                folder.rmdir()
        for bridge in record["bridges"]:
            if _link_exists(bridge):
                _ip("link", "del", bridge)
        self.record_file.unlink(missing_ok=True)
        return gone


def namespace_of_pid(pid: int) -> str | None:
    """The project namespace (``vpp-*`` under /run/netns) process ``pid`` runs in, if any."""
    try:
        mine = os.stat(f"/proc/{pid}/ns/net")
    except OSError:
        return None
    for path in sorted(Path("/run/netns").glob("vpp-*")):
        try:
            st = os.stat(path)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino):
            return path.name
    return None
