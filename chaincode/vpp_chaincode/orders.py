"""The order path: SubmitOrder (one order) and SubmitOrders (one aggregator's orders, many periods).

Orders are sealed (sealed.py): each travels in the proposal's transient data
(``order`` / ``orders``, the JSON below plus a client-chosen ``salt``), is
stored privately for its aggregator and the clearing operators, and the
public state gets only its salted hash. The result returned (which the block
keeps) is that public record: no sealed field ever reaches a block.

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
from dataclasses import dataclass
from typing import Any

from vpp_market.clearing import validate_orders
from vpp_market.model import Order
from vpp_market.sealing import order_hash, parse_salt
from vpp_shim.api import ChaincodeError, Stub
from vpp_shim.codes import Code

from vpp_chaincode import capacity, inputs, sealed, state
from vpp_chaincode.ids import agg_name
from vpp_chaincode.inputs import OrderInput
from vpp_chaincode.ledger import json_arg

MAX_ORDERS_PER_CALL = 168  # a week of hourly periods; bounds the transaction's size


@dataclass(frozen=True, slots=True)
class SealedInput:
    """A parsed order and the salt its hash is computed with."""

    order: OrderInput
    salt: str


def _sealed(data: Any, field: str) -> SealedInput:
    """One transient order object: SubmitOrder's fields plus ``salt``."""
    if not isinstance(data, dict):
        raise ChaincodeError(Code.BAD_ARGUMENT, f"{field} {str(data)[:80]!r}: is not a JSON object")
    if "salt" not in data:
        raise ChaincodeError(
            Code.BAD_ARGUMENT,
            f"{field}: field 'salt' is missing (64 hex digits the client draws at random; "
            "the ledger's hash of the order covers it)",
        )
    salt = parse_salt(data["salt"], "salt")
    # Re-encoding hands the order parser the JSON it always took (json_arg keeps decimals
    # as their text, so nothing is converted on the way).
    rest = {k: v for k, v in data.items() if k != "salt"}
    return SealedInput(inputs.order(json.dumps(rest)), salt)


def place(
    stub: Stub,
    parsed: list[SealedInput],
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
    period_keys = [state.period_key(o.order.period) for o in parsed]
    order_keys = [state.order_key(o.order.period, o.order.agg) for o in parsed]
    # The aggregator's certified capacity (one key per aggregator) rides in the same read.
    bound_key = capacity.capacity_key(parsed[0].order.agg)
    values = stub.get_state_multiple(period_keys + order_keys + [bound_key])
    checked = []
    for i, o in enumerate(parsed):
        try:
            checked.append(_check_one(stub, o, registered, action, values[i]))
            # After the order's own checks, so a malformed order is told so first.
            capacity.require_within(values[-1], o.order, action)
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
    sealed_input: SealedInput,
    registered: dict[str, Any],
    action: str,
    period_raw: bytes,
) -> dict[str, Any]:
    """The gate and the spec's rules for one order; the private record it would store."""
    o = sealed_input.order
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
        "salt": sealed_input.salt,
        "mspid": registered["mspid"],
        "submitter": stub.caller.common_name,
        "tx_id": stub.tx_id,
        "timestamp_ns": stub.timestamp_ns,
    }


def _write_one(
    stub: Stub,
    sealed_input: SealedInput,
    private: dict[str, Any],
    registered: dict[str, Any],
    existing_raw: bytes,
) -> dict[str, Any]:
    """Writes one checked order: its public hash record and its private copies (sealed.py).

    The key-level policies (AND(VPPO, Grid, AggN)) are set once, when the key is
    created: the ledger keeps a key's policy across later writes, and Fabric
    invalidates every later transaction of a block that touches a key whose
    policy an earlier one wrote (even the same bytes), so racing replacements
    would fail ENDORSEMENT_POLICY_FAILURE instead of a plain, retryable MVCC
    conflict.
    """
    public = sealed.write(
        stub,
        sealed_input.order.period,
        private,
        order_hash(private, sealed_input.salt),
        registered["mspid"],
        created=not existing_raw,
    )
    return {**public, "replaced": bool(existing_raw)}


def submit_one(stub: Stub) -> dict[str, Any]:
    """SubmitOrder: one order JSON object in transient ``order``."""
    text = sealed.transient_text(stub, sealed.TRANSIENT_ORDER, "SubmitOrder")
    o = _sealed(json_arg("order", text), "order")
    registered = state.trader(stub, o.order.agg, "SubmitOrder")
    return place(stub, [o], registered, "SubmitOrder", indexed=False)[0]


def _parse_many(text: str) -> list[SealedInput]:
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
    parsed: list[SealedInput] = []
    for i, item in enumerate(data):
        # Each element parsed by the very function SubmitOrder uses.
        try:
            one = _sealed(item, "order")
        except (ChaincodeError, ValueError) as exc:
            code = exc.code if isinstance(exc, ChaincodeError) else Code.BAD_ARGUMENT
            raise ChaincodeError(code, f"orders[{i}]: {exc}") from exc
        o = one.order
        if parsed and o.agg != parsed[0].order.agg:
            raise ChaincodeError(
                Code.BAD_ARGUMENT,
                f"orders[{i}]: agg {agg_name(o.agg)} differs from orders[0]'s "
                f"{agg_name(parsed[0].order.agg)} (SubmitOrders takes one aggregator's orders)",
            )
        if any(p.order.period == o.period for p in parsed):
            raise ChaincodeError(
                Code.BAD_ARGUMENT,
                f"orders[{i}]: period {o.period} is listed twice "
                "(an aggregator has one order per period)",
            )
        parsed.append(one)
    return parsed


def submit_many(stub: Stub) -> dict[str, Any]:
    """SubmitOrders: one aggregator's orders for several periods (transient ``orders``)."""
    parsed = _parse_many(sealed.transient_text(stub, sealed.TRANSIENT_ORDERS, "SubmitOrders"))
    agg = parsed[0].order.agg
    registered = state.trader(stub, agg, "SubmitOrders")
    placed = place(stub, parsed, registered, "SubmitOrders")
    return {"agg": agg, "count": len(placed), "orders": placed}
