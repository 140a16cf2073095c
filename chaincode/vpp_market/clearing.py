"""The clearing rules of the VPP internal market, in one place.

This module is where a reader finds how a period's book is cleared. It follows
``shared/spec/market-rules.md`` ("Orders" and "Clearing"); the rules, quoted:

    Orders: quantity > 0; f_t <= offer, reserve <= s_t;
      seller: reserve <= offer (the lowest price it will accept in round 2);
      buyer:  reserve >= offer (the highest price it will pay in round 2);
      one order per aggregator per period.

    Priority: sellers by price ascending, buyers by price descending; equal
    prices by reputation descending; still equal by aggregator number
    ascending (Agg2 before Agg10).

    for b in buyers (priority order):
        for s in sellers (priority order):
            if b.remaining == 0: break
            if s.remaining == 0: continue
            if b.price < s.price: break          # no later seller can cross
            q = min(b.remaining, s.remaining, line_headroom(s.region, b.region))
            if q == 0: continue                  # security check: path closed
            record match (s, b, q, round); reduce remainders and headroom

    Match price: p = xi * b.price + (1 - xi) * s.price, with
    xi = R_s / (R_s + R_b) (xi = 1/2 if both are 0).
    Round 1 uses the offers.
    Round 2 re-enters every remainder (whole or partial) of both sides with its
    reserve price as its price, in the same priority (now by reserve), with the
    headroom left after round 1.
    Grid absorption: a seller's remainder after round 2 is bought by the grid
    at f_t; a buyer's remainder is supplied by the grid at s_t.

Decisions this module makes where the spec leaves room (see
docs/market-rules-implementation.md):

- "f_t <= offer, reserve <= s_t" is read as: offer and reserve both lie in
  [f_t, s_t].
- The price is computed exactly from the integer reputations,
  p = (s * R_b + b * R_s) / (R_s + R_b), and rounded once, half-to-even, to a
  micro-yuan; xi is rounded the same way, separately, to ppm, for display only
  (the price never goes through the rounded xi).
- Grid trades are listed by aggregator number; matches in the order made.
- ``clear`` starts from the topology's current flows and never changes the
  caller's topology, so clearing the same book twice gives the same result.

Speed. Read literally, the loop costs O(buyers x sellers), because every buyer
walks past all the sellers already sold out. ``_match_round`` gives the same
matches in O(n log n): sellers are kept per region in priority order, and the
heads of the regions in a heap. Within one region the sold-out sellers are
always a prefix (a buyer only moves past a region's seller by emptying it, and
a path that closes stays closed for the rest of that buyer's turn, since every
other trade into the buyer's region only adds flow in the same direction on
the shared lines), so a region is a queue and a closed region is set aside for
the buyer's turn with one heap operation. Without a topology there is one
region and the heap has a single entry.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from fractions import Fraction

from vpp_market.model import ClearingResult, GridTrade, Match, Order, PeriodPrices, Side
from vpp_market.topology import Topology
from vpp_market.units import PPM, InputError, format_kwh, format_yuan, round_half_even

ROUND_OFFERS = 1
ROUND_RESERVES = 2


class OrderError(InputError):
    """An order the spec does not allow; names the aggregator and the Order field to blame."""

    def __init__(self, agg: object, field: str, value: object, reason: str) -> None:
        self.agg = agg
        super().__init__(field, value, reason, message=f"Agg{agg}: {field}: {reason}")


def xi_ppm(seller_reputation_ppm: int, buyer_reputation_ppm: int) -> int:
    """xi = R_s / (R_s + R_b) in ppm, rounded half-to-even (1/2 when both are 0). For display."""
    total = seller_reputation_ppm + buyer_reputation_ppm
    if total == 0:
        return PPM // 2
    return round_half_even(Fraction(seller_reputation_ppm * PPM, total))


def match_price(
    seller_price: int, buyer_price: int, seller_reputation_ppm: int, buyer_reputation_ppm: int
) -> int:
    """p = xi * b + (1 - xi) * s, exact from the integer reputations, rounded once half-to-even.

    A seller with the better reputation gets a price nearer the buyer's.
    """
    total = seller_reputation_ppm + buyer_reputation_ppm
    if total == 0:
        return round_half_even(Fraction(seller_price + buyer_price, 2))
    exact = Fraction(
        seller_price * buyer_reputation_ppm + buyer_price * seller_reputation_ppm, total
    )
    return round_half_even(exact)


def validate_orders(
    orders: Sequence[Order], prices: PeriodPrices, topology: Topology | None = None
) -> None:
    """Refuse a book the spec does not allow, naming the aggregator and field (OrderError)."""
    seen: set[int] = set()
    for order in orders:
        _validate_order(order, prices, topology)
        if order.agg in seen:
            raise OrderError(order.agg, "agg", order.agg, "has more than one order in the period")
        seen.add(order.agg)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _validate_order(order: Order, prices: PeriodPrices, topology: Topology | None) -> None:
    agg = order.agg
    if not _is_int(agg) or agg < 1:
        raise OrderError(agg, "agg", agg, "is not an aggregator number >= 1")
    if not isinstance(order.side, Side):
        raise OrderError(agg, "side", order.side, f"{order.side!r} is not a Side (sell/buy)")
    for name in ("quantity_wh", "offer", "reserve", "reputation_ppm"):
        if not _is_int(getattr(order, name)):
            raise OrderError(agg, name, getattr(order, name), "is not an integer")
    if order.quantity_wh <= 0:
        raise OrderError(
            agg, "quantity_wh", order.quantity_wh, f"{format_kwh(order.quantity_wh)} kWh is not > 0"
        )
    if not 0 <= order.reputation_ppm <= PPM:
        raise OrderError(
            agg, "reputation_ppm", order.reputation_ppm, f"{order.reputation_ppm} is not in 0..1e6"
        )
    for name in ("offer", "reserve"):
        value = getattr(order, name)
        if value < prices.purchase:
            raise OrderError(
                agg,
                name,
                value,
                f"{format_yuan(value)} yuan/kWh is below the grid purchase price "
                f"f_t = {format_yuan(prices.purchase)} of period {prices.period}",
            )
        if value > prices.sale:
            raise OrderError(
                agg,
                name,
                value,
                f"{format_yuan(value)} yuan/kWh is above the grid sale price "
                f"s_t = {format_yuan(prices.sale)} of period {prices.period}",
            )
    if order.side is Side.SELL and order.reserve > order.offer:
        raise OrderError(
            agg,
            "reserve",
            order.reserve,
            f"a seller's reserve {format_yuan(order.reserve)} is above its offer "
            f"{format_yuan(order.offer)} (it is the lowest price it accepts)",
        )
    if order.side is Side.BUY and order.reserve < order.offer:
        raise OrderError(
            agg,
            "reserve",
            order.reserve,
            f"a buyer's reserve {format_yuan(order.reserve)} is below its offer "
            f"{format_yuan(order.offer)} (it is the highest price it pays)",
        )
    if topology is not None:
        if order.region is None:
            raise OrderError(agg, "region", None, "is missing (the book has a topology)")
        if order.region not in topology.regions:
            raise OrderError(
                agg, "region", order.region, f"{order.region!r} is not a region of the topology"
            )


class _Trader:
    """An order with its remaining energy while the period clears."""

    __slots__ = ("order", "remaining", "price", "key")

    def __init__(self, order: Order) -> None:
        self.order = order
        self.remaining = order.quantity_wh
        self.price = 0
        self.key: tuple[int, int, int] = (0, 0, 0)

    def enter(self, price: int) -> None:
        """Take ``price`` for the round and the priority key it implies (smaller sorts first)."""
        self.price = price
        order = self.order
        signed = price if order.side is Side.SELL else -price
        self.key = (signed, -order.reputation_ppm, order.agg)


def clear(
    orders: Sequence[Order], prices: PeriodPrices, topology: Topology | None = None
) -> ClearingResult:
    """Clear one period: round 1 on offers, round 2 on reserves, then grid absorption.

    Raises OrderError for a book the spec does not allow. The result does not
    depend on the order of ``orders``. ``topology`` (None: unlimited tie-lines)
    is not modified.
    """
    validate_orders(orders, prices, topology)
    network = topology.copy() if topology is not None else None
    traders = [_Trader(order) for order in orders]
    matches: list[Match] = []
    for round_no in (ROUND_OFFERS, ROUND_RESERVES):
        sellers, buyers = [], []
        for trader in traders:
            if trader.remaining == 0:
                continue
            order = trader.order
            trader.enter(order.offer if round_no == ROUND_OFFERS else order.reserve)
            (sellers if order.side is Side.SELL else buyers).append(trader)
        sellers.sort(key=lambda t: t.key)
        buyers.sort(key=lambda t: t.key)
        _match_round(round_no, sellers, buyers, network, matches)
    grid = tuple(
        GridTrade(
            agg=t.order.agg,
            side=t.order.side,
            quantity_wh=t.remaining,
            price=prices.purchase if t.order.side is Side.SELL else prices.sale,
        )
        for t in sorted(traders, key=lambda t: t.order.agg)
        if t.remaining > 0
    )
    return ClearingResult(period=prices.period, matches=tuple(matches), grid=grid)


def _match_round(
    round_no: int,
    sellers: list[_Trader],
    buyers: list[_Trader],
    network: Topology | None,
    matches: list[Match],
) -> None:
    """The spec's matching loop over sellers and buyers already in priority order.

    Gives exactly the matches of the literal loop (see the module docstring for
    why a region's sellers can be a queue); tests check it against a literal
    transcription.
    """
    if not sellers or not buyers:
        return
    # Sellers per region, in priority order; ``head[g]`` is region g's first seller with energy.
    queue_of: dict[str | None, int] = {}
    queues: list[list[_Trader]] = []
    for seller in sellers:
        region = seller.order.region if network is not None else None
        g = queue_of.get(region)
        if g is None:
            g = queue_of[region] = len(queues)
            queues.append([])
        queues[g].append(seller)
    head = [0] * len(queues)
    heap = [(queue[0].key, g) for g, queue in enumerate(queues)]
    heapq.heapify(heap)

    for buyer in buyers:
        closed: list[int] = []  # regions whose path to this buyer is full, for this turn
        while buyer.remaining > 0 and heap:
            g = heap[0][1]
            seller = queues[g][head[g]]
            if buyer.price < seller.price:
                break  # no later seller can cross
            heapq.heappop(heap)
            room = (
                network.headroom(seller.order.region, buyer.order.region)  # type: ignore[arg-type]
                if network is not None
                else None
            )
            quantity = min(buyer.remaining, seller.remaining)
            if room is not None:
                quantity = min(quantity, room)
            if quantity == 0:
                closed.append(g)  # security check: path closed
                continue
            _record(round_no, seller, buyer, quantity, network, matches)
            if seller.remaining == 0:
                head[g] += 1
                if head[g] < len(queues[g]):
                    heapq.heappush(heap, (queues[g][head[g]].key, g))
            elif buyer.remaining == 0:
                heapq.heappush(heap, (seller.key, g))
            else:
                closed.append(g)  # the trade filled the path
        for g in closed:
            heapq.heappush(heap, (queues[g][head[g]].key, g))


def _record(
    round_no: int,
    seller: _Trader,
    buyer: _Trader,
    quantity: int,
    network: Topology | None,
    matches: list[Match],
) -> None:
    s, b = seller.order, buyer.order
    matches.append(
        Match(
            round=round_no,
            seller=s.agg,
            buyer=b.agg,
            quantity_wh=quantity,
            price=match_price(seller.price, buyer.price, s.reputation_ppm, b.reputation_ppm),
            xi_ppm=xi_ppm(s.reputation_ppm, b.reputation_ppm),
            seller_price=seller.price,
            buyer_price=buyer.price,
        )
    )
    seller.remaining -= quantity
    buyer.remaining -= quantity
    if network is not None:
        network.apply(s.region, b.region, quantity)  # type: ignore[arg-type]
