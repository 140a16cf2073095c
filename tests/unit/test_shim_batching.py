"""Write batching and multi-key reads: the peer features READY offers (Fabric 3.x).

Each ledger call is a round trip through the stream, the largest cost of a
Python chaincode (docs/benchmarks.md). With the features on, writes travel
in WRITE_BATCH_STATE messages just before COMPLETED and reads of many keys
in GET_STATE_MULTIPLE, in chunks of the peer's limits; without them every
call stays a single request, as before.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fabric_protos.peer import chaincode_pb2, chaincode_shim_pb2
from fake_peer import FakeLedger, FakePeer, Msg, reply, response_of, running_server
from vpp_shim.api import ChaincodeError, Contract, Stub, transaction
from vpp_shim.codes import Code
from vpp_shim.stub import PeerFeatures


class BatchLedger(FakeLedger):
    """A FakeLedger that also answers the two batch requests, as a Fabric 3.x peer does."""

    def __init__(self, *args: object, refuse_batches: bool = False, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.refuse_batches = refuse_batches
        self.batches: list[list[chaincode_shim_pb2.WriteRecord]] = []

    def _answer(self, msg: Msg) -> Msg:
        if msg.type == Msg.WRITE_BATCH_STATE:
            if self.refuse_batches:
                return reply(msg, b"invalid key in batch", error=True)
            records = list(chaincode_shim_pb2.WriteBatchState.FromString(msg.payload).rec)
            self.batches.append(records)
            for r in records:
                deleted = r.type == chaincode_shim_pb2.WriteRecord.DEL_STATE
                self.writes[r.key] = None if deleted else r.value
            return reply(msg)
        if msg.type == Msg.GET_STATE_MULTIPLE:
            keys = chaincode_shim_pb2.GetStateMultiple.FromString(msg.payload).keys
            values = [self.state.get(k, b"") for k in keys]
            result = chaincode_shim_pb2.GetStateMultipleResult(values=values)
            return reply(msg, result.SerializeToString())
        return super()._answer(msg)


class BatchContract(Contract):
    name = "batch"

    @transaction
    def Write(self, stub: Stub, count: str) -> str:  # noqa: N802 (Fabric-style names)
        for i in range(int(count)):
            stub.put_state(f"k{i:03d}", f"v{i}".encode())
        stub.put_state("k000", b"last")  # the last write of a key wins
        stub.del_state("gone")
        return "ok"

    @transaction
    def WriteThenRefuse(self, stub: Stub) -> None:  # noqa: N802
        stub.put_state("x", b"1")
        raise ChaincodeError(Code.NOT_READY, "refused after writing")

    @transaction
    def ReadMany(self, stub: Stub, count: str) -> list[str]:  # noqa: N802
        keys = [f"k{i:03d}" for i in range(int(count))] + ["absent"]
        return [v.decode() for v in stub.get_state_multiple(keys)]


def ready(write_batch: int = 0, get_multiple: int = 0) -> bytes:
    return chaincode_pb2.ChaincodeAdditionalParams(
        use_write_batch=write_batch > 0,
        max_size_write_batch=write_batch,
        use_get_multiple_keys=get_multiple > 0,
        max_size_get_multiple_keys=get_multiple,
    ).SerializeToString()


@pytest.fixture(scope="module")
def server() -> Iterator[object]:
    with running_server(BatchContract()) as srv:
        yield srv


def peer_with(server: object, payload: bytes) -> FakePeer:
    peer = FakePeer(server.address)  # type: ignore[attr-defined]
    assert peer.recv().type == Msg.REGISTER
    peer.send(Msg(type=Msg.REGISTERED))
    peer.send(Msg(type=Msg.READY, payload=payload))
    return peer


def test_writes_go_in_batches_of_the_peers_size_before_completed(server: object) -> None:
    ledger = BatchLedger()
    with peer_with(server, ready(write_batch=100)) as peer:
        done = peer.run_transaction("tx-w", ["Write", "250"], ledger=ledger)
    assert response_of(done).status == 200
    assert ledger.request_types() == ["WRITE_BATCH_STATE"] * 3
    assert [len(b) for b in ledger.batches] == [100, 100, 51]
    assert ledger.writes["k000"] == b"last" and ledger.writes["k249"] == b"v249"
    assert ledger.writes["gone"] is None and len(ledger.writes) == 251


def test_a_refused_transaction_sends_no_writes(server: object) -> None:
    ledger = BatchLedger()
    with peer_with(server, ready(write_batch=100)) as peer:
        done = peer.run_transaction("tx-r", ["WriteThenRefuse"], ledger=ledger)
    assert response_of(done).status == 500
    assert response_of(done).message == "NOT_READY: refused after writing"
    assert ledger.requests == []


def test_a_batch_the_peer_refuses_fails_the_transaction(server: object) -> None:
    ledger = BatchLedger(refuse_batches=True)
    with peer_with(server, ready(write_batch=100)) as peer:
        done = peer.run_transaction("tx-e", ["Write", "3"], ledger=ledger)
    assert response_of(done).status == 500
    assert response_of(done).message == "PEER_REFUSED: invalid key in batch"


def test_many_keys_are_read_in_chunks_of_the_peers_size(server: object) -> None:
    ledger = BatchLedger({f"k{i:03d}": f"v{i}".encode() for i in range(250)})
    with peer_with(server, ready(get_multiple=100)) as peer:
        done = peer.run_transaction("tx-m", ["ReadMany", "250"], ledger=ledger)
    values = json.loads(response_of(done).payload)
    assert values == [f"v{i}" for i in range(250)] + [""]
    assert ledger.request_types() == ["GET_STATE_MULTIPLE"] * 3
    sizes = [
        len(chaincode_shim_pb2.GetStateMultiple.FromString(m.payload).keys) for m in ledger.requests
    ]
    assert sizes == [100, 100, 51]


def test_without_the_features_every_call_is_single(server: object) -> None:
    ledger = BatchLedger({"k000": b"v0", "k001": b"v1"})
    with peer_with(server, b"") as peer:
        read = peer.run_transaction("tx-s1", ["ReadMany", "2"], ledger=ledger)
        wrote = peer.run_transaction("tx-s2", ["Write", "2"], ledger=ledger)
    assert json.loads(response_of(read).payload) == ["v0", "v1", ""]
    assert response_of(wrote).status == 200
    assert ledger.request_types() == ["GET_STATE"] * 3 + ["PUT_STATE"] * 3 + ["DEL_STATE"]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"", PeerFeatures(0, 0)),
        (b"\xff\xff", PeerFeatures(0, 0)),  # undecodable: features off, like the Go shim
        (ready(write_batch=1000, get_multiple=1000), PeerFeatures(1000, 1000)),
        (ready(write_batch=5, get_multiple=0), PeerFeatures(100, 0)),  # at least 100, as in Go
    ],
)
def test_features_from_ready(payload: bytes, expected: PeerFeatures) -> None:
    assert PeerFeatures.from_ready(payload) == expected


def test_features_can_be_switched_off_for_comparison(monkeypatch: pytest.MonkeyPatch) -> None:
    """VPP_SHIM_PEER_FEATURES=off: single calls even when the peer offers batches (A/B runs)."""
    monkeypatch.setenv("VPP_SHIM_PEER_FEATURES", "off")
    ledger = BatchLedger({"k000": b"v0"})
    with running_server(BatchContract()) as srv, peer_with(srv, ready(100, 100)) as peer:
        peer.run_transaction("tx-o1", ["ReadMany", "1"], ledger=ledger)
        peer.run_transaction("tx-o2", ["Write", "1"], ledger=ledger)
    assert ledger.request_types() == ["GET_STATE"] * 2 + ["PUT_STATE"] * 2 + ["DEL_STATE"]
