"""`vppctl demo paper`: the published case study on the live network (also `make demo`)."""

from __future__ import annotations

from typing import Annotated

import typer

from vppctl import options
from vppctl.demo_paper import PaperDemo
from vppctl.demo_report import COMPARISON_COLUMNS, comparison_rows, print_report, report_json
from vppctl.output import Column, Output, OutputOption, Steps, dumps, to_csv
from vppctl.registry import SETUP, command
from vppctl.session import session

commands = typer.Typer()  # this module's commands; main.py adds it to the app

demo_app = typer.Typer(name="demo", help="Run a worked example on the live network.")
commands.add_typer(demo_app, no_args_is_help=True, rich_help_panel=SETUP)


@command(
    demo_app,
    "paper",
    path="demo paper",
    epilog=(
        "Examples:\n\n"
        "  vppctl demo paper\n\n"
        "  vppctl demo paper --output json > demo.json\n\n"
        "  vppctl demo paper --no-settle        # stop once every contract is signed\n\n"
        "  vppctl demo paper --grid             # with the Grid's power-flow check\n\n"
        "Registers Agg1..Agg6 (once), loads the paper's TOU table and tie-lines, then on a "
        "fresh day trades t=2 and t=13: open, submit the book (each aggregator's own "
        "trader), close, clear, both parties sign; meters report the ordered energy, the "
        "VPPO settles and closes the day. Prints both tables next to the paper's Tables "
        "6-7 and explains the rows that differ. Safe to run again: it trades on the next "
        "day with the same result. Takes about a minute (a block is ~2 s). Whenever a grid "
        "model is loaded (--grid loads the shipped one), the Grid checks each cleared "
        "period (vppctl grid check) before anyone signs."
    ),
)
def demo_paper(
    settle: Annotated[
        bool,
        typer.Option(
            "--settle/--no-settle",
            help="Go on to meter, settle and close the day (keeps later days closable).",
        ),
    ] = True,
    grid: Annotated[
        bool,
        typer.Option(
            "--grid/--no-grid",
            help="Have the Grid load its grid model first (if none is loaded), so each "
            "period gets the AC power-flow check before signing.",
        ),
    ] = False,
    day: options.DayOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """The paper's case: t=2 and t=13 traded, cleared, signed and settled on the network."""
    steps = Steps()
    with session() as s:
        result = PaperDemo(s, steps, settle=settle, day=options.day_value(day), grid=grid).run()
    if output is Output.JSON:
        typer.echo(dumps(report_json(result)))
    elif output is Output.CSV:
        rows = [
            {**row, "t": run.hour, "differs": ", ".join(row["differs"])}
            for run in result.periods
            for row in comparison_rows(run)
        ]
        typer.echo(to_csv(rows, [Column("t", "t"), *COMPARISON_COLUMNS]), nl=False)
    else:
        print_report(result)
