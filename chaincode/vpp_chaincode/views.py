"""Derived views of the market's state: contract status and what a period still lacks.

A P2P contract's SIGNED status is derived from its two signature keys rather
than stored in the contract, so the two parties never write the same key and
can sign in the same block without an MVCC conflict.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from vpp_shim.api import Stub

from vpp_chaincode import ids, state
from vpp_chaincode.ids import PeriodId, agg_name
from vpp_chaincode.ledger import json_arg, records
from vpp_chaincode.state import MATCHED, P2P_KIND, SIGNED


def contracts_with_status(stub: Stub, period: PeriodId | None) -> list[dict[str, Any]]:
    """Contracts of ``period`` (None: all), each with ``signatures`` and its current status."""
    parts = period.key_parts if period is not None else []
    signed: dict[tuple[str, int], list[int]] = defaultdict(list)
    for sig in records(stub, "signature", *parts):
        period_id, seq = sig["contract"].rsplit("-", 1)
        signed[(period_id, int(seq))].append(sig["agg"])
    result = []
    for c in records(stub, "contract", *parts):
        if c["kind"] == P2P_KIND:
            sigs = sorted(signed.get((c["period"], c["seq"]), []))
            status = c["status"]
            if status == MATCHED and {c["seller"], c["buyer"]} <= set(sigs):
                status = SIGNED
            c = {**c, "signatures": sigs, "status": status}
        result.append(c)
    return result


def missing_for_settlement(stub: Stub, period: PeriodId) -> list[str]:
    """Everything that keeps a cleared period from settling, one line per missing item."""
    missing = []
    for c in contracts_with_status(stub, period):
        if c["kind"] == P2P_KIND and c["status"] == MATCHED:
            lacking = [a for a in (c["seller"], c["buyer"]) if a not in c["signatures"]]
            names = " and ".join(agg_name(a) for a in lacking)
            missing.append(
                f"contract {c['id']} ({agg_name(c['seller'])} -> {agg_name(c['buyer'])}) "
                f"lacks the signature of {names} (or VoidUnsigned)"
            )
    anchored = {d["agg"] for d in records(stub, "delivery", *period.key_parts)}
    for order in records(stub, "order", *period.key_parts):
        if order["agg"] not in anchored:
            missing.append(f"delivery of {agg_name(order['agg'])} is not anchored (AnchorDelivery)")
    return missing


def calendar(stub: Stub) -> dict[str, Any]:
    """Every day that has periods, oldest first, each with ``periods: [{period, t, status}]``.

    Two reads whatever the number of periods: the range of ``day~`` keys and one
    partial-key query over all ``period~`` keys (in day, then hour order).
    """
    periods: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for p in records(stub, "period"):
        periods[p["day"]].append({"period": p["period"], "t": p["t"], "status": p["status"]})
    # Range ends are exclusive; the NUL after the last possible day includes it.
    last_possible = state.day_key(ids.MAX_DAY) + "\x00"
    days = []
    for _, raw in stub.get_state_by_range(state.day_key(1), last_possible):
        day = json_arg("day", raw.decode())
        days.append({**day, "periods": periods.get(day["day"], [])})
    return {"last_closed_day": state.last_closed_day(stub), "days": days}
