"""vpp_gateway against the live Fabric network (peers' Gateway service, real TLS and MSPs).

Generic on purpose: they mostly need only the ``market`` chaincode's
``Version`` function. A read-only function submitted as a transaction still
goes through endorse -> order -> commit, so ``submit("Version")`` exercises
the whole write path without depending on the market's business rules. The
event test makes its own event (it clears an empty test period), so it
needs no history on the ledger.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from helpers import OPERATOR, open_test_period
from vpp_gateway import (
    ConnectionProfile,
    EndorseError,
    EvaluateError,
    Gateway,
    PeerInfo,
    PeerUnreachableError,
    Timeouts,
    connect,
    connect_as,
    load_msp_identity,
    load_profile,
    load_wallet_identity,
)
from vpp_gateway.errors import CommitTimeoutError

pytestmark = pytest.mark.network

CHANNEL = "vpp-main"
CHAINCODE = "market"
IDENTITIES = ["agg3-trader", "agg3-meter1", "agg1-admin", "vppo-admin", "grid-admin"]


@pytest.fixture(scope="module")
def profile(network: object) -> ConnectionProfile:
    """The network's profile. The session fixture `network` has brought the network up,
    so a profile that cannot be loaded is a failure, not a reason to skip."""
    return load_profile()


@pytest.fixture(scope="module")
def trader(profile: ConnectionProfile) -> Iterator[Gateway]:
    with connect_as("agg3-trader", profile=profile) as gateway:
        yield gateway


def test_block_height_from_qscc(trader: Gateway) -> None:
    assert trader.network(CHANNEL).block_height() >= 1


@pytest.mark.parametrize("name", IDENTITIES)
def test_evaluate_as_each_kind_of_identity(profile: ConnectionProfile, name: str) -> None:
    with connect_as(name, profile=profile) as gateway:
        version = json.loads(gateway.network(CHANNEL).contract(CHAINCODE).evaluate("Version"))
    assert version["name"] == CHAINCODE


def test_submit_commits_for_different_identities(profile: ConnectionProfile) -> None:
    for name in ("agg3-trader", "vppo-admin"):
        with connect_as(name, profile=profile) as gateway:
            network = gateway.network(CHANNEL)
            proposal = network.contract(CHAINCODE).new_proposal("Version")
            commit = proposal.endorse().submit()
            status = commit.wait(timeout=60)
            assert status.valid, status
            assert json.loads(commit.result)["name"] == CHAINCODE
            again = network.commit_status(proposal.tx_id, timeout=10)
            assert again.block_number == status.block_number


def test_unknown_function_surfaces_the_chaincode_message(trader: Gateway) -> None:
    contract = trader.network(CHANNEL).contract(CHAINCODE)
    with pytest.raises(EndorseError) as caught:
        contract.submit("NoSuchFunction", "x")
    err = caught.value
    assert err.chaincode_message, str(err)
    assert "NoSuchFunction" in err.chaincode_message
    assert err.code == "UNKNOWN_FUNCTION"  # the refusal code survives the peer's Gateway
    assert str(err) == f"chaincode refused: {err.chaincode_message} [UNKNOWN_FUNCTION]"
    with pytest.raises(EvaluateError) as caught_eval:
        contract.evaluate("NoSuchFunction")
    assert str(caught_eval.value).startswith("chaincode refused: ")


def test_unknown_chaincode_is_a_peer_refusal(trader: Gateway) -> None:
    with pytest.raises(EvaluateError) as caught:
        trader.network(CHANNEL).contract("no-such-chaincode").evaluate("X")
    assert caught.value.chaincode_message is None
    assert "no-such-chaincode" in str(caught.value)


def test_commit_wait_times_out_cleanly(trader: Gateway) -> None:
    network = trader.network(CHANNEL)
    started = time.monotonic()
    with pytest.raises(CommitTimeoutError) as caught:
        network.contract(CHAINCODE).submit("Version", commit_timeout=0.001)
    assert time.monotonic() - started < 30
    # The transaction was submitted all the same and commits later.
    assert network.commit_status(caught.value.tx_id, timeout=60).valid


def test_unknown_transaction_commit_status_times_out(trader: Gateway) -> None:
    with pytest.raises(CommitTimeoutError):
        trader.network(CHANNEL).commit_status("0" * 64, timeout=0.5)


def test_events_match_committed_transactions(
    trader: Gateway, finished_afterwards: list[str]
) -> None:
    with connect_as(OPERATOR) as operator:
        contract = operator.network(CHANNEL).contract(CHAINCODE)
        period = open_test_period(contract)["period"]
        # Settled and its day closed when the test ends: left cleared (or settled in a day
        # not closed), it would keep every later day from closing (CloseDay: NOT_READY).
        finished_afterwards.append(period)
        contract.submit("ClosePeriod", period, wait_for_peers=True)  # Grid endorses next
        commit = contract.new_proposal("ClearPeriod", period).endorse().submit()
        cleared = commit.wait(60)
    network = trader.network(CHANNEL)
    with network.chaincode_events(CHAINCODE, start_block=0, timeout=3) as stream:
        events = list(stream)
    ours = [e for e in events if e.tx_id == commit.tx_id]
    assert [(e.event_name, e.block_number) for e in ours] == [
        ("PeriodCleared", cleared.block_number)
    ]
    assert json.loads(ours[0].payload)["period"] == period
    for event in events[-20:]:
        status = network.commit_status(event.tx_id, timeout=10)
        assert status.valid and status.block_number == event.block_number
    blocks = [e.block_number for e in events]
    assert blocks == sorted(blocks)
    assert len({e.tx_id for e in events}) == len(events)


def test_event_stream_idle_timeout(trader: Gateway) -> None:
    started = time.monotonic()
    with trader.network(CHANNEL).chaincode_events(CHAINCODE, timeout=0.5) as stream:
        list(stream)  # whatever commits meanwhile; it must end on its own
    assert time.monotonic() - started < 15


def test_msp_folder_identity_works(profile: ConnectionProfile) -> None:
    msp = (
        profile.path.parent
        / "crypto/peerOrganizations/vppo.vpp.local/users/Admin@vppo.vpp.local/msp"
    )
    # network-up enrols the VPPO admin from its CA into this folder: missing is a failure
    assert msp.is_dir(), f"no MSP folder of the VPPO admin at {msp}"
    identity, signer = load_msp_identity(msp, "VPPOMSP")
    with connect(identity, signer, profile=profile) as gateway:
        assert gateway.peer.mspid == "VPPOMSP"
        assert gateway.network(CHANNEL).block_height() >= 1


def test_unreachable_peer(profile: ConnectionProfile) -> None:
    real = profile.gateway_peer("Agg3MSP")
    dead = PeerInfo(real.name, real.mspid, "127.0.0.1:1", real.host, real.tls_ca)
    entry_gateway = connect_as("agg3-trader", profile=profile, peer=dead, timeouts=Timeouts(2))
    with entry_gateway as gateway, pytest.raises(PeerUnreachableError):
        gateway.network(CHANNEL).contract(CHAINCODE).evaluate("Version")


def test_offline_signing_and_a_shared_connection(profile: ConnectionProfile) -> None:
    """The key stays outside the gateway (a hardware key's flow); a second identity of
    the same org rides on the same gRPC channel; wait_for_peers reaches every org."""
    key_holder = load_wallet_identity("agg3-trader", profile.wallet)
    with connect(key_holder.identity, None, profile=profile) as gateway:
        sign = key_holder.signer.sign  # the separate key object
        proposal = gateway.network(CHANNEL).contract(CHAINCODE).new_proposal("Version")
        transaction = proposal.with_signature(sign(proposal.bytes_to_sign())).endorse()
        commit = transaction.with_signature(sign(transaction.bytes_to_sign())).submit()
        commit = commit.with_signature(sign(commit.bytes_to_sign()))
        assert commit.wait(60).valid
        meter = load_wallet_identity("agg3-meter1", profile.wallet)
        with connect(
            meter.identity, meter.signer, connection=gateway.connection, profile=profile
        ) as shared:
            network = shared.network(CHANNEL)
            assert len(network.peer_orgs()) == len(profile.channel(CHANNEL).peers)
            contract = network.contract(CHAINCODE)
            result = contract.submit("Version", wait_for_peers=True)
            assert json.loads(result)["name"] == CHAINCODE
            later = contract.submit_async("Version")
            block = later.wait(60).block_number
            network.wait_for_peers(later)
            for org in network.peer_orgs():
                assert network.block_height(org=org) > block, org
