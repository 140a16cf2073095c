"""The meter chaincode on a slave channel aggN: resources, readings, sealing, summaries."""

from __future__ import annotations

import json
from typing import Any

import pytest
from certs import agg_admin, agg_meter, agg_trader, grid_admin, vppo_admin
from vpp_chaincode.meter import MeterContract, summary_digest
from vpp_shim.api import Caller, ChaincodeError
from vpp_shim.testing import MemoryLedger

P = "00001-13"


class Slave:
    """Agg3's slave channel with the meter chaincode."""

    def __init__(self, channel: str = "agg3") -> None:
        self.ledger = MemoryLedger(channel_id=channel)
        self.contract = MeterContract()

    def call(self, caller: Caller, function: str, *args: str) -> Any:
        raw = self.ledger.invoke(self.contract, caller, function, *args)
        return json.loads(raw) if raw else None

    def refused(self, caller: Caller, function: str, *args: str, match: str) -> str:
        """The call fails with a message matching ``match`` and changes nothing."""
        before = self.ledger.snapshot()
        with pytest.raises(ChaincodeError, match=match) as caught:
            self.ledger.invoke(self.contract, caller, function, *args)
        assert self.ledger.snapshot() == before
        return str(caught.value)


@pytest.fixture
def slave() -> Slave:
    s = Slave()
    s.call(agg_admin(3), "RegisterResource", "pv1", "PV", "300", "agg3-m1")
    s.call(agg_admin(3), "RegisterResource", "ess1", "ess", "200", "agg3-m1")
    s.call(agg_admin(3), "RegisterResource", "load1", "load", "150.5", "agg3-m2")
    return s


def test_version_and_ping(slave: Slave) -> None:
    info = slave.call(agg_trader(3), "Version")
    assert info["name"] == "meter"
    assert "RecordReading" in info["transactions"]
    ping = slave.call(agg_trader(3), "Ping")
    assert ping["channel"] == "agg3"
    assert "\x00ping\x00Agg3MSP\x00" in slave.ledger.state


def test_register_resources(slave: Slave) -> None:
    result = slave.call(agg_trader(3), "GetResources")
    assert result["agg"] == 3
    by_id = {r["id"]: r for r in result["resources"]}
    assert by_id["ess1"]["kind"] == "ESS"
    assert by_id["load1"]["capacity_w"] == 150_500
    assert {m["meter"]: m["resources"] for m in result["meters"]} == {
        "agg3-m1": ["ess1", "pv1"],
        "agg3-m2": ["load1"],
    }


@pytest.mark.parametrize(
    ("caller", "args", "match"),
    [
        (agg_admin(4), ("wt1", "WT", "500", "agg3-m1"), "only the Agg3MSP admin"),
        (vppo_admin(), ("wt1", "WT", "500", "agg3-m1"), "only the Agg3MSP admin"),
        (agg_trader(3), ("wt1", "WT", "500", "agg3-m1"), "not Agg3MSP/trader"),
        (agg_admin(3), ("wt1", "coal", "500", "agg3-m1"), "kind 'coal'"),
        (agg_admin(3), ("wt1", "WT", "-5", "agg3-m1"), "capacity_kw '-5': is negative"),
        (agg_admin(3), ("wt1", "WT", "0", "agg3-m1"), "capacity_kw '0': is not > 0"),
        (agg_admin(3), ("wt1", "WT", "1.0001", "agg3-m1"), "capacity_kw '1.0001'"),
        (agg_admin(3), ("wt1", "WT", "500", "agg4-m1"), "meter_id 'agg4-m1': is not a meter id"),
        (agg_admin(3), ("pv1", "PV", "10", "agg3-m1"), "resource 'pv1' is already registered"),
        (agg_admin(3), ("bad id", "PV", "10", "agg3-m1"), "resource_id 'bad id'"),
    ],
)
def test_register_resource_refusals(
    slave: Slave, caller: Caller, args: tuple[str, ...], match: str
) -> None:
    slave.refused(caller, "RegisterResource", *args, match=match)


def test_record_and_seal(slave: Slave) -> None:
    r1 = slave.call(agg_meter(3, 1), "RecordReading", "1-13", "120000", "500")
    assert r1["period"] == P and r1["meter"] == "agg3-m1"
    slave.call(agg_meter(3, 2), "RecordReading", P, "0", "30000", "agg3-m2")
    summary = slave.call(agg_admin(3), "SealPeriod", P)
    assert summary["exported_wh"] == 120_000
    assert summary["imported_wh"] == 30_500
    assert summary["net_exported_wh"] == 89_500
    assert summary["readings"] == 2
    assert summary["missing_meters"] == []
    readings = slave.call(agg_trader(3), "GetReadings", P)
    assert readings["sealed"] is True
    assert summary["sha256"] == summary_digest("agg3", P, readings["readings"])
    assert slave.call(vppo_admin(), "DeliverySummary", P) == summary
    assert slave.ledger.events[-1][1] == "PeriodSealed"


def test_seal_by_vppo_lists_missing_meters(slave: Slave) -> None:
    slave.call(agg_meter(3, 1), "RecordReading", P, "1000", "0")
    summary = slave.call(vppo_admin(), "SealPeriod", P)
    assert summary["missing_meters"] == ["agg3-m2"]
    assert summary["sealed_by"] == "VPPOMSP"


def test_seal_refusals(slave: Slave) -> None:
    slave.refused(agg_trader(3), "SealPeriod", P, match="only the Agg3MSP admin or the VPPO")
    slave.refused(grid_admin(), "SealPeriod", P, match="not GridMSP/admin")
    slave.refused(agg_admin(3), "SealPeriod", "1-25", match="hour 25 is not in 1..24")
    slave.call(agg_admin(3), "SealPeriod", P)
    slave.refused(agg_admin(3), "SealPeriod", P, match="already sealed")


def test_delivery_summary_before_seal_is_an_error(slave: Slave) -> None:
    slave.refused(vppo_admin(), "DeliverySummary", P, match="not sealed on channel agg3")


@pytest.mark.parametrize(
    ("caller", "args", "match"),
    [
        (agg_trader(3), (P, "1", "0"), "only a meter identity of Agg3MSP"),
        (agg_admin(3), (P, "1", "0"), "only a meter identity of Agg3MSP"),
        (agg_meter(4, 1), (P, "1", "0"), "only a meter identity of Agg3MSP"),
        (agg_meter(3, 1), (P, "1", "0", "agg3-m2"), "the caller is meter 'agg3-m1'"),
        (agg_meter(3, 9), (P, "1", "0"), "meter 'agg3-m9' is not registered"),
        (agg_meter(3, 1), (P, "-1", "0"), "exported_wh '-1': is negative"),
        (agg_meter(3, 1), (P, "1", "-7"), "imported_wh '-7': is negative"),
        (agg_meter(3, 1), (P, "1.5", "0"), "exported_wh '1.5': has more than 0 decimals"),
        (agg_meter(3, 1), (P, "x", "0"), "exported_wh 'x'"),
        (agg_meter(3, 1), ("13", "1", "0"), "period '13': is not a period id"),
    ],
)
def test_record_reading_refusals(
    slave: Slave, caller: Caller, args: tuple[str, ...], match: str
) -> None:
    slave.refused(caller, "RecordReading", *args, match=match)


def test_duplicate_and_sealed_readings_are_refused(slave: Slave) -> None:
    slave.call(agg_meter(3, 1), "RecordReading", P, "10", "0")
    slave.refused(agg_meter(3, 1), "RecordReading", P, "11", "0", match="already has a reading")
    slave.call(agg_admin(3), "SealPeriod", P)
    slave.refused(agg_meter(3, 2), "RecordReading", P, "5", "0", match="is sealed")
    # another period is still open for readings
    slave.call(agg_meter(3, 2), "RecordReading", "00001-14", "5", "0")


def test_meter_chaincode_refuses_a_non_aggregator_channel() -> None:
    main = Slave("vpp-main")
    main.refused(agg_admin(3), "RegisterResource", "pv1", "PV", "1", "agg3-m1", match="aggN")
