"""Refusal codes: what a program branches on, from the chaincode to vpp_gateway's ``err.code``.

Each scenario is a refusal a caller would react to differently (open the
period, stop ordering, ask the other party, ...); the code is the contract,
the message is for people. The codes are also checked to be documented.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import grpc
import pytest
from certs import agg_admin, agg_meter, agg_trader, grid_admin, self_issued_meter, vppo_admin
from fake_rpc import FakeRpcError
from market_world import CONTRACT, P, order, stage
from vpp_gateway import ErrorDetail
from vpp_gateway.errors import map_rpc_error, split_refusal_code
from vpp_shim.api import ChaincodeError, Contract, transaction
from vpp_shim.codes import CODE_PATTERN, Code, split_wire_message
from vpp_shim.testing import MemoryLedger

VPPO = vppo_admin()
DOCS = Path(__file__).resolve().parents[2] / "docs" / "chaincode-api.md"


def refusal_code(world, caller, function: str, *args: str, channel: str = "vpp-main") -> str:
    """The code of a call that must be refused (and must change nothing)."""
    before = world.snapshot()
    with pytest.raises(ChaincodeError) as caught:
        world.call(caller, function, *args, channel=channel)
    assert world.snapshot() == before
    return caught.value.code


# 1 Wh above Agg3's certified PV of 300 kW x 1 h (market_world).
OVER_BOUND = json.dumps({"agg": "Agg3", "period": P, "side": "sell", "quantity_kwh": "300.001",
                         "offer": "0.7", "reserve": "0.7"})  # fmt: skip

SCENARIOS = [
    # (stage, caller, function, args, channel, code)
    ("registered", agg_trader(3), "SubmitOrder", (order(3, "sell", "0.7", "0.7"),), None,
     Code.PERIOD_NOT_FOUND),
    ("closed", agg_trader(3), "SubmitOrder", (order(3, "sell", "0.7", "0.7"),), None,
     Code.PERIOD_NOT_OPEN),
    ("open", agg_trader(3), "SubmitOrder", (order(4, "buy", "0.7", "0.7"),), None,
     Code.NOT_AUTHORIZED),
    ("open", agg_trader(3), "SubmitOrder", ('{"agg": "Agg3"',), None, Code.BAD_ARGUMENT),
    ("open", agg_trader(3), "SubmitOrder", (OVER_BOUND,), None, Code.ORDER_OVER_CAPACITY),
    ("registered", VPPO, "GetCapacity", ("Agg9",), None, Code.NO_CAPACITY),
    ("open", VPPO, "OpenPeriod", ("1", "13"), None, Code.PERIOD_EXISTS),
    ("open", VPPO, "ClearPeriod", (P,), None, Code.PERIOD_WRONG_STATE),
    ("open", agg_trader(5), "CancelOrder", (P, "Agg5"), None, Code.NO_ORDER),
    ("cleared", agg_trader(5), "SignContract", (CONTRACT,), None, Code.NOT_A_PARTY),
    ("sealed", agg_trader(3), "SignContract", (CONTRACT,), None, Code.ALREADY_SIGNED),
    ("cleared", VPPO, "SettlePeriod", (P,), None, Code.NOT_READY),
    ("registered", agg_admin(3), "RequestAdmission", ("Agg3", "R3"), None,
     Code.ALREADY_REGISTERED),
    ("requested", VPPO, "ApproveAdmission", ("Agg9",), None, Code.NOT_FOUND),
    ("cleared", VPPO, "VoidUnsigned", (P,), None, Code.TOO_EARLY),
    ("registered", VPPO, "CloseDay", ("99999",), None, Code.NOT_FOUND),
    ("registered", VPPO, "GetAggregator", ("Agg9",), None, Code.NOT_REGISTERED),
    ("registered", VPPO, "NoSuchFunction", (), None, Code.UNKNOWN_FUNCTION),
    ("registered", VPPO, "OpenPeriod", ("1",), None, Code.WRONG_ARGUMENT_COUNT),
    ("registered", VPPO, "OpenPeriod", ("1", "x" * 65_537), None, Code.ARGUMENT_TOO_LARGE),
    ("sealed", VPPO, "SealPeriod", (P,), "agg3", Code.PERIOD_SEALED),
    ("cleared", VPPO, "AnchorDelivery", (P, "Agg3"), None, Code.DELIVERY_NOT_SEALED),
    ("anchored", VPPO, "AnchorDelivery", (P, "Agg3"), None, Code.ALREADY_ANCHORED),
    ("open", agg_meter(3, 1), "RecordReading", (P, "500001", "0"), "agg3", Code.OVER_CAPACITY),
    ("open", self_issued_meter(3, 1), "RecordReading", (P, "1", "0"), "agg3",
     Code.NOT_AUTHORIZED),
    ("cleared", VPPO, "SealPeriod", (P,), "agg3", Code.TOO_EARLY),
    ("cleared", agg_admin(3), "SealPeriod", (P,), "agg3", Code.NOT_READY),
    ("open", agg_admin(3), "SealPeriod", (P,), "agg3", Code.PERIOD_WRONG_STATE),
    ("proposed", grid_admin(), "CertifyResource", ("wt3", "WT", "99", "agg3-m1"), "agg3",
     Code.TERMS_DIFFER),
]  # fmt: skip


@pytest.mark.parametrize(
    ("at", "caller", "function", "args", "channel", "code"),
    SCENARIOS,
    ids=[f"{s[2]}-{s[5]}" for s in SCENARIOS],
)
def test_a_refusal_carries_its_code(at, caller, function, args, channel, code) -> None:
    world = stage(at)
    assert refusal_code(world, caller, function, *args, channel=channel or "vpp-main") == code


def test_the_code_travels_in_the_response_message() -> None:
    """What the peer gets: ``CODE: text``, the text still starting with the function."""
    world = stage("closed")
    with pytest.raises(ChaincodeError) as caught:
        world.call(agg_trader(3), "SubmitOrder", order(3, "sell", "0.7", "0.7"))
    wire = caught.value.wire
    assert wire.startswith("PERIOD_NOT_OPEN: SubmitOrder: period 00001-13 is CLOSED"), wire
    assert split_wire_message(wire) == ("PERIOD_NOT_OPEN", str(caught.value))


def test_the_gateway_client_exposes_the_code() -> None:
    """The peer's Gateway wraps the message as ``chaincode response 500, <message>``."""
    text = "PERIOD_NOT_OPEN: SubmitOrder: period 00001-13 is CLOSED: the gate is closed"
    failure = FakeRpcError(
        grpc.StatusCode.ABORTED,
        "failed to endorse transaction, see attached details for more info",
        [ErrorDetail("peer0:7051", "VPPOMSP", f"chaincode response 500, {text}")],
    )
    err = map_rpc_error(failure, stage="endorse", address="peer0:7051")
    assert err.code == Code.PERIOD_NOT_OPEN
    assert err.chaincode_message == text.removeprefix("PERIOD_NOT_OPEN: ")
    assert str(err) == f"chaincode refused: {err.chaincode_message} [PERIOD_NOT_OPEN]"
    assert err.grpc_code == grpc.StatusCode.ABORTED


def test_a_peer_refusal_has_no_code() -> None:
    failure = FakeRpcError(
        grpc.StatusCode.FAILED_PRECONDITION,
        "CHAINCODE_ERROR: make sure the chaincode market has been successfully defined",
        [],
    )
    err = map_rpc_error(failure, stage="endorse", address="peer0:7051")
    assert err.code is None and err.chaincode_message is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("NOT_READY: SettlePeriod: x", ("NOT_READY", "SettlePeriod: x")),
        ("SettlePeriod: x", (None, "SettlePeriod: x")),  # mixed case is not a code
        ("a: b", (None, "a: b")),
        ("X_: y", (None, "X_: y")),
        ("NOT_READY:no space", (None, "NOT_READY:no space")),
    ],
)
def test_client_and_chaincode_split_alike(text, expected) -> None:
    assert split_refusal_code(text) == expected
    assert split_wire_message(text) == expected


def test_a_code_must_be_well_formed() -> None:
    with pytest.raises(ValueError):
        ChaincodeError("period not open", "SubmitOrder: ...")
    with pytest.raises(TypeError):
        ChaincodeError("SubmitOrder: the old one-argument form")  # type: ignore[call-arg]


def test_a_type_error_inside_a_transaction_is_not_a_wrong_argument_count() -> None:
    """Only the caller's arity is WRONG_ARGUMENT_COUNT; a bug inside stays a bug."""

    class Buggy(Contract):
        @transaction
        def Go(self, stub, text: str) -> None:  # noqa: N802
            len(5)  # type: ignore[arg-type]

    ledger = MemoryLedger(channel_id="c")
    with pytest.raises(TypeError):
        ledger.invoke(Buggy(), VPPO, "Go", "x")
    with pytest.raises(ChaincodeError) as caught:
        ledger.invoke(Buggy(), VPPO, "Go")
    assert caught.value.code == Code.WRONG_ARGUMENT_COUNT


def test_every_code_is_documented_and_every_documented_code_exists() -> None:
    text = DOCS.read_text()
    section = text.split("## Refusal codes", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", section, re.M))
    assert documented == {c.value for c in Code}
    assert all(CODE_PATTERN.fullmatch(c.value) for c in Code)


def test_json_of_a_refusal_code_is_its_name() -> None:
    assert json.dumps({"code": Code.NOT_READY}) == '{"code": "NOT_READY"}'
