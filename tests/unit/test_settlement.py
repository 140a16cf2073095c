"""Settlement terms and wallet movements, against hand computations from the spec formulas.

Prices are the t=13 TOU band: s_t = 0.86, f_t = 0.65 yuan/kWh. Money is
Wh * micro-yuan/kWh / 1000, e.g. 60 kWh at 0.741 = 44.46 yuan = 44_460_000.
"""

from __future__ import annotations

import pytest
from vpp_market.model import PeriodPrices, Side
from vpp_market.settlement import (
    DEVIATION,
    GRID,
    GRID_ABSORPTION,
    P2P,
    P2PContract,
    Position,
    SettlementError,
    money,
    settle_aggregator,
    settle_period,
)

T13 = PeriodPrices(period=13, sale=860_000, purchase=650_000)

SELLER_CONTRACTS = [(60_000, 741_000), (20_000, 728_000)]  # 44.46 + 14.56 yuan


def test_money_is_exact_and_rounds_half_even_once() -> None:
    assert money(60_000, 741_000) == 44_460_000
    assert money(1, 500) == 0  # 0.5 -> 0 (even)
    assert money(1, 1_500) == 2  # 1.5 -> 2
    assert money(1, 2_500) == 2  # 2.5 -> 2
    assert money(1, 2_501) == 3
    assert money(0, 999_999) == 0


def test_seller_short_pays_shortfall_at_sale_price() -> None:
    s = settle_aggregator(Side.SELL, 100_000, 90_000, SELLER_CONTRACTS, 20_000, T13)
    assert (s.contracted_wh, s.grid_wh, s.delivered_wh, s.deviation_wh) == (
        80_000,
        20_000,
        90_000,
        -10_000,
    )
    # 44.46 + 14.56 + 20 kWh * 0.65 = 72.02 yuan in; 10 kWh * 0.86 = 8.60 yuan out.
    assert s.income == 72_020_000
    assert s.expenditure == 8_600_000
    assert s.net == 63_420_000
    assert s.terms[-1].kind == DEVIATION
    assert (s.terms[-1].quantity_wh, s.terms[-1].price, s.terms[-1].amount) == (
        10_000,
        860_000,
        -8_600_000,
    )


def test_seller_long_earns_surplus_at_purchase_price() -> None:
    s = settle_aggregator(Side.SELL, 100_000, 105_000, SELLER_CONTRACTS, 20_000, T13)
    assert s.deviation_wh == 5_000
    # 72.02 + 5 kWh * 0.65 = 3.25 -> 75.27 yuan
    assert s.income == 75_270_000
    assert s.expenditure == 0
    assert s.net == 75_270_000


def test_seller_exact_delivery_has_no_deviation_term() -> None:
    s = settle_aggregator(Side.SELL, 100_000, 100_000, SELLER_CONTRACTS, 20_000, T13)
    assert [t.kind for t in s.terms] == [P2P, P2P, GRID_ABSORPTION]
    assert s.net == 72_020_000


def test_buyer_long_pays_excess_at_sale_price() -> None:
    s = settle_aggregator(Side.BUY, 50_000, 52_000, [(30_000, 756_000)], 20_000, T13)
    # 30 kWh * 0.756 = 22.68, grid 20 kWh * 0.86 = 17.20, excess 2 kWh * 0.86 = 1.72
    assert s.deviation_wh == 2_000
    assert s.income == 0
    assert s.expenditure == 22_680_000 + 17_200_000 + 1_720_000
    assert s.net == -41_600_000


def test_buyer_short_sells_unused_back_at_purchase_price() -> None:
    s = settle_aggregator(Side.BUY, 50_000, 45_000, [(30_000, 756_000)], 20_000, T13)
    # unused 5 kWh * 0.65 = 3.25 earned
    assert s.deviation_wh == -5_000
    assert s.income == 3_250_000
    assert s.expenditure == 39_880_000
    assert s.net == -36_630_000


def test_seller_grid_remainder_only_is_bought_at_purchase_price() -> None:
    # The paper's t=13 grid row: Agg5's 36.68 kWh at 0.65 = 23.842 yuan.
    s = settle_aggregator(Side.SELL, 36_680, 36_680, [], 36_680, T13)
    assert s.terms == (s.terms[0],)
    assert (s.terms[0].kind, s.terms[0].price, s.terms[0].counterparty) == (
        GRID_ABSORPTION,
        650_000,
        GRID,
    )
    assert s.net == 23_842_000


def test_buyer_grid_remainder_only_is_supplied_at_sale_price() -> None:
    s = settle_aggregator(Side.BUY, 10_000, 10_000, [], 10_000, T13)
    assert s.terms[0].price == 860_000
    assert s.net == -8_600_000


def test_each_term_is_rounded_once_half_even() -> None:
    prices = PeriodPrices(period=1, sale=2_500, purchase=1_500)
    # 1 Wh contract at 2_500 -> 2.5 -> 2; 1 Wh grid at 1_500 -> 1.5 -> 2;
    # shortfall 1 Wh at 2_500 -> 2.5 -> 2
    s = settle_aggregator(Side.SELL, 2, 1, [(1, 2_500)], 1, prices)
    assert [t.amount for t in s.terms] == [2, 2, -2]
    assert s.net == 2


def test_contracts_and_grid_must_cover_the_order_quantity() -> None:
    with pytest.raises(SettlementError, match="!= order quantity"):
        settle_aggregator(Side.SELL, 100_000, 100_000, SELLER_CONTRACTS, 10_000, T13)


def test_negative_metered_energy_is_refused() -> None:
    with pytest.raises(SettlementError, match="metered_wh -1"):
        settle_aggregator(Side.BUY, 1, -1, [], 1, T13)


def _period() -> tuple[list[Position], list[P2PContract]]:
    positions = [
        Position(1, Side.SELL, 100_000, 90_000, 20_000),  # short 10 kWh
        Position(5, Side.SELL, 40_000, 41_000, 10_000),  # long 1 kWh
        Position(3, Side.BUY, 60_000, 58_000, 0),  # short 2 kWh
        Position(4, Side.BUY, 50_000, 52_000, 0),  # long 2 kWh
    ]
    contracts = [
        P2PContract(seller=1, buyer=4, quantity_wh=50_000, price=741_000),
        P2PContract(seller=1, buyer=3, quantity_wh=30_000, price=728_000),
        P2PContract(seller=5, buyer=3, quantity_wh=30_000, price=727_333),
    ]
    return positions, contracts


def test_period_wallets_move_exactly_the_terms_and_sum_to_zero() -> None:
    positions, contracts = _period()
    result = settle_period(positions, contracts, T13)
    deltas = result.wallet_deltas()
    assert sum(deltas.values()) == 0
    for agg, s in result.settlements.items():
        assert deltas[f"agg{agg}"] == s.net
    # Agg1: 50*0.741 + 30*0.728 + 20*0.65 - 10*0.86 = 37.05 + 21.84 + 13 - 8.6
    assert deltas["agg1"] == 63_290_000
    # Agg3: -(21.84 + 30 kWh * 0.727333 = 21.81999) + 2 kWh * 0.65 = 1.3
    assert deltas["agg3"] == -21_840_000 - 21_819_990 + 1_300_000
    # Agg5: 21.81999 + 10 * 0.65 + 1 * 0.65
    assert deltas["agg5"] == 21_819_990 + 6_500_000 + 650_000
    # Agg4: -37.05 - 2 * 0.86
    assert deltas["agg4"] == -37_050_000 - 1_720_000
    # Grid: pays 13 + 6.5 + 0.65 + 1.3, receives 8.6 + 1.72
    assert deltas[GRID] == -13_000_000 - 6_500_000 - 650_000 - 1_300_000 + 8_600_000 + 1_720_000


def test_p2p_payments_go_buyer_to_seller_once_per_contract() -> None:
    positions, contracts = _period()
    result = settle_period(positions, contracts, T13)
    p2p = [(t.payer, t.payee, t.amount) for t in result.transfers if t.kind == P2P]
    assert p2p == [
        ("agg3", "agg1", 21_840_000),
        ("agg3", "agg5", 21_819_990),
        ("agg4", "agg1", 37_050_000),
    ]
    assert all(t.amount > 0 for t in result.transfers)


def test_contract_with_a_party_on_the_wrong_side_is_refused() -> None:
    positions, _ = _period()
    with pytest.raises(SettlementError, match="seller agg 3 has no sell position"):
        settle_period(positions, [P2PContract(3, 4, 1, 1)], T13)
