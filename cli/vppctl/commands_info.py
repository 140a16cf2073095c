"""`vppctl version`, `vppctl ping`, `vppctl history`, `vppctl identities`: diagnostics.

The first questions when something does not work: is the chaincode the one
I think (version), can my organisation get a transaction committed (ping),
what happened to this key (history), and who can I act as (identities).
"""

from __future__ import annotations

import datetime as dt
import json
from importlib import metadata
from typing import Annotated, Any

import typer
from vpp_gateway import list_wallet, load_profile

from vppctl import options
from vppctl.output import Column, Output, OutputOption, emit
from vppctl.registry import command
from vppctl.session import MAIN_CHANNEL, query, session, submit
from vppctl.settings import SETTINGS

commands = typer.Typer()  # this module's commands; main.py adds it to the app


def _package_version() -> str:
    try:
        return metadata.version("vpp-fabric")
    except metadata.PackageNotFoundError:
        return "unknown"


@command(
    commands,
    "version",
    epilog="Examples:\n\n  vppctl version\n\n  vppctl version --agg 3 --output json",
)
def version(
    agg: Annotated[
        int | None,
        typer.Option("--agg", "-a", metavar="N", min=1, help="Also the meter chaincode on aggN."),
    ] = None,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Versions of vppctl and of the running chaincodes (Version)."""
    rows: list[dict[str, Any]] = [
        {"component": "vppctl", "channel": None, "version": _package_version(), "python": None}
    ]
    with session() as s:
        identity = options.reader(agg, as_)
        targets = [(MAIN_CHANNEL, s.market(identity))]
        if agg is not None:
            targets.append((f"agg{agg}", s.meter(identity, agg)))
        for channel, contract in targets:
            info = query(contract, "Version")
            rows.append(
                {
                    "component": info["name"],
                    "channel": channel,
                    "version": f"{info['version']} (package {info['build']['package']})",
                    "python": info["build"]["python"],
                }
            )
    emit(
        rows,
        [
            Column("component", "Component"),
            Column("channel", "Channel"),
            Column("version", "Version"),
            Column("python", "Python"),
        ],
        output,
        title="Versions",
    )


@command(
    commands,
    "ping",
    epilog=(
        "Examples:\n\n"
        "  vppctl ping --as agg3-trader\n\n"
        "  vppctl ping --agg 3                      # the meter chaincode on channel agg3\n\n"
        "  vppctl ping --last Agg3MSP               # when did Agg3 last ping? (GetPing)\n\n"
        "A health write: proves the identity's organisation gets a transaction committed."
    ),
)
def ping(
    agg: Annotated[
        int | None,
        typer.Option("--agg", "-a", metavar="N", min=1, help="Ping the meter chaincode on aggN."),
    ] = None,
    last: Annotated[
        str | None,
        typer.Option("--last", metavar="MSPID", help="Show that org's last Ping (GetPing)."),
    ] = None,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Commit a health-check transaction (Ping), or show an org's last one (GetPing)."""
    with session() as s:
        identity = options.reader(agg, as_)
        contract = s.meter(identity, agg) if agg is not None else s.market(identity)
        if last is not None:
            result = query(contract, "GetPing", last)
        else:
            result = submit(contract, "Ping", message="pinging")
    row = {
        "channel": result.get("channel", MAIN_CHANNEL),
        "mspid": result["mspid"],
        "caller": result["caller"],
        "tx_id": result["tx_id"],
        "time": _time(result["timestamp_ns"]) if "timestamp_ns" in result else None,
    }
    emit(
        [row],
        [
            Column("channel", "Channel"),
            Column("mspid", "MSP"),
            Column("caller", "Caller"),
            Column("tx_id", "Transaction"),
            Column("time", "Time (UTC)"),
        ],
        output,
        title=f"Last ping of {last}" if last else "Ping committed",
    )


def _time(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).isoformat(timespec="seconds")


@command(
    commands,
    "history",
    epilog=(
        "Examples:\n\n"
        "  vppctl history order~00001~13~0003\n\n"
        "  vppctl history period~00001~13 --output json\n\n"
        "  vppctl history day~00001\n\n"
        "Keys are type~part~... as in docs/chaincode-api.md (aggregators 4 digits, "
        "days 5, hours 2). Newest first."
    ),
)
def history(
    key: Annotated[str, typer.Argument(metavar="KEY", help="A ledger key, type~part~...")],
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Every committed value of one ledger key (GetHistory)."""
    with session() as s:
        result = query(s.market(options.reader(None, as_)), "GetHistory", key)
    rows = [
        {
            "tx_id": h["tx_id"],
            "time": _time(h["timestamp_ns"]),
            "deleted": h["is_delete"],
            "value": h["value"]
            if output is Output.JSON
            else json.dumps(h["value"], sort_keys=True),
        }
        for h in result["history"]
    ]
    emit(
        rows,
        [
            Column("time", "Time (UTC)"),
            Column("tx_id", "Transaction"),
            Column("deleted", "Deleted"),
            Column("value", "Value"),
        ],
        output,
        title=f"History of {key}",
        empty="never written",
    )


@command(
    commands,
    "identities",
    epilog="Examples:\n\n  vppctl identities\n\n  vppctl identities --output json",
)
def identities(output: OutputOption = Output.TABLE) -> None:
    """The wallet identities you can pass to --as."""
    profile = load_profile(SETTINGS.profile)
    rows = []
    for name in list_wallet(profile.wallet):
        try:
            meta = json.loads((profile.wallet / name / "identity.json").read_text())
        except (OSError, ValueError):
            meta = {}
        rows.append({"name": name, "mspid": meta.get("mspid"), "role": meta.get("role")})
    emit(
        rows,
        [Column("name", "Identity"), Column("mspid", "MSP"), Column("role", "Role")],
        output,
        title=f"Wallet {profile.wallet}",
        empty="the wallet is empty",
    )
