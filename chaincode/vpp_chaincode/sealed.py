"""Sealed orders: where an order's private fields live and who reads them.

Trust rules (market-rules.md, sealed orders): an order's side, quantity and
prices are readable only by its aggregator and the clearing operators (VPPO,
Grid); the public ledger holds a salted hash (vpp_market.sealing). So one
order is three entries under the same key ``order~DDDDD~TT~NNNN``:

- public state: ``{period, agg, hash, mspid, submitter, tx_id, timestamp_ns}``
  (what every member, GetHistory and the block show);
- collection ``orderBook`` (members VPPO and Grid; network/vpp_network/plan.py
  defines it for the chaincode definition): the whole order with its salt,
  which clearing, anchoring and settlement read;
- the aggregator's implicit collection ``_implicit_org_<its MSP>``: the same
  bytes, its own copy (its peer answers its GetOrderBook).

The sealed fields arrive in the proposal's transient data, which Fabric never
writes to a block; the block carries only SHA-256 hashes of the private
keys and values (each value holds the 32-byte salt, so those hashes cannot
be inverted by trying plausible orders either).

Writes are blind (nothing private is read on the order path): the
aggregator's peer, which must endorse (key-level policy) but is not a member
of ``orderBook``, cannot read that collection, and a transaction without
private reads lets the Gateway pick endorsers outside a collection.
"""

from __future__ import annotations

import json
from typing import Any

from vpp_market.sealing import matches
from vpp_shim.api import ChaincodeError, Stub, implicit_collection, to_json_bytes
from vpp_shim.codes import Code

from vpp_chaincode import keypolicy, state
from vpp_chaincode.ids import PeriodId, agg_name
from vpp_chaincode.ledger import MAX_ARG_BYTES, put_json, query

ORDER_BOOK = "orderBook"
# The collection's members: the market's endorsers, who clear (keypolicy.MARKET_ENDORSERS).
ORDER_BOOK_MEMBERS = keypolicy.MARKET_ENDORSERS
# Transient data keys of SubmitOrder and SubmitOrders.
TRANSIENT_ORDER = "order"
TRANSIENT_ORDERS = "orders"
# Public fields of an order (the rest is sealed).
PUBLIC_FIELDS = ("period", "agg", "hash", "mspid", "submitter", "tx_id", "timestamp_ns")


def transient_text(stub: Stub, name: str, action: str) -> str:
    """The UTF-8 text of transient entry ``name``; refused if absent, too large or not text."""
    raw = stub.transient.get(name)
    if raw is None:
        raise ChaincodeError(
            Code.BAD_ARGUMENT,
            f"{action}: transient data {name!r} is missing: a sealed order travels in the "
            "proposal's transient data (as vppctl bid sends it), never in the arguments, "
            "which the block keeps for every member to read",
        )
    if len(raw) > MAX_ARG_BYTES:
        raise ChaincodeError(
            Code.ARGUMENT_TOO_LARGE,
            # The words of an argument's refusal: the order was the argument before sealing.
            f"{action}: {name} is {len(raw)} bytes; an argument may be at most "
            f"{MAX_ARG_BYTES} bytes",
        )
    try:
        return bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise ChaincodeError(
            Code.BAD_ARGUMENT, f"{action}: transient data {name!r} is not valid UTF-8"
        ) from None


def is_clearing_org(mspid: str) -> bool:
    """VPPO and Grid: members of ``orderBook``, who see the whole book."""
    return mspid in ORDER_BOOK_MEMBERS


def public_record(private: dict[str, Any], order_hash: str) -> dict[str, Any]:
    """What the public state keeps of a sealed order."""
    return {**{f: private[f] for f in PUBLIC_FIELDS if f in private}, "hash": order_hash}


def write(
    stub: Stub,
    pid: PeriodId,
    private: dict[str, Any],
    order_hash: str,
    owner_mspid: str,
    *,
    created: bool,
    own_copy: bool = True,
) -> dict[str, Any]:
    """Writes one order's public hash record and its two private copies; returns the public one.

    ``created``: the key is new (the caller read the public record), so its
    key-level policy is set now and never again (keypolicy.protect says why).
    ``own_copy``: also the aggregator's implicit collection (benchmark
    aggregators have no organisation, hence none).

    Only the public hash record gets the owner's policy. The ``orderBook`` copy
    needs none: the VPPO and the Grid together could rewrite it, but every
    reader (:func:`book`, :func:`order`) checks it against the hash, which they
    cannot change without the aggregator, so a rewritten copy is refused, never
    cleared. A policy on the copy as well cost every peer one more policy
    evaluation (three signature checks) per order replaced and one more
    metadata write per order placed (docs/benchmarks.md, "Sealed orders: where
    the peers' CPU goes"). The aggregator's own copy is guarded by its
    implicit collection's endorsement policy.
    """
    order_key = state.order_key(pid, private["agg"])
    public = public_record(private, order_hash)
    put_json(stub, order_key, public)
    value = to_json_bytes(private)
    stub.put_private_data(ORDER_BOOK, order_key, value)
    if own_copy:
        stub.put_private_data(implicit_collection(owner_mspid), order_key, value)
    if created:
        keypolicy.protect(stub, order_key, owner_mspid)
    return public


def delete(stub: Stub, pid: PeriodId, agg: int, owner_mspid: str) -> None:
    """Removes an order's public record and both private copies."""
    order_key = state.order_key(pid, agg)
    stub.del_state(order_key)
    stub.del_private_data(ORDER_BOOK, order_key)
    stub.del_private_data(implicit_collection(owner_mspid), order_key)


def _verified(
    private: dict[str, Any] | None, public: dict[str, Any], action: str
) -> dict[str, Any]:
    who = f"{agg_name(public['agg'])}'s order for {public['period']}"
    if private is None:
        raise ChaincodeError(
            Code.ORDER_DATA_MISSING,
            f"{action}: this peer does not hold the sealed {who} (its private data has not "
            "reached it yet: a peer that was down pulls it from the other collection members "
            "by reconciliation; docs/sealed-orders.md)",
        )
    if not matches(private, private.get("salt", ""), public["hash"]):
        raise ChaincodeError(
            Code.ORDER_HASH_MISMATCH,
            f"{action}: the sealed {who} does not match its hash on the ledger",
        )
    return {**private, "hash": public["hash"]}


def book(stub: Stub, pid: PeriodId, action: str) -> list[dict[str, Any]]:
    """The period's whole sealed book in aggregator order, each order checked against its hash.

    For the collection's members only (the peer refuses anyone else). The
    public range query names the orders; their private copies are point reads
    (one GET_STATE_MULTIPLE): Fabric refuses every write of a transaction that
    ran a range query on private data, and ClearPeriod writes. An order whose
    private data this peer lacks, or that differs from its public hash, is
    refused rather than cleared from a partial or altered book.
    """
    public = list(query(stub, "order", *pid.key_parts))
    raw = stub.get_private_data_multiple(ORDER_BOOK, [k for k, _ in public])
    return [
        _verified(json.loads(v) if v else None, record, action)
        for (_, record), v in zip(public, raw, strict=True)
    ]


def order(stub: Stub, pid: PeriodId, agg: int, action: str) -> dict[str, Any] | None:
    """One aggregator's sealed order from ``orderBook`` (checked), or None if it has none."""
    order_key = state.order_key(pid, agg)
    raw_public = stub.get_state(order_key)
    if not raw_public:
        return None
    raw = stub.get_private_data(ORDER_BOOK, order_key)
    return _verified(json.loads(raw) if raw else None, json.loads(raw_public), action)


def view(stub: Stub, pid: PeriodId) -> list[dict[str, Any]]:
    """GetOrderBook's orders as the caller may see them.

    VPPO and Grid: every order in full (with its salt and hash). Anyone
    else: every order's public record marked ``sealed``, except the orders of
    the caller's own organisation, read from its implicit collection (so on
    its own peer: another organisation's peer holds only their hashes).
    """
    caller = stub.caller.mspid
    if is_clearing_org(caller):
        return [{**o, "sealed": False} for o in book(stub, pid, "GetOrderBook")]
    shown = []
    for order_key, record in query(stub, "order", *pid.key_parts):
        if record.get("mspid") != caller:
            shown.append({**record, "sealed": True})
            continue
        raw = stub.get_private_data(implicit_collection(caller), order_key)
        private = json.loads(raw) if raw else None
        shown.append({**_verified(private, record, "GetOrderBook"), "sealed": False})
    return shown
