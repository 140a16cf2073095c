"""`vppctl period open|close|show|list`: the operator's trading calendar.

Opening a period fixes its TOU prices for its whole life; closing it is the
gate after which orders are refused. ``show`` and ``list`` are queries any
member may run.
"""

from __future__ import annotations

from typing import Annotated

import typer

from vppctl import options, views
from vppctl.output import Column, Output, OutputOption, emit, num
from vppctl.periods import Calendar, parse_period
from vppctl.registry import OPERATOR, command
from vppctl.session import parallel, session, submit

commands = typer.Typer()  # this module's commands; main.py adds it to the app

period_app = typer.Typer(
    name="period",
    help="Open, close and inspect trading periods (open/close as vppo-admin).",
    no_args_is_help=True,
)
commands.add_typer(period_app, rich_help_panel=OPERATOR)

PERIOD_COLUMNS = [
    Column("period", "Period"),
    Column("hours", "Hours"),
    Column("status", "Status"),
    num("sale", "s_t"),
    num("purchase", "f_t"),
    num("orders", "Orders"),
    Column("contracts", "Contracts"),
    num("p2p_kwh", "P2P kWh"),
]


@command(
    period_app,
    "open",
    path="period open",
    epilog=(
        "Examples:\n\n"
        "  vppctl period open -t 13                  # hour 13 of the current day\n\n"
        "  vppctl period open -t 2 -t 13 --day 4\n\n"
        "  vppctl period open -t 4-2\n\n"
        "The current day is the latest day with periods that is not closed, else the "
        "day after the last closed one. Runs as vppo-admin."
    ),
)
def period_open(
    period: Annotated[
        list[str],
        typer.Option(
            "--period",
            "-t",
            metavar="[DAY-]T",
            help="Hour(s) to open, repeatable; DAY-T names the day too.",
            show_default=False,
        ),
    ],
    day: options.DayOption = None,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Open trading periods; their TOU prices s_t, f_t are fixed now (OpenPeriod)."""
    specs = [parse_period(p) for p in period]
    with session() as s:
        market = s.market(options.operator(as_))
        default_day = options.day_value(day)
        if default_day is None and any(spec.day is None for spec in specs):
            default_day = Calendar(market).current_day()
        wanted = sorted(
            {(spec.day if spec.day is not None else default_day, spec.hour) for spec in specs}
        )
        # OpenPeriod writes the day key blindly, so periods of one day open in one block.
        records = parallel(
            lambda dh: submit(
                market, "OpenPeriod", str(dh[0]), str(dh[1]), message="opening period(s)"
            ),
            wanted,
        )
    emit(
        [views.period_row(r) for r in records],
        PERIOD_COLUMNS[:5],
        output,
        title="Opened",
    )


@command(
    period_app,
    "close",
    path="period close",
    epilog=(
        "Examples:\n\n"
        "  vppctl period close                       # the open period\n\n"
        "  vppctl period close -t 3-13\n\n"
        "Orders after the close, even in the same block, are refused. Runs as vppo-admin."
    ),
)
def period_close(
    period: options.PeriodOption = None,
    day: options.DayOption = None,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Close a period's gate (ClosePeriod)."""
    with session() as s:
        market = s.market(options.operator(as_))
        record = options.resolve_period(market, period, day)
        closed = submit(
            market, "ClosePeriod", record["period"], message=f"closing {record['period']}"
        )
    emit([views.period_row(closed)], PERIOD_COLUMNS[:5], output, title="Gate closed")


@command(
    period_app,
    "show",
    path="period show",
    epilog="Examples:\n\n  vppctl period show\n\n  vppctl period show -t 3-13 --output json",
)
def period_show(
    period: options.PeriodOption = None,
    day: options.DayOption = None,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """A period's status, prices and progress; what it lacks to settle (GetPeriod)."""
    with session() as s:
        market = s.market(options.reader(None, as_))
        record = options.resolve_period(market, period, day, default="latest")
    emit(
        [views.period_row(record)],
        [*PERIOD_COLUMNS, Column("missing", "Missing for settlement")],
        output,
        title=f"Period {record['period']}",
    )


@command(
    period_app,
    "list",
    path="period list",
    epilog=(
        "Examples:\n\n"
        "  vppctl period list                        # every day not yet closed\n\n"
        "  vppctl period list --day 3 --output csv"
    ),
)
def period_list(
    day: options.DayOption = None,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """The periods of the days not yet closed, or of one --day."""
    with session() as s:
        calendar = Calendar(s.market(options.reader(None, as_)))
        chosen = options.day_value(day)
        records = calendar.periods_of(chosen) if chosen else calendar.recent_periods()
        last = calendar.last_closed_day()
    caption = f"days up to {last} are closed" if chosen is None and not records else None
    emit(
        [views.period_row(r) for r in records],
        PERIOD_COLUMNS,
        output,
        title="Periods" + (f" of day {chosen}" if chosen else " of the days not yet closed"),
        caption=caption,
        empty="no periods",
    )
