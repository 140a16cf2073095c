"""Bad input on the live network: through the Gateway client, the CLI and raw bytes.

A bounded sample of the generated bad orders of tests/bad_inputs.py (the
in-memory test runs hundreds) is submitted by Agg3's trader. Each must be
refused at endorsement with the chaincode's own message naming the field, and
leave the ledger as it was: the same order book and key history on the peer,
and the same channel height, because a refused endorsement never reaches the
orderers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from bad_inputs import GENERATORS, BadInput, OrderContext
from helpers import (
    ensure_aggregators,
    market,
    open_test_period,
    order_json,
    query,
    sealed_order,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vpp_gateway import Contract, EndorseError, Gateway, connect_as
from vpp_market.units import format_yuan

pytestmark = pytest.mark.network

AGG = 3
TRIED: Counter[str] = Counter()


@dataclass
class Live:
    gateway: Gateway
    contract: Contract
    ctx: OrderContext
    order_key: str

    def view(self) -> tuple[Any, Any, int]:
        """What a refused call must not change: the book, the order's history, the height."""
        return (
            query(self.contract, "GetOrderBook", self.ctx.period),
            query(self.contract, "GetHistory", self.order_key),
            self.gateway.network("vpp-main").block_height(),
        )

    def refused(
        self, function: str, *args: str | bytes, code: str = "BAD_ARGUMENT", sealed: bool = False
    ) -> str:
        """Submits; asserts the chaincode refused it with ``code``; the chaincode's message.

        ``sealed``: the one argument is an order, sent as transient data (as vppctl does).
        """
        with pytest.raises(EndorseError) as caught:
            if sealed:
                owners = ["VPPOMSP", "GridMSP", f"Agg{AGG}MSP"]  # whatever agg the text names
                self.contract.submit(function, **sealed_order(str(args[0]), owners))
            else:
                self.contract.submit(function, *args)
        message = caught.value.chaincode_message
        assert message is not None, f"refused by the peer, not the chaincode: {caught.value}"
        assert caught.value.code == code, caught.value
        return message


@pytest.fixture(scope="module")
def live(network: object) -> Iterator[Live]:
    ensure_aggregators([AGG])
    with connect_as("vppo-admin") as operator:
        period = open_test_period(market(operator))
    ctx = OrderContext(AGG, period["period"], period["sale"], period["purchase"])
    with connect_as(f"agg{AGG}-trader") as gateway:
        contract = market(gateway)
        # A standing order, so "unchanged" is about a real value and a real history.
        contract.submit("SubmitOrder", **sealed_order(json.dumps(ctx.valid())))
        day, hour = period["period"].split("-")
        yield Live(gateway, contract, ctx, f"order~{day}~{hour}~{AGG:04d}")


@pytest.mark.parametrize("generator", sorted(GENERATORS))
@settings(
    max_examples=4,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_generated_bad_orders_are_refused_and_change_nothing(
    live: Live, generator: str, data: Any
) -> None:
    """4 examples of each of the 10 generators: 40 bad orders, every kind represented."""
    bad: BadInput = data.draw(GENERATORS[generator](live.ctx))
    TRIED[bad.category] += 1
    before = live.view()
    message = live.refused("SubmitOrder", bad.text, code=bad.code, sealed=True)
    assert bad.named_in(message), f"{bad.category}: {message[:300]} does not name {bad.names}"
    assert live.view() == before


@pytest.mark.parametrize(
    ("function", "args", "expected", "code"),
    [
        # Not UTF-8: the shim refuses before the contract runs, naming the argument.
        ("SubmitOrder", (b"\xff\xfe{",), "argument 1 is not valid UTF-8", "BAD_ARGUMENT"),
        # Sealed orders: no order in transient data, or an order as an argument (which the
        # block would keep for every member to read) are refused.
        ("SubmitOrder", (), "transient data 'order' is missing", "BAD_ARGUMENT"),
        ("SubmitOrder", ("{}", "{}"), "takes no arguments, got 2", "WRONG_ARGUMENT_COUNT"),
        (
            "SubmitOrder",
            (order_json(AGG, "00001-13", "buy", 1_000, 700_000),),
            "takes no arguments, got 1",
            "WRONG_ARGUMENT_COUNT",
        ),
        ("GetHistory", ("order~\x00~1",), "key 'order~\\x00~1'", "BAD_ARGUMENT"),
        ("GetPeriod", ("0-13",), "period '0-13'", "BAD_ARGUMENT"),
        ("CancelOrder", ("1-25", f"Agg{AGG}"), "period '1-25'", "BAD_ARGUMENT"),
    ],
)
def test_raw_arguments_straight_to_the_chaincode(
    live: Live, function: str, args: tuple[str | bytes, ...], expected: str, code: str
) -> None:
    before = live.view()
    message = live.refused(function, *args, code=code)
    TRIED["raw"] += 1
    assert expected in message, message
    assert live.view() == before


def test_bad_meter_reading_is_refused(live: Live) -> None:
    with connect_as(f"agg{AGG}-meter1") as gw:
        meter = gw.network(f"agg{AGG}").contract("meter")
        height = gw.network(f"agg{AGG}").block_height()
        for args, field in (
            ((live.ctx.period, "-5", "0"), "exported_wh"),
            ((live.ctx.period, "0", "1.5"), "imported_wh"),
            ((live.ctx.period, "NaN", "0"), "exported_wh"),
            (("24-99", "1", "0"), "period"),
        ):
            with pytest.raises(EndorseError) as caught:
                meter.submit("RecordReading", *args)
            TRIED["meter"] += 1
            assert field in (caught.value.chaincode_message or ""), caught.value
        assert gw.network(f"agg{AGG}").block_height() == height


def vppctl(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command line in a child process, on the network the tests use (VPP_HOME)."""
    return subprocess.run(
        [sys.executable, "-m", "vppctl", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, COLUMNS="200"),
    )


def test_bad_bids_through_the_cli(live: Live) -> None:
    """Caught by the CLI itself (exit 2, naming the option) or refused by the chaincode
    (exit 1, naming the field); either way one line on stderr and nothing written."""
    ctx = live.ctx
    base = ["bid", "--agg", str(AGG), "--period", ctx.period, "--side", "buy"]
    below = format_yuan(ctx.purchase - 10_000)
    cases = [
        (["--qty", "1.2345", "--price", format_yuan(ctx.sale)], 2, "--qty"),
        (["--qty", "-5", "--price", format_yuan(ctx.sale)], 2, "--qty"),
        (["--qty", "10", "--price", "nan"], 2, "--price"),
        (["--qty", "10", "--price", below, "--reserve", format_yuan(ctx.sale)], 1, "offer"),
        (["--qty", "10", "--price", format_yuan(ctx.sale), "--reserve", below], 1, "reserve"),
    ]
    before = live.view()
    for extra, code, field in cases:
        result = vppctl(*base, *extra)
        TRIED["cli"] += 1
        assert result.returncode == code, (extra, result.returncode, result.stderr)
        assert field in result.stderr, (extra, result.stderr)
        assert "Traceback" not in result.stderr
    assert live.view() == before


def test_a_valid_order_still_goes_through(live: Live) -> None:
    """The control: the same path accepts a good order (so refusals above are not a fluke)."""
    ctx = live.ctx
    text = order_json(AGG, ctx.period, "sell", 5_000, ctx.sale, ctx.purchase)
    stored = json.loads(live.contract.submit("SubmitOrder", **sealed_order(text)))
    assert stored["replaced"] is True and "side" not in stored  # the block keeps the result
    print(f"\nbad inputs tried live: {sum(TRIED.values())} {dict(sorted(TRIED.items()))}")
