"""`vppctl reputation`, `vppctl wallet`, `vppctl aggregators`: who is in the market.

Reputation R and the evaluation coefficient a are stored in ppm and shown
as fractions of one; balances in micro-yuan are shown in yuan. The list of
registered aggregators is read from the wallets (one per aggregator), since
the chaincode has no registry listing of its own.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from vppctl import market_ops, options, views
from vppctl.errors import CliError
from vppctl.output import Column, Output, OutputOption, emit, num
from vppctl.registry import command
from vppctl.session import ContractLike, parallel, query, session

commands = typer.Typer()  # this module's commands; main.py adds it to the app

REPUTATION_COLUMNS = [
    Column("agg", "Agg"),
    num("reputation", "R"),
    num("a", "a"),
    num("day", "Last closed day"),
]
HISTORY_COLUMNS = [
    Column("agg", "Agg"),
    num("day", "Day"),
    num("r_prev", "R before"),
    num("a_prev", "a before"),
    num("a_day", "a of the day"),
    num("reputation", "R after"),
    num("periods", "Periods"),
    Column("carried_over", "Carried over"),
]
AGGREGATOR_COLUMNS = [
    Column("agg", "Agg"),
    Column("mspid", "MSP"),
    Column("region", "Region"),
    Column("channel", "Channel"),
    Column("meters", "Meters"),
    num("reputation", "R"),
    num("balance", "Balance"),
]


def _aggs(market: ContractLike, agg: int | None) -> list[int]:
    if agg is not None:
        return [agg]
    found = market_ops.registered_aggs(market)
    if not found:
        raise CliError("no aggregator is registered yet (`vppctl register`)")
    return found


def reputation_row(r: dict[str, Any]) -> dict[str, Any]:
    current = r["current"]
    return {
        "agg": views.party(r["agg"]),
        "reputation": views.ppm(current["r_ppm"]),
        "a": views.ppm(current["a_ppm"]),
        "day": current.get("day"),
    }


def history_rows(r: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "agg": views.party(r["agg"]),
            "day": h["day"],
            "r_prev": views.ppm(h["r_prev_ppm"]),
            "a_prev": views.ppm(h["a_prev_ppm"]),
            "a_day": views.ppm(h["a_day_ppm"]),
            "reputation": views.ppm(h["r_ppm"]),
            "periods": len(h.get("periods", [])),
            "carried_over": h["carried_over"],
        }
        for h in r["history"]
    ]


@command(
    commands,
    "reputation",
    epilog=(
        "Examples:\n\n"
        "  vppctl reputation\n\n"
        "  vppctl reputation --agg 3 --history\n\n"
        "  vppctl reputation --output json"
    ),
)
def reputation(
    agg: options.AggOption = None,
    history: Annotated[
        bool, typer.Option("--history", help="One row per closed day (oldest first).")
    ] = False,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Current reputation R and coefficient a, or their daily history (GetReputation)."""
    with session() as s:
        market = s.market(options.reader(agg, as_))
        found = parallel(lambda n: query(market, "GetReputation", f"Agg{n}"), _aggs(market, agg))
    if history:
        rows = [row for r in found for row in history_rows(r)]
        emit(rows, HISTORY_COLUMNS, output, title="Reputation history", empty="no day closed yet")
    else:
        emit([reputation_row(r) for r in found], REPUTATION_COLUMNS, output, title="Reputation")


@command(
    commands,
    "wallet",
    epilog=(
        "Examples:\n\n"
        "  vppctl wallet\n\n"
        "  vppctl wallet --agg 3 --output json\n\n"
        "Balances in yuan; all wallets (the grid's included) sum to zero."
    ),
)
def wallet(
    agg: options.AggOption = None,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Wallet balances of the aggregators and the grid (GetWallets)."""
    with session() as s:
        result = query(s.market(options.reader(agg, as_)), "GetWallets")
    wallets = result["wallets"]
    if agg is not None:
        wallets = [w for w in wallets if w["wallet"] == f"agg{agg}"]
        if not wallets:
            raise CliError(f"Agg{agg} has no wallet: it is not registered")
    emit(
        [views.wallet_row(w) for w in wallets],
        [Column("wallet", "Wallet"), Column("owner", "Owner"), num("balance", "Balance (yuan)")],
        output,
        title="Wallets",
        caption=f"total {views.yuan(result['total'])} yuan",
    )


@command(
    commands,
    "aggregators",
    epilog="Examples:\n\n  vppctl aggregators\n\n  vppctl aggregators --agg 3 --output json",
)
def aggregators(
    agg: options.AggOption = None,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Registered aggregators: MSP, region, meters, reputation, balance (GetAggregator)."""
    with session() as s:
        market = s.market(options.reader(agg, as_))
        found = parallel(lambda n: query(market, "GetAggregator", f"Agg{n}"), _aggs(market, agg))
    rows = [
        {
            "agg": views.party(a["agg"]),
            "mspid": a["mspid"],
            "region": a["region"],
            "channel": a["channel"],
            "meters": a["meters"],
            "reputation": views.ppm(a["reputation"]["r_ppm"]),
            "balance": views.yuan(a["wallet"]["balance"]),
        }
        for a in found
    ]
    emit(rows, AGGREGATOR_COLUMNS, output, title="Aggregators")
