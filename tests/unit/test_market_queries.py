"""The read-only market queries clients need: GetSettlements, GetConfig, GetCalendar's periods.

They replace what vppctl used to piece together from raw keys (GetHistory of
``settlement~``, ``config~`` and ``day~`` keys) and from 24 GetPeriod calls
per day. Each is open to any member, writes nothing, and answers in
canonical JSON; a refusal names the field and value.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from certs import agg_meter, agg_trader, grid_admin
from market_world import AGGS, VPPO, P, ReadSpy, World, stage
from vpp_market.tou import PAPER_TOU
from vpp_shim.api import create_composite_key, to_json_bytes
from vpp_shim.testing import MemoryStub

TOU = json.dumps([[0, 12, "0.9", "0.6"], [12, 24, "0.95", "0.65"]])
LINES = json.dumps([["R3", "R4", "10000"], ["R4", "R5", "10000"]])


def read_only(world: World, function: str, *args: str) -> Any:
    """Calls ``function`` as a trader; checks it wrote nothing and answered canonical JSON."""
    before = world.snapshot()
    stub = MemoryStub(world.main, agg_trader(5), function, list(args), {})
    raw = world.market.invoke(stub)
    assert stub.writes == {} and stub.event is None
    world.main.commit(stub)
    assert world.snapshot() == before
    value = json.loads(raw)
    assert raw == to_json_bytes(value)
    return value


def settle_empty(world: World, day: int, hour: int) -> str:
    """Opens, closes, clears and settles a period nobody ordered in; its id."""
    pid = f"{day:05d}-{hour:02d}"
    world.call(VPPO, "OpenPeriod", str(day), str(hour))
    for step in ("ClosePeriod", "ClearPeriod", "SettlePeriod"):
        world.call(VPPO, step, pid)
    return pid


# --- GetSettlements ------------------------------------------------------------------
def test_settlements_of_a_settled_period_by_aggregator() -> None:
    world = stage("settled")
    result = read_only(world, "GetSettlements", "1-13")
    assert result["period"] == P
    assert [s["agg"] for s in result["settlements"]] == [3, 4]  # Agg5 had no order
    for s in result["settlements"]:
        key = create_composite_key("settlement", ["00001", "13", f"{s['agg']:04d}"])
        assert s == json.loads(world.main.state[key])
        assert s["period"] == P
    seller, buyer = result["settlements"]
    assert (seller["side"], buyer["side"]) == ("sell", "buy")
    assert seller["contracted_wh"] == buyer["contracted_wh"] == 100_000
    assert seller["net"] > 0 > buyer["net"]
    wallets = {w["wallet"]: w["balance"] for w in world.call(VPPO, "GetWallets")["wallets"]}
    assert seller["net"] == wallets["agg3"] and buyer["net"] == wallets["agg4"]


@pytest.mark.parametrize("name", ["open", "closed", "cleared", "anchored"])
def test_settlements_are_empty_until_the_period_settles(name: str) -> None:
    assert read_only(stage(name), "GetSettlements", P) == {"period": P, "settlements": []}


def test_settlements_are_those_of_the_period_only() -> None:
    world = stage("settled")
    other = settle_empty(world, 1, 14)
    assert read_only(world, "GetSettlements", other) == {"period": other, "settlements": []}
    assert len(read_only(world, "GetSettlements", P)["settlements"]) == 2


def test_settlements_read_one_key_range() -> None:
    world = stage("settled")
    stub = ReadSpy(world.main, grid_admin(), "GetSettlements", [P], {})
    world.market.invoke(stub)
    assert stub.reads == [
        create_composite_key("period", ["00001", "13"]),
        "partial settlement~00001~13",
    ]


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        ("1-14", "GetSettlements: period 00001-14 has not been opened"),
        ("2-13", "GetSettlements: period 00002-13 has not been opened"),
        ("0-13", "GetSettlements: period '0-13'"),
        ("1-25", "GetSettlements: period '1-25'"),
        ("", "GetSettlements: period ''"),
    ],
)
def test_settlements_refuse_an_unknown_or_bad_period(period: str, expected: str) -> None:
    message = stage("settled").refusal(agg_meter(3, 1), "GetSettlements", period)
    assert message is not None and message.startswith(expected), message


# --- GetConfig -----------------------------------------------------------------------
def test_config_defaults_are_what_the_chaincode_applies() -> None:
    world = stage("registered")
    tou = read_only(world, "GetConfig", "tou")
    assert tou == {
        "bands": [
            {
                "start_hour": b.start_hour,
                "end_hour": b.end_hour,
                "sale": b.sale,
                "purchase": b.purchase,
            }
            for b in PAPER_TOU.bands
        ],
        "loaded_tx": None,
    }
    assert read_only(world, "GetConfig", "topology") == {"lines": None, "loaded_tx": None}
    assert read_only(world, "GetConfig", "calendar") == {"last_closed_day": 0}
    # The default table is the one OpenPeriod prices from, for every hour.
    for hour in range(1, 25):
        opened = world.call(VPPO, "OpenPeriod", "1", str(hour))
        prices = PAPER_TOU.prices_for(hour)
        assert (opened["sale"], opened["purchase"]) == (prices.sale, prices.purchase)


def test_config_is_what_was_loaded() -> None:
    world = stage("registered")
    loaded_tou = world.call(VPPO, "LoadTou", TOU)
    loaded_lines = world.call(VPPO, "LoadTopology", LINES)
    assert read_only(world, "GetConfig", "tou") == loaded_tou
    assert loaded_tou["bands"][1] == {
        "start_hour": 12,
        "end_hour": 24,
        "sale": 950_000,
        "purchase": 650_000,
    }
    assert read_only(world, "GetConfig", "topology") == loaded_lines
    assert loaded_lines["lines"][0] == {"a": "R3", "b": "R4", "limit_w": 10_000_000}
    assert loaded_tou["loaded_tx"] and loaded_lines["loaded_tx"]


def test_config_calendar_follows_close_day() -> None:
    world = stage("settled")
    assert read_only(world, "GetConfig", "calendar") == {"last_closed_day": 0}
    world.call(VPPO, "CloseDay", "1")
    assert read_only(world, "GetConfig", "calendar") == {"last_closed_day": 1}


@pytest.mark.parametrize("name", ["wallet", "TOU", " tou", "config~tou", "", "\x00"])
def test_config_refuses_other_names(name: str) -> None:
    message = stage("registered").refusal(grid_admin(), "GetConfig", name)
    assert message == f"GetConfig: name {name!r}: is not one of tou, topology, calendar, market"


# --- GetCalendar ---------------------------------------------------------------------
def test_calendar_lists_each_days_periods() -> None:
    world = stage("settled")  # day 1: 13 SETTLED
    world.call(VPPO, "OpenPeriod", "1", "14")
    world.call(VPPO, "OpenPeriod", "1", "2")
    world.call(VPPO, "ClosePeriod", "1-2")
    world.call(VPPO, "OpenPeriod", "3", "24")
    world.call(VPPO, "OpenPeriod", "3", "1")
    calendar = read_only(world, "GetCalendar")
    assert calendar == {
        "last_closed_day": 0,
        "days": [
            {
                "day": 1,
                "closed": False,
                "periods": [
                    {"period": "00001-02", "t": 2, "status": "CLOSED"},
                    {"period": "00001-13", "t": 13, "status": "SETTLED"},
                    {"period": "00001-14", "t": 14, "status": "OPEN"},
                ],
            },
            {
                "day": 3,
                "closed": False,
                "periods": [
                    {"period": "00003-01", "t": 1, "status": "OPEN"},
                    {"period": "00003-24", "t": 24, "status": "OPEN"},
                ],
            },
        ],
    }


def test_calendar_keeps_closed_days_and_their_periods() -> None:
    world = stage("settled")
    world.call(VPPO, "CloseDay", "1")
    world.call(VPPO, "OpenPeriod", "2", "13")
    calendar = read_only(world, "GetCalendar")
    assert calendar["last_closed_day"] == 1
    day1, day2 = calendar["days"]
    assert (day1["day"], day1["closed"], day1["periods"]) == (
        1,
        True,
        [{"period": P, "t": 13, "status": "SETTLED"}],
    )
    assert day1["closed_tx"]  # the day record as stored, plus its periods
    assert (day2["day"], day2["closed"]) == (2, False)
    assert day2["periods"] == [{"period": "00002-13", "t": 13, "status": "OPEN"}]


def test_calendar_before_any_period() -> None:
    assert read_only(stage("registered"), "GetCalendar") == {"last_closed_day": 0, "days": []}


def test_calendar_reads_the_same_keys_however_many_periods() -> None:
    """One range of day keys and one partial-key query over every period, never per hour."""
    world = stage("registered")
    for day in (1, 2):
        for hour in range(1, 25):
            world.call(VPPO, "OpenPeriod", str(day), str(hour))
    stub = ReadSpy(world.main, VPPO, "GetCalendar", [], {})
    result = json.loads(world.market.invoke(stub))
    assert [len(d["periods"]) for d in result["days"]] == [24, 24]
    assert sorted(stub.reads) == sorted(
        [
            "partial period~",
            "range 'day~00001'..'day~99999\\x00'",
            create_composite_key("config", ["calendar"]),
        ]
    )


def test_queries_are_open_to_every_member() -> None:
    world = stage("settled")
    for n in AGGS:
        for caller in (agg_trader(n), agg_meter(n, 1)):
            assert world.call(caller, "GetSettlements", P)["settlements"]
            assert world.call(caller, "GetConfig", "topology")["lines"] is None
            assert world.call(caller, "GetCalendar")["days"][0]["periods"]
