"""`vppctl network status`: is the local network up (processes, heights, chaincode)?

The table output is ``vpp_network.status.print_status``, the same as
``make network-status``; json and csv give the process list (and, for json,
the channel heights) for scripts. Starting and stopping stay with make,
which owns the network's lifecycle.
"""

from __future__ import annotations

from typing import Any

import typer

from vppctl.errors import EXIT_NETWORK
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
    """The network as ``python -m vpp_network`` sees it (same aggregator count)."""
    from vpp_network.network import Network
    from vpp_network.plan import DEFAULT_AGGS, NetworkPlan

    probe = Network(NetworkPlan())
    return Network(NetworkPlan(aggs=probe.state().get("aggs") or DEFAULT_AGGS))


def _processes(net: Any) -> list[dict[str, Any]]:
    from vpp_network.processes import port_listening

    rows = []
    for spec in net.process_specs():
        pid = net.procs.pid(spec.name)
        up = pid is not None and all(port_listening(p) for p in spec.ports[:1])
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
