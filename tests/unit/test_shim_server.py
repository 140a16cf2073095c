"""Server lifecycle: loopback-only address, many peers, reconnects, graceful stop, env, TLS."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fake_peer import (
    CCID,
    DemoContract,
    FakePeer,
    Msg,
    connected_peer,
    reply,
    response_of,
    running_server,
    wait_until,
)
from vpp_shim.server import TlsConfig, check_address, serve, settings_from_env


@pytest.mark.parametrize(
    "address", ["0.0.0.0:9999", "localhost:9999", "[::]:9999", ":9999", "127.0.0.1", "10.0.0.1:1"]
)
def test_only_loopback_addresses_are_accepted(address):
    with pytest.raises(ValueError):
        check_address(address)
    with pytest.raises(ValueError):
        serve(DemoContract(), address, CCID)


def test_empty_package_id_is_refused():
    with pytest.raises(ValueError, match="chaincode_id"):
        serve(DemoContract(), "127.0.0.1:0", "")


def test_port_already_in_use_is_an_error():
    with running_server() as server, pytest.raises(OSError):
        serve(DemoContract(), server.address, CCID)


def test_several_peers_at_once_and_a_reconnect():
    with running_server() as server:
        with connected_peer(server) as p1, connected_peer(server) as p2:
            assert response_of(p1.run_transaction("t1", ["Echo", "one"])).payload == b"one"
            assert response_of(p2.run_transaction("t2", ["Echo", "two"])).payload == b"two"
            assert len(server.sessions()) == 2
        # Both peers went away; a restarted peer dials again and is served.
        wait_until(lambda: not server.sessions())
        with connected_peer(server) as p3:
            assert response_of(p3.run_transaction("t3", ["Echo", "three"])).payload == b"three"


def test_streams_beyond_max_streams_are_refused():
    with running_server(max_streams=1) as server, connected_peer(server) as first:
        with FakePeer(server.address) as second, pytest.raises(EOFError):
            second.recv()
        assert second.error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert response_of(first.run_transaction("t-ok", ["Echo", "ok"])).payload == b"ok"


def test_peer_vanishing_mid_transaction_frees_the_worker():
    """A transaction waiting for a reply on a dead stream must not hold its worker forever."""
    with running_server(max_workers=1) as server:
        with connected_peer(server) as gone:
            gone.send_transaction("t-lost", ["Pair", "a", "b"])
            assert gone.recv().type == Msg.GET_STATE
        # The only worker was blocked in that transaction; it is released by the stream's end.
        with connected_peer(server) as peer:
            done = peer.run_transaction("t-next", ["Echo", "free"])
            assert response_of(done).payload == b"free"


def test_reply_timeout_fails_the_transaction():
    with running_server(request_timeout=0.2) as server, connected_peer(server) as peer:
        peer.send_transaction("t-slow", ["Pair", "a", "b"])
        assert peer.recv().type == Msg.GET_STATE  # never answered
        response = response_of(peer.recv())
        assert response.status == 500
        assert "no reply to GET_STATE" in response.message


def test_graceful_stop_finishes_running_transactions_and_refuses_new_ones():
    server = serve(DemoContract(), "127.0.0.1:0", CCID)
    try:
        with FakePeer(server.address) as peer:
            peer.handshake()
            peer.send_transaction("t-running", ["Pair", "a", "b"])
            get_a = peer.recv()
            stopped = server.stop(5.0)
            wait_until(lambda: all(s.draining for s in server.sessions()))

            peer.send_transaction("t-late", ["Echo", "late"])
            refusal = peer.recv()
            assert (refusal.type, refusal.txid) == (Msg.ERROR, "t-late")
            assert b"shutting down" in refusal.payload

            peer.send(reply(get_a, b"A"))
            get_b = peer.recv()
            peer.send(reply(get_b, b"B"))
            put = peer.recv()
            peer.send(reply(put))
            assert response_of(peer.recv()).payload == b"A|B"
            with pytest.raises(EOFError):
                peer.recv()  # then the server ends the stream
            assert stopped.wait(5)
    finally:
        server.stop(None).wait(5)


def test_stop_without_grace_ends_streams_at_once():
    server = serve(DemoContract(), "127.0.0.1:0", CCID)
    with FakePeer(server.address) as peer:
        peer.handshake()
        started = time.monotonic()
        assert server.stop(None).wait(5)
        assert time.monotonic() - started < 2
        with pytest.raises(EOFError):
            peer.recv()


def test_settings_from_env(tmp_path):
    env = {"CHAINCODE_SERVER_ADDRESS": "127.0.0.1:9999", "CHAINCODE_ID": CCID}
    settings = settings_from_env(env)
    assert (settings.address, settings.chaincode_id, settings.tls) == (
        "127.0.0.1:9999",
        CCID,
        None,
    )
    (tmp_path / "cert.pem").write_bytes(b"CERT")
    (tmp_path / "key.pem").write_bytes(b"KEY")
    tls_env = env | {
        "CHAINCODE_TLS_DISABLED": "false",
        "CHAINCODE_TLS_CERT": str(tmp_path / "cert.pem"),
        "CHAINCODE_TLS_KEY": str(tmp_path / "key.pem"),
    }
    assert settings_from_env(tls_env).tls == TlsConfig(cert_pem=b"CERT", key_pem=b"KEY")
    with pytest.raises(ValueError, match="CHAINCODE_ID"):
        settings_from_env({"CHAINCODE_SERVER_ADDRESS": "127.0.0.1:1"})
    with pytest.raises(ValueError, match="CHAINCODE_SERVER_ADDRESS"):
        settings_from_env({"CHAINCODE_ID": CCID})
    with pytest.raises(ValueError, match="CHAINCODE_TLS_CERT"):
        settings_from_env(env | {"CHAINCODE_TLS_DISABLED": "false"})


def _self_signed() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "chaincode")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def test_tls_server():
    cert, key = _self_signed()
    with running_server(tls=TlsConfig(cert_pem=cert, key_pem=key)) as server:
        channel = grpc.secure_channel(server.address, grpc.ssl_channel_credentials(cert))
        with FakePeer(server.address, channel=channel) as peer:
            peer.handshake()
            assert response_of(peer.run_transaction("t-tls", ["Echo", "tls"])).payload == b"tls"


RUN_SCRIPT = """
import logging, sys
from vpp_shim.api import Contract, transaction
from vpp_shim.server import run_from_env

class Hello(Contract):
    name = "hello"

    @transaction
    def Hi(self, stub):
        return "hi"

logging.basicConfig(level=logging.INFO, stream=sys.stderr)
run_from_env(Hello(), grace=2.0)
print("stopped cleanly", flush=True)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_run_from_env_serves_until_sigterm():
    address = f"127.0.0.1:{_free_port()}"
    env = os.environ | {"CHAINCODE_SERVER_ADDRESS": address, "CHAINCODE_ID": CCID}
    proc = subprocess.Popen(
        [sys.executable, "-c", RUN_SCRIPT],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while True:  # the child needs a moment to import gRPC and listen
            try:
                with socket.create_connection(("127.0.0.1", int(address.split(":")[1])), 0.2):
                    break
            except OSError:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.05)
        with FakePeer(address) as peer:
            register = peer.handshake()
            assert register.type == Msg.REGISTER
            assert response_of(peer.run_transaction("t-run", ["Hi"])).payload == b"hi"
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert "stopped cleanly" in out
        assert "SIGTERM" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --- mutual TLS: only the own organisation's peer may drive a chaincode server -------------
PEER_NAME = "peer0.vppo.vpp.local"
SERVER_NAME = "market.vppo.vpp.local"


@pytest.fixture(scope="module")
def org_tls() -> dict[str, bytes]:
    """An org's TLS CA, the server certificate it issues, and some would-be clients."""
    from vpp_network.issuer import CertificateAuthority

    ca = CertificateAuthority.create("tlsca.vppo.vpp.local")
    other = CertificateAuthority.create("tlsca.grid.vpp.local")
    server_cert, server_key = ca.issue(SERVER_NAME, ous=(), dns_names=[SERVER_NAME])
    peer_cert, peer_key = ca.issue(PEER_NAME, ous=(), dns_names=[PEER_NAME])
    admin_cert, admin_key = ca.issue("Admin@vppo.vpp.local", ous=())
    foreign_cert, foreign_key = other.issue(PEER_NAME, ous=(), dns_names=[PEER_NAME])
    return {
        "ca": ca.cert_pem,
        "server_cert": server_cert,
        "server_key": server_key,
        "peer": (peer_cert, peer_key),
        "admin": (admin_cert, admin_key),
        "foreign": (foreign_cert, foreign_key),
    }


def _mutual_tls_server(org_tls: dict):
    return running_server(
        tls=TlsConfig(
            cert_pem=org_tls["server_cert"],
            key_pem=org_tls["server_key"],
            client_ca_pem=org_tls["ca"],
            client_names=(PEER_NAME,),
        )
    )


def _client(server, org_tls: dict, client: str | None) -> FakePeer:
    cert_key = org_tls[client] if client else (None, None)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=org_tls["ca"], private_key=cert_key[1], certificate_chain=cert_key[0]
    )
    # As the peer does with connection.json's "domain": dial 127.0.0.1, check the name.
    channel = grpc.secure_channel(
        server.address, credentials, options=[("grpc.ssl_target_name_override", SERVER_NAME)]
    )
    return FakePeer(server.address, channel=channel)


def test_mutual_tls_serves_the_own_peer(org_tls):
    with _mutual_tls_server(org_tls) as server, _client(server, org_tls, "peer") as peer:
        peer.handshake()
        assert response_of(peer.run_transaction("t-mtls", ["Echo", "ok"])).payload == b"ok"


@pytest.mark.parametrize(
    ("client", "code"),
    [
        (None, grpc.StatusCode.UNAVAILABLE),  # no client certificate: no TLS session
        ("foreign", grpc.StatusCode.UNAVAILABLE),  # another org's CA: no TLS session
        ("admin", grpc.StatusCode.PERMISSION_DENIED),  # own CA, but not the peer
    ],
)
def test_mutual_tls_refuses_everyone_else(org_tls, client, code):
    with _mutual_tls_server(org_tls) as server, _client(server, org_tls, client) as intruder:
        with pytest.raises(EOFError):
            intruder.recv()
        assert intruder.error is not None and intruder.error.code() == code
        assert not server.sessions()


def test_client_names_need_a_client_ca(org_tls):
    with pytest.raises(ValueError, match="client_ca_pem"):
        TlsConfig(cert_pem=b"C", key_pem=b"K", client_names=(PEER_NAME,))


def test_settings_from_env_reads_client_names(tmp_path):
    for name in ("cert", "key", "ca"):
        (tmp_path / f"{name}.pem").write_bytes(name.encode())
    env = {
        "CHAINCODE_SERVER_ADDRESS": "127.0.0.1:9999",
        "CHAINCODE_ID": CCID,
        "CHAINCODE_TLS_DISABLED": "false",
        "CHAINCODE_TLS_CERT": str(tmp_path / "cert.pem"),
        "CHAINCODE_TLS_KEY": str(tmp_path / "key.pem"),
        "CHAINCODE_CLIENT_CA_CERT": str(tmp_path / "ca.pem"),
        "CHAINCODE_CLIENT_NAMES": f"{PEER_NAME}, other",
    }
    assert settings_from_env(env).tls == TlsConfig(
        cert_pem=b"cert", key_pem=b"key", client_ca_pem=b"ca", client_names=(PEER_NAME, "other")
    )
