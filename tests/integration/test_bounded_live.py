"""Bounded orders on the live network (issue 10, item 7): capacity certified on agg3 bounds
Agg3's orders on vpp-main.

What only the real network shows: SyncCapacity's cross-channel GetCapacity
runs on each endorsing peer's own copy of agg3 (the VPPO's and the Grid's,
each in its own chaincode server) and both arrive at agg3's certified
numbers; a sync endorsed by Agg3's peer alone is committed INVALID (the
aggregator cannot set its own bound); and the real chaincode servers refuse
an order over the bound, naming quantity and bound. Orders are sealed: each
travels as transient data, endorsed by the VPPO's, the Grid's and Agg3's
peers, and every one of them applies the bound.
"""

from __future__ import annotations

import json

import pytest
from helpers import (
    book_by_agg,
    ensure_aggregators,
    market,
    open_test_period,
    order_json,
    query,
    sealed_order,
    wait_until_endorsable,
)
from vpp_gateway import connect_as
from vpp_gateway.errors import CommitError, EndorseError
from vpp_market.units import format_kwh
from vpp_shim.codes import Code

pytestmark = pytest.mark.network

AGG = 3
NUMBERS = ("supply_w", "load_w")


def test_capacity_is_synced_from_agg3_and_bounds_agg3s_orders(network: object) -> None:
    ensure_aggregators([AGG])  # certifies Agg3's test resources and syncs them
    wait_until_endorsable("agg3-trader")
    with connect_as("agg3-admin") as gw:
        certified = query(gw.network(f"agg{AGG}").contract("meter"), "GetCapacity")
    assert certified["supply_w"] > 0 and certified["load_w"] > 0

    with connect_as("agg3-trader") as gw:
        contract = market(gw)
        # Each endorser alone reads its own copy of agg3, and both find agg3's numbers.
        for org in ("VPPOMSP", "GridMSP"):
            alone = json.loads(contract.evaluate("SyncCapacity", f"Agg{AGG}", target_orgs=[org]))
            assert {f: alone[f] for f in NUMBERS} == {f: certified[f] for f in NUMBERS}, org
        # The aggregator's own peer is not enough: the market's policy needs VPPO and Grid.
        with pytest.raises(CommitError) as invalid:
            contract.submit_async("SyncCapacity", f"Agg{AGG}", endorsing_orgs=["Agg3MSP"]).wait()
        assert invalid.value.validation_code == "ENDORSEMENT_POLICY_FAILURE"
        # A sync reads the key it writes: another sync of Agg3 in the same block is a
        # retryable MVCC conflict.
        synced = json.loads(
            contract.submit("SyncCapacity", f"Agg{AGG}", retry_on_conflict=5, wait_for_peers=True)
        )
        assert synced["synced_by"] == "Agg3MSP" and synced["channel"] == f"agg{AGG}"
        assert {f: synced[f] for f in NUMBERS} == {f: certified[f] for f in NUMBERS}
        assert query(contract, "GetCapacity", f"Agg{AGG}")["synced_tx"] == synced["synced_tx"]

    with connect_as("vppo-admin") as gw:
        period = open_test_period(market(gw))
    pid, low, high = period["period"], period["purchase"], period["sale"]
    sell_bound, buy_bound = synced["supply_w"], synced["load_w"]  # W x 1 h = Wh
    with connect_as("agg3-trader") as gw:
        contract = market(gw)
        for side, quantity_wh, bound in (
            ("sell", 10**40, sell_bound),  # 10^37 kWh, the attack of issue 10
            ("sell", sell_bound + 1, sell_bound),
            ("buy", buy_bound + 1, buy_bound),
        ):
            offer, reserve = (low, low) if side == "sell" else (high, high)
            # Sealed, as every order: transient data, endorsed by VPPO, Grid and Agg3.
            text = order_json(AGG, pid, side, quantity_wh, offer, reserve)
            with pytest.raises(EndorseError) as refused:
                contract.submit("SubmitOrder", **sealed_order(text))
            assert refused.value.code == Code.ORDER_OVER_CAPACITY, str(refused.value)
            message = refused.value.chaincode_message or ""
            assert f"quantity_kwh {format_kwh(quantity_wh)} " in message, message
            assert f"bound of {format_kwh(bound)} kWh" in message, message
        exact = order_json(AGG, pid, "sell", sell_bound, low, low)
        # Every peer has it before the cancel below is endorsed on the VPPO's and the Grid's
        # peers too (the submit returns once Agg3's own peer committed it; a peer a block
        # behind would answer NO_ORDER).
        placed = json.loads(
            contract.submit("SubmitOrder", wait_for_peers=True, **sealed_order(exact))
        )
        assert placed["agg"] == AGG and placed["hash"]  # the public record: no quantity
        # Agg3 reads its own order's quantity from its implicit collection: exactly the bound.
        assert book_by_agg(contract, pid)[AGG]["quantity_wh"] == sell_bound
        # Deleting Agg3's order key needs Agg3's peer as well (key-level policy).
        contract.submit(
            "CancelOrder", pid, f"Agg{AGG}", endorsing_orgs=["VPPOMSP", "GridMSP", "Agg3MSP"]
        )
