"""The meter chaincode on a slave channel aggN: certified resources, readings, sealing.

Trust rules (market-rules.md): metering is certified by the Grid, not by the
aggregator; a reading is bounded by certified capacity; a period is sealed
only once cleared, by AggN when every meter reported or by the VPPO after a
deadline, listing the missing meters. Each attack of issue 10 (items 1, 2)
is a test here that failed before the fix.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from certs import agg_admin, agg_meter, agg_trader, grid_admin, self_issued_meter, vppo_admin
from market_world import CONTRACT, LATE_S, SEAL_DEADLINE_S, P, World, stage
from vpp_chaincode.meter import summary_digest
from vpp_market import merkle
from vpp_shim.api import Caller

AGG3 = "agg3"


def on3(world: World, caller: Caller, function: str, *args: str) -> Any:
    return world.call(caller, function, *args, channel=AGG3)


def refused3(world: World, caller: Caller, function: str, *args: str, match: str) -> str:
    """Refused on agg3 with a message containing ``match``, writing nothing anywhere."""
    message = world.refusal(caller, function, *args, channel=AGG3)
    assert message is not None, f"{function}{args} was accepted"
    assert match in message, message
    return message


def certify(world: World, *terms: str) -> None:
    on3(world, agg_admin(3), "RegisterResource", *terms)
    on3(world, grid_admin(), "CertifyResource", *terms)


# --- resources: the aggregator proposes, the Grid certifies ------------------------------
def test_a_resource_counts_only_once_both_the_aggregator_and_the_grid_agree() -> None:
    world = stage("registered")
    proposed = on3(world, agg_admin(3), "RegisterResource", "ess3", "ess", "200.5", "agg3-m2")
    assert (proposed["status"], proposed["kind"], proposed["capacity_w"]) == (
        "PROPOSED",
        "ESS",
        200_500,
    )
    # Proposed only: no meter, no capacity, no reading.
    assert on3(world, agg_trader(3), "GetCapacity") == {
        "agg": 3,
        "supply_w": 300_000,
        "load_w": 200_000,
    }
    refused3(world, agg_meter(3, 2), "RecordReading", P, "1", "0", match="is not registered")
    certified = on3(world, grid_admin(), "CertifyResource", "ess3", "ESS", "200.5", "agg3-m2")
    assert certified["status"] == "CERTIFIED" and certified["certified_by"] == "GridMSP"
    # Storage supplies and loads.
    assert on3(world, vppo_admin(), "GetCapacity") == {
        "agg": 3,
        "supply_w": 500_500,
        "load_w": 400_500,
    }
    meters = {m["meter"]: m for m in on3(world, agg_trader(3), "GetResources")["meters"]}
    assert meters["agg3-m2"]["capacity_w"] == 200_500


@pytest.mark.parametrize(
    ("caller", "function", "args", "match"),
    [
        # Neither party alone: the Grid may not propose, the aggregator may not certify.
        (grid_admin(), "RegisterResource", ("x", "PV", "9", "agg3-m1"), "only the Agg3MSP admin"),
        (vppo_admin(), "RegisterResource", ("x", "PV", "9", "agg3-m1"), "only the Agg3MSP admin"),
        (agg_admin(3), "CertifyResource", ("wt3", "WT", "100", "agg3-m1"), "only the Grid admin"),
        (vppo_admin(), "CertifyResource", ("wt3", "WT", "100", "agg3-m1"), "only the Grid admin"),
        # The Grid certifies exactly what was proposed.
        (grid_admin(), "CertifyResource", ("wt3", "WT", "1000", "agg3-m1"),
         "capacity_kw '1000' differs from the proposed '100'"),
        (grid_admin(), "CertifyResource", ("wt3", "PV", "100", "agg3-m1"),
         "kind 'PV' differs from the proposed 'WT'"),
        (grid_admin(), "CertifyResource", ("wt3", "WT", "100", "agg3-m2"),
         "meter_id 'agg3-m2' differs"),
        (grid_admin(), "CertifyResource", ("nope", "WT", "100", "agg3-m1"),
         "resource 'nope' is not registered"),
        (grid_admin(), "CertifyResource", ("pv3", "PV", "300", "agg3-m1"), "already certified"),
        (agg_admin(3), "RegisterResource", ("wt3", "WT", "1", "agg3-m1"), "already registered"),
        (agg_admin(3), "RegisterResource", ("x", "coal", "1", "agg3-m1"), "kind 'coal'"),
        (agg_admin(3), "RegisterResource", ("x", "WT", "0", "agg3-m1"), "capacity_kw '0'"),
        (agg_admin(3), "RegisterResource", ("x", "WT", "-5", "agg3-m1"), "is negative"),
        (agg_admin(3), "RegisterResource", ("x", "WT", "5", "agg4-m1"), "is not a meter id"),
        (agg_admin(3), "RegisterResources", ("[]",), "is not a list of 1..200"),
        (agg_admin(3), "RegisterResources",
         (json.dumps([{"id": "a", "kind": "PV", "capacity_kw": "1", "meter": "agg3-m1"}] * 2),),
         "resource 'a' appears twice"),
    ],
)  # fmt: skip
def test_resource_refusals(
    caller: Caller, function: str, args: tuple[str, ...], match: str
) -> None:
    refused3(stage("proposed"), caller, function, *args, match=match)


def test_batches_propose_and_certify_many_resources_in_one_transaction() -> None:
    world = stage("registered")
    batch = json.dumps(
        [
            {"id": f"d{i}", "kind": "PV", "capacity_kw": "5", "meter": f"agg3-d{i}"}
            for i in range(50)
        ]
    )
    assert len(on3(world, agg_admin(3), "RegisterResources", batch)["resources"]) == 50
    assert len(on3(world, grid_admin(), "CertifyResources", batch)["resources"]) == 50
    assert on3(world, agg_trader(3), "GetCapacity")["supply_w"] == 300_000 + 50 * 5_000


def test_a_batch_refused_for_its_last_resource_writes_none_of_the_others() -> None:
    """The bad resource comes after good ones: nothing of the batch is written (refused3
    checks the ledger did not even try to), for a proposal and a certification alike."""
    world = stage("registered")
    old = {"id": "x1", "kind": "PV", "capacity_kw": "1", "meter": "agg3-x1"}
    new = {"id": "x2", "kind": "PV", "capacity_kw": "1", "meter": "agg3-x2"}
    on3(world, agg_admin(3), "RegisterResources", json.dumps([old]))
    refused3(world, agg_admin(3), "RegisterResources", json.dumps([new, old]),
             match="resource 'x1' is already registered")  # fmt: skip
    on3(world, agg_admin(3), "RegisterResources", json.dumps([new]))
    refused3(world, grid_admin(), "CertifyResources",
             json.dumps([old, {**new, "capacity_kw": "2"}]),
             match="resource 'x2': capacity_kw '2' differs from the proposed '1'")  # fmt: skip


# --- readings: a Grid-issued meter of this aggregator, within capacity --------------------
def test_attack_a_meter_certificate_from_the_aggregators_own_ca_is_refused() -> None:
    """Issue 10.1: Agg3's CA issued itself a meter certificate with the right attributes."""
    world = stage("open")
    refused3(world, self_issued_meter(3, 1), "RecordReading", P, "1000", "0",
             match="only a meter identity issued by GridMSP for Agg3")  # fmt: skip


def test_attack_a_grid_meter_of_another_aggregator_is_refused() -> None:
    world = stage("open")
    # Certified by the Grid for Agg4, claiming Agg3's meter id.
    impostor = agg_meter(3, 1, agg=4)
    refused3(world, impostor, "RecordReading", P, "1000", "0", match="not GridMSP/meter for Agg4")


def test_attack_a_reading_above_certified_capacity_is_refused_naming_meter_and_bound() -> None:
    """Issue 10.1: one reading worth 6.5e38 micro-yuan was accepted and paid."""
    world = stage("open")
    message = refused3(world, agg_meter(3, 1), "RecordReading", P, "6" + "0" * 38, "0",
                       match="meter agg3-m1 may report at most 500000 Wh")  # fmt: skip
    assert "exported_wh 6" in message
    # Meter agg3-m1 measures a 300 kW PV and a 200 kW load (market_world).
    refused3(world, agg_meter(3, 1), "RecordReading", P, "0", "500001",
             match="imported_wh 500001: meter agg3-m1 may report at most 500000 Wh")  # fmt: skip
    on3(world, agg_meter(3, 1), "RecordReading", P, "500000", "0")  # exactly the bound


@pytest.mark.parametrize(
    ("caller", "args", "match"),
    [
        (agg_trader(3), (P, "1", "0"), "not Agg3MSP/trader"),
        (agg_admin(3), (P, "1", "0"), "not Agg3MSP/admin"),
        (agg_meter(4, 1), (P, "1", "0"), "for Agg4"),
        (agg_meter(3, 1), (P, "1", "0", "agg3-m2"), "the caller is meter 'agg3-m1'"),
        (agg_meter(3, 9), (P, "1", "0"), "meter 'agg3-m9' is not registered"),
        (agg_meter(3, 1), (P, "-1", "0"), "exported_wh '-1': is negative"),
        (agg_meter(3, 1), (P, "1.5", "0"), "exported_wh '1.5': has more than 0 decimals"),
        (agg_meter(3, 1), ("13", "1", "0"), "period '13': is not a period id"),
    ],
)
def test_record_reading_refusals(caller: Caller, args: tuple[str, ...], match: str) -> None:
    refused3(stage("open"), caller, "RecordReading", *args, match=match)


# --- sealing: only once cleared; AggN when complete, the VPPO after the deadline ---------
def test_attack_the_vppo_cannot_seal_before_clearing_or_before_the_deadline() -> None:
    """Issue 10.2: the VPPO sealed any period at any time, erasing the delivery."""
    world = stage("closed")
    for who in (vppo_admin(), agg_admin(3)):
        refused3(world, who, "SealPeriod", P, match="is CLOSED on vpp-main")
    world = stage("cleared")
    message = refused3(world, vppo_admin(), "SealPeriod", P, match="only from")
    assert "s to go" in message and "Agg3MSP may seal before" in message
    world.pass_time(SEAL_DEADLINE_S - 30)
    refused3(world, vppo_admin(), "SealPeriod", P, match="only from")
    refused3(stage("open"), vppo_admin(), "SealPeriod", "1-14", match="is not cleared on vpp-main")


def test_the_aggregator_seals_only_once_every_certified_meter_reported() -> None:
    world = stage("cleared")
    certify(world, "ess3", "ESS", "200", "agg3-m2")
    on3(world, agg_meter(3, 1), "RecordReading", P, "100000", "0")
    refused3(world, agg_admin(3), "SealPeriod", P, match="meters agg3-m2 have not reported")
    on3(world, agg_meter(3, 2), "RecordReading", P, "0", "500")
    summary = on3(world, agg_admin(3), "SealPeriod", P)
    assert (summary["exported_wh"], summary["imported_wh"], summary["net_exported_wh"]) == (
        100_000,
        500,
        99_500,
    )
    assert summary["missing_meters"] == [] and summary["sealed_as"] == "aggregator"
    readings = on3(world, agg_trader(3), "GetReadings", P)
    assert readings["sealed"] is True
    assert summary["sha256"] == summary_digest(AGG3, P, readings["readings"])
    leaves = [{**r, "slot": None} for r in readings["readings"]]
    assert summary["merkle_root"] == merkle.root(AGG3, leaves)
    assert on3(world, vppo_admin(), "DeliverySummary", P) == summary
    assert world.slaves[3].events[-1][1] == "PeriodSealed"
    refused3(world, agg_admin(3), "SealPeriod", P, match="already sealed")
    refused3(world, agg_meter(3, 2), "RecordReading", P, "1", "0", match="is sealed")


def test_after_the_deadline_the_vppo_seals_and_the_missing_meters_reach_the_settlement() -> None:
    world = stage("cleared")
    certify(world, "ess3", "ESS", "200", "agg3-m2")
    world.call(agg_trader(3), "SignContract", CONTRACT)
    world.call(agg_trader(4), "SignContract", CONTRACT)
    on3(world, agg_meter(3, 1), "RecordReading", P, "100000", "0")  # agg3-m2 never reports
    world.call(agg_meter(4, 1), "RecordReading", P, "0", "100000", channel="agg4")
    world.call(agg_admin(4), "SealPeriod", P, channel="agg4")
    world.pass_time(LATE_S)
    summary = on3(world, vppo_admin(), "SealPeriod", P)
    assert summary["missing_meters"] == ["agg3-m2"]
    assert summary["sealed_as"] == "vppo-after-deadline" and summary["sealed_by"] == "VPPOMSP"
    assert summary["deadline_at"] == summary["cleared_at"] + SEAL_DEADLINE_S
    anchored = world.call(vppo_admin(), "AnchorDelivery", P, "Agg3")
    assert anchored["missing_meters"] == ["agg3-m2"]
    assert anchored["merkle_root"] == summary["merkle_root"]
    world.call(vppo_admin(), "AnchorDelivery", P, "Agg4")
    world.call(vppo_admin(), "SettlePeriod", P)
    settlements = {
        s["agg"]: s for s in world.call(vppo_admin(), "GetSettlements", P)["settlements"]
    }
    assert settlements[3]["missing_meters"] == ["agg3-m2"]
    assert settlements[4]["missing_meters"] == []


def test_seal_refusals_name_the_caller() -> None:
    world = stage("reported")
    refused3(world, agg_trader(3), "SealPeriod", P, match="not Agg3MSP/trader")
    refused3(world, grid_admin(), "SealPeriod", P, match="not GridMSP/admin")
    refused3(world, agg_admin(3), "SealPeriod", "1-25", match="hour 25 is not in 1..24")


def test_delivery_summary_before_seal_is_an_error() -> None:
    refused3(stage("open"), vppo_admin(), "DeliverySummary", P, match="not sealed on channel agg3")


def test_duplicate_readings_are_refused_and_other_periods_stay_open() -> None:
    world = stage("open")
    on3(world, agg_meter(3, 1), "RecordReading", P, "10", "0")
    refused3(world, agg_meter(3, 1), "RecordReading", P, "11", "0", match="already has a reading")
    on3(world, agg_meter(3, 1), "RecordReading", "00001-14", "5", "0")


def test_meter_chaincode_refuses_a_non_aggregator_channel() -> None:
    world = stage("registered")
    with pytest.raises(Exception, match="aggN"):
        world.main.invoke(world.meter, agg_admin(3), "RegisterResource", "p", "PV", "1", "agg3-m1")


def test_a_retired_resource_leaves_its_meter_and_the_seal() -> None:
    """Only the Grid retires; a meter without resources is no longer expected at a seal."""
    world = stage("cleared")
    certify(world, "ess3", "ESS", "200", "agg3-m2")
    refused3(world, agg_admin(3), "RetireResource", "ess3", match="only the Grid admin")
    on3(world, agg_meter(3, 1), "RecordReading", P, "1000", "0")
    refused3(world, agg_admin(3), "SealPeriod", P, match="meters agg3-m2 have not reported")
    retired = on3(world, grid_admin(), "RetireResource", "ess3")
    assert retired["status"] == "RETIRED"
    assert on3(world, vppo_admin(), "GetCapacity")["load_w"] == 200_000  # load3 of market_world
    refused3(world, agg_meter(3, 2), "RecordReading", P, "1", "0", match="is not registered")
    assert on3(world, agg_admin(3), "SealPeriod", P)["missing_meters"] == []
