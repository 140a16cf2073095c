"""`vppctl meter register|read|seal|readings|summary|resources`: an aggregator's own channel.

The ``meter`` chaincode runs on channel ``agg<N>``: the aggregator's admin
registers its resources and meters, each meter records one reading per
period with its own certificate, and sealing freezes the period's readings
into the delivery summary the market anchors. Energy is typed in kWh (3
decimals) and sent in Wh, the chaincode's unit.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer
from vpp_market.units import format_kwh, parse_kw, parse_kwh
from vpp_network import identities

from vppctl import options, views
from vppctl.output import Column, Output, OutputOption, emit, num
from vppctl.periods import Calendar, period_id
from vppctl.registry import METERS, command
from vppctl.session import Session, query, session, submit

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
]


class Kind(StrEnum):
    PV = "PV"
    WT = "WT"
    ESS = "ESS"
    LOAD = "load"


AggRequired = Annotated[
    int, typer.Option("--agg", "-a", metavar="N", min=1, help="Aggregator number (channel aggN).")
]


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


@command(
    meter_app,
    "register",
    path="meter register",
    epilog=(
        "Examples:\n\n"
        "  vppctl meter register --agg 3 agg3-pv --kind PV --capacity 300 --meter agg3-m1\n\n"
        "Runs as agg<N>-admin."
    ),
)
def meter_register(
    resource: Annotated[str, typer.Argument(metavar="RESOURCE_ID", help="e.g. agg3-pv.")],
    agg: AggRequired,
    kind: Annotated[Kind, typer.Option("--kind", case_sensitive=False, help="PV, WT, ESS, load.")],
    capacity: Annotated[str, typer.Option("--capacity", metavar="KW", help="Capacity in kW.")],
    meter: Annotated[
        str | None,
        typer.Option("--meter", metavar="ID", help="Its meter, agg<N>-... (default agg<N>-m1)."),
    ] = None,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Register a flexible resource and the meter measuring it (RegisterResource)."""
    parse_kw(capacity, "--capacity")
    with session() as s:
        record = submit(
            s.meter(options.agg_admin(agg, as_), agg),
            "RegisterResource",
            resource,
            kind.value,
            capacity,
            meter or identities.meter_id(agg, 1),
            message=f"registering {resource} on agg{agg}",
        )
    emit([resource_row(record)], RESOURCE_COLUMNS, output, title=f"Registered on agg{agg}")


@command(
    meter_app,
    "read",
    path="meter read",
    epilog=(
        "Examples:\n\n"
        "  vppctl meter read --agg 3 --period 2-13 --imported 285.6\n\n"
        "  vppctl meter read --agg 1 --period 13 --exported 318.7 --as agg1-meter2\n\n"
        "Runs as agg<N>-meter1 unless --as; a meter records only its own reading, once."
    ),
)
def meter_read(
    agg: AggRequired,
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
        "Runs as agg<N>-admin (or --as vppo-admin). Readings of the period are closed after."
    ),
)
def meter_seal(
    agg: AggRequired,
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
    agg: AggRequired,
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
    agg: AggRequired,
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
    agg: AggRequired,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Resources and meters registered on agg<N> (GetResources)."""
    with session() as s:
        result = query(s.meter(options.reader(agg, as_), agg), "GetResources")
    emit(
        [resource_row(r) for r in result["resources"]],
        RESOURCE_COLUMNS,
        output,
        title=f"Resources on agg{agg}",
        empty="no resources registered",
    )
