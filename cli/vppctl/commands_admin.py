"""`vppctl register`, `vppctl tou load|show`, `vppctl topology load|show`: the operator's setup.

Files are checked here first with the same parsers the offline clearing
uses, so a bad cell is reported with its file, row and column before
anything is sent; the chaincode then checks everything again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from vpp_market.book import read_tie_lines
from vpp_market.tou import load_tou_csv
from vpp_market.units import parse_reputation

from vppctl import market_ops, options, views
from vppctl.errors import usage_error
from vppctl.output import Column, Output, OutputOption, emit, num
from vppctl.registry import OPERATOR, command
from vppctl.session import session, submit

commands = typer.Typer()  # this module's commands; main.py adds it to the app

tou_app = typer.Typer(name="tou", help="Time-of-use grid prices (load as vppo-admin).")
topology_app = typer.Typer(name="topology", help="Tie-lines between regions (load as vppo-admin).")
commands.add_typer(tou_app, no_args_is_help=True, rich_help_panel=OPERATOR)
commands.add_typer(topology_app, no_args_is_help=True, rich_help_panel=OPERATOR)

TOU_COLUMNS = [
    num("start_hour", "From"),
    num("end_hour", "To"),
    num("sale", "s_t (grid sells)"),
    num("purchase", "f_t (grid buys)"),
]
LINE_COLUMNS = [Column("from_region", "From"), Column("to_region", "To"), num("limit_kw", "kW")]


def _tou_view(bands: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "start_hour": b["start_hour"],
            "end_hour": b["end_hour"],
            "sale": views.yuan(b["sale"]),
            "purchase": views.yuan(b["purchase"]),
        }
        for b in bands
    ]


def _lines_view(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"from_region": ln["a"], "to_region": ln["b"], "limit_kw": views.kwh(ln["limit_w"])}
        for ln in lines
    ]


@command(
    commands,
    "register",
    epilog=(
        "Examples:\n\n"
        "  vppctl register --agg 3 --region R3\n\n"
        "  vppctl register --agg 3 --region R3 --reputation 0.965 --meter agg3-m1\n\n"
        "  vppctl register --agg 7 --region R2 --step request      # as agg7-admin only\n\n"
        "  vppctl register --agg 7 --step approve --reputation 0.5  # as vppo-admin only\n\n"
        "Admission by consent: the aggregator's own admin asks (RequestAdmission: its MSP is "
        "the one in its certificate; region and meters), then the VPPO approves "
        "(ApproveAdmission, with R_0, default 0.5). --step both (the default) runs the two "
        "in turn as agg<N>-admin (--admin) and vppo-admin (--as); each organisation can "
        "also run only its own step."
    ),
)
def register(
    agg: Annotated[int, typer.Option("--agg", "-a", metavar="N", min=1, help="Aggregator number.")],
    region: Annotated[
        str | None,
        typer.Option("--region", help="Its region (a tie-line end); needed to request."),
    ] = None,
    reputation: Annotated[
        str | None,
        typer.Option("--reputation", metavar="R", help="Initial reputation R_0 in [0, 1]."),
    ] = None,
    meter: Annotated[
        list[str] | None,
        typer.Option("--meter", metavar="ID", help="A meter id agg<N>-..., repeatable."),
    ] = None,
    step: Annotated[
        str,
        typer.Option("--step", metavar="STEP", help="request (aggregator), approve (VPPO), both."),
    ] = "both",
    admin: Annotated[
        str | None,
        typer.Option("--admin", metavar="IDENTITY", help="The aggregator's admin identity."),
    ] = None,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Admit an aggregator: its admin asks, the VPPO approves (Request/ApproveAdmission)."""
    if step not in ("request", "approve", "both"):
        raise usage_error(f"--step {step!r}: is not request, approve or both")
    if step != "approve" and not region:
        raise usage_error("--region: is needed to request admission")
    if reputation is not None:
        parse_reputation(reputation, "--reputation")
    with session() as s:
        if step != "approve":
            requested = submit(
                s.market(options.agg_admin(agg, admin)),
                "RequestAdmission",
                f"Agg{agg}",
                region or "",
                json.dumps(meter) if meter else "",
                message=f"Agg{agg} asking to be admitted",
            )
            if step == "request":
                columns = [Column(k, k.capitalize()) for k in ("agg", "mspid", "region", "meters")]
                requested["agg"] = views.party(requested["agg"])
                emit([requested], columns, output, title="Admission requested")
                return
        record = submit(
            s.market(options.operator(as_)),
            "ApproveAdmission",
            f"Agg{agg}",
            reputation or "",
            message=f"admitting Agg{agg}",
        )
    row = {
        "agg": views.party(record["agg"]),
        "mspid": record["mspid"],
        "region": record["region"],
        "channel": record["channel"],
        "meters": record["meters"],
        "reputation": views.ppm(record["reputation"]["r_ppm"]),
    }
    emit(
        [row],
        [
            Column("agg", "Agg"),
            Column("mspid", "MSP"),
            Column("region", "Region"),
            Column("channel", "Channel"),
            Column("meters", "Meters"),
            num("reputation", "R_0"),
        ],
        output,
        title="Registered",
    )


@command(
    tou_app,
    "load",
    path="tou load",
    epilog=(
        "Examples:\n\n"
        "  vppctl tou load tou.csv\n\n"
        "Columns: start_hour,end_hour,grid_sale_price,grid_purchase_price (yuan/kWh); "
        "bands may wrap midnight (23 -> 7) and must cover every hour once. Periods already "
        "open keep their prices. Runs as vppo-admin."
    ),
)
def tou_load(
    path: Annotated[Path, typer.Argument(metavar="TOU.csv", help="The TOU table.")],
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Replace the TOU price table used by periods opened from now on (LoadTou)."""
    table = load_tou_csv(path)
    with session() as s:
        stored = submit(
            s.market(options.operator(as_)),
            "LoadTou",
            json.dumps(market_ops.tou_rows(table)),
            message="loading the TOU table",
        )
    emit(_tou_view(stored["bands"]), TOU_COLUMNS, output, title="TOU table loaded (yuan/kWh)")


@command(tou_app, "show", path="tou show", epilog="Examples:\n\n  vppctl tou show --output csv")
def tou_show(as_: options.AsOption = None, output: OutputOption = Output.TABLE) -> None:
    """The TOU table new periods take their prices from."""
    with session() as s:
        stored = market_ops.current_config(s.market(options.reader(None, as_)), "tou")
    if stored["loaded_tx"] is None:
        title = "TOU table (yuan/kWh): the paper's default, never loaded"
    else:
        title = f"TOU table (yuan/kWh), loaded by {stored['loaded_tx'][:12]}"
    emit(_tou_view(stored["bands"]), TOU_COLUMNS, output, title=title)


@command(
    topology_app,
    "load",
    path="topology load",
    epilog=(
        "Examples:\n\n"
        "  vppctl topology load tie_lines.csv\n\n"
        "Columns: from_region,to_region,limit_kw; the lines must form a tree. "
        "Runs as vppo-admin."
    ),
)
def topology_load(
    path: Annotated[Path, typer.Argument(metavar="LINES.csv", help="The tie-lines.")],
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Replace the tie-lines that the next clearing checks flows against (LoadTopology)."""
    topology = read_tie_lines(path)
    with session() as s:
        stored = submit(
            s.market(options.operator(as_)),
            "LoadTopology",
            json.dumps(market_ops.line_rows(topology)),
            message="loading the tie-lines",
        )
    emit(_lines_view(stored["lines"]), LINE_COLUMNS, output, title="Tie-lines loaded")


@command(
    topology_app,
    "show",
    path="topology show",
    epilog="Examples:\n\n  vppctl topology show --output json",
)
def topology_show(as_: options.AsOption = None, output: OutputOption = Output.TABLE) -> None:
    """The tie-lines clearing checks (none loaded: unlimited)."""
    with session() as s:
        stored = market_ops.current_config(s.market(options.reader(None, as_)), "topology")
    lines = stored["lines"] or []  # null: none loaded
    emit(
        _lines_view(lines),
        LINE_COLUMNS,
        output,
        title="Tie-lines",
        empty="none loaded: flows between regions are unlimited",
    )


@command(
    topology_app,
    "remove",
    path="topology remove",
    epilog="Examples:\n\n  vppctl topology remove\n\nRuns as vppo-admin.",
)
def topology_remove(as_: options.AsOption = None, output: OutputOption = Output.TABLE) -> None:
    """Remove the tie-lines: clearing has no line limits again (RemoveTopology)."""
    with session() as s:
        submit(s.market(options.operator(as_)), "RemoveTopology", message="removing the tie-lines")
    emit(
        [],
        LINE_COLUMNS,
        output,
        title="Tie-lines removed",
        empty="none loaded: flows between regions are unlimited",
    )


config_app = typer.Typer(name="config", help="Market deadlines in seconds (set as vppo-admin).")
commands.add_typer(config_app, no_args_is_help=True, rich_help_panel=OPERATOR)
CONFIG_COLUMNS = [
    num("signing_window_s", "Signing window (s)"),
    num("seal_deadline_s", "Seal deadline (s)"),
]


@command(
    config_app,
    "set",
    path="config set",
    epilog=(
        "Examples:\n\n"
        "  vppctl config set --signing-window 60 --seal-deadline 120\n\n"
        "Both count from a period's clearing (its cleared_at, ledger time). Periods keep "
        "the values in force when they were opened. Runs as vppo-admin."
    ),
)
def config_set(
    signing_window: Annotated[
        int | None,
        typer.Option("--signing-window", metavar="S", min=0, help="Seconds to sign before void."),
    ] = None,
    seal_deadline: Annotated[
        int | None,
        typer.Option(
            "--seal-deadline", metavar="S", min=0, help="Seconds before the VPPO may seal."
        ),
    ] = None,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Set the market's deadlines (SetMarketConfig)."""
    change = {
        name: value
        for name, value in (
            ("signing_window_s", signing_window),
            ("seal_deadline_s", seal_deadline),
        )
        if value is not None
    }
    if not change:
        raise usage_error("give --signing-window and/or --seal-deadline")
    with session() as s:
        stored = submit(
            s.market(options.operator(as_)),
            "SetMarketConfig",
            json.dumps(change),
            message="setting the market's deadlines",
        )
    emit([stored], CONFIG_COLUMNS, output, title="Market configuration set")


@command(config_app, "show", path="config show", epilog="Examples:\n\n  vppctl config show -o json")
def config_show(as_: options.AsOption = None, output: OutputOption = Output.TABLE) -> None:
    """The market's deadlines new periods take (GetConfig market)."""
    with session() as s:
        stored = market_ops.current_config(s.market(options.reader(None, as_)), "market")
    title = "Market configuration" + ("" if stored["set_tx"] else " (defaults, never set)")
    emit([stored], CONFIG_COLUMNS, output, title=title)
