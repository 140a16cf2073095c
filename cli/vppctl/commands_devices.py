"""`vppctl devices simulate|alarms|list|show|check|config`: devices on channel agg<N>.

Devices are meters with their own key whose configuration the Grid
certifies (software, strategy and settings fingerprints); the aggregator's
gateway reports what they run and submits their signed 15-minute readings
in batches (meter chaincode; docs/chaincode-api.md). ``simulate`` plays a
fleet with faults; ``alarms --watch`` follows the consistency alarms.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from vpp_network import identities

from vppctl import device_sim, options, site_devices
from vppctl.errors import CliError, usage_error
from vppctl.output import Column, Output, OutputOption, emit, num, stderr, stdout
from vppctl.periods import period_id
from vppctl.registry import METERS, command
from vppctl.session import METER, query, query_meter, session, submit, submit_meter

commands = typer.Typer()  # this module's commands; main.py adds it to the app
devices_app = typer.Typer(
    name="devices",
    help="Devices on agg<N>: certified configuration, alarms, signed readings, a simulator.",
    no_args_is_help=True,
)
commands.add_typer(devices_app, rich_help_panel=METERS)

ALARM_COLUMNS = [
    Column("device", "Device"),
    Column("field", "Field"),
    Column("expected", "Expected"),
    Column("found", "Found"),
    num("raised_at", "Raised at (s)"),
]
DEVICE_COLUMNS = [
    Column("device", "Device"),
    num("version", "Version"),
    Column("software", "Software"),
    Column("strategy", "Strategy"),
    Column("settings", "Settings"),
    Column("certified_by", "Certified by"),
]
SIM_COLUMNS = [
    Column("channel", "Channel"),
    Column("periods", "Periods"),
    num("devices", "Devices"),
    num("newly_certified", "Newly certified"),
    num("readings", "Readings committed"),
    num("batches", "Batches"),
    num("refused_batches", "Refused batches"),
    num("alarms_raised", "Alarms raised"),
    num("seconds", "Seconds"),
    num("readings_per_s", "Readings/s"),
]


def _short(fp: Any) -> Any:
    return fp[:12] + "…" if isinstance(fp, str) and len(fp) == 64 else fp


def alarm_row(alarm: dict[str, Any], full: bool = False) -> dict[str, Any]:
    show = (lambda v: v) if full else _short
    return {
        "device": alarm["device"],
        "field": alarm["field"],
        "expected": show(alarm["expected"]),
        "found": show(alarm["found"]),
        "raised_at": alarm["raised_at"],
    }


def _device_folder(agg: int) -> Path:
    """Where the simulator keeps its devices' keys: next to the network's wallet."""
    return site_devices.device_folder(agg)


def _start_period(s: Any, identity: str, period: str | None) -> tuple[int, int]:
    spec = options.period_spec(period) if period else None
    if spec is not None and spec.day is not None:
        return spec.day, spec.hour
    calendar = query(s.market(identity), "GetCalendar")
    day = max([calendar["last_closed_day"], *(d["day"] for d in calendar["days"])]) + 1
    return day, spec.hour if spec is not None else 1


@command(
    devices_app,
    "simulate",
    path="devices simulate",
    epilog=(
        "Examples:\n\n"
        "  vppctl devices simulate --agg 3 --devices 200 --hours 2\n\n"
        "  vppctl devices simulate --agg 3 --devices 20 --hours 1 --period 5-13 "
        "--fault firmware:2 --fault forged --fault missing\n\n"
        "Sets up the fleet once (agg<N>-admin proposes each device's resource, grid-admin "
        "certifies it and the device), the gateway (agg<N>-admin) reports fingerprints and "
        "sends signed readings in batches. Faults: firmware, stuck, missing, forged [:N]. "
        "Without --period: hour 1.. of the first day without periods."
    ),
)
def devices_simulate(
    agg: options.AggChannelOption,
    devices: Annotated[int, typer.Option("--devices", min=1, max=9999, help="Fleet size.")] = 20,
    hours: Annotated[int, typer.Option("--hours", min=1, max=24, help="Hours to play.")] = 1,
    period: Annotated[
        str | None,
        typer.Option("--period", "-t", metavar="DAY-T", help="First period (default: see below)."),
    ] = None,
    batch: Annotated[
        int, typer.Option("--batch", min=1, max=2000, help="Readings per transaction.")
    ] = 500,
    fault: Annotated[
        list[str] | None,
        typer.Option("--fault", metavar="KIND[:N]", help="firmware, stuck, missing, forged."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Profiles' random seed.")] = 1,
    output: OutputOption = Output.TABLE,
) -> None:
    """Play a fleet of devices: certify, report fingerprints, sign and batch readings."""
    try:
        faults = device_sim.Faults.parse(fault or [])
    except ValueError as exc:
        raise usage_error(str(exc)) from exc
    gateway_id, channel = identities.agg_admin(agg), f"agg{agg}"
    with session() as s:
        day, first_hour = _start_period(s, gateway_id, period)
        if first_hour + hours - 1 > 24:
            raise usage_error(f"--hours {hours}: from hour {first_hour} runs past hour 24")
        gateway = s.meter(gateway_id, agg)
        certifier = s.meter(identities.GRID_ADMIN, agg)
        fleet = device_sim.fleet(agg, devices, _device_folder(agg))
        stats = device_sim.Stats(devices=len(fleet))
        quiet = lambda c, f, *a: submit(c, f, *a, message=f"{f} on {channel}")  # noqa: E731
        newly = device_sim.setup(gateway, certifier, fleet, quiet)
        device_sim.report_fingerprints(gateway, fleet, faults, quiet, stats)
        slots = 3600 // query(gateway, "GetMeterConfig")["interval_s"]
        periods = [(period_id(day, h), h) for h in range(first_hour, first_hour + hours)]
        items = device_sim.readings(channel, fleet, periods, slots, faults, seed)
        started = time.monotonic()
        device_sim.submit_batches(gateway, items, batch, quiet, stats)
        seconds = time.monotonic() - started
    for message in stats.refused:
        stderr().print(f"refused and resent without the named reading: {message}")
    row = {
        "channel": channel,
        "periods": f"{periods[0][0]}..{periods[-1][0]}",
        "devices": stats.devices,
        "newly_certified": newly,
        "readings": stats.readings_committed,
        "batches": stats.batches,
        "refused_batches": len(stats.refused),
        "alarms_raised": stats.alarms_raised,
        "seconds": round(seconds, 1),
        "readings_per_s": round(stats.readings_committed / seconds, 1) if seconds else None,
    }
    emit([row], SIM_COLUMNS, output, title=f"Device fleet on {channel}")


@command(
    devices_app,
    "alarms",
    path="devices alarms",
    epilog=(
        "Examples:\n\n"
        "  vppctl devices alarms --agg 3\n\n"
        "  vppctl devices alarms --agg 3 --watch      # follow raised/cleared alarms; Ctrl-C\n\n"
        "An alarm is cleared only by a matching report or a new certification."
    ),
)
def devices_alarms(
    agg: options.AggChannelOption,
    device: Annotated[
        str | None, typer.Option("--device", metavar="ID", help="One device only.")
    ] = None,
    watch: Annotated[bool, typer.Option("--watch", help="Follow alarms as they change.")] = False,
    idle: Annotated[
        float | None,
        typer.Option("--idle-timeout", metavar="S", help="With --watch: stop after S idle s."),
    ] = None,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Open consistency alarms on agg<N> (GetAlarms); --watch follows DeviceAlarms events."""
    identity = options.reader(agg, as_)
    with session() as s:
        alarms = query(s.meter(identity, agg), "GetAlarms", device or "")["alarms"]
        if not watch:
            emit(
                [alarm_row(a) for a in alarms],
                ALARM_COLUMNS,
                output,
                title=f"Alarms on agg{agg}",
                empty="no open alarms",
            )
            return
        network = s.gateway(identity).network(f"agg{agg}")
        height = network.block_height()
        stream = network.chaincode_events(METER, start_block=height, timeout=idle)
        console = stdout()
        if output is Output.TABLE:
            stderr().print(f"{len(alarms)} open alarms on agg{agg}; watching, Ctrl-C stops")
        try:
            for event in stream:
                if event.event_name not in ("DeviceAlarms", "DeviceCertified"):
                    continue
                payload = json.loads(event.payload)
                for state, items in (
                    ("raised", payload.get("raised", [])),
                    ("cleared", payload.get("cleared", [])),
                ):
                    for a in items:
                        if device and a["device"] != device:
                            continue
                        if output is Output.JSON:
                            typer.echo(
                                json.dumps(
                                    {"block": event.block_number, "state": state, **a},
                                    sort_keys=True,
                                )
                            )
                        else:
                            console.print(
                                f"block {event.block_number:>6}  {state:<7} {a['device']} "
                                f"{a['field']}: expected {_short(a['expected'])}, "
                                f"found {_short(a['found'])}"
                            )
        except KeyboardInterrupt:
            pass
        finally:
            stream.close()


@command(
    devices_app,
    "list",
    path="devices list",
    epilog="Examples:\n\n  vppctl devices list --agg 3 --output json",
)
def devices_list(
    agg: options.AggChannelOption, as_: options.AsOption = None, output: OutputOption = Output.TABLE
) -> None:
    """Certified devices on agg<N>: version and fingerprints (GetDevices)."""
    found = query_meter(options.reader(agg, as_), agg, "GetDevices")["devices"]
    rows = (
        [{**d, **{f: _short(d[f]) for f in ("software", "strategy", "settings")}} for d in found]
        if output is Output.TABLE
        else found
    )
    emit(rows, DEVICE_COLUMNS, output, title=f"Devices on agg{agg}", empty="no devices")


@command(
    devices_app,
    "show",
    path="devices show",
    epilog="Examples:\n\n  vppctl devices show agg3-d0001 --agg 3",
)
def devices_show(
    device: Annotated[str, typer.Argument(metavar="DEVICE", help="e.g. agg3-d0001.")],
    agg: options.AggChannelOption,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """A device's certification history, last report and open alarms (GetDevice)."""
    view = query_meter(options.reader(agg, as_), agg, "GetDevice", device)
    if output is Output.JSON:
        typer.echo(json.dumps(view, indent=2, sort_keys=True))
        return
    emit(view["history"], DEVICE_COLUMNS, output, title=f"Certifications of {device}")
    emit(
        [alarm_row(a) for a in view["alarms"]],
        ALARM_COLUMNS,
        output,
        title="Open alarms",
        empty="no open alarms",
    )


@command(
    devices_app,
    "check",
    path="devices check",
    epilog="Examples:\n\n  vppctl devices check --agg 3   # as vppo-admin",
)
def devices_check(
    agg: options.AggChannelOption, as_: options.AsOption = None, output: OutputOption = Output.TABLE
) -> None:
    """Raise missing-report alarms for devices silent over report_interval_s (CheckReports)."""
    result = submit_meter(
        options.operator(as_), agg, "CheckReports", message=f"checking reports on agg{agg}"
    )
    title = f"New missing-report alarms on agg{agg}"
    emit(
        [alarm_row(a) for a in result["raised"]],
        ALARM_COLUMNS,
        output,
        title=title,
        empty="every device reported in time",
    )


@command(
    devices_app,
    "config",
    path="devices config",
    epilog=(
        "Examples:\n\n"
        "  vppctl devices config --agg 3                           # show\n\n"
        "  vppctl devices config --agg 3 --interval 900 --report-interval 3600   # grid-admin"
    ),
)
def devices_config(
    agg: options.AggChannelOption,
    interval: Annotated[
        int | None, typer.Option("--interval", metavar="S", help="Reading interval (s).")
    ] = None,
    report_interval: Annotated[
        int | None,
        typer.Option("--report-interval", metavar="S", help="Longest silence before an alarm."),
    ] = None,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Show or (as grid-admin) set the channel's interval and report settings."""
    change = {
        k: v
        for k, v in (("interval_s", interval), ("report_interval_s", report_interval))
        if v is not None
    }
    if change:
        result = submit_meter(
            options.grid_admin(as_),
            agg,
            "SetMeterConfig",
            json.dumps(change),
            message=f"setting the meter configuration of agg{agg}",
        )
    else:
        result = query_meter(options.reader(agg, as_), agg, "GetMeterConfig")
    if not isinstance(result, dict):
        raise CliError(f"unexpected answer {result!r}")
    emit(
        [result],
        [num("interval_s", "Interval s"), num("report_interval_s", "Report every s")],
        output,
        title=f"Meter configuration of agg{agg}",
    )
