"""Reads and multi-step actions on the market chaincode that more than one command needs.

Command modules (``commands_*.py``) hold Typer commands only; what the
commands and the paper demo share lives here, so neither imports a command
module: the configuration (TOU table, topology) as stored and as sent,
settlement records, anchoring deliveries, the registered aggregators, the
capacity that bounds orders (certified on agg<N>, synced to vpp-main).
Nothing here prints; errors are ``CliError`` with the next step to take.
"""

from __future__ import annotations

from typing import Any

from vpp_gateway import EndorseError
from vpp_market.topology import Topology
from vpp_market.tou import TouTable
from vpp_market.units import format_fixed, format_yuan
from vpp_shim.codes import Code

from vppctl.errors import CliError
from vppctl.session import ContractLike, parallel, query, submit


def tou_rows(table: TouTable) -> list[list[Any]]:
    """The chaincode's LoadTou rows (exact decimal text) for a table."""
    return [
        [b.start_hour, b.end_hour, format_yuan(b.sale), format_yuan(b.purchase)]
        for b in table.bands
    ]


def line_rows(topology: Topology) -> list[list[Any]]:
    """The chaincode's LoadTopology rows (exact decimal text) for a topology."""
    return [[line.a, line.b, format_fixed(line.limit_w, 3)] for line in topology.lines]


def current_config(market: ContractLike, name: str) -> dict[str, Any]:
    """GetConfig: ``tou`` or ``topology`` as loaded, else the chaincode's default.

    A default has ``loaded_tx`` null: the paper's TOU table; ``lines`` null
    for the topology (flows between regions unlimited).
    """
    return query(market, "GetConfig", name)


def settlement_records(market: ContractLike, period: dict[str, Any]) -> list[dict[str, Any]]:
    """Each ordering aggregator's settlement of a settled period, by aggregator (GetSettlements)."""
    if period["status"] != "SETTLED":
        raise CliError(
            f"period {period['period']} is {period['status']}, not settled yet "
            f"(`vppctl settle --period {period['period']}`)"
        )
    return query(market, "GetSettlements", period["period"])["settlements"]


def missing_deliveries(market: ContractLike, pid: str) -> list[int]:
    period = query(market, "GetPeriod", pid)
    anchored = set(period["progress"]["anchored"])
    orders = query(market, "GetOrderBook", pid)["orders"]
    return [o["agg"] for o in orders if o["agg"] not in anchored]


def anchor_all(market: ContractLike, pid: str, aggs: list[int]) -> list[dict[str, Any]]:
    """AnchorDelivery for each aggregator (different keys: one block for all)."""
    return parallel(
        lambda agg: submit(
            market, "AnchorDelivery", pid, f"Agg{agg}", message=f"anchoring deliveries of {pid}"
        ),
        aggs,
    )


def registered_aggs(market: ContractLike) -> list[int]:
    """Aggregator numbers in order, from the wallets ApproveAdmission creates."""
    wallets = query(market, "GetWallets")["wallets"]
    return sorted(
        int(w["wallet"][3:])
        for w in wallets
        if w["wallet"].startswith("agg") and w["wallet"][3:].isdigit()
    )


def certified_capacity(meter: ContractLike) -> dict[str, Any]:
    """GetCapacity of the meter chaincode on agg<N>: what the Grid has certified now (W)."""
    return query(meter, "GetCapacity")


def synced_capacity(market: ContractLike, agg: int) -> dict[str, Any] | None:
    """The bound of agg's orders on vpp-main (GetCapacity), None if never synced."""
    try:
        return query(market, "GetCapacity", f"Agg{agg}")
    except EndorseError as exc:
        if exc.code == Code.NO_CAPACITY:
            return None
        raise


def capacity_in_sync(synced: dict[str, Any] | None, certified: dict[str, Any]) -> bool:
    """Does vpp-main's bound equal what agg<N> certifies now?"""
    return synced is not None and all(synced[f] == certified[f] for f in ("supply_w", "load_w"))


# A sync reads the capacity key it writes (a held-back sync must not commit after a newer
# one), so two syncs of one aggregator in one block conflict: the later one is re-run.
SYNC_RETRIES = 3


def sync_capacity(market: ContractLike, agg: int) -> dict[str, Any]:
    """SyncCapacity: vpp-main's order bound := agg<N>'s certified capacity (no number sent)."""
    return submit(
        market,
        "SyncCapacity",
        f"Agg{agg}",
        message=f"syncing Agg{agg}'s capacity",
        retry_on_conflict=SYNC_RETRIES,
    )
