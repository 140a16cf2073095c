"""Sealing a period's delivery on ``aggN``: when, by whom, and what the seal says.

market-rules.md, "Trust rules": a period is sealed only once it is cleared
on vpp-main (read cross-channel from the market's ``GetPeriod``), by AggN's
admin once every certified meter has reported, or by the VPPO admin alone
only after ``cleared_at + seal_deadline_s`` (ledger time; the deadline is
the market's configuration ``GetConfig market``). A VPPO seal lists the
meters that never reported; they count as 0 and the anchor and the
settlement carry the list. So the VPPO cannot erase a delivery by sealing
early, and an aggregator cannot hold a period hostage by never sealing.

The market is read on each endorser's own copy of vpp-main: both endorsers
must see the period cleared (and the same ``cleared_at``) to agree.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from vpp_market import merkle
from vpp_shim.api import ChaincodeError, Stub, to_json_bytes
from vpp_shim.codes import Code

from vpp_chaincode import access, intervals
from vpp_chaincode.ids import PeriodId
from vpp_chaincode.ledger import get_json, put_json, records
from vpp_chaincode.metering import (
    DEFAULT_SEAL_DEADLINE_S,
    MARKET_CHAINCODE,
    MARKET_CHANNEL,
    agg_mspid,
    now_s,
    owner,
    seal_key,
)

SEALABLE = ("CLEARED", "SETTLED")


def market_period(stub: Stub, pid: PeriodId, action: str) -> dict[str, Any]:
    """The market's record of the period, read on this endorser's copy of vpp-main."""
    response = stub.invoke_chaincode(
        MARKET_CHAINCODE, [b"GetPeriod", pid.id.encode()], channel=MARKET_CHANNEL
    )
    if response.status != 200:
        raise ChaincodeError(
            Code.PERIOD_WRONG_STATE,
            f"{action}: period {pid} is not cleared on {MARKET_CHANNEL} "
            f"({response.message or 'no such period'})",
        )
    record = json.loads(response.payload)
    if record.get("status") not in SEALABLE:
        raise ChaincodeError(
            Code.PERIOD_WRONG_STATE,
            f"{action}: period {pid} is {record.get('status')} on {MARKET_CHANNEL}; "
            "a period is sealed only once it is cleared",
        )
    return record


def seal_deadline_s(stub: Stub, market: dict[str, Any]) -> int:
    """The period's own ``seal_deadline_s`` (copied from the market configuration when it
    opened, so the VPPO cannot shorten it later), else the market's current one, else
    DEFAULT_SEAL_DEADLINE_S."""
    value = market.get("seal_deadline_s")
    if _seconds(value):
        return value
    response = stub.invoke_chaincode(
        MARKET_CHAINCODE, [b"GetConfig", b"market"], channel=MARKET_CHANNEL
    )
    if response.status == 200:
        value = json.loads(response.payload).get("seal_deadline_s")
        if _seconds(value):
            return value
    return DEFAULT_SEAL_DEADLINE_S


def _seconds(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def period_readings(stub: Stub, pid: PeriodId) -> list[dict[str, Any]]:
    """Hourly and interval readings of the period, as Merkle leaves (slot None = hourly)."""
    hourly = [{**r, "slot": None} for r in records(stub, "reading", *pid.key_parts)]
    return hourly + intervals.period_interval_readings(stub, pid)


def seal(stub: Stub, pid: PeriodId) -> dict[str, Any]:
    """SealPeriod: checks who may seal now, then writes the summary once and emits it."""
    action = "SealPeriod"
    agg = owner(stub)
    caller = stub.caller
    by_aggregator = caller.mspid == agg_mspid(agg) and access.is_admin(caller)
    if not by_aggregator and not access.is_vppo_admin(caller):
        raise ChaincodeError(
            Code.NOT_AUTHORIZED,
            f"{action}: only the {agg_mspid(agg)} admin or the VPPO admin may do this, "
            f"not {access.describe(caller)}",
        )
    if get_json(stub, seal_key(pid)) is not None:
        raise ChaincodeError(Code.PERIOD_SEALED, f"{action}: period {pid} is already sealed")
    market = market_period(stub, pid, action)
    readings = period_readings(stub, pid)
    reported = {r["meter"] for r in readings}
    meters = sorted(m["meter"] for m in records(stub, "meter"))
    missing = [m for m in meters if m not in reported]
    deadline_at = None
    if by_aggregator:
        if missing:
            raise ChaincodeError(
                Code.NOT_READY,
                f"{action}: meters {', '.join(missing)} have not reported for {pid}; "
                "AggN seals once every certified meter has (or the VPPO after the deadline)",
            )
    else:
        cleared_at = market.get("cleared_at")
        if not isinstance(cleared_at, int):
            raise ChaincodeError(
                Code.NOT_READY,
                f"{action}: period {pid} has no cleared_at on {MARKET_CHANNEL}; "
                "the VPPO's deadline cannot be computed",
            )
        deadline_at = cleared_at + seal_deadline_s(stub, market)
        if now_s(stub) < deadline_at:
            raise ChaincodeError(
                Code.TOO_EARLY,
                f"{action}: the VPPO may seal {pid} alone only from {deadline_at} "
                f"(cleared_at {cleared_at} + seal deadline; ledger time now {now_s(stub)}, "
                f"{deadline_at - now_s(stub)} s to go); {agg_mspid(agg)} may seal before",
            )
    exported = sum(r["exported_wh"] for r in readings)
    imported = sum(r["imported_wh"] for r in readings)
    hourly = [r for r in readings if r["slot"] is None]
    summary = {
        "channel": stub.channel_id,
        "agg": agg,
        "period": pid.id,
        "exported_wh": exported,
        "imported_wh": imported,
        "net_exported_wh": exported - imported,
        "readings": len(readings),
        "interval_readings": len(readings) - len(hourly),
        "meters": len(meters),
        "missing_meters": missing,
        "sha256": summary_digest(stub.channel_id, pid.id, hourly),
        "merkle_root": merkle.root(stub.channel_id, readings),
        "sealed_by": caller.mspid,
        "sealed_as": "aggregator" if by_aggregator else "vppo-after-deadline",
        "deadline_at": deadline_at,
        "cleared_at": market.get("cleared_at"),
        "sealed_tx": stub.tx_id,
        "sealed_ns": stub.timestamp_ns,
    }
    put_json(stub, seal_key(pid), summary)
    stub.set_event("PeriodSealed", to_json_bytes(summary))
    return summary


def summary_digest(channel: str, period: str, readings: list[dict[str, Any]]) -> str:
    """sha256 (hex) over the canonical hourly readings of a period, recomputable from GetReadings.

    The hashed document is ``to_json_bytes({"channel", "period", "readings":
    [{"meter", "exported_wh", "imported_wh"}, ...]})`` with readings in meter id
    order: canonical JSON, so any party gets the same bytes. Interval readings
    are committed to by ``merkle_root`` instead.
    """
    canonical = [
        {"meter": r["meter"], "exported_wh": r["exported_wh"], "imported_wh": r["imported_wh"]}
        for r in sorted(readings, key=lambda r: r["meter"])
    ]
    document = {"channel": channel, "period": period, "readings": canonical}
    return hashlib.sha256(to_json_bytes(document)).hexdigest()
