"""invoke_chaincode: a ChaincodeSpec goes out, a two-level reply comes back.

fabric-chaincode-python sends a bare ChaincodeInput (the peer reads it as a
ChaincodeSpec without ChaincodeId and panics) and decodes the RESPONSE payload
as a Response, when it is a ChaincodeMessage wrapping the callee's Response.
"""

from __future__ import annotations

import json

from fabric_protos.peer import chaincode_pb2, proposal_response_pb2
from fake_peer import Msg, reply, response_of


def callee_completed(status: int, message: str = "", payload: bytes = b"") -> bytes:
    """What the peer puts in its RESPONSE: the callee's COMPLETED message, serialised."""
    response = proposal_response_pb2.Response(status=status, message=message, payload=payload)
    return Msg(type=Msg.COMPLETED, payload=response.SerializeToString()).SerializeToString()


def run_call(peer, txid, args, peer_answer):
    """Runs the Call transaction, answering its INVOKE_CHAINCODE with ``peer_answer(msg)``."""
    seen = []

    def answer(msg):
        assert msg.type == Msg.INVOKE_CHAINCODE, Msg.Type.Name(msg.type)
        seen.append(msg)
        return peer_answer(msg)

    done = peer.run_transaction(txid, ["Call", *args], answer=answer)
    assert len(seen) == 1
    return json.loads(response_of(done).payload), seen[0]


def test_sends_a_chaincode_spec_with_channel_suffix_and_decodes_two_levels(peer):
    def answer(msg):
        return reply(msg, callee_completed(200, "", b'{"period":"p13"}'))

    result, request = run_call(peer, "tx-cc", ["meter", "agg3", "DeliverySummary", "p13"], answer)

    spec = chaincode_pb2.ChaincodeSpec.FromString(request.payload)
    assert spec.HasField("chaincode_id")
    assert spec.chaincode_id.name == "meter/agg3"
    assert list(spec.input.args) == [b"DeliverySummary", b"p13"]
    assert (request.txid, request.channel_id) == ("tx-cc", "vpp-main")
    assert result == {"status": 200, "message": "", "payload": '{"period":"p13"}'}


def test_same_channel_call_has_no_suffix(peer):
    def answer(msg):
        return reply(msg, callee_completed(200, "", b"ok"))

    result, request = run_call(peer, "tx-cc-local", ["meter", "", "Ping"], answer)
    assert chaincode_pb2.ChaincodeSpec.FromString(request.payload).chaincode_id.name == "meter"
    assert result["payload"] == "ok"


def test_callee_refusal_keeps_its_status_and_message(peer):
    def answer(msg):
        return reply(msg, callee_completed(500, "no sealed delivery"))

    result, _ = run_call(peer, "tx-cc-500", ["meter", "agg3", "DeliverySummary", "p1"], answer)
    assert result == {"status": 500, "message": "no sealed delivery", "payload": ""}


def test_callee_error_message_becomes_a_500_response(peer):
    def answer(msg):
        inner = Msg(type=Msg.ERROR, payload=b"transaction returned with failure")
        return reply(msg, inner.SerializeToString())

    result, _ = run_call(peer, "tx-cc-err", ["meter", "agg3", "X"], answer)
    assert result == {"status": 500, "message": "transaction returned with failure", "payload": ""}


def test_peer_refusing_the_call_becomes_a_500_response(peer):
    def answer(msg):
        return reply(msg, b"INVOKE_CHAINCODE failed: chaincode meter not found", error=True)

    result, _ = run_call(peer, "tx-cc-missing", ["meter", "agg9", "X"], answer)
    assert result["status"] == 500
    assert result["message"] == "INVOKE_CHAINCODE failed: chaincode meter not found"
