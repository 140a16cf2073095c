"""vpp_gateway end to end against an in-process fake Gateway peer (real gRPC over TLS)."""

from __future__ import annotations

import json
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import vpp_gateway.transaction as gateway_transaction
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from fake_gateway import FakeGatewayPeer, FakeInvocation, make_identity
from vpp_gateway import (
    ChaincodeEvent,
    ChannelInfo,
    CommitError,
    CommitTimeoutError,
    ConnectionProfile,
    EndorseError,
    EvaluateError,
    Gateway,
    GatewayError,
    IdentityError,
    MvccConflictError,
    PeerInfo,
    PeersBehindError,
    PeerUnreachableError,
    SubmitError,
    Timeouts,
    UnconfirmedSubmitError,
    connect,
)
from vpp_gateway.identity import CURVE_ORDERS, to_low_s

INVALID = grpc.StatusCode.INVALID_ARGUMENT
DEADLINE = grpc.StatusCode.DEADLINE_EXCEEDED

REFUSAL = "order quantity must be > 0 (field quantity_kwh, value -1)"


class Market:
    """A toy chaincode: a counter, orders that emit events, and a refusal."""

    def __init__(self) -> None:
        self.orders: list[dict] = []
        self.calls: list[FakeInvocation] = []

    def __call__(self, inv: FakeInvocation) -> bytes | str | None:
        self.calls.append(inv)
        if inv.function == "Version":
            return "1.2.3"
        if inv.function == "Whoami":
            return f"{inv.mspid}"
        if inv.function == "Echo":
            return b"|".join(inv.args)
        if inv.function == "Secret":
            return inv.transient["price"]
        if inv.function == "PlaceOrder":
            qty = int(inv.args[0])
            if qty <= 0:
                raise ValueError(REFUSAL)
            order = {"id": len(self.orders) + 1, "qty": qty}
            self.orders.append(order)
            inv.set_event("OrderPlaced", json.dumps(order).encode())
            return json.dumps(order)
        raise ValueError(f"unknown function {inv.function!r}")


@pytest.fixture
def market() -> Market:
    return Market()


@pytest.fixture
def peer(market: Market) -> Iterator[FakeGatewayPeer]:
    with FakeGatewayPeer({"market": market}, mspid="Agg3MSP", host="peer0.agg3.test") as p:
        yield p


@pytest.fixture
def gateway(peer: FakeGatewayPeer) -> Iterator[Gateway]:
    identity, signer = make_identity("Agg3MSP", "agg3-trader")
    with connect(identity, signer, peer=peer.peer_info) as gw:
        yield gw


def test_evaluate_returns_the_result(gateway: Gateway, market: Market) -> None:
    contract = gateway.network("vpp-main").contract("market")
    assert contract.evaluate("Version") == b"1.2.3"
    assert contract.evaluate("Echo", "a", b"b", 3) == b"a|b|3"
    assert contract.evaluate("Secret", transient={"price": "42"}) == b"42"
    assert market.calls[0].mspid == "Agg3MSP"


def test_submit_waits_for_commit_and_returns_the_result(
    gateway: Gateway, peer: FakeGatewayPeer
) -> None:
    contract = gateway.network("vpp-main").contract("market")
    result = contract.submit("PlaceOrder", "1500")
    assert json.loads(result) == {"id": 1, "qty": 1500}
    methods = [m for m, _ in peer.requests]
    assert methods == ["Endorse", "Submit", "CommitStatus"]
    assert peer.blocks[-1].validation_code == 0
    # The proposal sent to Endorse is the one whose transaction committed.
    endorse_request = peer.requests[0][1]
    assert peer.blocks[-1].tx_id == endorse_request.transaction_id


def test_lower_level_steps_expose_the_transaction(gateway: Gateway) -> None:
    network = gateway.network("vpp-main")
    proposal = network.contract("market").new_proposal("PlaceOrder", "7")
    transaction = proposal.endorse()
    assert transaction.tx_id == proposal.tx_id
    assert json.loads(transaction.result)["qty"] == 7
    commit = transaction.submit()
    status = commit.wait(5)
    assert status.valid and status.block_number == 1
    assert network.commit_status(proposal.tx_id).validation_code == "VALID"


def test_endorsement_refusal_carries_the_chaincode_message(gateway: Gateway) -> None:
    contract = gateway.network("vpp-main").contract("market")
    with pytest.raises(EndorseError) as caught:
        contract.submit("PlaceOrder", "-1")
    assert str(caught.value) == f"chaincode refused: {REFUSAL}"
    assert caught.value.details[0].msp_id == "Agg3MSP"
    assert caught.value.tx_id
    with pytest.raises(EvaluateError, match="chaincode refused: unknown function 'Nope'"):
        contract.evaluate("Nope")


def test_unknown_chaincode_is_a_peer_refusal(gateway: Gateway) -> None:
    with pytest.raises(EndorseError) as caught:
        gateway.network("vpp-main").contract("nothere").submit("X")
    assert caught.value.chaincode_message is None
    assert "successfully defined" in str(caught.value)


def test_invalid_commit_raises_commit_error(gateway: Gateway, peer: FakeGatewayPeer) -> None:
    peer.commit_codes.append("ENDORSEMENT_POLICY_FAILURE")
    with pytest.raises(CommitError) as caught:
        gateway.network("vpp-main").contract("market").submit("PlaceOrder", "1")
    assert not isinstance(caught.value, MvccConflictError)
    assert caught.value.validation_code == "ENDORSEMENT_POLICY_FAILURE"
    assert caught.value.block_number == 1


def test_mvcc_conflict_is_retried_only_when_asked(gateway: Gateway, peer: FakeGatewayPeer) -> None:
    contract = gateway.network("vpp-main").contract("market")
    peer.commit_codes.extend(["MVCC_READ_CONFLICT"])
    with pytest.raises(MvccConflictError):
        contract.submit("PlaceOrder", "1")

    peer.commit_codes.extend(["MVCC_READ_CONFLICT", "PHANTOM_READ_CONFLICT"])
    result = contract.submit("PlaceOrder", "2", retry_on_conflict=2)
    assert json.loads(result)["qty"] == 2
    tx_ids = [b.tx_id for b in peer.blocks]
    assert len(tx_ids) == len(set(tx_ids)) == 4  # every attempt is a new transaction

    peer.commit_codes.extend(["MVCC_READ_CONFLICT"] * 3)
    with pytest.raises(MvccConflictError):
        contract.submit("PlaceOrder", "3", retry_on_conflict=2)


def test_disagreeing_endorsers_are_asked_again(gateway: Gateway, peer: FakeGatewayPeer) -> None:
    """Endorsers a block apart disagree; nothing was ordered, so endorsing again is safe."""
    contract = gateway.network("vpp-main").contract("market")
    peer.endorse_mismatches = 2
    result = contract.submit("PlaceOrder", "4")
    assert json.loads(result)["qty"] == 4
    endorse_tx_ids = [r.transaction_id for kind, r in peer.requests if kind == "Endorse"]
    assert len(endorse_tx_ids) == 3 and len(set(endorse_tx_ids)) == 1  # the same proposal

    peer.endorse_mismatches = 10  # bounded: it gives up with the gateway's own detail
    with pytest.raises(EndorseError, match="ProposalResponsePayloads do not match"):
        contract.submit("PlaceOrder", "5")
    assert peer.endorse_mismatches == 10 - 7


def test_an_endorser_seconds_behind_is_waited_for(
    gateway: Gateway, peer: FakeGatewayPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A peer committing for six busy channels can lag a second or more: keep asking.

    make bench's six-channel batch-1 readings failed when the client gave up after
    0.3 s; the pauses double, so a peer ~3 s behind is still caught up with.
    """
    slept: list[float] = []
    clock = types.SimpleNamespace(sleep=slept.append, monotonic=time.monotonic)
    monkeypatch.setattr(gateway_transaction, "time", clock)  # this module's pauses only
    peer.endorse_mismatches = 6
    result = gateway.network("vpp-main").contract("market").submit("PlaceOrder", "6")
    assert json.loads(result)["qty"] == 6
    assert slept == sorted(slept) and slept[-1] >= 2 * slept[0]
    assert sum(slept) >= 3.0


def test_commit_timeout_is_clean_and_rechecks_later(
    gateway: Gateway, peer: FakeGatewayPeer
) -> None:
    peer.commit_delay = 0.5
    network = gateway.network("vpp-main")
    started = time.monotonic()
    with pytest.raises(CommitTimeoutError) as caught:
        network.contract("market").submit("PlaceOrder", "5", commit_timeout=0.05)
    assert time.monotonic() - started < 0.45
    tx_id = caught.value.tx_id
    assert tx_id and caught.value.timeout == 0.05
    assert network.commit_status(tx_id, timeout=5).valid  # it did commit, later


def test_unreachable_peer(peer: FakeGatewayPeer) -> None:
    identity, signer = make_identity("Agg3MSP")
    dead = PeerInfo("dead", "Agg3MSP", "127.0.0.1:1", peer.host, peer.peer_info.tls_ca)
    gw = connect(identity, signer, peer=dead, timeouts=Timeouts(evaluate=2))
    with gw, pytest.raises(PeerUnreachableError) as caught:
        gw.network("vpp-main").contract("market").evaluate("Version")
    assert caught.value.address == "127.0.0.1:1"


def test_tls_name_must_match_the_peer_certificate(peer: FakeGatewayPeer) -> None:
    identity, signer = make_identity("Agg3MSP")
    info = peer.peer_info
    wrong = PeerInfo(info.name, info.mspid, info.address, "impostor.test", info.tls_ca)
    gw = connect(identity, signer, peer=wrong, timeouts=Timeouts(evaluate=2))
    with gw, pytest.raises(PeerUnreachableError):
        gw.network("vpp-main").contract("market").evaluate("Version")


def test_closed_gateway_refuses_calls(peer: FakeGatewayPeer) -> None:
    identity, signer = make_identity("Agg3MSP")
    gw = connect(identity, signer, peer=peer.peer_info)
    gw.close()
    gw.close()  # idempotent
    with pytest.raises(GatewayError, match="closed"):
        gw.network("vpp-main").contract("market").evaluate("Version")


def test_connect_refuses_a_foreign_key(peer: FakeGatewayPeer) -> None:
    identity, _ = make_identity("Agg3MSP")
    _, other = make_identity("Agg3MSP")
    with pytest.raises(IdentityError, match="does not belong"):
        connect(identity, other, peer=peer.peer_info)


def test_block_height_from_qscc(gateway: Gateway) -> None:
    network = gateway.network("vpp-main")
    assert network.block_height() == 1
    network.contract("market").submit("PlaceOrder", "1")
    assert network.block_height() == 2


def test_events_of_committed_transactions(gateway: Gateway, peer: FakeGatewayPeer) -> None:
    network = gateway.network("vpp-main")
    contract = network.contract("market")
    contract.submit("PlaceOrder", "1")  # before the stream: not seen without start_block
    with network.chaincode_events("market", timeout=5) as events:
        contract.submit("Version")  # no event
        proposal = contract.new_proposal("PlaceOrder", "2")
        proposal.endorse().submit().wait()
        event = next(events)
    assert isinstance(event, ChaincodeEvent)
    assert event.tx_id == proposal.tx_id
    assert event.event_name == "OrderPlaced"
    assert json.loads(event.payload)["qty"] == 2
    assert event.block_number == 3

    replay = list(network.chaincode_events("market", start_block=0, timeout=0.5))
    assert [e.block_number for e in replay] == [1, 3]


def test_events_resume_after_a_peer_restart(gateway: Gateway, peer: FakeGatewayPeer) -> None:
    network = gateway.network("vpp-main")
    contract = network.contract("market")
    stream = network.chaincode_events("market", timeout=5, reconnect_delay=0.05)
    contract.submit("PlaceOrder", "1")
    first = next(stream)
    peer.break_event_streams()
    contract.submit("PlaceOrder", "2")
    contract.submit("PlaceOrder", "3")
    rest = [next(stream), next(stream)]
    stream.close()
    assert [e.block_number for e in [first, *rest]] == [1, 2, 3]
    assert len({e.tx_id for e in [first, *rest]}) == 3
    resumed = [gateway_pb for method, gateway_pb in peer.requests if method == "ChaincodeEvents"]
    assert len(resumed) >= 2


def test_idle_timeout_ends_iteration(gateway: Gateway) -> None:
    started = time.monotonic()
    events = list(gateway.network("vpp-main").chaincode_events("market", timeout=0.2))
    assert events == []
    assert 0.15 < time.monotonic() - started < 3


def test_close_from_another_thread_stops_a_blocked_iterator(gateway: Gateway) -> None:
    stream = gateway.network("vpp-main").chaincode_events("market")
    threading.Timer(0.2, stream.close).start()
    started = time.monotonic()
    assert list(stream) == []
    assert time.monotonic() - started < 3
    assert stream.closed


def test_gateway_close_closes_its_streams(peer: FakeGatewayPeer) -> None:
    identity, signer = make_identity("Agg3MSP")
    gw = connect(identity, signer, peer=peer.peer_info)
    stream = gw.network("vpp-main").chaincode_events("market")
    gw.close()
    assert stream.closed
    assert list(stream) == []


def test_signatures_are_checked_by_the_fake_peer(peer: FakeGatewayPeer) -> None:
    """Guards the fake itself: a proposal signed by the wrong key is refused."""
    identity, signer = make_identity("Agg3MSP")
    gw = connect(identity, signer, peer=peer.peer_info)
    try:
        proposal = gw.network("vpp-main").contract("market").new_proposal("Version")
        _, impostor = make_identity("Agg3MSP")
        proposal._signature = impostor.sign(proposal.proposal_bytes)
        with pytest.raises(EvaluateError) as caught:
            proposal.evaluate()
        assert caught.value.grpc_code == grpc.StatusCode.PERMISSION_DENIED
    finally:
        gw.close()


# --- submit whose outcome the orderers left unknown (issue 17) -----------------------------


def _tx_blocks(peer: FakeGatewayPeer, tx_id: str) -> int:
    return sum(1 for b in peer.blocks if b.tx_id == tx_id)


def test_the_fake_reproduces_request_already_processed(
    gateway: Gateway, peer: FakeGatewayPeer
) -> None:
    """Fabric's own answer, seen by the lower-level steps: unknown outcome, yet committed."""
    peer.submit_outcomes.append("already_processed")
    transaction = gateway.network("vpp-main").contract("market").new_proposal("Version").endorse()
    with pytest.raises(SubmitError) as caught:
        transaction.submit()
    err = caught.value
    assert err.outcome_unknown
    assert "request already processed" in str(err)
    assert _tx_blocks(peer, transaction.tx_id) == 1


def test_submit_survives_request_already_processed(
    gateway: Gateway, peer: FakeGatewayPeer, market: Market
) -> None:
    peer.submit_outcomes.append("already_processed")
    result = gateway.network("vpp-main").contract("market").submit("PlaceOrder", "5")
    assert json.loads(result) == {"id": 1, "qty": 5}
    methods = [m for m, _ in peer.requests]
    assert methods == ["Endorse", "Submit", "CommitStatus"]  # not sent twice
    tx_id = peer.requests[0][1].transaction_id
    assert _tx_blocks(peer, tx_id) == 1 and len(peer.blocks) == 1
    assert len(market.orders) == 1


def test_submit_waits_for_a_commit_that_comes_after_the_failure(
    gateway: Gateway, peer: FakeGatewayPeer
) -> None:
    peer.submit_outcomes.append("late")
    result = gateway.network("vpp-main").contract("market").submit("PlaceOrder", "6")
    assert json.loads(result)["qty"] == 6
    assert len(peer.blocks) == 1
    assert [m for m, _ in peer.requests].count("Submit") == 1


def test_a_lost_submit_says_what_was_seen(gateway: Gateway, peer: FakeGatewayPeer) -> None:
    peer.submit_outcomes.append("lost")
    contract = gateway.network("vpp-main").contract("market")
    with pytest.raises(UnconfirmedSubmitError) as caught:
        contract.submit("PlaceOrder", "7", commit_timeout=0.5)
    err = caught.value
    assert isinstance(err, SubmitError) and isinstance(err, CommitTimeoutError)
    text = str(err)
    assert err.tx_id in text and "request already processed" in text
    assert "not committed within 0.5 s" in text and "commit_status" in text
    assert peer.blocks == []
    assert [m for m, _ in peer.requests].count("Submit") == 1


def test_a_refused_submit_is_not_waited_for() -> None:
    refused = SubmitError("prepared transaction must be signed", tx_id="t", grpc_code=INVALID)
    assert not refused.outcome_unknown
    assert SubmitError("submit timeout", tx_id="t", grpc_code=DEADLINE).outcome_unknown


# --- offline signing and shared connections --------------------------------------------------


def test_offline_signing_with_a_separate_key(peer: FakeGatewayPeer) -> None:
    """The gateway never holds the key: bytes out, signature in (a hardware key's flow)."""
    identity, key = make_identity("Agg3MSP", "agg3-trader")
    with connect(identity, None, peer=peer.peer_info) as gateway:
        contract = gateway.network("vpp-main").contract("market")
        proposal = contract.new_proposal("PlaceOrder", "3")
        with pytest.raises(IdentityError, match="no signer"):
            proposal.endorse()
        transaction = proposal.with_signature(key.sign(proposal.bytes_to_sign())).endorse()
        # A signer that takes a prehashed digest signs digest() instead.
        digest_sig = to_low_s(
            key._key.sign(transaction.digest(), ec.ECDSA(Prehashed(hashes.SHA256()))),
            CURVE_ORDERS["secp256r1"],
        )
        commit = transaction.with_signature(digest_sig).submit()
        status = commit.with_signature(key.sign(commit.bytes_to_sign())).wait(5)
    assert status.valid
    assert json.loads(commit.result)["qty"] == 3
    assert peer.blocks[-1].tx_id == proposal.tx_id


def test_offline_signature_by_another_key_is_refused(peer: FakeGatewayPeer) -> None:
    identity, _ = make_identity("Agg3MSP")
    _, other = make_identity("Agg3MSP")
    with connect(identity, None, peer=peer.peer_info) as gateway:
        proposal = gateway.network("vpp-main").contract("market").new_proposal("Version")
        with pytest.raises(IdentityError, match="not a valid"):
            proposal.with_signature(other.sign(proposal.bytes_to_sign()))
    assert peer.requests == []


def test_identities_share_one_connection(peer: FakeGatewayPeer) -> None:
    first = connect(*make_identity("Agg3MSP"), peer=peer.peer_info)
    second = connect(*make_identity("Agg4MSP"), connection=first.connection)
    assert second.connection is first.connection
    assert second.network("vpp-main").contract("market").evaluate("Whoami") == b"Agg4MSP"
    second.close()  # closes only what is second's own
    assert first.network("vpp-main").contract("market").evaluate("Whoami") == b"Agg3MSP"
    first.close()  # the owner closes the channel
    with pytest.raises(GatewayError, match="closed"):
        second.network("vpp-main").contract("market").evaluate("Whoami")


# --- waiting until every peer has the block ---------------------------------------------------


def _profile_for(peer: FakeGatewayPeer, tmp_path: Path) -> ConnectionProfile:
    """vpp-main with peers of Agg3 (the gateway's), VPPO and Grid."""
    info = peer.peer_info
    peers = {
        f"peer0.{org.lower()}": PeerInfo(f"peer0.{org.lower()}", f"{org}MSP", *_where(info))
        for org in ("Agg3", "VPPO", "Grid")
    }
    return ConnectionProfile(
        path=tmp_path / "connection.json",
        name="fake",
        fabric_version="3.1.1",
        wallet=tmp_path / "wallet",
        organizations={p.mspid: (n,) for n, p in peers.items()},
        peers=peers,
        orderers={},
        channels={"vpp-main": ChannelInfo("vpp-main", tuple(peers), ("market",))},
    )


def _where(info: PeerInfo) -> tuple[str, str, Path]:
    return info.address, info.host, info.tls_ca


def test_wait_for_peers_after_commit(peer: FakeGatewayPeer, tmp_path: Path) -> None:
    identity, signer = make_identity("Agg3MSP")
    profile = _profile_for(peer, tmp_path)
    timeouts = Timeouts(peers=0.3)
    with connect(
        identity, signer, peer=peer.peer_info, profile=profile, timeouts=timeouts
    ) as gateway:
        network = gateway.network("vpp-main")
        assert network.peer_orgs() == ["Agg3MSP", "VPPOMSP", "GridMSP"]
        contract = network.contract("market")
        peer.peer_lag["GridMSP"] = 1  # Grid's peer has not got the next block yet
        with pytest.raises(PeersBehindError) as caught:
            contract.submit("PlaceOrder", "4", wait_for_peers=True)
        err = caught.value
        assert err.behind == {"GridMSP": 1} and err.block_number == 1
        assert json.loads(err.result or b"")["qty"] == 4  # committed all the same
        assert "GridMSP at height 1" in str(err)
        # Grid catches up while we wait: the next submit returns once it has the block.
        threading.Timer(0.1, peer.peer_lag.clear).start()
        assert json.loads(contract.submit("PlaceOrder", "5", wait_for_peers=True))["qty"] == 5
        queried = {
            r.target_organizations[0]
            for m, r in peer.requests
            if m == "Evaluate" and r.target_organizations
        }
        assert queried == {"Agg3MSP", "VPPOMSP", "GridMSP"}
