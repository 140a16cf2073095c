"""`vppctl day close`: the daily reputation update (CloseDay).

Days close in order and only once every period of the day has settled, so
the default is the oldest day that is not closed yet.
"""

from __future__ import annotations

import typer

from vppctl import options, views
from vppctl.errors import CliError
from vppctl.output import Column, Output, OutputOption, emit, num
from vppctl.periods import Calendar
from vppctl.registry import OPERATOR, command
from vppctl.session import session, submit

commands = typer.Typer()  # this module's commands; main.py adds it to the app

day_app = typer.Typer(
    name="day",
    help="Close a day: the 24 h reputation update (as vppo-admin).",
    no_args_is_help=True,
)
commands.add_typer(day_app, rich_help_panel=OPERATOR)


@command(
    day_app,
    "close",
    path="day close",
    epilog=(
        "Examples:\n\n"
        "  vppctl day close                          # the oldest day not yet closed\n\n"
        "  vppctl day close --day 3 --output json\n\n"
        "Every period of the day must be SETTLED. Runs as vppo-admin."
    ),
)
def day_close(
    day: options.DayOption = None,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Update every aggregator's reputation from the day's deliveries (CloseDay)."""
    with session() as s:
        market = s.market(options.operator(as_))
        chosen = options.day_value(day)
        if chosen is None:
            active = Calendar(market).active_days()
            if not active:
                raise CliError("no day with periods is waiting to be closed; pass --day N")
            chosen = active[0]
        result = submit(market, "CloseDay", str(chosen), message=f"closing day {chosen}")
    rows = [
        {"agg": agg, "reputation": views.ppm(r)}
        for agg, r in sorted(result["reputations_ppm"].items(), key=lambda kv: int(kv[0][3:]))
    ]
    emit(
        rows,
        [Column("agg", "Agg"), num("reputation", "R")],
        output,
        title=f"Day {result['day']} closed: reputations",
    )
