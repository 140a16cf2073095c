"""Resources on a slave channel: the aggregator proposes, the Grid certifies.

A resource (kind, capacity, meter) bounds what the aggregator may sell or
buy and what its meter may report, so neither party alone may create one
(market-rules.md, "Trust rules"): AggN's admin proposes it
(``RegisterResource``), the Grid's admin certifies exactly those terms
(``CertifyResource``). Only certified resources count: they create the meter
and add to its capacity and to the channel's ``GetCapacity``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vpp_market.units import format_kwh, parse_kw
from vpp_shim.api import ChaincodeError, Stub
from vpp_shim.codes import Code

from vpp_chaincode import access, ids
from vpp_chaincode.ledger import get_json, json_arg, key, put_json, records
from vpp_chaincode.metering import (
    LOAD_KINDS,
    SUPPLY_KINDS,
    agg_mspid,
    owner,
)

KINDS = {"pv": "PV", "wt": "WT", "ess": "ESS", "load": "load"}
PROPOSED, CERTIFIED, RETIRED = "PROPOSED", "CERTIFIED", "RETIRED"
MAX_BATCH = 200  # resources per RegisterResources/CertifyResources call


@dataclass(frozen=True, slots=True)
class Terms:
    """What both parties must agree on for one resource."""

    id: str
    kind: str
    capacity_w: int
    meter: str


def parse_terms(agg: int, resource_id: object, kind: object, capacity_kw: object, meter_id: object,
                where: str = "") -> Terms:  # fmt: skip
    """Validated terms; ``where`` prefixes field names in a batch (``resources[3].``)."""
    rid = ids.parse_name(resource_id, f"{where}resource_id")
    canonical = KINDS.get(ids.trim(kind).lower()) if isinstance(kind, str) else None
    if canonical is None:
        raise ChaincodeError(Code.BAD_ARGUMENT, f"{where}kind {kind!r}: is not PV, WT, ESS or load")
    capacity = parse_kw(capacity_kw, f"{where}capacity_kw")
    if capacity <= 0:
        raise ChaincodeError(Code.BAD_ARGUMENT, f"{where}capacity_kw {capacity_kw!r}: is not > 0")
    return Terms(rid, canonical, capacity, ids.parse_meter_id(meter_id, agg, f"{where}meter_id"))


def parse_batch(agg: int, text: str) -> list[Terms]:
    """``[{"id","kind","capacity_kw","meter"}, ...]`` -> terms (ids unique in the batch)."""
    items = json_arg("resources", text)
    if not isinstance(items, list) or not items or len(items) > MAX_BATCH:
        raise ChaincodeError(
            Code.BAD_ARGUMENT, f"resources: is not a list of 1..{MAX_BATCH} resources"
        )
    terms: list[Terms] = []
    for i, item in enumerate(items):
        where = f"resources[{i}]."
        if not isinstance(item, dict) or set(item) != {"id", "kind", "capacity_kw", "meter"}:
            raise ChaincodeError(
                Code.BAD_ARGUMENT,
                f"resources[{i}]: is not an object of id, kind, capacity_kw, meter",
            )
        terms.append(
            parse_terms(agg, item["id"], item["kind"], item["capacity_kw"], item["meter"], where)
        )
    seen: set[str] = set()
    for t in terms:
        if t.id in seen:
            raise ChaincodeError(Code.BAD_ARGUMENT, f"resources: resource {t.id!r} appears twice")
        seen.add(t.id)
    return terms


def propose(stub: Stub, terms: list[Terms], action: str) -> list[dict[str, Any]]:
    """AggN's admin proposes resources; nothing counts until the Grid certifies them."""
    agg = owner(stub)
    access.require_org_admin(stub.caller, agg_mspid(agg), action)
    existing = stub.get_state_multiple([key("resource", t.id) for t in terms])
    for t, raw in zip(terms, existing, strict=True):  # every check before the first write
        if raw:
            raise ChaincodeError(
                Code.ALREADY_REGISTERED, f"{action}: resource {t.id!r} is already registered"
            )
    written = []
    for t in terms:
        record = {
            "id": t.id,
            "kind": t.kind,
            "capacity_w": t.capacity_w,
            "meter": t.meter,
            "agg": agg,
            "status": PROPOSED,
            "proposed_by": stub.caller.mspid,
            "proposed_tx": stub.tx_id,
        }
        put_json(stub, key("resource", t.id), record)
        written.append(record)
    return written


def certify(stub: Stub, terms: list[Terms], action: str) -> list[dict[str, Any]]:
    """The Grid's admin certifies proposed resources with exactly the proposed terms."""
    agg = owner(stub)
    if not access.is_grid_admin(stub.caller):
        raise ChaincodeError(
            Code.NOT_AUTHORIZED,
            f"{action}: only the Grid admin (the metering authority) may certify resources, "
            f"not {access.describe(stub.caller)}",
        )
    stored = stub.get_state_multiple([key("resource", t.id) for t in terms])
    meters = sorted({t.meter for t in terms})
    meter_values = dict(zip(meters, stub.get_state_multiple([key("meter", m) for m in meters]),
                            strict=True))  # fmt: skip
    meter_records: dict[str, dict[str, Any]] = {}
    written = []  # written below, once every resource of the batch has passed its checks
    for t, raw in zip(terms, stored, strict=True):
        if not raw:
            raise ChaincodeError(
                Code.NOT_REGISTERED,
                f"{action}: resource {t.id!r} is not registered: {agg_mspid(agg)}'s admin "
                "has not proposed it",
            )
        record = json_arg("resource", raw.decode())
        if record["status"] == CERTIFIED:
            raise ChaincodeError(
                Code.ALREADY_REGISTERED, f"{action}: resource {t.id!r} is already certified"
            )
        for field, name, show in (
            ("kind", "kind", str),
            ("capacity_w", "capacity_kw", format_kwh),
            ("meter", "meter_id", str),
        ):
            if record[field] != getattr(t, field):
                raise ChaincodeError(
                    Code.TERMS_DIFFER,
                    f"{action}: resource {t.id!r}: {name} {show(getattr(t, field))!r} differs "
                    f"from the proposed {show(record[field])!r}; certify the proposed terms",
                )
        record = {**record, "status": CERTIFIED, "certified_by": stub.caller.mspid,
                  "certified_tx": stub.tx_id}  # fmt: skip
        written.append(record)
        meter = meter_records.get(t.meter)
        if meter is None:
            raw_meter = meter_values[t.meter]
            meter = (
                json_arg("meter", raw_meter.decode())
                if raw_meter
                else {"meter": t.meter, "agg": agg, "resources": [], "capacity_w": 0}
            )
        meter_records[t.meter] = {
            **meter,
            "resources": sorted({*meter["resources"], t.id}),
            "capacity_w": meter["capacity_w"] + t.capacity_w,
        }
    for record in written:
        put_json(stub, key("resource", record["id"]), record)
    for m, record in sorted(meter_records.items()):
        put_json(stub, key("meter", m), record)
    return written


def capacity(stub: Stub) -> dict[str, int]:
    """Certified supply and load capacity of the channel's aggregator (W).

    Storage counts on both sides: it can discharge (supply) and charge (load).
    """
    agg = owner(stub)
    supply = load = 0
    for r in records(stub, "resource"):
        if r.get("status") != CERTIFIED:
            continue
        if r["kind"] in SUPPLY_KINDS:
            supply += r["capacity_w"]
        if r["kind"] in LOAD_KINDS:
            load += r["capacity_w"]
    return {"agg": agg, "supply_w": supply, "load_w": load}


def reading_bound_wh(meter: dict[str, Any], interval_s: int) -> int:
    """The most energy a meter may report in one interval: capacity x interval (floor, Wh)."""
    return meter["capacity_w"] * interval_s // 3600


def get_resource(stub: Stub, rid: str) -> dict[str, Any] | None:
    return get_json(stub, key("resource", rid))


def retire(stub: Stub, rid: str) -> dict[str, Any]:
    """RetireResource: the Grid takes a certified resource out of service.

    Its capacity leaves its meter; a meter left without resources is no
    longer certified, so it is no longer expected at a seal and may not
    report. Only the metering authority may do it: for AggN alone it would
    be a way to drop a meter that reports against it.
    """
    action = "RetireResource"
    owner(stub)
    if not access.is_grid_admin(stub.caller):
        raise ChaincodeError(
            Code.NOT_AUTHORIZED,
            f"{action}: only the Grid admin (the metering authority) may retire resources, "
            f"not {access.describe(stub.caller)}",
        )
    name = ids.parse_name(rid, "resource_id")
    record = get_json(stub, key("resource", name))
    if record is None or record.get("status") != CERTIFIED:
        raise ChaincodeError(
            Code.NOT_REGISTERED, f"{action}: resource {name!r} is not registered as certified"
        )
    meter = get_json(stub, key("meter", record["meter"]))
    assert meter is not None  # written with the certification
    left = [r for r in meter["resources"] if r != name]
    if left:
        capacity_w = meter["capacity_w"] - record["capacity_w"]
        put_json(stub, key("meter", record["meter"]),
                 {**meter, "resources": left, "capacity_w": capacity_w})  # fmt: skip
    else:
        stub.del_state(key("meter", record["meter"]))
    retired = {**record, "status": RETIRED, "retired_tx": stub.tx_id}
    put_json(stub, key("resource", name), retired)
    return retired
