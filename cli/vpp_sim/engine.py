"""The simulation loop: days of forecasts, orders and deliveries through a market backend.

One engine, two backends (``vpp_sim.outcome.Market``): the offline rules
and the live network get the same plans (orders and meter readings) and
report the same outcome types, so for one seed they must agree exactly.
After every settled period the result tables are appended and the state
file is rewritten, so an interrupted run continues from the last settled
period (``Simulation(..., resume=True)``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vpp_sim import profiles
from vpp_sim.outcome import DayOutcome, Market, PeriodOutcome
from vpp_sim.plan import PeriodPlan, plan_day
from vpp_sim.results import ResultWriter, read_state, write_state
from vpp_sim.scenario import Scenario

STATE_VERSION = 1


class ResumeError(ValueError):
    """``--out`` holds another run (other scenario, seed or backend)."""


@dataclass
class Progress:
    """What the terminal shows while a run goes on."""

    day: int
    hour: int
    days: int
    transactions: int
    elapsed_s: float
    done: bool = False


@dataclass
class RunResult:
    periods: list[PeriodOutcome] = field(default_factory=list)
    days: list[DayOutcome] = field(default_factory=list)
    transactions: int = 0
    elapsed_s: float = 0.0
    resumed_from: tuple[int, int] | None = None
    notes: list[str] = field(default_factory=list)


class Simulation:
    def __init__(
        self,
        scenario: Scenario,
        market: Market,
        *,
        seed: int,
        days: int,
        out: Path,
        resume: bool = True,
        progress: Callable[[Progress], None] | None = None,
        keep_outcomes: bool = True,
        checkpoint_every_s: float = 0.0,
        hours: frozenset[int] | None = None,
    ) -> None:
        if days < 1:
            raise ValueError(f"days {days} is not >= 1")
        self.scenario = scenario
        self.market = market
        self.seed = seed
        self.days = days
        self.out = out
        self.resume = resume
        self.progress = progress or (lambda p: None)
        self.keep_outcomes = keep_outcomes
        # The live backend checkpoints after every period (a settled period cannot run
        # twice on the ledger); offline, a few seconds lost to a crash are simply re-run.
        self.checkpoint_every_s = checkpoint_every_s
        # Trade only these periods of each day (tests, quick looks); storage still runs all day.
        self.hours = hours

    def _check_resume(self, state: dict[str, Any]) -> None:
        mine = {
            "scenario": self.scenario.digest,
            "seed": self.seed,
            "backend": self.market.name,
            "hours": sorted(self.hours) if self.hours else None,
        }
        for key, value in mine.items():
            if state.get(key) != value:
                raise ResumeError(
                    f"--out {self.out} holds a run with {key} {state.get(key)!r}, not {value!r}: "
                    "use another --out, or --fresh to start over there"
                )

    def run(self) -> RunResult:
        state = read_state(self.out) if self.resume else None
        if state is not None:
            self._check_resume(state)
        result = RunResult()
        start = self.market.start(self.scenario, state["market"] if state else None)
        result.notes += start.notes
        writer = ResultWriter(self.out, state["sizes"] if state else None)
        day, hour = (state["next_day"], state["next_hour"]) if state else (1, 1)
        wallets: dict[str, int] = dict(state["wallets"]) if state else {}
        soc: dict[int, int] = {int(k): v for k, v in state["soc"].items()} if state else {}
        transactions = state["transactions"] if state else 0
        elapsed_before = state["elapsed_s"] if state else 0.0
        if state:
            result.resumed_from = (day, hour)
        began = time.perf_counter()

        def elapsed() -> float:
            return elapsed_before + time.perf_counter() - began

        last_checkpoint = [0.0]

        def checkpoint(
            next_day: int, next_hour: int, day_soc: dict[int, int], force: bool = False
        ) -> None:
            now = time.perf_counter()
            if not force and now - last_checkpoint[0] < self.checkpoint_every_s:
                return
            last_checkpoint[0] = now
            write_state(
                self.out,
                {
                    "version": STATE_VERSION,
                    "scenario": self.scenario.digest,
                    "scenario_name": self.scenario.name,
                    "seed": self.seed,
                    "backend": self.market.name,
                    "days": self.days,
                    "hours": sorted(self.hours) if self.hours else None,
                    "next_day": next_day,
                    "next_hour": next_hour,
                    "soc": {str(k): v for k, v in day_soc.items()},
                    "wallets": wallets,
                    "transactions": transactions,
                    "elapsed_s": round(elapsed(), 3),
                    "sizes": writer.sizes(),
                    "market": self.market.state(),
                },
            )

        ghi = profiles.clear_sky_ghi(self.scenario, self.days)
        try:
            while day <= self.days:
                day_start_soc = dict(soc)
                prof = profiles.day_profiles(self.scenario, self.seed, day, ghi[day - 1])
                plans = plan_day(self.scenario, day, prof, soc)
                by_hour: dict[int, PeriodPlan] = {p.hour: p for p in plans}
                todo = [
                    p
                    for p in plans
                    if p.hour >= hour and (self.hours is None or p.hour in self.hours)
                ]

                def on_period(
                    outcome: PeriodOutcome,
                    by_hour: dict[int, PeriodPlan] = by_hour,
                    day_start_soc: dict[int, int] = day_start_soc,
                ) -> None:
                    nonlocal transactions
                    writer.period(by_hour[outcome.hour], outcome, wallets)
                    transactions += outcome.transactions
                    if self.keep_outcomes:
                        result.periods.append(outcome)
                    checkpoint(outcome.day, outcome.hour + 1, day_start_soc)
                    self.progress(
                        Progress(outcome.day, outcome.hour, self.days, transactions, elapsed())
                    )

                if todo:
                    self.market.run_day(day, todo, on_period)
                closed = self.market.close_day(day)
                transactions += closed.transactions
                writer.day(closed)
                result.days.append(closed)
                day, hour = day + 1, 1
                checkpoint(day, hour, soc, force=day > self.days)
                self.progress(Progress(day - 1, 24, self.days, transactions, elapsed(), True))
        finally:
            writer.close()
            self.market.close()
        result.transactions = transactions
        result.elapsed_s = elapsed()
        return result
