"""`vppctl network status|add-aggregator|admission`: the local network, and growing it.

The table output is ``vpp_network.status.print_status``, the same as
``make network-status``; json and csv give the process list (and, for json,
the channel heights) for scripts. Starting and stopping stay with make,
which owns the network's lifecycle. ``add-aggregator`` admits a new
aggregator to the running network (issue 16), and ``admission <step>`` runs
one organisation's part of it (vpp_network.admission says who does what).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from vppctl.errors import EXIT_NETWORK, CliError, one_line
from vppctl.output import Column, Output, OutputOption, dumps, emit
from vppctl.registry import SETUP, command

commands = typer.Typer()  # this module's commands; main.py adds it to the app

network_app = typer.Typer(
    name="network",
    help="The local Fabric network (start/stop with make network-up / network-down).",
    no_args_is_help=True,
)
commands.add_typer(network_app, rich_help_panel=SETUP)


def _local_network() -> Any:
    """The network as ``python -m vpp_network`` sees it (same aggregators and layout)."""
    from vpp_network.network import existing_network

    return existing_network(log=lambda _message: None)


def _processes(net: Any) -> list[dict[str, Any]]:
    from vpp_network.processes import port_listening

    rows = []
    for spec in net.process_specs():
        pid = net.procs.pid(spec.name)
        up = pid is not None and all(port_listening(p, pid) for p in spec.ports[:1])
        rows.append({"process": spec.name, "pid": pid, "ports": list(spec.ports), "up": up})
    return rows


@command(
    network_app,
    "status",
    path="network status",
    epilog=(
        "Examples:\n\n"
        "  vppctl network status\n\n"
        "  vppctl network status --output json\n\n"
        "Exit code 0 when every process is up, 3 otherwise."
    ),
)
def network_status(output: OutputOption = Output.TABLE) -> None:
    """Processes, channel heights per peer and committed chaincode of the local network."""
    net = _local_network()
    if output is Output.TABLE:
        from vpp_network.status import print_status

        if not print_status(net):
            raise typer.Exit(EXIT_NETWORK)
        return
    processes = _processes(net) if net.state() else []
    all_up = bool(processes) and all(p["up"] for p in processes)
    if output is Output.JSON:
        heights: dict[str, Any] = {}
        if any(p["up"] for p in processes):
            from vpp_network.status import channel_heights

            heights = channel_heights(net)
        typer.echo(dumps({"all_up": all_up, "processes": processes, "channel_heights": heights}))
    else:
        emit(
            processes,
            [
                Column("process", "process"),
                Column("pid", "pid"),
                Column("ports", "ports"),
                Column("up", "up"),
            ],
            output,
        )
    if not all_up:
        raise typer.Exit(EXIT_NETWORK)


# --- admitting an aggregator (issue 16; vpp_network.admission does the work) ---------------
admission_app = typer.Typer(
    name="admission",
    help="Admit an aggregator one party's step at a time (add-aggregator runs them all).",
    no_args_is_help=True,
)
network_app.add_typer(admission_app)

AggArgument = Annotated[int, typer.Argument(metavar="N", min=1, help="The aggregator's number.")]
RegionOption = Annotated[
    str | None,
    typer.Option("--region", metavar="REGION", help="Its market region (default R<N>)."),
]
ReputationOption = Annotated[
    str,
    typer.Option("--reputation", metavar="R", help="Initial reputation R_0 (default 0.5)."),
]


def _stderr_log(message: str) -> None:
    typer.echo(message, err=True)


def _admission(number: int) -> Any:
    from vpp_network.admission import Admission

    try:
        return Admission(number, log=_stderr_log)
    except SystemExit as exc:  # NetworkError / AdmissionError: one paragraph, exit 1
        raise CliError(str(exc)) from exc


def _run(number: int, step: str, output: Output, **options: Any) -> None:
    """Runs ``step`` (``all``: every step not done) with progress on stderr, then prints
    where the admission stands (``admission status``) in the chosen format."""
    from vpp_network.fabric_cli import FabricCommandError

    try:
        admission = _admission(number)
        if step == "all":
            admission.run_all(**options)
        else:
            admission.run(step, **options)
    except SystemExit as exc:
        raise CliError(one_line(str(exc))) from exc
    except (FabricCommandError, TimeoutError, ValueError) as exc:
        raise CliError(one_line(str(exc))) from exc
    _emit_status(number, output)


def _emit_status(number: int, output: Output) -> None:
    from vpp_network.admission import status

    record = status(number)
    if output is Output.JSON:
        typer.echo(dumps(record))
        return
    signatures = ", ".join(record["signatures"]) or "none"
    emit(
        record["steps"],
        [Column("step", "Step"), Column("done", "Done"), Column("seconds", "Seconds")],
        output,
        title=f"Admission of Agg{number} (signatures: {signatures})",
    )


def _market_terms_command(
    group: typer.Typer, name: str, *, path: str, step: str, doc: str, epilog: str
) -> None:
    """Adds a command that runs ``step`` with the aggregator's market terms (--region,
    --reputation): ``add-aggregator`` (every step) and ``admission market`` (the step that
    uses them) take the same options, declared here once."""

    def run_with_terms(
        agg: AggArgument,
        region: RegionOption = None,
        reputation: ReputationOption = "",
        output: OutputOption = Output.TABLE,
    ) -> None:
        _run(agg, step, output, region=region or f"R{agg}", reputation=reputation)

    run_with_terms.__doc__ = doc
    command(group, name, path=path, epilog=epilog)(run_with_terms)


_market_terms_command(
    network_app,
    "add-aggregator",
    path="network add-aggregator",
    step="all",
    doc="Admit aggregator N to the running network: every step, resumable.",
    epilog="Examples:\n\n"
    "  vppctl network add-aggregator 7\n\n"
    "  vppctl network add-aggregator 7 --region R2 --reputation 0.6\n\n"
    "Runs every step of `vppctl network admission` on the local network, each "
    "organisation with its own admin key: the new organisation's CA and identities, "
    "the vpp-main update signed one organisation at a time, channel agg<N>, its peer "
    "and chaincode servers, the market's admission by consent. Progress goes to "
    "stderr; after a failure, run it again: finished steps are skipped "
    "(`vppctl network admission status N` shows them). N is the next number.",
)


def _step_command(step: str, epilog: str) -> None:
    from vpp_network.admission import STEP_HELP

    def run_step(agg: AggArgument, output: OutputOption = Output.TABLE) -> None:
        _run(agg, step, output)

    run_step.__doc__ = STEP_HELP[step][0].upper() + STEP_HELP[step][1:] + "."
    command(admission_app, step, path=f"network admission {step}", epilog=epilog)(run_step)


_step_command(
    "org",
    "Examples:\n\n  vppctl network admission org 7\n\n"
    "Run by the new organisation: starts its Fabric CA, enrols its admin, peer, trader and "
    "meters, and writes its public MSP definition (admissions/agg<N>/Agg<N>MSP.json), the "
    "only file it hands to the others.",
)
_step_command(
    "propose",
    "Examples:\n\n  vppctl network admission propose 7\n\n"
    "Run by the VPPO (or any member) with the new organisation's MSP definition: writes "
    "admissions/agg<N>/vpp-main-update.pb and forgets signatures of an older proposal.",
)


@command(
    admission_app,
    "sign",
    path="network admission sign",
    epilog=(
        "Examples:\n\n"
        "  vppctl network admission sign 7 --org Grid\n\n"
        "  vppctl network admission sign 7 --org Orderer\n\n"
        "Run by each consenting organisation with its own admin key: writes its signature "
        "as admissions/agg<N>/signatures/<MSP>.sig (only that file goes back)."
    ),
)
def admission_sign(
    agg: AggArgument,
    org: Annotated[
        str, typer.Option("--org", metavar="ORG", help="VPPO, Grid, Agg<k> or Orderer.")
    ],
    output: OutputOption = Output.TABLE,
) -> None:
    """An existing organisation's admin signs the vpp-main update."""
    _run(agg, "sign", output, org=org)


_step_command(
    "submit",
    "Examples:\n\n  vppctl network admission submit 7\n\n"
    "Run by the VPPO: refuses (naming the policy) while the signatures collected do not "
    "satisfy every policy the update touches, else merges them and sends the update.",
)
_step_command(
    "channel",
    "Examples:\n\n  vppctl network admission channel 7\n\n"
    "Run by the orderer organisation, the VPPO and the Grid: creates agg<N> on every "
    "orderer; the VPPO's and the Grid's peers join it.",
)
_step_command(
    "join",
    "Examples:\n\n  vppctl network admission join 7\n\n"
    "Run by the new organisation (and agg<N>'s members for the meter's definition): its "
    "peer joins vpp-main and agg<N>, its chaincode servers start, definitions are "
    "approved (re-committed if they change); the network then counts N aggregators.",
)


_market_terms_command(
    admission_app,
    "market",
    path="network admission market",
    step="market",
    doc="AggN's admin asks to be admitted to the market, the VPPO approves.",
    epilog="Examples:\n\n"
    "  vppctl network admission market 7 --region R1\n\n"
    "RequestAdmission by agg<N>-admin (meters agg<N>-m1, agg<N>-m2), ApproveAdmission "
    "by vppo-admin: the trust rules' admission by consent.",
)


@command(
    admission_app,
    "status",
    path="network admission status",
    epilog="Examples:\n\n  vppctl network admission status 7 --output json",
)
def admission_status(agg: AggArgument, output: OutputOption = Output.TABLE) -> None:
    """Which steps of aggregator N's admission are done, and the signatures collected."""
    _emit_status(agg, output)
