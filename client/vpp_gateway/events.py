"""Chaincode events from the Gateway's ChaincodeEvents stream, surviving reconnects.

The Gateway streams, per block, the events a chaincode emitted in valid
transactions. A long-lived listener (a vppctl watch, a settlement bot) must
not lose or repeat events when its peer restarts, so the stream remembers
the last block it delivered from and which transactions of that block it
already delivered; after a lost connection it asks again from that block
and skips those. ``Network.chaincode_events`` without a start block pins
"now" to a block number (qscc GetChainInfo) before listening, so even a
reconnect before the first event leaves no gap.

Like the transaction objects, the stream holds only a GatewayClient
(connection, signer, timeouts) and its channel name.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import grpc
from fabric_protos.gateway import gateway_pb2

from vpp_gateway.client import GatewayClient
from vpp_gateway.errors import GatewayError, map_rpc_error
from vpp_gateway.messages import chaincode_events_request

# Stream failures worth a reconnect: the peer went away or restarted.
_RETRYABLE = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL, grpc.StatusCode.ABORTED}
)
_END = object()  # the server closed the stream without an error
_MAX_BACKOFF = 5.0
# A connection that lived this long counts as healthy: its failure starts a new count.
_HEALTHY_AFTER = 30.0


@dataclass(frozen=True)
class ChaincodeEvent:
    """One event, emitted by a valid transaction committed in ``block_number``."""

    block_number: int
    tx_id: str
    event_name: str
    payload: bytes


class ChaincodeEventStream:
    """Iterator of ChaincodeEvent; close() (or ``with``) cancels it from any thread.

    ``timeout`` is an idle timeout: iteration ends (and the stream closes)
    when no event arrives for that many seconds; None waits for ever.
    After a lost connection it reconnects up to ``max_reconnects`` times in
    a row (exponential backoff from ``reconnect_delay``), then raises
    PeerUnreachableError. Events are delivered at least once per stream and,
    within one stream, never twice.
    """

    def __init__(
        self,
        client: GatewayClient,
        channel: str,
        chaincode: str,
        *,
        start_block: int | None = None,
        timeout: float | None = None,
        after_tx_id: str | None = None,
        max_reconnects: int = 5,
        reconnect_delay: float = 0.5,
    ) -> None:
        if start_block is not None and start_block < 0:
            raise ValueError(f"start_block must be >= 0, got {start_block}")
        self.client = client
        self.channel = channel
        self.chaincode = chaincode
        self.timeout = timeout
        self.max_reconnects = max_reconnects
        self.reconnect_delay = reconnect_delay
        self._after_tx_id = after_tx_id
        self._queue: queue.Queue[tuple[int, Any]] = queue.Queue()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._call: Any = None
        self._generation = 0
        self._failures = 0
        self._opened_at = 0.0
        self._pending: deque[ChaincodeEvent] = deque()
        self._last_block: int | None = None
        self._delivered: set[str] = set()  # tx IDs already delivered from _last_block
        self._start = start_block  # None: the next block committed
        client.register_stream(self)
        self._open()

    @property
    def last_block(self) -> int | None:
        """Block of the last delivered event (a checkpoint to resume from)."""
        return self._last_block

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def _open(self) -> None:
        client = self.client
        if self._last_block is not None:
            start, after = self._last_block, None
        else:
            start, after = self._start, self._after_tx_id
        request = chaincode_events_request(
            channel=self.channel,
            chaincode=self.chaincode,
            creator=client.creator,
            start_block=start,
            after_tx_id=after,
        )
        signed = gateway_pb2.SignedChaincodeEventsRequest(
            request=request, signature=client.sign(request)
        )
        with self._lock:
            if self._closed.is_set():
                return
            self._generation += 1
            generation = self._generation
            self._call = client.open_stream(signed)
            call = self._call
            self._opened_at = time.monotonic()
        threading.Thread(
            target=self._pump,
            args=(generation, call),
            name=f"vpp-events-{self.chaincode}",
            daemon=True,
        ).start()

    def _pump(self, generation: int, call: Any) -> None:
        """Reader thread: moves one connection's responses into the queue."""
        try:
            for response in call:
                self._queue.put((generation, response))
            self._queue.put((generation, _END))
        except Exception as exc:  # grpc.RpcError, or ValueError on a closed channel
            self._queue.put((generation, exc))

    def _accept(self, response: gateway_pb2.ChaincodeEventsResponse) -> None:
        block = int(response.block_number)
        if self._last_block is not None and block < self._last_block:
            return
        for event in response.events:
            if event.chaincode_id and event.chaincode_id != self.chaincode:
                continue
            if block == self._last_block and event.tx_id in self._delivered:
                continue  # delivered before the reconnect
            self._pending.append(
                ChaincodeEvent(block, event.tx_id, event.event_name, bytes(event.payload))
            )

    def _deliver(self, event: ChaincodeEvent) -> ChaincodeEvent:
        if event.block_number != self._last_block:
            self._last_block = event.block_number
            self._delivered = set()
        self._delivered.add(event.tx_id)
        return event

    def _reconnect_or_raise(self, failure: Any, deadline: float | None) -> None:
        code = failure.code() if isinstance(failure, grpc.RpcError) else None
        retryable = failure is _END or code in _RETRYABLE
        if time.monotonic() - self._opened_at > _HEALTHY_AFTER:
            self._failures = 0
        if retryable and self._failures < self.max_reconnects:
            delay = min(self.reconnect_delay * 2**self._failures, _MAX_BACKOFF)
            if deadline is not None:
                delay = max(0.0, min(delay, deadline - time.monotonic()))
            self._failures += 1
            if self._closed.wait(delay):
                return
            self._open()
            return
        self.close()
        if isinstance(failure, grpc.RpcError):
            raise map_rpc_error(failure, stage="events", address=self.client.address)
        if failure is _END:
            raise GatewayError(f"chaincode event stream from {self.client.address} kept ending")
        raise GatewayError(f"chaincode event stream failed: {failure}") from failure

    def __iter__(self) -> ChaincodeEventStream:
        return self

    def __next__(self) -> ChaincodeEvent:
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            if self._pending:
                return self._deliver(self._pending.popleft())
            if self._closed.is_set():
                raise StopIteration
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                self.close()
                raise StopIteration
            try:
                generation, item = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if generation != self._generation:
                continue  # left over from a previous connection
            if isinstance(item, gateway_pb2.ChaincodeEventsResponse):
                self._failures = 0
                self._accept(item)
                continue
            if self._closed.is_set():
                raise StopIteration
            self._reconnect_or_raise(item, deadline)

    def close(self) -> None:
        """Cancels the stream; a blocked ``next()`` in another thread then stops."""
        with self._lock:
            if self._closed.is_set():
                return
            self._closed.set()
            call, generation = self._call, self._generation
        if call is not None:
            call.cancel()
        self._queue.put((generation, _END))

    def __enter__(self) -> ChaincodeEventStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return (
            f"ChaincodeEventStream({self.chaincode!r} on {self.channel!r}, "
            f"last_block={self._last_block}, {state})"
        )
