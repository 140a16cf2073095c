"""The market cycle on the live network, through the demo's own steps (``vppctl.demo_paper``).

Set-up (registration, TOU and tie-lines, resources and meters) and every
step of a period (open, orders, close, clear, sign, readings, seal, anchor,
settle) and CloseDay are ``PaperDemo``'s methods, so when the market's flow
changes for the demo it changes here too. What this module adds is the
schedule: the periods of a day run concurrently (each its whole cycle, in
its own thread), because a period mostly waits for blocks; settlements go
in hour order, one at a time, since each moves every trading wallet (and
so the result tables and the resume point advance period by period).

The ledger's days are used from the first fresh day on (periods are
write-once): simulation day d is ledger day ``first_day + d - 1``. The run
starts from the reputations the ledger holds; ``StartState`` reports them so
an offline run can start from the same (the offline == live test does).
A resumed run picks up each period at the state the ledger has it in.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from vpp_gateway import EvaluateError
from vpp_market.units import format_fixed, format_kwh, format_ppm, format_yuan
from vpp_shim.codes import Code
from vppctl import paper_case
from vppctl.demo_paper import PaperDemo, Reading
from vppctl.output import Steps
from vppctl.periods import Calendar, period_id
from vppctl.session import Session, query, submit

from vpp_sim.offline import cycle_transactions
from vpp_sim.outcome import (
    ContractRow,
    DayOutcome,
    PeriodCallback,
    PeriodOutcome,
    ReputationRow,
    SettlementRow,
    StartState,
)
from vpp_sim.plan import PeriodPlan, meters_of
from vpp_sim.scenario import Scenario

OPEN, CLOSED, CLEARED, SETTLED = "OPEN", "CLOSED", "CLEARED", "SETTLED"
WORKERS = 8  # periods in flight at once (more only overloads a 2-core machine)


class Aborted(RuntimeError):
    """Another period of the day failed; this one stops waiting for its turn to settle."""


def contract_rows(contracts: Sequence[dict[str, Any]]) -> tuple[ContractRow, ...]:
    """GetContracts records as ContractRows (p2p and grid; voided ones as they are)."""
    rows = []
    for c in sorted(contracts, key=lambda c: c["seq"]):
        p2p = c["kind"] == "p2p"
        rows.append(
            ContractRow(
                seq=c["seq"],
                kind=c["kind"],
                round=c.get("round") if p2p else None,
                seller=c.get("seller") if p2p else None,
                buyer=c.get("buyer") if p2p else None,
                agg=None if p2p else c.get("agg"),
                side=None if p2p else c.get("side"),
                quantity_wh=c["quantity_wh"],
                price=c["price"],
                xi_ppm=c.get("xi_ppm") if p2p else None,
            )
        )
    return tuple(rows)


def settlement_rows(records: Sequence[dict[str, Any]]) -> tuple[SettlementRow, ...]:
    """GetSettlements records as SettlementRows, by aggregator."""
    return tuple(
        SettlementRow(
            s["agg"],
            s["side"],
            s["quantity_wh"],
            s["contracted_wh"],
            s["grid_wh"],
            s["delivered_wh"],
            s["deviation_wh"],
            s["income"],
            s["expenditure"],
            s["net"],
        )
        for s in sorted(records, key=lambda s: s["agg"])
    )


def case_of(agg: Any) -> paper_case.Aggregator:
    """A scenario aggregator as the demo's set-up takes it (kind -> kW text).

    Its peak load is registered as its load capacity: with its storage, that
    bounds what it may buy (peak load + charging, the most plan_day orders).
    """
    caps = {
        kind: format_fixed(w, 3)
        for kind, w in (
            ("WT", agg.wt_w),
            ("PV", agg.pv_w),
            ("ESS", agg.ess_w),
            ("load", agg.peak_load_w),
        )
        if w > 0
    }
    return paper_case.Aggregator(agg.number, agg.region, caps)


class LiveMarket:
    name = "live"

    def __init__(self, workers: int = WORKERS) -> None:
        self.workers = workers
        self.session: Session | None = None
        self.demo: PaperDemo | None = None
        self.first_day = 0
        self.aggs: list[int] = []

    # --- set-up ------------------------------------------------------------------------------
    def start(self, scenario: Scenario, resume: dict[str, Any] | None) -> StartState:
        self.session = Session()
        demo = self.demo = PaperDemo(
            self.session, Steps(quiet=True), cases=tuple(case_of(a) for a in scenario.aggregators)
        )
        self.aggs = [a.number for a in scenario.aggregators]
        demo.check()
        demo.register({a.number: format_ppm(a.reputation_ppm) for a in scenario.aggregators})
        demo.configure(
            tuple((str(a), str(b), s, f) for a, b, s, f in scenario.tou_rows),
            tuple((a, b, str(kw)) for a, b, kw in scenario.tie_lines),
        )
        demo.resources()
        notes = list(demo.notes)
        if resume:
            self.first_day = resume["first_day"]
        else:
            self.first_day = Calendar(demo.market).fresh_day()
        reputations = {}
        for agg in self.aggs:
            current = query(demo.market, "GetReputation", f"Agg{agg}")["current"]
            reputations[agg] = (current["r_ppm"], current["a_ppm"])
            wanted = scenario.aggregator(agg).reputation_ppm
            if not resume and current["r_ppm"] != wanted:
                notes.append(
                    f"Agg{agg} starts from the ledger's R = {format_ppm(current['r_ppm'])}, "
                    f"not the scenario's {format_ppm(wanted)} (it was registered before)"
                )
        return StartState(reputations, notes)

    def ledger_day(self, day: int) -> int:
        return self.first_day + day - 1

    # --- one day --------------------------------------------------------------------------------
    def run_day(self, day: int, plans: Sequence[PeriodPlan], on_period: PeriodCallback) -> None:
        # Two relays in hour order: one for SettlePeriod (each moves the wallets), one for
        # reporting the period (tables and resume point advance period by period).
        settle_turns = [threading.Event() for _ in range(len(plans) + 1)]
        report_turns = [threading.Event() for _ in range(len(plans) + 1)]
        settle_turns[0].set()
        report_turns[0].set()
        failed = threading.Event()

        def run(index: int) -> None:
            try:
                turns = (settle_turns[index], settle_turns[index + 1], report_turns[index])
                self._cycle(plans[index], turns, failed, on_period)
            except BaseException:
                failed.set()
                raise
            finally:
                settle_turns[index + 1].set()
                report_turns[index + 1].set()

        errors: list[BaseException] = []
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            futures = [pool.submit(run, i) for i in range(len(plans))]
            try:
                for f in futures:
                    try:
                        f.result()
                    except Aborted:
                        pass
                    except Exception as exc:  # the first real failure is the one to report
                        errors.append(exc)
            except BaseException:
                # Ctrl-C: periods not yet at their turn stop there; those settling finish,
                # so the tables and the state stay at a settled period.
                failed.set()
                for f in futures:
                    f.cancel()
                raise
        if errors:
            raise errors[0]

    def _status(self, pid: str) -> dict[str, Any] | None:
        assert self.demo is not None
        try:
            return query(self.demo.market, "GetPeriod", pid)
        except EvaluateError as exc:
            if exc.code == Code.PERIOD_NOT_FOUND:
                return None
            raise

    def _cycle(
        self,
        plan: PeriodPlan,
        turns: tuple[threading.Event, threading.Event, threading.Event],
        failed: threading.Event,
        on_period: PeriodCallback,
    ) -> None:
        demo = self.demo
        assert demo is not None
        ledger_day = self.ledger_day(plan.day)
        pid = period_id(ledger_day, plan.hour)
        record = self._status(pid)
        resumed = record is not None
        status = record["status"] if record else None
        ordering = [a for a in plan.aggs if a.order is not None]
        if status is None:
            demo.open_period(ledger_day, plan.hour)
            status = OPEN
        if status == OPEN:
            demo.submit_orders(
                pid,
                [
                    paper_case.BookRow(
                        a.agg,
                        a.order.side.value,
                        format_kwh(a.order.quantity_wh),
                        format_yuan(a.order.offer),
                        format_yuan(a.order.reserve),
                        "",
                    )
                    for a in ordering
                    if a.order is not None
                ],
            )
            submit(demo.market, "ClosePeriod", pid)
            status = CLOSED
        if status == CLOSED:
            submit(demo.market, "ClearPeriod", pid)
            status = CLEARED
        if status == CLEARED:
            # With a grid model loaded, signing waits for the Grid's verdict (grid-check.md).
            demo.grid_check(pid, pid)
            contracts = query(demo.market, "GetContracts", pid)["contracts"]
            demo.sign(
                [c for c in contracts if c["kind"] == "p2p" and c["status"] != "VOIDED"],
                skip_signed=resumed,
            )
            aggs = [a.agg for a in ordering]
            demo.record_readings(
                pid,
                [
                    Reading(a.agg, r.meter, r.exported_wh, r.imported_wh)
                    for a in ordering
                    for r in a.readings
                ],
                resume=resumed,
            )
            demo.seal(pid, aggs, resume=resumed)
            demo.anchor(pid, aggs, resume=resumed)
        my_settle, next_settle, my_report = turns

        def wait(turn: threading.Event) -> None:
            while not turn.wait(0.1):
                if failed.is_set():
                    raise Aborted(pid)
            if failed.is_set():
                raise Aborted(pid)

        wait(my_settle)
        if status == CLEARED:
            demo.settle_period(pid)
        next_settle.set()
        settlements, contracts, period = (
            query(demo.market, function, pid)
            for function in ("GetSettlements", "GetContracts", "GetPeriod")
        )
        settlements, contracts = settlements["settlements"], contracts["contracts"]
        wait(my_report)
        deltas = period["settlement"]["wallet_deltas"]
        p2p = sum(1 for c in contracts if c["kind"] == "p2p")
        on_period(
            PeriodOutcome(
                day=plan.day,
                hour=plan.hour,
                period=pid,
                contracts=contract_rows(contracts),
                settlements=settlement_rows(settlements),
                wallet_deltas=tuple(sorted(deltas.items())),
                transactions=cycle_transactions(plan, p2p),
            )
        )

    # --- the day's end -------------------------------------------------------------------------
    def close_day(self, day: int) -> DayOutcome:
        demo = self.demo
        assert demo is not None
        ledger_day = self.ledger_day(day)
        calendar = Calendar(demo.market)
        if calendar.last_closed_day() < ledger_day:
            if not calendar.periods_of(ledger_day):
                # No period traded (e.g. --hours left none): nothing to close on the ledger,
                # and the rules carry R and a over, as CloseDay would.
                return self._carried_over(day)
            submit(demo.market, "CloseDay", str(ledger_day))
        rows = []
        for agg in self.aggs:
            history = query(demo.market, "GetReputation", f"Agg{agg}")["history"]
            step = next(h for h in history if h["day"] == ledger_day)
            rows.append(
                ReputationRow(
                    agg,
                    step["r_prev_ppm"],
                    step["a_prev_ppm"],
                    step["a_day_ppm"],
                    step["r_ppm"],
                    step["a_ppm"],
                )
            )
        return DayOutcome(day, tuple(rows))

    def _carried_over(self, day: int) -> DayOutcome:
        assert self.demo is not None
        rows = []
        for agg in self.aggs:
            current = query(self.demo.market, "GetReputation", f"Agg{agg}")["current"]
            r, a = current["r_ppm"], current["a_ppm"]
            rows.append(ReputationRow(agg, r, a, None, r, a))
        return DayOutcome(day, tuple(rows), transactions=0)

    def state(self) -> dict[str, Any]:
        return {"first_day": self.first_day}

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None


__all__ = ["LiveMarket", "contract_rows", "settlement_rows", "meters_of"]
