"""vppctl's building blocks: period options, output formats, error mapping, parallel calls."""

from __future__ import annotations

import json

import grpc
import pytest
from vpp_gateway import (
    CommitError,
    CommitTimeoutError,
    EndorseError,
    ErrorDetail,
    MvccConflictError,
    PeerUnreachableError,
    ProfileError,
    SubmitError,
)
from vpp_market.units import InputError
from vppctl.errors import CliError, describe
from vppctl.output import Column, num, to_csv
from vppctl.periods import PeriodSpec, parse_period
from vppctl.session import parallel


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("13", PeriodSpec(None, 13)),
        (" 2 ", PeriodSpec(None, 2)),
        ("3-13", PeriodSpec(3, 13)),
        ("00003-02", PeriodSpec(3, 2)),
        ("99999-24", PeriodSpec(99999, 24)),
    ],
)
def test_period_option(text: str, spec: PeriodSpec) -> None:
    assert parse_period(text) == spec


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("0", "hour 0 is not in 1..24"),
        ("25", "hour 25 is not in 1..24"),
        ("0-5", "day 0 is not in"),
        ("1-13-2", "is not an hour T"),
        ("t13", "is not an hour T"),
        ("", "is not an hour T"),
        ("13\x1f", "is not an hour T"),  # str.strip() dropped it: 13 was taken
        ("\xa03-13", "is not an hour T"),
        ("13\x85", "is not an hour T"),
    ],
)
def test_bad_period_option_is_a_usage_error(text: str, reason: str) -> None:
    with pytest.raises(CliError) as caught:
        parse_period(text)
    assert caught.value.exit_code == 2 and reason in caught.value.message


def test_csv_is_exact_text_with_header_and_quoting() -> None:
    columns = [Column("agg", "Agg"), num("kwh", "kWh"), Column("who", "Who"), Column("x", "X")]
    rows = [
        {"agg": "Agg1", "kwh": 90.4, "who": ["Agg1", "Agg6"], "x": None},
        {"agg": "Agg2", "kwh": 75, "who": [], "x": True},
    ]
    assert to_csv(rows, columns) == 'agg,kwh,who,x\nAgg1,90.4,"Agg1, Agg6",\nAgg2,75,,yes\n'
    assert to_csv([], columns) == "agg,kwh,who,x\n"


def _gateway_detail(message: str) -> list[ErrorDetail]:
    return [ErrorDetail("127.0.0.1:8001", "VPPOMSP", message)]


@pytest.mark.parametrize(
    ("exc", "message", "code"),
    [
        (
            EndorseError("x", details=_gateway_detail("chaincode response 500, SubmitOrder: no")),
            "refused by chaincode: SubmitOrder: no",
            1,
        ),
        (
            EndorseError("x", details=_gateway_detail("make sure the chaincode market is running")),
            "the peer refused the call: x (make sure the chaincode market is running) — is the "
            "chaincode running? check `make network-status`",
            1,
        ),
        (
            EndorseError("failed to find any endorsing peers for org(s): GridMSP"),
            "no peer of an organisation that must endorse is up: failed to find any endorsing "
            "peers for org(s): GridMSP — check `make network-status`",
            3,
        ),
        (
            PeerUnreachableError("127.0.0.1:8001", "connection refused"),
            "peer at 127.0.0.1:8001 unreachable — is the network up? run `make network-up`",
            3,
        ),
        (
            ProfileError("no connection profile at /x/connection.json; start the network"),
            "no connection profile at /x/connection.json — is the network up? run `make "
            "network-up`",
            3,
        ),
        (
            MvccConflictError("tx1", "MVCC_READ_CONFLICT", 7),
            "transaction tx1 lost a race with a concurrent transaction (MVCC_READ_CONFLICT); "
            "nothing was written — run the command again",
            1,
        ),
        (
            CommitError("tx1", "ENDORSEMENT_POLICY_FAILURE", 7),
            "transaction tx1 was committed invalid in block 7: ENDORSEMENT_POLICY_FAILURE",
            1,
        ),
        (CommitTimeoutError("tx1", 60), "transaction tx1 not committed within 60 s", 1),
        (
            SubmitError("no orderers", tx_id="tx1", grpc_code=grpc.StatusCode.UNAVAILABLE),
            "submit of transaction tx1 not confirmed: no orderers (it may still commit: "
            "check its commit status before resubmitting) — are the orderers up?",
            1,
        ),
        (InputError("--price", "x", "is not a number"), "--price 'x': is not a number", 2),
        (CliError("plain", 2), "plain", 2),
    ],
)
def test_error_mapping(exc: Exception, message: str, code: int) -> None:
    found = describe(exc)
    assert found is not None
    assert found[1] == code
    assert found[0].startswith(message), found[0]


def test_bugs_are_not_explained_away() -> None:
    assert describe(KeyError("x")) is None
    assert describe(TypeError("x")) is None


def test_parallel_keeps_order_and_raises_the_first_failure() -> None:
    assert parallel(lambda x: x * 2, [3, 1, 2]) == [6, 2, 4]

    def boom(x: int) -> int:
        if x == 2:
            raise ValueError("two")
        return x

    with pytest.raises(ValueError, match="two"):
        parallel(boom, [1, 2, 3])


def test_json_output_has_sorted_keys() -> None:
    from vppctl.output import dumps

    text = dumps([{"b": 1, "a": {"d": 2, "c": 3}}])
    assert json.loads(text) == [{"a": {"c": 3, "d": 2}, "b": 1}]
    assert text.index('"a"') < text.index('"b"') and text.index('"c"') < text.index('"d"')


@pytest.mark.parametrize("text", ["1-3\x85", "\xa012", "1,\x1f3", "1-³", "1-2-3", "x"])
def test_a_range_option_takes_ascii_digits_only(text: str) -> None:
    from vppctl.commands_simulate import parse_range

    with pytest.raises(CliError) as caught:
        parse_range(text, "--hours", 1, 24)
    assert caught.value.exit_code == 2 and "is not N or N-M" in caught.value.message
    assert parse_range(" 1 - 3 ,\t7", "--hours", 1, 24) == [1, 2, 3, 7]
