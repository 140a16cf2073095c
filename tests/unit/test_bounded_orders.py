"""Bounded orders (issue 10.7): an order may not exceed the aggregator's certified capacity x 1 h.

The attack: before this rule, an aggregator whose resources certify 300 kW
could offer 10^37 kWh, and clearing matched it. Now the market on vpp-main
holds ``capacity~<agg>``, copied from the meter chaincode's GetCapacity on
agg<N> by SyncCapacity (each endorser reads its own copy of agg<N>; the
aggregator supplies no number), and SubmitOrder(s) refuse a seller above its
supply capacity and a buyer above its load capacity, naming both numbers.

Cast (tests/market_world.py, stage "registered"): every aggregator has a
certified PV of 300 kW and a load of 200 kW, synced to vpp-main.
"""

from __future__ import annotations

import json

import pytest
from certs import agg_admin, agg_trader, grid_admin, vppo_admin
from market_world import ReadSpy, World, stage
from sealed_orders import proposal
from vpp_shim.api import Caller, Contract, create_composite_key
from vpp_shim.codes import Code
from vpp_shim.testing import MemoryLedger

VPPO = vppo_admin()
P = "00001-13"


@pytest.fixture
def world() -> World:
    w = stage("registered")
    w.call(VPPO, "OpenPeriod", "1", "13")
    return w


def order(agg: int, side: str, quantity_kwh: str, period: str = P) -> str:
    offer = "0.70" if side == "sell" else "0.80"
    return json.dumps({"agg": f"Agg{agg}", "period": period, "side": side,
                       "quantity_kwh": quantity_kwh, "offer": offer, "reserve": offer})  # fmt: skip


def placed_wh(world: World, placed: dict, agg: int, period: str = P) -> int:
    """The accepted order's quantity as the VPPO's book holds it: the submit's result is
    the public record (sealed orders), which carries no quantity."""
    assert placed["agg"] == agg and placed["hash"]
    book = world.call(VPPO, "GetOrderBook", period)["orders"]
    return next(o["quantity_wh"] for o in book if o["agg"] == agg)


def certify(world: World, agg: int, rid: str, kind: str, kw: str, meter: int = 1) -> None:
    terms = (rid, kind, kw, f"agg{agg}-m{meter}")
    world.call(agg_admin(agg), "RegisterResource", *terms, channel=f"agg{agg}")
    world.call(grid_admin(), "CertifyResource", *terms, channel=f"agg{agg}")


def test_an_offer_of_1e37_kwh_is_refused_naming_quantity_and_bound(world: World) -> None:
    huge = "1" + "0" * 37
    refused = world.refusal_error(agg_trader(3), "SubmitOrder", order(3, "sell", huge))
    assert refused is not None, "an offer of 10^37 kWh was accepted"
    assert refused.code == Code.ORDER_OVER_CAPACITY
    assert huge in str(refused) and "300 kWh" in str(refused)  # both numbers
    assert "supply" in str(refused)


def test_seller_exact_bound_accepted_one_wh_more_refused(world: World) -> None:
    over = world.refusal_error(agg_trader(3), "SubmitOrder", order(3, "sell", "300.001"))
    assert over is not None and over.code == Code.ORDER_OVER_CAPACITY
    assert "300.001" in str(over) and "300 kWh" in str(over)
    placed = world.call(agg_trader(3), "SubmitOrder", order(3, "sell", "300"))
    assert placed_wh(world, placed, 3) == 300_000


def test_buyer_is_bounded_by_its_load_not_its_supply(world: World) -> None:
    over = world.refusal_error(agg_trader(4), "SubmitOrder", order(4, "buy", "200.001"))
    assert over is not None and over.code == Code.ORDER_OVER_CAPACITY
    assert "200.001" in str(over) and "200 kWh" in str(over) and "load" in str(over)
    # 250 kWh is within the 300 kW of supply, but a buyer's bound is its load.
    assert world.refusal_error(agg_trader(4), "SubmitOrder", order(4, "buy", "250")) is not None
    assert (
        placed_wh(world, world.call(agg_trader(4), "SubmitOrder", order(4, "buy", "200")), 4, P)
        == 200_000
    )


def test_an_aggregator_without_synced_capacity_may_not_order() -> None:
    world = stage("registered")
    world.call(VPPO, "OpenPeriod", "1", "13")
    world.main.state.pop(create_composite_key("capacity", ["0005"]))  # never synced
    refused = world.refusal_error(agg_trader(5), "SubmitOrder", order(5, "sell", "1"))
    assert refused is not None and refused.code == Code.NO_CAPACITY
    assert "Agg5" in str(refused) and "SyncCapacity" in str(refused)


def test_certification_counts_on_vpp_main_only_once_synced(world: World) -> None:
    """The market learns capacity from agg<N> by SyncCapacity; until then the old bound holds."""
    certify(world, 3, "wt3", "WT", "100")
    assert world.refusal_error(agg_trader(3), "SubmitOrder", order(3, "sell", "400")) is not None
    synced = world.call(agg_trader(3), "SyncCapacity", "Agg3")
    assert (synced["supply_w"], synced["load_w"], synced["channel"]) == (400_000, 200_000, "agg3")
    assert (
        placed_wh(world, world.call(agg_trader(3), "SubmitOrder", order(3, "sell", "400")), 3, P)
        == 400_000
    )


def test_only_certified_resources_count_and_retired_ones_leave_after_sync(world: World) -> None:
    # Proposed by Agg3 alone (the Grid has not certified it): it adds nothing.
    world.call(agg_admin(3), "RegisterResource", "wt3", "WT", "1000", "agg3-m1", channel="agg3")
    assert world.call(VPPO, "SyncCapacity", "Agg3")["supply_w"] == 300_000
    # The Grid retires the PV, and syncs: Agg3 may no longer sell at all.
    world.call(grid_admin(), "RetireResource", "pv3", channel="agg3")
    assert world.call(grid_admin(), "SyncCapacity", "Agg3")["supply_w"] == 0
    refused = world.refusal_error(agg_trader(3), "SubmitOrder", order(3, "sell", "0.001"))
    assert refused is not None and refused.code == Code.ORDER_OVER_CAPACITY
    assert "0 kWh" in str(refused)


def test_storage_bounds_both_sides(world: World) -> None:
    certify(world, 4, "ess4", "ESS", "50", meter=1)
    world.call(agg_trader(4), "SyncCapacity", "Agg4")
    assert (
        placed_wh(world, world.call(agg_trader(4), "SubmitOrder", order(4, "buy", "250")), 4, P)
        == 250_000
    )
    world.call(VPPO, "OpenPeriod", "1", "14")
    sell = order(4, "sell", "350", "00001-14")
    assert (
        placed_wh(world, world.call(agg_trader(4), "SubmitOrder", sell), 4, "00001-14") == 350_000
    )


def test_submit_orders_names_the_order_over_its_bound_and_writes_nothing(world: World) -> None:
    world.call(VPPO, "OpenPeriod", "1", "14")
    many = [json.loads(order(3, "sell", "300")), json.loads(order(3, "sell", "301", "00001-14"))]
    refused = world.refusal_error(agg_trader(3), "SubmitOrders", json.dumps(many))
    assert refused is not None and refused.code == Code.ORDER_OVER_CAPACITY
    assert str(refused).startswith("SubmitOrders: orders[1]: ")
    assert "301" in str(refused) and "300 kWh" in str(refused)


def test_who_may_sync_an_aggregators_capacity(world: World) -> None:
    """The numbers come from agg<N>, never from the caller; still, only parties of agg<N> may
    ask (they are also who Fabric lets call chaincode on agg<N>)."""
    for who in (agg_trader(3), agg_admin(3), VPPO, grid_admin()):
        assert world.call(who, "SyncCapacity", "Agg3")["agg"] == 3
    refused = world.refusal_error(agg_trader(5), "SyncCapacity", "Agg3")
    assert refused is not None and refused.code == Code.NOT_AUTHORIZED
    # A caller cannot hand it numbers: its only argument is the aggregator.
    refused = world.refusal_error(agg_trader(3), "SyncCapacity", "Agg3", "1e37")
    assert refused is not None and refused.code == Code.WRONG_ARGUMENT_COUNT


def test_sync_of_an_aggregator_not_admitted_or_without_a_channel_is_refused() -> None:
    world = stage("registered")
    refused = world.refusal_error(VPPO, "SyncCapacity", "Agg7")
    assert refused is not None and refused.code == Code.NOT_REGISTERED


def test_capacity_is_readable_by_any_member(world: World) -> None:
    record = world.call(agg_trader(5), "GetCapacity", "Agg4")
    assert (record["agg"], record["supply_w"], record["load_w"]) == (4, 300_000, 200_000)
    assert record["synced_by"] == "VPPOMSP" and record["synced_tx"]
    listed = world.call(agg_trader(5), "GetCapacities")["capacities"]
    assert [c["agg"] for c in listed] == [3, 4, 5]


def test_order_path_reads_only_its_own_aggregators_capacity(world: World) -> None:
    """One capacity key per aggregator, written only by SyncCapacity: bids of different
    aggregators still never read a key another bid writes (no hot key)."""
    sent, transient = proposal("SubmitOrder", (order(3, "sell", "1"),), None)
    stub = ReadSpy(world.main, agg_trader(3), "SubmitOrder", list(sent), transient)
    world.market.invoke(stub)
    capacity_reads = [k for k in stub.reads if k.startswith("\x00capacity\x00")]
    assert capacity_reads == [create_composite_key("capacity", ["0003"])]


class HeldEndorsement(ReadSpy):
    """A proposal simulated now and committed later, as its client may choose (a Fabric
    transaction does not expire): at commit, Fabric's MVCC check compares each key the
    simulation read with the version committed by then (here: the key's history length)."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.versions: dict[str, int] = {}

    def get_state(self, key: str) -> bytes:
        self.versions.setdefault(key, len(self.ledger.history.get(key, [])))
        return super().get_state(key)


def endorse(
    ledger: MemoryLedger, contract: Contract, caller: Caller, function: str, *args: str
) -> HeldEndorsement:
    stub = HeldEndorsement(ledger, caller, function, list(args), {})
    contract.invoke(stub)
    return stub


def commit_later(held: HeldEndorsement) -> str:
    """The validation code the held transaction gets when its client submits it now."""
    history = held.ledger.history
    if any(len(history.get(k, [])) != v for k, v in held.versions.items()):
        return "MVCC_READ_CONFLICT"
    held.ledger.commit(held)
    return "VALID"


def test_a_held_back_sync_cannot_bring_back_a_retired_bound(world: World) -> None:
    """The attack: Agg3 has a SyncCapacity endorsed while its 300 kW PV is certified and
    keeps the endorsed transaction. The Grid retires the PV and syncs: Agg3 may sell
    nothing. Agg3 then submits the held sync; it must be invalid (it read the capacity key
    the Grid's sync wrote since), not restore the 300 kWh bound."""
    held = endorse(world.main, world.market, agg_trader(3), "SyncCapacity", "Agg3")
    world.call(grid_admin(), "RetireResource", "pv3", channel="agg3")
    assert world.call(grid_admin(), "SyncCapacity", "Agg3")["supply_w"] == 0
    assert commit_later(held) == "MVCC_READ_CONFLICT"
    assert world.call(VPPO, "GetCapacity", "Agg3")["supply_w"] == 0
    refused = world.refusal_error(agg_trader(3), "SubmitOrder", order(3, "sell", "1"))
    assert refused is not None and refused.code == Code.ORDER_OVER_CAPACITY
    # With no sync in between, a held sync commits: it writes what agg3 said, nothing older.
    again = endorse(world.main, world.market, agg_trader(3), "SyncCapacity", "Agg3")
    assert commit_later(again) == "VALID"
    assert world.call(VPPO, "GetCapacity", "Agg3")["synced_tx"] == again.tx_id
