"""The Grid's model and verdict on vpp-main (LoadGridModel, SubmitGridVerdict, signing gate).

In memory with the real market and meter chaincode. The end-to-end test runs
the real power flow (vpp_grid) on the shipped model, submits its verdict and
settles the period: curtailed energy is grid absorption for both sides and
every wallet still sums to zero.
"""

from __future__ import annotations

import copy
import json

import pytest
from certs import agg_admin, agg_meter, agg_trader, grid_admin, vppo_admin
from market_world import (
    CONTRACT,
    GRID_MODEL,
    GRID_PASS,
    GRID_SHA,
    SIGNING_WINDOW_S,
    P,
    World,
    stage,
)
from vpp_shim.api import ChaincodeError
from vpp_shim.codes import Code

GRID = grid_admin()
VPPO = vppo_admin()


def refused(world, caller, function: str, *args: str) -> ChaincodeError:
    before = world.snapshot()
    with pytest.raises(ChaincodeError) as caught:
        world.call(caller, function, *args)
    assert world.snapshot() == before, f"refused {function} changed the ledger"
    return caught.value


def verdict(**changes) -> str:
    doc = json.loads(GRID_PASS)
    doc.update(changes)
    return json.dumps(doc)


CURTAIL_40 = dict(
    result="curtail",
    curtailments=[{"contract": CONTRACT, "wh": 40_000}],
    violations=[{"kind": "bus", "bus": 17, "region": "R6", "vm_pu": "1.061234"}],
)


def test_signing_waits_for_the_verdict_when_a_model_is_loaded() -> None:
    world = stage("grid-cleared")
    period = world.call(VPPO, "GetPeriod", P)
    assert period["clearing"]["grid_model"] == GRID_SHA
    err = refused(world, agg_trader(3), "SignContract", CONTRACT)
    assert err.code == Code.NOT_READY and "awaits the Grid's security verdict" in str(err)
    world.call(GRID, "SubmitGridVerdict", GRID_PASS)
    assert world.call(agg_trader(3), "SignContract", CONTRACT)["signed_by"] == 3


def test_a_market_without_a_model_signs_as_before() -> None:
    world = stage("cleared")
    assert world.call(VPPO, "GetPeriod", P)["clearing"]["grid_model"] is None
    world.call(agg_trader(3), "SignContract", CONTRACT)
    err = refused(world, GRID, "SubmitGridVerdict", GRID_PASS)
    assert err.code == Code.NO_GRID_MODEL


def test_a_verdict_on_another_model_is_refused() -> None:
    world = stage("grid-cleared")
    err = refused(world, GRID, "SubmitGridVerdict", verdict(model_sha256="cd" * 32))
    assert err.code == Code.GRID_MODEL_MISMATCH
    # Loading the other model now does not help: the period was cleared under the first.
    world.call(GRID, "LoadGridModel", json.dumps({**json.loads(GRID_MODEL), "sha256": "cd" * 32}))
    err = refused(world, GRID, "SubmitGridVerdict", verdict(model_sha256="cd" * 32))
    assert err.code == Code.GRID_MODEL_MISMATCH
    world.call(GRID, "SubmitGridVerdict", GRID_PASS)


def test_only_the_grid_admin_loads_a_model_and_every_version_is_kept() -> None:
    world = stage("registered")
    assert refused(world, VPPO, "LoadGridModel", GRID_MODEL).code == Code.NOT_AUTHORIZED
    world.call(GRID, "LoadGridModel", GRID_MODEL)
    world.call(GRID, "LoadGridModel", json.dumps({**json.loads(GRID_MODEL), "sha256": "cd" * 32}))
    answer = world.call(agg_trader(5), "GetGridModel")
    assert answer["current"]["sha256"] == "cd" * 32
    assert [h["sha256"] for h in answer["history"]] == ["cd" * 32, GRID_SHA]
    assert answer["current"]["vm_max_upu"] == 1_050_000
    # Unloaded: periods cleared from now on need no verdict; the history keeps it all.
    world.call(GRID, "UnloadGridModel")
    assert refused(world, GRID, "UnloadGridModel").code == Code.NOT_FOUND
    answer = world.call(agg_trader(5), "GetGridModel")
    assert answer["current"] is None
    assert answer["history"][0]["unloaded"] is True and len(answer["history"]) == 3


def test_a_period_cleared_under_a_model_still_waits_after_an_unload() -> None:
    world = stage("grid-cleared")
    world.call(GRID, "UnloadGridModel")
    assert refused(world, agg_trader(3), "SignContract", CONTRACT).code == Code.NOT_READY
    # The limits to check the cited values against come from the model's history.
    world.call(GRID, "SubmitGridVerdict", verdict(**CURTAIL_40))
    world.call(agg_trader(3), "SignContract", CONTRACT)


@pytest.mark.parametrize(
    ("changes", "code", "words"),
    [
        ({"result": "pass", "curtailments": [{"contract": CONTRACT, "wh": 1}]}, Code.BAD_ARGUMENT,
         "pass has no curtailments"),
        ({"result": "curtail", "curtailments": [{"contract": CONTRACT, "wh": 1}]},
         Code.BAD_ARGUMENT, "at least one curtailment and the violation"),
        ({**CURTAIL_40, "violations": [{"kind": "bus", "bus": 17, "region": "R6",
                                        "vm_pu": "1.049"}]}, Code.BAD_ARGUMENT, "not a violation"),
        ({**CURTAIL_40, "curtailments": [{"contract": CONTRACT, "wh": 100_001}]},
         Code.BAD_ARGUMENT, "not an integer in 1..100000"),
        ({**CURTAIL_40, "curtailments": [{"contract": CONTRACT, "wh": "40000.5"}]},
         Code.BAD_ARGUMENT, "wh"),
        ({**CURTAIL_40, "curtailments": [{"contract": "00001-13-0002", "wh": 1}]},
         Code.BAD_ARGUMENT, "not a MATCHED P2P contract"),
        ({"after": {"vm_min_pu": "0.9", "vm_max_pu": "1.0", "max_loading_percent": "1"}},
         Code.BAD_ARGUMENT, "within the model's limits"),
        ({"after": {"vm_min_pu": 1, "vm_max_pu": "1.0", "max_loading_percent": "1"}},
         Code.BAD_ARGUMENT, "decimal string"),
        ({"book": {"contracts": 1, "wh": 99_999}}, Code.BOOK_CHANGED, "check the period again"),
        ({"period": "00001-14"}, Code.PERIOD_NOT_FOUND, "has not been opened"),
    ],
)  # fmt: skip
def test_a_malformed_or_inconsistent_verdict_is_refused(changes, code, words) -> None:
    world = stage("grid-cleared")
    err = refused(world, GRID, "SubmitGridVerdict", verdict(**changes))
    assert err.code == code and words in str(err), str(err)


def test_one_verdict_per_period_and_the_book_must_be_current() -> None:
    world = stage("grid-checked")
    assert refused(world, GRID, "SubmitGridVerdict", GRID_PASS).code == Code.ALREADY_RECORDED
    world = stage("grid-cleared")
    world.main.advance(SIGNING_WINDOW_S)  # the signing window is over: voiding is allowed
    world.call(VPPO, "VoidUnsigned", P)  # the VPPO gave up on the period before the Grid checked
    assert refused(world, GRID, "SubmitGridVerdict", GRID_PASS).code == Code.BOOK_CHANGED


def _settle(world: World, readings: dict[int, tuple[int, int]]) -> dict:
    for n, (exported, imported) in readings.items():
        world.call(agg_meter(n, 1), "RecordReading", P, str(exported), str(imported),
                   channel=f"agg{n}")  # fmt: skip
        world.call(agg_admin(n), "SealPeriod", P, channel=f"agg{n}")
        world.call(VPPO, "AnchorDelivery", P, f"Agg{n}")
    world.call(VPPO, "SettlePeriod", P)
    return world.call(VPPO, "GetWallets")


def test_a_partial_curtailment_is_grid_absorption_for_both_sides() -> None:
    world = stage("grid-cleared")
    stored = world.call(GRID, "SubmitGridVerdict", verdict(**CURTAIL_40))
    assert stored["violations"] == [{"kind": "bus", "bus": 17, "region": "R6",
                                     "vm_upu": 1_061_234}]  # fmt: skip
    contracts = {c["id"]: c for c in world.call(VPPO, "GetContracts", P)["contracts"]}
    p2p = contracts[CONTRACT]
    assert (p2p["quantity_wh"], p2p["cleared_wh"], p2p["curtailed_wh"]) == (60_000, 100_000, 40_000)
    grid = [c for c in contracts.values() if c.get("voided_from") == CONTRACT]
    assert sorted((c["agg"], c["side"], c["quantity_wh"]) for c in grid) == [
        (3, "sell", 40_000), (4, "buy", 40_000)
    ]  # fmt: skip
    for n in (3, 4):
        world.call(agg_trader(n), "SignContract", CONTRACT)
    wallets = _settle(world, {3: (100_000, 0), 4: (0, 100_000)})
    assert wallets["total"] == 0
    settlements = {s["agg"]: s for s in world.call(VPPO, "GetSettlements", P)["settlements"]}
    assert (settlements[3]["contracted_wh"], settlements[3]["grid_wh"]) == (60_000, 40_000)
    assert (settlements[4]["contracted_wh"], settlements[4]["grid_wh"]) == (60_000, 40_000)


# --- end to end with the real power flow ----------------------------------------------------
def _weak_world(model) -> World:
    """Agg3 (R6, far end of the feeder) sells 1.3 MWh to Agg4 (R1) and Agg5 (R2)."""
    world = World()
    for n, region in ((3, "R6"), (4, "R1"), (5, "R2")):
        world.call(agg_admin(n), "RequestAdmission", f"Agg{n}", region,
                   json.dumps([f"agg{n}-m1"]))  # fmt: skip
        world.call(VPPO, "ApproveAdmission", f"Agg{n}", "0.5")
        for who, fn in ((agg_admin(n), "RegisterResource"), (GRID, "CertifyResource")):
            for rid, kind in ((f"pv{n}", "PV"), (f"load{n}", "load")):
                world.call(who, fn, rid, kind, "2000", f"agg{n}-m1", channel=f"agg{n}")
        world.call(VPPO, "SyncCapacity", f"Agg{n}")  # the bound of its orders
    world.call(GRID, "LoadGridModel", json.dumps(model.summary()))
    world.call(VPPO, "OpenPeriod", "1", "13")
    for n, side, kwh, price in ((3, "sell", "1300", "0.70"), (4, "buy", "700", "0.80"),
                                (5, "buy", "600", "0.79")):  # fmt: skip
        world.call(agg_trader(n), "SubmitOrder", json.dumps(
            {"agg": f"Agg{n}", "period": P, "side": side, "quantity_kwh": kwh,
             "offer": price, "reserve": price}))  # fmt: skip
    world.call(VPPO, "ClosePeriod", P)
    world.call(VPPO, "ClearPeriod", P)
    return world


def test_end_to_end_the_weak_region_is_curtailed_verified_and_settled() -> None:
    pytest.importorskip("pandapower")
    from vpp_grid import ledger
    from vpp_grid.check import check
    from vpp_grid.flow import Flow
    from vpp_grid.model import load
    from vpp_grid.verify import verify

    model = load()
    flow = Flow(model)
    world = _weak_world(model)
    regions = {n: world.call(VPPO, "GetAggregator", f"Agg{n}")["region"] for n in (3, 4, 5)}
    contracts = world.call(VPPO, "GetContracts", P)["contracts"]
    transfers = ledger.to_check(contracts, regions)
    assert [(t.seller_region, t.buyer_region, t.wh) for t in transfers] == [
        ("R6", "R1", 700_000), ("R6", "R2", 600_000)
    ]  # fmt: skip
    outcome = check(model, transfers, flow)
    assert outcome.result == "curtail"

    # Computed on another model: refused, nothing written.
    other = copy.copy(model)
    object.__setattr__(other, "sha256", "0" * 64)
    err = refused(world, GRID, "SubmitGridVerdict", json.dumps(outcome.verdict(P) | {
        "model_sha256": other.sha256}))  # fmt: skip
    assert err.code == Code.GRID_MODEL_MISMATCH

    stored = world.call(GRID, "SubmitGridVerdict", json.dumps(outcome.verdict(P)))
    cut = sum(c["wh"] for c in stored["curtailments"])
    # Anyone re-runs it from the ledger's records and agrees.
    after = world.call(agg_trader(5), "GetContracts", P)["contracts"]
    finding = verify(model, ledger.covered(after, regions, stored), ledger.as_submitted(stored),
                     flow)  # fmt: skip
    assert finding.right, finding.problems
    # A curtailment the ledger holds is exactly what the flow needs: 1 Wh less fails.
    tampered = ledger.as_submitted(stored)
    tampered["curtailments"][-1]["wh"] -= 1
    assert not verify(model, ledger.covered(after, regions, stored), tampered, flow).right

    for c in after:
        if c["kind"] == "p2p" and c["status"] == "MATCHED":
            for n in (c["seller"], c["buyer"]):
                world.call(agg_trader(n), "SignContract", c["id"])
    wallets = _settle(world, {3: (1_300_000, 0), 4: (0, 700_000), 5: (0, 600_000)})
    assert wallets["total"] == 0
    settlements = {s["agg"]: s for s in world.call(VPPO, "GetSettlements", P)["settlements"]}
    assert settlements[3]["grid_wh"] == cut
    assert settlements[3]["contracted_wh"] == 1_300_000 - cut
    assert settlements[4]["grid_wh"] + settlements[5]["grid_wh"] == cut
