"""Independent endorsers and channel stewards in the network plan (no Fabric needed).

Every organisation runs its own chaincode servers, reached by its own peer only,
over mutual TLS; every channel names the organisation without which nothing
about it changes. The live tests (tests/integration/test_policies_live.py) show
the network enforcing both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from vpp_network import chaincode_tls, configs
from vpp_network.issuer import CertificateAuthority
from vpp_network.network import Network, NetworkError
from vpp_network.plan import NetworkPlan

TLS_CAS: dict[str, CertificateAuthority] = {}


def _enrol(org, host: str) -> tuple[bytes, bytes]:
    """What the org's Fabric CA's ``tls`` profile returns: a certificate naming ``host``."""
    return TLS_CAS[org.mspid].issue(host, ous=(), dns_names=[host])


RELEASE = Path(__file__).resolve().parents[2] / "network" / "ccaas-builder" / "bin" / "release"


@pytest.fixture
def plan(tmp_path, monkeypatch) -> NetworkPlan:
    """A 3-aggregator plan whose orgs have a TLS CA and a peer TLS pair, as network-up lays out
    (the CAs here are in-memory stand-ins for the organisations' Fabric CAs)."""
    monkeypatch.setenv("VPP_HOME", str(tmp_path / "net"))
    monkeypatch.setenv("VPP_PORT_OFFSET", "47000")
    plan = NetworkPlan(aggs=3, home=tmp_path)
    for org in plan.peer_orgs:
        ca = CertificateAuthority.create(f"tlsca.{org.domain}")
        plan.peer_tls_ca(org).parent.mkdir(parents=True)
        plan.peer_tls_ca(org).write_bytes(ca.cert_pem)
        TLS_CAS[org.mspid] = ca
        cert, key = ca.issue(org.peer_host, ous=(), dns_names=[org.peer_host])
        tls = plan.peer_dir(org) / "tls"
        tls.mkdir(parents=True)
        (tls / "server.crt").write_bytes(cert)
        (tls / "server.key").write_bytes(key)
    return plan


def _with_packages(plan: NetworkPlan) -> Network:
    net = Network(plan, log=lambda _: None)
    net.save_state(
        complete=True,
        packages={
            cc.name: {org.mspid: f"{cc.label(org)}:00" for org in plan.chaincode_orgs(cc)}
            for cc in plan.chaincodes
        },
    )
    return net


def test_every_org_runs_its_own_server_of_each_chaincode_it_hosts(plan):
    net = _with_packages(plan)
    specs = {s.name: s for s in net.process_specs() if s.name.startswith("chaincode-")}
    expected = {
        f"chaincode-{cc}-{org.name.lower()}"
        for cc in ("market", "meter")
        for org in plan.peer_orgs  # everyone is on vpp-main; VPPO/Grid/AggN on agg<N>
    }
    assert set(specs) == expected
    ports = [p for s in net.process_specs() for p in s.ports]
    assert len(ports) == len(set(ports)), "two processes share a port"
    for org in plan.peer_orgs:
        spec = specs[f"chaincode-market-{org.name.lower()}"]
        assert spec.ports == (plan.market.port(org),)
        assert f"127.0.0.1:{plan.market.port(org)}" in spec.argv
        assert spec.argv[spec.argv.index("--chaincode-id") + 1].startswith(
            f"market_1.0_{org.name.lower()}:"
        )
        env = spec.env
        assert env["CHAINCODE_TLS_DISABLED"] == "false"
        assert env["CHAINCODE_CLIENT_CA_CERT"] == str(plan.peer_tls_ca(org))
        assert env["CHAINCODE_CLIENT_NAMES"] == org.peer_host  # its own peer, nobody else


def test_peers_get_their_client_pair_for_the_builder(plan):
    net = _with_packages(plan)
    for org in plan.peer_orgs:
        env = net.spec(org.peer_host).env
        cert, key = chaincode_tls.peer_client_files(plan, org)
        assert (env[chaincode_tls.CLIENT_CERT_ENV], env[chaincode_tls.CLIENT_KEY_ENV]) == (
            str(cert),
            str(key),
        )


def test_server_certificates_and_connection_json(plan):
    chaincode_tls.issue_server_certs(plan, _enrol)
    for cc in plan.chaincodes:
        for org in plan.chaincode_orgs(cc):
            conn = chaincode_tls.connection_json(plan, org, cc)
            assert conn["address"] == f"127.0.0.1:{cc.port(org)}"
            assert conn["tls_required"] is True and conn["client_auth_required"] is True
            assert "client_key" not in conn and "client_cert" not in conn  # added by the peer
            server = x509.load_pem_x509_certificate(
                chaincode_tls.server_tls(plan, org, cc).cert.read_bytes()
            )
            ca = x509.load_pem_x509_certificate(conn["root_cert"].encode())
            server.verify_directly_issued_by(ca)  # the org's own TLS CA
            sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            assert sans.get_values_for_type(x509.DNSName) == [conn["domain"]]


def test_an_old_network_with_one_shared_server_is_refused(plan):
    net = Network(plan, log=lambda _: None)
    net.save_state(complete=True, aggs=3, consensus="BFT", orderers=4, packages={"market": "m:1"})
    with pytest.raises(NetworkError, match="network-clean"):
        net.up()


def _release(tmp_path: Path, connection: dict, env: dict[str, str]) -> subprocess.CompletedProcess:
    bld, rel = tmp_path / "bld", tmp_path / "rel"
    bld.mkdir()
    rel.mkdir()
    (bld / "connection.json").write_text(json.dumps(connection))
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("VPP_CCAAS")}
    return subprocess.run(
        [sys.executable, str(RELEASE), str(bld), str(rel)],
        env=clean_env | env,
        capture_output=True,
        text=True,
    )


def test_release_adds_the_peers_client_pair(tmp_path):
    (tmp_path / "c.pem").write_text("CERT")
    (tmp_path / "k.pem").write_text("KEY")
    done = _release(
        tmp_path,
        {"address": "127.0.0.1:1", "tls_required": True, "client_auth_required": True},
        {
            "VPP_CCAAS_CLIENT_CERT": str(tmp_path / "c.pem"),
            "VPP_CCAAS_CLIENT_KEY": str(tmp_path / "k.pem"),
        },
    )
    assert done.returncode == 0, done.stderr
    released = tmp_path / "rel" / "chaincode" / "server" / "connection.json"
    conn = json.loads(released.read_text())
    assert (conn["client_cert"], conn["client_key"]) == ("CERT", "KEY")
    assert released.stat().st_mode & 0o077 == 0  # holds a key: the peer's user only


def test_release_without_the_client_pair_fails_naming_it(tmp_path):
    done = _release(
        tmp_path, {"address": "127.0.0.1:1", "tls_required": True, "client_auth_required": True}, {}
    )
    assert done.returncode == 1
    assert "VPP_CCAAS_CLIENT_CERT" in done.stderr


def test_channel_stewards_and_their_consent_rules():
    plan = NetworkPlan(aggs=3)
    main, agg2 = plan.channels[0], plan.channels[2]
    assert (main.steward, agg2.steward) == (plan.vppo, plan.agg_orgs[1])
    assert agg2.consent_rule("admin") == (
        "AND('Agg2MSP.admin',OutOf(1,'VPPOMSP.admin','GridMSP.admin'))"
    )
    # Five members, a majority of three: the VPPO and two of the four others (a signature
    # satisfies one principal only, so the VPPO is not listed again among them).
    others = ",".join(f"'{o.mspid}.peer'" for o in plan.peer_orgs if o != plan.vppo)
    assert main.consent_rule("peer") == f"AND('VPPOMSP.peer',OutOf(2,{others}))"


@pytest.mark.parametrize("channel_index", [0, 2])
def test_channel_profile_policies_need_the_steward(channel_index):
    plan = NetworkPlan(aggs=3)
    channel = plan.channels[channel_index]
    profile = configs._channel_profile(plan, channel)
    app = profile["Application"]["Policies"]
    steward = f"'{channel.steward.mspid}.admin'"
    assert app["Admins"] == {"Type": "Signature", "Rule": channel.consent_rule("admin")}
    assert steward in app["Admins"]["Rule"]
    for name in ("LifecycleEndorsement", "Endorsement"):
        assert app[name] == {"Type": "Signature", "Rule": channel.consent_rule("peer")}
    orderer_admins = profile["Orderer"]["Policies"]["Admins"]
    assert orderer_admins["Type"] == "Signature"
    assert "'OrdererMSP.admin'" in orderer_admins["Rule"] and steward in orderer_admins["Rule"]


def test_market_servers_run_the_production_contract_unless_the_network_says_otherwise(plan):
    """network-up serves `market` (no BenchSeedBook); a benchmark network records, when it is
    created, that its market servers run `market-bench`, so a restart keeps serving it."""
    from vpp_network import network as network_module

    assert network_module.SERVED_CONTRACTS == {}  # nothing network-up creates asks for more
    net = _with_packages(plan)

    def served() -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for s in net.process_specs():
            if s.name.startswith("chaincode-"):
                module = s.argv.index("vpp_chaincode.server")
                out.setdefault(s.name.split("-")[1], set()).add(s.argv[module + 1])
        return out

    assert served() == {"market": {"market"}, "meter": {"meter"}}
    net.save_state(served_contracts={"market": "market-bench"})
    assert served() == {"market": {"market-bench"}, "meter": {"meter"}}


def test_the_plan_knows_every_port_a_process_listens_on(plan):
    """listen_ports() (what network-up checks before anything is on disk) covers what the
    processes of a created network listen on, and no two of them collide."""
    net = _with_packages(plan)
    listening = [p for s in net.process_specs() for p in s.ports]
    assert set(listening) <= set(plan.listen_ports())
    assert len(plan.listen_ports()) == len(set(plan.listen_ports()))
