"""Access control on the live network: a sample of the matrix, and slave-channel privacy.

tests/unit/test_access_matrix.py checks every function x role in memory. Here
a sample of it runs through real peers with the network's real certificates
(wallet identities), which is where a mistake in how roles reach the
chaincode (MSP IDs, node OUs, CA attributes) would show. Then the layer the
in-memory test cannot see: Fabric's channel membership. An organisation that
is not a member of ``agg3`` must not read it, whichever peer it asks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from helpers import (
    ensure_aggregators,
    market,
    open_test_period,
    order_json,
    query,
    sealed_order,
    wait_until,
    wait_until_endorsable,
)
from vpp_gateway import EndorseError, GatewayError, connect_as

pytestmark = pytest.mark.network

AGG, OTHER = 3, 4


@dataclass
class Period:
    id: str
    sale: int
    purchase: int


@pytest.fixture(scope="module")
def period(network: object) -> Iterator[Period]:
    ensure_aggregators([AGG, OTHER])
    wait_until_endorsable("grid-admin")  # the Grid submits below, and expects the chaincode
    with connect_as("vppo-admin") as gw:
        record = open_test_period(market(gw))
    yield Period(record["period"], record["sale"], record["purchase"])


def call(identity: str, function: str, *args: str, channel: str = "vpp-main") -> str | None:
    """Submits as ``identity``; None if it committed, else the chaincode's ``CODE: refusal``."""
    chaincode = "market" if channel == "vpp-main" else "meter"
    with connect_as(identity) as gw:
        try:
            contract = gw.network(channel).contract(chaincode)
            if function == "SubmitOrder":  # sealed: the order in transient data
                contract.submit(function, **sealed_order(args[0]))
            else:
                contract.submit(function, *args)
        except EndorseError as exc:
            assert exc.chaincode_message, f"{identity} {function}: not the chaincode: {exc}"
            return f"{exc.code}: {exc.chaincode_message}"
    return None


def test_market_sample(period: Period) -> None:
    mine = order_json(AGG, period.id, "buy", 10_000, period.purchase, period.sale)
    # (identity, function, args, None if allowed else a phrase of the refusal)
    cases = [
        ("agg3-trader", "SubmitOrder", (mine,), None),
        ("agg4-trader", "SubmitOrder", (mine,), "Agg4MSP/trader may not trade for Agg3"),
        ("agg3-meter1", "SubmitOrder", (mine,), "GridMSP/meter may not trade for Agg3"),
        ("vppo-admin", "SubmitOrder", (mine,), "VPPOMSP/admin may not trade for Agg3"),
        ("grid-admin", "CancelOrder", (period.id, "Agg3"), "GridMSP/admin may not trade"),
        ("agg3-admin", "SubmitOrder", (mine,), None),
        ("agg3-trader", "OpenPeriod", ("1", "1"), "only the VPPO admin may do this"),
        ("grid-admin", "ClosePeriod", (period.id,), "only the VPPO admin may do this"),
        ("agg4-admin", "RequestAdmission", ("Agg77", "R1"), "only the Agg77MSP admin"),
        ("agg4-admin", "ApproveAdmission", ("Agg77",), "only the VPPO admin may do this"),
        ("agg3-trader", "SettlePeriod", (period.id,), "only the VPPO admin may do this"),
    ]
    for identity, function, args, refusal in cases:
        message = call(identity, function, *args)
        if refusal is None:
            assert message is None, f"{identity} {function} must be allowed: {message}"
        else:
            assert message is not None and refusal in message, (identity, function, message)
            assert message.startswith("NOT_AUTHORIZED: "), (identity, function, message)
    with connect_as("agg4-trader") as gw:  # any member sees that orders exist (sealed)
        book = wait_until(
            lambda: _last_write_by_agg3_admin(query(market(gw), "GetOrderBook", period.id)),
            60,
            "agg4's peer shows the last allowed write",
        )
    assert [o["agg"] for o in book["orders"]] == [AGG]
    assert book["orders"][0]["sealed"] is True and "quantity_wh" not in book["orders"][0]


def _last_write_by_agg3_admin(book: dict) -> dict | None:
    orders = book["orders"]
    return book if orders and orders[-1]["submitter"].startswith("Admin@agg3") else None


def test_meter_sample_on_agg3(period: Period) -> None:
    channel = f"agg{AGG}"
    na, cap, state = "NOT_AUTHORIZED", "OVER_CAPACITY", "PERIOD_WRONG_STATE"
    # Meter m1's certified capacity bounds its hourly reading; other tests (the demo, the
    # simulator) may have certified more resources on it than the test's own.
    with connect_as(f"agg{AGG}-trader") as gw:
        meters = query(gw.network(channel).contract("meter"), "GetResources")["meters"]
    over = str(next(m["capacity_w"] for m in meters if m["meter"] == f"agg{AGG}-m1") + 1)
    # (identity, function, args, None if allowed else (code, a phrase of the refusal))
    cases = [
        ("agg3-trader", "RegisterResource", ("x-3", "PV", "1", "agg3-m1"),
         (na, "only the Agg3MSP admin")),
        ("vppo-admin", "RecordReading", (period.id, "1", "0"), (na, "issued by GridMSP for Agg3")),
        ("agg3-meter2", "RecordReading", (period.id, "1", "0", "agg3-m1"),
         (na, "its own readings")),
        ("agg3-meter1", "RecordReading", (period.id, over, "0"), (cap, "may report at most")),
        ("agg3-meter1", "RecordReading", (period.id, "1000", "0"), None),
        ("grid-admin", "SealPeriod", (period.id,),
         (na, "only the Agg3MSP admin or the VPPO admin")),
        # The period is open: neither the VPPO nor Agg3 may seal it (trust rules).
        ("vppo-admin", "SealPeriod", (period.id,), (state, "is OPEN on vpp-main")),
        ("agg3-admin", "SealPeriod", (period.id,), (state, "is OPEN on vpp-main")),
    ]  # fmt: skip
    for identity, function, args, refusal in cases:
        message = call(identity, function, *args, channel=channel)
        if refusal is None:
            assert message is None, f"{identity} {function} must be allowed: {message}"
        else:
            code, phrase = refusal
            assert message is not None and phrase in message, (identity, function, message)
            assert message.startswith(f"{code}: "), (identity, function, message)
    with connect_as("grid-admin") as gw:  # a member of agg3 that is not its owner
        meter = gw.network(channel).contract("meter")
        readings = wait_until(
            lambda: (r := query(meter, "GetReadings", period.id))["readings"] and r,
            60,
            "the Grid's peer has the reading",
        )
    assert [r["meter"] for r in readings["readings"]] == ["agg3-m1"]
    assert readings["sealed"] is False


# Identities of orgs that are not members of agg3 (meters are the Grid's: members).
NON_MEMBERS = ["agg4-admin", "agg4-trader", "agg5-admin"]
PEERS = ["own", "peer0.agg3.vpp.local", "peer0.vppo.vpp.local", "peer0.grid.vpp.local"]


@pytest.mark.parametrize("peer", PEERS)
@pytest.mark.parametrize("identity", NON_MEMBERS)
def test_a_slave_channel_is_private_to_its_members(
    period: Period, identity: str, peer: str
) -> None:
    """Reads (chaincode and ledger) and writes on agg3 by a non-member fail at the peer,
    whichever peer the non-member asks: its own (not joined to agg3) or a member's."""
    target = None if peer == "own" else peer
    with connect_as(identity, peer=target) as gw:
        network = gw.network(f"agg{AGG}")
        meter = network.contract("meter")
        attempts = {
            "GetReadings": lambda: meter.evaluate("GetReadings", period.id),
            "GetResources": lambda: meter.evaluate("GetResources"),
            "block height (qscc)": lambda: network.block_height(),
            "Ping (write)": lambda: meter.submit("Ping"),
        }
        for what, attempt in attempts.items():
            with pytest.raises(GatewayError) as caught:
                attempt()
            err = caught.value
            # Refused by Fabric (the channel's policies, or a peer that never joined it),
            # never by, or with data from, the chaincode.
            assert getattr(err, "chaincode_message", None) is None, (what, str(err))
            text = str(err).lower()
            assert "access denied" in text or "channel agg3" in text or "[agg3]" in text, text


def test_members_can_read_the_slave_channel(period: Period) -> None:
    """The control for the test above: the same reads work for agg3's members."""
    for identity in ("agg3-trader", "vppo-admin", "grid-admin"):
        with connect_as(identity) as gw:
            network = gw.network(f"agg{AGG}")
            assert network.block_height() >= 1
            resources = json.loads(network.contract("meter").evaluate("GetResources"))
            assert resources["agg"] == AGG
