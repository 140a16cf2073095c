"""One peer's Connect stream: handshake, transaction dispatch, reply routing, the single writer.

Threads touching a session:

- gRPC's stream thread consumes :meth:`PeerSession.outbound`, the ONLY
  place messages reach the stream. Everyone else enqueues
  (:meth:`PeerSession.send`), so gRPC never sees two concurrent writes, the
  mistake that gives GRPC_CALL_ERROR_TOO_MANY_OPERATIONS in
  fabric-chaincode-python;
- one reader thread per session iterates the peer's messages: handshake
  (REGISTERED, READY), KEEPALIVE echoes, INIT/TRANSACTION handed to the
  transaction pool, RESPONSE/ERROR routed to the transaction waiting on
  ``(channel_id, txid)``;
- transaction workers (a pool shared by all sessions of a server) run the
  contract; each ledger call goes out via the queue and waits for its reply.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor

from fabric_protos.peer import chaincode_event_pb2, chaincode_pb2, proposal_response_pb2
from google.protobuf.message import DecodeError

from vpp_shim.api import ChaincodeError, Contract
from vpp_shim.codes import Code
from vpp_shim.stub import (
    ChaincodeMessage,
    MsgType,
    PeerFeatures,
    PeerStub,
    PeerTimeoutError,
    ShimError,
    StreamClosedError,
)

log = logging.getLogger(__name__)

_CLOSE = object()  # sentinel: ends the writer, or wakes a waiting transaction

TxKey = tuple[str, str]  # (channel_id, txid): a txid alone is not unique across channels


class _ReplySlot:
    """Where the reader drops the peer's reply for one waiting request."""

    def __init__(self) -> None:
        self._box: queue.SimpleQueue[object] = queue.SimpleQueue()

    def put(self, item: object) -> None:
        self._box.put(item)

    def wait(self, timeout: float | None) -> object:
        try:
            return self._box.get(timeout=timeout)
        except queue.Empty:
            return None


class PeerSession:
    """State of one Connect stream (one peer). Sessions share nothing but the worker pool."""

    def __init__(
        self,
        *,
        contract: Contract,
        chaincode_id: str,
        executor: Executor,
        request_timeout: float | None,
        peer: str = "peer",
        peer_features: bool = True,
    ) -> None:
        self.peer = peer
        self._use_peer_features = peer_features
        self._contract = contract
        self._chaincode_id = chaincode_id
        self._executor = executor
        self._request_timeout = request_timeout
        self._outbox: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._pending: dict[TxKey, _ReplySlot] = {}
        self._active: set[TxKey] = set()
        self._state = "created"  # -> established (REGISTERED) -> ready (READY)
        self._closed = False
        self._draining = False
        self.features = PeerFeatures()  # what the peer offers in READY (write batch, multi-get)
        self.ready = threading.Event()
        self.closed = threading.Event()

    # -- lifecycle -------------------------------------------------------------

    def start(self, requests: Iterable[ChaincodeMessage]) -> Iterator[ChaincodeMessage]:
        """Registers with the peer and starts reading; returns the stream's response iterator."""
        register = ChaincodeMessage(
            type=MsgType.REGISTER,
            payload=chaincode_pb2.ChaincodeID(name=self._chaincode_id).SerializeToString(),
        )
        self.send(register)
        reader = threading.Thread(
            target=self._read_loop,
            args=(requests,),
            name=f"vpp-shim-reader[{self.peer}]",
            daemon=True,
        )
        reader.start()
        return self.outbound()

    def outbound(self) -> Iterator[ChaincodeMessage]:
        """The single writer: gRPC pulls every outgoing message from here, one at a time."""
        while True:
            item = self._outbox.get()
            if item is _CLOSE:
                return
            assert isinstance(item, ChaincodeMessage)
            yield item

    def send(self, msg: ChaincodeMessage) -> None:
        """Queues a message for the writer; dropped once the stream is closed."""
        if self._closed:
            log.debug("[%s] stream closed, dropping %s", self.peer, MsgType.Type.Name(msg.type))
            return
        self._outbox.put(msg)

    def close(self, reason: str = "") -> None:
        """Ends the stream: the writer returns, waiting transactions get StreamClosedError."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            slots = list(self._pending.values())
        for slot in slots:
            slot.put(_CLOSE)
        self._outbox.put(_CLOSE)
        self.closed.set()
        log.info("[%s] chaincode stream closed%s", self.peer, f": {reason}" if reason else "")

    def drain(self) -> None:
        """From now on refuse new transactions (graceful stop); running ones finish."""
        with self._lock:
            self._draining = True

    @property
    def draining(self) -> bool:
        return self._draining

    @property
    def active_transactions(self) -> int:
        with self._lock:
            return len(self._active)

    # -- reading ---------------------------------------------------------------

    def _read_loop(self, requests: Iterable[ChaincodeMessage]) -> None:
        reason = "peer ended the stream"
        try:
            for msg in requests:
                if not self._handle(msg):
                    reason = "protocol error"
                    break
        except Exception as exc:  # grpc.RpcError on cancel/disconnect, or a bug
            if self._closed:
                reason = "closed locally"
            else:
                reason = f"receive failed: {exc.__class__.__name__} {exc}".strip()
        finally:
            self.close(reason)

    def _handle(self, msg: ChaincodeMessage) -> bool:
        """Dispatches one message; False ends the stream."""
        if msg.type == MsgType.KEEPALIVE:
            self.send(ChaincodeMessage(type=MsgType.KEEPALIVE))  # echo, as the Go shim does
            return True
        if self._state == "created":
            if msg.type != MsgType.REGISTERED:
                return self._protocol_error(msg, "expected REGISTERED")
            self._state = "established"
            return True
        if self._state == "established":
            if msg.type != MsgType.READY:
                return self._protocol_error(msg, "expected READY")
            # READY's payload (ChaincodeAdditionalParams) advertises write batching and
            # multi-key reads; a peer without them (or an empty payload) gets single calls.
            if self._use_peer_features:
                self.features = PeerFeatures.from_ready(msg.payload)
            self._state = "ready"
            self.ready.set()
            log.info(
                "[%s] registered as %s, ready (write batch %d, multi-get %d)",
                self.peer,
                self._chaincode_id,
                self.features.write_batch,
                self.features.get_multiple,
            )
            return True
        if msg.type in (MsgType.RESPONSE, MsgType.ERROR):
            self._route_reply(msg)
        elif msg.type in (MsgType.TRANSACTION, MsgType.INIT):
            self._accept_transaction(msg)
        else:
            log.warning(
                "[%s] tx %s: unexpected %s from peer, answering ERROR",
                self.peer,
                msg.txid[:8],
                MsgType.Type.Name(msg.type),
            )
            self.send(
                _error(msg, f"chaincode cannot handle {MsgType.Type.Name(msg.type)} when ready")
            )
        return True

    def _protocol_error(self, msg: ChaincodeMessage, expected: str) -> bool:
        name = MsgType.Type.Name(msg.type)
        log.warning("[%s] handshake: %s, got %s; ending stream", self.peer, expected, name)
        self.send(_error(msg, f"chaincode in state {self._state} cannot handle {name}"))
        return False

    def _route_reply(self, msg: ChaincodeMessage) -> None:
        with self._lock:
            slot = self._pending.get((msg.channel_id, msg.txid))
        if slot is None:
            log.warning(
                "[%s] %s for %s/%s which awaits no reply; dropped",
                self.peer,
                MsgType.Type.Name(msg.type),
                msg.channel_id,
                msg.txid[:8],
            )
            return
        slot.put(msg)

    def _accept_transaction(self, msg: ChaincodeMessage) -> None:
        key = (msg.channel_id, msg.txid)
        with self._lock:
            if self._draining:
                refusal = "chaincode server is shutting down"
            elif key in self._active:
                refusal = f"transaction {msg.channel_id}/{msg.txid} is already running"
            else:
                refusal = ""
                self._active.add(key)
        if refusal:
            log.warning("[%s] tx %s refused: %s", self.peer, msg.txid[:8], refusal)
            self.send(_error(msg, refusal))
            return
        try:
            self._executor.submit(self._run_transaction, msg)
        except RuntimeError:  # pool shut down: the server is stopping
            with self._lock:
                self._active.discard(key)
            self.send(_error(msg, "chaincode server is shutting down"))

    # -- transactions -----------------------------------------------------------

    def request(
        self, channel_id: str, txid: str, msg_type: int, payload: bytes
    ) -> ChaincodeMessage:
        """Sends one request for a transaction and waits for the peer's reply (Requester)."""
        key = (channel_id, txid)
        slot = _ReplySlot()
        with self._lock:
            if self._closed:
                raise StreamClosedError("the peer's stream is closed")
            if key in self._pending:
                raise ShimError(f"transaction {txid[:8]} already has a request in flight")
            self._pending[key] = slot
        try:
            self.send(
                ChaincodeMessage(type=msg_type, payload=payload, txid=txid, channel_id=channel_id)
            )
            reply = slot.wait(self._request_timeout)
        finally:
            with self._lock:
                if self._pending.get(key) is slot:
                    del self._pending[key]
        if reply is None:
            raise PeerTimeoutError(
                f"no reply to {MsgType.Type.Name(msg_type)} within {self._request_timeout}s"
            )
        if reply is _CLOSE:
            raise StreamClosedError("the peer's stream closed while waiting for a reply")
        assert isinstance(reply, ChaincodeMessage)
        return reply

    def _run_transaction(self, msg: ChaincodeMessage) -> None:
        key = (msg.channel_id, msg.txid)
        started = time.monotonic()
        try:
            reply = self._execute(msg)
        except BaseException:  # never leave the peer waiting 30 s for an answer
            log.warning("[%s] tx %s: shim failure", self.peer, msg.txid[:8], exc_info=True)
            reply = _error(msg, "chaincode shim failure")
        if log.isEnabledFor(logging.DEBUG):  # before the peer (or a test) sees the outcome
            self._log_transaction(msg, reply, time.monotonic() - started)
        with self._lock:  # enqueue and forget atomically: no false "already running"
            self.send(reply)
            self._active.discard(key)

    def _log_transaction(
        self, msg: ChaincodeMessage, reply: ChaincodeMessage, seconds: float
    ) -> None:
        """The one DEBUG line per transaction."""
        if reply.type == MsgType.COMPLETED:
            outcome = proposal_response_pb2.Response.FromString(reply.payload)
            result = f"{outcome.status}" + (f" {outcome.message!r}" if outcome.message else "")
        else:
            result = f"ERROR {reply.payload.decode('utf-8', errors='replace')!r}"
        log.debug(
            "[%s] %s %s/%s %s -> %s (%.1f ms)",
            self.peer,
            MsgType.Type.Name(msg.type),
            msg.channel_id,
            msg.txid[:8],
            _function_name(msg),
            result,
            seconds * 1000,
        )

    def _execute(self, msg: ChaincodeMessage) -> ChaincodeMessage:
        """Runs the contract: COMPLETED with a peer Response, or ERROR if it cannot run at all."""
        try:
            chaincode_input = chaincode_pb2.ChaincodeInput.FromString(msg.payload)
        except DecodeError as exc:
            log.warning("[%s] tx %s: bad ChaincodeInput: %s", self.peer, msg.txid[:8], exc)
            return _error(msg, f"cannot decode the chaincode input: {exc}")
        try:
            stub = PeerStub(
                self,
                channel_id=msg.channel_id,
                tx_id=msg.txid,
                args=list(chaincode_input.args),
                proposal=msg.proposal if msg.HasField("proposal") else None,
                chaincode_name=self._contract.name,
                is_init=msg.type == MsgType.INIT,
                features=self.features,
            )
        except ChaincodeError as exc:  # arguments that are not UTF-8: the caller's mistake
            return _completed(msg, proposal_response_pb2.Response(status=500, message=exc.wire))
        except ValueError as exc:  # a proposal we cannot decode: the transaction cannot run
            log.warning("[%s] tx %s: %s", self.peer, msg.txid[:8], exc)
            return _error(msg, str(exc))
        response = self._invoke_contract(msg, stub)
        # A failed transaction writes nothing, its event included (the peer would
        # discard it too); a successful one must carry it, or it is lost.
        return _completed(msg, response, stub.event if response.status < 400 else None)

    def _invoke_contract(
        self, msg: ChaincodeMessage, stub: PeerStub
    ) -> proposal_response_pb2.Response:
        """The contract's outcome as a peer Response; unexpected failures stay in the log."""
        try:
            payload = self._contract.invoke(stub)
            stub.flush_writes()  # batched writes reach the peer before COMPLETED
            return proposal_response_pb2.Response(status=200, payload=payload)
        except ChaincodeError as exc:  # "CODE: message" (vpp_shim.codes)
            return proposal_response_pb2.Response(status=500, message=exc.wire)
        except ShimError as exc:
            log.warning("[%s] tx %s: %s", self.peer, msg.txid[:8], exc)
            return proposal_response_pb2.Response(
                status=500, message=f"{Code.INTERNAL_ERROR}: chaincode shim: {exc}"
            )
        except Exception:
            log.warning(
                "[%s] tx %s: unexpected exception in %s",
                self.peer,
                msg.txid[:8],
                stub.function,
                exc_info=True,
            )
            return proposal_response_pb2.Response(
                status=500,
                message=f"{Code.INTERNAL_ERROR}: internal error in chaincode (tx {msg.txid[:8]})",
            )
        finally:
            stub.finish()


def _completed(
    msg: ChaincodeMessage,
    response: proposal_response_pb2.Response,
    event: chaincode_event_pb2.ChaincodeEvent | None = None,
) -> ChaincodeMessage:
    """The transaction's answer: the peer Response, and the event in chaincode_event."""
    completed = ChaincodeMessage(
        type=MsgType.COMPLETED,
        payload=response.SerializeToString(),
        txid=msg.txid,
        channel_id=msg.channel_id,
    )
    if event is not None:
        completed.chaincode_event.CopyFrom(event)
    return completed


def _error(msg: ChaincodeMessage, text: str) -> ChaincodeMessage:
    return ChaincodeMessage(
        type=MsgType.ERROR, payload=text.encode(), txid=msg.txid, channel_id=msg.channel_id
    )


def _function_name(msg: ChaincodeMessage) -> str:
    try:
        args = chaincode_pb2.ChaincodeInput.FromString(msg.payload).args
    except DecodeError:
        return "?"
    return args[0].decode("utf-8", errors="replace") if args else ""
