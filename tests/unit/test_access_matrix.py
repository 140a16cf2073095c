"""Access control, the full matrix: every market and meter function x every role.

For each function the world is put in a state where the call succeeds for an
allowed caller (market_world's stages), so a refusal can only come from who
is calling. Allowed roles must succeed; every other role must be refused with
a message naming the caller's MSP and role (``Agg5MSP/trader``), and the
refused call must leave every channel's state, history and events unchanged.

The chaincode is one layer; Fabric's channel membership is the other: on
``agg3`` only Agg3, VPPO and Grid identities can call anything, so other
aggregators' identities never reach the meter chaincode (CHANNEL_REFUSED, checked live
in tests/integration/test_access_live.py). A new function without a row here
fails ``test_every_function_has_a_row``, so access is decided for it explicitly.
"""

from __future__ import annotations

import json

import pytest
from certs import agg_admin, agg_meter, agg_trader, grid_admin, vppo_admin, vppo_client
from market_world import CONTRACT, DEVICE, GRID_MODEL, GRID_PASS, P, stage
from vpp_chaincode.market import MarketContract
from vpp_chaincode.meter import MeterContract
from vpp_shim.api import Caller

ROLES: dict[str, Caller] = {
    "VPPO admin": vppo_admin(),
    "VPPO member (not admin)": vppo_client(),
    "Grid admin": grid_admin(),
    "Agg3 admin": agg_admin(3),
    "Agg3 trader": agg_trader(3),
    "Agg4 trader (counterparty)": agg_trader(4),
    "Agg5 trader (other aggregator)": agg_trader(5),
    "Agg3 meter": agg_meter(3, 1),
    "Agg5 meter (other aggregator)": agg_meter(5, 1),
}
ALL = frozenset(ROLES)
VPPO = frozenset({"VPPO admin"})
GRID = frozenset({"Grid admin"})
AGG3_TRADING = frozenset({"Agg3 admin", "Agg3 trader"})
AGG3_GATEWAY = AGG3_TRADING  # the aggregator's identities submit for its devices
# Identities of orgs that are not members of channel agg3: Fabric refuses them first.
CHANNEL_REFUSED = frozenset(
    {
        "Agg4 trader (counterparty)",
        "Agg5 trader (other aggregator)",
    }
)

ORDER3 = json.dumps(
    {
        "agg": "Agg3",
        "period": P,
        "side": "sell",
        "quantity_kwh": "50",
        "offer": "0.71",
        "reserve": "0.70",
    }
)
RESOURCES = json.dumps([{"id": "wt3", "kind": "WT", "capacity_kw": "100", "meter": "agg3-m1"}])
TOU = json.dumps([[0, 12, "0.9", "0.6"], [12, 24, "0.95", "0.65"]])
LINES = json.dumps([["R3", "R4", "10000"], ["R4", "R5", "10000"]])

# function: (stage the call needs, arguments, roles allowed by the chaincode)
MARKET: dict[str, tuple[str, tuple[str, ...], frozenset[str]]] = {
    "Version": ("registered", (), ALL),
    "Ping": ("registered", (), ALL),
    "GetPing": ("registered", ("VPPOMSP",), ALL),
    "Noop": ("registered", (), ALL),
    "GetAggregator": ("registered", ("Agg3",), ALL),
    "GetWallets": ("registered", (), ALL),
    "GetReputation": ("registered", ("Agg3",), ALL),
    "GetCalendar": ("open", (), ALL),
    "GetOrderBook": ("open", (P,), ALL),
    "GetPeriod": ("open", (P,), ALL),
    "GetHistory": ("open", ("order~00001~13~0003",), ALL),
    "GetContracts": ("cleared", (P, "Agg3"), ALL),
    "GetSettlements": ("settled", (P,), ALL),
    "GetConfig": ("registered", ("tou",), ALL),
    "GetCapacity": ("registered", ("Agg3",), ALL),
    "GetCapacities": ("registered", (), ALL),
    # Reads agg3 (its endorsers' copies), so only parties of agg3 may ask for it.
    "SyncCapacity": ("registered", ("Agg3",), AGG3_TRADING | VPPO | GRID),
    "RequestAdmission": ("bare", ("Agg3", "R3", '["agg3-m1"]'), frozenset({"Agg3 admin"})),
    "ApproveAdmission": ("requested", ("Agg3", "0.5"), VPPO),
    "RemoveTopology": ("topology", (), VPPO),
    "LoadTou": ("registered", (TOU,), VPPO),
    "LoadTopology": ("registered", (LINES,), VPPO),
    "OpenPeriod": ("registered", ("1", "14"), VPPO),
    "ClosePeriod": ("open", (P,), VPPO),
    "ClearPeriod": ("closed", (P,), VPPO),
    "VoidUnsigned": ("window_over", (P,), VPPO),
    "SetMarketConfig": ("registered", ('{"seal_deadline_s": 30}',), VPPO),
    "AnchorDelivery": ("sealed", (P, "Agg3"), VPPO),
    "SettlePeriod": ("anchored", (P,), VPPO),
    "CloseDay": ("settled", ("1",), VPPO),
    "SubmitOrder": ("open", (ORDER3,), AGG3_TRADING),
    "SubmitOrders": ("open", (f"[{ORDER3}]",), AGG3_TRADING),
    "CancelOrder": ("open", (P, "Agg3"), AGG3_TRADING),
    "SignContract": ("cleared", (CONTRACT,), AGG3_TRADING | {"Agg4 trader (counterparty)"}),
    "GetGridModel": ("registered", (), ALL),
    "GetGridVerdict": ("grid-checked", (P,), ALL),
    "LoadGridModel": ("registered", (GRID_MODEL,), GRID),
    "SubmitGridVerdict": ("grid-cleared", (GRID_PASS,), GRID),
    "UnloadGridModel": ("grid-cleared", (), GRID),
}

METER: dict[str, tuple[str, tuple[str, ...], frozenset[str]]] = {
    "Version": ("registered", (), ALL),
    "Ping": ("registered", (), ALL),
    "GetPing": ("registered", ("VPPOMSP",), ALL),
    "GetResources": ("registered", (), ALL),
    "GetReadings": ("open", (P,), ALL),
    "DeliverySummary": ("sealed", (P,), ALL),
    "GetCapacity": ("registered", (), ALL),
    "RetireResource": ("registered", ("pv3",), frozenset({"Grid admin"})),
    "RegisterResource": ("registered", ("wt3", "WT", "100", "agg3-m1"), frozenset({"Agg3 admin"})),
    "RegisterResources": ("registered", (RESOURCES,), frozenset({"Agg3 admin"})),
    "CertifyResource": ("proposed", ("wt3", "WT", "100", "agg3-m1"), frozenset({"Grid admin"})),
    "CertifyResources": ("proposed", (RESOURCES,), frozenset({"Grid admin"})),
    "RecordReading": ("open", (P, "1000", "0"), frozenset({"Agg3 meter"})),
    "SetMeterConfig": ("registered", ('{"report_interval_s": 600}',), frozenset({"Grid admin"})),
    "GetMeterConfig": ("registered", (), ALL),
    "CertifyDevice": (
        "registered",
        (json.dumps(DEVICE.certification()),),
        frozenset({"Grid admin"}),
    ),  # fmt: skip
    "ReportFingerprints": ("registered", (json.dumps(DEVICE.report()),), AGG3_GATEWAY),
    "CheckReports": ("registered", (), ALL),
    "GetAlarms": ("registered", (), ALL),
    "GetDevices": ("registered", (), ALL),
    "GetDevice": ("registered", ("agg3-m1",), ALL),
    "SubmitReadings": (
        "open",
        (json.dumps([DEVICE.reading("agg3", P, 0, 100, 0)]),),
        AGG3_GATEWAY,
    ),  # fmt: skip
    # "reported": every meter reported and the VPPO's deadline has passed.
    "SealPeriod": ("reported", (P,), frozenset({"Agg3 admin", "VPPO admin"})),
}


def _describe(role: Caller) -> str:
    from vpp_chaincode.access import describe

    return describe(role)


def _check(fn: str, stage_name: str, args: tuple[str, ...], allowed: bool, role: str, **kw) -> None:
    world = stage(stage_name)
    caller = ROLES[role]
    message = world.refusal(caller, fn, *args, **kw)
    if allowed:
        assert message is None, f"{role} must be allowed {fn}: {message}"
    else:
        assert message is not None, f"{role} must be refused {fn}"
        assert message.startswith(f"{fn}: "), message
        assert _describe(caller) in message, f"{fn} refusal must name the caller: {message}"


@pytest.mark.parametrize("role", sorted(ROLES))
@pytest.mark.parametrize("fn", sorted(MARKET))
def test_market_matrix(fn: str, role: str) -> None:
    stage_name, args, allowed = MARKET[fn]
    _check(fn, stage_name, args, role in allowed, role)


@pytest.mark.parametrize("role", sorted(ROLES))
@pytest.mark.parametrize("fn", sorted(METER))
def test_meter_matrix_on_agg3(fn: str, role: str) -> None:
    """What the meter chaincode itself decides on agg3 (members and non-members alike)."""
    stage_name, args, allowed = METER[fn]
    _check(fn, stage_name, args, role in allowed, role, channel="agg3")


def test_every_function_has_a_row() -> None:
    assert sorted(MARKET) == MarketContract().transactions()
    assert sorted(METER) == MeterContract().transactions()


def test_meter_writes_are_refused_to_non_members_by_the_chaincode_too() -> None:
    """Defence in depth: even if channel membership were misconfigured, another
    aggregator's identities could not write on agg3 (reads would need the channel)."""
    for fn in ("RegisterResource", "CertifyResource", "RecordReading", "SealPeriod"):
        assert not METER[fn][2] & CHANNEL_REFUSED, fn


def test_the_production_market_has_no_bench_seeding() -> None:
    """BenchSeedBook is no function of the production contract, whatever the environment:
    the VPPO's call is an unknown function (only benchmark networks serve the subclass)."""
    world = stage("open")
    message = world.refusal(vppo_admin(), "BenchSeedBook", P, "1000", "2")
    assert message is not None and message.startswith("unknown function 'BenchSeedBook'")


def test_the_meter_serves_only_aggregator_channels() -> None:
    """Called on vpp-main (a misconfigured definition), every meter function but the shared
    health calls (Version, Ping, GetPing) refuses."""
    world = stage("registered")
    ledger = world.main
    for fn in sorted(set(METER) - {"Version", "Ping", "GetPing"}):
        _, args, _ = METER[fn]
        with pytest.raises(Exception, match="serves aggregator channels"):
            ledger.invoke(world.meter, vppo_admin(), fn, *args)


MATRIX_SIZE = len(ROLES) * (len(MARKET) + len(METER))
