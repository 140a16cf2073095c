"""Mapping of gRPC status errors (with gateway ErrorDetail) to vpp_gateway exceptions."""

from __future__ import annotations

import grpc
import pytest
from fake_rpc import FakeRpcError
from vpp_gateway import (
    ChaincodeEventsError,
    CommitError,
    CommitStatusError,
    CommitTimeoutError,
    EndorseError,
    ErrorDetail,
    EvaluateError,
    GatewayError,
    MvccConflictError,
    PeerUnreachableError,
    SubmitError,
)
from vpp_gateway.errors import (
    commit_error,
    decode_status_details,
    encode_status_details,
    extract_chaincode_message,
    map_rpc_error,
    rpc_error_facts,
)

PEER = "127.0.0.1:8041"
REFUSAL = "order quantity must be > 0 (field quantity_kwh, value -1)"


def _endorse_failure(*messages: str) -> FakeRpcError:
    return FakeRpcError(
        grpc.StatusCode.ABORTED,
        "failed to endorse transaction, see attached details for more info",
        [ErrorDetail(f"peer{i}:7051", f"Org{i}MSP", m) for i, m in enumerate(messages)],
    )


def test_status_details_round_trip() -> None:
    details = [ErrorDetail("a:1", "AMSP", "one"), ErrorDetail("b:2", "BMSP", "two")]
    raw = encode_status_details(grpc.StatusCode.ABORTED, "top", details)
    assert decode_status_details(raw) == details
    code, message, found = rpc_error_facts(_endorse_failure("x"))
    assert code == grpc.StatusCode.ABORTED
    assert message.startswith("failed to endorse")
    assert found == [ErrorDetail("peer0:7051", "Org0MSP", "x")]


def test_endorse_error_shows_the_chaincode_message() -> None:
    err = map_rpc_error(
        _endorse_failure(f"chaincode response 500, {REFUSAL}"),
        stage="endorse",
        address=PEER,
        tx_id="tx1",
    )
    assert type(err) is EndorseError
    assert str(err) == f"chaincode refused: {REFUSAL}"
    assert err.chaincode_message == REFUSAL
    assert err.chaincode_status == 500
    assert err.tx_id == "tx1"
    assert err.grpc_code == grpc.StatusCode.ABORTED
    assert err.details[0].msp_id == "Org0MSP"


def test_shim_error_messages_are_unwrapped_too() -> None:
    err = map_rpc_error(
        _endorse_failure(f"error in simulation: transaction returned with failure: {REFUSAL}"),
        stage="endorse",
        address=PEER,
    )
    assert str(err) == f"chaincode refused: {REFUSAL}"
    assert err.chaincode_status is None


def test_evaluate_error_from_the_status_message_alone() -> None:
    failure = FakeRpcError(
        grpc.StatusCode.UNKNOWN,
        f"evaluate call to endorser returned error: chaincode response 500, {REFUSAL}",
    )
    err = map_rpc_error(failure, stage="evaluate", address=PEER, tx_id="t")
    assert isinstance(err, EvaluateError) and isinstance(err, EndorseError)
    assert str(err) == f"chaincode refused: {REFUSAL}"


def test_peer_side_refusal_lists_the_details() -> None:
    err = map_rpc_error(
        _endorse_failure("access denied: channel [vpp-main] creator org unknown"),
        stage="endorse",
        address=PEER,
    )
    assert err.chaincode_message is None  # type: ignore[attr-defined]
    text = str(err)
    assert text.startswith("endorsement failed: failed to endorse transaction")
    assert "peer0:7051 (Org0MSP): access denied" in text


def test_unavailable_without_details_is_an_unreachable_peer() -> None:
    failure = FakeRpcError(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses")
    err = map_rpc_error(failure, stage="submit", address=PEER, tx_id="t")
    assert isinstance(err, PeerUnreachableError) and isinstance(err, ConnectionError)
    assert err.address == PEER
    assert "failed to connect" in str(err)


@pytest.mark.parametrize(
    "message",
    [
        "failed to find any endorsing peers for org(s): GridMSP",
        "no combination of peers can be derived which satisfy the endorsement policy: no peer",
        "no peers available to evaluate chaincode market in channel vpp-main",
    ],
)
def test_a_gateway_that_cannot_plan_endorsers_refuses_the_stage(message: str) -> None:
    """The gateway peer answered: it knows no live peer of an organisation the endorsement
    needs (the Grid's peer is down). Fabric says so with UNAVAILABLE and no details; it is
    the endorsement that failed, not our connection (a live fault test met it as
    "gateway peer 127.0.0.1:8041 is unreachable", naming the wrong peer)."""
    failure = FakeRpcError(grpc.StatusCode.UNAVAILABLE, message)
    err = map_rpc_error(failure, stage="endorse", address=PEER, tx_id="t")
    assert type(err) is EndorseError and not isinstance(err, ConnectionError)
    assert err.grpc_code == grpc.StatusCode.UNAVAILABLE and err.chaincode_message is None
    assert message in str(err) and PEER not in str(err)


def test_unavailable_with_details_belongs_to_the_stage() -> None:
    failure = FakeRpcError(
        grpc.StatusCode.UNAVAILABLE,
        "no orderers could successfully process transaction",
        [ErrorDetail("127.0.0.1:7011", "OrdererMSP", "connection refused")],
    )
    err = map_rpc_error(failure, stage="submit", address=PEER, tx_id="t9")
    assert type(err) is SubmitError
    assert "t9" in str(err) and "127.0.0.1:7011 (OrdererMSP)" in str(err)


def test_commit_status_deadline_is_a_commit_timeout() -> None:
    failure = FakeRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
    err = map_rpc_error(failure, stage="commit_status", address=PEER, tx_id="t", timeout=0.5)
    assert isinstance(err, CommitTimeoutError) and isinstance(err, TimeoutError)
    assert (err.tx_id, err.timeout) == ("t", 0.5)
    denied = FakeRpcError(grpc.StatusCode.PERMISSION_DENIED, "no")
    assert type(map_rpc_error(denied, stage="commit_status", address=PEER)) is CommitStatusError
    assert type(map_rpc_error(denied, stage="events", address=PEER)) is ChaincodeEventsError


@pytest.mark.parametrize("code", ["MVCC_READ_CONFLICT", "PHANTOM_READ_CONFLICT"])
def test_conflicts_are_mvcc_errors(code: str) -> None:
    err = commit_error("t", code, 12)
    assert isinstance(err, MvccConflictError) and isinstance(err, CommitError)
    assert (err.tx_id, err.validation_code, err.block_number) == ("t", code, 12)
    assert code in str(err) and "block 12" in str(err)


def test_other_validation_codes_are_plain_commit_errors() -> None:
    err = commit_error("t", "ENDORSEMENT_POLICY_FAILURE", None)
    assert type(err) is CommitError
    assert isinstance(err, GatewayError)


def test_extract_prefers_details_over_the_top_message() -> None:
    found = extract_chaincode_message(
        "chaincode response 500, top",
        [ErrorDetail("a", "b", "chaincode response 403, from detail")],
    )
    assert found == (403, "from detail")
    assert extract_chaincode_message("nothing here") is None


def test_malformed_status_details_do_not_hide_the_error() -> None:
    failure = FakeRpcError(grpc.StatusCode.ABORTED, "boom")
    failure._trailing = (("grpc-status-details-bin", b"\xff\xff garbage"),)
    err = map_rpc_error(failure, stage="endorse", address=PEER)
    assert err.details == () and "boom" in str(err)


def test_identical_peer_messages_are_shown_once() -> None:
    failure = FakeRpcError(
        grpc.StatusCode.ABORTED,
        "failed to evaluate transaction, see attached details for more info",
        [
            ErrorDetail("127.0.0.1:8041", "Agg3MSP", "could not launch chaincode market"),
            ErrorDetail("127.0.0.1:8001", "VPPOMSP", "could not launch chaincode market"),
            ErrorDetail("127.0.0.1:8011", "GridMSP", "access denied"),
        ],
    )
    text = str(map_rpc_error(failure, stage="evaluate", address=PEER))
    assert text.count("could not launch chaincode market") == 1
    assert "127.0.0.1:8041 (Agg3MSP), 127.0.0.1:8001 (VPPOMSP): could not launch" in text
    assert "127.0.0.1:8011 (GridMSP): access denied" in text


def test_peer_reset_after_our_deadline_is_still_a_timeout() -> None:
    """A Go peer may cancel (RST_STREAM) when its copy of the deadline fires first."""
    reset = FakeRpcError(
        grpc.StatusCode.CANCELLED,
        "Stream removed (RST_STREAM (Received RST_STREAM with error code 8))",
    )
    err = map_rpc_error(
        reset, stage="commit_status", address=PEER, tx_id="t", timeout=0.5, deadline_expired=True
    )
    assert isinstance(err, CommitTimeoutError)
    early = map_rpc_error(reset, stage="commit_status", address=PEER, tx_id="t", timeout=0.5)
    assert type(early) is CommitStatusError
