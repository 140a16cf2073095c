"""`vppctl clear`: clear a period's book.

Offline (``--offline BOOK.csv``) the book is a file and the clearing engine
runs here, with no network: to try the rules on a case, or to check what the
chaincode will do. On-network clearing (the VPPO's transaction at gate
closure) will be the same command without ``--offline`` and without a book, so
both paths share one command and one output format.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
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
from vpp_market.units import InputError, format_kwh, format_ppm, format_yuan

from vppctl.main import app

EXIT_INPUT = 2  # bad input or usage, like click's own usage errors

_EPILOG = (
    "Examples:\n\n"
    "  vppctl clear book_t02.csv --period 2 --offline\n\n"
    "  vppctl clear book_t13.csv --period 13 --offline --json > t13.json\n\n"
    "  vppctl clear book.csv -t 2 --offline --tou my_tou.csv\n\n"
    "  vppctl clear book.csv -t 2 --offline --aggregators aggs.csv --tie-lines lines.csv\n\n"
    "Book columns: agg,side,quantity_kwh,offer,reserve,reputation (agg as Agg3 or 3; "
    "kWh up to 3 decimals, yuan/kWh up to 6, reputation 0..1).\n\n"
    "A bad row stops the command with one line on stderr (file, data row, column, reason) "
    "and exit code 2."
)


def _fail(message: str) -> NoReturn:
    """One line on stderr and exit 2: a user fixing a file needs the cell, not a traceback."""
    typer.echo(f"vppctl clear: error: {' '.join(message.split())}", err=True)
    raise typer.Exit(EXIT_INPUT)


@app.command("clear", epilog=_EPILOG)
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
        int,
        typer.Option("--period", "-t", metavar="T", help="Period 1..24; T covers (T-1):00-T:00."),
    ] = ...,  # type: ignore[assignment]
    offline: Annotated[
        bool, typer.Option("--offline", help="Clear BOOK.csv here, without the network.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the result as JSON (and nothing else).")
    ] = False,
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
) -> None:
    """Clear a period: round 1 on offers, round 2 on reserves, the rest to the grid.

    Prints the matches like the paper's Tables 6-7, then what the grid absorbs.
    """
    try:
        check_period(period)
    except InputError as exc:
        _fail(f"--period {period}: {exc.reason}")
    try:
        if offline:
            prices, result = _clear_offline(book, period, tou, aggregators, tie_lines)
        else:
            prices, result = _clear_on_network(period, book)
    except InputError as exc:  # CsvError, OrderError, TOU errors: all name file/row/column
        _fail(str(exc))
    if as_json:
        try:
            document = result_to_json(result)
        except ValueError as exc:  # a quantity too large to print exactly as a JSON number
            _fail(f"cannot write the result as exact JSON: {exc}")
        typer.echo(json.dumps(document, indent=2))
    else:
        _print_tables(result, prices)


def _clear_on_network(period: int, book: Path | None) -> tuple[PeriodPrices, ClearingResult]:
    """The VPPO's clearing transaction: returns what it cleared, printed like offline results.

    Not in this build yet, so it says where it will be.
    """
    hint = "" if book is None else f" ({book} is only read with --offline)"
    _fail(
        f"on-network clearing is provided by `vppctl clear --period {period}` against the "
        f"network, which this build does not have yet; to clear a book file use "
        f"`vppctl clear BOOK.csv --period {period} --offline`{hint}"
    )


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


def _print_tables(result: ClearingResult, prices: PeriodPrices) -> None:
    console = Console()
    t = result.period
    matches = Table(
        title=(
            f"Period {t} ({t - 1:02d}:00-{t:02d}:00): grid sells at s_t "
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
