"""Devices on a slave channel: the Grid certifies their configuration, reports are checked.

A device is a meter of certified resources (its id is the meter id,
``agg3-d0001``) with its own P-256 key. The Grid (the metering authority)
certifies, per device, the SHA-256 fingerprints of its approved ``software``
version, ``strategy`` file and ``settings`` values, plus the device's
certificate, under a version number; a new version supersedes the old and
every version is kept (``devhist``: who certified what, when).

The aggregator's gateway reports what each device runs. A field that
differs from the certification, a report from an uncertified device, or
no report for longer than ``report_interval_s`` (checked by ``CheckReports``
in ledger time) raises an alarm: an ``alarm~<device>~<field>`` record and a
``DeviceAlarms`` event naming device, field, expected and found. An alarm
is cleared only by a matching report (of that field) or a new certification.
An unchanged mismatch reported again raises nothing new: one alarm per fault.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from vpp_shim.api import ChaincodeError, Stub, to_json_bytes
from vpp_shim.codes import Code

from vpp_chaincode import access, ids
from vpp_chaincode.ledger import get_json, json_arg, key, put_json, query
from vpp_chaincode.metering import CONFIG_KEY, agg_mspid, config, now_s, owner

FIELDS = ("software", "strategy", "settings")
REPORT_FIELD = "report"  # the missing-report alarm's field
CERT_FIELD = "certification"  # the uncertified-device alarm's field
MAX_DEVICES = 100  # per CertifyDevices / ReportFingerprints call
_HEX64 = re.compile(r"[0-9a-f]{64}")


def device_key(device: str) -> str:
    return key("device", device)


def _fingerprint(value: object, field: str) -> str:
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise ChaincodeError(
            Code.BAD_ARGUMENT,
            f"{field} {str(value)[:80]!r}: is not a SHA-256 fingerprint (64 lower-case hex digits)",
        )
    return value


def _items(text: str, field: str, required: set[str]) -> list[dict[str, Any]]:
    items = json_arg(field, text)
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_DEVICES:
        raise ChaincodeError(
            Code.BAD_ARGUMENT, f"{field}: is not an object or a list of 1..{MAX_DEVICES}"
        )
    for i, item in enumerate(items):
        if not isinstance(item, dict) or set(item) != required:
            raise ChaincodeError(
                Code.BAD_ARGUMENT,
                f"{field}[{i}]: is not an object of exactly {', '.join(sorted(required))}",
            )
    return items


def public_key_of(cert_pem: str, field: str = "cert_pem") -> ec.EllipticCurvePublicKey:
    """The P-256 public key of a PEM certificate (refused: not PEM, not P-256)."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
    except ValueError as exc:
        raise ChaincodeError(Code.BAD_ARGUMENT, f"{field}: is not a PEM certificate") from exc
    public = cert.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != "secp256r1":
        raise ChaincodeError(Code.BAD_ARGUMENT, f"{field}: the key is not ECDSA P-256")
    return public


def key_id(public: ec.EllipticCurvePublicKey) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo: names the device key in records."""
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def _require_grid(stub: Stub, action: str) -> None:
    if not access.is_grid_admin(stub.caller):
        raise ChaincodeError(
            Code.NOT_AUTHORIZED,
            f"{action}: only the Grid admin (the metering authority) may do this, "
            f"not {access.describe(stub.caller)}",
        )


def require_gateway(stub: Stub, agg: int, action: str) -> None:
    """The aggregator's own identities (its gateway) submit for its devices."""
    if stub.caller.mspid != agg_mspid(agg):
        raise ChaincodeError(
            Code.NOT_AUTHORIZED,
            f"{action}: only {agg_mspid(agg)} (the aggregator's gateway) may do this, "
            f"not {access.describe(stub.caller)}",
        )


def set_config(stub: Stub, text: str) -> dict[str, int]:
    """The Grid sets the channel's interval and report settings (``SetMeterConfig``)."""
    owner(stub)
    _require_grid(stub, "SetMeterConfig")
    given = json_arg("config", text)
    if not isinstance(given, dict) or not given or set(given) - {"interval_s", "report_interval_s"}:
        raise ChaincodeError(
            Code.BAD_ARGUMENT, "config: is not an object of interval_s and/or report_interval_s"
        )
    for name, value in given.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 60 <= value <= 86_400:
            raise ChaincodeError(
                Code.BAD_ARGUMENT, f"config.{name} {value!r}: is not an integer 60..86400"
            )
    if "interval_s" in given and 3600 % given["interval_s"]:
        raise ChaincodeError(
            Code.BAD_ARGUMENT,
            f"config.interval_s {given['interval_s']}: does not divide the hour (3600 s)",
        )
    merged = {**config(stub), **given}
    put_json(stub, CONFIG_KEY, merged)
    return merged


def certify(stub: Stub, text: str) -> dict[str, Any]:
    """CertifyDevice(s): a new version of each device's certification; clears its alarms."""
    action = "CertifyDevice"
    agg = owner(stub)
    _require_grid(stub, action)
    items = _items(text, "devices", {"device", "cert_pem", *FIELDS})
    devices = [ids.parse_meter_id(item["device"], agg, f"devices[{i}].device")
               for i, item in enumerate(items)]  # fmt: skip
    if len(set(devices)) != len(devices):
        raise ChaincodeError(Code.BAD_ARGUMENT, "devices: a device appears twice")
    meters = stub.get_state_multiple([key("meter", d) for d in devices])
    current = stub.get_state_multiple([device_key(d) for d in devices])
    cleared: list[dict[str, Any]] = []
    records = []  # every device of the batch is checked before the first write
    for i, (item, device, meter, raw) in enumerate(zip(items, devices, meters, current,
                                                       strict=True)):  # fmt: skip
        if not meter:
            raise ChaincodeError(
                Code.NOT_REGISTERED,
                f"{action}: device {device!r} is not registered: certify a resource on meter "
                f"{device} first (its capacity bounds the device's readings)",
            )
        public = public_key_of(item["cert_pem"], f"devices[{i}].cert_pem")
        previous = json_arg("device", raw.decode()) if raw else None
        record = {
            "device": device,
            "agg": agg,
            "version": (previous["version"] + 1) if previous else 1,
            "cert_pem": item["cert_pem"],
            "key_id": key_id(public),
            **{f: _fingerprint(item[f], f"devices[{i}].{f}") for f in FIELDS},
            "certified_by": f"{stub.caller.mspid}/{stub.caller.common_name}",
            "certified_tx": stub.tx_id,
            "certified_at": now_s(stub),
        }
        records.append(record)
    written = []
    for record in records:
        device = record["device"]
        put_json(stub, device_key(device), record)
        put_json(stub, key("devhist", device, f"{record['version']:06d}"), record)
        for k, alarm in query(stub, "alarm", device):
            stub.del_state(k)
            cleared.append({**alarm, "cleared_by": "certification"})
        written.append({k: v for k, v in record.items() if k != "cert_pem"})
    result = {"channel": stub.channel_id, "certified": written, "cleared": cleared}
    stub.set_event("DeviceCertified", to_json_bytes(result))
    return result


def _alarm(device: str, field: str, expected: Any, found: Any, stub: Stub) -> dict[str, Any]:
    return {
        "device": device,
        "field": field,
        "expected": expected,
        "found": found,
        "raised_tx": stub.tx_id,
        "raised_at": now_s(stub),
    }


def report(stub: Stub, text: str) -> dict[str, Any]:
    """ReportFingerprints: compare what each device runs with its certification."""
    action = "ReportFingerprints"
    agg = owner(stub)
    require_gateway(stub, agg, action)
    items = _items(text, "reports", {"device", *FIELDS})
    devices = [ids.parse_meter_id(item["device"], agg, f"reports[{i}].device")
               for i, item in enumerate(items)]  # fmt: skip
    if len(set(devices)) != len(devices):
        raise ChaincodeError(Code.BAD_ARGUMENT, "reports: a device appears twice")
    found = [{f: _fingerprint(item[f], f"reports[{i}].{f}") for f in FIELDS}
             for i, item in enumerate(items)]  # fmt: skip
    certified = stub.get_state_multiple([device_key(d) for d in devices])
    raised: list[dict[str, Any]] = []
    cleared: list[dict[str, Any]] = []
    for device, fingerprints, raw in zip(devices, found, certified, strict=True):
        open_alarms = dict(query(stub, "alarm", device))
        record = json_arg("device", raw.decode()) if raw else None
        expected = {f: record[f] for f in FIELDS} if record else {CERT_FIELD: None}
        seen = fingerprints if record else {CERT_FIELD: fingerprints["software"]}
        for field in sorted(expected):
            k = key("alarm", device, field)
            if expected[field] == seen[field]:
                if k in open_alarms:
                    stub.del_state(k)
                    cleared.append({**open_alarms[k], "cleared_by": "report"})
                continue
            if k in open_alarms and open_alarms[k]["found"] == seen[field]:
                continue  # the same fault again: still one alarm
            alarm = _alarm(device, field, expected[field], seen[field], stub)
            put_json(stub, k, alarm)
            raised.append(alarm)
        report_alarm = key("alarm", device, REPORT_FIELD)
        if report_alarm in open_alarms:
            stub.del_state(report_alarm)
            cleared.append({**open_alarms[report_alarm], "cleared_by": "report"})
        put_json(
            stub,
            key("devreport", device),
            {"device": device, **fingerprints, "reported_at": now_s(stub), "tx_id": stub.tx_id},
        )
    result = {"channel": stub.channel_id, "reports": len(items), "raised": raised,
              "cleared": cleared}  # fmt: skip
    if raised or cleared:
        stub.set_event("DeviceAlarms", to_json_bytes(result))
    return result


def check_reports(stub: Stub) -> dict[str, Any]:
    """CheckReports: a missing-report alarm for every certified device silent too long."""
    owner(stub)
    interval = config(stub)["report_interval_s"]
    now = now_s(stub)
    last = {r["device"]: r["reported_at"] for _, r in query(stub, "devreport")}
    alarmed = {a["device"] for _, a in query(stub, "alarm") if a["field"] == REPORT_FIELD}
    raised = []
    for _, device in query(stub, "device"):
        name = device["device"]
        since = max(last.get(name, 0), device["certified_at"])
        if now - since <= interval or name in alarmed:
            continue
        alarm = _alarm(name, REPORT_FIELD, f"a report every {interval} s", f"none since {since}",
                       stub)  # fmt: skip
        put_json(stub, key("alarm", name, REPORT_FIELD), alarm)
        raised.append(alarm)
    result = {"channel": stub.channel_id, "checked_at": now, "raised": raised, "cleared": []}
    if raised:
        stub.set_event("DeviceAlarms", to_json_bytes(result))
    return result


def alarms(stub: Stub, device: str = "") -> dict[str, Any]:
    agg = owner(stub)
    parts = [ids.parse_meter_id(device, agg, "device")] if ids.trim(device) else []
    return {"channel": stub.channel_id, "alarms": [a for _, a in query(stub, "alarm", *parts)]}


def device_view(stub: Stub, device: str) -> dict[str, Any]:
    agg = owner(stub)
    name = ids.parse_meter_id(device, agg, "device")
    current = get_json(stub, device_key(name))
    if current is None:
        raise ChaincodeError(Code.NOT_FOUND, f"GetDevice: device {name!r} is not certified")
    return {
        "device": current,
        "history": [h for _, h in query(stub, "devhist", name)],
        "last_report": get_json(stub, key("devreport", name)),
        "alarms": [a for _, a in query(stub, "alarm", name)],
    }


def listing(stub: Stub) -> dict[str, Any]:
    """Every certified device's current version, key id and fingerprints (no certificates)."""
    owner(stub)
    return {
        "channel": stub.channel_id,
        "devices": [
            {k: v for k, v in d.items() if k != "cert_pem"} for _, d in query(stub, "device")
        ],
    }
