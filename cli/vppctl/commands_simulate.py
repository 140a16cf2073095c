"""`vppctl simulate` and `vppctl report`: days of trading, as tables and plots.

The engine is ``vpp_sim`` (scenario, forecasts, storage, the market cycle
through a backend); this module only turns options into a run, shows
progress and prints the summary. docs/simulate.md is the user's guide.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from vpp_market.units import trim

from vppctl.errors import CliError, usage_error
from vppctl.output import Column, Output, OutputOption, emit, num, stderr, stdout, table
from vppctl.registry import SETUP, command

commands = typer.Typer()  # this module's commands; main.py adds it to the app

HOURS_HELP = "Trade only these periods of each day, e.g. 12-14 or 1,13,20 (default: all 24)."


def parse_range(text: str, option: str, low: int, high: int) -> list[int]:
    """ "1-7" or "1,3,5-6" -> sorted numbers, each in low..high; one-line usage error otherwise."""
    values: set[int] = set()
    for part in text.split(","):
        bounds = [trim(b) for b in trim(part).split("-")]  # int() alone forgives "1\x85"
        if not 1 <= len(bounds) <= 2 or not all(b.isascii() and b.isdigit() for b in bounds):
            raise usage_error(f"{option} {text!r}: {trim(part)!r} is not N or N-M")
        first, last = int(bounds[0]), int(bounds[-1])
        if not low <= first <= last <= high:
            raise usage_error(f"{option} {text!r}: {trim(part)!r} is not within {low}..{high}")
        values.update(range(first, last + 1))
    return sorted(values)


class ProgressLine:
    """Day, hour, transactions and elapsed time on stderr: one line updated in place on a
    terminal, one line per day otherwise (logs stay short)."""

    def __init__(self) -> None:
        self.console = stderr()
        self.live = self.console.is_terminal
        self.last = 0.0

    def __call__(self, p: object) -> None:
        from vpp_sim.engine import Progress

        assert isinstance(p, Progress)
        text = (
            f"day {p.day}/{p.days} hour {p.hour:2d}/24 · {p.transactions:,} tx · "
            f"{p.elapsed_s:,.1f} s"
        )
        if p.done:
            text = f"day {p.day}/{p.days} settled and closed · {p.transactions:,} tx · " + (
                f"{p.elapsed_s:,.1f} s"
            )
            if self.live:
                self.console.file.write("\r\x1b[2K")
            self.console.print(text)
            return
        now = time.monotonic()
        if self.live and now - self.last > 0.1:
            self.last = now
            self.console.file.write("\r\x1b[2K" + text)
            self.console.file.flush()


SUMMARY_COLUMNS = [
    Column("agg", "Agg"),
    num("p2p_sold_kwh", "P2P sold kWh"),
    num("p2p_bought_kwh", "P2P bought kWh"),
    num("grid_absorbed_kwh", "grid kWh"),
    num("net_income_yuan", "net income yuan"),
    num("market_cost_yuan", "cost yuan"),
    num("grid_only_cost_yuan", "grid-only yuan"),
    num("saving_pct", "saving %"),
    num("r_start", "R start"),
    num("r_end", "R end"),
]


def print_summary(directory: Path, title: str, output: Output = Output.TABLE) -> None:
    import pandas as pd
    from vpp_sim import report

    frame = report.summary(report.load_tables(directory))
    rows = []
    for agg, row in frame.iterrows():
        cells: dict[str, object] = {"agg": agg}
        for c in SUMMARY_COLUMNS[1:]:
            value = row.get(c.key)
            if value is None or pd.isna(value):
                cells[c.key] = None
            elif c.key.startswith("r_"):
                cells[c.key] = f"{value:.6f}"
            elif c.key == "saving_pct":
                cells[c.key] = f"{value:+.1f}"
            else:
                cells[c.key] = f"{value:,.1f}"
        rows.append(cells)
    columns = [c for c in SUMMARY_COLUMNS if c.key == "agg" or c.key in frame.columns]
    if output is Output.TABLE:
        stdout().print(table(rows, columns, title=title))
        return
    exact = [
        {
            "agg": agg,
            **{
                c.key: (None if pd.isna(row.get(c.key)) else round(float(row[c.key]), 6))
                for c in columns[1:]
            },
        }
        for agg, row in frame.iterrows()
    ]
    emit(exact, columns, output)


@command(
    commands,
    "simulate",
    rich_help_panel=SETUP,
    epilog=(
        "Examples:\n\n"
        "  vppctl simulate --days 7 --seed 1 --offline --out runs/week\n\n"
        "  vppctl simulate --days 1 --out runs/live-day            # on the running network\n\n"
        "  vppctl simulate --days 365 --offline --no-plots --out runs/year\n\n"
        "  vppctl simulate --scenario my.yaml --aggs 3 --hours 12-14 --offline --out runs/x\n\n"
        "Each period runs the whole cycle: open, orders (first quotation and reserve from "
        "the forecasts), close, clear, sign, meters report forecast plus realisation error, "
        "seal, anchor, settle; each day ends with the reputation update. The same seed gives "
        "the same contracts, settlements and reputations offline and on the network. "
        "Interrupted? Run the same command again: it continues from the last settled "
        "period. Results: CSV tables, PNG plots and report.html in --out; docs/simulate.md."
    ),
)
def simulate(
    out: Annotated[
        Path, typer.Option("--out", metavar="DIR", help="Directory for results and state.")
    ],
    days: Annotated[int, typer.Option("--days", "-d", min=1, max=3660, help="Days to run.")] = 1,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of every random draw.")] = 1,
    offline: Annotated[
        bool,
        typer.Option("--offline", help="Run the market rules in-process, without the network."),
    ] = False,
    scenario_file: Annotated[
        Path | None,
        typer.Option(
            "--scenario",
            metavar="FILE",
            help="Scenario (YAML or .toml); default: the paper's case.",
            show_default=False,
        ),
    ] = None,
    aggs: Annotated[
        int | None,
        typer.Option("--aggs", min=1, metavar="N", help="Only the scenario's first N aggregators."),
    ] = None,
    hours: Annotated[
        str | None, typer.Option("--hours", metavar="RANGE", help=HOURS_HELP, show_default=False)
    ] = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Start over in --out instead of continuing there.")
    ] = False,
    plots: Annotated[
        bool, typer.Option("--plots/--no-plots", help="Draw the PNGs and report.html at the end.")
    ] = True,
    output: OutputOption = Output.TABLE,
) -> None:
    """Simulate days of trading (offline or on the network); CSV, plots and a summary."""
    from vpp_sim import report
    from vpp_sim import scenario as scenario_module
    from vpp_sim.engine import ResumeError, Simulation

    try:
        scenario = scenario_module.load(scenario_file)
        if aggs is not None:
            scenario = scenario.first(aggs)
    except scenario_module.ScenarioError as exc:
        raise usage_error(str(exc)) from None
    chosen = frozenset(parse_range(hours, "--hours", 1, 24)) if hours else None
    if out.exists() and not out.is_dir():
        raise usage_error(f"--out {str(out)!r} is a file, not a directory")
    if fresh and out.exists():
        for name in (*report.FIGURES, "state"):
            for path in out.glob(f"{name}.*"):
                path.unlink()
    if offline:
        from vpp_sim.offline import OfflineMarket

        market = OfflineMarket()
    else:
        from vpp_sim.live import LiveMarket

        market = LiveMarket()
    progress = ProgressLine()
    sim = Simulation(
        scenario,
        market,  # type: ignore[arg-type]
        seed=seed,
        days=days,
        out=out,
        resume=not fresh,
        progress=progress,
        keep_outcomes=False,
        checkpoint_every_s=1.0 if offline else 0.0,
        hours=chosen,
    )
    try:
        result = sim.run()
    except ResumeError as exc:
        raise usage_error(str(exc)) from None
    console = stderr()
    if result.resumed_from:
        console.print(f"continued from day {result.resumed_from[0]} hour {result.resumed_from[1]}")
    for note in result.notes:
        console.print(f"note: {note}")
    title = f"{scenario.name}, seed {seed}, {'offline' if offline else 'live network'}"
    print_summary(out, f"{title}: {days} day(s), {result.transactions:,} transactions", output)
    if plots:
        written = report.draw(out, title)
        console.print(f"plots: {', '.join(p.name for p in written)} in {out}")
    console.print(
        f"tables: periods, contracts, settlements, aggregators, reputations, wallets .csv in {out}"
    )


@command(
    commands,
    "report",
    rich_help_panel=SETUP,
    epilog=(
        "Examples:\n\n"
        "  vppctl report runs/week                       # redraw a finished simulate run\n\n"
        "  vppctl report --from-ledger --days 1-7 --out runs/ledger\n\n"
        "From the ledger there is no physical data (forecasts, storage), so the cost "
        "against the grid-only baseline is left out."
    ),
)
def report_command(
    directory: Annotated[
        Path | None,
        typer.Argument(metavar="[DIR]", help="A simulate --out directory.", show_default=False),
    ] = None,
    from_ledger: Annotated[
        bool, typer.Option("--from-ledger", help="Read the days from the network's ledger.")
    ] = False,
    days: Annotated[
        str | None,
        typer.Option("--days", metavar="RANGE", help="Ledger days, e.g. 1-7 (with --from-ledger)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", metavar="DIR", help="Where --from-ledger writes (default DIR)."),
    ] = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Redraw the plots and summary of a run, or draw them from what the ledger holds."""
    from vpp_sim import report

    if from_ledger:
        target = out or directory
        if target is None:
            raise usage_error("--from-ledger needs --out DIR (where to write the tables and plots)")
        if days is None:
            raise usage_error("--from-ledger needs --days, e.g. --days 1-7")
        chosen = parse_range(days, "--days", 1, 99_999)
        from vppctl.ledger_report import export_days

        export_days(chosen, target)
        title = f"ledger days {days}"
    else:
        if directory is None:
            raise usage_error("give a simulate --out DIR, or --from-ledger --days N-M --out DIR")
        target = directory
        title = directory.name
    try:
        written = report.draw(target, title)
    except (FileNotFoundError, ValueError) as exc:
        raise CliError(str(exc)) from None
    print_summary(target, title, output)
    stderr().print(f"plots: {', '.join(p.name for p in written)} in {target}")
