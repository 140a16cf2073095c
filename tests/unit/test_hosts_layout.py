"""The hosts layout as the plan describes it (no root needed; the live side is
tests/hosts, run by `make test-hosts`).

Each organisation and orderer gets its own machine (namespace, address, host
names); everything one node tells another names the host, never 127.0.0.1;
the default loopback layout is unchanged.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from vpp_network import configs, hosts
from vpp_network.plan import NetworkPlan
from vpp_shim.server import check_address


@pytest.fixture(autouse=True)
def _offset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VPP_PORT_OFFSET", "7000")
    monkeypatch.delenv("VPP_LAYOUT", raising=False)
    monkeypatch.delenv("VPP_HOME", raising=False)  # state goes to each test's tmp_path


def test_the_default_layout_is_loopback_and_unchanged() -> None:
    plan = NetworkPlan()
    assert plan.layout == "loopback"
    assert {(h.namespace, h.address) for h in plan.hosts} == {(None, "127.0.0.1")}
    section = configs._peer_org_section(plan, plan.vppo)
    assert section["AnchorPeers"] == [{"Host": "127.0.0.1", "Port": plan.vppo.port}]
    assert plan.ca_of(plan.grid).url == f"https://127.0.0.1:{plan.grid.port + 3}"


def test_an_unknown_layout_is_refused_naming_the_value() -> None:
    with pytest.raises(ValueError, match="'cluster'"):
        NetworkPlan(layout="cluster")


def test_every_machine_has_its_own_address_namespace_and_names() -> None:
    plan = NetworkPlan(aggs=50, orderer_count=9, layout="hosts")
    machines = plan.hosts
    assert len(machines) == 1 + 9 + 52
    subnet = ipaddress.ip_network("10.203.7.0/24")
    addresses = [h.address for h in machines]
    assert len(set(addresses)) == len(addresses)
    assert all(ipaddress.ip_address(a) in subnet for a in addresses)
    assert hosts.bridge_address(plan) == "10.203.7.1" not in addresses
    namespaces = [h.namespace or "" for h in machines]
    assert len(set(namespaces)) == len(namespaces)
    assert all(n.startswith("vpp-7-") for n in namespaces)
    names = [n for h in machines for n in h.names]
    assert len(set(names)) == len(names)
    # Linux interface names have at most 15 characters (the veth's inner end gets "i").
    assert all(len(hosts.veth_name(h) + "i") <= 15 for h in machines)
    assert len(hosts.bridge_name(plan)) <= 15


def test_an_organisation_runs_its_peer_ca_and_chaincode_servers_on_its_machine() -> None:
    plan = NetworkPlan(layout="hosts")
    agg3 = plan.agg_orgs[2]
    machine = plan.host_of(agg3)
    assert machine.namespace == "vpp-7-agg3"
    assert plan.ca_of(agg3).address == machine.address
    assert plan.ca_of(agg3).url == f"https://{machine.address}:{agg3.port + 3}"
    assert set(machine.names) == {
        "peer0.agg3.vpp.local",
        "ca.agg3.vpp.local",
        "market.agg3.vpp.local",
        "meter.agg3.vpp.local",
    }
    assert plan.orderer_ca.address == plan.host_of(None).address != machine.address


def test_channel_configs_name_hosts_not_loopback() -> None:
    """Anchor peers, orderer endpoints and consenters are dialled by host name, which
    each machine's hosts file resolves to that machine's address."""
    plan = NetworkPlan(layout="hosts")
    section = configs._peer_org_section(plan, plan.grid)
    assert section["AnchorPeers"] == [{"Host": "peer0.grid.vpp.local", "Port": plan.grid.port}]
    endpoints = configs._orderer_org_section(plan)["OrdererEndpoints"]
    assert endpoints == [f"{o.host}:{o.port}" for o in plan.orderers]
    orderer = configs._orderer_section(plan, plan.channels[0])
    assert [c["Host"] for c in orderer["ConsenterMapping"]] == [o.host for o in plan.orderers]
    assert "127.0.0.1" not in repr(section) + repr(endpoints) + repr(orderer)


def test_the_hosts_file_maps_every_name_to_its_machine() -> None:
    plan = NetworkPlan(layout="hosts")
    lines = hosts.hosts_file_text(plan).splitlines()
    assert lines[0] == "127.0.0.1 localhost"  # the machine's own loopback, not shared
    mapping = {name: line.split()[0] for line in lines[1:] for name in line.split()[1:]}
    for machine in plan.hosts:
        for name in machine.names:
            assert mapping[name] == machine.address


def test_a_chaincode_server_outside_a_project_namespace_stays_on_loopback() -> None:
    """Only inside a namespace the project made may a server listen on its machine's
    address; this test process is not in one."""
    with pytest.raises(ValueError, match="10.203.7.34"):
        check_address("10.203.7.34:16041")
    assert check_address("127.0.0.1:16041") == ("127.0.0.1", 16041)


class FakeIp:
    """Plays `ip` for hosts.Machines: namespaces and links as sets, commands logged."""

    def __init__(self, namespaces: set[str] = frozenset(), links: set[str] = frozenset()) -> None:
        self.namespaces = set(namespaces)
        self.links = set(links)
        self.log: list[tuple[str, ...]] = []

    def ip(self, *args: str) -> str:
        self.log.append(args)
        if args[:2] == ("netns", "add"):
            self.namespaces.add(args[2])
        elif args[:2] == ("netns", "del"):
            self.namespaces.discard(args[2])
        elif args[:2] == ("link", "add"):
            self.links.add(args[2])
        elif args[:2] == ("link", "del"):
            self.links.discard(args[2])
        return ""


@pytest.fixture
def fake_ip(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeIp:
    fake = FakeIp(namespaces={"vpp-7-bystander", "other"}, links={"eth0", "vpp7h99"})
    monkeypatch.setattr(hosts, "_ip", fake.ip)
    monkeypatch.setattr(hosts, "_namespaces", lambda: set(fake.namespaces))
    monkeypatch.setattr(hosts, "_link_exists", lambda name: name in fake.links)
    monkeypatch.setattr(hosts, "check_supported", lambda: None)
    monkeypatch.setattr(hosts, "NETNS_ETC", tmp_path / "etc-netns")
    return fake


def test_down_removes_exactly_what_up_made(fake_ip: FakeIp, tmp_path: Path) -> None:
    plan = NetworkPlan(aggs=2, home=tmp_path, layout="hosts")
    machines = hosts.Machines(plan, log=lambda _m: None)
    machines.up()
    made = {h.namespace for h in plan.hosts}
    assert made <= fake_ip.namespaces
    assert {hosts.bridge_name(plan), *(hosts.veth_name(h) for h in plan.hosts)} <= fake_ip.links
    for host in plan.hosts:
        folder = hosts.NETNS_ETC / (host.namespace or "")
        assert (folder / "hosts").read_text() == hosts.hosts_file_text(plan)
    (hosts.NETNS_ETC / "vpp-7-bystander").mkdir()
    assert machines.down() == len(made)
    assert fake_ip.namespaces == {"vpp-7-bystander", "other"}
    assert fake_ip.links == {"eth0", "vpp7h99"}
    assert sorted(p.name for p in hosts.NETNS_ETC.iterdir()) == ["vpp-7-bystander"]
    assert not machines.exists()


def test_up_refuses_a_namespace_it_did_not_make(fake_ip: FakeIp, tmp_path: Path) -> None:
    plan = NetworkPlan(aggs=2, home=tmp_path, layout="hosts")
    fake_ip.namespaces.add("vpp-7-agg1")
    with pytest.raises(hosts.HostsError, match="vpp-7-agg1 exist"):
        hosts.Machines(plan, log=lambda _m: None).up()
    assert not any(args[:2] == ("netns", "add") for args in fake_ip.log)


def test_a_half_made_machine_is_still_removed(
    fake_ip: FakeIp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each namespace and link is recorded before it is made, so a failure half-way
    (here: the veth of the third machine) leaves nothing behind after down."""
    plan = NetworkPlan(aggs=2, home=tmp_path, layout="hosts")
    real = fake_ip.ip
    third = hosts.veth_name(plan.hosts[2])

    def failing(*args: str) -> str:
        if args[:3] == ("link", "add", third):
            raise hosts.HostsError("ip link add: RTNETLINK answers: Operation not permitted")
        return real(*args)

    monkeypatch.setattr(hosts, "_ip", failing)
    machines = hosts.Machines(plan, log=lambda _m: None)
    with pytest.raises(hosts.HostsError):
        machines.up()
    machines.down()
    assert fake_ip.namespaces == {"vpp-7-bystander", "other"}
    assert fake_ip.links == {"eth0", "vpp7h99"}


def test_hosts_layout_needs_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hosts.os, "geteuid", lambda: 1000)
    with pytest.raises(hosts.HostsError, match="needs root"):
        hosts.check_supported()
