"""Errors are one line with a hint and an exit code; --debug keeps the traceback; --help has
examples everywhere. Also the real gRPC path: vppctl -> vpp_gateway -> FakeGatewayPeer.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from capacity_setup import certify_and_sync
from fake_fabric import FakeFabric, invoke
from fake_gateway import FakeGatewayPeer, FakeInvocation
from typer.main import get_command
from vpp_chaincode.market import MarketContract
from vpp_network.issuer import self_signed
from vpp_shim.api import Caller
from vpp_shim.testing import MemoryLedger
from vppctl.main import app

IDENTITIES = {
    "vppo-admin": ("VPPOMSP", {"ous": ["admin"]}),
    "agg3-trader": ("Agg3MSP", {"ous": ["client"], "attrs": {"vpp.role": "trader"}}),
    "agg3-admin": ("Agg3MSP", {"ous": ["admin"]}),  # asks for admission (register)
}


def write_network(folder: Path, peer_address: str, tls_ca: Path, host: str) -> Path:
    """A connection profile with one peer per org (all at ``peer_address``) and a wallet."""
    wallet = folder / "wallet"
    for name, (mspid, cert_args) in IDENTITIES.items():
        cert, key = self_signed(name, **cert_args)  # type: ignore[arg-type]
        (wallet / name).mkdir(parents=True)
        (wallet / name / "cert.pem").write_bytes(cert)
        (wallet / name / "key.pem").write_bytes(key)
        (wallet / name / "identity.json").write_text(
            json.dumps({"name": name, "mspid": mspid, "role": name.split("-")[1]})
        )
    peers = {
        f"peer0.{org.lower()}": {
            "mspid": f"{org}MSP",
            "address": peer_address,
            "host": host,
            "tls_ca": str(tls_ca),
        }
        for org in ("VPPO", "Grid", "Agg3")
    }
    profile = {
        "name": "vpp-fabric",
        "fabric_version": "3.1.1",
        "wallet": str(wallet),
        "organizations": {p["mspid"]: {"peers": [name]} for name, p in peers.items()},
        "peers": peers,
        "orderers": {},
        "channels": {"vpp-main": {"peers": list(peers), "chaincodes": ["market"]}},
    }
    path = folder / "connection.json"
    path.write_text(json.dumps(profile))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def grpc_market(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGatewayPeer]:
    """The real market contract behind a real (fake) Gateway peer; VPP_PROFILE points at it."""
    ledger = MemoryLedger(channel_id="vpp-main")
    contract = MarketContract()

    def market(inv: FakeInvocation) -> bytes:
        caller = Caller(inv.mspid, inv.cert_pem)
        return ledger.invoke(
            contract, caller, inv.function, *inv.str_args, transient=dict(inv.transient)
        )

    with FakeGatewayPeer({"market": market}, mspid="VPPOMSP", host="peer0.test") as peer:
        peer.market_ledger, peer.market_contract = ledger, contract  # type: ignore[attr-defined]
        profile = write_network(tmp_path, peer.address, peer.peer_info.tls_ca, peer.host)
        monkeypatch.setenv("VPP_PROFILE", str(profile))
        yield peer


def test_over_grpc_query_submit_and_refusal(grpc_market: FakeGatewayPeer) -> None:
    version = invoke("version", "-o", "json")
    assert version.exit_code == 0, version.output
    assert json.loads(version.stdout)[1]["component"] == "market"
    registered = invoke("register", "--agg", "3", "--region", "R3", "-o", "json")
    assert registered.exit_code == 0, registered.output
    assert json.loads(registered.stdout)[0]["mspid"] == "Agg3MSP"
    # a submit waits for every peer of the channel (qscc GetChainInfo on each org)
    assert any(kind == "Submit" for kind, _ in grpc_market.requests)
    opened = invoke("period", "open", "-t", "13", "--day", "1")
    assert opened.exit_code == 0, opened.output
    refused = invoke("bid", "--agg", "3", "--side", "buy", "--qty", "1", "--price", "0.1")
    assert refused.exit_code == 1 and refused.stdout == ""
    assert refused.stderr.startswith("vppctl bid: error: refused by chaincode: SubmitOrder: Agg3:")
    assert refused.stderr.rstrip().endswith("[BAD_ARGUMENT]")
    assert len(refused.stderr.splitlines()) == 1
    # --output json: the refusal as one JSON line on stderr, with its code
    as_json = invoke(
        "bid", "--agg", "3", "--side", "buy", "--qty", "1", "--price", "0.1", "-o", "json"
    )
    assert as_json.exit_code == 1 and as_json.stdout == ""
    assert len(as_json.stderr.splitlines()) == 1
    error = json.loads(as_json.stderr)["error"]
    assert error["code"] == "BAD_ARGUMENT" and error["exit_code"] == 1
    assert error["command"] == "bid"
    assert error["message"].startswith("refused by chaincode: SubmitOrder: Agg3:")
    # Orders are bounded by certified capacity: Agg3's, certified on agg3, synced.
    certify_and_sync(grpc_market.market_ledger, grpc_market.market_contract, 3)
    placed = invoke(
        "bid", "--agg", "3", "--side", "buy", "--qty", "1", "--price", "0.7", "-o", "json"
    )
    assert placed.exit_code == 0, placed.output
    assert json.loads(placed.stdout)[0]["submitter"] == "agg3-trader"


def test_unreachable_peer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeGatewayPeer({}, host="peer0.test") as peer:
        tls_ca, host = peer.peer_info.tls_ca, peer.host
        address = f"127.0.0.1:{free_port()}"  # nothing listens here
        profile = write_network(tmp_path, address, tls_ca, host)
        monkeypatch.setenv("VPP_PROFILE", str(profile))
        result = invoke("orders")
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr == (
        f"vppctl orders: error: peer at {address} unreachable — is the network up? "
        "run `make network-up`\n"
    )


def test_missing_profile_and_identity(tmp_path: Path) -> None:
    missing = invoke("--profile", str(tmp_path / "nowhere"), "wallet")
    assert missing.exit_code == 3
    assert missing.stderr.startswith("vppctl wallet: error: no connection profile at ")
    assert "is the network up? run `make network-up`" in missing.stderr
    assert len(missing.stderr.splitlines()) == 1


def test_unknown_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeFabric().install(monkeypatch)
    result = invoke("wallet", "--as", "nobody")
    assert result.exit_code == 2
    assert "'nobody'" in result.stderr and "pass --as with a wallet identity" in result.stderr


def test_debug_keeps_the_traceback(tmp_path: Path) -> None:
    result = invoke("--debug", "--profile", str(tmp_path / "nowhere"), "wallet")
    assert result.exit_code != 0
    assert type(result.exception).__name__ == "ProfileError"


def test_debug_off_again_for_the_next_run(tmp_path: Path) -> None:
    invoke("--debug", "--profile", str(tmp_path / "nowhere"), "wallet")
    result = invoke("--profile", str(tmp_path / "nowhere"), "wallet")
    assert result.exit_code == 3 and result.exception is not None
    assert type(result.exception).__name__ == "SystemExit"


def test_identities_lists_the_wallet(tmp_path: Path) -> None:
    profile = write_network(tmp_path, "127.0.0.1:1", tmp_path / "ca.pem", "peer0.test")
    result = invoke("--profile", str(profile), "identities", "-o", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [
        {"mspid": "Agg3MSP", "name": "agg3-admin", "role": "admin"},
        {"mspid": "Agg3MSP", "name": "agg3-trader", "role": "trader"},
        {"mspid": "VPPOMSP", "name": "vppo-admin", "role": "admin"},
    ]


def _leaf_commands(command: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    sub = getattr(command, "commands", None)
    if not sub:
        return [path]
    return [p for name, c in sorted(sub.items()) for p in _leaf_commands(c, (*path, name))]


def test_every_command_has_help_with_examples() -> None:
    leaves = _leaf_commands(get_command(app))
    assert len(leaves) >= 35
    for path in leaves:
        result = invoke(*path, "--help")
        assert result.exit_code == 0, (path, result.output)
        assert "Examples" in result.stdout, path
        assert "vppctl " + path[0] in result.stdout, path


def test_every_query_offers_three_output_formats() -> None:
    for path in _leaf_commands(get_command(app)):
        if path in {("clear",), ("demo", "paper"), ("network", "status")}:
            continue
        text = invoke(*path, "--help").stdout
        assert "--output" in text, path
