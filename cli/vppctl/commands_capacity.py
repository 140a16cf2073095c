"""`vppctl capacity sync|show`: the certified capacity that bounds an aggregator's orders.

An order may hold at most the aggregator's certified capacity x 1 h: a seller
its supply (PV, WT, storage), a buyer its load (load, storage). Capacity is
certified on the aggregator's channel agg<N> (`vppctl meter register` by its
admin, `vppctl meter certify` by the Grid); the market on vpp-main uses it
once someone syncs it (SyncCapacity), which copies what the endorsing peers
read on their own copies of agg<N>: the command sends no number.
``capacity show`` puts both side by side and says when a sync is due.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from vpp_network import identities

from vppctl import market_ops, options, views
from vppctl.errors import CliError, usage_error
from vppctl.output import Column, Output, OutputOption, emit, num
from vppctl.registry import TRADING, command
from vppctl.session import Session, parallel, session

commands = typer.Typer()  # this module's commands; main.py adds it to the app

capacity_app = typer.Typer(
    name="capacity",
    help="The certified capacity bounding each aggregator's orders (sync from agg<N>, show).",
    no_args_is_help=True,
)
commands.add_typer(capacity_app, rich_help_panel=TRADING)

COLUMNS = [
    Column("agg", "Agg"),
    num("sell_max_kwh", "Sell ≤ kWh"),
    num("buy_max_kwh", "Buy ≤ kWh"),
    num("certified_supply_kw", "Certified supply kW"),
    num("certified_load_kw", "Certified load kW"),
    Column("status", "On vpp-main"),
    Column("synced_by", "Synced by"),
    Column("synced_tx", "Sync tx"),
]

AllOption = Annotated[
    bool, typer.Option("--all", help="Every registered aggregator (as vppo-admin unless --as).")
]


def _aggs(s: Session, agg: int | None, all_: bool, identity: str) -> list[int]:
    if (agg is None) == (not all_):
        raise usage_error("which aggregator? pass --agg N, or --all for every one")
    if agg is not None:
        return [agg]
    found = market_ops.registered_aggs(s.market(identity))
    if not found:
        raise CliError("no aggregator is registered yet (`vppctl register`)")
    return found


def _readable(identity: str, agg: int) -> bool:
    """Can ``identity`` read channel agg<N>? Only its own aggregator's, or the VPPO's/Grid's."""
    own = options.agg_of_identity(identity)
    return own is None or own == agg


def capacity_row(
    agg: int, synced: dict[str, Any] | None, certified: dict[str, Any] | None
) -> dict[str, Any]:
    """One aggregator: its bounds on vpp-main next to what agg<N> certifies now."""
    if synced is None:
        status = "not synced: may not order"
    elif certified is None:
        status = "synced"
    elif market_ops.capacity_in_sync(synced, certified):
        status = "in sync"
    else:
        status = f"stale: vppctl capacity sync --agg {agg}"
    return {
        "agg": views.party(agg),
        "sell_max_kwh": views.kwh(synced["supply_w"]) if synced else None,
        "buy_max_kwh": views.kwh(synced["load_w"]) if synced else None,
        "certified_supply_kw": views.kwh(certified["supply_w"]) if certified else None,
        "certified_load_kw": views.kwh(certified["load_w"]) if certified else None,
        "status": status,
        "synced_by": synced["synced_by"] if synced else None,
        "synced_tx": synced["synced_tx"] if synced else None,
    }


def _row(s: Session, identity: str, agg: int) -> dict[str, Any]:
    synced = market_ops.synced_capacity(s.market(identity), agg)
    certified = None
    if _readable(identity, agg):
        certified = market_ops.certified_capacity(s.meter(identity, agg))
    return capacity_row(agg, synced, certified)


@command(
    capacity_app,
    "sync",
    path="capacity sync",
    epilog=(
        "Examples:\n\n"
        "  vppctl capacity sync --agg 3                 # as agg3-trader\n\n"
        "  vppctl capacity sync --agg 3 --as grid-admin  # after a retirement\n\n"
        "  vppctl capacity sync --all                   # as vppo-admin\n\n"
        "The market reads agg<N>'s certified capacity on the VPPO's and the Grid's own "
        "copies of agg<N>; nothing you type becomes the bound."
    ),
)
def capacity_sync(
    agg: options.AggOption = None,
    all_: AllOption = False,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Copy agg<N>'s certified capacity to vpp-main, where it bounds orders (SyncCapacity)."""
    identity = as_ or (identities.agg_trader(agg) if agg is not None else options.operator(None))
    with session() as s:
        aggs = _aggs(s, agg, all_, identity)
        market = s.market(identity)
        synced = parallel(lambda n: market_ops.sync_capacity(market, n), aggs)
    rows = [capacity_row(n, record, record) for n, record in zip(aggs, synced, strict=True)]
    emit(rows, COLUMNS, output, title="Capacity synced to vpp-main")


@command(
    capacity_app,
    "show",
    path="capacity show",
    epilog=(
        "Examples:\n\n"
        "  vppctl capacity show --all\n\n"
        "  vppctl capacity show --agg 3 --output json\n\n"
        "Sell/Buy ≤ are the bounds on vpp-main; the certified columns are agg<N>'s now "
        "(shown when the identity is a member of agg<N>); 'stale' means a sync is due."
    ),
)
def capacity_show(
    agg: options.AggOption = None,
    all_: AllOption = False,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Each aggregator's order bounds on vpp-main and its certified capacity on agg<N>."""
    identity = options.reader(agg, as_)
    with session() as s:
        aggs = _aggs(s, agg, all_, identity)
        rows = parallel(lambda n: _row(s, identity, n), aggs)
    emit(rows, COLUMNS, output, title="Order bounds (capacity x 1 h)")
