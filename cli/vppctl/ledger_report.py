"""`vppctl report --from-ledger`: the simulation's tables from what the ledger holds.

Reads only: GetCalendar for the days' periods, then per settled period
GetPeriod (TOU prices, wallet movements), GetContracts and GetSettlements,
and per aggregator GetReputation (the daily history). Writes the same CSV
tables as `vppctl simulate` (``vpp_sim.results``) except the physical one
(forecasts, storage: not on the ledger), so the same plots are drawn, minus
the cost against the grid-only baseline.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from vpp_market.model import PeriodPrices
from vpp_sim.live import contract_rows, settlement_rows
from vpp_sim.outcome import DayOutcome, PeriodOutcome, ReputationRow
from vpp_sim.plan import PeriodPlan
from vpp_sim.results import ResultWriter

from vppctl.errors import CliError
from vppctl.market_ops import registered_aggs
from vppctl.options import OPERATOR
from vppctl.output import Steps
from vppctl.periods import Calendar
from vppctl.session import parallel, query, session


def export_days(days: Sequence[int], out: Path) -> int:
    """Write the tables of the ledger's ``days`` into ``out``; the number of periods written."""
    steps = Steps()
    written = 0
    with session() as s:
        market = s.market(OPERATOR)
        calendar = Calendar(market)
        aggs = registered_aggs(market)
        with steps.step("Reading reputations"):
            histories = {
                r["agg"]: {h["day"]: h for h in r["history"]}
                for r in parallel(lambda n: query(market, "GetReputation", f"Agg{n}"), aggs)
            }
        writer = ResultWriter(out)
        wallets: dict[str, int] = {}
        try:
            for day in days:
                summaries = [p for p in calendar.summaries_of(day) if p["status"] == "SETTLED"]
                if not summaries:
                    continue
                with steps.step(f"Day {day}: {len(summaries)} settled periods"):
                    for p in summaries:
                        pid = p["period"]
                        record, contracts, settlements = parallel(
                            lambda job, pid=pid: query(market, job, pid),
                            ["GetPeriod", "GetContracts", "GetSettlements"],
                        )
                        prices = PeriodPrices(record["t"], record["sale"], record["purchase"])
                        deltas = record["settlement"]["wallet_deltas"]
                        outcome = PeriodOutcome(
                            day=day,
                            hour=record["t"],
                            period=pid,
                            contracts=contract_rows(contracts["contracts"]),
                            settlements=settlement_rows(settlements["settlements"]),
                            wallet_deltas=tuple(sorted(deltas.items())),
                            transactions=0,
                        )
                        writer.period(
                            PeriodPlan(day, record["t"], prices, ()),
                            outcome,
                            wallets,
                            orders=len(settlements["settlements"]),
                        )
                        written += 1
                rows = []
                for agg in aggs:
                    h = histories.get(agg, {}).get(day)
                    if h is not None:
                        rows.append(
                            ReputationRow(
                                agg,
                                h["r_prev_ppm"],
                                h["a_prev_ppm"],
                                h["a_day_ppm"],
                                h["r_ppm"],
                                h["a_ppm"],
                            )
                        )
                writer.day(DayOutcome(day, tuple(rows)))
        finally:
            writer.close()
    if not written:
        raise CliError(
            f"the ledger has no settled period on days {days[0]}..{days[-1]} "
            "(`vppctl period list` shows what there is)"
        )
    return written
