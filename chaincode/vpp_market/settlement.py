"""Settlement of a period: what each aggregator earns and pays, and how wallets move.

market-rules.md, "Delivery, settlement, wallets". An aggregator's order quantity
Q has been split by clearing into P2P contracts (q, p) and a grid absorption g
(so sum q + g == Q, voided contracts included in g); its meters then measured
E, and the deviation D = E - Q is priced against the grid:

- seller: + each q*p, + g*f_t; D < 0: - |D|*s_t (the grid covered the
  shortfall); D > 0: + D*f_t (the grid took the surplus);
- buyer: - each q*p, - g*s_t; D > 0: - D*s_t (the grid supplied the excess);
  D < 0: + |D|*f_t (unused energy sold back).

Money is Wh * (micro-yuan/kWh) / 1000, computed exactly and rounded once,
half-to-even, per term. A P2P contract is one term with one rounding, used
for both parties, so what the buyer pays is exactly what the seller earns;
the grid is the counterparty of every other term. Every wallet movement is
therefore a transfer between two wallets and all wallets always sum to zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from vpp_market.model import PeriodPrices, Side
from vpp_market.units import WH_PER_KWH, div_half_even

GRID = "grid"  # the grid's wallet name; aggregators' are wallet_name(N)

# Term kinds (the ``kind`` of a Term).
P2P = "p2p"  # a P2P contract, buyer -> seller
GRID_ABSORPTION = "grid"  # a clearing remainder bought (seller) or supplied (buyer) by the grid
DEVIATION = "deviation"  # D = E - Q priced against the grid


class SettlementError(ValueError):
    """Inputs that cannot be settled (inconsistent with clearing); the message says which."""


def wallet_name(agg: int) -> str:
    """Aggregator N's wallet name (``agg3``); the grid's is ``GRID``."""
    return f"agg{agg}"


def money(quantity_wh: int, price: int) -> int:
    """Wh at micro-yuan/kWh -> micro-yuan, exact then rounded once half-to-even."""
    return div_half_even(quantity_wh * price, WH_PER_KWH)


@dataclass(frozen=True, slots=True)
class Term:
    """One priced line of an aggregator's settlement.

    ``amount`` is signed from the aggregator's point of view (+ income,
    - expenditure); ``counterparty`` is the other aggregator of a P2P term
    (None where unknown) or ``GRID``.
    """

    kind: str
    quantity_wh: int
    price: int
    amount: int
    counterparty: int | str | None = GRID


@dataclass(frozen=True, slots=True)
class Settlement:
    """One aggregator's settlement for one period (energy in Wh, money in micro-yuan)."""

    side: Side
    quantity_wh: int  # Q, the order quantity
    contracted_wh: int  # sum of its P2P contracts' q
    grid_wh: int  # g, the grid absorption (incl. voided contracts)
    delivered_wh: int  # E, metered: export for a seller, import for a buyer
    deviation_wh: int  # D = E - Q
    income: int
    expenditure: int
    net: int  # income - expenditure: the change of the aggregator's wallet
    terms: tuple[Term, ...]


def _non_negative(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettlementError(f"{name} {value!r} is not an integer")
    if value < 0:
        raise SettlementError(f"{name} {value} is negative")


def settle_aggregator(
    side: Side,
    quantity_wh: int,
    metered_wh: int,
    contracts: Sequence[tuple[int, int]] | Sequence[tuple[int, int, int | None]],
    grid_wh: int,
    prices: PeriodPrices,
) -> Settlement:
    """Settle one aggregator: ``contracts`` are its P2P (q, p) or (q, p, counterparty).

    Raises SettlementError when sum q + g differs from Q: clearing always
    places all of Q, so a mismatch means the caller lost or invented energy.
    """
    side = Side(side)
    _non_negative("quantity_wh", quantity_wh)
    _non_negative("metered_wh", metered_wh)
    _non_negative("grid_wh", grid_wh)
    terms: list[Term] = []
    sign = 1 if side is Side.SELL else -1
    contracted = 0
    for i, contract in enumerate(contracts):
        q, p = contract[0], contract[1]
        other = contract[2] if len(contract) > 2 else None
        _non_negative(f"contracts[{i}].q", q)
        _non_negative(f"contracts[{i}].p", p)
        contracted += q
        terms.append(Term(P2P, q, p, sign * money(q, p), other))
    if contracted + grid_wh != quantity_wh:
        raise SettlementError(
            f"contracts ({contracted} Wh) + grid ({grid_wh} Wh) != order quantity "
            f"({quantity_wh} Wh)"
        )
    if grid_wh:
        grid_price = prices.purchase if side is Side.SELL else prices.sale
        terms.append(Term(GRID_ABSORPTION, grid_wh, grid_price, sign * money(grid_wh, grid_price)))
    deviation = metered_wh - quantity_wh
    if deviation:
        # A seller short or a buyer over: the grid supplied the difference at s_t (paid).
        # A seller over or a buyer short: the grid took the difference at f_t (earned).
        supplied = deviation < 0 if side is Side.SELL else deviation > 0
        price = prices.sale if supplied else prices.purchase
        amount = money(abs(deviation), price)
        terms.append(Term(DEVIATION, abs(deviation), price, -amount if supplied else amount))
    income = sum(t.amount for t in terms if t.amount > 0)
    expenditure = -sum(t.amount for t in terms if t.amount < 0)
    return Settlement(
        side=side,
        quantity_wh=quantity_wh,
        contracted_wh=contracted,
        grid_wh=grid_wh,
        delivered_wh=metered_wh,
        deviation_wh=deviation,
        income=income,
        expenditure=expenditure,
        net=income - expenditure,
        terms=tuple(terms),
    )


@dataclass(frozen=True, slots=True)
class Position:
    """What settlement needs of one aggregator with an order in the period."""

    agg: int
    side: Side
    quantity_wh: int
    metered_wh: int
    grid_wh: int


@dataclass(frozen=True, slots=True)
class P2PContract:
    """A signed P2P contract as settlement sees it."""

    seller: int
    buyer: int
    quantity_wh: int
    price: int


@dataclass(frozen=True, slots=True)
class Transfer:
    """``amount`` micro-yuan from wallet ``payer`` to wallet ``payee`` (amount > 0)."""

    payer: str
    payee: str
    amount: int
    kind: str


@dataclass(frozen=True)
class PeriodSettlement:
    settlements: Mapping[int, Settlement]
    transfers: tuple[Transfer, ...]

    def wallet_deltas(self) -> dict[str, int]:
        """Net change per wallet; the values sum to zero by construction."""
        deltas: dict[str, int] = {}
        for t in self.transfers:
            deltas[t.payer] = deltas.get(t.payer, 0) - t.amount
            deltas[t.payee] = deltas.get(t.payee, 0) + t.amount
        return dict(sorted(deltas.items()))


def settle_period(
    positions: Sequence[Position], contracts: Sequence[P2PContract], prices: PeriodPrices
) -> PeriodSettlement:
    """Settle every aggregator of a period and derive the wallet transfers.

    Contracts whose seller is not a selling position (or buyer not a buying
    one) are refused: they would move money for energy nobody offered.
    """
    by_agg: dict[int, Position] = {}
    for pos in positions:
        if pos.agg in by_agg:
            raise SettlementError(f"agg {pos.agg} has two positions")
        by_agg[pos.agg] = pos
    legs: dict[int, list[tuple[int, int, int]]] = {agg: [] for agg in by_agg}
    for c in contracts:
        for role, agg, side in (("seller", c.seller, Side.SELL), ("buyer", c.buyer, Side.BUY)):
            pos = by_agg.get(agg)
            if pos is None or Side(pos.side) is not side:
                raise SettlementError(f"contract {role} agg {agg} has no {side.value} position")
        legs[c.seller].append((c.quantity_wh, c.price, c.buyer))
        legs[c.buyer].append((c.quantity_wh, c.price, c.seller))
    settlements: dict[int, Settlement] = {}
    transfers: list[Transfer] = []
    for agg in sorted(by_agg):
        pos = by_agg[agg]
        s = settle_aggregator(
            pos.side, pos.quantity_wh, pos.metered_wh, legs[agg], pos.grid_wh, prices
        )
        settlements[agg] = s
        for term in s.terms:
            if term.kind == P2P:
                if s.side is Side.BUY and term.amount:  # one transfer per contract
                    assert isinstance(term.counterparty, int)
                    transfers.append(
                        Transfer(
                            wallet_name(agg), wallet_name(term.counterparty), -term.amount, P2P
                        )
                    )
            elif term.amount > 0:
                transfers.append(Transfer(GRID, wallet_name(agg), term.amount, term.kind))
            elif term.amount < 0:
                transfers.append(Transfer(wallet_name(agg), GRID, -term.amount, term.kind))
    return PeriodSettlement(settlements, tuple(transfers))
