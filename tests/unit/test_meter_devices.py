"""Issue 13 on the in-memory ledger: device certification, fingerprint alarms, signed readings.

Every refusal is checked to write nothing (World.refusal); the live tests
(tests/integration/test_devices_live.py) repeat the key ones on the network.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from certs import agg_admin, agg_meter, agg_trader, grid_admin, vppo_admin
from market_world import P, World, stage
from vpp_market import merkle
from vpp_shim.api import Caller, ChaincodeError
from vpp_shim.codes import Code
from vppctl.fleet import Device, fingerprint

CH = "agg3"


def on3(world: World, caller: Caller, function: str, *args: str) -> Any:
    return world.call(caller, function, *args, channel=CH)


def refused(world: World, caller: Caller, function: str, *args: str, code: Code, match: str
            ) -> str:  # fmt: skip
    before = world.snapshot()
    with pytest.raises(ChaincodeError) as caught:
        world.call(caller, function, *args, channel=CH)
    assert world.snapshot() == before, "a refused call changed the ledger"
    assert caught.value.code == code, caught.value
    assert match in str(caught.value), str(caught.value)
    return str(caught.value)


@pytest.fixture(scope="module")
def fleet() -> list[Device]:
    return [Device.create(f"agg3-d{i}", "PV", 4) for i in range(3)]  # 4 kW: 1000 Wh / 15 min


def certified_world(fleet: list[Device]) -> World:
    world = stage("open")
    batch = json.dumps([d.resource() for d in fleet])
    on3(world, agg_admin(3), "RegisterResources", batch)
    on3(world, grid_admin(), "CertifyResources", batch)
    on3(world, grid_admin(), "CertifyDevice", json.dumps([d.certification() for d in fleet]))
    return world


# --- certification --------------------------------------------------------------------------
def test_the_grid_certifies_versions_and_keeps_the_history(fleet: list[Device]) -> None:
    world = certified_world(fleet)
    d = fleet[0]
    view = on3(world, agg_trader(3), "GetDevice", d.id)
    assert (
        view["device"]["version"] == 1
        and view["device"]["settings"] == d.fingerprints()["settings"]
    )
    new_settings = fingerprint("settings: p_max=80%")
    on3(world, grid_admin(), "CertifyDevice",
        json.dumps({**d.certification(), "settings": new_settings}))  # fmt: skip
    view = on3(world, vppo_admin(), "GetDevice", d.id)
    assert view["device"]["version"] == 2 and view["device"]["settings"] == new_settings
    assert [h["version"] for h in view["history"]] == [1, 2]
    assert view["history"][0]["settings"] == d.fingerprints()["settings"]
    assert all(h["certified_by"].startswith("GridMSP/") for h in view["history"])


def test_a_certification_refused_for_its_last_device_writes_none(fleet: list[Device]) -> None:
    world = certified_world(fleet)
    stranger = Device.create("agg3-nowhere", "PV", 4)  # no resource on its meter
    refused(world, grid_admin(), "CertifyDevice",
            json.dumps([fleet[0].certification(), stranger.certification()]),
            code=Code.NOT_REGISTERED, match="device 'agg3-nowhere' is not registered")  # fmt: skip


@pytest.mark.parametrize(
    ("caller", "mutate", "code", "match"),
    [
        (agg_admin(3), lambda c: c, Code.NOT_AUTHORIZED, "only the Grid admin"),
        (grid_admin(), lambda c: {**c, "software": "abc"}, Code.BAD_ARGUMENT, "SHA-256"),
        (grid_admin(), lambda c: {**c, "cert_pem": "x"}, Code.BAD_ARGUMENT, "PEM certificate"),
        (grid_admin(), lambda c: {**c, "device": "agg3-nope"}, Code.NOT_REGISTERED,
         "certify a resource on meter agg3-nope first"),
        (grid_admin(), lambda c: {**c, "device": "agg4-d0"}, Code.BAD_ARGUMENT, "meter id of Agg3"),
    ],
)  # fmt: skip
def test_certification_refusals(fleet, caller, mutate, code, match) -> None:
    world = certified_world(fleet)
    refused(world, caller, "CertifyDevice", json.dumps(mutate(fleet[0].certification())),
            code=code, match=match)  # fmt: skip


# --- fingerprint reports and alarms -----------------------------------------------------------
def test_a_changed_setting_raises_exactly_one_alarm_and_a_matching_report_clears_it(
    fleet: list[Device],
) -> None:
    world = certified_world(fleet)
    d = fleet[1]
    ok = on3(world, agg_admin(3), "ReportFingerprints", json.dumps([x.report() for x in fleet]))
    assert ok["raised"] == [] and on3(world, vppo_admin(), "GetAlarms")["alarms"] == []
    tampered = {**d.report(), "settings": fingerprint("settings: p_max=120%")}
    result = on3(world, agg_trader(3), "ReportFingerprints", json.dumps(tampered))
    assert [(a["device"], a["field"]) for a in result["raised"]] == [(d.id, "settings")]
    alarm = result["raised"][0]
    assert alarm["expected"] == d.fingerprints()["settings"]
    assert alarm["found"] == tampered["settings"]
    event = world.slaves[3].events[-1]
    assert event[1] == "DeviceAlarms" and json.loads(event[2])["raised"] == [alarm]
    # The same fault reported again: still one alarm, no new event.
    events = len(world.slaves[3].events)
    again = on3(world, agg_trader(3), "ReportFingerprints", json.dumps(tampered))
    assert again["raised"] == [] and len(world.slaves[3].events) == events
    assert len(on3(world, grid_admin(), "GetAlarms")["alarms"]) == 1
    cleared = on3(world, agg_trader(3), "ReportFingerprints", json.dumps(d.report()))
    assert [(a["field"], a["cleared_by"]) for a in cleared["cleared"]] == [("settings", "report")]
    assert on3(world, grid_admin(), "GetAlarms")["alarms"] == []


def test_an_uncertified_device_and_a_silent_device_raise_alarms(fleet: list[Device]) -> None:
    world = certified_world(fleet)
    stranger = Device.create("agg3-x9", "PV", 1)
    result = on3(world, agg_admin(3), "ReportFingerprints", json.dumps(stranger.report()))
    assert [(a["device"], a["field"], a["expected"]) for a in result["raised"]] == [
        ("agg3-x9", "certification", None)
    ]
    on3(world, grid_admin(), "SetMeterConfig", json.dumps({"report_interval_s": 600}))
    assert on3(world, vppo_admin(), "CheckReports")["raised"] == []  # all certified just now
    world.pass_time(601)
    raised = on3(world, vppo_admin(), "CheckReports")["raised"]
    # The stage's own device agg3-m1 (market_world.DEVICE) is silent too.
    assert sorted(a["device"] for a in raised) == sorted([d.id for d in fleet] + ["agg3-m1"])
    assert on3(world, vppo_admin(), "CheckReports")["raised"] == []  # one alarm per silence
    # A new certification clears the device's alarms.
    certified = on3(world, grid_admin(), "CertifyDevice", json.dumps(fleet[0].certification()))
    assert [(a["device"], a["cleared_by"]) for a in certified["cleared"]] == [
        (fleet[0].id, "certification")
    ]
    assert len(on3(world, grid_admin(), "GetAlarms")["alarms"]) == 4  # 3 silent + the stranger


# --- signed interval readings -----------------------------------------------------------------
def batch(fleet: list[Device], slot: int = 0, wh: int = 500, period: str = P) -> list[list[Any]]:
    return [d.reading(CH, period, slot, wh, 0) for d in fleet]


def test_a_batch_of_signed_readings_commits_and_the_seal_carries_total_and_root(
    fleet: list[Device],
) -> None:
    world = certified_world(fleet)
    readings = [r for slot in range(4) for r in batch(fleet, slot, 250 + slot)]
    result = on3(world, agg_admin(3), "SubmitReadings", json.dumps(readings))
    assert (result["accepted"], result["devices"]) == (12, 3)
    world.call(agg_meter(3, 1), "RecordReading", P, "1000", "0", channel=CH)
    world.call(vppo_admin(), "ClosePeriod", P)
    world.call(vppo_admin(), "ClearPeriod", P)
    summary = on3(world, agg_admin(3), "SealPeriod", P)
    assert summary["interval_readings"] == 12 and summary["readings"] == 13
    assert summary["exported_wh"] == 1000 + 3 * (250 + 251 + 252 + 253)
    stored = on3(world, agg_trader(3), "GetReadings", P)
    leaves = [{**r, "slot": None} for r in stored["readings"]] + stored["interval_readings"]
    assert summary["merkle_root"] == merkle.root(CH, leaves)
    # Any one reading is provable against the root; an altered one is not.
    ordered = merkle.ordered(leaves)
    i = 5
    path = merkle.proof(CH, leaves, i)
    assert merkle.verify(CH, ordered[i], path, summary["merkle_root"])
    assert not merkle.verify(CH, {**ordered[i], "exported_wh": 1}, path, summary["merkle_root"])


def test_forged_over_capacity_and_replayed_batches_are_refused_whole(fleet: list[Device]) -> None:
    world = certified_world(fleet)
    good = batch(fleet)
    forged = [list(r) for r in good]
    forged[1][3] = 501  # the energy changed after signing
    bad_sig = "readings[1] (device agg3-d1, 00001-13 slot 0): the signature does not verify"
    refused(world, agg_admin(3), "SubmitReadings", json.dumps(forged), code=Code.BAD_SIGNATURE,
            match=bad_sig)  # fmt: skip
    other_key = Device.create("agg3-d2", "PV", 4)  # right id, a key the Grid never certified
    stolen = [*good[:2], other_key.reading(CH, P, 0, 500, 0)]
    refused(world, agg_admin(3), "SubmitReadings", json.dumps(stolen), code=Code.BAD_SIGNATURE,
            match="readings[2]")  # fmt: skip
    over = [*good[:2], fleet[2].reading(CH, P, 0, 1001, 0)]  # 4 kW x 15 min = 1000 Wh
    refused(world, agg_admin(3), "SubmitReadings", json.dumps(over), code=Code.OVER_CAPACITY,
            match="readings[2] (device agg3-d2, 00001-13 slot 0): exported_wh 1001: device "
                  "agg3-d2 may report at most 1000 Wh in 900 s")  # fmt: skip
    refused(world, agg_admin(3), "SubmitReadings", json.dumps([*good, good[0]]),
            code=Code.DUPLICATE_READING, match="readings[3] (device agg3-d0")  # fmt: skip
    on3(world, agg_admin(3), "SubmitReadings", json.dumps(good))
    refused(world, agg_admin(3), "SubmitReadings", json.dumps(good), code=Code.DUPLICATE_READING,
            match="already recorded (a replayed reading)")  # fmt: skip
    # Signed for agg3, replayed on agg4: the channel is in the signed bytes.
    moved = [r for r in good]
    message = world.refusal(agg_admin(4), "SubmitReadings", json.dumps(moved), channel="agg4")
    assert message is not None and "meter id of Agg4" in message


def test_an_hour_sent_in_several_batches_adds_up_and_a_later_replay_is_refused(
    fleet: list[Device],
) -> None:
    """A device's readings of an hour share one record; batches add to it in slot order."""
    world = certified_world(fleet)
    for slots in ((3, 1), (0,), (2,)):  # out of order, across three transactions
        on3(world, agg_admin(3), "SubmitReadings",
            json.dumps([r for s in slots for r in batch(fleet, s, 100 + s)]))  # fmt: skip
    stored = on3(world, agg_trader(3), "GetReadings", P)["interval_readings"]
    assert [(r["meter"], r["slot"], r["exported_wh"]) for r in stored] == [
        (d.id, s, 100 + s) for d in fleet for s in range(4)
    ]
    again = batch(fleet[:1], 2, 102)  # slot 2 of agg3-d0 once more, in a later batch
    refused(world, agg_admin(3), "SubmitReadings", json.dumps(again),
            code=Code.DUPLICATE_READING, match="readings[0] (device agg3-d0, 00001-13 slot 2): "
            "is already recorded")  # fmt: skip


@pytest.mark.parametrize(
    ("caller", "payload", "code", "match"),
    [
        (grid_admin(), None, Code.NOT_AUTHORIZED, "only Agg3MSP"),
        (agg_admin(3), "[]", Code.BAD_ARGUMENT, "is not a list of 1..2000"),
        (agg_admin(3), '[["00001-13", "agg3-d0", 4, 1, 0, "AA=="]]', Code.BAD_ARGUMENT,
         "slot 4: is not in 0..3"),
        (agg_admin(3), '[["00001-13", "agg3-d0", 0, 1.5, 0, "AA=="]]', Code.BAD_ARGUMENT,
         "exported_wh '1.5'"),
        (agg_admin(3), '[["00001-13", "agg3-d0", 0, 1, 0, "%%"]]', Code.BAD_ARGUMENT,
         "signature: is not a base64"),
        (agg_admin(3), '[["00001-13", "agg3-zz", 0, 1, 0, "AA=="]]', Code.NOT_REGISTERED,
         "the device is not certified"),
    ],
)  # fmt: skip
def test_reading_batch_refusals(fleet, caller, payload, code, match) -> None:
    world = certified_world(fleet)
    refused(world, caller, "SubmitReadings", payload or json.dumps(batch(fleet)),
            code=code, match=match)  # fmt: skip


def test_merkle_tree_shapes() -> None:
    leaves = [{"meter": f"m{i}", "period": P, "slot": 0, "exported_wh": i, "imported_wh": 0}
              for i in range(7)]  # fmt: skip
    root = merkle.root(CH, leaves)
    for i in range(7):
        path = merkle.proof(CH, leaves, i)
        assert merkle.verify(CH, merkle.ordered(leaves)[i], path, root)
        assert not merkle.verify("agg4", merkle.ordered(leaves)[i], path, root)
    assert merkle.root(CH, []) == merkle.EMPTY_ROOT
    assert merkle.root(CH, leaves[:1]) != merkle.root(CH, leaves[:2])
