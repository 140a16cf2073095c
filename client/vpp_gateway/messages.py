"""The protobuf messages of the Gateway protocol: building what we sign, parsing what we get.

Pure functions without network access, so the byte layout can be unit
tested. The layout follows what a Fabric v3 peer validates:

    SignedProposal(proposal_bytes=Proposal(
        header=Header(
            channel_header=ChannelHeader(type=ENDORSER_TRANSACTION, channel_id, tx_id,
                                         timestamp, extension=ChaincodeHeaderExtension(cc)),
            signature_header=SignatureHeader(creator=SerializedIdentity, nonce)),
        payload=ChaincodeProposalPayload(
            input=ChaincodeInvocationSpec(ChaincodeSpec(cc, ChaincodeInput([fn, *args]))),
            TransientMap)),
      signature=sign(proposal_bytes))

and ``tx_id = hex(sha256(nonce + creator))``, which the peer recomputes and
compares (a mismatch is BAD_PROPOSAL_TXID).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2
from fabric_protos.orderer import ab_pb2
from fabric_protos.peer import (
    chaincode_pb2,
    proposal_pb2,
    proposal_response_pb2,
    transaction_pb2,
)
from google.protobuf import timestamp_pb2

NONCE_SIZE = 24

Arg = str | bytes | int


def new_nonce() -> bytes:
    """24 random bytes, as the official clients use; uniqueness of tx_id rests on it."""
    return os.urandom(NONCE_SIZE)


def transaction_id(nonce: bytes, creator: bytes) -> str:
    """Fabric's transaction ID: lowercase hex of SHA-256(nonce || serialized creator)."""
    return hashlib.sha256(nonce + creator).hexdigest()


def encode_arg(value: Arg) -> bytes:
    """Chaincode arguments are bytes on the wire; str is UTF-8, int its decimal form.

    Anything else (float, Decimal, None, bool) is refused, because its text
    form is ambiguous and the market works in integer fixed-point units.
    """
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value).encode()
    raise TypeError(f"chaincode arguments must be str, bytes or int, not {type(value).__name__}")


def encode_transient(transient: Mapping[str, str | bytes] | None) -> dict[str, bytes]:
    return {k: v.encode() if isinstance(v, str) else bytes(v) for k, v in (transient or {}).items()}


@dataclass(frozen=True)
class ProposalInfo:
    """Everything a proposal says, decoded (for tests, logging and the fake peer)."""

    tx_id: str
    channel: str
    chaincode: str
    function: str
    args: tuple[bytes, ...]
    creator: bytes
    nonce: bytes
    header_type: int
    timestamp_ns: int
    transient: Mapping[str, bytes] = field(default_factory=dict)

    @property
    def mspid(self) -> str:
        from fabric_protos.msp import identities_pb2

        return identities_pb2.SerializedIdentity.FromString(self.creator).mspid


def build_proposal(
    *,
    channel: str,
    chaincode: str,
    function: str,
    args: Iterable[Arg] = (),
    transient: Mapping[str, str | bytes] | None = None,
    creator: bytes,
    nonce: bytes | None = None,
) -> tuple[str, bytes]:
    """Returns ``(tx_id, proposal_bytes)``; the caller signs ``proposal_bytes``.

    ChaincodeSpec.type is left UNDEFINED, as the official Go client does: a
    v2+ peer ignores it for invocations (the chaincode definition decides).
    """
    nonce = new_nonce() if nonce is None else nonce
    tx_id = transaction_id(nonce, creator)
    timestamp = timestamp_pb2.Timestamp()
    timestamp.GetCurrentTime()
    extension = proposal_pb2.ChaincodeHeaderExtension(
        chaincode_id=chaincode_pb2.ChaincodeID(name=chaincode)
    )
    channel_header = common_pb2.ChannelHeader(
        type=common_pb2.ENDORSER_TRANSACTION,
        timestamp=timestamp,
        channel_id=channel,
        tx_id=tx_id,
        epoch=0,
        extension=extension.SerializeToString(),
    )
    header = common_pb2.Header(
        channel_header=channel_header.SerializeToString(),
        signature_header=common_pb2.SignatureHeader(
            creator=creator, nonce=nonce
        ).SerializeToString(),
    )
    invocation = chaincode_pb2.ChaincodeInvocationSpec(
        chaincode_spec=chaincode_pb2.ChaincodeSpec(
            type=chaincode_pb2.ChaincodeSpec.UNDEFINED,
            chaincode_id=chaincode_pb2.ChaincodeID(name=chaincode),
            input=chaincode_pb2.ChaincodeInput(
                args=[function.encode(), *(encode_arg(a) for a in args)]
            ),
        )
    )
    payload = proposal_pb2.ChaincodeProposalPayload(
        input=invocation.SerializeToString(), TransientMap=encode_transient(transient)
    )
    proposal = proposal_pb2.Proposal(
        header=header.SerializeToString(), payload=payload.SerializeToString()
    )
    return tx_id, proposal.SerializeToString()


def parse_proposal(proposal_bytes: bytes) -> ProposalInfo:
    """Decodes a proposal built by ``build_proposal`` (or any Fabric client)."""
    proposal = proposal_pb2.Proposal.FromString(proposal_bytes)
    header = common_pb2.Header.FromString(proposal.header)
    channel_header = common_pb2.ChannelHeader.FromString(header.channel_header)
    signature_header = common_pb2.SignatureHeader.FromString(header.signature_header)
    extension = proposal_pb2.ChaincodeHeaderExtension.FromString(channel_header.extension)
    payload = proposal_pb2.ChaincodeProposalPayload.FromString(proposal.payload)
    spec = chaincode_pb2.ChaincodeInvocationSpec.FromString(payload.input).chaincode_spec
    args = list(spec.input.args)
    return ProposalInfo(
        tx_id=channel_header.tx_id,
        channel=channel_header.channel_id,
        chaincode=extension.chaincode_id.name or spec.chaincode_id.name,
        function=args[0].decode() if args else "",
        args=tuple(args[1:]),
        creator=signature_header.creator,
        nonce=signature_header.nonce,
        header_type=channel_header.type,
        timestamp_ns=channel_header.timestamp.ToNanoseconds(),
        transient=dict(payload.TransientMap),
    )


@dataclass(frozen=True)
class PreparedInfo:
    """What the gateway's prepared transaction envelope says, decoded before we sign it."""

    tx_id: str
    channel: str
    creator: bytes
    result: bytes


def parse_prepared_transaction(envelope: common_pb2.Envelope) -> PreparedInfo:
    """Decodes the unsigned envelope returned by Endorse, including the chaincode result.

    We sign this envelope, so we read it first: its header must be ours.
    """
    payload = common_pb2.Payload.FromString(envelope.payload)
    channel_header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
    signature_header = common_pb2.SignatureHeader.FromString(payload.header.signature_header)
    transaction = transaction_pb2.Transaction.FromString(payload.data)
    result = b""
    for action in transaction.actions:
        action_payload = transaction_pb2.ChaincodeActionPayload.FromString(action.payload)
        response_payload = proposal_response_pb2.ProposalResponsePayload.FromString(
            action_payload.action.proposal_response_payload
        )
        chaincode_action = proposal_pb2.ChaincodeAction.FromString(response_payload.extension)
        result = chaincode_action.response.payload
        break
    return PreparedInfo(
        tx_id=channel_header.tx_id,
        channel=channel_header.channel_id,
        creator=signature_header.creator,
        result=result,
    )


def commit_status_request(*, channel: str, tx_id: str, creator: bytes) -> bytes:
    """Bytes of a CommitStatusRequest; the caller signs them."""
    return gateway_pb2.CommitStatusRequest(
        channel_id=channel, transaction_id=tx_id, identity=creator
    ).SerializeToString()


def seek_position(start_block: int | None) -> ab_pb2.SeekPosition:
    """A specific block, or the next block to commit when ``start_block`` is None."""
    if start_block is None:
        return ab_pb2.SeekPosition(next_commit=ab_pb2.SeekNextCommit())
    if start_block < 0:
        raise ValueError(f"start_block must be >= 0, got {start_block}")
    return ab_pb2.SeekPosition(specified=ab_pb2.SeekSpecified(number=start_block))


def chaincode_events_request(
    *,
    channel: str,
    chaincode: str,
    creator: bytes,
    start_block: int | None,
    after_tx_id: str | None = None,
) -> bytes:
    """Bytes of a ChaincodeEventsRequest; the caller signs them."""
    return gateway_pb2.ChaincodeEventsRequest(
        channel_id=channel,
        chaincode_id=chaincode,
        identity=creator,
        start_position=seek_position(start_block),
        after_transaction_id=after_tx_id or "",
    ).SerializeToString()
