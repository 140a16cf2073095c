"""First quotation: the meter's built-in offer strategy (client side, not consensus).

market-rules.md, "First quotation". With forecast output P_pre and forecast
load P_load for the period, an aggregator short of energy buys and one with a
surplus sells:

    buyer:  offer = f_t + mu * (P_load - P_pre) / P_load * (s_t - f_t),  mu = 1/2
    seller: offer = s_t - (P_pre - P_load) / P_pre * |s_t - max(f_t, c_j)|

(c_j: the seller's generation cost). Both are clamped to [f_t, s_t], the only
prices an order may carry. The result is exact, then rounded once
half-to-even to micro-yuan per kWh, like every price in the market, so the
offer can be submitted as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from vpp_market.model import PeriodPrices, Side
from vpp_market.units import round_half_even

MU = Fraction(1, 2)


def _clamp(value: Fraction, prices: PeriodPrices) -> int:
    rounded = round_half_even(value)
    return min(prices.sale, max(prices.purchase, rounded))


def buyer_offer(
    prices: PeriodPrices, forecast_load_wh: int, forecast_output_wh: int, mu: Fraction = MU
) -> int:
    """Buyer i's first offer (micro-yuan/kWh): nearer f_t the smaller its shortage."""
    if forecast_load_wh <= 0:
        raise ValueError(f"forecast_load_wh {forecast_load_wh} must be positive for a buyer")
    if forecast_output_wh < 0:
        raise ValueError(f"forecast_output_wh {forecast_output_wh} is negative")
    share = Fraction(forecast_load_wh - forecast_output_wh, forecast_load_wh)
    return _clamp(prices.purchase + Fraction(mu) * share * (prices.sale - prices.purchase), prices)


def seller_offer(
    prices: PeriodPrices, forecast_output_wh: int, forecast_load_wh: int, cost: int = 0
) -> int:
    """Seller j's first offer (micro-yuan/kWh): lower the larger its surplus share."""
    if forecast_output_wh <= 0:
        raise ValueError(f"forecast_output_wh {forecast_output_wh} must be positive for a seller")
    if forecast_load_wh < 0:
        raise ValueError(f"forecast_load_wh {forecast_load_wh} is negative")
    if cost < 0:
        raise ValueError(f"cost {cost} is negative")
    share = Fraction(forecast_output_wh - forecast_load_wh, forecast_output_wh)
    spread = abs(prices.sale - max(prices.purchase, cost))
    return _clamp(prices.sale - share * spread, prices)


@dataclass(frozen=True, slots=True)
class Quote:
    side: Side
    quantity_wh: int
    offer: int


def first_quotation(
    prices: PeriodPrices,
    forecast_output_wh: int,
    forecast_load_wh: int,
    cost: int = 0,
    mu: Fraction = MU,
) -> Quote | None:
    """Side, quantity |P_pre - P_load| and offer from the forecasts; None if balanced."""
    surplus = forecast_output_wh - forecast_load_wh
    if surplus > 0:
        return Quote(
            Side.SELL, surplus, seller_offer(prices, forecast_output_wh, forecast_load_wh, cost)
        )
    if surplus < 0:
        return Quote(
            Side.BUY, -surplus, buyer_offer(prices, forecast_load_wh, forecast_output_wh, mu)
        )
    return None


def reserve_price(
    side: Side, offer: int, prices: PeriodPrices, cost: int = 0, margin: Fraction = MU
) -> int:
    """Round-2 reserve (micro-yuan/kWh) that gives way ``margin`` (0..1) from the offer.

    A seller comes down towards its floor max(f_t, c_j) (never above its
    offer), a buyer goes up towards s_t; margin 0 keeps the offer, 1 goes all
    the way. The result always makes a valid order with ``offer``: seller
    ``f_t <= reserve <= offer``, buyer ``offer <= reserve <= s_t``.
    """
    margin = Fraction(margin)
    if not 0 <= margin <= 1:
        raise ValueError(f"margin {margin} is not in 0..1")
    if side is Side.SELL:
        floor = min(offer, max(prices.purchase, cost))
        return _clamp(offer - margin * (offer - floor), prices)
    return _clamp(offer + margin * (prices.sale - offer), prices)
