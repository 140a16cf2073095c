"""`vppctl watch`: chaincode events as they are committed, until Ctrl-C.

The Gateway's event stream survives peer restarts (vpp_gateway.events);
``--from-block`` replays history, and the block printed on exit is the
checkpoint to resume from. Machine formats are streamed: JSON Lines (one
object per event) and CSV rows, so a pipe sees each event at once.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from vppctl import options, views
from vppctl.errors import usage_error
from vppctl.output import Column as _Column
from vppctl.output import Output, OutputOption, stderr, stdout, to_csv
from vppctl.registry import command
from vppctl.session import MAIN_CHANNEL, MARKET, METER, session

commands = typer.Typer()  # this module's commands; main.py adds it to the app

CSV_COLUMNS = [
    _Column("block", "block"),
    _Column("tx_id", "tx_id"),
    _Column("event", "event"),
    _Column("payload", "payload"),
]


def _kwh(wh: int | None) -> str:
    return f"{views.kwh(wh)} kWh"


def summarize(name: str, payload: dict[str, Any]) -> str:
    """One human line for a known event (the raw payload for others)."""
    try:
        return _summary(name, payload)
    except (KeyError, TypeError, AttributeError):  # a payload of another chaincode version
        return json.dumps(payload, sort_keys=True)


def _summary(name: str, payload: dict[str, Any]) -> str:
    if name == "PeriodCleared":
        return (
            f"{payload['period']}: {payload['orders']} orders, {payload['matches']} matches, "
            f"P2P {_kwh(payload['p2p_wh'])}, grid buys {_kwh(payload['grid_bought_wh'])}, "
            f"supplies {_kwh(payload['grid_supplied_wh'])}"
        )
    if name == "ContractSignature":
        return f"{payload['contract']} signed by Agg{payload['signed_by']}"
    if name == "ContractSigned":
        signer = payload["signed_by"]
        return f"{payload['contract']} is {payload['status']} (last signature by Agg{signer})"
    if name == "ContractsVoided":
        return f"{payload['period']}: voided {', '.join(payload['voided'])}"
    if name == "PeriodSettled":
        deltas = ", ".join(
            f"{w} {views.yuan(d):+}" for w, d in sorted(payload["wallet_deltas"].items())
        )
        return f"{payload['period']} settled: {deltas} yuan"
    if name == "DayClosed":
        reps = ", ".join(f"{a} {views.ppm(r)}" for a, r in payload["reputations_ppm"].items())
        return f"day {payload['day']} closed: R {reps}"
    if name == "PeriodSealed":
        return (
            f"{payload['channel']} {payload['period']} sealed: exported "
            f"{_kwh(payload['exported_wh'])}, imported {_kwh(payload['imported_wh'])}"
        )
    return json.dumps(payload, sort_keys=True)


def _payload(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode(errors="replace")


@command(
    commands,
    "watch",
    epilog=(
        "Examples:\n\n"
        "  vppctl watch                               # market events from now on; Ctrl-C stops\n\n"
        "  vppctl watch --from-block 0 --output json  # the whole history as JSON Lines\n\n"
        "  vppctl watch --channel agg3                # the meter chaincode of Agg3\n\n"
        "On exit the last block is printed on stderr: resume with --from-block."
    ),
)
def watch(
    from_block: Annotated[
        int | None,
        typer.Option("--from-block", metavar="N", min=0, help="Replay from block N."),
    ] = None,
    channel: Annotated[
        str,
        typer.Option("--channel", help="vpp-main (market) or aggN (that aggregator's meter)."),
    ] = MAIN_CHANNEL,
    count: Annotated[
        int | None, typer.Option("--count", metavar="N", min=1, help="Stop after N events.")
    ] = None,
    idle: Annotated[
        float | None,
        typer.Option("--idle-timeout", metavar="S", help="Stop after S seconds without events."),
    ] = None,
    as_: options.AsOption = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Print chaincode events (clearing, signatures, settlement, days, seals) as they commit."""
    agg = options.agg_of_identity(channel + "-") if channel != MAIN_CHANNEL else None
    chaincode = MARKET if channel == MAIN_CHANNEL else METER
    if channel != MAIN_CHANNEL and agg is None:
        raise usage_error(f"--channel {channel!r}: is not vpp-main or aggN")
    seen = 0
    last: int | None = None
    console = stdout()
    if output is Output.CSV:
        typer.echo(to_csv([], CSV_COLUMNS), nl=False)
    with session() as s:
        network = s.gateway(options.reader(agg, as_)).network(channel)
        stream = network.chaincode_events(chaincode, start_block=from_block, timeout=idle)
        if output is Output.TABLE:
            stderr().print(f"watching {chaincode} on {channel}; Ctrl-C stops")
        try:
            for event in stream:
                payload = _payload(event.payload)
                last = event.block_number
                record = {
                    "block": event.block_number,
                    "tx_id": event.tx_id,
                    "event": event.event_name,
                    "payload": payload,
                }
                if output is Output.JSON:
                    typer.echo(json.dumps(record, sort_keys=True))
                elif output is Output.CSV:
                    row = {**record, "payload": json.dumps(payload, sort_keys=True)}
                    typer.echo(to_csv([row], CSV_COLUMNS).split("\n", 1)[1], nl=False)
                else:
                    text = (
                        summarize(event.event_name, payload)
                        if isinstance(payload, dict)
                        else payload
                    )
                    console.print(f"block {event.block_number:>6}  {event.event_name:<16} {text}")
                seen += 1
                if count is not None and seen >= count:
                    break
        except KeyboardInterrupt:
            pass
        finally:
            stream.close()
    if last is not None:
        stderr().print(f"stopped after block {last} (resume with --from-block {last})")
