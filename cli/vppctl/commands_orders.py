"""`vppctl bid`, `vppctl orders`, `vppctl cancel`: an aggregator's order for a period.

A bid is typed many times a day, so everything that can be looked up is: the
period is the open one, the identity is the aggregator's trader, the reserve
defaults to the offer. With a forecast instead of side and quantity, the
spec's first-quotation rule (``vpp_market.quotation``) picks the side, the
quantity |P_pre - P_load| and the offer from the period's TOU prices.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from vpp_market.model import PeriodPrices, Side
from vpp_market.quotation import first_quotation
from vpp_market.units import format_kwh, format_yuan, parse_kw, parse_kwh, parse_price

from vppctl import options, order_checks, sealed_orders, views
from vppctl.errors import CliError, guarded, usage_error
from vppctl.output import Column, Output, OutputOption, emit, num
from vppctl.periods import Calendar
from vppctl.registry import TRADING, command
from vppctl.session import query, session, submit

commands = typer.Typer()  # this module's commands; main.py adds it to the app


class SideChoice(StrEnum):
    BUY = "buy"
    SELL = "sell"


ORDER_COLUMNS = [
    Column("period", "Period"),
    Column("agg", "Agg"),
    Column("side", "Side"),
    num("quantity_kwh", "kWh"),
    num("offer", "Offer"),
    num("reserve", "Reserve"),
    Column("sealed", "Sealed"),
    Column("submitter", "Submitter"),
]

_BID_EPILOG = """Examples:

  vppctl bid --agg 3 --side buy --qty 285.6 --price 0.713 --reserve 0.736

  vppctl bid --agg 3 --price 0.713            # amend: side, qty and reserve are kept

  vppctl bid --agg 1 --forecast-output 900 --forecast-load 581.3 --cost 0.3

  vppctl bid --agg 3 --side buy --qty 10 --price 0.713 --period 2-13 --output json

Prices in yuan/kWh (up to 6 decimals), energy in kWh (up to 3), forecasts in kW
over the hour. Flags left out keep the values of the aggregator's standing
order for the period; a new order without --reserve reserves at the offer (no
concession in round 2). Acts as agg<N>-trader unless --as is given.
"""


def _decimal(parse: Any, value: str | None, option: str) -> int | None:
    """Parse an exact decimal option, naming the option in the error."""
    return None if value is None else parse(value, option)


def _existing_order(market: Any, period: str, agg: int) -> dict[str, Any] | None:
    book = query(market, "GetOrderBook", period)
    return next((o for o in book["orders"] if o["agg"] == agg), None)


def _plan_order(
    period: dict[str, Any],
    existing: dict[str, Any] | None,
    *,
    price: int | None,
    side: SideChoice | None,
    qty: int | None,
    reserve: int | None,
    forecast: tuple[int, int, int] | None,
) -> tuple[Side, int, int, int]:
    """(side, quantity Wh, offer, reserve) from the flags, the forecast or the standing order."""
    if forecast is not None:
        output_w, load_w, cost = forecast
        prices = PeriodPrices(period["t"], period["sale"], period["purchase"])
        quote = first_quotation(prices, output_w, load_w, cost)
        if quote is None:
            raise CliError("forecast output equals forecast load: nothing to buy or sell")
        if side is not None and side.value != quote.side.value:
            raise usage_error(
                f"--side {side.value} contradicts the forecast, which makes Agg a "
                f"{quote.side.value}er of {format_kwh(quote.quantity_wh)} kWh"
            )
        offer = price if price is not None else quote.offer
        return quote.side, quote.quantity_wh, offer, reserve if reserve is not None else offer
    if side is None or qty is None:
        if existing is None:
            raise usage_error(
                "a new order needs --side and --qty (or --forecast-output and --forecast-load)"
            )
        side = side or SideChoice(existing["side"])
        qty = qty if qty is not None else existing["quantity_wh"]
    if price is None:
        if existing is None:
            raise usage_error("pass --price (the offer, yuan/kWh)")
        price = existing["offer"]
    if reserve is None:
        # An amended order keeps its reserve; a new one concedes nothing in round 2.
        reserve = existing["reserve"] if existing is not None else price
    return Side(side.value), qty, price, reserve


@command(commands, "bid", epilog=_BID_EPILOG)
def bid(
    agg: options.AggOption = None,
    price: Annotated[
        str | None,
        typer.Option("--price", "-p", metavar="YUAN", help="Offer price, yuan/kWh."),
    ] = None,
    side: Annotated[SideChoice | None, typer.Option("--side", help="buy or sell.")] = None,
    qty: Annotated[str | None, typer.Option("--qty", "-q", metavar="KWH", help="kWh.")] = None,
    reserve: Annotated[
        str | None,
        typer.Option(
            "--reserve",
            "-r",
            metavar="YUAN",
            help="Round-2 price: a seller's lowest, a buyer's highest (default: the offer).",
        ),
    ] = None,
    forecast_output: Annotated[
        str | None,
        typer.Option("--forecast-output", metavar="KW", help="Forecast output P_pre (kW)."),
    ] = None,
    forecast_load: Annotated[
        str | None,
        typer.Option("--forecast-load", metavar="KW", help="Forecast load P_load (kW)."),
    ] = None,
    cost: Annotated[
        str | None,
        typer.Option("--cost", metavar="YUAN", help="Generation cost c_j of a seller (yuan/kWh)."),
    ] = None,
    period: options.PeriodOption = None,
    day: options.DayOption = None,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Place or replace an aggregator's order for the open period (SubmitOrder)."""
    number = options.require_agg(agg, as_)
    offer = _decimal(parse_price, price, "--price")
    quantity = _decimal(parse_kwh, qty, "--qty")
    reserve_price = _decimal(parse_price, reserve, "--reserve")
    forecast = None
    if forecast_output is not None or forecast_load is not None or cost is not None:
        if forecast_output is None or forecast_load is None:
            raise usage_error("--forecast-output and --forecast-load go together")
        if quantity is not None:
            raise usage_error("--qty comes from the forecast: give either --qty or a forecast")
        forecast = (
            parse_kw(forecast_output, "--forecast-output"),
            parse_kw(forecast_load, "--forecast-load"),
            _decimal(parse_price, cost, "--cost") or 0,
        )
    spec = options.period_spec(period)
    with session() as s:
        market = s.market(options.trader(number, as_))
        record = Calendar(market).resolve(spec, day=options.day_value(day))
        existing = None
        if forecast is None:
            existing = _existing_order(market, record["period"], number)
        order_side, wh, offer_price, reserve_value = _plan_order(
            record,
            existing,
            price=offer,
            side=side,
            qty=quantity,
            reserve=reserve_price,
            forecast=forecast,
        )
        order = {
            "agg": f"Agg{number}",
            "period": record["period"],
            "side": order_side.value,
            "quantity_kwh": format_kwh(wh),
            "offer": format_yuan(offer_price),
            "reserve": format_yuan(reserve_value),
        }
        stored = sealed_orders.submit_order(
            market,
            number,
            order,
            message=f"Agg{number}: submitting the order for {record['period']}",
        )
    # The chaincode answers with the public record only (the block keeps the answer, so it
    # names no sealed field); the order itself is what was just sent.
    sent = {
        **stored,
        "side": order_side.value,
        "quantity_wh": wh,
        "offer": offer_price,
        "reserve": reserve_value,
    }
    row = {**views.order_row(sent), "replaced": stored.get("replaced", False)}
    verb = "replaced" if row["replaced"] else "placed"
    emit(
        [row],
        [*ORDER_COLUMNS, Column("replaced", "Replaced"), Column("tx_id", "Transaction")],
        output,
        title=f"Order {verb} for {record['period']} ({views.prices_text(record)})",
    )


_ORDERS_EPILOG = """Examples:

  vppctl orders                       # every open period's book

  vppctl orders --period 13 --agg 3   # Agg3's order in the latest period with hour 13

  vppctl orders --period 2-13 --output csv
"""


orders_app = typer.Typer(
    name="orders",
    help="Show the order book a caller may see; verify orders against the ledger.",
    invoke_without_command=True,
)
commands.add_typer(orders_app, rich_help_panel=TRADING)


def _orders(
    ctx: typer.Context,
    period: options.PeriodOption = None,
    day: options.DayOption = None,
    agg: options.AggOption = None,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Show the order book of a period (default: every open period) (GetOrderBook).

    Orders are sealed: the VPPO and the Grid see every order, an aggregator
    its own and, of the others, only that they exist (Sealed: yes).
    """
    if ctx.invoked_subcommand is not None:
        return
    spec = options.period_spec(period)
    with session() as s:
        market = s.market(options.reader(agg, as_))
        calendar = Calendar(market)
        if spec is None and day is None:
            periods = calendar.open_periods() or [calendar.resolve(None, default="latest")]
        else:
            periods = [calendar.resolve(spec, day=options.day_value(day))]
        books = [query(market, "GetOrderBook", p["period"]) for p in periods]
    rows = [
        views.order_row(o)
        for book in books
        for o in book["orders"]
        if agg is None or o["agg"] == agg
    ]
    title = "; ".join(f"{b['period']} {b['status']} ({views.prices_text(b)})" for b in books)
    emit(rows, ORDER_COLUMNS, output, title=f"Orders of {title}", empty="no orders")


orders_app.callback(invoke_without_command=True, epilog=_ORDERS_EPILOG)(guarded(_orders, "orders"))

_VERIFY_EPILOG = """Examples:

  vppctl orders verify --file my-order.json          # an order shown to you, with its salt

  vppctl orders verify --period 2-13 --as grid-admin # every order of a period (VPPO, Grid)

  vppctl orders verify --period 13 --agg 3           # Agg3's own order, as agg3-trader

The file is one order as SubmitOrder took it (agg, period, side, quantity_kwh,
offer, reserve, salt) or as `vppctl orders -o json`/GetOrderBook shows it.
Exit 1 when an order does not match the hash the ledger holds for it.
"""


@command(orders_app, "verify", path="orders verify", epilog=_VERIFY_EPILOG)
def verify(
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", metavar="ORDER.json", help="One order with its salt."),
    ] = None,
    period: options.PeriodOption = None,
    day: options.DayOption = None,
    agg: options.AggOption = None,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Check orders against the salted hashes on the ledger (sealed orders).

    With --file: the order in the file (which someone showed you, salt
    included) against the hash the ledger holds for its aggregator and
    period. Without: every order of the period the caller may see in full
    (the VPPO and the Grid: all of them).
    """
    if file is not None:
        claimed = order_checks.read_order_file(file)
        pid = claimed["period"]
        identity = options.reader(agg, as_)
    else:
        claimed = None
        pid = None
        identity = options.reader(agg, as_)
    spec = options.period_spec(period)
    with session() as s:
        market = s.market(identity)
        if pid is None:
            pid = Calendar(market).resolve(spec, day=options.day_value(day))["period"]
        book = query(market, "GetOrderBook", pid)
    if claimed is not None:
        results = [order_checks.check_claim(claimed, book)]
    else:
        results = order_checks.check_book(book, agg)
        if not results:
            raise CliError(f"no order of {pid} is visible in full to {identity}")
    emit(
        results,
        [
            Column("period", "Period"),
            Column("agg", "Agg"),
            Column("hash", "Ledger hash"),
            Column("matches", "Matches"),
        ],
        output,
        title=f"Sealed orders of {pid} against the ledger",
    )
    bad = [r for r in results if not r["matches"]]
    if bad:
        raise CliError(
            "; ".join(f"{r['agg']}'s order for {r['period']} {r['reason']}" for r in bad)
        )


@command(
    commands,
    "cancel",
    epilog="Examples:\n\n  vppctl cancel --agg 3\n\n  vppctl cancel --agg 3 --period 2-13",
)
def cancel(
    agg: options.AggOption = None,
    period: options.PeriodOption = None,
    day: options.DayOption = None,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Withdraw an aggregator's order while the gate is open (CancelOrder)."""
    number = options.require_agg(agg, as_)
    spec = options.period_spec(period)
    with session() as s:
        market = s.market(options.trader(number, as_))
        record = Calendar(market).resolve(spec, day=options.day_value(day))
        result = submit(
            market,
            "CancelOrder",
            record["period"],
            f"Agg{number}",
            message=f"Agg{number}: cancelling the order for {record['period']}",
        )
    row = {"period": result["period"], "agg": views.party(result["agg"]), "cancelled": True}
    emit(
        [row],
        [Column("period", "Period"), Column("agg", "Agg"), Column("cancelled", "Cancelled")],
        output,
        title="Order cancelled",
    )
