"""Private data in our shim: the wire messages (as Fabric's Go shim sends them) and the
in-memory ledger's collection rules (as a peer enforces them)."""

from __future__ import annotations

import hashlib

import pytest
from certs import agg_trader, grid_admin, vppo_admin
from fabric_protos.ledger.queryresult import kv_query_result_pb2
from fabric_protos.peer import chaincode_shim_pb2
from vpp_shim.api import ChaincodeError, Contract, Stub, transaction
from vpp_shim.stub import MsgType, PeerFeatures, PeerStub
from vpp_shim.testing import Collection, EndorsementPolicyFailure, MemoryLedger

Msg = chaincode_shim_pb2.ChaincodeMessage


class Recorder:
    """A Requester that records each request and answers with canned payloads."""

    def __init__(self, answers: dict[int, bytes] | None = None) -> None:
        self.sent: list[tuple[int, bytes]] = []
        self.answers = answers or {}

    def request(self, channel_id: str, txid: str, msg_type: int, payload: bytes) -> Msg:
        self.sent.append((msg_type, payload))
        return Msg(type=Msg.RESPONSE, payload=self.answers.get(msg_type, b""))


def stub(recorder: Recorder, batch: int = 0) -> PeerStub:
    features = PeerFeatures(write_batch=batch, get_multiple=batch)
    return PeerStub(recorder, channel_id="ch", tx_id="tx1", args=[b"F"], features=features)


def test_reads_carry_the_collection() -> None:
    rec = Recorder({MsgType.GET_STATE: b"v", MsgType.GET_PRIVATE_DATA_HASH: b"h" * 32})
    s = stub(rec)
    assert s.get_private_data("book", "k") == b"v"
    assert s.get_private_data_hash("book", "k") == b"h" * 32
    (t1, p1), (t2, p2) = rec.sent
    assert t1 == MsgType.GET_STATE and t2 == MsgType.GET_PRIVATE_DATA_HASH
    for payload in (p1, p2):
        request = chaincode_shim_pb2.GetState.FromString(payload)
        assert (request.collection, request.key) == ("book", "k")


def test_multiple_keys_in_one_request_with_the_collection() -> None:
    result = chaincode_shim_pb2.GetStateMultipleResult(values=[b"1", b""]).SerializeToString()
    rec = Recorder({MsgType.GET_STATE_MULTIPLE: result})
    assert stub(rec, batch=100).get_private_data_multiple("book", ["a", "b"]) == [b"1", b""]
    ((msg_type, payload),) = rec.sent
    request = chaincode_shim_pb2.GetStateMultiple.FromString(payload)
    assert msg_type == MsgType.GET_STATE_MULTIPLE
    assert (request.collection, list(request.keys)) == ("book", ["a", "b"])


def test_writes_unbatched_and_batched_keep_private_and_public_apart() -> None:
    rec = Recorder()
    s = stub(rec)
    s.put_private_data("book", "k", b"v")
    s.del_private_data("book", "k")
    s.set_private_data_validation_parameter("book", "k", b"policy")
    put = chaincode_shim_pb2.PutState.FromString(rec.sent[0][1])
    delete = chaincode_shim_pb2.DelState.FromString(rec.sent[1][1])
    meta = chaincode_shim_pb2.PutStateMetadata.FromString(rec.sent[2][1])
    assert [t for t, _ in rec.sent] == [
        MsgType.PUT_STATE, MsgType.DEL_STATE, MsgType.PUT_STATE_METADATA,
    ]  # fmt: skip
    assert (put.collection, put.key, put.value) == ("book", "k", b"v")
    assert (delete.collection, delete.key) == ("book", "k")
    assert (meta.collection, meta.metadata.metakey) == ("book", "VALIDATION_PARAMETER")

    rec = Recorder()
    s = stub(rec, batch=100)
    s.put_state("k", b"public")
    s.put_private_data("book", "k", b"private")
    s.put_private_data("_implicit_org_Agg3MSP", "k", b"mine")
    assert rec.sent == []  # batched until the transaction succeeds
    s.flush_writes()
    ((msg_type, payload),) = rec.sent
    records = chaincode_shim_pb2.WriteBatchState.FromString(payload).rec
    assert msg_type == MsgType.WRITE_BATCH_STATE
    assert [(r.collection, r.key, r.value) for r in records] == [
        ("", "k", b"public"),
        ("book", "k", b"private"),
        ("_implicit_org_Agg3MSP", "k", b"mine"),
    ]


def test_range_query_names_the_collection() -> None:
    kv = kv_query_result_pb2.KV(key="\x00order\x00a\x00", value=b"1").SerializeToString()
    page = chaincode_shim_pb2.QueryResponse(
        results=[chaincode_shim_pb2.QueryResultBytes(resultBytes=kv)], has_more=False
    )
    rec = Recorder({MsgType.GET_STATE_BY_RANGE: page.SerializeToString()})
    found = list(stub(rec).get_private_data_by_partial_composite_key("book", "order", []))
    assert found == [("\x00order\x00a\x00", b"1")]
    request = chaincode_shim_pb2.GetStateByRange.FromString(rec.sent[0][1])
    assert request.collection == "book" and request.endKey == "\x00order\x00\U0010ffff"


def test_a_private_call_needs_a_collection_and_a_value() -> None:
    s = stub(Recorder())
    with pytest.raises(ChaincodeError, match="without a collection"):
        s.get_private_data("", "k")
    with pytest.raises(ChaincodeError, match="empty private value"):
        s.put_private_data("book", "k", b"")


# --- the in-memory ledger enforces the collection rules a peer enforces -----------------


class Book(Contract):
    name = "book"

    @transaction
    def Put(self, stub: Stub, key: str, value: str) -> None:
        stub.put_private_data("orderBook", key, value.encode())
        stub.put_private_data("_implicit_org_Agg3MSP", key, value.encode())

    @transaction
    def Protect(self, stub: Stub, key: str) -> None:
        from vpp_chaincode.keypolicy import owner_policy

        stub.set_private_data_validation_parameter("orderBook", key, owner_policy("Agg3MSP"))

    @transaction
    def Get(self, stub: Stub, key: str) -> bytes:
        return stub.get_private_data("orderBook", key)

    @transaction
    def Hash(self, stub: Stub, key: str) -> bytes:
        return stub.get_private_data_hash("orderBook", key)

    @transaction
    def ScanThenWrite(self, stub: Stub) -> None:
        list(stub.get_private_data_by_partial_composite_key("orderBook", "order", []))
        stub.put_state("x", b"1")


@pytest.fixture
def ledger() -> MemoryLedger:
    rules = {"orderBook": Collection(frozenset({"VPPOMSP", "GridMSP"}), member_only_read=True)}
    return MemoryLedger(collections=rules)


def test_only_members_read_and_a_non_member_peer_holds_only_hashes(ledger: MemoryLedger) -> None:
    contract = Book()
    ledger.invoke(contract, agg_trader(3), "Put", "k", "secret")  # writes need no membership
    assert "k" not in ledger.state and ledger.private["orderBook"]["k"] == b"secret"
    assert ledger.invoke(contract, vppo_admin(), "Get", "k") == b"secret"
    with pytest.raises(ChaincodeError, match="does not have read access"):
        ledger.invoke(contract, agg_trader(3), "Get", "k")
    with pytest.raises(ChaincodeError, match="matching public hash version is not available"):
        ledger.invoke(contract, grid_admin(), "Get", "k", peer_mspid="Agg4MSP")
    assert ledger.invoke(contract, agg_trader(4), "Hash", "k") == hashlib.sha256(b"secret").digest()


def test_writes_after_a_private_range_query_are_refused(ledger: MemoryLedger) -> None:
    with pytest.raises(ChaincodeError, match="performed queries on pvt data"):
        ledger.invoke(Book(), vppo_admin(), "ScanThenWrite")


def test_implicit_collection_and_private_key_policies_need_their_owner(
    ledger: MemoryLedger,
) -> None:
    contract = Book()
    with pytest.raises(EndorsementPolicyFailure, match="_implicit_org_Agg3MSP"):
        ledger.invoke(
            contract, agg_trader(3), "Put", "k", "v", endorsers=frozenset({"VPPOMSP", "GridMSP"})
        )
    everyone = frozenset({"VPPOMSP", "GridMSP", "Agg3MSP"})
    ledger.invoke(contract, agg_trader(3), "Put", "k", "v", endorsers=everyone)
    ledger.invoke(contract, agg_trader(3), "Protect", "k", endorsers=everyone)
    with pytest.raises(EndorsementPolicyFailure, match="private key 'k' of orderBook"):
        ledger.invoke(contract, vppo_admin(), "Protect", "k", endorsers=everyone - {"Agg3MSP"})
