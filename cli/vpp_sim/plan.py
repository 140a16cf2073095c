"""What each aggregator does in each period: storage, its order, and what its meters read.

Storage rule (documented in docs/simulate.md), on forecasts only, so the
schedule is known when orders are placed:

- energy capacity = ``storage.hours`` x ESS kW; state of charge (SOC) starts
  at ``initial_soc`` and carries from day to day;
- valley hours (s_t is the day's lowest sale price): charge at rated power
  until full, storing ``efficiency`` of what is drawn, never drawing more
  than the registered capacity allows;
- peak hours (s_t above the day's median sale price): discharge, spreading
  the stored energy evenly over the day's remaining peak hours;
- otherwise idle.

The order is the paper's first quotation (``vpp_market.quotation``) on the
forecast output (WT + PV + discharge) and load (load + charge); the
quantity is bounded by the registered capacity (``quantity <= capacity x
1 h``). Realised output and load are the forecasts times the realisation
factors; the meters see the net exchange: export on the WT+PV site meter
``m1`` up to its capacity and the rest on the storage meter ``m2``, the same
for import.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from vpp_market.model import PeriodPrices, Side
from vpp_market.quotation import first_quotation, reserve_price

from vpp_sim.profiles import DayProfiles
from vpp_sim.scenario import HOURS, Aggregator, Scenario


@dataclass(frozen=True, slots=True)
class OrderPlan:
    agg: int
    side: Side
    quantity_wh: int
    offer: int
    reserve: int


@dataclass(frozen=True, slots=True)
class Reading:
    """One meter's reading for a period: meter 1 (WT+PV site) or 2 (storage)."""

    meter: int
    exported_wh: int
    imported_wh: int


@dataclass(frozen=True, slots=True)
class AggPeriod:
    """One aggregator in one period: forecasts, storage, realisation, order and meters."""

    agg: int
    forecast_output_wh: int  # WT + PV (before storage)
    forecast_load_wh: int
    charge_wh: int  # drawn by the ESS
    discharge_wh: int  # delivered by the ESS
    soc_wh: int  # after the period
    output_wh: int  # realised WT + PV
    load_wh: int  # realised load
    outage: bool
    order: OrderPlan | None
    readings: tuple[Reading, ...]

    @property
    def exported_wh(self) -> int:
        return sum(r.exported_wh for r in self.readings)

    @property
    def imported_wh(self) -> int:
        return sum(r.imported_wh for r in self.readings)

    @property
    def metered_wh(self) -> int:
        """E as the market sees it: export for a seller, import for a buyer (0 without order)."""
        if self.order is None:
            return 0
        return self.exported_wh if self.order.side is Side.SELL else self.imported_wh


@dataclass(frozen=True, slots=True)
class PeriodPlan:
    day: int
    hour: int
    prices: PeriodPrices
    aggs: tuple[AggPeriod, ...]

    @property
    def orders(self) -> list[OrderPlan]:
        return [a.order for a in self.aggs if a.order is not None]


def meters_of(agg: Aggregator) -> tuple[int, ...]:
    """The meters an aggregator registers: 1 for WT and PV, 2 for storage."""
    return tuple(m for m, w in ((1, agg.wt_w + agg.pv_w), (2, agg.ess_w)) if w > 0)


def _split(energy: int, agg: Aggregator) -> list[int]:
    """Energy on each meter, each within its capacity (Wh in an hour)."""
    parts = []
    for m in meters_of(agg):
        cap = agg.wt_w + agg.pv_w if m == 1 else agg.ess_w
        take = min(energy, cap)
        parts.append(take)
        energy -= take
    return parts


def plan_day(
    scenario: Scenario,
    day: int,
    profiles: DayProfiles,
    soc_wh: dict[int, int],
) -> list[PeriodPlan]:
    """The 24 periods of ``day``; ``soc_wh`` (per aggregator) is updated to the day's end."""
    tou = scenario.tou
    prices = [tou.prices_for(h + 1) for h in range(HOURS)]
    sale = [p.sale for p in prices]
    valley = min(sale)
    median = sorted(sale)[HOURS // 2 - 1 : HOURS // 2 + 1]
    peak_above = Fraction(sum(median), 2)
    is_peak = [s > peak_above for s in sale]
    storage = scenario.storage
    margin = Fraction(str(scenario.market.reserve_margin))
    outage_share = scenario.market.outage_output_share
    rows: list[list[AggPeriod]] = [[] for _ in range(HOURS)]
    for i, agg in enumerate(scenario.aggregators):
        cap = agg.capacity_w
        e_cap = int(agg.ess_w * storage.hours)
        soc = soc_wh.setdefault(agg.number, int(e_cap * storage.initial_soc))
        for h in range(HOURS):
            gen = int(profiles.wt_wh[i, h] + profiles.pv_wh[i, h])
            load = int(profiles.load_wh[i, h])
            charge = discharge = 0
            if agg.ess_w and sale[h] == valley and soc < e_cap:
                room = -(-(e_cap - soc) * 1000 // int(storage.efficiency * 1000))
                headroom = cap - max(0, load - gen)
                charge = max(0, min(agg.ess_w, room, headroom))
                soc = min(e_cap, soc + int(charge * storage.efficiency))
            elif agg.ess_w and is_peak[h] and soc > 0:
                remaining = sum(is_peak[h:])
                discharge = min(agg.ess_w, soc // remaining)
                soc -= discharge
            out_fc, load_fc = gen + discharge, load + charge
            quote = first_quotation(prices[h], out_fc, load_fc, agg.cost)
            order = None
            if quote is not None:
                quantity = min(quote.quantity_wh, cap)
                order = OrderPlan(
                    agg.number,
                    quote.side,
                    quantity,
                    quote.offer,
                    reserve_price(quote.side, quote.offer, prices[h], agg.cost, margin),
                )
            outage = bool(profiles.outage[i, h])
            factor = profiles.output_error[i, h] * (outage_share if outage else 1.0)
            out_real = int(np.rint(gen * factor))
            load_real = int(np.rint(load * profiles.load_error[i, h]))
            net = out_real + discharge - load_real - charge
            exported = min(max(net, 0), cap)
            imported = min(max(-net, 0), cap)
            readings = tuple(
                Reading(m, ex, im)
                for m, ex, im in zip(
                    meters_of(agg), _split(exported, agg), _split(imported, agg), strict=True
                )
            )
            rows[h].append(
                AggPeriod(
                    agg=agg.number,
                    forecast_output_wh=gen,
                    forecast_load_wh=load,
                    charge_wh=charge,
                    discharge_wh=discharge,
                    soc_wh=soc,
                    output_wh=out_real,
                    load_wh=load_real,
                    outage=outage,
                    order=order,
                    readings=readings,
                )
            )
        soc_wh[agg.number] = soc
    return [PeriodPlan(day, h + 1, prices[h], tuple(rows[h])) for h in range(HOURS)]
