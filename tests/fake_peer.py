"""Plays a Fabric peer's side of protos.Chaincode/Connect against our real chaincode server.

The shim tests start :func:`vpp_shim.server.serve` on 127.0.0.1 with an
ephemeral port and dial it the way a peer does for chaincode-as-a-service:
a gRPC client opens Connect, expects REGISTER, answers REGISTERED and READY,
then sends TRANSACTION messages and answers the chaincode's ledger requests
(:class:`FakeLedger` imitates the peer's answers, pagination included).
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import grpc
from certs import issue
from fabric_protos.common import common_pb2
from fabric_protos.ledger.queryresult import kv_query_result_pb2
from fabric_protos.msp import identities_pb2
from fabric_protos.peer import (
    chaincode_pb2,
    chaincode_shim_pb2,
    chaincode_shim_pb2_grpc,
    proposal_pb2,
    proposal_response_pb2,
)
from google.protobuf.timestamp_pb2 import Timestamp
from vpp_shim.api import ChaincodeError, Contract, Stub, transaction
from vpp_shim.codes import Code
from vpp_shim.server import ChaincodeServer, serve

Msg = chaincode_shim_pb2.ChaincodeMessage
CCID = "market_1.0:0123456789abcdef"
CHANNEL = "vpp-main"
_EOF = object()


def msg_name(msg: Msg) -> str:
    return Msg.Type.Name(msg.type)


def reply(msg: Msg, payload: bytes = b"", *, error: bool = False) -> Msg:
    """The peer's RESPONSE (or ERROR) to a chaincode request."""
    return Msg(
        type=Msg.ERROR if error else Msg.RESPONSE,
        payload=payload,
        txid=msg.txid,
        channel_id=msg.channel_id,
    )


def response_of(msg: Msg) -> proposal_response_pb2.Response:
    """The peer Response inside a COMPLETED message."""
    assert msg.type == Msg.COMPLETED, f"expected COMPLETED, got {msg_name(msg)}: {msg.payload!r}"
    return proposal_response_pb2.Response.FromString(msg.payload)


def signed_proposal(
    *,
    txid: str,
    channel: str = CHANNEL,
    mspid: str = "Agg3MSP",
    cert_pem: bytes | None = None,
    transient: Mapping[str, bytes] | None = None,
    timestamp_ns: int | None = None,
) -> proposal_pb2.SignedProposal:
    """A SignedProposal nested exactly as a peer forwards it (signature not checked by the shim).

    ``timestamp_ns`` defaults to now: the chaincode refuses proposals dated too far from
    its clock.
    """
    if timestamp_ns is None:
        timestamp_ns = time.time_ns()
    ts = Timestamp(seconds=timestamp_ns // 1_000_000_000, nanos=timestamp_ns % 1_000_000_000)
    channel_header = common_pb2.ChannelHeader(
        type=common_pb2.HeaderType.ENDORSER_TRANSACTION,
        channel_id=channel,
        tx_id=txid,
        timestamp=ts,
    )
    creator = identities_pb2.SerializedIdentity(
        mspid=mspid, id_bytes=cert_pem if cert_pem is not None else issue(mspid, "user")
    )
    header = common_pb2.Header(
        channel_header=channel_header.SerializeToString(),
        signature_header=common_pb2.SignatureHeader(
            creator=creator.SerializeToString(), nonce=b"nonce"
        ).SerializeToString(),
    )
    payload = proposal_pb2.ChaincodeProposalPayload(input=b"", TransientMap=dict(transient or {}))
    proposal = proposal_pb2.Proposal(
        header=header.SerializeToString(), payload=payload.SerializeToString()
    )
    return proposal_pb2.SignedProposal(proposal_bytes=proposal.SerializeToString(), signature=b"")


class FakeLedger:
    """Answers ledger requests like a peer: committed state only, paged range/history results."""

    def __init__(
        self,
        state: Mapping[str, bytes] | None = None,
        *,
        history: Mapping[str, Sequence[kv_query_result_pb2.KeyModification]] | None = None,
        page_size: int = 2,
    ) -> None:
        self.state = dict(state or {})
        self.history = {k: list(v) for k, v in (history or {}).items()}
        self.page_size = page_size
        self.writes: dict[str, bytes | None] = {}
        self.metadata: dict[str, dict[str, bytes]] = {}  # key -> metakey -> value (committed)
        self.metadata_writes: dict[str, dict[str, bytes]] = {}
        self.requests: list[Msg] = []
        self.open_queries: dict[str, list[bytes]] = {}
        self._ids = 0
        self._lock = threading.Lock()

    def answer(self, msg: Msg) -> Msg:
        with self._lock:
            self.requests.append(msg)
            return self._answer(msg)

    def _page(self, query_id: str) -> bytes:
        rest = self.open_queries[query_id]
        page, rest = rest[: self.page_size], rest[self.page_size :]
        has_more = bool(rest)
        if has_more:
            self.open_queries[query_id] = rest
        else:
            del self.open_queries[query_id]  # the peer frees the iterator at the end
        return chaincode_shim_pb2.QueryResponse(
            results=[chaincode_shim_pb2.QueryResultBytes(resultBytes=r) for r in page],
            has_more=has_more,
            id=query_id,
        ).SerializeToString()

    def _open(self, results: list[bytes]) -> bytes:
        self._ids += 1
        query_id = f"q{self._ids}"
        self.open_queries[query_id] = results
        return self._page(query_id)

    def _answer(self, msg: Msg) -> Msg:
        kind = msg.type
        if kind == Msg.GET_STATE:
            key = chaincode_shim_pb2.GetState.FromString(msg.payload).key
            return reply(msg, self.state.get(key, b""))
        if kind == Msg.PUT_STATE:
            put = chaincode_shim_pb2.PutState.FromString(msg.payload)
            self.writes[put.key] = put.value
            return reply(msg)
        if kind == Msg.DEL_STATE:
            self.writes[chaincode_shim_pb2.DelState.FromString(msg.payload).key] = None
            return reply(msg)
        if kind == Msg.GET_STATE_METADATA:
            key = chaincode_shim_pb2.GetStateMetadata.FromString(msg.payload).key
            entries = [
                chaincode_shim_pb2.StateMetadata(metakey=k, value=v)
                for k, v in sorted(self.metadata.get(key, {}).items())
            ]
            return reply(
                msg, chaincode_shim_pb2.StateMetadataResult(entries=entries).SerializeToString()
            )
        if kind == Msg.PUT_STATE_METADATA:
            put_meta = chaincode_shim_pb2.PutStateMetadata.FromString(msg.payload)
            entry = put_meta.metadata
            self.metadata_writes.setdefault(put_meta.key, {})[entry.metakey] = entry.value
            return reply(msg)
        if kind == Msg.GET_STATE_BY_RANGE:
            req = chaincode_shim_pb2.GetStateByRange.FromString(msg.payload)
            keys = [
                k
                for k in sorted(self.state)
                if k >= req.startKey and (not req.endKey or k < req.endKey)
            ]
            kvs = [
                kv_query_result_pb2.KV(
                    namespace="cc", key=k, value=self.state[k]
                ).SerializeToString()
                for k in keys
            ]
            return reply(msg, self._open(kvs))
        if kind == Msg.GET_HISTORY_FOR_KEY:
            key = chaincode_shim_pb2.GetHistoryForKey.FromString(msg.payload).key
            mods = [m.SerializeToString() for m in self.history.get(key, [])]
            return reply(msg, self._open(mods))
        if kind == Msg.QUERY_STATE_NEXT:
            query_id = chaincode_shim_pb2.QueryStateNext.FromString(msg.payload).id
            if query_id not in self.open_queries:
                return reply(msg, b"query iterator not found", error=True)
            return reply(msg, self._page(query_id))
        if kind == Msg.QUERY_STATE_CLOSE:
            query_id = chaincode_shim_pb2.QueryStateClose.FromString(msg.payload).id
            self.open_queries.pop(query_id, None)
            return reply(
                msg,
                chaincode_shim_pb2.QueryResponse(has_more=False, id=query_id).SerializeToString(),
            )
        return reply(msg, f"fake peer cannot handle {msg_name(msg)}".encode(), error=True)

    def request_types(self) -> list[str]:
        return [msg_name(m) for m in self.requests]


class FakePeer:
    """A peer's end of one Connect stream. ``recv`` fails the test on timeout or stream error."""

    def __init__(
        self,
        address: str,
        *,
        options: Sequence[tuple[str, Any]] = (),
        timeout: float = 5.0,
        channel: grpc.Channel | None = None,
    ) -> None:
        self.timeout = timeout
        self.channel = channel or grpc.insecure_channel(address, options=list(options))
        self._to_chaincode: queue.SimpleQueue[Msg | None] = queue.SimpleQueue()
        self._from_chaincode: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.error: grpc.RpcError | None = None
        self.ended = threading.Event()
        stub = chaincode_shim_pb2_grpc.ChaincodeStub(self.channel)
        self._call = stub.Connect(self._requests())
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _requests(self) -> Iterator[Msg]:
        while True:
            msg = self._to_chaincode.get()
            if msg is None:
                return
            yield msg

    def _read(self) -> None:
        try:
            for msg in self._call:
                self._from_chaincode.put(msg)
        except grpc.RpcError as exc:
            self.error = exc
        finally:
            self.ended.set()
            self._from_chaincode.put(_EOF)

    def __enter__(self) -> FakePeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, msg: Msg) -> None:
        self._to_chaincode.put(msg)

    def recv(self, timeout: float | None = None) -> Msg:
        try:
            item = self._from_chaincode.get(timeout=self.timeout if timeout is None else timeout)
        except queue.Empty:
            raise AssertionError("the chaincode sent nothing in time") from None
        if item is _EOF:
            self._from_chaincode.put(_EOF)  # stay at end of stream for later calls
            detail = f"{self.error.code()} {self.error.details()}" if self.error else "OK"
            raise EOFError(f"chaincode stream ended ({detail})")
        assert isinstance(item, Msg)
        return item

    def handshake(self) -> Msg:
        """REGISTER -> REGISTERED, READY; returns the REGISTER message."""
        register = self.recv()
        assert register.type == Msg.REGISTER, msg_name(register)
        self.send(Msg(type=Msg.REGISTERED))
        self.send(Msg(type=Msg.READY))
        return register

    def send_transaction(
        self,
        txid: str,
        args: Sequence[str | bytes],
        *,
        channel: str = CHANNEL,
        proposal: proposal_pb2.SignedProposal | None = None,
        init: bool = False,
    ) -> None:
        chaincode_input = chaincode_pb2.ChaincodeInput(
            args=[a.encode() if isinstance(a, str) else a for a in args]
        )
        msg = Msg(
            type=Msg.INIT if init else Msg.TRANSACTION,
            payload=chaincode_input.SerializeToString(),
            txid=txid,
            channel_id=channel,
            proposal=proposal or signed_proposal(txid=txid, channel=channel),
        )
        self.send(msg)

    def run_transaction(
        self,
        txid: str,
        args: Sequence[str | bytes],
        *,
        ledger: FakeLedger | None = None,
        channel: str = CHANNEL,
        proposal: proposal_pb2.SignedProposal | None = None,
        init: bool = False,
        answer: Callable[[Msg], Msg | None] | None = None,
    ) -> Msg:
        """Sends a transaction, answers its requests until its COMPLETED/ERROR, returns that.

        ``answer`` may handle a request first (return None to fall back to the ledger).
        """
        ledger = ledger if ledger is not None else FakeLedger()
        self.send_transaction(txid, args, channel=channel, proposal=proposal, init=init)
        while True:
            msg = self.recv()
            if msg.type in (Msg.COMPLETED, Msg.ERROR):
                assert (msg.channel_id, msg.txid) == (channel, txid), msg
                return msg
            assert (msg.channel_id, msg.txid) == (channel, txid), msg
            answered = answer(msg) if answer is not None else None
            self.send(answered if answered is not None else ledger.answer(msg))

    def close(self) -> None:
        self._to_chaincode.put(None)
        self._call.cancel()
        self.channel.close()


@contextmanager
def running_server(contract: Contract | None = None, **kwargs: Any) -> Iterator[ChaincodeServer]:
    """Our real server on 127.0.0.1 with an ephemeral port, stopped afterwards."""
    server = serve(contract or DemoContract(), "127.0.0.1:0", CCID, **kwargs)
    try:
        yield server
    finally:
        server.stop(None).wait(5)


@contextmanager
def connected_peer(server: ChaincodeServer, **kwargs: Any) -> Iterator[FakePeer]:
    """A FakePeer that has completed the handshake."""
    with FakePeer(server.address, **kwargs) as peer:
        peer.handshake()  # READY precedes any transaction on the stream: no wait needed
        yield peer


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


class DemoContract(Contract):
    """Exercises every Stub call the shim implements."""

    name = "demo"

    @transaction
    def Echo(self, stub: Stub, *words: str) -> str:  # noqa: N802 (Fabric-style names)
        return " ".join(words)

    @transaction
    def Move(self, stub: Stub, src: str, dst: str) -> dict[str, str]:  # noqa: N802
        """get + put + del + a paged range query + an event."""
        value = stub.get_state(src)
        if not value:
            raise ChaincodeError(Code.NOT_FOUND, f"{src} is empty")
        stub.put_state(dst, value)
        stub.del_state(src)
        keys = [k for k, _ in stub.get_state_by_range("k", "l")]
        stub.set_event("Moved", json.dumps({"from": src, "to": dst}).encode())
        return {"value": value.decode(), "keys": ",".join(keys)}

    @transaction
    def Pair(self, stub: Stub, a: str, b: str) -> str:  # noqa: N802
        """Two reads then a write: three round trips to interleave with other transactions."""
        first, second = stub.get_state(a), stub.get_state(b)
        stub.put_state(f"{a}+{b}", first + second)
        return (first + b"|" + second).decode()

    @transaction
    def FirstInRange(self, stub: Stub, start: str, end: str) -> str:  # noqa: N802
        for key, _ in stub.get_state_by_range(start, end):
            return key  # abandons the iterator after one result
        return ""

    @transaction
    def Composite(self, stub: Stub, object_type: str, *attrs: str) -> list[str]:  # noqa: N802
        return [k for k, _ in stub.get_state_by_partial_composite_key(object_type, list(attrs))]

    @transaction
    def History(self, stub: Stub, key: str) -> list[dict[str, Any]]:  # noqa: N802
        return [
            {"tx": e.tx_id, "value": e.value.decode(), "ts": e.timestamp_ns, "del": e.is_delete}
            for e in stub.get_history_for_key(key)
        ]

    @transaction
    def Protect(self, stub: Stub, key: str, policy_hex: str) -> str:  # noqa: N802
        """Reads a key's own endorsement policy, then gives it a new one (state metadata)."""
        before = stub.get_state_validation_parameter(key)
        stub.set_state_validation_parameter(key, bytes.fromhex(policy_hex))
        return before.hex()

    @transaction
    def Refuse(self, stub: Stub, why: str) -> None:  # noqa: N802
        stub.set_event("NeverSent", b"")
        raise ChaincodeError(Code.NOT_READY, why)

    @transaction
    def Crash(self, stub: Stub) -> None:  # noqa: N802
        raise RuntimeError("secret internals: db password hunter2")

    @transaction
    def WhoAmI(self, stub: Stub, *params: str) -> dict[str, Any]:  # noqa: N802
        return {
            "mspid": stub.caller.mspid,
            "cn": stub.caller.common_name,
            "ous": list(stub.caller.ous),
            "attrs": dict(stub.caller.attributes),
            "transient": {k: v.decode() for k, v in stub.transient.items()},
            "timestamp_ns": stub.timestamp_ns,
            "function": stub.function,
            "params": stub.params,
            "tx_id": stub.tx_id,
            "channel_id": stub.channel_id,
            "is_init": getattr(stub, "is_init", None),
        }

    @transaction
    def Call(self, stub: Stub, name: str, channel: str, *args: str) -> dict[str, Any]:  # noqa: N802
        res = stub.invoke_chaincode(name, [a.encode() for a in args], channel)
        return {"status": res.status, "message": res.message, "payload": res.payload.decode()}
