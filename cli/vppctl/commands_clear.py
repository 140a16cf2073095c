"""`vppctl clear`: clear a period's book.

Offline (``--offline BOOK.csv``) the book is a file and the clearing engine
runs here, with no network: to try the rules on a case, or to check what the
chaincode will do. On the network (no ``--offline``, no book) it is the
VPPO's ClearPeriod transaction at gate closure, which reads the orders and
reputations from the ledger; the result is read back from the contracts it
made and printed exactly like an offline result, so both paths share one
command and one output format (``--json`` is the same document).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.table import Table
from vpp_market.book import (
    agg_name,
    read_aggregators,
    read_book,
    read_tie_lines,
    result_to_json,
    with_regions,
)
from vpp_market.clearing import clear
from vpp_market.model import ClearingResult, PeriodPrices, Side
from vpp_market.topology import Topology
from vpp_market.tou import PAPER_TOU, check_period, load_tou_csv
from vpp_market.units import InputError, format_kwh, format_ppm, format_yuan, trim

from vppctl import options, views
from vppctl.errors import EXIT_USAGE as _EXIT_USAGE
from vppctl.errors import CliError
from vppctl.output import Column, Output, num, to_csv
from vppctl.output import stdout as output_stdout
from vppctl.periods import Calendar, parse_period
from vppctl.registry import command
from vppctl.session import query, session, submit

commands = typer.Typer()  # this module's commands; main.py adds it to the app

EXIT_INPUT = _EXIT_USAGE  # bad input or usage, like click's own usage errors

_EPILOG = (
    "Examples:\n\n"
    "  vppctl clear --period 13                  # on the network, as vppo-admin\n\n"
    "  vppctl clear --period 3-13 --close --output json\n\n"
    "  vppctl clear book_t02.csv --period 2 --offline\n\n"
    "  vppctl clear book_t13.csv --period 13 --offline --json > t13.json\n\n"
    "  vppctl clear book.csv -t 2 --offline --tou my_tou.csv\n\n"
    "  vppctl clear book.csv -t 2 --offline --aggregators aggs.csv --tie-lines lines.csv\n\n"
    "Book columns: agg,side,quantity_kwh,offer,reserve,reputation (agg as Agg3 or 3; "
    "kWh up to 3 decimals, yuan/kWh up to 6, reputation 0..1).\n\n"
    "A bad row stops the command with one line on stderr (file, data row, column, reason) "
    "and exit code 2.\n\n"
    "On the network --period is an hour T (the latest day that has it) or DAY-T; the "
    "period's gate must be closed (--close closes it first)."
)


def _fail(message: str, exit_code: int = EXIT_INPUT) -> NoReturn:
    """One line on stderr and exit 2: a user fixing a file needs the cell, not a traceback."""
    typer.echo(f"vppctl clear: error: {' '.join(message.split())}", err=True)
    raise typer.Exit(exit_code)


@command(commands, "clear", epilog=_EPILOG)
def clear_command(
    book: Annotated[
        Path | None,
        typer.Argument(
            metavar="BOOK.csv",
            help="The period's book (needed with --offline).",
            show_default=False,
        ),
    ] = None,
    period: Annotated[
        str,
        typer.Option(
            "--period",
            "-t",
            metavar="T",
            help="Period 1..24; T covers (T-1):00-T:00. On the network also DAY-T.",
        ),
    ] = ...,  # type: ignore[assignment]
    offline: Annotated[
        bool, typer.Option("--offline", help="Clear BOOK.csv here, without the network.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the result as JSON (and nothing else).")
    ] = False,
    output: Annotated[
        Output | None,
        typer.Option(
            "--output",
            "-o",
            case_sensitive=False,
            help="table, json (as --json) or csv (one row per match or grid absorption).",
            show_default=False,
        ),
    ] = None,
    tou: Annotated[
        Path | None,
        typer.Option(
            "--tou",
            metavar="TOU.csv",
            help="TOU prices (columns of tou.csv); default: the paper's table.",
        ),
    ] = None,
    aggregators: Annotated[
        Path | None,
        typer.Option(
            "--aggregators",
            metavar="AGGS.csv",
            help="Each aggregator's region (agg,region,...); with --tie-lines.",
        ),
    ] = None,
    tie_lines: Annotated[
        Path | None,
        typer.Option(
            "--tie-lines",
            metavar="LINES.csv",
            help="Tie-lines (from_region,to_region,limit_kw); without them lines are unlimited.",
        ),
    ] = None,
    day: options.DayOption = None,
    close: Annotated[
        bool,
        typer.Option("--close", help="On the network: close the period's gate first."),
    ] = False,
    as_: options.AsOption = None,
) -> None:
    """Clear a period: round 1 on offers, round 2 on reserves, the rest to the grid.

    Prints the matches like the paper's Tables 6-7, then what the grid absorbs.
    On the network this is the VPPO's ClearPeriod (acts as vppo-admin).
    """
    fmt = Output.JSON if as_json else (output or Output.TABLE)
    label: str | None = None
    if offline:
        hour = _offline_hour(period)
        try:
            prices, result = _clear_offline(book, hour, tou, aggregators, tie_lines)
        except InputError as exc:  # CsvError, OrderError, TOU errors: all name file/row/column
            _fail(str(exc))
    else:
        prices, result, label = _clear_on_network(period, book, day, close, as_)
    if fmt in (Output.JSON, Output.CSV):
        try:  # offline books are bounded when read (units.JSON_EXACT_MAX); the ledger's are not
            document = result_to_json(result)
        except ValueError as exc:  # a quantity too large to print exactly as a JSON number
            where = "the ledger's book" if label else str(book)
            _fail(f"{where}: cannot write the result as exact numbers: {exc}", 1)
        if fmt is Output.JSON:
            typer.echo(json.dumps(document, indent=2))
        else:
            typer.echo(_csv(document), nl=False)
    else:
        _print_tables(result, prices, label)


def _offline_hour(text: str) -> int:
    """The hour of ``--period`` for a book file (a day, if given, does not matter offline)."""
    stripped = trim(text)
    if stripped.isascii() and stripped.isdigit():
        period = int(stripped)
        try:
            check_period(period)
        except InputError as exc:
            _fail(f"--period {period}: {exc.reason}")
        return period
    try:
        return parse_period(text).hour
    except CliError as exc:
        _fail(exc.message)


def _clear_on_network(
    period_text: str, book: Path | None, day: int | None, close: bool, identity: str | None
) -> tuple[PeriodPrices, ClearingResult, str]:
    """The VPPO's clearing transaction; returns what it cleared, printed like offline results."""
    if book is not None:
        raise CliError(
            f"{book} is only read with --offline; on the network the book is the ledger's "
            f"orders (run `vppctl clear --period {period_text}`, or add --offline)",
            EXIT_INPUT,
        )
    spec = parse_period(period_text)
    with session() as s:
        market = s.market(options.operator(identity))
        record = Calendar(market).resolve(spec, day=options.day_value(day))
        pid = record["period"]
        if record["status"] == "OPEN":
            if not close:
                raise CliError(
                    f"period {pid} is OPEN: close the gate first "
                    f"(`vppctl period close --period {pid}`, or add --close)"
                )
            submit(market, "ClosePeriod", pid, message=f"closing the gate of {pid}")
        elif record["status"] != "CLOSED":
            raise CliError(
                f"period {pid} is {record['status']}: it has already been cleared "
                f"(see `vppctl contracts --period {pid}`)"
            )
        submit(market, "ClearPeriod", pid, message=f"clearing {pid}")
        contracts = query(market, "GetContracts", pid)["contracts"]
    prices = PeriodPrices(record["t"], record["sale"], record["purchase"])
    return prices, views.clearing_result(record["t"], contracts), f"Period {pid}"


CSV_COLUMNS = [
    Column("kind", "kind"),
    Column("round", "round"),
    Column("seller", "seller"),
    Column("buyer", "buyer"),
    num("quantity_kwh", "kWh"),
    num("price", "price"),
    num("xi", "xi"),
]


def _csv(document: dict[str, Any]) -> str:
    """One row per match, then one per grid absorption (the grid as seller or buyer)."""
    rows: list[dict[str, object]] = [{"kind": "p2p", **m} for m in document["matches"]]
    for g in document["grid"]:
        seller, buyer = (g["agg"], "Grid") if g["side"] == "sell" else ("Grid", g["agg"])
        rows.append(
            {
                "kind": "grid",
                "seller": seller,
                "buyer": buyer,
                "quantity_kwh": g["quantity_kwh"],
                "price": g["price"],
            }
        )
    return to_csv(rows, CSV_COLUMNS)


def _clear_offline(
    book_path: Path | None,
    period: int,
    tou_path: Path | None,
    aggregators_path: Path | None,
    tie_lines_path: Path | None,
) -> tuple[PeriodPrices, ClearingResult]:
    """Read every input file, check the book against the period's prices, and clear it."""
    if book_path is None:
        _fail("--offline needs a BOOK.csv to clear")
    if (aggregators_path is None) != (tie_lines_path is None):
        _fail("--aggregators and --tie-lines go together (regions need lines, lines need regions)")
    table = load_tou_csv(tou_path) if tou_path is not None else PAPER_TOU
    prices = table.prices_for(period)
    book = read_book(book_path)
    topology: Topology | None = None
    if aggregators_path is not None and tie_lines_path is not None:
        topology = read_tie_lines(tie_lines_path)
        book = with_regions(book, read_aggregators(aggregators_path), topology)
    book.check(prices, topology)
    return prices, clear(book.orders, prices, topology)


def _print_tables(result: ClearingResult, prices: PeriodPrices, label: str | None = None) -> None:
    console = output_stdout()
    t = result.period
    matches = Table(
        title=(
            f"{label or f'Period {t}'} ({views.hours(t)}): grid sells at s_t "
            f"{format_yuan(prices.sale)}, buys at f_t {format_yuan(prices.purchase)} yuan/kWh"
        ),
        title_justify="left",
    )
    matches.add_column("Round", justify="right")
    matches.add_column("Seller")
    matches.add_column("Buyer")
    matches.add_column("kWh", justify="right")
    matches.add_column("Seller price", justify="right")
    matches.add_column("Buyer price", justify="right")
    matches.add_column("xi", justify="right")
    matches.add_column("Price", justify="right")
    for m in result.matches:
        matches.add_row(
            str(m.round),
            agg_name(m.seller),
            agg_name(m.buyer),
            format_kwh(m.quantity_wh),
            format_yuan(m.seller_price),
            format_yuan(m.buyer_price),
            format_ppm(m.xi_ppm),
            format_yuan(m.price),
        )
    if not result.matches:
        matches.caption = "no P2P matches"
    console.print(matches)

    grid = Table(title="Grid absorption", title_justify="left")
    grid.add_column("Agg")
    grid.add_column("Grid", justify="left")
    grid.add_column("kWh", justify="right")
    grid.add_column("Price", justify="right")
    for g in result.grid:
        grid.add_row(
            agg_name(g.agg),
            "buys (f_t)" if g.side is Side.SELL else "supplies (s_t)",
            format_kwh(g.quantity_wh),
            format_yuan(g.price),
        )
    if not result.grid:
        grid.caption = "nothing left for the grid"
    console.print(grid)
    p2p = sum(m.quantity_wh for m in result.matches)
    bought = sum(g.quantity_wh for g in result.grid if g.side is Side.SELL)
    supplied = sum(g.quantity_wh for g in result.grid if g.side is Side.BUY)
    console.print(
        f"P2P {format_kwh(p2p)} kWh in {len(result.matches)} matches; the grid buys "
        f"{format_kwh(bought)} kWh and supplies {format_kwh(supplied)} kWh.",
        highlight=False,
    )
