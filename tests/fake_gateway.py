"""Test support: throwaway identities and an in-process fake Gateway peer (no Fabric).

``FakeGatewayPeer`` speaks the real Gateway gRPC protocol over TLS on
127.0.0.1 and checks what a peer checks (signatures, low S, transaction ID
derivation), but runs "chaincode" as plain Python callables and commits each
submitted transaction into its own block at once. It lets vpp_gateway and
its users (vppctl) test the client end to end without a Fabric network.
Failures look as the real gateway reports them (status codes, ErrorDetail,
"chaincode response 500, <message>").

A vpp_shim contract can serve as a handler::

    ledger = MemoryLedger()
    peer = FakeGatewayPeer({"market": lambda inv: ledger.invoke(
        contract, Caller(inv.mspid, inv.cert_pem), inv.function,
        *inv.str_args, transient=inv.transient)})
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
from cryptography import x509
from fabric_protos.common import common_pb2, ledger_pb2
from fabric_protos.gateway import gateway_pb2, gateway_pb2_grpc
from fabric_protos.msp import identities_pb2
from fabric_protos.peer import (
    chaincode_event_pb2,
    proposal_pb2,
    proposal_response_pb2,
    transaction_pb2,
)
from vpp_gateway.errors import ErrorDetail, encode_status_details
from vpp_gateway.identity import Identity, Signer, verify_signature
from vpp_gateway.messages import ProposalInfo, parse_proposal, transaction_id
from vpp_gateway.profile import PeerInfo
from vpp_network.issuer import CertificateAuthority, self_signed


def make_identity(mspid: str = "Org1MSP", common_name: str = "user1") -> tuple[Identity, Signer]:
    """A throwaway signing identity with a self-signed P-256 certificate."""
    cert_pem, key_pem = self_signed(common_name)
    return Identity(mspid, cert_pem), Signer.from_pem(key_pem)


@dataclass
class FakeInvocation:
    """What a fake chaincode handler sees of one proposal."""

    proposal: ProposalInfo
    mspid: str
    cert_pem: bytes
    events: list[tuple[str, bytes]] = field(default_factory=list)

    @property
    def tx_id(self) -> str:
        return self.proposal.tx_id

    @property
    def function(self) -> str:
        return self.proposal.function

    @property
    def args(self) -> tuple[bytes, ...]:
        return self.proposal.args

    @property
    def str_args(self) -> list[str]:
        return [a.decode() for a in self.proposal.args]

    @property
    def transient(self) -> Mapping[str, bytes]:
        return self.proposal.transient

    def set_event(self, name: str, payload: bytes) -> None:
        """Emits a chaincode event (Fabric keeps only the last one per transaction)."""
        self.events[:] = [(name, payload)]


Handler = Callable[[FakeInvocation], bytes | str | None]


@dataclass(frozen=True)
class _Status(grpc.Status):  # type: ignore[misc]
    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, bytes], ...]


@dataclass
class _Block:
    number: int
    tx_id: str
    validation_code: int
    chaincode: str
    event: tuple[str, bytes] | None


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, message: str, details: Sequence[ErrorDetail] = ()):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = list(details)


class FakeGatewayPeer(gateway_pb2_grpc.GatewayServicer):
    """An in-process Gateway peer over TLS; use as a context manager.

    ``commit_codes`` (validation code names) are applied to the next
    submitted transactions in order, default VALID; ``commit_delay`` delays
    every commit; ``endorse_mismatches`` makes the next Endorse calls fail as
    disagreeing endorsers do; ``break_event_streams()`` drops all event streams with
    UNAVAILABLE, as a restarting peer does.

    ``submit_outcomes`` plays the ordering service for the next Submit calls:
    ``"already_processed"`` orders the transaction but answers as Fabric's
    gateway does when two of four SmartBFT orderers say "request already
    processed" (UNAVAILABLE, quorum not reached); ``"lost"`` answers the
    same way without ordering it; ``"late"`` answers so and orders it
    ``commit_delay`` (default 0.3) seconds later.
    """

    def __init__(
        self,
        handlers: Mapping[str, Handler],
        *,
        mspid: str = "Org1MSP",
        host: str = "peer0.org1.test",
        channel: str = "vpp-main",
    ) -> None:
        self.handlers = dict(handlers)
        self.mspid = mspid
        self.host = host
        self.channel = channel
        self.commit_codes: deque[str] = deque()
        self.commit_delay = 0.0
        self.endorse_mismatches = 0  # the next N Endorse calls fail as disagreeing endorsers do
        self.submit_outcomes: deque[str] = deque()
        # Blocks another org's peer is behind, as qscc GetChainInfo targeted at that org says.
        self.peer_lag: dict[str, int] = {}
        self.requests: list[tuple[str, Any]] = []
        self.blocks: list[_Block] = []  # block n is blocks[n - 1]; block 0 is genesis
        self._endorsed: dict[str, tuple[str, tuple[str, bytes] | None]] = {}
        self._cond = threading.Condition()
        self._stream_epoch = 0
        self._tmp = tempfile.TemporaryDirectory(prefix="vpp-fake-peer-")
        ca = CertificateAuthority.create("fake-tls-ca")
        self._ca_path = Path(self._tmp.name) / "tlsca.pem"
        self._ca_path.write_bytes(ca.cert_pem)
        self._server_cert = ca.issue(host, ous=(), dns_names=[host])
        self._server: grpc.Server | None = None
        self.port = 0

    # -- lifecycle -------------------------------------------------------

    def start(self) -> FakeGatewayPeer:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        gateway_pb2_grpc.add_GatewayServicer_to_server(self, server)
        credentials = grpc.ssl_server_credentials([(self._server_cert[1], self._server_cert[0])])
        self.port = server.add_secure_port("127.0.0.1:0", credentials)
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self.break_event_streams()
            self._server.stop(grace=None)
            self._server = None
        self._tmp.cleanup()

    def __enter__(self) -> FakeGatewayPeer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def peer_info(self) -> PeerInfo:
        return PeerInfo(
            name=self.host,
            mspid=self.mspid,
            address=self.address,
            host=self.host,
            tls_ca=self._ca_path,
        )

    @property
    def height(self) -> int:
        return len(self.blocks) + 1

    def break_event_streams(self) -> None:
        with self._cond:
            self._stream_epoch += 1
            self._cond.notify_all()

    # -- helpers ---------------------------------------------------------

    def _abort(self, context: grpc.ServicerContext, failure: _Abort) -> None:
        raw = encode_status_details(failure.code, failure.message, failure.details)
        context.abort_with_status(
            _Status(failure.code, failure.message, (("grpc-status-details-bin", raw),))
        )

    def _detail(self, message: str) -> ErrorDetail:
        return ErrorDetail(self.address, self.mspid, message)

    def _check_signed(self, data: bytes, creator: bytes, signature: bytes) -> str:
        """Returns the creator's MSP ID after checking the signature as an MSP would."""
        identity = identities_pb2.SerializedIdentity.FromString(creator)
        cert = x509.load_pem_x509_certificate(identity.id_bytes)
        if not verify_signature(cert.public_key(), data, signature):
            raise _Abort(grpc.StatusCode.PERMISSION_DENIED, "signature verification failed")
        return identity.mspid

    def _run(self, signed: proposal_pb2.SignedProposal, stage: str) -> tuple[FakeInvocation, bytes]:
        info = parse_proposal(signed.proposal_bytes)
        mspid = self._check_signed(signed.proposal_bytes, info.creator, signed.signature)
        if transaction_id(info.nonce, info.creator) != info.tx_id:
            raise _Abort(grpc.StatusCode.FAILED_PRECONDITION, "invalid txID")
        if info.header_type != common_pb2.ENDORSER_TRANSACTION:
            raise _Abort(grpc.StatusCode.FAILED_PRECONDITION, "invalid header type")
        cert = identities_pb2.SerializedIdentity.FromString(info.creator).id_bytes
        invocation = FakeInvocation(info, mspid, cert)
        if info.chaincode == "qscc" and info.function == "GetChainInfo":
            return invocation, ledger_pb2.BlockchainInfo(height=self.height).SerializeToString()
        handler = self.handlers.get(info.chaincode)
        if handler is None or info.channel != self.channel:
            message = (
                f"make sure the chaincode {info.chaincode} has been successfully defined "
                f"on channel {info.channel} and try again"
            )
            raise _Abort(grpc.StatusCode.ABORTED, message, [self._detail(message)])
        try:
            result = handler(invocation)
        except Exception as exc:
            message = f"chaincode response 500, {getattr(exc, 'wire', exc)}"  # "CODE: text"
            code = grpc.StatusCode.UNKNOWN if stage == "evaluate" else grpc.StatusCode.ABORTED
            top = (
                f"evaluate call to endorser returned error: {message}"
                if stage == "evaluate"
                else "failed to endorse transaction, see attached details for more info"
            )
            raise _Abort(code, top, [self._detail(message)]) from exc
        if result is None:
            result = b""
        return invocation, result.encode() if isinstance(result, str) else bytes(result)

    # -- Gateway service ---------------------------------------------------

    def Evaluate(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        self.requests.append(("Evaluate", request))
        try:
            _, result = self._run(request.proposed_transaction, "evaluate")
        except _Abort as failure:
            self._abort(context, failure)
        lag = self.peer_lag.get(
            request.target_organizations[0] if request.target_organizations else ""
        )
        if lag and parse_proposal(request.proposed_transaction.proposal_bytes).chaincode == "qscc":
            result = ledger_pb2.BlockchainInfo(height=self.height - lag).SerializeToString()
        return gateway_pb2.EvaluateResponse(
            result=proposal_response_pb2.Response(status=200, payload=result)
        )

    def Endorse(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        self.requests.append(("Endorse", request))
        if self.endorse_mismatches > 0:
            # What the real gateway says when two endorsers return different results.
            self.endorse_mismatches -= 1
            self._abort(
                context,
                _Abort(
                    grpc.StatusCode.ABORTED,
                    "failed to collect enough transaction endorsements, "
                    "see attached details for more info",
                    [self._detail("ProposalResponsePayloads do not match")],
                ),
            )
        try:
            invocation, result = self._run(request.proposed_transaction, "endorse")
        except _Abort as failure:
            self._abort(context, failure)
        proposal = proposal_pb2.Proposal.FromString(request.proposed_transaction.proposal_bytes)
        header = common_pb2.Header.FromString(proposal.header)
        event = invocation.events[-1] if invocation.events else None
        self._endorsed[invocation.tx_id] = (invocation.proposal.chaincode, event)
        chaincode_action = proposal_pb2.ChaincodeAction(
            response=proposal_response_pb2.Response(status=200, payload=result),
            events=chaincode_event_pb2.ChaincodeEvent(
                chaincode_id=invocation.proposal.chaincode,
                tx_id=invocation.tx_id,
                event_name=event[0],
                payload=event[1],
            ).SerializeToString()
            if event
            else b"",
        )
        response_payload = proposal_response_pb2.ProposalResponsePayload(
            extension=chaincode_action.SerializeToString()
        )
        without_transient = proposal_pb2.ChaincodeProposalPayload.FromString(proposal.payload)
        without_transient.ClearField("TransientMap")
        action_payload = transaction_pb2.ChaincodeActionPayload(
            chaincode_proposal_payload=without_transient.SerializeToString(),
            action=transaction_pb2.ChaincodeEndorsedAction(
                proposal_response_payload=response_payload.SerializeToString()
            ),
        )
        transaction = transaction_pb2.Transaction(
            actions=[
                transaction_pb2.TransactionAction(
                    header=header.signature_header, payload=action_payload.SerializeToString()
                )
            ]
        )
        payload = common_pb2.Payload(header=header, data=transaction.SerializeToString())
        return gateway_pb2.EndorseResponse(
            prepared_transaction=common_pb2.Envelope(payload=payload.SerializeToString())
        )

    def Submit(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        self.requests.append(("Submit", request))
        envelope = request.prepared_transaction
        if not envelope.signature:
            self._abort(
                context,
                _Abort(grpc.StatusCode.INVALID_ARGUMENT, "prepared transaction must be signed"),
            )
        payload = common_pb2.Payload.FromString(envelope.payload)
        creator = common_pb2.SignatureHeader.FromString(payload.header.signature_header).creator
        try:
            self._check_signed(envelope.payload, creator, envelope.signature)
        except _Abort as failure:
            self._abort(context, failure)
        tx_id = common_pb2.ChannelHeader.FromString(payload.header.channel_header).tx_id
        chaincode, event = self._endorsed.pop(tx_id, ("", None))
        code_name = self.commit_codes.popleft() if self.commit_codes else "VALID"
        code = transaction_pb2.TxValidationCode.Value(code_name)
        outcome = self.submit_outcomes.popleft() if self.submit_outcomes else "ok"

        def commit() -> None:
            with self._cond:
                number = self.height
                self.blocks.append(_Block(number, tx_id, code, chaincode, event))
                self._cond.notify_all()

        if outcome == "already_processed":
            commit()
        elif outcome == "late":
            threading.Timer(self.commit_delay or 0.3, commit).start()
        elif outcome == "ok":
            if self.commit_delay > 0:
                threading.Timer(self.commit_delay, commit).start()
            else:
                commit()
        if outcome != "ok":
            self._abort(context, self._quorum_failure())
        return gateway_pb2.SubmitResponse()

    def _quorum_failure(self) -> _Abort:
        """What Fabric's gateway answers when 2 of 4 BFT orderers already ordered the request."""
        info = "failed to submit request: request already processed"
        return _Abort(
            grpc.StatusCode.UNAVAILABLE,
            "insufficient number of orderers could successfully process transaction "
            "to satisfy quorum requirement",
            [
                ErrorDetail(
                    f"127.0.0.1:{port}",
                    "OrdererMSP",
                    "received unsuccessful response from orderer: "
                    f"status=SERVICE_UNAVAILABLE, info={info}",
                )
                for port in (37021, 37031)
            ],
        )

    def CommitStatus(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        self.requests.append(("CommitStatus", request))
        inner = gateway_pb2.CommitStatusRequest.FromString(request.request)
        try:
            self._check_signed(request.request, inner.identity, request.signature)
        except _Abort as failure:
            self._abort(context, failure)
        with self._cond:
            while context.is_active():
                for block in self.blocks:
                    if block.tx_id == inner.transaction_id:
                        return gateway_pb2.CommitStatusResponse(
                            result=block.validation_code, block_number=block.number
                        )
                self._cond.wait(0.05)
        return gateway_pb2.CommitStatusResponse()

    def ChaincodeEvents(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:  # noqa: N802
        self.requests.append(("ChaincodeEvents", request))
        inner = gateway_pb2.ChaincodeEventsRequest.FromString(request.request)
        try:
            self._check_signed(request.request, inner.identity, request.signature)
        except _Abort as failure:
            self._abort(context, failure)
        position = inner.start_position
        with self._cond:
            epoch = self._stream_epoch
            number = (
                position.specified.number
                if position.WhichOneof("Type") == "specified"
                else self.height
            )
        skipping = bool(inner.after_transaction_id)
        while context.is_active():
            with self._cond:
                while context.is_active() and epoch == self._stream_epoch and number >= self.height:
                    self._cond.wait(0.05)
                if epoch != self._stream_epoch:
                    context.abort(grpc.StatusCode.UNAVAILABLE, "peer is restarting")
                if not context.is_active():
                    return
                block = self.blocks[number - 1] if number > 0 else None
            number += 1
            if block is None:
                continue
            if skipping:
                skipping = block.tx_id != inner.after_transaction_id
                continue
            valid = block.validation_code == transaction_pb2.VALID
            if valid and block.event and block.chaincode == inner.chaincode_id:
                yield gateway_pb2.ChaincodeEventsResponse(
                    block_number=block.number,
                    events=[
                        chaincode_event_pb2.ChaincodeEvent(
                            chaincode_id=block.chaincode,
                            tx_id=block.tx_id,
                            event_name=block.event[0],
                            payload=block.event[1],
                        )
                    ],
                )

    def wait_for_block(self, number: int, timeout: float = 5.0) -> None:
        """Blocks until block ``number`` is committed (for tests with commit_delay)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.height <= number:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"block {number} not committed within {timeout} s")
                self._cond.wait(left)
