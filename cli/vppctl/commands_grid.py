"""`vppctl grid check|verify|show` and `vppctl grid model load|show`: the Grid's security check.

After ClearPeriod the Grid runs an AC power flow of the period's trades on
its model (pandapower, off-chain) and submits a verdict: pass, or the
contracts to curtail; contracts of a period cleared under a model can be
signed only after that. Anyone can re-run the flows and say whether the
verdict is right. docs/grid-check.md describes the model and the rule.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from vppctl import grid_ops, options
from vppctl.errors import CliError
from vppctl.output import Column, Output, OutputOption, dumps, emit, num, progress, stderr
from vppctl.registry import OPERATOR, command
from vppctl.session import query, session, submit
from vppctl.views import kwh

commands = typer.Typer()  # this module's commands; main.py adds it to the app

grid_app = typer.Typer(
    name="grid",
    help="The Grid's AC power-flow security check of cleared trades (check as grid-admin).",
    no_args_is_help=True,
)
commands.add_typer(grid_app, rich_help_panel=OPERATOR)
model_app = typer.Typer(
    name="model",
    help="The grid model whose SHA-256 is on the ledger (load as grid-admin).",
    no_args_is_help=True,
)
grid_app.add_typer(model_app)

ModelOption = Annotated[
    Path | None,
    typer.Option(
        "--model",
        "-m",
        metavar="FILE",
        help="Grid model file (default: the IEEE 33-bus model shipped with vppctl).",
        show_default=False,
    ),
]
PlotOption = Annotated[
    Path | None,
    typer.Option(
        "--plot",
        metavar="FILE.png",
        help="Also write a plot of the bus voltages (before and after curtailment).",
        show_default=False,
    ),
]

CURTAIL_COLUMNS = [
    Column("contract", "Contract"),
    Column("route", "Seller -> buyer"),
    num("cleared_kwh", "Cleared kWh"),
    num("curtailed_kwh", "Curtailed kWh"),
]
VIOLATION_COLUMNS = [Column("kind", "Limit"), Column("where", "Where"), num("value", "Value")]


def _grid_identity(as_: str | None) -> str:
    return as_ or grid_ops.GRID_ADMIN


def _violation_rows(violations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for v in violations:
        if v["kind"] == "bus":
            rows.append({"kind": "bus voltage", "where": f"bus {v['bus']} ({v['region']})",
                         "value": f"{v['vm_pu']} p.u."})  # fmt: skip
        elif v["kind"] == "line":
            rows.append({"kind": "branch loading", "where": f"line {v['line']}",
                         "value": f"{v['loading_percent']} %"})  # fmt: skip
        elif v["kind"] == "tie_line":
            rows.append({"kind": "tie-line power", "where": f"{v['tie']} (line {v['line']})",
                         "value": f"{v['p_kw']} kW"})  # fmt: skip
        else:
            rows.append({"kind": "no convergence", "where": "-", "value": "-"})
    return rows


def _plot(plot: Path | None, model, before, after, title: str) -> None:
    if plot is None:
        return
    from vpp_grid.flow import Flow
    from vpp_grid.plot import voltage_plot

    base = Flow(model).run({})
    voltage_plot(model, before, after, plot, title, base=base)
    stderr().print(f"voltage plot written to {plot}")


@command(
    grid_app,
    "check",
    path="grid check",
    epilog=(
        "Examples:\n\n"
        "  vppctl grid check --period 13             # as grid-admin, after ClearPeriod\n\n"
        "  vppctl grid check -t 2-13 --plot t13.png  # and plot the bus voltages\n\n"
        "  vppctl grid check -t 13 --dry-run -o json # compute the verdict, submit nothing\n\n"
        "Places every MATCHED contract's energy at its regions' connection buses on top of "
        "the base case, runs an AC power flow and submits the verdict (SubmitGridVerdict): "
        "pass, or curtailments (last matched first) until voltages are within 0.95-1.05 "
        "p.u. and branches within their ratings. Curtailed energy becomes grid absorption."
    ),
)
def grid_check(
    period: options.PeriodOption = None,
    day: options.DayOption = None,
    model: ModelOption = None,
    plot: PlotOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Compute and print the verdict; submit nothing.")
    ] = False,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Run the AC power flow of a cleared period and submit the Grid's verdict."""
    with session() as s:
        market = s.market(_grid_identity(as_))
        record = options.resolve_period(market, period, day, default="latest")
        with progress(f"power flow of period {record['period']}"):
            checked = grid_ops.check_period(market, record, model, dry_run=dry_run)
    outcome = checked.outcome
    verdict = outcome.verdict(checked.period)
    _plot(plot, checked.model, outcome.before, outcome.after,
          f"Period {checked.period}: {verdict['result']} ({checked.model.name})")  # fmt: skip
    if output is Output.JSON:
        typer.echo(dumps({"verdict": verdict, "submitted": checked.stored is not None
                          and not checked.already, "flows": outcome.runs}))  # fmt: skip
        return
    if checked.already:
        stderr().print(f"period {checked.period} already has a grid verdict; nothing submitted")
    by_id = {t.contract: t for t in outcome.transfers}
    rows = [
        {"contract": c, "route": f"{by_id[c].seller_region} -> {by_id[c].buyer_region}",
         "cleared_kwh": kwh(by_id[c].wh), "curtailed_kwh": kwh(wh)}
        for c, wh in outcome.curtailments
    ]  # fmt: skip
    after = verdict["after"]
    caption = (
        f"{len(outcome.transfers)} contracts, {outcome.runs} power flows; after: voltages "
        f"{after['vm_min_pu']}-{after['vm_max_pu']} p.u., max loading "
        f"{after['max_loading_percent']} %; model {checked.model.sha256[:12]}"
    )
    if output is Output.CSV:
        emit(rows, CURTAIL_COLUMNS, output)
        return
    emit(_violation_rows(verdict["violations"]), VIOLATION_COLUMNS, output,
         title=f"Period {checked.period}: violations before curtailment",
         empty="no limit violated")  # fmt: skip
    status = "dry run, not submitted" if checked.stored is None else "on the ledger"
    emit(rows, CURTAIL_COLUMNS, output,
         title=f"Grid verdict: {verdict['result']} ({status})", caption=caption,
         empty=f"nothing to curtail; {caption}")  # fmt: skip


@command(
    grid_app,
    "verify",
    path="grid verify",
    epilog=(
        "Examples:\n\n"
        "  vppctl grid verify --period 13            # as any member\n\n"
        "  vppctl grid verify -t 13 --model my-copy.json --plot v13.png\n\n"
        "Re-runs the power flows from the model file whose SHA-256 the verdict names and "
        "the public contracts (as cleared), and says whether the Grid's verdict is right. "
        "Exit code 1 when it is not."
    ),
)
def grid_verify(
    period: options.PeriodOption = None,
    day: options.DayOption = None,
    model: ModelOption = None,
    plot: PlotOption = None,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Check the Grid's verdict on a period by re-running its power flows."""
    with session() as s:
        market = s.market(options.operator(as_))
        record = options.resolve_period(market, period, day, default="latest")
        with progress(f"re-running the power flows of {record['period']}"):
            verified = grid_ops.verify_period(market, record, model)
    finding = verified.finding
    if finding.before is not None:
        _plot(plot, verified.model, finding.before, finding.after,
              f"Period {verified.period}: verify ({verified.model.name})")  # fmt: skip
    stored = verified.stored
    document = {"period": verified.period, "right": finding.right, "problems": finding.problems,
                "result": stored["result"], "curtailments": stored["curtailments"],
                "model_sha256": stored["model_sha256"], "flows": finding.runs}  # fmt: skip
    if output is Output.TABLE:
        word = "right" if finding.right else "WRONG"
        cut = ", ".join(f"{c['contract']} {kwh(c['wh'])} kWh" for c in stored["curtailments"])
        typer.echo(
            f"period {verified.period}: the Grid's verdict ({stored['result']}"
            f"{': ' + cut if cut else ''}) is {word} "
            f"({finding.runs} power flows on model {stored['model_sha256'][:12]})"
        )
        for problem in finding.problems:
            typer.echo(f"  - {problem}")
    elif output is Output.JSON:
        typer.echo(dumps(document))
    else:
        emit([{"period": verified.period, "right": finding.right,
               "problems": " | ".join(finding.problems)}],
             [Column("period", "Period"), Column("right", "Right"),
              Column("problems", "Problems")], output)  # fmt: skip
    if not finding.right:
        raise CliError(f"the Grid's verdict on {verified.period} is wrong")


@command(
    grid_app,
    "show",
    path="grid show",
    epilog="Examples:\n\n  vppctl grid show --period 13 --output json",
)
def grid_show(
    period: options.PeriodOption = None,
    day: options.DayOption = None,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """The Grid's verdict on a period as stored on the ledger (GetGridVerdict)."""
    with session() as s:
        market = s.market(options.operator(as_))
        record = options.resolve_period(market, period, day, default="latest")
        stored = query(market, "GetGridVerdict", record["period"])
    if output is Output.JSON:
        typer.echo(dumps(stored))
        return
    from vpp_grid.ledger import as_submitted

    rows = [{"contract": c["contract"], "route": "", "cleared_kwh": None,
             "curtailed_kwh": kwh(c["wh"])} for c in stored["curtailments"]]  # fmt: skip
    title = f"Period {stored['period']}: {stored['result']}"
    violations = _violation_rows(as_submitted(stored)["violations"])
    emit(violations, VIOLATION_COLUMNS, output, title=title, empty="no limit violated")
    if output is Output.TABLE:
        emit(rows, CURTAIL_COLUMNS, output, title="Curtailments", empty="none")


@command(
    model_app,
    "load",
    path="grid model load",
    epilog=(
        "Examples:\n\n"
        "  vppctl grid model load                    # the shipped IEEE 33-bus model\n\n"
        "  vppctl grid model load my-feeder.json\n\n"
        "Records the file's SHA-256 and limits on vpp-main (LoadGridModel, grid-admin only). "
        "Periods cleared from then on wait for the Grid's verdict before anyone signs."
    ),
)
def grid_model_load(
    file: Annotated[
        Path | None,
        typer.Argument(
            metavar="[FILE]", help="Model file (default: the shipped model).", show_default=False
        ),
    ] = None,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Record a grid model's SHA-256 on the ledger (LoadGridModel)."""
    with session() as s:
        record = grid_ops.load_model(s.market(_grid_identity(as_)), file)
    _emit_models([record], output, "Grid model loaded")


@command(
    model_app,
    "unload",
    path="grid model unload",
    epilog=(
        "Examples:\n\n  vppctl grid model unload\n\n"
        "Periods cleared from then on need no verdict (UnloadGridModel, grid-admin only); "
        "periods cleared before still wait for theirs. The model stays in the history."
    ),
)
def grid_model_unload(as_: options.AsOption = None, output: OutputOption = Output.TABLE) -> None:
    """Stop the check for periods cleared from now on (UnloadGridModel)."""
    with session() as s:
        result = submit(s.market(_grid_identity(as_)), "UnloadGridModel",
                        message="unloading the grid model")  # fmt: skip
    emit([result], [Column("unloaded", "Unloaded SHA-256"), Column("tx_id", "Tx")], output,
         title="Grid model unloaded")  # fmt: skip


@command(
    model_app,
    "show",
    path="grid model show",
    epilog="Examples:\n\n  vppctl grid model show --history",
)
def grid_model_show(
    history: Annotated[bool, typer.Option("--history", help="Every model loaded.")] = False,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """The grid model in force (GetGridModel), or all of them with --history."""
    with session() as s:
        answer = query(s.market(options.operator(as_)), "GetGridModel")
    if history:
        records = [r for r in answer["history"] if not r.get("unloaded")]
    else:
        records = [r for r in [answer["current"]] if r]
    _emit_models(records, output, "Grid models" if history else "Grid model in force")


def _emit_models(records: list[dict[str, Any]], output: Output, title: str) -> None:
    rows = [
        {"sha256": r["sha256"], "name": r["name"], "buses": r["buses"],
         "regions": r["regions"], "loaded_tx": r["loaded_tx"]}
        for r in records
    ]  # fmt: skip
    emit(rows, [Column("sha256", "SHA-256"), Column("name", "Name"), num("buses", "Buses"),
                Column("regions", "Regions"), Column("loaded_tx", "Tx")], output,
         title=title, empty="no grid model loaded (signing needs no verdict)")  # fmt: skip
