"""Time-of-use (TOU) grid prices: which s_t and f_t apply to period t.

Period t covers [(t-1):00, t:00) (market-rules.md), so t=1 is 00:00-01:00 and
t=24 is 23:00-24:00. A band "start -> end" covers the hours start..end-1 and
wraps midnight when end <= start ("23 -> 7" is 23:00-07:00). Every hour of the
day must be in exactly one band, so a table with a gap or an overlap is
refused instead of guessing a price.

The paper's table ships here as a constant (the chaincode must not read files
outside its package at runtime); it is ``paper_case/tou.csv`` with the 14-18
purchase price, blank in the paper, taken as 0.38 as the spec says.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vpp_market.csvrows import CsvError, cell, read_rows
from vpp_market.model import PeriodPrices
from vpp_market.units import (
    InputError,
    format_yuan,
    parse_exact_price,
    parse_fixed,
    parse_price,
)

HOURS = 24
TOU_COLUMNS = ("start_hour", "end_hour", "grid_sale_price", "grid_purchase_price")

# Generated from shared/data/paper_case/tou.csv (a test keeps the two equal).
PAPER_TOU_ROWS: tuple[tuple[int, int, str, str], ...] = (
    (23, 7, "0.38", "0.24"),
    (7, 11, "0.57", "0.38"),
    (11, 14, "0.86", "0.65"),
    (14, 18, "0.57", "0.38"),
    (18, 23, "0.80", "0.65"),
)


class TouError(InputError):
    """A TOU table that does not give exactly one price pair for every hour."""

    def __init__(self, reason: str, band: int | None = None) -> None:
        self.band = band  # 0-based index of the offending band, when one is to blame
        super().__init__("tou", None, reason, message=f"TOU table: {reason}")


@dataclass(frozen=True, slots=True)
class TouBand:
    """Hours [start, end) (wrapping midnight when end <= start) at sale s_t and purchase f_t."""

    start_hour: int
    end_hour: int
    sale: int
    purchase: int

    def hours(self) -> range | list[int]:
        """The hours of the day (0..23) the band covers."""
        if self.end_hour > self.start_hour:
            return range(self.start_hour, self.end_hour)
        return [*range(self.start_hour, HOURS), *range(0, self.end_hour)]


class TouTable:
    """A day's TOU prices, checked to cover every hour exactly once."""

    def __init__(self, bands: Iterable[TouBand]) -> None:
        self.bands: tuple[TouBand, ...] = tuple(bands)
        by_hour: list[int | None] = [None] * HOURS
        for index, band in enumerate(self.bands):
            _check_band(band, index)
            for hour in band.hours():
                other = by_hour[hour]
                if other is not None:
                    raise TouError(
                        f"band {_label(band)} overlaps band {_label(self.bands[other])} "
                        f"at {hour:02d}:00",
                        index,
                    )
                by_hour[hour] = index
        gaps = [hour for hour, index in enumerate(by_hour) if index is None]
        if gaps:
            raise TouError(
                f"no band covers {', '.join(f'{h:02d}:00-{h + 1:02d}:00' for h in gaps)}"
            )
        self._band_of_hour: tuple[int, ...] = tuple(i for i in by_hour if i is not None)

    def prices_for(self, period: int) -> PeriodPrices:
        """s_t and f_t of period t (1..24), which covers [(t-1):00, t:00)."""
        check_period(period)
        band = self.bands[self._band_of_hour[period - 1]]
        return PeriodPrices(period=period, sale=band.sale, purchase=band.purchase)


def _label(band: TouBand) -> str:
    return f"{band.start_hour}->{band.end_hour}"


def _check_band(band: TouBand, index: int) -> None:
    if not 0 <= band.start_hour < HOURS:
        raise TouError(f"start_hour {band.start_hour} is not in 0..23", index)
    if not 0 < band.end_hour <= HOURS:
        raise TouError(f"end_hour {band.end_hour} is not in 1..24 (0 is written 24)", index)
    if band.start_hour == band.end_hour:
        raise TouError(
            f"band {_label(band)} is empty or the whole day (write 0->24 for all day)", index
        )
    if band.purchase > band.sale:
        raise TouError(
            f"band {_label(band)}: purchase price {format_yuan(band.purchase)} is above "
            f"sale price {format_yuan(band.sale)} (no order could be valid)",
            index,
        )


def check_period(period: int) -> int:
    """The period itself if it is an int in 1..24, else InputError."""
    if isinstance(period, bool) or not isinstance(period, int) or not 1 <= period <= HOURS:
        raise InputError("period", period, "is not a period number 1..24")
    return period


def table_from_rows(rows: Sequence[Sequence[object]]) -> TouTable:
    """A table from (start_hour, end_hour, sale yuan/kWh, purchase yuan/kWh) rows."""
    return TouTable(_band_from_values(*row) for row in rows)


def _band_from_values(start: object, end: object, sale: object, purchase: object) -> TouBand:
    return TouBand(
        start_hour=_parse_hour("start_hour", start, allow_24=False),
        end_hour=_parse_hour("end_hour", end, allow_24=True),
        sale=parse_price(sale, "grid_sale_price"),
        purchase=parse_price(purchase, "grid_purchase_price"),
    )


def _parse_hour(field: str, value: object, *, allow_24: bool) -> int:
    hour = parse_fixed(field, value, 0)
    if allow_24 and hour == 0:
        return HOURS  # "18 -> 0" means until midnight
    if hour > (HOURS if allow_24 else HOURS - 1):
        raise InputError(field, value, f"is not an hour 0..{HOURS if allow_24 else HOURS - 1}")
    return hour


def load_tou_csv(path: str | Path) -> TouTable:
    """Read a TOU table CSV with the columns of paper_case/tou.csv; errors name row and column."""
    bands: list[TouBand] = []
    rows: list[int] = []
    lines: list[int] = []
    for row in read_rows(path, TOU_COLUMNS):
        bands.append(
            TouBand(
                start_hour=cell(
                    path, row, "start_hour", lambda v: _parse_hour("start_hour", v, allow_24=False)
                ),
                end_hour=cell(
                    path, row, "end_hour", lambda v: _parse_hour("end_hour", v, allow_24=True)
                ),
                sale=cell(path, row, "grid_sale_price", parse_exact_price),
                purchase=cell(path, row, "grid_purchase_price", parse_exact_price),
            )
        )
        rows.append(row.number)
        lines.append(row.line)
    try:
        return TouTable(bands)
    except TouError as exc:
        if exc.band is None:
            raise CsvError(path, None, None, exc.reason) from exc
        raise CsvError(path, rows[exc.band], None, exc.reason, line=lines[exc.band]) from exc


PAPER_TOU: TouTable = table_from_rows(PAPER_TOU_ROWS)


def prices_for(period: int, table: TouTable | None = None) -> PeriodPrices:
    """s_t and f_t of ``period`` from ``table`` (the paper's TOU table by default)."""
    return (table or PAPER_TOU).prices_for(period)
