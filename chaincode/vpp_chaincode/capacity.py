"""Bounded orders: the market learns each aggregator's certified capacity from its agg<N>.

Trust rule (market-rules.md): registered capacity bounds what an aggregator
may offer or bid, ``quantity <= capacity x 1 h``: a seller by its supply
capacity (PV, WT, storage), a buyer by its load capacity (load, storage).
Capacity is certified on the aggregator's own channel agg<N> (the meter
chaincode: AggN proposes a resource, the Grid certifies it), which the
market on vpp-main cannot read at commit time. So:

- ``SyncCapacity(agg)`` copies the meter chaincode's ``GetCapacity`` from
  agg<N> into ``capacity~<NNNN>`` on vpp-main. It takes no number from its
  caller: each endorsing peer (the market's policy is VPPO AND Grid, both
  members of every agg<N>) runs GetCapacity on its own validated copy of
  agg<N>, and the write set, which holds the numbers, is signed by both. An
  aggregator cannot make it say more than the Grid certified; a peer that
  answered differently would produce a different write set, and the
  transaction would not be endorsed (docs/security.md, "Bounded orders").
- ``SubmitOrder(s)`` reads that one key (one per aggregator, written only by
  SyncCapacity: not a hot key) and refuses an order above its bound,
  naming the quantity and the bound. Without a synced capacity an
  aggregator may not order at all (``NO_CAPACITY``): no bound means no
  certified resource, and "unbounded" is exactly the attack.

Why a stored copy and not a cross-channel read inside every SubmitOrder:
the read is no better validated there (Fabric never re-checks cross-channel
reads at commit), it would cost every order a second chaincode execution on
every endorser and a range scan of agg<N>'s resources, and the copy leaves
a record on vpp-main (who synced, which transaction) that every member can
see and audit against agg<N>. The price is staleness: a certification or a
retirement on agg<N> counts on vpp-main from the next SyncCapacity, which
AggN has every reason to run after a certification and the Grid (or the
VPPO) after a retirement.
"""

from __future__ import annotations

import json
from typing import Any

from vpp_market.model import Side
from vpp_market.units import format_kwh
from vpp_shim.api import ChaincodeError, Stub
from vpp_shim.codes import Code, split_wire_message

from vpp_chaincode import access, ids, state
from vpp_chaincode.ids import agg_key, agg_name
from vpp_chaincode.inputs import OrderInput
from vpp_chaincode.ledger import get_json, json_arg, key, put_json, records

METER_CHAINCODE = "meter"
PERIOD_S = 3600  # every market period is one hour: a bound of P W is P x 1 h = P Wh


def capacity_key(agg: int) -> str:
    return key("capacity", agg_key(agg))


def bound_wh(record: dict[str, Any], side: Side) -> int:
    """The most an order of ``side`` may hold: certified capacity x 1 h (W x h = Wh)."""
    capacity_w = record["supply_w"] if side is Side.SELL else record["load_w"]
    return capacity_w * PERIOD_S // 3600


def _may_sync(stub: Stub, registered: dict[str, Any]) -> bool:
    """The parties of agg<N>: its own traders and admin, the VPPO admin, the Grid admin."""
    caller = stub.caller
    return (
        access.is_trader_of(caller, registered["mspid"])
        or access.is_vppo_admin(caller)
        or access.is_grid_admin(caller)
    )


def sync(stub: Stub, agg_text: str) -> dict[str, Any]:
    """SyncCapacity: ``capacity~<agg>`` := GetCapacity of the meter chaincode on agg<N>."""
    action = "SyncCapacity"
    agg = ids.parse_agg(agg_text)
    registered = state.aggregator(stub, agg, action)
    if not _may_sync(stub, registered):
        raise ChaincodeError(
            Code.NOT_AUTHORIZED,
            f"{action}: {access.describe(stub.caller)} may not sync {agg_name(agg)}'s capacity "
            f"(only {registered['mspid']} traders and admins, the VPPO admin or the Grid admin)",
        )
    # Read, not written blind: the key's version enters the read set, so a sync endorsed
    # earlier and held back by its client is invalid (MVCC) once a later sync has committed.
    # Without it, AggN could keep a sync endorsed while a resource was still certified and
    # submit it after the Grid retired the resource and synced: the old bound would return.
    stub.get_state(capacity_key(agg))
    channel = ids.agg_channel(agg)
    # A query on this endorser's own copy of agg<N>: not in our read set, never re-validated.
    response = stub.invoke_chaincode(METER_CHAINCODE, [b"GetCapacity"], channel=channel)
    if response.status != 200:
        inner_code, inner_message = split_wire_message(response.message)
        raise ChaincodeError(
            inner_code or Code.NOT_REGISTERED,
            f"{action}: channel {channel} gave no certified capacity for {agg_name(agg)}: "
            f"{inner_message}",
        )
    answer = json_arg("GetCapacity", response.payload.decode())
    numbers = [answer.get(f) for f in ("supply_w", "load_w")] if isinstance(answer, dict) else []
    if (
        not isinstance(answer, dict)
        or answer.get("agg") != agg
        or not all(type(n) is int and n >= 0 for n in numbers)
    ):
        raise ChaincodeError(
            Code.DELIVERY_MISMATCH,
            f"{action}: channel {channel} answered {json.dumps(answer)[:120]}, not the "
            f"capacity of {agg_name(agg)}",
        )
    record = {
        "agg": agg,
        "channel": channel,
        "supply_w": answer["supply_w"],
        "load_w": answer["load_w"],
        "synced_by": stub.caller.mspid,
        "synced_tx": stub.tx_id,
        "synced_ns": stub.timestamp_ns,
    }
    # Two syncs of one aggregator in one block: the first commits, the second fails MVCC
    # (retryable; it would have written the same numbers or older ones).
    put_json(stub, capacity_key(agg), record)
    return record


def get(stub: Stub, agg_text: str) -> dict[str, Any]:
    """GetCapacity: the synced record of one aggregator."""
    agg = ids.parse_agg(agg_text)
    record = get_json(stub, capacity_key(agg))
    if record is None:
        raise ChaincodeError(Code.NO_CAPACITY, _never_synced("GetCapacity", agg))
    return record


def all_synced(stub: Stub) -> list[dict[str, Any]]:
    """GetCapacities: every synced record, by aggregator number."""
    return records(stub, "capacity")


def _never_synced(action: str, agg: int) -> str:
    return (
        f"{action}: {agg_name(agg)} has no certified capacity on vpp-main; certify its "
        f"resources on {ids.agg_channel(agg)}, then SyncCapacity "
        f"(vppctl capacity sync --agg {agg})"
    )


def require_within(raw: bytes, o: OrderInput, action: str) -> None:
    """Refuses an order above its bound, naming the quantity and the bound (kWh).

    ``raw``: the aggregator's ``capacity~`` value, read by the caller with the
    order's other keys (one round trip); empty if never synced: refused.
    """
    if not raw:
        raise ChaincodeError(Code.NO_CAPACITY, _never_synced(action, o.agg))
    record = json.loads(raw)
    bound = bound_wh(record, o.side)
    if o.quantity_wh <= bound:
        return
    what = "supply" if o.side is Side.SELL else "load"
    capacity_w = record["supply_w"] if o.side is Side.SELL else record["load_w"]
    raise ChaincodeError(
        Code.ORDER_OVER_CAPACITY,
        f"{action}: quantity_kwh {format_kwh(o.quantity_wh)} exceeds {agg_name(o.agg)}'s bound "
        f"of {format_kwh(bound)} kWh (certified {what} capacity {format_kwh(capacity_w)} kW "
        f"x 1 h, synced from {record['channel']} in {record['synced_tx'][:12]})",
    )
