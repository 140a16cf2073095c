"""The ``meter`` chaincode on each aggregator's slave channel ``aggN``.

The channel name says which aggregator owns it (``agg3`` -> Agg3, MSP
``Agg3MSP``). Metering is certified by the Grid, not by the aggregator
(market-rules.md, "Trust rules"): AggN proposes a resource and the Grid
certifies it (``resources``); a meter identity is issued by ``GridMSP`` and
names its aggregator and meter; a reading is bounded by the meter's
certified capacity times the interval; sealing follows ``sealing``.

Keys: see ``metering``. A reading reads the seal key and the seal reads the
readings by a range query, so a reading and a seal racing in one block can
never both commit: Fabric's MVCC and phantom-read checks invalidate one.
"""

from __future__ import annotations

from typing import Any

from vpp_market.units import parse_fixed
from vpp_shim.api import ChaincodeError, Contract, Stub
from vpp_shim.codes import Code

from vpp_chaincode import access, ids, intervals, metering, sealing
from vpp_chaincode import devices as dev
from vpp_chaincode import resources as res
from vpp_chaincode.health import HealthMixin
from vpp_chaincode.ledger import batch_tx, get_json, key, put_json, records, tx
from vpp_chaincode.metering import owner, seal_key
from vpp_chaincode.sealing import summary_digest

__all__ = ["MeterContract", "summary_digest"]

HOUR_S = 3600


class MeterContract(HealthMixin, Contract):
    name = "meter"
    version = "1.1"

    # --- resources: AggN proposes, the Grid certifies --------------------------------
    @tx
    def RegisterResource(
        self, stub: Stub, resource_id: str, kind: str, capacity_kw: str, meter_id: str
    ) -> dict[str, Any]:
        """AggN's admin proposes a resource; it counts once the Grid certifies it."""
        terms = res.parse_terms(owner(stub), resource_id, kind, capacity_kw, meter_id)
        return res.propose(stub, [terms], "RegisterResource")[0]

    @tx
    def RegisterResources(self, stub: Stub, resources: str) -> dict[str, Any]:
        """RegisterResource for many: ``[{"id","kind","capacity_kw","meter"}, ...]``."""
        terms = res.parse_batch(owner(stub), resources)
        return {"resources": res.propose(stub, terms, "RegisterResources")}

    @tx
    def CertifyResource(
        self, stub: Stub, resource_id: str, kind: str, capacity_kw: str, meter_id: str
    ) -> dict[str, Any]:
        """The Grid's admin certifies a proposed resource, repeating its terms exactly."""
        terms = res.parse_terms(owner(stub), resource_id, kind, capacity_kw, meter_id)
        return res.certify(stub, [terms], "CertifyResource")[0]

    @tx
    def CertifyResources(self, stub: Stub, resources: str) -> dict[str, Any]:
        """CertifyResource for many (same JSON as RegisterResources)."""
        terms = res.parse_batch(owner(stub), resources)
        return {"resources": res.certify(stub, terms, "CertifyResources")}

    @tx
    def RetireResource(self, stub: Stub, resource_id: str) -> dict[str, Any]:
        """The Grid's admin takes a certified resource out of service (its meter with it,
        once the meter has no resources left)."""
        return res.retire(stub, resource_id)

    @tx
    def GetCapacity(self, stub: Stub) -> dict[str, Any]:
        """Certified capacity ``{"agg", "supply_w", "load_w"}``: what bounds AggN's orders."""
        return res.capacity(stub)

    # --- hourly readings ---------------------------------------------------------------
    @tx
    def RecordReading(
        self,
        stub: Stub,
        period: str,
        exported_wh: str,
        imported_wh: str,
        meter_id: str = "",
    ) -> dict[str, Any]:
        """A meter's one reading for a period, made with that meter's own Grid-issued identity.

        The meter id comes from the certificate (``vpp.meter``, with
        ``vpp.agg`` naming this channel's aggregator); ``meter_id`` may be
        given as a check and must then be the certificate's.
        """
        agg = owner(stub)
        caller = stub.caller
        identity = access.grid_meter_of(caller)
        if identity is None or identity[0] != agg:
            raise ChaincodeError(
                Code.NOT_AUTHORIZED,
                f"RecordReading: only a meter identity issued by {access.GRID_MSPID} for "
                f"Agg{agg} may record readings on {stub.channel_id}, not "
                f"{access.describe(caller)}"
                + (f" for Agg{identity[0]}" if identity is not None else ""),
            )
        meter = identity[1]
        if ids.trim(meter_id) and ids.trim(meter_id) != meter:
            raise ChaincodeError(
                Code.NOT_AUTHORIZED,
                f"RecordReading: meter_id {meter_id!r}: the caller is meter {meter!r}; "
                "a meter records only its own readings",
            )
        pid = ids.parse_period(period)
        exported = parse_fixed("exported_wh", exported_wh, 0)
        imported = parse_fixed("imported_wh", imported_wh, 0)
        record_of_meter = get_json(stub, key("meter", meter))
        if record_of_meter is None:
            raise ChaincodeError(
                Code.NOT_REGISTERED,
                f"RecordReading: meter {meter!r} is not registered on {stub.channel_id} "
                "(no resource of it is certified by the Grid)",
            )
        bound = res.reading_bound_wh(record_of_meter, HOUR_S)
        for field, value in (("exported_wh", exported), ("imported_wh", imported)):
            if value > bound:
                raise ChaincodeError(
                    Code.OVER_CAPACITY,
                    f"RecordReading: {field} {value}: meter {meter} may report at most "
                    f"{bound} Wh in {HOUR_S} s (certified capacity "
                    f"{record_of_meter['capacity_w']} W)",
                )
        if get_json(stub, seal_key(pid)) is not None:
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

    # --- devices: certified configuration, fingerprint reports, alarms ------------------
    @tx
    def SetMeterConfig(self, stub: Stub, config: str) -> dict[str, Any]:
        """The Grid sets ``{"interval_s", "report_interval_s"}`` for this channel."""
        return dev.set_config(stub, config)

    @tx
    def GetMeterConfig(self, stub: Stub) -> dict[str, Any]:
        owner(stub)
        return metering.config(stub)

    @tx
    def CertifyDevice(self, stub: Stub, devices: str) -> dict[str, Any]:
        """The Grid certifies devices (an object or a list): key and fingerprints, versioned."""
        return dev.certify(stub, devices)

    @tx
    def ReportFingerprints(self, stub: Stub, reports: str) -> dict[str, Any]:
        """AggN's gateway reports what devices run; mismatches raise alarms (DeviceAlarms)."""
        return dev.report(stub, reports)

    @tx
    def CheckReports(self, stub: Stub) -> dict[str, Any]:
        """Raise a missing-report alarm for each device silent over report_interval_s."""
        return dev.check_reports(stub)

    @tx
    def GetAlarms(self, stub: Stub, device: str = "") -> dict[str, Any]:
        """Open alarms of the channel (or of one device)."""
        return dev.alarms(stub, device)

    @tx
    def GetDevices(self, stub: Stub) -> dict[str, Any]:
        """Every certified device: version, key id and fingerprints."""
        return dev.listing(stub)

    @tx
    def GetDevice(self, stub: Stub, device: str) -> dict[str, Any]:
        """A device's certification, its history, last report and open alarms."""
        return dev.device_view(stub, device)

    # --- signed interval readings ---------------------------------------------------------
    @batch_tx(intervals.MAX_BATCH_BYTES)
    def SubmitReadings(self, stub: Stub, readings: str) -> dict[str, Any]:
        """A batch of device-signed interval readings (all or nothing; see intervals)."""
        return intervals.submit(stub, readings)

    # --- sealing -------------------------------------------------------------------------
    @tx
    def SealPeriod(self, stub: Stub, period: str) -> dict[str, Any]:
        """Freeze a cleared period's readings into its delivery summary (once; see sealing)."""
        return sealing.seal(stub, ids.parse_period(period))

    @tx
    def DeliverySummary(self, stub: Stub, period: str) -> dict[str, Any]:
        """The sealed summary of a period; what the market anchors (error if not sealed)."""
        owner(stub)
        pid = ids.parse_period(period)
        summary = get_json(stub, seal_key(pid))
        if summary is None:
            raise ChaincodeError(
                Code.DELIVERY_NOT_SEALED,
                f"DeliverySummary: period {pid} is not sealed on channel {stub.channel_id}",
            )
        return summary

    @tx
    def GetReadings(self, stub: Stub, period: str) -> dict[str, Any]:
        """Hourly readings (``readings``) and signed interval readings (``interval_readings``)."""
        owner(stub)
        pid = ids.parse_period(period)
        return {
            "channel": stub.channel_id,
            "period": pid.id,
            "sealed": get_json(stub, seal_key(pid)) is not None,
            "readings": records(stub, "reading", *pid.key_parts),
            "interval_readings": intervals.period_interval_readings(stub, pid),
        }

    @tx
    def GetResources(self, stub: Stub) -> dict[str, Any]:
        agg = owner(stub)
        return {
            "channel": stub.channel_id,
            "agg": agg,
            "resources": records(stub, "resource"),
            "meters": records(stub, "meter"),
        }
