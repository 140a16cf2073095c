"""The paper's two books, checked against what market-rules.md says they must give.

Only values the spec (or the brief quoting it) states are asserted: the first
three t=2 matches of Table 6 and the grid totals of both tables. The other
rows of Tables 6-7 break the paper's own rule (see the spec), so they are not
expected here; the rest of the result is checked by rule (totals, order).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
from vpp_market.book import read_aggregators, read_book, read_tie_lines, with_regions
from vpp_market.clearing import (
    OrderError,
    clear,
    match_price,
    validate_orders,
    xi_ppm,
)
from vpp_market.model import Order, PeriodPrices, Side
from vpp_market.tou import prices_for

DATA = Path(__file__).parent / "data" / "paper_case"


def paper_book(period: int, *, with_lines: bool = False):  # type: ignore[no-untyped-def]
    book = read_book(DATA / f"book_t{period:02d}.csv")
    if not with_lines:
        return book.orders, None
    topology = read_tie_lines(DATA / "tie_lines.csv")
    book = with_regions(book, read_aggregators(DATA / "aggregators.csv"), topology)
    return book.orders, topology


@pytest.mark.parametrize("with_lines", [False, True])
def test_t02_first_three_matches_and_grid(with_lines: bool) -> None:
    orders, topology = paper_book(2, with_lines=with_lines)
    result = clear(orders, prices_for(2), topology)
    first = [(m.round, m.seller, m.buyer, m.quantity_wh, m.price) for m in result.matches[:3]]
    assert first == [
        (1, 1, 6, 90_400, 325_086),
        (1, 1, 4, 58_340, 319_039),
        (1, 1, 3, 133_760, 318_000),
    ]
    # xi = .846 / (.846 + .706) = 0.545 in the spec; exact to 1e-6 here.
    assert result.matches[0].xi_ppm == round(Fraction(846, 846 + 706) * 1_000_000)
    assert abs(result.matches[0].xi_ppm - 545_000) < 500
    assert [(g.agg, g.side, g.quantity_wh, g.price) for g in result.grid] == [
        (2, Side.SELL, 6_140, 240_000)
    ]


@pytest.mark.parametrize("with_lines", [False, True])
def test_t13_grid_takes_36_68_kwh_at_0_65(with_lines: bool) -> None:
    orders, topology = paper_book(13, with_lines=with_lines)
    result = clear(orders, prices_for(13), topology)
    assert sum(g.quantity_wh for g in result.grid) == 36_680
    assert {g.price for g in result.grid} == {650_000}
    assert {g.side for g in result.grid} == {Side.SELL}
    # The published table starts with the dearest seller (Agg6 at 0.755); the rule starts
    # with the cheapest offers, 0.720, Agg1 (R .823) before Agg5 (R .763).
    assert [(m.seller, m.buyer) for m in result.matches[:2]] == [(1, 4), (5, 4)]


@pytest.mark.parametrize("period", [2, 13])
def test_paper_books_conserve_energy_and_list_round_one_first(period: int) -> None:
    orders, _ = paper_book(period)
    result = clear(orders, prices_for(period))
    rounds = [m.round for m in result.matches]
    assert rounds == sorted(rounds)
    for order in orders:
        traded = sum(
            m.quantity_wh for m in result.matches if order.agg in (m.seller, m.buyer)
        ) + sum(g.quantity_wh for g in result.grid if g.agg == order.agg)
        assert traded == order.quantity_wh


def test_price_is_exact_then_rounded_once() -> None:
    # 0.318 and 0.331 with R .846 / .706: 504534000000 / 1552000 = 325086.34... -> 325086
    assert match_price(318_000, 331_000, 846_000, 706_000) == 325_086
    # Both reputations 0: xi = 1/2, the plain midpoint, ties to even.
    assert xi_ppm(0, 0) == 500_000
    assert match_price(1, 2, 0, 0) == 2  # 1.5 -> 2
    assert match_price(2, 3, 0, 0) == 2  # 2.5 -> 2
    # A seller with all the reputation gets the buyer's price, and vice versa.
    assert match_price(300_000, 330_000, 1_000_000, 0) == 330_000
    assert match_price(300_000, 330_000, 0, 1_000_000) == 300_000
    # Not via the rounded xi: xi = 1/3 is 333333 ppm, and 3 yuan * 0.333333 = 0.999999;
    # the exact price is 1 yuan.
    assert xi_ppm(1, 2) == 333_333
    assert match_price(0, 3_000_000, 1, 2) == 1_000_000


T2 = PeriodPrices(2, sale=380_000, purchase=240_000)


def order(agg: int = 1, side: Side = Side.SELL, **changes: object) -> Order:
    fields: dict[str, object] = dict(
        agg=agg,
        side=side,
        quantity_wh=1_000,
        offer=300_000,
        reserve=300_000,
        reputation_ppm=500_000,
    )
    fields.update(changes)
    return Order(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("bad", "field", "text"),
    [
        (order(quantity_wh=0), "quantity_wh", "0 kWh is not > 0"),
        (order(quantity_wh=-5), "quantity_wh", "not > 0"),
        (order(offer=239_999, reserve=239_999), "offer", "below the grid purchase price"),
        (order(offer=380_001), "offer", "above the grid sale price"),
        (order(reserve=230_000), "reserve", "below the grid purchase price"),
        (order(reserve=310_000), "reserve", "seller's reserve 0.31 is above its offer 0.3"),
        (order(side=Side.BUY, reserve=290_000), "reserve", "buyer's reserve 0.29 is below"),
        (order(reputation_ppm=1_000_001), "reputation_ppm", "not in 0..1e6"),
        (order(reputation_ppm=-1), "reputation_ppm", "not in 0..1e6"),
        (order(agg=0), "agg", "aggregator number"),
        (order(side="sell"), "side", "not a Side"),
        (order(offer=300_000.0), "offer", "not an integer"),
        (order(quantity_wh=True), "quantity_wh", "not an integer"),
    ],
)
def test_invalid_orders_name_agg_and_field(bad: Order, field: str, text: str) -> None:
    with pytest.raises(OrderError) as info:
        clear([bad], T2)
    assert isinstance(info.value, ValueError)
    assert info.value.field == field
    assert text in str(info.value)
    assert str(info.value).startswith(f"Agg{bad.agg}: {field}:")


def test_one_order_per_aggregator_and_region_known() -> None:
    with pytest.raises(OrderError, match="Agg3: agg: has more than one order"):
        validate_orders([order(3), order(3, Side.BUY)], T2)
    _, topology = paper_book(2, with_lines=True)
    with pytest.raises(OrderError, match="Agg1: region: is missing"):
        clear([order(1)], T2, topology)
    with pytest.raises(OrderError, match="Agg1: region: 'R9' is not a region"):
        clear([order(1, region="R9")], T2, topology)
    clear([order(1, region="R9")], T2)  # without a topology the region is not used


def test_clear_does_not_touch_the_callers_topology() -> None:
    orders, topology = paper_book(2, with_lines=True)
    assert topology is not None
    first = clear(orders, prices_for(2), topology)
    assert all(topology.flow(line.a, line.b) == 0 for line in topology.lines)
    assert clear(orders, prices_for(2), topology) == first


def test_empty_and_one_sided_books() -> None:
    assert clear([], T2).matches == () and clear([], T2).grid == ()
    result = clear([order(2, Side.BUY, offer=300_000, reserve=310_000), order(1, Side.BUY)], T2)
    assert result.matches == ()
    assert [(g.agg, g.side, g.price) for g in result.grid] == [
        (1, Side.BUY, 380_000),
        (2, Side.BUY, 380_000),
    ]
