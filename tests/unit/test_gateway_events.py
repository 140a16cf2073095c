"""Resume logic of ChaincodeEventStream, driven by scripted gateway streams."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from fabric_protos.gateway import gateway_pb2
from fabric_protos.peer import chaincode_event_pb2
from fake_gateway import make_identity
from fake_rpc import FakeRpcError
from vpp_gateway import ChaincodeEventsError, GatewayClient, PeerUnreachableError
from vpp_gateway.events import ChaincodeEventStream

IDENTITY, SIGNER = make_identity("Agg3MSP")


class ScriptedCall:
    """A server stream that yields its items, raises a failure item, or hangs until cancel."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items
        self.cancelled = threading.Event()

    def __iter__(self) -> Iterator[Any]:
        for item in self.items:
            if isinstance(item, Exception):
                raise item
            yield item
        self.cancelled.wait(10)
        raise FakeRpcError(grpc.StatusCode.CANCELLED, "cancelled")

    def cancel(self) -> None:
        self.cancelled.set()


class StubConnection:
    """The connection under a real GatewayClient: scripted streams instead of gRPC."""

    address = "stub-peer:7051"
    closed = False

    def __init__(self, calls: list[ScriptedCall]) -> None:
        self.calls = calls
        self.requests: list[gateway_pb2.ChaincodeEventsRequest] = []

    def open_stream(self, signed: gateway_pb2.SignedChaincodeEventsRequest) -> ScriptedCall:
        assert IDENTITY.verify(signed.request, signed.signature)
        self.requests.append(gateway_pb2.ChaincodeEventsRequest.FromString(signed.request))
        return self.calls.pop(0)


def block(number: int, *tx_ids: str, chaincode: str = "market") -> Any:
    return gateway_pb2.ChaincodeEventsResponse(
        block_number=number,
        events=[
            chaincode_event_pb2.ChaincodeEvent(
                chaincode_id=chaincode, tx_id=t, event_name="E", payload=t.encode()
            )
            for t in tx_ids
        ],
    )


def unavailable() -> FakeRpcError:
    return FakeRpcError(grpc.StatusCode.UNAVAILABLE, "Socket closed")


def _stream(
    calls: list[ScriptedCall], **kwargs: Any
) -> tuple[ChaincodeEventStream, StubConnection]:
    connection = StubConnection(calls)
    client = GatewayClient(connection, IDENTITY, SIGNER)  # type: ignore[arg-type]
    # Network.chaincode_events pins "now" (the block height, here 10) as the start.
    start = kwargs.pop("start_block", 10)
    stream = ChaincodeEventStream(
        client,
        "vpp-main",
        "market",
        start_block=start,
        timeout=kwargs.pop("timeout", 2),
        reconnect_delay=0,
        **kwargs,
    )
    return stream, connection


def test_reconnect_resumes_from_the_last_block_without_repeats() -> None:
    first = ScriptedCall([block(5, "t1", "t2"), unavailable()])
    # After the reconnect the peer sends block 5 again (from the start), then block 6.
    second = ScriptedCall([block(5, "t1", "t2"), block(6, "t3")])
    stream, gateway = _stream([first, second])
    got = [next(stream) for _ in range(3)]
    stream.close()
    assert [(e.block_number, e.tx_id) for e in got] == [(5, "t1"), (5, "t2"), (6, "t3")]
    assert got[0].payload == b"t1" and got[0].event_name == "E"
    starts = [r.start_position for r in gateway.requests]
    assert starts[0].specified.number == 10  # "now", as pinned by Network.chaincode_events
    assert starts[1].specified.number == 5  # resumed from the last delivered block
    assert gateway.requests[1].after_transaction_id == ""
    assert stream.last_block == 6


def test_a_block_seen_only_partly_is_completed_after_reconnect() -> None:
    # The first connection broke inside block 7's delivery; t8 was never sent.
    first = ScriptedCall([block(7, "t7"), unavailable()])
    second = ScriptedCall([block(7, "t7", "t8"), block(9, "t9")])
    stream, _ = _stream([first, second])
    got = [next(stream).tx_id for _ in range(3)]
    stream.close()
    assert got == ["t7", "t8", "t9"]


def test_reconnect_before_any_event_keeps_the_original_start() -> None:
    first = ScriptedCall([unavailable()])
    second = ScriptedCall([block(3, "a")])
    stream, gateway = _stream([first, second], start_block=2, after_tx_id="x")
    assert next(stream).tx_id == "a"
    stream.close()
    for request in gateway.requests:
        assert request.start_position.specified.number == 2
        assert request.after_transaction_id == "x"


def test_without_start_block_it_listens_from_the_next_commit() -> None:
    stream, gateway = _stream([ScriptedCall([block(4, "a")])], start_block=None)
    assert next(stream).tx_id == "a"
    stream.close()
    assert gateway.requests[0].start_position.WhichOneof("Type") == "next_commit"


def test_other_chaincodes_events_are_ignored() -> None:
    stream, _ = _stream([ScriptedCall([block(1, "x", chaincode="meter"), block(2, "y")])])
    assert next(stream).tx_id == "y"
    stream.close()


def test_gives_up_after_max_reconnects() -> None:
    calls = [ScriptedCall([unavailable()]) for _ in range(3)]
    stream, gateway = _stream(calls, max_reconnects=2)
    with pytest.raises(PeerUnreachableError):
        next(stream)
    assert len(gateway.requests) == 3
    assert stream.closed


def test_non_retryable_failures_raise_at_once() -> None:
    denied = FakeRpcError(grpc.StatusCode.PERMISSION_DENIED, "access denied")
    stream, gateway = _stream([ScriptedCall([denied])])
    with pytest.raises(ChaincodeEventsError, match="access denied"):
        next(stream)
    assert len(gateway.requests) == 1


def test_idle_timeout_stops_iteration_and_closes() -> None:
    call = ScriptedCall([])
    stream, _ = _stream([call], timeout=0.1)
    assert list(stream) == []
    assert stream.closed and call.cancelled.is_set()


def test_negative_start_block_is_refused() -> None:
    with pytest.raises(ValueError):
        _stream([], start_block=-1)
