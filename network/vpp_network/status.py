"""`make network-status`: processes, channel heights per peer, committed chaincode."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from rich.console import Console
from rich.table import Table

from vpp_network import fabric_cli
from vpp_network.network import Network
from vpp_network.processes import port_listening


def channel_heights(net: Network) -> dict[str, dict[str, int | None]]:
    """{channel: {peer host: height or None if unreachable}}."""
    plan = net.plan

    def height(job):
        channel, org = job
        try:
            return (
                channel.name,
                org.peer_host,
                fabric_cli.channel_height(plan, org, channel.name)[0],
            )
        except Exception:  # noqa: BLE001 - a down peer is reported, not raised
            return channel.name, org.peer_host, None

    jobs = [(c, org) for c in plan.channels for org in c.orgs]
    result: dict[str, dict[str, int | None]] = {c.name: {} for c in plan.channels}
    with ThreadPoolExecutor(max_workers=4) as pool:
        for channel, peer, h in pool.map(height, jobs):
            result[channel][peer] = h
    return result


def print_status(net: Network, console: Console | None = None) -> bool:
    """Prints the three tables; returns True when every process is up."""
    console = console or Console()
    state = net.state()
    if not state:
        console.print("No network on disk. `make network-up` creates one.")
        return False
    procs = Table(title="Processes")
    for col in ("process", "pid", "ports", "state"):
        procs.add_column(col)
    all_up = True
    # On the hosts layout a port is only meaningful with its machine's address.
    address = {h.namespace: f"{h.address}:" for h in net.plan.hosts if h.namespace}
    for spec in net.process_specs():
        pid = net.procs.pid(spec.name)
        up = pid is not None and all(port_listening(p, pid) for p in spec.ports[:1])
        all_up &= up
        procs.add_row(
            spec.name,
            str(pid or "-"),
            address.get(spec.namespace, "") + ", ".join(str(p) for p in spec.ports),
            "[green]up[/]" if up else "[red]down[/]",
        )
    console.print(procs)
    if not all_up and not any(net.running().values()):
        return False
    heights = channel_heights(net)
    chans = Table(title="Channel heights per peer")
    chans.add_column("channel")
    chans.add_column("heights")
    chans.add_column("in sync")
    for channel, per_peer in heights.items():
        values = {h for h in per_peer.values() if h is not None}
        chans.add_row(
            channel,
            ", ".join(
                f"{p.split('.')[1]}={h if h is not None else '?'}" for p, h in per_peer.items()
            ),
            "yes" if len(values) == 1 and None not in per_peer.values() else "[yellow]no[/]",
        )
    console.print(chans)
    ccs = Table(title="Committed chaincode")
    for col in ("channel", "name", "version", "sequence"):
        ccs.add_column(col)
    plan = net.plan
    for channel in plan.channels:
        try:
            defs = fabric_cli.committed_chaincodes(plan, channel.orgs[0], channel.name)
        except Exception:  # noqa: BLE001
            defs = []
        for d in defs:
            ccs.add_row(channel.name, d["name"], d["version"], str(d["sequence"]))
        if not defs:
            ccs.add_row(channel.name, "-", "-", "-")
    console.print(ccs)
    return all_up
