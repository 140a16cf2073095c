"""Concurrent transactions share one stream: one writer, replies routed by (channel_id, txid).

fabric-chaincode-python writes to the stream from every transaction's thread
at once (GRPC_CALL_ERROR_TOO_MANY_OPERATIONS, then 30 s peer timeouts). These
tests keep many transactions in flight on one stream at the same moment and
answer their requests out of order; a shim that serialises transactions
deadlocks here (the fake peer waits for all requests before answering), one
that writes concurrently breaks the stream or loses messages, one that routes
replies by txid alone mixes up the channels.
"""

from __future__ import annotations

import random
import threading

from fabric_protos.peer import chaincode_shim_pb2
from fake_peer import (
    FakeLedger,
    Msg,
    connected_peer,
    msg_name,
    reply,
    response_of,
)


def collect(peer, count: int, kind: int) -> list[Msg]:
    """Exactly ``count`` messages of type ``kind``: all those transactions are waiting at once."""
    msgs = [peer.recv() for _ in range(count)]
    assert [msg_name(m) for m in msgs] == [Msg.Type.Name(kind)] * count
    return msgs


def key_of(msg: Msg) -> str:
    return chaincode_shim_pb2.GetState.FromString(msg.payload).key


def test_twenty_concurrent_transactions_interleave_on_one_stream(server):
    n = 20
    rng = random.Random(7)
    with connected_peer(server) as peer:
        txids = [f"tx{i:02d}" for i in range(n)]
        for i, txid in enumerate(txids):
            peer.send_transaction(txid, ["Pair", f"a{i}", f"b{i}"])

        for _phase in ("first GET_STATE", "second GET_STATE"):
            gets = collect(peer, n, Msg.GET_STATE)
            assert {m.txid for m in gets} == set(txids)
            rng.shuffle(gets)
            for m in gets:  # each value names the transaction's own key
                peer.send(reply(m, f"{key_of(m)}-value".encode()))

        puts = collect(peer, n, Msg.PUT_STATE)
        written = {}
        for m in puts:
            put = chaincode_shim_pb2.PutState.FromString(m.payload)
            written[m.txid] = (put.key, put.value)
        for m in reversed(puts):
            peer.send(reply(m))

        done = {m.txid: m for m in collect(peer, n, Msg.COMPLETED)}
        assert set(done) == set(txids)
        for i, txid in enumerate(txids):
            response = response_of(done[txid])
            assert response.status == 200, response.message
            assert response.payload == f"a{i}-value|b{i}-value".encode()
            assert written[txid] == (f"a{i}+b{i}", f"a{i}-valueb{i}-value".encode())

        # The stream survived: no gRPC error, and it still answers.
        peer.send(Msg(type=Msg.KEEPALIVE))
        assert peer.recv().type == Msg.KEEPALIVE
        assert peer.error is None


def test_same_txid_on_two_peers_streams_is_routed_per_stream(server):
    """Endorsers of different orgs run the very same proposal (txid) at the same time."""
    both_waiting = threading.Barrier(2, timeout=5)

    def run(peer, ledger, results):
        def answer(msg):
            if msg.type == Msg.GET_STATE and key_of(msg) == "a":
                both_waiting.wait()  # both streams have a request for tx-same outstanding
            return None

        results.append(
            peer.run_transaction("tx-same", ["Pair", "a", "b"], ledger=ledger, answer=answer)
        )

    with connected_peer(server) as p1, connected_peer(server) as p2:
        r1: list[Msg] = []
        r2: list[Msg] = []
        threads = [
            threading.Thread(target=run, args=(p1, FakeLedger({"a": b"1a", "b": b"1b"}), r1)),
            threading.Thread(target=run, args=(p2, FakeLedger({"a": b"2a", "b": b"2b"}), r2)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert response_of(r1[0]).payload == b"1a|1b"
        assert response_of(r2[0]).payload == b"2a|2b"


def test_same_txid_on_two_channels_of_one_stream(server):
    """A cross-channel call re-enters the same chaincode with the same txid on another channel."""
    with connected_peer(server) as peer:
        peer.send_transaction("tx-x", ["Pair", "a", "b"], channel="agg1")
        peer.send_transaction("tx-x", ["Pair", "a", "b"], channel="agg2")
        pending = {m.channel_id: m for m in collect(peer, 2, Msg.GET_STATE)}
        assert set(pending) == {"agg1", "agg2"}
        done = {}
        for channel in ("agg2", "agg1"):
            peer.send(reply(pending[channel], f"{channel}-a".encode()))
        while len(done) < 2:
            m = peer.recv()
            if m.type == Msg.COMPLETED:
                done[m.channel_id] = m
            elif m.type == Msg.GET_STATE:
                peer.send(reply(m, f"{m.channel_id}-{key_of(m)}".encode()))
            else:
                peer.send(reply(m))
        assert response_of(done["agg1"]).payload == b"agg1-a|agg1-b"
        assert response_of(done["agg2"]).payload == b"agg2-a|agg2-b"


def test_duplicate_running_transaction_is_refused(server):
    with connected_peer(server) as peer:
        peer.send_transaction("tx-dup", ["Pair", "a", "b"])
        first_get = peer.recv()
        assert first_get.type == Msg.GET_STATE
        peer.send_transaction("tx-dup", ["Pair", "a", "b"])
        refusal = peer.recv()
        assert refusal.type == Msg.ERROR
        assert b"already running" in refusal.payload
        peer.send(reply(first_get, b"A"))
        second = peer.recv()
        peer.send(reply(second, b"B"))
        put = peer.recv()
        peer.send(reply(put))
        assert response_of(peer.recv()).payload == b"A|B"
