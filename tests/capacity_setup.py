"""Certified capacity for in-memory tests that trade: orders are bounded by it (issue 10.7).

An aggregator may order only up to its certified capacity x 1 h, which the
market on vpp-main learns from the meter chaincode on agg<N> (SyncCapacity).
Tests whose subject is not the bound give their aggregators a generous
capacity this way, through the same calls as the network: AggN's admin
proposes, the Grid certifies, the VPPO syncs.
"""

from __future__ import annotations

from certs import agg_admin, grid_admin, vppo_admin
from vpp_chaincode.meter import MeterContract
from vpp_shim.api import Contract
from vpp_shim.testing import MemoryLedger

# Enough for every book the tests trade (the paper's largest order is 421.68 kWh).
SUPPLY_KW = "1000"
LOAD_KW = "1000"


def certify_and_sync(
    main: MemoryLedger,
    market: Contract,
    agg: int,
    *,
    supply_kw: str = SUPPLY_KW,
    load_kw: str = LOAD_KW,
    meter: int = 1,
) -> None:
    """PV ``supply_kw`` and a load ``load_kw`` on meter agg<N>-m<meter>, synced to ``main``.

    Uses agg<N>'s meter ledger linked to ``main`` (MemoryLedger.peers), or
    links a new one when ``main`` has none for it.
    """
    target = main.peers.get((f"agg{agg}", "meter"))
    if target is None:
        target = (MeterContract(), MemoryLedger(channel_id=f"agg{agg}"))
        main.peers[(f"agg{agg}", "meter")] = target
    meter_contract, slave = target
    slave.peers.setdefault(("vpp-main", "market"), (market, main))
    for rid, kind, kw in ((f"supply-{agg}", "PV", supply_kw), (f"load-{agg}", "load", load_kw)):
        terms = (rid, kind, kw, f"agg{agg}-m{meter}")
        slave.invoke(meter_contract, agg_admin(agg), "RegisterResource", *terms)
        slave.invoke(meter_contract, grid_admin(), "CertifyResource", *terms)
    main.invoke(market, vppo_admin(), "SyncCapacity", f"Agg{agg}")
