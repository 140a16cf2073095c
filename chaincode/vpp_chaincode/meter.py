"""The ``meter`` chaincode on each aggregator's slave channel ``aggN``.

The channel name says which aggregator owns it (``agg3`` -> Agg3, MSP
``Agg3MSP``), so every resource registered here belongs to that aggregator
and no other. Meters report one reading per period; sealing a period freezes
its readings and computes the delivery summary the market anchors
cross-channel (``DeliverySummary``).

Keys: ``resource~<id>``, ``meter~<meter id>``, ``reading~<DDDDD>~<TT>~<meter
id>``, ``seal~<DDDDD>~<TT>``, ``ping~<mspid>`` (composite keys, see
docs/chaincode-api.md). A reading reads the seal key and the seal reads the
readings by a range query, so a reading and a seal racing in one block can
never both commit: Fabric's MVCC and phantom-read checks invalidate one.
"""

from __future__ import annotations

import hashlib
from typing import Any

from vpp_market.units import parse_fixed, parse_kw
from vpp_shim.api import ChaincodeError, Contract, Stub, to_json_bytes
from vpp_shim.codes import Code

from vpp_chaincode import access, ids
from vpp_chaincode.health import HealthMixin
from vpp_chaincode.ids import PeriodId
from vpp_chaincode.ledger import get_json, key, put_json, records, tx

KINDS = {"pv": "PV", "wt": "WT", "ess": "ESS", "load": "load"}


def summary_digest(channel: str, period: str, readings: list[dict[str, Any]]) -> str:
    """sha256 (hex) over the canonical readings of a period, recomputable from GetReadings.

    The hashed document is ``to_json_bytes({"channel", "period", "readings":
    [{"meter", "exported_wh", "imported_wh"}, ...]})`` with readings in meter id
    order: canonical JSON, so any party gets the same bytes.
    """
    canonical = [
        {"meter": r["meter"], "exported_wh": r["exported_wh"], "imported_wh": r["imported_wh"]}
        for r in sorted(readings, key=lambda r: r["meter"])
    ]
    document = {"channel": channel, "period": period, "readings": canonical}
    return hashlib.sha256(to_json_bytes(document)).hexdigest()


class MeterContract(HealthMixin, Contract):
    name = "meter"
    version = "1.0"

    @tx
    def RegisterResource(
        self, stub: Stub, resource_id: str, kind: str, capacity_kw: str, meter_id: str
    ) -> dict[str, Any]:
        """Register a flexible resource of this channel's aggregator and the meter measuring it."""
        agg = self._owner(stub)
        access.require_org_admin(stub.caller, self._mspid(agg), "RegisterResource")
        rid = ids.parse_name(resource_id, "resource_id")
        canonical_kind = KINDS.get(ids.trim(kind).lower()) if isinstance(kind, str) else None
        if canonical_kind is None:
            raise ChaincodeError(
                Code.BAD_ARGUMENT, f"RegisterResource: kind {kind!r}: is not PV, WT, ESS or load"
            )
        capacity = parse_kw(capacity_kw, "capacity_kw")
        if capacity <= 0:
            raise ChaincodeError(
                Code.BAD_ARGUMENT, f"RegisterResource: capacity_kw {capacity_kw!r}: is not > 0"
            )
        meter = ids.parse_meter_id(meter_id, agg)
        if get_json(stub, key("resource", rid)) is not None:
            raise ChaincodeError(
                Code.ALREADY_REGISTERED, f"RegisterResource: resource {rid!r} is already registered"
            )
        record = {
            "id": rid,
            "kind": canonical_kind,
            "capacity_w": capacity,
            "meter": meter,
            "agg": agg,
            "registered_tx": stub.tx_id,
        }
        put_json(stub, key("resource", rid), record)
        meter_record = get_json(stub, key("meter", meter)) or {
            "meter": meter,
            "agg": agg,
            "resources": [],
        }
        meter_record["resources"] = sorted({*meter_record["resources"], rid})
        put_json(stub, key("meter", meter), meter_record)
        return record

    @tx
    def RecordReading(
        self,
        stub: Stub,
        period: str,
        exported_wh: str,
        imported_wh: str,
        meter_id: str = "",
    ) -> dict[str, Any]:
        """A meter's one reading for a period, made with that meter's own identity.

        The meter id comes from the certificate (``vpp.meter``); ``meter_id``
        may be given as a check and must then be the certificate's.
        """
        agg = self._owner(stub)
        caller = stub.caller
        meter = access.meter_of(caller)
        if meter is None or caller.mspid != self._mspid(agg):
            raise ChaincodeError(
                Code.NOT_AUTHORIZED,
                f"RecordReading: only a meter identity of {self._mspid(agg)} may record "
                f"readings, not {access.describe(caller)}",
            )
        if ids.trim(meter_id) and ids.trim(meter_id) != meter:
            raise ChaincodeError(
                Code.NOT_AUTHORIZED,
                f"RecordReading: meter_id {meter_id!r}: the caller is meter {meter!r}; "
                "a meter records only its own readings",
            )
        pid = ids.parse_period(period)
        exported = parse_fixed("exported_wh", exported_wh, 0)
        imported = parse_fixed("imported_wh", imported_wh, 0)
        if get_json(stub, key("meter", meter)) is None:
            raise ChaincodeError(
                Code.NOT_REGISTERED,
                f"RecordReading: meter {meter!r} is not registered on channel {stub.channel_id}",
            )
        if get_json(stub, self._seal_key(pid)) is not None:
            raise ChaincodeError(
                Code.PERIOD_SEALED, f"RecordReading: period {pid} is sealed; readings are closed"
            )
        reading_key = key("reading", *pid.key_parts, meter)
        if get_json(stub, reading_key) is not None:
            raise ChaincodeError(
                Code.ALREADY_RECORDED,
                f"RecordReading: meter {meter!r} already has a reading for period {pid}",
            )
        record = {
            "period": pid.id,
            "meter": meter,
            "exported_wh": exported,
            "imported_wh": imported,
            "recorded_by": caller.common_name,
            "tx_id": stub.tx_id,
            "timestamp_ns": stub.timestamp_ns,
        }
        put_json(stub, reading_key, record)
        return record

    @tx
    def SealPeriod(self, stub: Stub, period: str) -> dict[str, Any]:
        """Freeze a period's readings and compute its delivery summary (once)."""
        agg = self._owner(stub)
        access.require_org_admin(stub.caller, self._mspid(agg), "SealPeriod", or_vppo=True)
        pid = ids.parse_period(period)
        if get_json(stub, self._seal_key(pid)) is not None:
            raise ChaincodeError(Code.PERIOD_SEALED, f"SealPeriod: period {pid} is already sealed")
        readings = records(stub, "reading", *pid.key_parts)
        reported = {r["meter"] for r in readings}
        meters = sorted(m["meter"] for m in records(stub, "meter"))
        exported = sum(r["exported_wh"] for r in readings)
        imported = sum(r["imported_wh"] for r in readings)
        summary = {
            "channel": stub.channel_id,
            "agg": agg,
            "period": pid.id,
            "exported_wh": exported,
            "imported_wh": imported,
            "net_exported_wh": exported - imported,
            "readings": len(readings),
            "missing_meters": [m for m in meters if m not in reported],
            "sha256": summary_digest(stub.channel_id, pid.id, readings),
            "sealed_by": stub.caller.mspid,
            "sealed_tx": stub.tx_id,
            "sealed_ns": stub.timestamp_ns,
        }
        put_json(stub, self._seal_key(pid), summary)
        stub.set_event("PeriodSealed", to_json_bytes(summary))
        return summary

    @tx
    def DeliverySummary(self, stub: Stub, period: str) -> dict[str, Any]:
        """The sealed summary of a period; what the market anchors (error if not sealed)."""
        self._owner(stub)
        pid = ids.parse_period(period)
        summary = get_json(stub, self._seal_key(pid))
        if summary is None:
            raise ChaincodeError(
                Code.DELIVERY_NOT_SEALED,
                f"DeliverySummary: period {pid} is not sealed on channel {stub.channel_id}",
            )
        return summary

    @tx
    def GetReadings(self, stub: Stub, period: str) -> dict[str, Any]:
        self._owner(stub)
        pid = ids.parse_period(period)
        return {
            "channel": stub.channel_id,
            "period": pid.id,
            "sealed": get_json(stub, self._seal_key(pid)) is not None,
            "readings": records(stub, "reading", *pid.key_parts),
        }

    @tx
    def GetResources(self, stub: Stub) -> dict[str, Any]:
        agg = self._owner(stub)
        return {
            "channel": stub.channel_id,
            "agg": agg,
            "resources": records(stub, "resource"),
            "meters": records(stub, "meter"),
        }

    # --- helpers ----------------------------------------------------------------------
    @staticmethod
    def _owner(stub: Stub) -> int:
        agg = ids.channel_agg(stub.channel_id)
        if agg is None:
            raise ChaincodeError(
                Code.WRONG_CHANNEL,
                f"the meter chaincode serves aggregator channels aggN, not {stub.channel_id!r}",
            )
        return agg

    @staticmethod
    def _mspid(agg: int) -> str:
        return f"{ids.agg_name(agg)}MSP"

    @staticmethod
    def _seal_key(pid: PeriodId) -> str:
        return key("seal", *pid.key_parts)
