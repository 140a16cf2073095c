"""Our CCaaS shim against a fake peer: handshake, ledger calls, events, errors, proposal fields."""

from __future__ import annotations

import json
import logging
import time

import pytest
from certs import issue
from fabric_protos.ledger.queryresult import kv_query_result_pb2
from fabric_protos.peer import chaincode_pb2, chaincode_shim_pb2
from fake_peer import (
    CCID,
    CHANNEL,
    FakeLedger,
    FakePeer,
    Msg,
    connected_peer,
    msg_name,
    reply,
    response_of,
    signed_proposal,
)
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given, settings
from hypothesis import strategies as st


def test_registers_with_the_package_id_and_serves_after_ready(server):
    assert server.address.startswith("127.0.0.1:")
    with FakePeer(server.address) as peer:
        register = peer.recv()
        assert register.type == Msg.REGISTER
        assert chaincode_pb2.ChaincodeID.FromString(register.payload).name == CCID
        peer.send(Msg(type=Msg.REGISTERED))
        with pytest.raises(AssertionError, match="nothing in time"):
            peer.recv(timeout=0.2)  # nothing more until READY
        peer.send(Msg(type=Msg.READY))
        done = peer.run_transaction("tx-hello", ["Echo", "hello", "peer"])
        assert response_of(done).status == 200
        assert response_of(done).payload == b"hello peer"


def test_handshake_violation_ends_the_stream(server):
    with FakePeer(server.address) as peer:
        peer.recv()  # REGISTER
        peer.send(Msg(type=Msg.READY))  # READY before REGISTERED
        error = peer.recv()
        assert error.type == Msg.ERROR
        with pytest.raises(EOFError):
            peer.recv()


def test_transaction_get_put_range_and_event_in_completed(peer):
    ledger = FakeLedger(
        {"a": b"42", "k1": b"1", "k2": b"2", "k3": b"3", "k4": b"4", "k5": b"5", "z": b"-"},
        page_size=2,
    )
    done = peer.run_transaction("tx-move", ["Move", "a", "b"], ledger=ledger)

    response = response_of(done)
    assert response.status == 200, response.message
    assert json.loads(response.payload) == {"value": "42", "keys": "k1,k2,k3,k4,k5"}
    assert ledger.writes == {"b": b"42", "a": None}
    # The event travels in the COMPLETED message (fabric-chaincode-python drops it).
    assert done.HasField("chaincode_event")
    event = done.chaincode_event
    assert event.event_name == "Moved"
    assert json.loads(event.payload) == {"from": "a", "to": "b"}
    assert event.tx_id == "tx-move"
    assert event.chaincode_id == "demo"
    # Five keys in pages of two: first page has_more, then two QUERY_STATE_NEXT with
    # the query's id; the peer frees an exhausted iterator, so no QUERY_STATE_CLOSE.
    assert ledger.request_types() == [
        "GET_STATE",
        "PUT_STATE",
        "DEL_STATE",
        "GET_STATE_BY_RANGE",
        "QUERY_STATE_NEXT",
        "QUERY_STATE_NEXT",
    ]
    range_request = chaincode_shim_pb2.GetStateByRange.FromString(ledger.requests[3].payload)
    assert (range_request.startKey, range_request.endKey) == ("k", "l")
    next_ids = {
        chaincode_shim_pb2.QueryStateNext.FromString(m.payload).id for m in ledger.requests[4:]
    }
    assert next_ids == {"q1"}
    assert all((m.channel_id, m.txid) == (CHANNEL, "tx-move") for m in ledger.requests)
    assert ledger.open_queries == {}


def test_abandoned_range_query_is_closed(peer):
    ledger = FakeLedger({f"k{i}": b"x" for i in range(5)}, page_size=2)
    done = peer.run_transaction("tx-first", ["FirstInRange", "k", "l"], ledger=ledger)
    assert response_of(done).payload == b"k0"
    assert ledger.request_types() == ["GET_STATE_BY_RANGE", "QUERY_STATE_CLOSE"]
    assert chaincode_shim_pb2.QueryStateClose.FromString(ledger.requests[1].payload).id == "q1"
    assert ledger.open_queries == {}


def test_empty_range_start_skips_the_composite_namespace(peer):
    ledger = FakeLedger({"\x00obj\x00x\x00": b"c", "a": b"1"})
    done = peer.run_transaction("tx-all", ["FirstInRange", "", ""], ledger=ledger)
    assert response_of(done).payload == b"a"
    request = chaincode_shim_pb2.GetStateByRange.FromString(ledger.requests[0].payload)
    assert (request.startKey, request.endKey) == ("\x01", "")


def test_range_over_composite_namespace_is_refused(peer):
    done = peer.run_transaction("tx-bad-range", ["FirstInRange", "\x00obj", ""])
    response = response_of(done)
    assert response.status == 500
    assert "reserved for composite keys" in response.message


def test_partial_composite_key_query(peer):
    state = {
        "\x00bid\x00p1\x00agg1\x00": b"1",
        "\x00bid\x00p1\x00agg2\x00": b"2",
        "\x00bid\x00p2\x00agg1\x00": b"3",
        "\x00ask\x00p1\x00agg1\x00": b"4",
    }
    ledger = FakeLedger(state, page_size=1)
    done = peer.run_transaction("tx-comp", ["Composite", "bid", "p1"], ledger=ledger)
    assert json.loads(response_of(done).payload) == [
        "\x00bid\x00p1\x00agg1\x00",
        "\x00bid\x00p1\x00agg2\x00",
    ]
    request = chaincode_shim_pb2.GetStateByRange.FromString(ledger.requests[0].payload)
    assert request.startKey == "\x00bid\x00p1\x00"
    assert request.endKey == "\x00bid\x00p1\x00\U0010ffff"


def test_history_for_key(peer):
    mods = [
        kv_query_result_pb2.KeyModification(
            tx_id="t2", value=b"", timestamp=Timestamp(seconds=20, nanos=5), is_delete=True
        ),
        kv_query_result_pb2.KeyModification(
            tx_id="t1", value=b"v1", timestamp=Timestamp(seconds=10), is_delete=False
        ),
    ]
    ledger = FakeLedger(history={"h": mods}, page_size=1)
    done = peer.run_transaction("tx-hist", ["History", "h"], ledger=ledger)
    assert json.loads(response_of(done).payload) == [
        {"tx": "t2", "value": "", "ts": 20_000_000_005, "del": True},
        {"tx": "t1", "value": "v1", "ts": 10_000_000_000, "del": False},
    ]
    assert ledger.request_types() == ["GET_HISTORY_FOR_KEY", "QUERY_STATE_NEXT"]


def test_chaincode_error_is_status_500_with_its_message_and_no_event(peer):
    done = peer.run_transaction("tx-refuse", ["Refuse", "bid below floor"])
    response = response_of(done)
    assert (response.status, response.message, response.payload) == (
        500,
        "NOT_READY: bid below floor",
        b"",
    )
    assert not done.HasField("chaincode_event")


def test_unknown_function_is_a_chaincode_error(peer):
    response = response_of(peer.run_transaction("tx-unknown", ["Nope"]))
    assert response.status == 500
    assert "unknown function 'Nope'" in response.message


def test_unexpected_exception_is_500_without_internals_and_logged(peer, caplog):
    with caplog.at_level(logging.WARNING, logger="vpp_shim"):
        response = response_of(peer.run_transaction("tx-crash-1234", ["Crash"]))
    assert response.status == 500
    assert "hunter2" not in response.message and "RuntimeError" not in response.message
    assert "tx-crash" in response.message
    records = [r for r in caplog.records if r.exc_info]
    assert records and "hunter2" in str(records[0].exc_info[1])
    assert records[0].levelno == logging.WARNING


def test_peer_error_reply_fails_the_transaction_with_its_message(peer):
    def refuse_get(msg):
        if msg.type == Msg.GET_STATE:
            return reply(msg, b"GET_STATE failed: ledger closed", error=True)
        return None

    done = peer.run_transaction("tx-peer-err", ["Pair", "a", "b"], answer=refuse_get)
    response = response_of(done)
    assert (response.status, response.message) == (
        500,
        "PEER_REFUSED: GET_STATE failed: ledger closed",
    )


def test_creator_transient_and_timestamp_come_from_the_proposal(peer):
    now = time.time_ns()
    cert = issue("Agg3MSP", "trader@agg3.vpp.local", ("client",), {"vpp.role": "trader"})
    proposal = signed_proposal(
        txid="tx-who",
        mspid="Agg3MSP",
        cert_pem=cert,
        transient={"price": b"123"},
        timestamp_ns=now,
    )
    done = peer.run_transaction("tx-who", ["WhoAmI", "p1", "p2"], proposal=proposal)
    assert json.loads(response_of(done).payload) == {
        "mspid": "Agg3MSP",
        "cn": "trader@agg3.vpp.local",
        "ous": ["client"],
        "attrs": {"vpp.role": "trader"},
        "transient": {"price": "123"},
        "timestamp_ns": now,
        "function": "WhoAmI",
        "params": ["p1", "p2"],
        "tx_id": "tx-who",
        "channel_id": CHANNEL,
        "is_init": False,
    }


def test_init_message_runs_the_contract_too(peer):
    done = peer.run_transaction("tx-init", ["WhoAmI"], init=True)
    assert json.loads(response_of(done).payload)["is_init"] is True


def test_undecodable_proposal_is_refused_with_error(peer):
    broken = signed_proposal(txid="tx-broken")
    broken.proposal_bytes = b"\xff\xff\xff"
    done = peer.run_transaction("tx-broken", ["Echo"], proposal=broken)
    assert done.type == Msg.ERROR, msg_name(done)
    assert b"proposal" in done.payload


def test_non_utf8_argument_is_refused(peer):
    response = response_of(peer.run_transaction("tx-bytes", ["Echo", b"\xff"]))
    assert response.status == 500
    assert "not valid UTF-8" in response.message


def test_keepalive_message_is_echoed(peer):
    peer.send(Msg(type=Msg.KEEPALIVE))
    assert peer.recv().type == Msg.KEEPALIVE


def test_reply_for_unknown_transaction_is_ignored(peer):
    peer.send(Msg(type=Msg.RESPONSE, txid="ghost", channel_id=CHANNEL))
    response = response_of(peer.run_transaction("tx-after-ghost", ["Echo", "still", "fine"]))
    assert response.payload == b"still fine"


def test_one_debug_line_per_transaction(peer, caplog):
    with caplog.at_level(logging.DEBUG, logger="vpp_shim"):
        peer.run_transaction("txlog001-abcdef", ["Echo", "x"])
        peer.run_transaction("txlog002-abcdef", ["Refuse", "no"])
    lines = [r.getMessage() for r in caplog.records if "txlog00" in r.getMessage()]
    assert len(lines) == 2, lines
    assert "Echo" in lines[0] and "-> 200" in lines[0]
    assert "Refuse" in lines[1] and "-> 500 'NOT_READY: no'" in lines[1]
    assert all(r.levelno == logging.DEBUG for r in caplog.records if "txlog00" in r.getMessage())


@settings(max_examples=25, deadline=None)
@given(n_keys=st.integers(0, 12), page_size=st.integers(1, 5), data=st.data())
def test_range_pagination_returns_every_key_once_in_order(server, n_keys, page_size, data):
    keys = sorted(
        data.draw(st.sets(st.text("abc", min_size=1, max_size=4), min_size=n_keys, max_size=n_keys))
    )
    ledger = FakeLedger(
        {f"k{k}": b"v" for k in keys} | {"a": b"out", "l": b"out"}, page_size=page_size
    )
    with connected_peer(server) as peer:
        done = peer.run_transaction("tx-pages", ["Move", "a", "b"], ledger=ledger)
    assert json.loads(response_of(done).payload)["keys"] == ",".join(f"k{k}" for k in keys)
    pages = max(1, -(-len(keys) // page_size))
    assert ledger.request_types().count("QUERY_STATE_NEXT") == pages - 1
    assert "QUERY_STATE_CLOSE" not in ledger.request_types()


@pytest.mark.parametrize("offset_s", [-600, 600])
def test_a_proposal_dated_off_the_endorsers_clock_is_refused(peer, offset_s):
    """Ledger time is the proposal's timestamp: nobody may back- or forward-date it."""
    proposal = signed_proposal(txid="tx-dated", timestamp_ns=time.time_ns() + offset_s * 10**9)
    ledger = FakeLedger()
    done = peer.run_transaction("tx-dated", ["Echo", "hi"], proposal=proposal, ledger=ledger)
    response = response_of(done)
    assert response.status == 500
    assert response.message.startswith("CLOCK_SKEW: Echo: the proposal's timestamp is 600.0 s ")
    assert ("ahead of" if offset_s > 0 else "behind") in response.message
    assert ledger.requests == []  # refused before the contract ran


def test_state_metadata_calls_reach_the_peer(peer):
    """GET_STATE_METADATA / PUT_STATE_METADATA carry a key's VALIDATION_PARAMETER."""
    ledger = FakeLedger()
    ledger.metadata["k1"] = {"VALIDATION_PARAMETER": b"old-policy", "OTHER": b"x"}
    proposal = signed_proposal(txid="tx-meta")
    done = peer.run_transaction(
        "tx-meta", ["Protect", "k1", b"new-policy".hex()], proposal=proposal, ledger=ledger
    )
    assert bytes.fromhex(response_of(done).payload.decode()) == b"old-policy"
    assert ledger.metadata_writes == {"k1": {"VALIDATION_PARAMETER": b"new-policy"}}
    assert ledger.request_types() == ["GET_STATE_METADATA", "PUT_STATE_METADATA"]
