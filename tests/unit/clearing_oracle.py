"""A literal transcription of the spec's clearing loop, as a slow reference for the tests.

It scans every seller for every buyer, exactly as market-rules.md prints the
loop, and rounds with Python's own ``round(Fraction)`` (half to even), so it
shares no code with ``vpp_market.clearing`` beyond the value types and the
topology, and its O(n*m) cost is fine for small books only.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

from vpp_market.model import ClearingResult, GridTrade, Match, Order, PeriodPrices, Side
from vpp_market.topology import Topology


def round_price(order: Order, round_no: int) -> int:
    return order.offer if round_no == 1 else order.reserve


def priority(order: Order, round_no: int) -> tuple[int, int, int]:
    price = round_price(order, round_no)
    return (price if order.side is Side.SELL else -price, -order.reputation_ppm, order.agg)


def round_queues(
    orders: Sequence[Order], remaining: dict[int, int], round_no: int
) -> tuple[list[Order], list[Order]]:
    """The sellers and the buyers with energy left at the start of a round, each by priority."""
    live = [o for o in orders if remaining[o.agg] > 0]
    sellers = sorted((o for o in live if o.side is Side.SELL), key=lambda o: priority(o, round_no))
    buyers = sorted((o for o in live if o.side is Side.BUY), key=lambda o: priority(o, round_no))
    return sellers, buyers


def oracle_clear(
    orders: Sequence[Order], prices: PeriodPrices, topology: Topology | None = None
) -> ClearingResult:
    network = topology.copy() if topology is not None else None
    remaining = {o.agg: o.quantity_wh for o in orders}
    matches: list[Match] = []
    for round_no in (1, 2):
        sellers, buyers = round_queues(orders, remaining, round_no)
        for b in buyers:
            for s in sellers:
                if remaining[b.agg] == 0:
                    break
                if remaining[s.agg] == 0:
                    continue
                b_price, s_price = round_price(b, round_no), round_price(s, round_no)
                if b_price < s_price:
                    break
                q = min(remaining[b.agg], remaining[s.agg])
                if network is not None:
                    room = network.headroom(s.region, b.region)  # type: ignore[arg-type]
                    if room is not None:
                        q = min(q, room)
                if q == 0:
                    continue
                rs, rb = s.reputation_ppm, b.reputation_ppm
                xi = Fraction(1, 2) if rs + rb == 0 else Fraction(rs, rs + rb)
                price = xi * b_price + (1 - xi) * s_price
                matches.append(
                    Match(
                        round_no,
                        s.agg,
                        b.agg,
                        q,
                        round(price),
                        round(xi * 1_000_000),
                        s_price,
                        b_price,
                    )
                )
                remaining[s.agg] -= q
                remaining[b.agg] -= q
                if network is not None:
                    network.apply(s.region, b.region, q)  # type: ignore[arg-type]
    grid = tuple(
        GridTrade(
            o.agg, o.side, remaining[o.agg], prices.purchase if o.side is Side.SELL else prices.sale
        )
        for o in sorted(orders, key=lambda o: o.agg)
        if remaining[o.agg] > 0
    )
    return ClearingResult(prices.period, tuple(matches), grid)
