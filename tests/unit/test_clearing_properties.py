"""Properties of clearing on random books, with and without binding tie-lines.

Books are small and prices few so that ties, sold-out sellers, closed lines
and both-zero reputations are common. The fast engine is also compared with a
literal transcription of the spec's loop (``clearing_oracle``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from clearing_oracle import oracle_clear, round_price, round_queues
from hypothesis import given, settings
from hypothesis import strategies as st
from vpp_market.clearing import clear
from vpp_market.model import ClearingResult, Order, PeriodPrices, Side
from vpp_market.topology import TieLine, Topology

PRICES = PeriodPrices(period=5, sale=400, purchase=100)
PRICE = st.one_of(st.sampled_from([100, 200, 250, 300, 400]), st.integers(100, 400))
REPUTATION = st.one_of(st.sampled_from([0, 500_000, 1_000_000]), st.integers(0, 1_000_000))


@st.composite
def topologies(draw: st.DrawFn) -> Topology:
    n = draw(st.integers(min_value=1, max_value=5))
    lines = []
    for child in range(1, n):
        parent = draw(st.integers(min_value=0, max_value=child - 1))
        a, b = (f"R{child}", f"R{parent}") if draw(st.booleans()) else (f"R{parent}", f"R{child}")
        limit = draw(st.one_of(st.sampled_from([0, 5, 1000]), st.integers(0, 40)))
        lines.append(TieLine(a, b, limit))
    return Topology(lines, regions=["R0"])


@st.composite
def books(draw: st.DrawFn, topology: Topology | None = None, max_orders: int = 14) -> list[Order]:
    n = draw(st.integers(min_value=0, max_value=max_orders))
    aggs = draw(st.lists(st.integers(1, 40), min_size=n, max_size=n, unique=True))
    regions = sorted(topology.regions) if topology is not None else []
    orders = []
    for agg in aggs:
        side = draw(st.sampled_from(Side))
        low, high = sorted((draw(PRICE), draw(PRICE)))
        offer, reserve = (high, low) if side is Side.SELL else (low, high)
        orders.append(
            Order(
                agg=agg,
                side=side,
                quantity_wh=draw(st.integers(1, 30)),
                offer=offer,
                reserve=reserve,
                reputation_ppm=draw(REPUTATION),
                region=draw(st.sampled_from(regions)) if regions else None,
            )
        )
    return orders


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[Order], Topology | None]:
    topology = draw(st.one_of(st.none(), topologies()))
    return draw(books(topology)), topology


def traded(result: ClearingResult, agg: int, side: Side) -> int:
    key = "seller" if side is Side.SELL else "buyer"
    return sum(m.quantity_wh for m in result.matches if getattr(m, key) == agg)


@settings(max_examples=400, deadline=None)
@given(cases())
def test_same_matches_as_the_literal_spec_loop(case: tuple[list[Order], Topology | None]) -> None:
    orders, topology = case
    assert clear(orders, PRICES, topology) == oracle_clear(orders, PRICES, topology)


@settings(deadline=None)
@given(cases())
def test_energy_is_conserved_per_aggregator(case: tuple[list[Order], Topology | None]) -> None:
    orders, topology = case
    result = clear(orders, PRICES, topology)
    grid = {g.agg: g for g in result.grid}
    for o in orders:
        other = Side.BUY if o.side is Side.SELL else Side.SELL
        assert traded(result, o.agg, other) == 0  # never on the wrong side of a match
        absorbed = grid[o.agg].quantity_wh if o.agg in grid else 0
        assert traded(result, o.agg, o.side) + absorbed == o.quantity_wh
        if o.agg in grid:
            assert grid[o.agg].side is o.side
            assert grid[o.agg].price == (PRICES.purchase if o.side is Side.SELL else PRICES.sale)
    assert all(m.quantity_wh > 0 for m in result.matches)
    assert all(g.quantity_wh > 0 for g in result.grid)


@settings(deadline=None)
@given(cases())
def test_price_lies_between_the_round_prices(case: tuple[list[Order], Topology | None]) -> None:
    orders, topology = case
    by_agg = {o.agg: o for o in orders}
    for m in clear(orders, PRICES, topology).matches:
        seller, buyer = by_agg[m.seller], by_agg[m.buyer]
        assert m.seller_price == round_price(seller, m.round)
        assert m.buyer_price == round_price(buyer, m.round)
        assert m.seller_price <= m.price <= m.buyer_price
        assert 0 <= m.xi_ppm <= 1_000_000


@settings(deadline=None)
@given(topologies().flatmap(lambda t: st.tuples(books(t), st.just(t))))
def test_no_tie_line_exceeds_its_limit(case: tuple[list[Order], Topology]) -> None:
    orders, topology = case
    region = {o.agg: o.region for o in orders}
    flow = {frozenset((ln.a, ln.b)): 0 for ln in topology.lines}  # positive from sorted()[0]
    limit = {frozenset((ln.a, ln.b)): ln.limit_w for ln in topology.lines}
    for m in clear(orders, PRICES, topology).matches:
        path = topology.path(region[m.seller], region[m.buyer])  # type: ignore[arg-type]
        for a, b in zip(path, path[1:], strict=False):
            key = frozenset((a, b))
            flow[key] += m.quantity_wh if a == min(a, b) else -m.quantity_wh
            assert abs(flow[key]) <= limit[key]


@settings(deadline=None)
@given(cases(), st.randoms(use_true_random=False))
def test_result_does_not_depend_on_row_order(case, rng) -> None:  # type: ignore[no-untyped-def]
    orders, topology = case
    shuffled = list(orders)
    rng.shuffle(shuffled)
    assert clear(shuffled, PRICES, topology) == clear(orders, PRICES, topology)


def check_priorities(
    orders: Sequence[Order], topology: Topology | None, result: ClearingResult
) -> None:
    """Replay the matches and check nobody was passed over while they could still trade.

    Per round, buyers take their turns in priority order and a buyer's matches
    are consecutive. When a buyer b matches seller s, every seller ranked
    above s is sold out or has no headroom to b's region. When b's turn ends
    with energy left, every seller it crosses with (price <= b's) is sold out
    or has no headroom to b's region. A buyer never comes back later in the
    round: a line freed by a later trade does not reopen its turn.
    """
    network = topology.copy() if topology is not None else None
    remaining = {o.agg: o.quantity_wh for o in orders}

    def closed(seller: Order, buyer: Order) -> bool:
        if remaining[seller.agg] == 0:
            return True
        if network is None:
            return False
        return network.headroom(seller.region, buyer.region) == 0  # type: ignore[arg-type]

    pending = list(result.matches)
    for round_no in (1, 2):
        sellers, buyers = round_queues(orders, remaining, round_no)
        rank = {s.agg: i for i, s in enumerate(sellers)}
        for buyer in buyers:
            while pending and pending[0].round == round_no and pending[0].buyer == buyer.agg:
                m = pending.pop(0)
                for better in sellers[: rank[m.seller]]:
                    assert closed(better, buyer), (m, better)
                remaining[m.seller] -= m.quantity_wh
                remaining[m.buyer] -= m.quantity_wh
                if network is not None:
                    network.apply(by_region(orders, m.seller), buyer.region, m.quantity_wh)  # type: ignore[arg-type]
            if remaining[buyer.agg] > 0:
                crossing = [
                    s for s in sellers if round_price(s, round_no) <= round_price(buyer, round_no)
                ]
                assert all(closed(s, buyer) for s in crossing), buyer
        assert not pending or pending[0].round > round_no, "a buyer traded out of turn"
    assert not pending


def by_region(orders: Sequence[Order], agg: int) -> str | None:
    return next(o.region for o in orders if o.agg == agg)


@settings(max_examples=300, deadline=None)
@given(cases())
def test_priorities_are_respected(case: tuple[list[Order], Topology | None]) -> None:
    orders, topology = case
    check_priorities(orders, topology, clear(orders, PRICES, topology))


@settings(deadline=None)
@given(cases(), st.data())
def test_round_two_only_trades_remainders(case, data) -> None:  # type: ignore[no-untyped-def]
    orders, topology = case
    result = clear(orders, PRICES, topology)
    rounds = [m.round for m in result.matches]
    assert rounds == sorted(rounds) and set(rounds) <= {1, 2}
    # Round 1 does not see the reserves: any other valid reserves give the same round 1.
    moved = []
    for o in orders:
        if o.side is Side.SELL:
            reserve = data.draw(st.integers(PRICES.purchase, o.offer))
        else:
            reserve = data.draw(st.integers(o.offer, PRICES.sale))
        moved.append(dataclasses.replace(o, reserve=reserve))
    round_one = [m for m in result.matches if m.round == 1]
    assert [m for m in clear(moved, PRICES, topology).matches if m.round == 1] == round_one
    # Round 2 trades only what round 1 left: an aggregator done in round 1 is absent from it.
    quantity = {o.agg: o.quantity_wh for o in orders}
    done = {
        o.agg
        for o in orders
        if sum(m.quantity_wh for m in round_one if o.agg in (m.seller, m.buyer)) == quantity[o.agg]
    }
    assert not any(m.seller in done or m.buyer in done for m in result.matches if m.round == 2)


def test_equal_price_and_reputation_agg2_before_agg10() -> None:
    """The last tie-break is the aggregator number as a number: Agg2 sells before Agg10
    (a text sort would put "Agg10" first). Pinned here, not left to random examples."""
    prices = PeriodPrices(13, 950_000, 650_000)
    sellers = [Order(agg, Side.SELL, 100_000, 700_000, 700_000, 500_000) for agg in (10, 2)]
    buyer = Order(5, Side.BUY, 100_000, 800_000, 800_000, 500_000)
    result = clear([*sellers, buyer], prices)
    assert [(m.seller, m.buyer, m.quantity_wh) for m in result.matches] == [(2, 5, 100_000)]
    assert [g.agg for g in result.grid] == [10]
