"""`vppctl devices list|show|config|check` on the in-memory network: who each acts as, what
it prints.

The device simulator and alarms are exercised by the live test
(tests/integration/test_devices_live.py); these pin the one-call commands, so that
their plumbing (one meter query or submit each) can change without their behaviour.
"""

from __future__ import annotations

import json

import pytest
from fake_fabric import FakeFabric, PaperMarket, invoke
from fake_fabric import invoke_ok as ok
from vppctl.fleet import Device


@pytest.fixture
def device(fabric: FakeFabric) -> Device:
    """One device on agg3, proposed by Agg3's admin and certified by the Grid."""
    market = PaperMarket(fabric)
    market.register()
    d = Device.create("agg3-d0001", "PV", 4)
    batch = json.dumps([d.resource()])
    market.call("agg3-admin", "RegisterResources", batch, channel="agg3")
    market.call("grid-admin", "CertifyResources", batch, channel="agg3")
    market.call("grid-admin", "CertifyDevice", json.dumps([d.certification()]), channel="agg3")
    return d


def test_devices_list_and_show(fabric: FakeFabric, device: Device) -> None:
    listed = json.loads(ok("devices", "list", "--agg", "3", "-o", "json").stdout)
    assert [(d["device"], d["version"]) for d in listed] == [("agg3-d0001", 1)]
    assert listed[0]["software"] == device.fingerprints()["software"]
    call = fabric.calls[-1]
    assert (call.function, call.identity, call.channel, call.submitted) == (
        "GetDevices",
        "agg3-trader",
        "agg3",
        False,
    )
    table = ok("devices", "list", "--agg", "3").stdout
    assert "Devices on agg3" in table and "agg3-d0001" in table
    shown = json.loads(ok("devices", "show", "agg3-d0001", "--agg", "3", "-o", "json").stdout)
    assert [h["version"] for h in shown["history"]] == [1] and shown["alarms"] == []
    assert fabric.calls[-1].function == "GetDevice"
    assert fabric.calls[-1].args == ("agg3-d0001",)
    shown_table = ok("devices", "show", "agg3-d0001", "--agg", "3", "--as", "vppo-admin").stdout
    assert "Certifications of agg3-d0001" in shown_table and "no open alarms" in shown_table
    assert fabric.calls[-1].identity == "vppo-admin"
    empty = ok("devices", "list", "--agg", "2").stdout
    assert "no devices" in empty


def test_devices_config_and_check(fabric: FakeFabric, device: Device) -> None:
    shown = json.loads(ok("devices", "config", "--agg", "3", "-o", "json").stdout)[0]
    assert set(shown) >= {"interval_s", "report_interval_s"}
    assert fabric.calls[-1].function == "GetMeterConfig" and not fabric.calls[-1].submitted
    changed = ok("devices", "config", "--agg", "3", "--report-interval", "7200", "-o", "json")
    assert json.loads(changed.stdout)[0]["report_interval_s"] == 7200
    set_call = fabric.submits("SetMeterConfig")[-1]
    assert (set_call.identity, set_call.channel) == ("grid-admin", "agg3")
    assert json.loads(set_call.args[0]) == {"report_interval_s": 7200}
    refused = invoke("devices", "config", "--agg", "3", "--interval", "900", "--as", "agg3-admin")
    assert refused.exit_code == 1 and "devices config" in refused.stderr
    checked = json.loads(ok("devices", "check", "--agg", "3", "-o", "json").stdout)
    assert isinstance(checked, list)
    assert fabric.submits("CheckReports")[-1].identity == "vppo-admin"
