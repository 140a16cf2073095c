"""`vppctl anchor`, `vppctl settle`, `vppctl settlements`: money for a cleared period.

Settlement needs every P2P contract signed (or voided) and every ordering
aggregator's metered delivery anchored from its own channel. ``settle``
says what is missing and can do the anchoring itself (``--anchor``), because
anchoring is a VPPO step with nothing to decide.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from vppctl import market_ops, options, views
from vppctl.errors import CliError
from vppctl.output import Column, Output, OutputOption, emit, num
from vppctl.periods import Calendar
from vppctl.registry import command
from vppctl.session import session, submit

commands = typer.Typer()  # this module's commands; main.py adds it to the app

SETTLEMENT_COLUMNS = [
    Column("agg", "Agg"),
    Column("side", "Side"),
    num("quantity_kwh", "Order kWh"),
    num("contracted_kwh", "Contracted"),
    num("grid_kwh", "Grid kWh"),
    num("delivered_kwh", "Delivered"),
    num("deviation_kwh", "Deviation"),
    num("a", "a"),
    num("income", "Income"),
    num("expenditure", "Expenditure"),
    num("net", "Net"),
]

DELIVERY_COLUMNS = [
    Column("agg", "Agg"),
    Column("side", "Side"),
    num("quantity_kwh", "Order kWh"),
    num("metered_kwh", "Metered kWh"),
    num("exported_kwh", "Exported"),
    num("imported_kwh", "Imported"),
    num("readings", "Readings"),
    Column("sha256", "sha256"),
]


def _emit_settlements(records: list[dict[str, Any]], pid: str, output: Output) -> None:
    rows = [views.settlement_row(r) for r in records]
    total = sum(r["net"] for r in records)
    emit(
        rows,
        [Column("period", "Period"), *SETTLEMENT_COLUMNS],
        output,
        title=f"Settlement of {pid} (yuan; kWh)",
        caption=f"aggregators' net {views.yuan(total)} yuan; the grid wallet takes the opposite",
        empty="no aggregator had an order",
    )


def delivery_row(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "period": d["period"],
        "agg": views.party(d["agg"]),
        "side": d["side"],
        "quantity_kwh": views.kwh(d["quantity_wh"]),
        "metered_kwh": views.kwh(d["metered_wh"]),
        "exported_kwh": views.kwh(d["exported_wh"]),
        "imported_kwh": views.kwh(d["imported_wh"]),
        "readings": d["readings"],
        "sha256": d["sha256"],
    }


@command(
    commands,
    "anchor",
    epilog=(
        "Examples:\n\n"
        "  vppctl anchor --period 13            # every ordering aggregator not yet anchored\n\n"
        "  vppctl anchor --period 2-13 --agg 3\n\n"
        "The aggregator's channel must have sealed the period first (`vppctl meter seal`). "
        "Runs as vppo-admin."
    ),
)
def anchor(
    period: options.RequiredPeriodOption,
    day: options.DayOption = None,
    agg: options.AggOption = None,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Record metered deliveries from the aggregators' sealed channels (AnchorDelivery)."""
    with session() as s:
        market = s.market(options.operator(as_))
        record = options.resolve_period(market, period, day)
        pid = record["period"]
        aggs = [agg] if agg is not None else market_ops.missing_deliveries(market, pid)
        if not aggs:
            raise CliError(f"every delivery of {pid} is already anchored")
        results = market_ops.anchor_all(market, pid, aggs)
    emit(
        [delivery_row(d) for d in results],
        DELIVERY_COLUMNS,
        output,
        title=f"Deliveries anchored for {pid}",
    )


@command(
    commands,
    "settle",
    epilog=(
        "Examples:\n\n"
        "  vppctl settle --period 13\n\n"
        "  vppctl settle --period 2-13 --anchor     # anchor missing deliveries first\n\n"
        "  vppctl settle --period 13 --void --anchor --output json\n\n"
        "Runs as vppo-admin; a period settles once."
    ),
)
def settle(
    period: options.RequiredPeriodOption,
    day: options.DayOption = None,
    anchor_first: Annotated[
        bool, typer.Option("--anchor", help="Anchor every missing delivery first.")
    ] = False,
    void_first: Annotated[
        bool, typer.Option("--void", help="Void unsigned contracts first (VoidUnsigned).")
    ] = False,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Settle a cleared period: contracts, grid terms and deviations into wallets (SettlePeriod)."""
    with session() as s:
        market = s.market(options.operator(as_))
        record = options.resolve_period(market, period, day)
        pid = record["period"]
        if record["status"] != "CLEARED":
            raise CliError(
                f"period {pid} is {record['status']}: only a CLEARED period settles"
                + (" (it settles once)" if record["status"] == "SETTLED" else "")
            )
        if void_first:
            submit(market, "VoidUnsigned", pid, message=f"voiding unsigned contracts of {pid}")
        if anchor_first:
            missing = market_ops.missing_deliveries(market, pid)
            if missing:
                market_ops.anchor_all(market, pid, missing)
        submit(market, "SettlePeriod", pid, message=f"settling {pid}")
        records = market_ops.settlement_records(
            market, Calendar(market).require(record["day"], record["t"])
        )
    _emit_settlements(records, pid, output)


@command(
    commands,
    "settlements",
    epilog=(
        "Examples:\n\n"
        "  vppctl settlements --period 13\n\n"
        "  vppctl settlements --period 2-13 --agg 3 --output csv\n\n"
        "Amounts in yuan, energy in kWh; a = the period's evaluation coefficient."
    ),
)
def settlements(
    period: options.RequiredPeriodOption,
    day: options.DayOption = None,
    agg: options.AggOption = None,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Per aggregator: contracted, delivered, deviation, a, income, expenditure, net."""
    with session() as s:
        market = s.market(options.reader(agg, as_))
        record = options.resolve_period(market, period, day)
        records = market_ops.settlement_records(market, record)
    if agg is not None:
        records = [r for r in records if r["agg"] == agg]
    _emit_settlements(records, record["period"], output)
