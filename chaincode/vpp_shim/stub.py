"""The Stub a contract sees under a real peer: each ledger call is one request/reply on the stream.

A :class:`PeerStub` lives for exactly one transaction, identified by
``(channel_id, tx_id)``. It never touches the gRPC stream itself: it hands
each request to a :class:`Requester` (the stream's session), which writes it
through the session's single writer and blocks until the peer's RESPONSE or
ERROR for this transaction is routed back. One transaction has at most one
request in flight, exactly like Fabric's Go shim, because the peer answers by
``(channel_id, txid)`` only.

Everything the peer tells us about the transaction besides the arguments
(creator, transient data, timestamp) comes from the SignedProposal carried by
the TRANSACTION message; :func:`decode_proposal` unpacks it.

Round trips are what a Python chaincode pays most for (benchmarks:
docs/benchmarks.md), so when the peer offers them (READY's
ChaincodeAdditionalParams, Fabric 3.x) writes are batched and many keys are
read at once, as Fabric's Go shim does: ``put_state``/``del_state`` only record
the write, :meth:`PeerStub.flush_writes` sends them in WRITE_BATCH_STATE
messages before the transaction completes, and ``get_state_multiple`` asks
for up to the peer's limit of keys per GET_STATE_MULTIPLE. Nothing a
contract can observe changes: Fabric never shows a transaction its own
writes, and the peer applies a batch exactly like the single calls.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from fabric_protos.common import common_pb2
from fabric_protos.ledger.queryresult import kv_query_result_pb2
from fabric_protos.msp import identities_pb2
from fabric_protos.peer import (
    chaincode_event_pb2,
    chaincode_pb2,
    chaincode_shim_pb2,
    proposal_pb2,
    proposal_response_pb2,
)
from google.protobuf.message import DecodeError, Message

from vpp_shim.api import (
    MAX_UNICODE,
    VALIDATION_PARAMETER,
    Caller,
    ChaincodeError,
    HistoryEntry,
    Response,
    create_composite_key,
)
from vpp_shim.codes import Code

log = logging.getLogger(__name__)

MsgType = chaincode_shim_pb2.ChaincodeMessage
ChaincodeMessage = chaincode_shim_pb2.ChaincodeMessage

# Go's shim sends this instead of an empty range start: "" would also match the
# composite-key namespace (keys starting with U+0000), which plain range
# queries must never see.
EMPTY_KEY_SUBSTITUTE = "\x01"
COMPOSITE_KEY_NAMESPACE = "\x00"

T = TypeVar("T")
_PUT = chaincode_shim_pb2.WriteRecord.PUT_STATE
_DEL = chaincode_shim_pb2.WriteRecord.DEL_STATE
_PUT_METADATA = chaincode_shim_pb2.WriteRecord.PUT_STATE_METADATA


class ShimError(Exception):
    """The shim could not talk to the peer (not the contract's fault); the transaction fails."""


class StreamClosedError(ShimError):
    """The peer's stream ended while a transaction still needed it."""


class PeerTimeoutError(ShimError):
    """The peer did not answer a request in time (it has most likely abandoned the transaction)."""


class PeerError(ChaincodeError):
    """The peer refused a ledger request (ERROR reply); fails the transaction with its message.

    A ChaincodeError subclass so a contract that does not catch it fails the
    transaction with the peer's own explanation, as with any other refusal.
    """

    def __init__(self, message: str) -> None:
        super().__init__(Code.PEER_REFUSED, message)


class Requester(Protocol):
    """What a stub needs from its stream: send one request for a transaction, wait for the reply."""

    def request(
        self, channel_id: str, txid: str, msg_type: int, payload: bytes
    ) -> chaincode_shim_pb2.ChaincodeMessage: ...


@dataclass(frozen=True)
class PeerFeatures:
    """What the peer offered in READY: batch sizes, 0 meaning "not supported, one call per key"."""

    write_batch: int = 0
    get_multiple: int = 0

    @classmethod
    def from_ready(cls, payload: bytes) -> PeerFeatures:
        """Decodes READY's ChaincodeAdditionalParams like the Go shim (at least 100 per batch)."""
        if not payload:
            return cls()
        try:
            params = chaincode_pb2.ChaincodeAdditionalParams.FromString(payload)
        except DecodeError:
            return cls()
        return cls(
            write_batch=max(params.max_size_write_batch, 100) if params.use_write_batch else 0,
            get_multiple=(
                max(params.max_size_get_multiple_keys, 100) if params.use_get_multiple_keys else 0
            ),
        )


@dataclass(frozen=True)
class ProposalInfo:
    """The parts of a SignedProposal a contract may see."""

    caller: Caller
    transient: Mapping[str, bytes] = field(default_factory=dict)
    timestamp_ns: int = 0


_VALID_HEADER_TYPES = (common_pb2.HeaderType.ENDORSER_TRANSACTION, common_pb2.HeaderType.CONFIG)


def decode_proposal(signed: proposal_pb2.SignedProposal | None) -> ProposalInfo:
    """Unpacks creator, transient map and timestamp from the proposal the peer forwards.

    The nesting is Fabric's: SignedProposal.proposal_bytes -> Proposal;
    Proposal.header -> Header; Header.channel_header -> ChannelHeader
    (timestamp); Header.signature_header -> SignatureHeader.creator ->
    SerializedIdentity (mspid, PEM certificate); Proposal.payload ->
    ChaincodeProposalPayload (TransientMap). Raises ValueError on bytes that
    do not decode, so the session can refuse the transaction.
    """
    if signed is None or not signed.proposal_bytes:
        # The peer always sends a proposal for user chaincode; tolerate its absence
        # (nothing to identify the caller with) rather than guessing.
        return ProposalInfo(caller=Caller(mspid="", cert_pem=b""))
    try:
        proposal = proposal_pb2.Proposal.FromString(signed.proposal_bytes)
        if not proposal.header:
            raise ValueError("proposal has no header")
        header = common_pb2.Header.FromString(proposal.header)
        channel_header = common_pb2.ChannelHeader.FromString(header.channel_header)
        if channel_header.type not in _VALID_HEADER_TYPES:
            raise ValueError(f"unexpected channel header type {channel_header.type}")
        signature_header = common_pb2.SignatureHeader.FromString(header.signature_header)
        creator = identities_pb2.SerializedIdentity.FromString(signature_header.creator)
        payload = proposal_pb2.ChaincodeProposalPayload.FromString(proposal.payload)
    except DecodeError as exc:
        raise ValueError(f"cannot decode the signed proposal: {exc}") from exc
    ts = channel_header.timestamp
    return ProposalInfo(
        caller=Caller(mspid=creator.mspid, cert_pem=bytes(creator.id_bytes)),
        transient=dict(payload.TransientMap),
        timestamp_ns=ts.seconds * 1_000_000_000 + ts.nanos,
    )


def _decode_args(args: list[bytes]) -> tuple[str, list[str]]:
    """Function name and string parameters, as Go's GetFunctionAndParameters splits them."""
    texts = []
    for index, arg in enumerate(args):
        try:
            texts.append(arg.decode("utf-8"))
        except UnicodeDecodeError:
            raise ChaincodeError(
                Code.BAD_ARGUMENT, f"argument {index} is not valid UTF-8"
            ) from None
    if not texts:
        return "", []
    return texts[0], texts[1:]


def _require_collection(collection: str) -> None:
    # An empty collection would silently turn a private call into a public one.
    if not collection:
        raise ChaincodeError(Code.BAD_ARGUMENT, "private data call without a collection name")


def _validate_simple_key(key: str) -> None:
    if key.startswith(COMPOSITE_KEY_NAMESPACE):
        raise ChaincodeError(
            Code.BAD_ARGUMENT,
            f"range key {key!r} starts with U+0000, which is reserved for composite keys",
        )


class PeerStub:
    """Implements :class:`vpp_shim.api.Stub` for one transaction, against the peer.

    Besides the Stub protocol it exposes ``args`` (the raw arguments) and
    ``is_init`` (the peer sent INIT rather than TRANSACTION).
    """

    def __init__(
        self,
        requester: Requester,
        *,
        channel_id: str,
        tx_id: str,
        args: list[bytes],
        proposal: proposal_pb2.SignedProposal | None = None,
        chaincode_name: str = "",
        is_init: bool = False,
        features: PeerFeatures | None = None,
    ) -> None:
        self._requester = requester
        self._features = features or PeerFeatures()
        # Batched writes, last one per (kind, collection, key) wins (as in Fabric's simulator):
        # a key's value and its metadata are separate entries, and a private key ("" is the
        # public state) is another key than the public one. None = batching off.
        self._writes: dict[tuple[bool, str, str], chaincode_shim_pb2.WriteRecord] | None = (
            {} if self._features.write_batch else None
        )
        self.channel_id = channel_id
        self.tx_id = tx_id
        self.args = [bytes(a) for a in args]
        self.is_init = is_init
        self._chaincode_name = chaincode_name
        info = decode_proposal(proposal)
        self.caller = info.caller
        self.transient = info.transient
        self.timestamp_ns = info.timestamp_ns
        self.function, self.params = _decode_args(self.args)
        self.event: chaincode_event_pb2.ChaincodeEvent | None = None
        # One request in flight per transaction: the peer routes replies by txid only.
        self._lock = threading.Lock()
        self._finished = False

    # -- plumbing ---------------------------------------------------------

    def finish(self) -> None:
        """Ends the transaction: later calls (e.g. a leaked iterator) must not reach the peer."""
        self._finished = True

    def flush_writes(self) -> None:
        """Sends the batched writes, at most the peer's batch size per WRITE_BATCH_STATE.

        Called once the contract has succeeded, before COMPLETED (a failed
        transaction's writes are discarded anyway, so they are never sent).
        A peer refusal raises PeerError and fails the transaction.
        """
        if not self._writes:
            return
        records = list(self._writes.values())
        self._writes = {}
        size = self._features.write_batch
        for start in range(0, len(records), size):
            batch = chaincode_shim_pb2.WriteBatchState(rec=records[start : start + size])
            self._call(MsgType.WRITE_BATCH_STATE, batch)

    def _exchange(
        self, msg_type: int, request: Message, *, blocking: bool = True
    ) -> ChaincodeMessage:
        if self._finished:
            raise ShimError(f"transaction {self.tx_id[:8]} is already complete")
        if not self._lock.acquire(blocking=blocking):
            raise ShimError("another request of this transaction is in flight")
        try:
            return self._requester.request(
                self.channel_id, self.tx_id, msg_type, request.SerializeToString()
            )
        finally:
            self._lock.release()

    def _call(self, msg_type: int, request: Message, *, blocking: bool = True) -> bytes:
        """One request; the RESPONSE payload, or PeerError with the peer's message."""
        reply = self._exchange(msg_type, request, blocking=blocking)
        if reply.type == MsgType.RESPONSE:
            return bytes(reply.payload)
        name = MsgType.Type.Name(msg_type)
        if reply.type == MsgType.ERROR:
            raise PeerError(reply.payload.decode("utf-8", errors="replace") or f"{name} failed")
        raise ShimError(
            f"peer answered {name} with {MsgType.Type.Name(reply.type)}, expected RESPONSE or ERROR"
        )

    def _query(self, msg_type: int, request: Message, decode: Callable[[bytes], T]) -> Iterator[T]:
        """Iterates a peer-side query page by page (QUERY_STATE_NEXT while has_more).

        The peer frees its iterator itself when it reports has_more=False (see
        Fabric's query_response_generator.go), so QUERY_STATE_CLOSE is only
        sent when the caller abandons the iteration early, or an error stops
        it, while pages remain.
        """
        response = chaincode_shim_pb2.QueryResponse.FromString(self._call(msg_type, request))
        try:
            while True:
                for item in response.results:
                    yield decode(item.resultBytes)
                if not response.has_more:
                    return
                nxt = chaincode_shim_pb2.QueryStateNext(id=response.id)
                response = chaincode_shim_pb2.QueryResponse.FromString(
                    self._call(MsgType.QUERY_STATE_NEXT, nxt)
                )
        finally:
            if response.has_more:
                self._close_query(response.id)

    def _close_query(self, query_id: str) -> None:
        # Best effort: this may run from a generator's finaliser at any moment, and
        # the peer drops every iterator of a transaction when it completes anyway.
        if self._finished:
            return
        try:
            self._call(
                MsgType.QUERY_STATE_CLOSE,
                chaincode_shim_pb2.QueryStateClose(id=query_id),
                blocking=False,
            )
        except (ShimError, PeerError) as exc:
            log.debug("tx %s: QUERY_STATE_CLOSE %s not sent: %s", self.tx_id[:8], query_id, exc)

    # -- the Stub protocol ---------------------------------------------------

    def get_state(self, key: str) -> bytes:
        """The committed value, b"" when absent (the peer sends an empty payload)."""
        return self._call(MsgType.GET_STATE, chaincode_shim_pb2.GetState(key=key))

    def get_state_multiple(self, keys: list[str]) -> list[bytes]:
        """Values of ``keys`` in order, b"" when absent; GET_STATE_MULTIPLE if the peer has it."""
        if not self._features.get_multiple:
            return [self.get_state(k) for k in keys]
        return self._get_multiple(keys, "")

    def put_state(self, key: str, value: bytes) -> None:
        if not key:
            raise ChaincodeError(Code.BAD_ARGUMENT, "empty key")
        if self._writes is not None:
            self._record(chaincode_shim_pb2.WriteRecord(key=key, value=bytes(value), type=_PUT))
            return
        self._call(MsgType.PUT_STATE, chaincode_shim_pb2.PutState(key=key, value=bytes(value)))

    def del_state(self, key: str) -> None:
        if self._writes is not None:
            self._record(chaincode_shim_pb2.WriteRecord(key=key, type=_DEL))
            return
        self._call(MsgType.DEL_STATE, chaincode_shim_pb2.DelState(key=key))

    def _record(self, record: chaincode_shim_pb2.WriteRecord) -> None:
        if self._finished:
            raise ShimError(f"transaction {self.tx_id[:8]} is already complete")
        assert self._writes is not None
        slot = (record.type == _PUT_METADATA, record.collection, record.key)
        self._writes.pop(slot, None)  # re-insert: the batch keeps the order of last writes
        self._writes[slot] = record

    def get_state_validation_parameter(self, key: str) -> bytes:
        """The key's committed VALIDATION_PARAMETER metadata (GET_STATE_METADATA), b"" if none."""
        raw = self._call(MsgType.GET_STATE_METADATA, chaincode_shim_pb2.GetStateMetadata(key=key))
        result = chaincode_shim_pb2.StateMetadataResult.FromString(raw)
        for entry in result.entries:
            if entry.metakey == VALIDATION_PARAMETER:
                return bytes(entry.value)
        return b""

    def set_state_validation_parameter(self, key: str, policy: bytes) -> None:
        """PUT_STATE_METADATA of VALIDATION_PARAMETER (batched like writes when the peer can)."""
        if not key:
            raise ChaincodeError(Code.BAD_ARGUMENT, "empty key")
        metadata = chaincode_shim_pb2.StateMetadata(metakey=VALIDATION_PARAMETER, value=policy)
        if self._writes is not None:
            self._record(
                chaincode_shim_pb2.WriteRecord(key=key, metadata=metadata, type=_PUT_METADATA)
            )
            return
        self._call(
            MsgType.PUT_STATE_METADATA,
            chaincode_shim_pb2.PutStateMetadata(key=key, metadata=metadata),
        )

    # -- private data (collections) ------------------------------------------------------
    #
    # The same messages as the public calls with their ``collection`` field set, as the Go
    # shim sends them (GetPrivateData -> GET_STATE{collection}, ...). The peer checks the
    # collection's memberOnlyRead/memberOnlyWrite against the proposal's creator, and a
    # peer that is not a member holds no values: reading a key it only has the hash of
    # fails ("private data matching public hash version is not available").

    def get_private_data(self, collection: str, key: str) -> bytes:
        """The committed private value of ``key`` in ``collection``, b"" when absent."""
        _require_collection(collection)
        return self._call(
            MsgType.GET_STATE, chaincode_shim_pb2.GetState(key=key, collection=collection)
        )

    def get_private_data_multiple(self, collection: str, keys: list[str]) -> list[bytes]:
        """Private values of ``keys`` in order (b"" when absent), GET_STATE_MULTIPLE if offered.

        Point reads, unlike a private range query, leave the transaction free to write:
        Fabric refuses every write after a range query on private data (it cannot check
        such a query for phantoms at commit).
        """
        _require_collection(collection)
        if not self._features.get_multiple:
            return [self.get_private_data(collection, k) for k in keys]
        return self._get_multiple(keys, collection)

    def _get_multiple(self, keys: list[str], collection: str) -> list[bytes]:
        """GET_STATE_MULTIPLE in chunks of the peer's limit; "" is the public state."""
        size = self._features.get_multiple
        values: list[bytes] = []
        for start in range(0, len(keys), size):
            chunk = keys[start : start + size]
            raw = self._call(
                MsgType.GET_STATE_MULTIPLE,
                chaincode_shim_pb2.GetStateMultiple(keys=chunk, collection=collection),
            )
            result = chaincode_shim_pb2.GetStateMultipleResult.FromString(raw).values
            if len(result) != len(chunk):
                raise ShimError(f"peer answered {len(result)} values for {len(chunk)} keys")
            values += [bytes(v) for v in result]
        return values

    def get_private_data_hash(self, collection: str, key: str) -> bytes:
        """SHA-256 of the committed private value (every peer has it), b"" when absent."""
        _require_collection(collection)
        return self._call(
            MsgType.GET_PRIVATE_DATA_HASH,
            chaincode_shim_pb2.GetState(key=key, collection=collection),
        )

    def put_private_data(self, collection: str, key: str, value: bytes) -> None:
        """Writes a private value: the block carries only its hash; batched like put_state."""
        _require_collection(collection)
        if not key:
            raise ChaincodeError(Code.BAD_ARGUMENT, "empty key")
        if not value:
            # Fabric refuses an empty private value (it would read back as "absent").
            raise ChaincodeError(Code.BAD_ARGUMENT, f"empty private value for key {key!r}")
        if self._writes is not None:
            self._record(
                chaincode_shim_pb2.WriteRecord(
                    key=key, value=bytes(value), collection=collection, type=_PUT
                )
            )
            return
        self._call(
            MsgType.PUT_STATE,
            chaincode_shim_pb2.PutState(key=key, value=bytes(value), collection=collection),
        )

    def del_private_data(self, collection: str, key: str) -> None:
        _require_collection(collection)
        if self._writes is not None:
            self._record(chaincode_shim_pb2.WriteRecord(key=key, collection=collection, type=_DEL))
            return
        self._call(MsgType.DEL_STATE, chaincode_shim_pb2.DelState(key=key, collection=collection))

    def get_private_data_by_partial_composite_key(
        self, collection: str, object_type: str, attributes: list[str]
    ) -> Iterator[tuple[str, bytes]]:
        """Private keys of ``collection`` that start with these parts (the peer's own copy).

        Fabric allows it only in a transaction that writes nothing (a query).
        """
        _require_collection(collection)
        start = create_composite_key(object_type, attributes)
        request = chaincode_shim_pb2.GetStateByRange(
            startKey=start, endKey=start + MAX_UNICODE, collection=collection
        )
        return self._query(MsgType.GET_STATE_BY_RANGE, request, _decode_kv)

    def set_private_data_validation_parameter(
        self, collection: str, key: str, policy: bytes
    ) -> None:
        """A private key's own endorsement policy (its hashed metadata), like the public one."""
        _require_collection(collection)
        if not key:
            raise ChaincodeError(Code.BAD_ARGUMENT, "empty key")
        metadata = chaincode_shim_pb2.StateMetadata(metakey=VALIDATION_PARAMETER, value=policy)
        if self._writes is not None:
            self._record(
                chaincode_shim_pb2.WriteRecord(
                    key=key, metadata=metadata, collection=collection, type=_PUT_METADATA
                )
            )
            return
        self._call(
            MsgType.PUT_STATE_METADATA,
            chaincode_shim_pb2.PutStateMetadata(key=key, metadata=metadata, collection=collection),
        )

    def now_ns(self) -> int:
        """This endorser's wall clock, for the timestamp check only."""
        return time.time_ns()

    def get_state_by_range(self, start: str, end: str) -> Iterator[tuple[str, bytes]]:
        """Keys in [start, end) outside the composite-key namespace; "" end means unbounded."""
        start = start or EMPTY_KEY_SUBSTITUTE
        _validate_simple_key(start)
        _validate_simple_key(end)
        request = chaincode_shim_pb2.GetStateByRange(startKey=start, endKey=end)
        return self._query(MsgType.GET_STATE_BY_RANGE, request, _decode_kv)

    def get_state_by_partial_composite_key(
        self, object_type: str, attributes: list[str]
    ) -> Iterator[tuple[str, bytes]]:
        """All composite keys that start with these parts (a range up to U+10FFFF, as in Go)."""
        start = create_composite_key(object_type, attributes)
        request = chaincode_shim_pb2.GetStateByRange(startKey=start, endKey=start + MAX_UNICODE)
        return self._query(MsgType.GET_STATE_BY_RANGE, request, _decode_kv)

    def get_history_for_key(self, key: str) -> Iterator[HistoryEntry]:
        request = chaincode_shim_pb2.GetHistoryForKey(key=key)
        return self._query(MsgType.GET_HISTORY_FOR_KEY, request, _decode_history)

    def set_event(self, name: str, payload: bytes) -> None:
        """Records the transaction's event (the last call wins, as in Fabric).

        It travels in the COMPLETED message's chaincode_event; the peer then
        stamps its own chaincode name and txid on it.
        """
        if not name:
            raise ChaincodeError(Code.BAD_ARGUMENT, "event name must not be empty")
        self.event = chaincode_event_pb2.ChaincodeEvent(
            chaincode_id=self._chaincode_name,
            tx_id=self.tx_id,
            event_name=name,
            payload=bytes(payload),
        )

    def invoke_chaincode(self, name: str, args: list[bytes], channel: str) -> Response:
        """Calls another chaincode through the peer, in this transaction's context.

        The request payload is a ChaincodeSpec whose ChaincodeID name is
        ``name`` or ``name/channel`` (the peer's ParseName splits it). The
        peer's RESPONSE payload is itself a ChaincodeMessage (the callee's
        COMPLETED or ERROR) whose payload is the callee's peer Response, so
        there are two levels to decode. Failures come back as a 500 Response,
        never as an exception, like Go's InvokeChaincode.
        """
        target = f"{name}/{channel}" if channel else name
        spec = chaincode_pb2.ChaincodeSpec(
            chaincode_id=chaincode_pb2.ChaincodeID(name=target),
            input=chaincode_pb2.ChaincodeInput(
                args=[a.encode() if isinstance(a, str) else bytes(a) for a in args]
            ),
        )
        reply = self._exchange(MsgType.INVOKE_CHAINCODE, spec)
        if reply.type == MsgType.ERROR:
            return Response(500, reply.payload.decode("utf-8", errors="replace"), b"")
        if reply.type != MsgType.RESPONSE:
            return Response(500, f"unexpected {MsgType.Type.Name(reply.type)} from peer", b"")
        try:
            inner = ChaincodeMessage.FromString(reply.payload)
            if inner.type != MsgType.COMPLETED:
                message = inner.payload.decode("utf-8", errors="replace")
                return Response(500, message or f"{target} ended with {inner.type}", b"")
            res = proposal_response_pb2.Response.FromString(inner.payload)
        except DecodeError as exc:
            return Response(500, f"cannot decode the reply of {target}: {exc}", b"")
        return Response(res.status, res.message, bytes(res.payload))


def _decode_kv(raw: bytes) -> tuple[str, bytes]:
    kv = kv_query_result_pb2.KV.FromString(raw)
    return kv.key, bytes(kv.value)


def _decode_history(raw: bytes) -> HistoryEntry:
    mod = kv_query_result_pb2.KeyModification.FromString(raw)
    ts = mod.timestamp
    return HistoryEntry(
        tx_id=mod.tx_id,
        value=bytes(mod.value),
        timestamp_ns=ts.seconds * 1_000_000_000 + ts.nanos,
        is_delete=mod.is_delete,
    )
