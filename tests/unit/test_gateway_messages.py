"""Protobuf layout of the Gateway protocol messages built by vpp_gateway."""

from __future__ import annotations

import hashlib
import time

import pytest
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2
from fabric_protos.msp import identities_pb2
from fabric_protos.peer import (
    chaincode_pb2,
    proposal_pb2,
    proposal_response_pb2,
    transaction_pb2,
)
from fake_gateway import make_identity
from vpp_gateway.messages import (
    NONCE_SIZE,
    build_proposal,
    chaincode_events_request,
    commit_status_request,
    encode_arg,
    new_nonce,
    parse_prepared_transaction,
    parse_proposal,
    transaction_id,
)

IDENTITY, SIGNER = make_identity("Agg3MSP", "agg3-trader")
CREATOR = IDENTITY.serialize()


def test_tx_id_is_sha256_of_nonce_then_creator() -> None:
    nonce = bytes(range(24))
    expected = hashlib.sha256(nonce + CREATOR).hexdigest()
    assert transaction_id(nonce, CREATOR) == expected
    assert transaction_id(nonce, CREATOR) != hashlib.sha256(CREATOR + nonce).hexdigest()
    assert len(new_nonce()) == NONCE_SIZE
    assert new_nonce() != new_nonce()


def test_proposal_round_trips() -> None:
    nonce = b"n" * 24
    before = time.time_ns()
    tx_id, raw = build_proposal(
        channel="vpp-main",
        chaincode="market",
        function="SubmitOrder",
        args=["agg3", b"\x00bin", 1500],
        transient={"secret": "price", "blob": b"\x01"},
        creator=CREATOR,
        nonce=nonce,
    )
    info = parse_proposal(raw)
    assert info.tx_id == tx_id == transaction_id(nonce, CREATOR)
    assert info.channel == "vpp-main"
    assert info.chaincode == "market"
    assert info.function == "SubmitOrder"
    assert info.args == (b"agg3", b"\x00bin", b"1500")
    assert info.transient == {"secret": b"price", "blob": b"\x01"}
    assert info.creator == CREATOR and info.nonce == nonce
    assert info.mspid == "Agg3MSP"
    assert info.header_type == common_pb2.ENDORSER_TRANSACTION
    assert before - 10**9 <= info.timestamp_ns <= time.time_ns() + 10**9


def test_proposal_layout_matches_what_a_peer_unpacks() -> None:
    tx_id, raw = build_proposal(
        channel="vpp-main", chaincode="market", function="Version", creator=CREATOR
    )
    proposal = proposal_pb2.Proposal.FromString(raw)
    header = common_pb2.Header.FromString(proposal.header)
    channel_header = common_pb2.ChannelHeader.FromString(header.channel_header)
    assert channel_header.type == common_pb2.ENDORSER_TRANSACTION
    assert channel_header.epoch == 0
    assert channel_header.tx_id == tx_id
    extension = proposal_pb2.ChaincodeHeaderExtension.FromString(channel_header.extension)
    assert extension.chaincode_id.name == "market"
    signature_header = common_pb2.SignatureHeader.FromString(header.signature_header)
    creator = identities_pb2.SerializedIdentity.FromString(signature_header.creator)
    assert creator.mspid == "Agg3MSP" and creator.id_bytes == IDENTITY.cert_pem
    assert len(signature_header.nonce) == 24
    payload = proposal_pb2.ChaincodeProposalPayload.FromString(proposal.payload)
    spec = chaincode_pb2.ChaincodeInvocationSpec.FromString(payload.input).chaincode_spec
    assert spec.chaincode_id.name == "market"
    assert list(spec.input.args) == [b"Version"]
    assert dict(payload.TransientMap) == {}


def test_each_proposal_gets_a_fresh_tx_id() -> None:
    ids = {
        build_proposal(channel="c", chaincode="cc", function="f", creator=CREATOR)[0]
        for _ in range(20)
    }
    assert len(ids) == 20


@pytest.mark.parametrize("bad", [1.5, None, True, object()])
def test_ambiguous_arguments_are_refused(bad: object) -> None:
    with pytest.raises(TypeError):
        encode_arg(bad)  # type: ignore[arg-type]


def test_prepared_transaction_yields_result_and_header() -> None:
    tx_id, raw = build_proposal(
        channel="vpp-main", chaincode="market", function="f", creator=CREATOR
    )
    proposal = proposal_pb2.Proposal.FromString(raw)
    header = common_pb2.Header.FromString(proposal.header)
    action = proposal_pb2.ChaincodeAction(
        response=proposal_response_pb2.Response(status=200, payload=b'{"ok":true}')
    )
    action_payload = transaction_pb2.ChaincodeActionPayload(
        action=transaction_pb2.ChaincodeEndorsedAction(
            proposal_response_payload=proposal_response_pb2.ProposalResponsePayload(
                extension=action.SerializeToString()
            ).SerializeToString()
        )
    )
    tx = transaction_pb2.Transaction(
        actions=[
            transaction_pb2.TransactionAction(
                header=header.signature_header, payload=action_payload.SerializeToString()
            )
        ]
    )
    envelope = common_pb2.Envelope(
        payload=common_pb2.Payload(header=header, data=tx.SerializeToString()).SerializeToString()
    )
    info = parse_prepared_transaction(envelope)
    assert (info.tx_id, info.channel, info.creator) == (tx_id, "vpp-main", CREATOR)
    assert info.result == b'{"ok":true}'


def test_commit_status_and_events_requests() -> None:
    status = gateway_pb2.CommitStatusRequest.FromString(
        commit_status_request(channel="vpp-main", tx_id="abc", creator=CREATOR)
    )
    assert (status.channel_id, status.transaction_id, status.identity) == (
        "vpp-main",
        "abc",
        CREATOR,
    )
    request = gateway_pb2.ChaincodeEventsRequest.FromString(
        chaincode_events_request(
            channel="vpp-main", chaincode="market", creator=CREATOR, start_block=None
        )
    )
    assert request.start_position.WhichOneof("Type") == "next_commit"
    assert request.chaincode_id == "market" and request.identity == CREATOR
    request = gateway_pb2.ChaincodeEventsRequest.FromString(
        chaincode_events_request(
            channel="vpp-main",
            chaincode="market",
            creator=CREATOR,
            start_block=7,
            after_tx_id="t1",
        )
    )
    assert request.start_position.specified.number == 7
    assert request.after_transaction_id == "t1"
    with pytest.raises(ValueError):
        chaincode_events_request(channel="c", chaincode="m", creator=CREATOR, start_block=-1)
