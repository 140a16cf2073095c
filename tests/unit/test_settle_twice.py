"""Settling adds to wallets: two settled periods leave each balance at the sum of both nets.

A settlement that overwrote a wallet with the period's amount passed every
other unit test (each settles one period from zero balances).
"""

from __future__ import annotations

from certs import agg_admin, agg_meter, agg_trader, vppo_admin
from market_world import order, stage

VPPO = vppo_admin()
P2 = "00001-14"


def test_two_settled_periods_add_up_in_the_wallets() -> None:
    world = stage("settled")  # 00001-13: Agg3 sold 100 kWh to Agg4
    world.call(VPPO, "OpenPeriod", "1", "14")
    # Different amounts than period 13, so an overwrite cannot look like a sum.
    world.call(agg_trader(3), "SubmitOrder", order(3, "sell", "0.66", "0.66", period=P2))
    world.call(agg_trader(4), "SubmitOrder", order(4, "buy", "0.80", "0.80", period=P2))
    world.call(VPPO, "ClosePeriod", P2)
    world.call(VPPO, "ClearPeriod", P2)
    contract = f"{P2}-0001"
    world.call(agg_trader(3), "SignContract", contract)
    world.call(agg_trader(4), "SignContract", contract)
    world.call(agg_meter(3, 1), "RecordReading", P2, "100000", "0", channel="agg3")
    world.call(agg_meter(4, 1), "RecordReading", P2, "0", "90000", channel="agg4")
    for n in (3, 4):
        world.call(agg_admin(n), "SealPeriod", P2, channel=f"agg{n}")
        world.call(VPPO, "AnchorDelivery", P2, f"Agg{n}")
    world.call(VPPO, "SettlePeriod", P2)

    nets: dict[int, list[int]] = {3: [], 4: []}
    for pid in ("00001-13", P2):
        for s in world.call(VPPO, "GetSettlements", pid)["settlements"]:
            nets[s["agg"]].append(s["net"])
    assert all(len(v) == 2 and v[0] != v[1] for v in nets.values()), nets
    balances = {w["wallet"]: w["balance"] for w in world.call(VPPO, "GetWallets")["wallets"]}
    assert balances["agg3"] == sum(nets[3])
    assert balances["agg4"] == sum(nets[4])
