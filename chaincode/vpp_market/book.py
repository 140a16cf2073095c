"""Book, aggregator and tie-line CSV files in; a clearing result out as JSON.

Offline clearing reads a period's book from a file (market-rules.md: "offline
clearing of a book file takes [reputation] from the file"). A bad file is
refused as a whole, with the data row, column and reason of the first bad
cell (``CsvError``), so nothing is cleared from half a book. Rule violations
that ``clearing.validate_orders`` finds are mapped back to the row and column
they came from, so the user is pointed at the cell to fix either way.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vpp_market.clearing import OrderError, validate_orders
from vpp_market.csvrows import CsvError, cell, read_rows
from vpp_market.model import ClearingResult, Order, PeriodPrices, Side
from vpp_market.topology import TieLine, Topology, TopologyError
from vpp_market.units import (
    InputError,
    kwh_json,
    parse_exact_kwh,
    parse_exact_price,
    parse_kw,
    parse_reputation,
    ppm_json,
    trim,
    yuan_json,
)

BOOK_COLUMNS = ("agg", "side", "quantity_kwh", "offer", "reserve", "reputation")
AGGREGATOR_COLUMNS = ("agg", "region")
TIE_LINE_COLUMNS = ("from_region", "to_region", "limit_kw")

# Which book column an Order field comes from, to point a rule violation at its cell.
_COLUMN_OF_FIELD = {
    "agg": "agg",
    "side": "side",
    "quantity_wh": "quantity_kwh",
    "offer": "offer",
    "reserve": "reserve",
    "reputation_ppm": "reputation",
}

_AGG_RE = re.compile(r"(?:agg)?([1-9][0-9]{0,8})", re.IGNORECASE)


def parse_agg(value: str, field: str = "agg") -> int:
    """ "Agg3" or "3" -> 3. Leading zeros are refused so Agg03 cannot pose as a second Agg3."""
    m = _AGG_RE.fullmatch(trim(value))
    if m is None:
        raise InputError(field, value, "is not an aggregator (AggN or N, N >= 1, no leading zero)")
    return int(m.group(1))


def agg_name(agg: int) -> str:
    """3 -> "Agg3", the spelling of the paper and of the JSON output."""
    return f"Agg{agg}"


def parse_side(value: str) -> Side:
    """ "sell" or "buy" (any case) -> Side."""
    try:
        return Side(trim(value).lower())
    except ValueError:
        raise InputError("side", value, "is not 'sell' or 'buy'") from None


def _parse_region(value: str) -> str:
    region = trim(value)
    if not region:
        raise InputError("region", value, "is empty")
    if not region.isprintable() or any(c.isspace() for c in region):
        raise InputError("region", value, "has a control or space character")
    return region


@dataclass(frozen=True, slots=True)
class Located:
    """Where a value came from: file, 1-based data row and physical line."""

    path: str
    row: int
    line: int

    def error(self, column: str | None, reason: str) -> CsvError:
        return CsvError(self.path, self.row, column, reason, line=self.line)


@dataclass(frozen=True, slots=True)
class Book:
    """A period's orders from a book file, with the row each aggregator's order came from."""

    orders: tuple[Order, ...]
    rows: Mapping[int, Located]
    regions: Mapping[int, Located] = dataclasses.field(default_factory=dict)

    def check(self, prices: PeriodPrices, topology: Topology | None = None) -> None:
        """Apply the spec's order rules, pointing a violation at its file, row and column."""
        try:
            validate_orders(self.orders, prices, topology)
        except OrderError as exc:
            if exc.field == "region" and exc.agg in self.regions:
                raise self.regions[exc.agg].error("region", exc.reason) from exc
            where = self.rows.get(exc.agg)  # type: ignore[call-overload]
            if where is None:
                raise
            raise where.error(_COLUMN_OF_FIELD.get(exc.field, exc.field), exc.reason) from exc


def read_book(path: str | Path) -> Book:
    """Read a book CSV (agg,side,quantity_kwh,offer,reserve,reputation) as orders.

    Quantities and prices beyond 15 significant digits are refused at their cell
    (units.JSON_EXACT_MAX): every output format must print the result exactly.
    """
    orders: list[Order] = []
    rows: dict[int, Located] = {}
    for row in read_rows(path, BOOK_COLUMNS):
        agg = cell(path, row, "agg", parse_agg)
        if agg in rows:
            raise CsvError(
                path,
                row.number,
                "agg",
                f"{agg_name(agg)} already has an order at data row {rows[agg].row} "
                "(one order per aggregator per period)",
                line=row.line,
            )
        orders.append(
            Order(
                agg=agg,
                side=cell(path, row, "side", parse_side),
                quantity_wh=cell(path, row, "quantity_kwh", parse_exact_kwh),
                offer=cell(path, row, "offer", parse_exact_price),
                reserve=cell(path, row, "reserve", parse_exact_price),
                reputation_ppm=cell(path, row, "reputation", parse_reputation),
            )
        )
        rows[agg] = Located(str(path), row.number, row.line)
    return Book(tuple(orders), rows)


def read_aggregators(path: str | Path) -> dict[int, tuple[str, Located]]:
    """Read an aggregators CSV (agg,region,...): each aggregator's region and its row."""
    regions: dict[int, tuple[str, Located]] = {}
    for row in read_rows(path, AGGREGATOR_COLUMNS):
        agg = cell(path, row, "agg", parse_agg)
        if agg in regions:
            raise CsvError(
                path,
                row.number,
                "agg",
                f"{agg_name(agg)} is already listed at data row {regions[agg][1].row}",
                line=row.line,
            )
        region = cell(path, row, "region", _parse_region)
        regions[agg] = (region, Located(str(path), row.number, row.line))
    return regions


def read_tie_lines(path: str | Path) -> Topology:
    """Read a tie-lines CSV (from_region,to_region,limit_kw) as a topology, checked to be a tree."""
    lines: list[TieLine] = []
    located: list[Located] = []
    for row in read_rows(path, TIE_LINE_COLUMNS):
        lines.append(
            TieLine(
                a=cell(path, row, "from_region", _parse_region),
                b=cell(path, row, "to_region", _parse_region),
                limit_w=cell(path, row, "limit_kw", parse_kw),
            )
        )
        located.append(Located(str(path), row.number, row.line))
    try:
        return Topology(lines)
    except TopologyError as exc:
        if exc.line is None:
            raise CsvError(path, None, None, exc.reason) from exc
        raise located[exc.line].error(None, exc.reason) from exc


def with_regions(
    book: Book, aggregators: Mapping[int, tuple[str, Located]], topology: Topology
) -> Book:
    """The book with each order's region from the aggregators file, checked against the topology."""
    orders = []
    for order in book.orders:
        entry = aggregators.get(order.agg)
        if entry is None:
            where = book.rows[order.agg]
            raise where.error("agg", f"{agg_name(order.agg)} is not listed in the aggregators file")
        region, where = entry
        if region not in topology.regions:
            raise where.error("region", f"{region!r} is not an end of any tie-line")
        orders.append(dataclasses.replace(order, region=region))
    regions = {order.agg: aggregators[order.agg][1] for order in book.orders}
    return Book(tuple(orders), book.rows, regions)


def result_to_json(result: ClearingResult) -> dict[str, Any]:
    """The clearing result as the JSON document of ``vppctl clear --json``.

    Quantities are kWh and prices yuan/kWh as JSON numbers that print exactly
    (to the Wh and the micro-yuan), xi a number exact to 1e-6.
    """
    return {
        "period": result.period,
        "matches": [
            {
                "round": m.round,
                "seller": agg_name(m.seller),
                "buyer": agg_name(m.buyer),
                "quantity_kwh": kwh_json(m.quantity_wh),
                "price": yuan_json(m.price),
                "xi": ppm_json(m.xi_ppm),
            }
            for m in result.matches
        ],
        "grid": [
            {
                "agg": agg_name(g.agg),
                "side": str(g.side),
                "quantity_kwh": kwh_json(g.quantity_wh),
                "price": yuan_json(g.price),
            }
            for g in result.grid
        ],
    }
