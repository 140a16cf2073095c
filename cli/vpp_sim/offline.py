"""The market cycle on the pure-Python rules (``vpp_market``), without Fabric.

It does what the chaincode does, in the same order and with the same
functions: clear with the reputations held at clearing time, number the
contracts as ClearPeriod does (matches first, then grid absorptions), take
E from the meters' export (sellers) or import (buyers), settle with
``settle_period``, and close each day with the reputation update. Nothing
here re-implements a rule; it only stands in for the ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vpp_market.clearing import clear
from vpp_market.model import Order, Side
from vpp_market.reputation import INITIAL_COEFFICIENT_PPM
from vpp_market.reputation import close_day as reputation_step
from vpp_market.settlement import P2PContract, Position, settle_period
from vpp_market.topology import Topology

from vpp_sim.outcome import (
    ContractRow,
    DayOutcome,
    PeriodCallback,
    PeriodOutcome,
    ReputationRow,
    SettlementRow,
    StartState,
)
from vpp_sim.plan import PeriodPlan
from vpp_sim.scenario import Scenario


def cycle_transactions(plan: PeriodPlan, p2p_contracts: int) -> int:
    """Ledger transactions one period's cycle takes on the network (for comparable progress).

    open, one order per aggregator, close, clear, two signatures per P2P
    contract, one reading per meter and a seal per ordering aggregator,
    an anchor per order, settle.
    """
    ordering = [a for a in plan.aggs if a.order is not None]
    readings = sum(len(a.readings) for a in ordering)
    return 4 + len(ordering) * 3 + readings + 2 * p2p_contracts


class OfflineMarket:
    name = "offline"

    def __init__(self, initial: dict[int, tuple[int, int]] | None = None) -> None:
        """``initial``: (R, a) ppm per aggregator to start from instead of the scenario's R_0
        and a_0 = 1 (e.g. what a live ledger held when a live run started)."""
        self.initial = initial
        self.scenario: Scenario | None = None
        self.topology: Topology | None = None
        self.regions: dict[int, str] = {}
        self.reputation: dict[int, tuple[int, int]] = {}  # agg -> (R ppm, a ppm)
        self.deliveries: dict[int, list[tuple[int, int]]] = {}  # this day's (Q, E) per agg

    def start(self, scenario: Scenario, resume: dict[str, Any] | None) -> StartState:
        self.scenario = scenario
        self.topology = scenario.topology()
        self.regions = {a.number: a.region for a in scenario.aggregators}
        if resume:
            self.reputation = {int(k): (v[0], v[1]) for k, v in resume["reputation"].items()}
            self.deliveries = {
                int(k): [(q, e) for q, e in v] for k, v in resume["deliveries"].items()
            }
        elif self.initial is not None:
            self.reputation = dict(self.initial)
            self.deliveries = {}
        else:
            self.reputation = {
                a.number: (a.reputation_ppm, INITIAL_COEFFICIENT_PPM) for a in scenario.aggregators
            }
            self.deliveries = {}
        return StartState(dict(self.reputation))

    def run_day(self, day: int, plans: Sequence[PeriodPlan], on_period: PeriodCallback) -> None:
        for plan in plans:
            on_period(self.run_period(plan))

    def run_period(self, plan: PeriodPlan) -> PeriodOutcome:
        orders = [
            Order(
                agg=o.agg,
                side=o.side,
                quantity_wh=o.quantity_wh,
                offer=o.offer,
                reserve=o.reserve,
                reputation_ppm=self.reputation[o.agg][0],
                region=self.regions[o.agg],
            )
            for o in plan.orders
        ]
        result = clear(orders, plan.prices, self.topology)
        contracts: list[ContractRow] = [
            ContractRow(
                seq,
                "p2p",
                m.round,
                m.seller,
                m.buyer,
                None,
                None,
                m.quantity_wh,
                m.price,
                m.xi_ppm,
            )
            for seq, m in enumerate(result.matches, start=1)
        ]
        contracts += [
            ContractRow(
                seq, "grid", None, None, None, g.agg, g.side.value, g.quantity_wh, g.price, None
            )
            for seq, g in enumerate(result.grid, start=len(result.matches) + 1)
        ]
        grid_wh = {g.agg: g.quantity_wh for g in result.grid}
        positions = [
            Position(
                agg=a.agg,
                side=a.order.side,
                quantity_wh=a.order.quantity_wh,
                metered_wh=a.metered_wh,
                grid_wh=grid_wh.get(a.agg, 0),
            )
            for a in plan.aggs
            if a.order is not None
        ]
        p2p = [P2PContract(m.seller, m.buyer, m.quantity_wh, m.price) for m in result.matches]
        settled = settle_period(positions, p2p, plan.prices)
        for pos in positions:
            self.deliveries.setdefault(pos.agg, []).append((pos.quantity_wh, pos.metered_wh))
        settlements = tuple(
            SettlementRow(
                agg,
                Side(s.side).value,
                s.quantity_wh,
                s.contracted_wh,
                s.grid_wh,
                s.delivered_wh,
                s.deviation_wh,
                s.income,
                s.expenditure,
                s.net,
            )
            for agg, s in sorted(settled.settlements.items())
        )
        return PeriodOutcome(
            day=plan.day,
            hour=plan.hour,
            period=f"{plan.day:05d}-{plan.hour:02d}",
            contracts=tuple(contracts),
            settlements=settlements,
            wallet_deltas=tuple(sorted(settled.wallet_deltas().items())),
            transactions=cycle_transactions(plan, len(result.matches)),
        )

    def close_day(self, day: int) -> DayOutcome:
        rows = []
        for agg in sorted(self.reputation):
            r, a = self.reputation[agg]
            step = reputation_step(r, a, self.deliveries.get(agg, []))
            self.reputation[agg] = (step.r_ppm, step.a_ppm)
            rows.append(
                ReputationRow(
                    agg, step.r_prev_ppm, step.a_prev_ppm, step.a_day_ppm, step.r_ppm, step.a_ppm
                )
            )
        self.deliveries = {}
        return DayOutcome(day, tuple(rows))

    def state(self) -> dict[str, Any]:
        return {
            "reputation": {str(k): list(v) for k, v in self.reputation.items()},
            "deliveries": {str(k): [list(x) for x in v] for k, v in self.deliveries.items()},
        }

    def close(self) -> None:
        pass
