"""`vppctl meter register|certify|retire|capacity|read|seal|readings|summary|resources|prove`.

The ``meter`` chaincode runs on channel ``agg<N>``: the aggregator's admin
proposes its resources and the Grid's admin certifies them (trust rules),
each meter records one reading per period with its own Grid-issued
certificate, and sealing freezes the period's readings into the delivery
summary the market anchors. Energy is typed in kWh (3 decimals) and sent in
Wh, the chaincode's unit.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any

import typer
from vpp_market import merkle
from vpp_market.units import format_kwh, parse_kw, parse_kwh
from vpp_network import identities

from vppctl import market_ops, options, views
from vppctl.errors import CliError
from vppctl.output import Column, Output, OutputOption, emit, num
from vppctl.periods import Calendar, period_id
from vppctl.registry import METERS, command
from vppctl.session import Session, query, query_meter, session, submit, submit_meter

commands = typer.Typer()  # this module's commands; main.py adds it to the app

meter_app = typer.Typer(
    name="meter",
    help="Resources, readings and seals on an aggregator's channel agg<N> (meter chaincode).",
    no_args_is_help=True,
)
commands.add_typer(meter_app, rich_help_panel=METERS)

READING_COLUMNS = [
    Column("period", "Period"),
    Column("meter", "Meter"),
    num("exported_kwh", "Exported kWh"),
    num("imported_kwh", "Imported kWh"),
    Column("recorded_by", "Recorded by"),
]
SUMMARY_COLUMNS = [
    Column("channel", "Channel"),
    Column("period", "Period"),
    num("exported_kwh", "Exported kWh"),
    num("imported_kwh", "Imported kWh"),
    num("net_exported_kwh", "Net exported"),
    num("readings", "Readings"),
    Column("missing_meters", "Missing meters"),
    Column("sha256", "sha256"),
]
RESOURCE_COLUMNS = [
    Column("id", "Resource"),
    Column("kind", "Kind"),
    num("capacity_kw", "kW"),
    Column("meter", "Meter"),
    Column("status", "Status"),
]
CAPACITY_COLUMNS = [
    Column("agg", "Aggregator"),
    num("supply_kw", "Supply kW"),
    num("load_kw", "Load kW"),
]


class Kind(StrEnum):
    PV = "PV"
    WT = "WT"
    ESS = "ESS"
    LOAD = "load"


def _period(s: Session, identity: str, period: str, day: int | None) -> str:
    """A period id resolved on vpp-main (any member of the aggregator's MSP may read it)."""
    spec = options.period_spec(period)
    if spec is not None and spec.day is not None:
        return period_id(spec.day, spec.hour)
    return Calendar(s.market(identity)).resolve(spec, day=options.day_value(day))["period"]


def _query_period(
    agg: int, as_: str | None, period: str, day: int | None, function: str
) -> tuple[str, Any]:
    """The period id and ``function``'s answer for it on agg<N>'s meter chaincode (a query)."""
    identity = options.reader(agg, as_)
    with session() as s:
        pid = _period(s, identity, period, day)
        return pid, query(s.meter(identity, agg), function, pid)


def resource_row(resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": resource["id"],
        "kind": resource["kind"],
        "capacity_kw": views.kwh(resource["capacity_w"]),
        "meter": resource["meter"],
        "status": resource.get("status"),
    }


def summary_row(summary: dict[str, Any]) -> dict[str, Any]:
    return {
        "channel": summary["channel"],
        "period": summary["period"],
        "exported_kwh": views.kwh(summary["exported_wh"]),
        "imported_kwh": views.kwh(summary["imported_wh"]),
        "net_exported_kwh": views.kwh(summary["net_exported_wh"]),
        "readings": summary["readings"],
        "missing_meters": summary["missing_meters"],
        "sha256": summary["sha256"],
    }


ResourceArgument = Annotated[str, typer.Argument(metavar="RESOURCE_ID", help="e.g. agg3-pv.")]
KindOption = Annotated[
    Kind, typer.Option("--kind", case_sensitive=False, help="PV, WT, ESS, load.")
]
CapacityOption = Annotated[str, typer.Option("--capacity", metavar="KW", help="Capacity in kW.")]
MeterOption = Annotated[
    str | None,
    typer.Option("--meter", metavar="ID", help="Its meter, agg<N>-... (default agg<N>-m1)."),
]


def _terms_command(
    name: str,
    *,
    function: str,
    identity: Callable[[int, str | None], str],
    doing: str,
    done: str,
    doc: str,
    epilog: str,
) -> None:
    """Adds ``meter register`` or ``meter certify``: the same terms (resource, kind,
    capacity, meter) sent by two parties, AggN's admin proposing and the Grid's admin
    repeating them (trust rules), so one command body serves both and their options
    cannot drift apart."""

    def send_terms(
        resource: ResourceArgument,
        agg: options.AggChannelOption,
        kind: KindOption,
        capacity: CapacityOption,
        meter: MeterOption = None,
        as_: options.AsOption = None,
        output: OutputOption = Output.TABLE,
    ) -> None:
        parse_kw(capacity, "--capacity")
        record = submit_meter(
            identity(agg, as_),
            agg,
            function,
            resource,
            kind.value,
            capacity,
            meter or identities.meter_id(agg, 1),
            message=f"{doing} {resource} on agg{agg}",
        )
        emit([resource_row(record)], RESOURCE_COLUMNS, output, title=f"{done} on agg{agg}")

    send_terms.__doc__ = doc
    command(meter_app, name, path=f"meter {name}", epilog=epilog)(send_terms)


_terms_command(
    "register",
    function="RegisterResource",
    identity=options.agg_admin,
    doing="registering",
    done="Registered",
    doc="Register a flexible resource and the meter measuring it (RegisterResource).",
    epilog="Examples:\n\n"
    "  vppctl meter register --agg 3 agg3-pv --kind PV --capacity 300 --meter agg3-m1\n\n"
    "Runs as agg<N>-admin.",
)
_terms_command(
    "certify",
    function="CertifyResource",
    identity=lambda _agg, as_: options.grid_admin(as_),
    doing="certifying",
    done="Certified",
    doc="Certify a resource the aggregator proposed (CertifyResource).",
    epilog="Examples:\n\n"
    "  vppctl meter certify --agg 3 agg3-pv --kind PV --capacity 300 --meter agg3-m1\n\n"
    "Runs as grid-admin (the metering authority). The terms must repeat the "
    "aggregator's proposal exactly; only then does the resource count.",
)


@command(
    meter_app,
    "retire",
    path="meter retire",
    epilog=(
        "Examples:\n\n"
        "  vppctl meter retire --agg 3 agg3-pv\n\n"
        "Runs as grid-admin (the metering authority). The resource's capacity leaves its "
        "meter; a meter left without resources is no longer certified: it may not report and "
        "AggN's seal no longer waits for it (e.g. after `vppctl identity revoke` of a meter). "
        "Then syncs AggN's capacity to vpp-main (SyncCapacity), so its orders are bounded "
        "without the retired capacity at once."
    ),
)
def meter_retire(
    resource: ResourceArgument,
    agg: options.AggChannelOption,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Take a certified resource out of service (RetireResource), and sync the order bound."""
    identity = options.grid_admin(as_)
    with session() as s:
        record = submit(
            s.meter(identity, agg),
            "RetireResource",
            resource,
            message=f"retiring {resource} on agg{agg}",
        )
        # Until vpp-main has the lower bound, AggN could still offer the retired capacity;
        # the retirement is committed on every peer of agg<N> (submit waits) before this.
        bound = market_ops.sync_capacity(s.market(identity), agg)
    caption = (
        f"vpp-main's bound of Agg{agg}'s orders now: sell ≤ {format_kwh(bound['supply_w'])} "
        f"kWh, buy ≤ {format_kwh(bound['load_w'])} kWh (SyncCapacity)"
    )
    emit([resource_row(record)], RESOURCE_COLUMNS, output, title=f"Retired on agg{agg}",
         caption=caption)  # fmt: skip


@command(
    meter_app,
    "capacity",
    path="meter capacity",
    epilog="Examples:\n\n  vppctl meter capacity --agg 3 --output json",
)
def meter_capacity(
    agg: options.AggChannelOption,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Certified supply and load capacity of aggregator N (GetCapacity; bounds its orders)."""
    result = query_meter(options.reader(agg, as_), agg, "GetCapacity")
    row = {
        "agg": result["agg"],
        "supply_kw": views.kwh(result["supply_w"]),
        "load_kw": views.kwh(result["load_w"]),
    }
    emit([row], CAPACITY_COLUMNS, output, title=f"Certified capacity on agg{agg}")


@command(
    meter_app,
    "read",
    path="meter read",
    epilog=(
        "Examples:\n\n"
        "  vppctl meter read --agg 3 --period 2-13 --imported 285.6\n\n"
        "  vppctl meter read --agg 1 --period 13 --exported 318.7 --as agg1-meter2\n\n"
        "Runs as agg<N>-meter1 (a Grid-issued meter identity) unless --as; a meter records "
        "only its own reading, once, at most its certified capacity x 1 h."
    ),
)
def meter_read(
    agg: options.AggChannelOption,
    period: options.RequiredPeriodOption,
    exported: Annotated[
        str, typer.Option("--exported", metavar="KWH", help="Energy exported in the period.")
    ] = "0",
    imported: Annotated[
        str, typer.Option("--imported", metavar="KWH", help="Energy imported in the period.")
    ] = "0",
    day: options.DayOption = None,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Record a meter's reading for a period (RecordReading)."""
    exported_wh = parse_kwh(exported, "--exported")
    imported_wh = parse_kwh(imported, "--imported")
    identity = options.meter_identity(agg, as_)
    with session() as s:
        pid = _period(s, identity, period, day)
        record = submit(
            s.meter(identity, agg),
            "RecordReading",
            pid,
            str(exported_wh),
            str(imported_wh),
            message=f"recording {format_kwh(exported_wh)}/{format_kwh(imported_wh)} kWh",
        )
    emit([views.reading_row(record)], READING_COLUMNS, output, title=f"Reading on agg{agg}")


@command(
    meter_app,
    "seal",
    path="meter seal",
    epilog=(
        "Examples:\n\n"
        "  vppctl meter seal --agg 3 --period 2-13\n\n"
        "Runs as agg<N>-admin once every certified meter has reported, or --as vppo-admin "
        "after the market's seal deadline (missing meters are listed). The period must be "
        "cleared on vpp-main. Readings of the period are closed after."
    ),
)
def meter_seal(
    agg: options.AggChannelOption,
    period: options.RequiredPeriodOption,
    day: options.DayOption = None,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Freeze a period's readings into the delivery summary the market anchors (SealPeriod)."""
    identity = options.agg_admin(agg, as_)
    with session() as s:
        pid = _period(s, identity, period, day)
        summary = submit(s.meter(identity, agg), "SealPeriod", pid, message=f"sealing {pid}")
    emit([summary_row(summary)], SUMMARY_COLUMNS, output, title=f"Sealed on agg{agg}")


@command(
    meter_app,
    "readings",
    path="meter readings",
    epilog="Examples:\n\n  vppctl meter readings --agg 3 --period 2-13 --output csv",
)
def meter_readings(
    agg: options.AggChannelOption,
    period: options.RequiredPeriodOption,
    day: options.DayOption = None,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """A period's readings on agg<N> (GetReadings)."""
    pid, result = _query_period(agg, as_, period, day, "GetReadings")
    emit(
        [views.reading_row(r) for r in result["readings"]],
        READING_COLUMNS,
        output,
        title=f"Readings of {pid} on agg{agg}" + (" (sealed)" if result["sealed"] else ""),
        empty="no readings",
    )


@command(
    meter_app,
    "summary",
    path="meter summary",
    epilog="Examples:\n\n  vppctl meter summary --agg 3 --period 2-13 --output json",
)
def meter_summary(
    agg: options.AggChannelOption,
    period: options.RequiredPeriodOption,
    day: options.DayOption = None,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """The sealed delivery summary of a period (DeliverySummary)."""
    pid, summary = _query_period(agg, as_, period, day, "DeliverySummary")
    emit([summary_row(summary)], SUMMARY_COLUMNS, output, title=f"Delivery summary on agg{agg}")


@command(
    meter_app,
    "resources",
    path="meter resources",
    epilog="Examples:\n\n  vppctl meter resources --agg 3",
)
def meter_resources(
    agg: options.AggChannelOption,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Resources and meters registered on agg<N> (GetResources)."""
    result = query_meter(options.reader(agg, as_), agg, "GetResources")
    emit(
        [resource_row(r) for r in result["resources"]],
        RESOURCE_COLUMNS,
        output,
        title=f"Resources on agg{agg}",
        empty="no resources registered",
    )


PROOF_COLUMNS = [
    Column("period", "Period"),
    Column("meter", "Device/meter"),
    Column("slot", "Slot"),
    num("exported_wh", "Exported Wh"),
    num("imported_wh", "Imported Wh"),
    num("path", "Path length"),
    Column("anchored_root", "Anchored root"),
    Column("verified", "Verified"),
]


@command(
    meter_app,
    "prove",
    path="meter prove",
    epilog=(
        "Examples:\n\n"
        "  vppctl meter prove --agg 3 --period 2-13 --device agg3-d0001 --slot 2\n\n"
        "  vppctl meter prove --agg 3 --period 2-13 --device agg3-d0001 --slot 2 "
        "--exported-wh 1   # an altered reading: not verified, exit 1\n\n"
        "Rebuilds the Merkle path of one reading from agg<N>'s readings and checks it "
        "against the root the market anchored on vpp-main (AnchorDelivery). Omit --slot "
        "for an hourly reading (RecordReading)."
    ),
)
def meter_prove(
    agg: options.AggChannelOption,
    period: options.RequiredPeriodOption,
    device: Annotated[str, typer.Option("--device", metavar="ID", help="Device or meter id.")],
    slot: Annotated[
        int | None, typer.Option("--slot", metavar="S", min=0, help="Interval of the hour.")
    ] = None,
    exported_wh: Annotated[
        int | None,
        typer.Option("--exported-wh", metavar="WH", help="Claim this energy instead (a test)."),
    ] = None,
    day: options.DayOption = None,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Prove one reading part of a settled delivery: its Merkle path to the anchored root."""
    identity = options.reader(agg, as_)
    channel = f"agg{agg}"
    with session() as s:
        pid = _period(s, identity, period, day)
        stored = query(s.meter(identity, agg), "GetReadings", pid)
        summary = query(s.meter(identity, agg), "DeliverySummary", pid)
        d, t = pid.split("-")
        anchored = query(s.market(identity), "GetHistory", f"delivery~{d}~{t}~{agg:04d}")
    history = anchored["history"]
    if not history or history[0]["value"] is None:
        raise CliError(f"the delivery of Agg{agg} for {pid} is not anchored on vpp-main yet")
    root = history[0]["value"].get("merkle_root")
    leaves = [{**r, "slot": None} for r in stored["readings"]] + stored["interval_readings"]
    ordered = merkle.ordered(leaves)
    index = next(
        (i for i, r in enumerate(ordered) if r["meter"] == device and r.get("slot") == slot), None
    )
    if index is None:
        raise CliError(f"{device} has no reading for {pid} slot {slot} on {channel}")
    claim = dict(ordered[index])
    if exported_wh is not None:
        claim["exported_wh"] = exported_wh
    path = merkle.proof(channel, leaves, index)
    verified = root == summary["merkle_root"] and merkle.verify(channel, claim, path, root)
    row = {
        "period": pid,
        "meter": device,
        "slot": "hourly" if slot is None else slot,
        "exported_wh": claim["exported_wh"],
        "imported_wh": claim["imported_wh"],
        "path": len(path),
        "anchored_root": root,
        "verified": verified,
    }
    emit([row], PROOF_COLUMNS, output, title=f"Proof on {channel}")
    if not verified:
        raise CliError(f"the reading does not hash to the root anchored for Agg{agg} {pid}")
