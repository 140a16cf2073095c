"""The order path: SubmitOrder (one order) and SubmitOrders (one aggregator's orders, many periods).

Both run the same checks per order, in the same sequence: the caller must be
the aggregator's trader or admin, the period's gate must be open, the order
must satisfy the spec's price and quantity rules for that period. Each order
is its own key ``order~DDDDD~TT~NNNN``, read (to report ``replaced``) and
written, and nothing else is written, so orders of different aggregators, or
of one aggregator for different periods, never conflict (MVCC).

SubmitOrders exists because a Fabric transaction has a fixed cost
(endorsement by two orgs, ordering, validation and commit on every peer)
that dwarfs the work of one order; an aggregator placing its 24 hourly
orders for a day in one transaction pays it once. It is all-or-nothing: one
refused order fails the transaction, and Fabric then discards every write.
Its reads go to the peer in one GET_STATE_MULTIPLE and its writes in one
WRITE_BATCH_STATE (vpp_shim), so its cost grows with the orders' own work,
not with round trips.
"""

from __future__ import annotations

import json
from typing import Any

from vpp_market.clearing import validate_orders
from vpp_market.model import Order
from vpp_shim.api import ChaincodeError, Stub
from vpp_shim.codes import Code

from vpp_chaincode import inputs, keypolicy, state
from vpp_chaincode.ids import agg_name
from vpp_chaincode.inputs import OrderInput
from vpp_chaincode.ledger import json_arg, put_json

MAX_ORDERS_PER_CALL = 168  # a week of hourly periods; bounds the transaction's size


def place(
    stub: Stub,
    parsed: list[OrderInput],
    registered: dict[str, Any],
    action: str,
    *,
    indexed: bool = True,
) -> list[dict[str, Any]]:
    """Checks the gate and the spec's rules for every parsed order, then writes their keys.

    ``indexed``: errors name the order's position (``orders[3]: ...``).

    Every period record and existing order is read in one GET_STATE_MULTIPLE
    (the shim falls back to single reads on a peer without it): round trips
    to the peer are the largest cost of a Python chaincode. The reads, and
    the checks in order, are the same as one order at a time.
    """
    period_keys = [state.period_key(o.period) for o in parsed]
    order_keys = [state.order_key(o.period, o.agg) for o in parsed]
    values = stub.get_state_multiple(period_keys + order_keys)
    checked = []
    for i, o in enumerate(parsed):
        try:
            checked.append(_check_one(stub, o, registered, action, values[i]))
        except (ChaincodeError, ValueError) as exc:
            if not indexed:
                raise
            reason = str(exc).removeprefix(f"{action}: ")
            code = exc.code if isinstance(exc, ChaincodeError) else Code.BAD_ARGUMENT
            raise ChaincodeError(code, f"{action}: orders[{i}]: {reason}") from exc
    # Written only once every order passed: a refusal writes nothing, not even the orders
    # before the bad one (the peer would discard them; the rule is not to write them).
    return [
        _write_one(stub, o, stored, registered, values[len(parsed) + i])
        for i, (o, stored) in enumerate(zip(parsed, checked, strict=True))
    ]


def _check_one(
    stub: Stub,
    o: OrderInput,
    registered: dict[str, Any],
    action: str,
    period_raw: bytes,
) -> dict[str, Any]:
    """The gate and the spec's rules for one order; the record it would store."""
    if not period_raw:
        raise ChaincodeError(
            Code.PERIOD_NOT_FOUND, f"{action}: period {o.period} has not been opened"
        )
    record = json.loads(period_raw)
    if record["status"] != state.OPEN:
        raise ChaincodeError(
            Code.PERIOD_NOT_OPEN, state.state_error(action, o.period, record["status"], state.OPEN)
        )
    candidate = Order(o.agg, o.side, o.quantity_wh, o.offer, o.reserve, 0)
    validate_orders([candidate], state.prices(record))
    return {
        "period": o.period.id,
        "agg": o.agg,
        "side": o.side.value,
        "quantity_wh": o.quantity_wh,
        "offer": o.offer,
        "reserve": o.reserve,
        "mspid": registered["mspid"],
        "submitter": stub.caller.common_name,
        "tx_id": stub.tx_id,
        "timestamp_ns": stub.timestamp_ns,
    }


def _write_one(
    stub: Stub,
    o: OrderInput,
    stored: dict[str, Any],
    registered: dict[str, Any],
    existing_raw: bytes,
) -> dict[str, Any]:
    put_json(stub, state.order_key(o.period, o.agg), stored)
    # From now on only a transaction AggN's peer endorses can change or delete it. Set
    # once, when the key is created: the ledger keeps a key's policy across later writes,
    # and Fabric invalidates every later transaction of a block that touches a key whose
    # policy an earlier one wrote (even the same bytes): racing replacements would fail
    # ENDORSEMENT_POLICY_FAILURE instead of a plain, retryable MVCC conflict.
    if not existing_raw:
        keypolicy.protect(stub, state.order_key(o.period, o.agg), registered["mspid"])
    return {**stored, "replaced": bool(existing_raw)}


def submit_one(stub: Stub, text: str) -> dict[str, Any]:
    """SubmitOrder: one order JSON object."""
    o = inputs.order(text)
    registered = state.trader(stub, o.agg, "SubmitOrder")
    return place(stub, [o], registered, "SubmitOrder", indexed=False)[0]


def _parse_many(text: str) -> list[OrderInput]:
    """Each element parsed by the very function SubmitOrder uses, then the list's own rules."""
    data = json_arg("orders", text)
    if not isinstance(data, list):
        raise ChaincodeError(
            Code.BAD_ARGUMENT, f"orders {text[:80]!r}: is not a JSON list of orders"
        )
    if not 1 <= len(data) <= MAX_ORDERS_PER_CALL:
        raise ChaincodeError(
            Code.BAD_ARGUMENT,
            f"orders: has {len(data)} orders; SubmitOrders takes 1..{MAX_ORDERS_PER_CALL}",
        )
    parsed: list[OrderInput] = []
    for i, item in enumerate(data):
        # Re-encoding hands SubmitOrder's parser the same JSON it would get on its own
        # (json_arg keeps decimals as their text, so nothing is converted on the way).
        try:
            o = inputs.order(json.dumps(item))
        except (ChaincodeError, ValueError) as exc:
            code = exc.code if isinstance(exc, ChaincodeError) else Code.BAD_ARGUMENT
            raise ChaincodeError(code, f"orders[{i}]: {exc}") from exc
        if parsed and o.agg != parsed[0].agg:
            raise ChaincodeError(
                Code.BAD_ARGUMENT,
                f"orders[{i}]: agg {agg_name(o.agg)} differs from orders[0]'s "
                f"{agg_name(parsed[0].agg)} (SubmitOrders takes one aggregator's orders)",
            )
        if any(p.period == o.period for p in parsed):
            raise ChaincodeError(
                Code.BAD_ARGUMENT,
                f"orders[{i}]: period {o.period} is listed twice "
                "(an aggregator has one order per period)",
            )
        parsed.append(o)
    return parsed


def submit_many(stub: Stub, text: str) -> dict[str, Any]:
    """SubmitOrders: one aggregator's orders for several periods, all or nothing."""
    parsed = _parse_many(text)
    registered = state.trader(stub, parsed[0].agg, "SubmitOrders")
    placed = place(stub, parsed, registered, "SubmitOrders")
    return {"agg": parsed[0].agg, "count": len(placed), "orders": placed}
