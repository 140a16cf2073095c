"""The published case study, shipped inside the package (``vppctl/data/paper_case``).

The demo must run from an installed vppctl, so it reads its copies of the
shared data, never ``../shared`` (a unit test keeps the copies equal to the
shared files when those are next to the checkout). Values keep the exact
decimal text of the CSV cells, so orders go to the chaincode as written.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib import resources

from vpp_market.units import parse_kw, parse_kwh, parse_price, parse_reputation

PERIODS = (2, 13)
FILES = (
    "aggregators.csv",
    "book_t02.csv",
    "book_t13.csv",
    "published_t02.csv",
    "published_t13.csv",
    "tie_lines.csv",
    "tou.csv",
)


def read_text(name: str) -> str:
    """One file of the packaged case (see FILES)."""
    return resources.files("vppctl").joinpath("data", "paper_case", name).read_text("utf-8")


def _rows(name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(read_text(name))))


def agg_number(name: str) -> int:
    """ "Agg3" -> 3."""
    return int(name.strip()[3:])


@dataclass(frozen=True)
class Aggregator:
    agg: int
    region: str
    # kind (WT, PV, ESS; load in a simulated case) -> kW text, zero capacities left out
    capacities_kw: dict[str, str]


@dataclass(frozen=True)
class BookRow:
    agg: int
    side: str
    quantity_kwh: str
    offer: str
    reserve: str
    reputation: str

    @property
    def quantity_wh(self) -> int:
        return parse_kwh(self.quantity_kwh)

    @property
    def offer_micro(self) -> int:
        return parse_price(self.offer)

    @property
    def reserve_micro(self) -> int:
        return parse_price(self.reserve)

    @property
    def reputation_ppm(self) -> int:
        return parse_reputation(self.reputation)


@dataclass(frozen=True)
class PublishedRow:
    """A row of the paper's Table 6/7 as printed (``round`` is "1", "2" or "grid")."""

    round: str
    seller: str
    buyer: str
    quantity_kwh: Decimal
    price: Decimal
    seller_offer: Decimal | None
    buyer_offer: Decimal | None

    @property
    def is_grid(self) -> bool:
        return self.round == "grid"


@cache
def aggregators() -> tuple[Aggregator, ...]:
    result = []
    for row in _rows("aggregators.csv"):
        caps = {
            kind: row[f"{kind.lower()}_kw"]
            for kind in ("WT", "PV", "ESS")
            if parse_kw(row[f"{kind.lower()}_kw"]) > 0
        }
        result.append(Aggregator(agg_number(row["agg"]), row["region"].strip(), caps))
    return tuple(result)


@cache
def book(hour: int) -> tuple[BookRow, ...]:
    return tuple(
        BookRow(
            agg_number(r["agg"]),
            r["side"].strip(),
            r["quantity_kwh"].strip(),
            r["offer"].strip(),
            r["reserve"].strip(),
            r["reputation"].strip(),
        )
        for r in _rows(f"book_t{hour:02d}.csv")
    )


def _decimal(text: str) -> Decimal | None:
    return Decimal(text) if text.strip() else None


@cache
def published(hour: int) -> tuple[PublishedRow, ...]:
    rows = []
    for r in _rows(f"published_t{hour:02d}.csv"):
        grid = r["round"] == "grid"
        quantity = r["seller_kwh_before"] if grid else r["turnover_kwh"]
        rows.append(
            PublishedRow(
                round=r["round"],
                seller=r["seller"],
                buyer=r["buyer"],
                quantity_kwh=Decimal(quantity),
                price=Decimal(r["price"]),
                seller_offer=_decimal(r["seller_offer"]),
                buyer_offer=_decimal(r["buyer_offer"]),
            )
        )
    return tuple(rows)


@cache
def tou_rows() -> tuple[tuple[str, str, str, str], ...]:
    """tou.csv rows as text (start_hour, end_hour, sale, purchase)."""
    return tuple(
        (
            r["start_hour"].strip(),
            r["end_hour"].strip(),
            r["grid_sale_price"].strip(),
            r["grid_purchase_price"].strip(),
        )
        for r in _rows("tou.csv")
    )


@cache
def tie_line_rows() -> tuple[tuple[str, str, str], ...]:
    return tuple(
        (r["from_region"].strip(), r["to_region"].strip(), r["limit_kw"].strip())
        for r in _rows("tie_lines.csv")
    )
