"""The paper's case study on the live network (what `vppctl demo paper` runs).

Setup, done once per ledger and skipped when already there: the six
aggregators with their regions and the t=2 book's reputations, the paper's
TOU table and tie-lines, and each aggregator's resources behind one site
meter (``agg<N>-m1`` for wind and PV, ``agg<N>-m2`` for storage) on its own
channel. Then, on a fresh day each run, for
t=2 and t=13: open the period, submit the book (each order by its own
aggregator's trader, together), close the gate, clear, and have both parties
sign every contract (all sellers, then all buyers). Unless told not to, it
goes on as the market would: every meter reports exactly the ordered energy,
each channel seals, the VPPO anchors and settles, and the day is closed.

Why a fresh day and a full cycle: periods are write-once, so a second run
cannot reuse the first run's periods; and a day left unsettled would block
CloseDay for every later day (days close in order). With deliveries that
meet the orders, a = 1 and the daily update leaves every reputation as it
was, so every run clears the same books with the same reputations and
prints the same tables.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from vpp_gateway import EndorseError, EvaluateError
from vpp_market.clearing import clear
from vpp_market.model import ClearingResult, Order, PeriodPrices, Side
from vpp_market.topology import TieLine, Topology
from vpp_market.tou import table_from_rows
from vpp_market.units import format_kwh, parse_kw
from vpp_network import identities
from vpp_shim.codes import Code

from vppctl import grid_ops, market_ops, paper_case, sealed_orders, site_devices, views
from vppctl import session as session_module
from vppctl.errors import CliError
from vppctl.output import Steps
from vppctl.periods import Calendar, period_id
from vppctl.session import Session, parallel, query, submit

OPERATOR = identities.OPERATOR
CERTIFIER = identities.GRID_ADMIN  # the metering authority certifies resources (trust rules)
DEMO_LOAD_KW = "500"  # the paper gives no load capacity; its largest purchase is 421.68 kWh
REGISTRATION_HOUR = 2  # the reputations registered are those of the first book of the day
DAY_ATTEMPTS = 5
ANCHOR_ATTEMPTS = 6


@dataclass
class PeriodRun:
    """One traded period: what the network made, and what the engine makes offline."""

    hour: int
    period: str
    prices: PeriodPrices
    result: ClearingResult
    reputations_ppm: dict[int, int]
    offline: ClearingResult
    contracts: list[dict[str, Any]] = field(default_factory=list)
    settlements: list[dict[str, Any]] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        """The chaincode cleared exactly what ``vppctl clear --offline`` clears."""
        return self.result == self.offline


@dataclass
class DemoRun:
    day: int
    periods: list[PeriodRun]
    notes: list[str]
    day_closed: bool | None  # None when settlement was skipped
    reputations_after: dict[int, int] = field(default_factory=dict)  # by CloseDay


def _trader(agg: int) -> str:
    return identities.agg_trader(agg)


def meter_ids(case: paper_case.Aggregator) -> list[str]:
    """The meters of an aggregator: ``agg<N>-m1`` for WT and PV, ``agg<N>-m2`` for storage."""
    kinds = case.capacities_kw
    wanted = [(1, "WT" in kinds or "PV" in kinds), (2, "ESS" in kinds)]
    found = [identities.meter_id(case.agg, m) for m, present in wanted if present]
    return found or [identities.meter_id(case.agg, 1)]


@dataclass(frozen=True)
class Reading:
    """One meter's reading of a period: meter 1 (WT and PV) or 2 (storage) of aggregator agg."""

    agg: int
    meter: int
    exported_wh: int
    imported_wh: int


class PaperDemo:
    """Runs the case; every step is shown on stderr through ``steps``."""

    def __init__(
        self,
        s: Session,
        steps: Steps,
        *,
        settle: bool = True,
        day: int | None = None,
        cases: tuple[paper_case.Aggregator, ...] | None = None,
        grid: bool = False,
    ) -> None:
        self.s = s
        self.grid = grid
        # The aggregators set up and traded for: the paper's six unless a caller (vppctl
        # simulate) brings its own; every step below works for any of them.
        self.cases = cases if cases is not None else paper_case.aggregators()
        self.label = "the paper's case" if cases is None else "this run"
        self.steps = steps
        self.settle = settle
        self.day = day
        self.market = s.market(OPERATOR)
        self.notes: list[str] = []
        self.registry: dict[int, dict[str, Any]] = {}
        self.topology: Topology | None = None
        self.sites: dict[int, site_devices.SiteMeter] = {}  # by aggregator, from resources()

    # --- setup ---------------------------------------------------------------------------
    def check(self) -> None:
        aggs = [a.agg for a in self.cases]
        needed = {OPERATOR} | {_trader(n) for n in aggs}
        if self.grid:
            needed.add(grid_ops.GRID_ADMIN)
        # Resources are certified even without settling: they bound the orders.
        for n in aggs:
            needed |= {identities.agg_admin(n), CERTIFIER}
        if self.settle:
            for n in aggs:
                needed |= set(identities.agg_identities(n))
        missing = sorted(needed - session_module.wallet_names())
        if missing:
            raise CliError(
                f"{self.label} needs {len(aggs)} aggregators; the wallet lacks "
                f"{', '.join(missing)} — start a network with AGGS={len(aggs)} "
                f"(`make network-up AGGS={len(aggs)}` on a clean network)"
            )
        with self.steps.step("Checking the market chaincode"):
            query(self.market, "Version")

    def register(self, reputations: dict[int, str] | None = None) -> None:
        """Register the aggregators not registered yet, with ``reputations`` as R_0.

        The default R_0 are the t=2 book's; a registered aggregator is kept as it is.
        """
        if reputations is None:
            reputations = {r.agg: r.reputation for r in paper_case.book(REGISTRATION_HOUR)}

        def lookup(agg: int) -> dict[str, Any] | None:
            try:
                return query(self.market, "GetAggregator", f"Agg{agg}")
            except EvaluateError as exc:
                if exc.code == Code.NOT_REGISTERED:
                    return None
                raise

        cases = self.cases
        found = parallel(lookup, [a.agg for a in cases])
        todo = [a for a, rec in zip(cases, found, strict=True) if rec is None]
        for a, rec in zip(cases, found, strict=True):
            if rec is not None:
                self.registry[a.agg] = rec
        if todo:
            names = ", ".join(f"Agg{a.agg}" for a in todo)
            with self.steps.step(
                f"Admitting {names}: each admin asks (region, meters), the VPPO approves (R_0)"
            ):
                # Admission by consent: the aggregator's own admin requests, the VPPO approves.
                for a in todo:
                    submit(
                        self.s.market(identities.agg_admin(a.agg)),
                        "RequestAdmission",
                        f"Agg{a.agg}",
                        a.region,
                        json.dumps(meter_ids(a)),
                    )
                    self.registry[a.agg] = submit(
                        self.market, "ApproveAdmission", f"Agg{a.agg}", reputations[a.agg]
                    )
        if len(todo) < len(cases):
            self.steps.note(
                f"{len(cases) - len(todo)} aggregator(s) already registered: kept as they are"
            )
        for a in cases:
            rec = self.registry[a.agg]
            if rec["region"] != a.region:
                self.notes.append(
                    f"Agg{a.agg} is registered in region {rec['region']}, "
                    f"not the paper's {a.region}."
                )

    def configure(
        self,
        tou_rows: tuple[tuple[str, str, str, str], ...] | None = None,
        tie_line_rows: tuple[tuple[str, str, str], ...] | None = None,
    ) -> None:
        """Load the TOU table and tie-lines (the paper's by default) unless already loaded."""
        tou_rows = tou_rows if tou_rows is not None else paper_case.tou_rows()
        line_rows = tie_line_rows if tie_line_rows is not None else paper_case.tie_line_rows()
        tou = table_from_rows(tou_rows)
        want_tou = [
            {
                "start_hour": b.start_hour,
                "end_hour": b.end_hour,
                "sale": b.sale,
                "purchase": b.purchase,
            }
            for b in tou.bands
        ]
        want_lines = [{"a": a, "b": b, "limit_w": parse_kw(kw)} for a, b, kw in line_rows]
        stored_tou = market_ops.current_config(self.market, "tou")
        stored_lines = market_ops.current_config(self.market, "topology")
        jobs = []
        # A default (never loaded) table is loaded explicitly, even if it is the paper's.
        if stored_tou["loaded_tx"] is None or stored_tou["bands"] != want_tou:
            jobs.append(("LoadTou", json.dumps([list(r) for r in tou_rows])))
        if stored_lines["lines"] != want_lines:
            jobs.append(("LoadTopology", json.dumps([list(r) for r in line_rows])))
        if jobs:
            what = " and ".join("TOU table" if f == "LoadTou" else "tie-lines" for f, _ in jobs)
            with self.steps.step(f"Loading the {what}"):
                parallel(lambda job: submit(self.market, job[0], job[1]), jobs)
        else:
            self.steps.note("the TOU table and tie-lines are already loaded")
        self.topology = Topology(TieLine(ln["a"], ln["b"], ln["limit_w"]) for ln in want_lines)

    def resources(self) -> None:
        """Each aggregator's WT, PV and load on meter agg<N>-m1, its ESS on agg<N>-m2.

        A reading needs its meter certified on the channel: the aggregator's
        admin proposes each resource and the Grid's admin certifies it (trust
        rules). Certified capacity x 1 h bounds the orders once synced to
        vpp-main, which the VPPO then does for each aggregator whose bound
        differs (SyncCapacity reads agg<N> itself). The paper gives no load
        capacity; DEMO_LOAD_KW covers its largest purchase. Resources already
        proposed or certified are kept, so a channel set up otherwise (e.g. by
        the integration tests) is left as it is.
        """

        def one(a: paper_case.Aggregator) -> int:
            proposer = self.s.meter(identities.agg_admin(a.agg), a.agg)
            certifier = self.s.meter(CERTIFIER, a.agg)
            have = {r["id"]: r for r in query(proposer, "GetResources")["resources"]}
            made = 0  # proposals made now
            wanted = {"load": DEMO_LOAD_KW, **a.capacities_kw}  # a case may bring its load
            # Each in one transaction: resources of one meter share its meter key.
            proposals = []
            for kind, kw in wanted.items():
                meter_id = identities.meter_id(a.agg, 2 if kind == "ESS" else 1)
                rid = f"agg{a.agg}-{kind.lower()}"
                proposals.append({"id": rid, "kind": kind, "capacity_kw": kw, "meter": meter_id})
            new = [p for p in proposals if p["id"] not in have]
            if new:
                submit(proposer, "RegisterResources", json.dumps(new))
                made += len(new)
            # The Grid certifies every pending proposal (the demo's Grid has inspected them).
            pending = [
                {"id": r["id"], "kind": r["kind"], "capacity_kw": format_kwh(r["capacity_w"]),
                 "meter": r["meter"]}
                for r in query(certifier, "GetResources")["resources"]
                if r.get("status") == "PROPOSED"
            ]  # fmt: skip
            if pending:
                submit(certifier, "CertifyResources", json.dumps(pending))
            return made

        def sync(a: paper_case.Aggregator) -> bool:
            """The order bound on vpp-main := agg<N>'s certified capacity, unless it is."""
            certified = market_ops.certified_capacity(self.s.meter(CERTIFIER, a.agg))
            if market_ops.capacity_in_sync(market_ops.synced_capacity(self.market, a.agg),
                                           certified):  # fmt: skip
                return False
            market_ops.sync_capacity(self.market, a.agg)
            return True

        channels = f"agg{self.cases[0].agg}..agg{self.cases[-1].agg}"
        with self.steps.step(f"Resources and meters on channels {channels}"):
            made = sum(parallel(one, list(self.cases)))
        if not made:
            self.steps.note("all resources were already registered")
        # Orders are bounded by certified capacity x 1 h once vpp-main has it (trust rules).
        with self.steps.step("Capacity synced to vpp-main (bounds the orders)"):
            synced = sum(parallel(sync, list(self.cases)))
        if not synced:
            self.steps.note("every aggregator's capacity was already in sync")

        def site(a: paper_case.Aggregator) -> site_devices.SiteMeter:
            return site_devices.prepare(a.agg, self.s.meter(CERTIFIER, a.agg), submit)

        with self.steps.step("The Grid certifies each site meter's device key (signed readings)"):
            self.sites = {
                a.agg: found for a, found in zip(self.cases, parallel(site, list(self.cases)),
                                                 strict=True)
            }  # fmt: skip

    # --- one period ------------------------------------------------------------------------
    def open_period(self, day: int, hour: int) -> dict[str, Any]:
        with self.steps.step(f"t={hour}: opening period {period_id(day, hour)}"):
            return submit(self.market, "OpenPeriod", str(day), str(hour))

    def claim_day(self) -> tuple[int, dict[str, Any]]:
        """A fresh day, with its first period opened.

        Another client (a test, a second demo) may take the same fresh day at
        the same moment; OpenPeriod then refuses and the next day is tried.
        """
        hour = paper_case.PERIODS[0]
        if self.day is not None:
            return self.day, self.open_period(self.day, hour)
        day = Calendar(self.market).fresh_day()
        for _ in range(DAY_ATTEMPTS - 1):
            try:
                return day, self.open_period(day, hour)
            except EndorseError as exc:
                if exc.code not in (Code.PERIOD_EXISTS, Code.DAY_CLOSED):
                    raise
                day += 1
        return day, self.open_period(day, hour)

    def trade(self, day: int, hour: int, record: dict[str, Any] | None = None) -> PeriodRun:
        pid = period_id(day, hour)
        book = paper_case.book(hour)
        if record is None:
            record = self.open_period(day, hour)
        prices = PeriodPrices(hour, record["sale"], record["purchase"])
        with self.steps.step(f"t={hour}: {len(book)} orders, each by its aggregator's trader"):
            self.submit_orders(pid, book)
        with self.steps.step(f"t={hour}: closing the gate"):
            submit(self.market, "ClosePeriod", pid)
        with self.steps.step(f"t={hour}: clearing"):
            summary = submit(self.market, "ClearPeriod", pid)
        if summary.get("grid_model"):
            self.grid_check(pid, f"t={hour}")
        contracts = query(self.market, "GetContracts", pid)["contracts"]
        p2p = [c for c in contracts if c["kind"] == "p2p" and c["status"] == "MATCHED"]
        with self.steps.step(f"t={hour}: both parties sign {len(p2p)} contracts"):
            self.sign(p2p)
        reputations = {int(name[3:]): ppm for name, ppm in summary["reputations_ppm"].items()}
        run = PeriodRun(
            hour=hour,
            period=pid,
            prices=prices,
            result=views.clearing_result(hour, contracts),
            reputations_ppm=reputations,
            offline=self._offline(book, prices, reputations),
            contracts=query(self.market, "GetContracts", pid)["contracts"],
        )
        if self.settle:
            self._deliver_and_settle(run, book)
        return run

    def submit_orders(self, pid: str, rows: Sequence[paper_case.BookRow]) -> None:
        """Each order by its own aggregator's trader, all at once (one block)."""
        parallel(lambda row: self._order(pid, row), list(rows))

    def sign(self, p2p: Sequence[dict[str, Any]], *, skip_signed: bool = False) -> None:
        """Both parties sign every contract, each with its own trader identity, all at once.

        Signatures are separate keys. A retry covers chaincode builds whose
        signature read the other party's. ``skip_signed``: a signature made
        before (a resumed run) is not an error.
        """

        def one(job: tuple[dict[str, Any], str]) -> Any:
            contract, role = job
            try:
                return submit(
                    self.s.market(_trader(contract[role])),
                    "SignContract",
                    contract["id"],
                    retry_on_conflict=3,
                )
            except EndorseError as exc:
                if skip_signed and exc.code == Code.ALREADY_SIGNED:
                    return None
                raise

        parallel(one, [(c, role) for c in p2p for role in ("seller", "buyer")], workers=12)

    def grid_check(self, pid: str, label: str) -> None:
        """The Grid's AC power-flow check of a period cleared under a grid model.

        Signing waits for its verdict (docs/grid-check.md); the paper's periods
        pass. A period that needs no check, or has its verdict (a resumed run),
        is left as it is.
        """
        grid = self.s.market(grid_ops.GRID_ADMIN)
        record = query(grid, "GetPeriod", pid)
        if record["status"] != "CLEARED" or not (record.get("clearing") or {}).get("grid_model"):
            return
        with self.steps.step(f"{label}: the Grid's AC power-flow check (pandapower)"):
            checked = grid_ops.check_period(grid, record)
        verdict = checked.outcome.verdict(pid)
        after = verdict["after"]
        cut = sum(wh for _, wh in checked.outcome.curtailments)
        self.notes.append(
            f"{label}: the Grid's security check on model {checked.model.sha256[:12]}: "
            f"{verdict['result']}"
            + (f", {views.kwh(cut)} kWh curtailed" if cut else "")
            + f" (voltages {after['vm_min_pu']}-{after['vm_max_pu']} p.u., max branch "
            f"loading {after['max_loading_percent']} %)."
        )

    def load_grid_model(self) -> None:
        """Load the shipped grid model unless one is in force (``--grid``)."""
        grid = self.s.market(grid_ops.GRID_ADMIN)
        current = grid_ops.loaded_model(grid)
        if current is not None:
            self.steps.note(f"grid model {current['sha256'][:12]} is in force")
            return
        with self.steps.step("The Grid records its grid model (IEEE 33-bus, six regions)"):
            grid_ops.load_model(grid, None)

    def _order(self, pid: str, row: paper_case.BookRow) -> Any:
        order = {
            "agg": f"Agg{row.agg}",
            "period": pid,
            "side": row.side,
            "quantity_kwh": row.quantity_kwh,
            "offer": row.offer,
            "reserve": row.reserve,
        }
        return sealed_orders.submit_order(
            self.s.market(_trader(row.agg)),
            row.agg,
            order,
            message=f"Agg{row.agg}: submitting the order for {pid}",
        )

    def _offline(
        self, book: tuple[paper_case.BookRow, ...], prices: PeriodPrices, reps: dict[int, int]
    ) -> ClearingResult:
        """The clearing engine on the same book with the reputations the chaincode used."""
        orders = [
            Order(
                agg=r.agg,
                side=Side(r.side),
                quantity_wh=r.quantity_wh,
                offer=r.offer_micro,
                reserve=r.reserve_micro,
                reputation_ppm=reps[r.agg],
                region=self.registry[r.agg]["region"],
            )
            for r in book
        ]
        return clear(orders, prices, self.topology)

    def record_readings(
        self, pid: str, readings: Sequence[Reading], *, resume: bool = False
    ) -> None:
        """Every certified meter of each aggregator in ``readings`` reports, all at once.

        The site meter m1, a certified device (``site_devices``), sends its
        energy as signed interval readings in one ``SubmitReadings`` batch with
        a zero reading of each other device we hold; the other meters record
        hourly with their own Grid-issued identity, 0 unless ``readings`` say.
        Without a site device (``resources()`` not run) m1 records hourly too.
        ``resume``: a reading already recorded, or a period already sealed, is
        not an error.
        """
        given = {(r.agg, r.meter): r for r in readings}
        hourly: list[Reading] = []
        batches: list[tuple[int, list[list[Any]]]] = []
        for agg in sorted({r.agg for r in readings}):
            site = self.sites.get(agg)
            for meter in site.meter_numbers if site else sorted(m for a, m in given if a == agg):
                r = given.get((agg, meter), Reading(agg, meter, 0, 0))
                batch = None
                if site is not None and meter == site_devices.SITE_METER:
                    batch = site.batch(pid, r.exported_wh, r.imported_wh)
                if batch is None:
                    hourly.append(r)
                else:
                    batches.append((agg, batch))
        ignorable = (Code.ALREADY_RECORDED, Code.DUPLICATE_READING, Code.PERIOD_SEALED)

        def read(job: Reading | tuple[int, list[list[Any]]]) -> Any:
            try:
                if isinstance(job, Reading):
                    meter = self.s.meter(identities.agg_meter(job.agg, job.meter), job.agg)
                    return submit(meter, "RecordReading", pid, str(job.exported_wh),
                                  str(job.imported_wh))  # fmt: skip
                agg, items = job
                gateway = self.s.meter(identities.agg_admin(agg), agg)
                return submit(gateway, "SubmitReadings", json.dumps(items))
            except EndorseError as exc:
                if resume and exc.code in ignorable:
                    return None
                raise

        parallel(read, [*batches, *hourly], workers=12)

    def seal(self, pid: str, aggs: Sequence[int], *, resume: bool = False) -> None:
        """Each aggregator's admin seals the period on its own channel."""

        def one(agg: int) -> Any:
            try:
                return submit(self.s.meter(identities.agg_admin(agg), agg), "SealPeriod", pid)
            except EndorseError as exc:
                if resume and exc.code == Code.PERIOD_SEALED:
                    return None
                raise

        parallel(one, list(aggs))

    def anchor(self, pid: str, aggs: Sequence[int], *, resume: bool = False) -> None:
        """The VPPO anchors each sealed delivery on vpp-main."""

        def one(agg: int) -> Any:
            for attempt in range(ANCHOR_ATTEMPTS):
                try:
                    return submit(self.market, "AnchorDelivery", pid, f"Agg{agg}")
                except EndorseError as exc:
                    if resume and exc.code == Code.ALREADY_ANCHORED:
                        return None
                    # The seal is committed, but an endorser's own copy of agg<N> may be a
                    # block behind on a loaded machine (the wait for peers gives up after a
                    # while): it reads no seal yet. Ask again shortly.
                    if exc.code != Code.DELIVERY_NOT_SEALED or attempt + 1 == ANCHOR_ATTEMPTS:
                        raise
                    time.sleep(0.5 * (attempt + 1))
            return None

        parallel(one, list(aggs))

    def settle_period(self, pid: str) -> list[dict[str, Any]]:
        """SettlePeriod, then its settlement records (GetSettlements), by aggregator."""
        submit(self.market, "SettlePeriod", pid)
        return query(self.market, "GetSettlements", pid)["settlements"]

    def _deliver_and_settle(self, run: PeriodRun, book: tuple[paper_case.BookRow, ...]) -> None:
        pid = run.period
        # Meter 1 (wind and PV) delivers exactly the order; meter 2 (storage) is idle.
        readings = [
            Reading(
                row.agg,
                m,
                row.quantity_wh if row.side == "sell" and m == 1 else 0,
                row.quantity_wh if row.side == "buy" and m == 1 else 0,
            )
            for row in book
            for m in (1, 2)
        ]
        aggs = [row.agg for row in book]
        with self.steps.step(f"t={run.hour}: meters report the ordered energy; channels seal"):
            self.record_readings(pid, readings)
            self.seal(pid, aggs)
        with self.steps.step(f"t={run.hour}: anchoring deliveries and settling"):
            self.anchor(pid, aggs)
            run.settlements = self.settle_period(pid)

    # --- the whole case --------------------------------------------------------------------
    def run(self) -> DemoRun:
        self.check()
        self.register()
        self.configure()
        self.resources()
        if self.grid:
            self.load_grid_model()
        day, first = self.claim_day()
        self.steps.note(f"trading on day {day} (a fresh day each run; periods are write-once)")
        periods = [self.trade(day, paper_case.PERIODS[0], first)]
        periods += [self.trade(day, hour) for hour in paper_case.PERIODS[1:]]
        run = DemoRun(day, periods, self.notes, None)
        if self.settle:
            self._close_day(run)
        return run

    def _close_day(self, run: DemoRun) -> None:
        try:
            with self.steps.step(f"Closing day {run.day}: the daily reputation update"):
                result = submit(self.market, "CloseDay", str(run.day))
        except EndorseError as exc:
            if exc.chaincode_message is None:
                raise
            self.notes.append(
                f"Day {run.day} was not closed: {exc.chaincode_message} "
                "(`vppctl period list` shows what is pending)."
            )
            run.day_closed = False
            return
        run.day_closed = True
        run.reputations_after = {
            int(name[3:]): ppm for name, ppm in result["reputations_ppm"].items()
        }
