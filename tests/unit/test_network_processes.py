"""Process control by PID file, port checks and the network plan (no Fabric needed)."""

from __future__ import annotations

import json
import os
import socket
import sys
import time

import pytest
from vpp_network.network import Network, NetworkError
from vpp_network.plan import NetworkPlan
from vpp_network.processes import ProcessSpec, ProcessTable, port_listening, port_owner

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


@pytest.fixture
def table(tmp_path):
    t = ProcessTable(tmp_path / "run", tmp_path / "logs")
    yield t
    for name in t.names():
        t.stop(name, timeout=2)


def test_start_and_stop_by_pid_file(table):
    pid = table.start(ProcessSpec("sleeper", SLEEPER, dict(os.environ), ()))
    assert table.pid("sleeper") == pid
    assert table.stop("sleeper", timeout=5)
    assert table.pid("sleeper") is None
    assert not table.pid_file("sleeper").exists()
    assert not table.stop("sleeper")  # nothing left to stop


def test_a_recycled_pid_is_never_signalled(table):
    """A PID file whose start time does not match belongs to someone else now."""
    victim = table.start(ProcessSpec("victim", SLEEPER, dict(os.environ), ()))
    record = json.loads(table.pid_file("victim").read_text())
    table.pid_file("other").write_text(json.dumps(record | {"start_time": "1"}))
    assert table.pid("other") is None
    assert not table.stop("other")
    assert table.pid("victim") == victim  # still alive


def test_log_tail_names_what_the_process_said(table):
    spec = ProcessSpec("talker", [sys.executable, "-c", "print('hello from talker')"], {}, ())
    table.start(spec)
    for _ in range(100):
        if "hello from talker" in table.tail("talker"):
            break
        time.sleep(0.05)
    assert "hello from talker" in table.tail("talker")


def test_port_owner_names_the_listening_process():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert port_listening(port)
        owner = port_owner(port)
        assert owner is not None and f"pid {os.getpid()}" in owner
    assert port_owner(port) is None


def test_network_up_refuses_a_port_in_use(tmp_path, monkeypatch):
    monkeypatch.setenv("VPP_HOME", str(tmp_path / "net"))
    monkeypatch.setenv("VPP_PORT_OFFSET", "47000")  # clear of a network that may be running
    plan = NetworkPlan(aggs=1, home=tmp_path)
    net = Network(plan, log=lambda _: None)
    spec = next(s for s in net.process_specs() if s.name == "orderer1")
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", spec.ports[0]))
        except OSError:
            pytest.skip(f"port {spec.ports[0]} is busy on this machine")
        sock.listen()
        with pytest.raises(NetworkError) as err:
            net._check_ports([spec])
    message = err.value.message
    assert f"127.0.0.1:{spec.ports[0]}" in message and "orderer1" in message
    assert f"pid {os.getpid()}" in message


def test_port_offset_shifts_every_port(monkeypatch):
    monkeypatch.delenv("VPP_PORT_OFFSET", raising=False)
    base = NetworkPlan(aggs=2)
    ports = {p for s in Network(base).process_specs() for p in s.ports}
    monkeypatch.setenv("VPP_PORT_OFFSET", "10000")
    shifted = {p for s in Network(NetworkPlan(aggs=2)).process_specs() for p in s.ports}
    assert shifted == {p + 10000 for p in ports}


def test_plan_channels_and_policies():
    plan = NetworkPlan(aggs=3)
    names = [c.name for c in plan.channels]
    assert names == ["vpp-main", "agg1", "agg2", "agg3"]
    main, agg2 = plan.channels[0], plan.channels[2]
    assert len(main.orgs) == 5
    assert [o.mspid for o in agg2.orgs] == ["Agg2MSP", "VPPOMSP", "GridMSP"]
    assert agg2.endorsement_policy == "AND('Agg2MSP.peer','VPPOMSP.peer')"
    assert agg2.endorsers == ("Agg2MSP", "VPPOMSP")
    assert main.endorsement_policy == "AND('VPPOMSP.peer','GridMSP.peer')"
    with pytest.raises(ValueError, match="AGGS"):
        NetworkPlan(aggs=0)
    with pytest.raises(ValueError, match="VPP_CONSENSUS"):
        NetworkPlan(consensus="solo")


def test_the_connection_profile_names_each_channels_endorsers(tmp_path, monkeypatch):
    """Clients (vppctl) take the endorsing organisations from here, not from a constant."""
    from vpp_gateway import load_profile

    monkeypatch.setenv("VPP_HOME", str(tmp_path / "net"))
    plan = NetworkPlan(aggs=2)
    plan.net_dir.mkdir(parents=True)
    profile = load_profile(Network(plan).write_connection_profile())
    for channel in plan.channels:
        assert profile.channel(channel.name).endorsers == channel.endorsers
    assert profile.channel("vpp-main").endorsers == ("VPPOMSP", "GridMSP")
    assert profile.channel("agg2").endorsers == ("Agg2MSP", "VPPOMSP")


def test_ports_in_the_ephemeral_range_are_warned_about(monkeypatch, tmp_path):
    """A server port the kernel may hand to any outgoing connection fails to bind at random;
    network-up says so up front and names an offset that avoids it.

    On a fresh clone (no network on disk: network-up warns before it writes anything) the
    warning covers every port the network will listen on, the CAs' and chaincode servers'
    included."""
    from vpp_network import network as network_module

    monkeypatch.setenv("VPP_HOME", str(tmp_path / "net"))  # nothing on disk
    monkeypatch.setattr(network_module, "ephemeral_port_range", lambda: (32768, 60999))
    said: list[str] = []
    monkeypatch.setenv("VPP_PORT_OFFSET", "30000")
    Network(NetworkPlan(aggs=2), log=said.append)._warn_if_ephemeral()
    # The lowest port is the orderer organisation's CA (7004 + offset).
    assert len(said) == 1 and "37004-" in said[0] and "VPP_PORT_OFFSET up to" in said[0]
    said.clear()
    monkeypatch.setenv("VPP_PORT_OFFSET", "16000")
    Network(NetworkPlan(aggs=2), log=said.append)._warn_if_ephemeral()
    assert said == []
