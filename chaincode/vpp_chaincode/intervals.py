"""Signed interval readings: many devices' 15-minute energy in one transaction.

Each reading is signed by the device's own key (ECDSA P-256, SHA-256, DER,
base64) over the canonical JSON of its Merkle leaf document
(``merkle.leaf_document``: channel, meter = device id, period, slot,
exported_wh, imported_wh), so the signature covers the channel (no replay on
another aggregator's channel) and the slot (no replay into another
interval), and a stored reading is exactly what the seal's Merkle root
commits to. The aggregator's gateway submits batches; one bad reading
refuses the whole batch, naming it: malformed, unknown or uncertified
device, above its certified capacity x interval, a duplicate in the batch,
already recorded (a replay), a sealed period, or a signature that does not
verify against the device's certified key. Nothing of a refused batch is
written.

Every check reads keys in bulk (``get_state_multiple``). A device's readings
of one hour share one key, ``ireading~<day>~<t>~<device>``, holding
``[slot, exported_wh, imported_wh, signature]`` per interval in slot order:
on the peers every key read and written costs more than its bytes
(endorsement, MVCC validation, state and history commit; docs/benchmarks.md),
and a gateway that uploads an hour at a time writes a quarter of the keys.
Batches of different devices never conflict; two batches carrying the same
device-hour in one block do (the second is invalidated as an MVCC conflict
and may be sent again), so a gateway sends its batches one after another.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from vpp_market import merkle
from vpp_shim.api import ChaincodeError, Stub
from vpp_shim.codes import Code

from vpp_chaincode import ids
from vpp_chaincode.devices import device_key, public_key_of, require_gateway
from vpp_chaincode.ledger import json_arg, key, put_json, records
from vpp_chaincode.metering import config, owner, seal_key
from vpp_chaincode.resources import reading_bound_wh

MAX_BATCH = 2000
MAX_BATCH_BYTES = 1024 * 1024  # 2,000 readings of ~200 bytes, with room
_ECDSA = ec.ECDSA(hashes.SHA256())


@functools.lru_cache(maxsize=65_536)
def _public_key(cert_pem: str) -> ec.EllipticCurvePublicKey:
    """Parsed once per certificate per process: the same input always gives the same key."""
    return public_key_of(cert_pem)


def signed_bytes(channel: str, reading: dict[str, Any]) -> bytes:
    """What a device signs: the canonical JSON of the reading's Merkle leaf document."""
    return merkle.leaf_bytes(channel, reading)


def ihour_key(pid: ids.PeriodId, device: str) -> str:
    """One key per device and hour: its interval readings of the period, in slot order."""
    return key("ireading", *pid.key_parts, device)


def _parse(
    agg: int, slots: int, index: int, item: Any, seen: dict[Any, Any]
) -> tuple[ids.PeriodId, dict[str, Any], bytes]:
    """One reading of the batch: its period, its record and its decoded signature.

    ``seen`` caches the period ids and device ids already parsed in this batch
    (a batch repeats a few periods and each device a few times).
    """
    where = f"readings[{index}]"
    if not isinstance(item, list) or len(item) != 6:
        raise ChaincodeError(
            Code.BAD_ARGUMENT,
            f"{where}: is not [period, device, slot, exported_wh, imported_wh, signature]",
        )
    period, device, slot, exported, imported, signature = item
    pid = seen.get(("period", period)) if isinstance(period, str) else None
    if pid is None:
        pid = ids.parse_period(period, f"{where}.period")
        if isinstance(period, str):
            seen["period", period] = pid
    name = seen.get(("device", device)) if isinstance(device, str) else None
    if name is None:
        name = ids.parse_meter_id(device, agg, f"{where}.device")
        seen["device", device] = name
    for field, value, high in (("slot", slot, slots - 1), ("exported_wh", exported, None),
                               ("imported_wh", imported, None)):  # fmt: skip
        if type(value) is not int or value < 0:
            raise ChaincodeError(
                Code.BAD_ARGUMENT, f"{where}.{field} {value!r}: is not a non-negative integer"
            )
        if high is not None and value > high:
            raise ChaincodeError(
                Code.BAD_ARGUMENT,
                f"{where}.slot {value}: is not in 0..{high} ({slots} intervals an hour)",
            )
    try:
        sig = base64.b64decode(signature, validate=True) if isinstance(signature, str) else None
    except (binascii.Error, ValueError):
        sig = None
    if not sig or len(sig) > 80:
        raise ChaincodeError(Code.BAD_ARGUMENT, f"{where}.signature: is not a base64 DER signature")
    reading = {"period": pid.id, "meter": name, "slot": slot, "exported_wh": exported,
               "imported_wh": imported, "signature": signature}  # fmt: skip
    return pid, reading, sig


def submit(stub: Stub, text: str) -> dict[str, Any]:
    """SubmitReadings: check every reading of the batch, then write them all (or none)."""
    action = "SubmitReadings"
    agg = owner(stub)
    require_gateway(stub, agg, action)
    if len(text) > MAX_BATCH_BYTES:
        raise ChaincodeError(
            Code.ARGUMENT_TOO_LARGE,
            f"{action}: readings is {len(text)} bytes; a batch may be at most {MAX_BATCH_BYTES}",
        )
    items = json_arg("readings", text)
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
        raise ChaincodeError(
            Code.BAD_ARGUMENT, f"readings: is not a list of 1..{MAX_BATCH} readings"
        )
    interval = config(stub)["interval_s"]
    seen: dict[Any, Any] = {}
    slots = 3600 // interval
    parsed = [_parse(agg, slots, i, item, seen) for i, item in enumerate(items)]
    first: dict[tuple[ids.PeriodId, str, int], int] = {}
    hours: dict[tuple[ids.PeriodId, str], str] = {}  # (period, device) -> its record's key
    for i, (pid, r, _) in enumerate(parsed):
        at = (pid, r["meter"], r["slot"])
        if at in first:
            raise ChaincodeError(
                Code.DUPLICATE_READING,
                f"{action}: readings[{i}] (device {r['meter']}, {r['period']} slot {r['slot']}) "
                f"repeats readings[{first[at]}]",
            )
        first[at] = i
        if (pid, r["meter"]) not in hours:
            hours[pid, r["meter"]] = ihour_key(pid, r["meter"])
    devices = sorted({r["meter"] for _, r, _ in parsed})
    touched = sorted({pid for pid, _, _ in parsed})
    groups = sorted(hours)
    values = stub.get_state_multiple(
        [device_key(d) for d in devices]
        + [key("meter", d) for d in devices]
        + [seal_key(p) for p in touched]
        + [hours[g] for g in groups]
    )
    n, t = len(devices), len(touched)
    certified = dict(zip(devices, values[:n], strict=True))
    meters = dict(zip(devices, values[n : 2 * n], strict=True))
    sealed = dict(zip(touched, values[2 * n : 2 * n + t], strict=True))
    # Stored records are the chaincode's own canonical JSON: plain json.loads is enough.
    stored = {g: json.loads(v) if v else None for g, v in zip(groups, values[2 * n + t :],
                                                               strict=True)}  # fmt: skip
    recorded = {g: {e[0] for e in rec["readings"]} if rec else set() for g, rec in stored.items()}
    certs = {d: json.loads(certified[d]) for d in devices if certified[d]}
    bounds = {d: reading_bound_wh(json.loads(meters[d]), interval) for d in devices if meters[d]}
    keys_of = {d: _public_key(certs[d]["cert_pem"]) for d in certs}
    channel = stub.channel_id
    for i, (pid, r, sig) in enumerate(parsed):
        where = f"{action}: readings[{i}] (device {r['meter']}, {r['period']} slot {r['slot']})"
        device = certs.get(r["meter"])
        if device is None or r["meter"] not in bounds:
            raise ChaincodeError(Code.NOT_REGISTERED, f"{where}: the device is not certified")
        for field in ("exported_wh", "imported_wh"):
            if r[field] > bounds[r["meter"]]:
                raise ChaincodeError(
                    Code.OVER_CAPACITY,
                    f"{where}: {field} {r[field]}: device {r['meter']} may report at most "
                    f"{bounds[r['meter']]} Wh in {interval} s (certified capacity)",
                )
        if sealed[pid]:
            raise ChaincodeError(Code.PERIOD_SEALED, f"{where}: period {pid} is sealed")
        if r["slot"] in recorded[pid, r["meter"]]:
            raise ChaincodeError(
                Code.DUPLICATE_READING, f"{where}: is already recorded (a replayed reading)"
            )
        try:
            keys_of[r["meter"]].verify(sig, signed_bytes(channel, r), _ECDSA)
        except InvalidSignature:
            raise ChaincodeError(
                Code.BAD_SIGNATURE,
                f"{where}: the signature does not verify against the device's certified key "
                f"(version {device['version']})",
            ) from None
    new: dict[tuple[ids.PeriodId, str], list[list[Any]]] = {}
    for pid, r, _ in parsed:
        new.setdefault((pid, r["meter"]), []).append(
            [r["slot"], r["exported_wh"], r["imported_wh"], r["signature"]]
        )
    for g in groups:
        pid, device = g
        entries = sorted([*(stored[g]["readings"] if stored[g] else []), *new[g]])
        put_json(stub, hours[g], {"period": pid.id, "meter": device, "readings": entries})
    return {
        "channel": stub.channel_id,
        "accepted": len(parsed),
        "devices": len(devices),
        "periods": [p.id for p in touched],
        "tx_id": stub.tx_id,
    }


def expand(record: dict[str, Any]) -> list[dict[str, Any]]:
    """A device-hour record -> its interval readings (the Merkle leaves and GetReadings rows)."""
    return [
        {"period": record["period"], "meter": record["meter"], "slot": slot,
         "exported_wh": exported, "imported_wh": imported, "signature": signature}
        for slot, exported, imported, signature in record["readings"]
    ]  # fmt: skip


def period_interval_readings(stub: Stub, pid: ids.PeriodId) -> list[dict[str, Any]]:
    """Every signed interval reading of a period, in (device, slot) order."""
    return [r for record in records(stub, "ireading", *pid.key_parts) for r in expand(record)]
