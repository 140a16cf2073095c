"""First quotation helpers: the spec formulas, mu = 0.5, clamped to [f_t, s_t]."""

from __future__ import annotations

from vpp_market.model import PeriodPrices, Side
from vpp_market.quotation import Quote, buyer_offer, first_quotation, seller_offer

T13 = PeriodPrices(period=13, sale=860_000, purchase=650_000)


def test_buyer_offer() -> None:
    # 0.65 + 0.5 * (100 - 60) / 100 * (0.86 - 0.65) = 0.692
    assert buyer_offer(T13, forecast_load_wh=100_000, forecast_output_wh=60_000) == 692_000
    # no own output at all: halfway, 0.755
    assert buyer_offer(T13, 100_000, 0) == 755_000


def test_seller_offer_without_and_with_cost() -> None:
    # 0.86 - (100 - 40) / 100 * |0.86 - 0.65| = 0.734
    assert seller_offer(T13, forecast_output_wh=100_000, forecast_load_wh=40_000) == 734_000
    # cost 0.70 above f_t: 0.86 - 0.6 * 0.16 = 0.764
    assert seller_offer(T13, 100_000, 40_000, cost=700_000) == 764_000
    # cost above s_t: |0.86 - 0.90| = 0.04 -> 0.86 - 0.024 = 0.836
    assert seller_offer(T13, 100_000, 40_000, cost=900_000) == 836_000


def test_offers_are_clamped_to_the_tou_band() -> None:
    # a "buyer" with a surplus would bid below f_t; a "seller" short of energy above s_t
    assert buyer_offer(T13, 100_000, 150_000) == 650_000
    assert seller_offer(T13, 100_000, 150_000) == 860_000


def test_offer_rounds_once_half_even() -> None:
    prices = PeriodPrices(period=1, sale=1_000_001, purchase=0)
    assert buyer_offer(prices, 100, 0) == 500_000  # 500000.5 -> even
    prices = PeriodPrices(period=1, sale=1_000_003, purchase=0)
    assert buyer_offer(prices, 100, 0) == 500_002  # 500001.5 -> even


def test_first_quotation_picks_side_and_quantity() -> None:
    assert first_quotation(T13, 100_000, 40_000) == Quote(Side.SELL, 60_000, 734_000)
    assert first_quotation(T13, 60_000, 100_000) == Quote(Side.BUY, 40_000, 692_000)
    assert first_quotation(T13, 5_000, 5_000) is None
