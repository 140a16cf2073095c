"""The market's value types, shared by the clearing engine, the chaincode and the CLI.

Every quantity is an integer in the spec's fixed-point units so that every
endorsing peer computes byte-identical results:

- energy in Wh (``*_wh``),
- prices in micro-yuan per kWh (``offer``, ``reserve``, ``price``),
- reputation and ``xi`` in parts per million (``*_ppm``),
- money in micro-yuan.

Aggregators are identified by their number (``Agg3`` is ``3``) because the
spec's last tie-break is "aggregator number ascending" (Agg2 before Agg10).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Side(StrEnum):
    SELL = "sell"
    BUY = "buy"


@dataclass(frozen=True, slots=True)
class Order:
    """One aggregator's order for one period (reputation is read at clearing time)."""

    agg: int
    side: Side
    quantity_wh: int
    offer: int
    reserve: int
    reputation_ppm: int
    region: str | None = None


@dataclass(frozen=True, slots=True)
class PeriodPrices:
    """The grid's TOU prices for a period: ``sale`` is s_t, ``purchase`` is f_t."""

    period: int
    sale: int
    purchase: int


@dataclass(frozen=True, slots=True)
class Match:
    """A P2P trade made by one matching round, in the order it was made."""

    round: int
    seller: int
    buyer: int
    quantity_wh: int
    price: int
    xi_ppm: int
    seller_price: int
    buyer_price: int


@dataclass(frozen=True, slots=True)
class GridTrade:
    """A remainder absorbed by the grid: a seller's at f_t, a buyer's at s_t."""

    agg: int
    side: Side
    quantity_wh: int
    price: int


@dataclass(frozen=True, slots=True)
class ClearingResult:
    period: int
    matches: tuple[Match, ...] = field(default_factory=tuple)
    grid: tuple[GridTrade, ...] = field(default_factory=tuple)
