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

Every check reads keys in bulk (``get_state_multiple``), and each reading
is its own key ``ireading~<day>~<t>~<device>~<slot>``, so batches of
different devices never conflict.
"""

from __future__ import annotations

import base64
import binascii
import functools
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from vpp_market import merkle
from vpp_shim.api import ChaincodeError, Stub
from vpp_shim.codes import Code

from vpp_chaincode import ids
from vpp_chaincode.devices import device_key, public_key_of, require_gateway
from vpp_chaincode.ledger import json_arg, key, put_json
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


def ireading_key(pid: ids.PeriodId, device: str, slot: int) -> str:
    return key("ireading", *pid.key_parts, device, f"{slot:02d}")


def _parse(agg: int, slots: int, index: int, item: Any) -> tuple[ids.PeriodId, dict[str, Any]]:
    where = f"readings[{index}]"
    if not isinstance(item, list) or len(item) != 6:
        raise ChaincodeError(
            Code.BAD_ARGUMENT,
            f"{where}: is not [period, device, slot, exported_wh, imported_wh, signature]",
        )
    period, device, slot, exported, imported, signature = item
    pid = ids.parse_period(period, f"{where}.period")
    name = ids.parse_meter_id(device, agg, f"{where}.device")
    for field, value, high in (("slot", slot, slots - 1), ("exported_wh", exported, None),
                               ("imported_wh", imported, None)):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
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
    return pid, reading


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
    parsed = [_parse(agg, 3600 // interval, i, item) for i, item in enumerate(items)]
    keys = [ireading_key(pid, r["meter"], r["slot"]) for pid, r in parsed]
    first: dict[str, int] = {}
    for i, k in enumerate(keys):
        if k in first:
            r = parsed[i][1]
            raise ChaincodeError(
                Code.DUPLICATE_READING,
                f"{action}: readings[{i}] (device {r['meter']}, {r['period']} slot {r['slot']}) "
                f"repeats readings[{first[k]}]",
            )
        first[k] = i
    devices = sorted({r["meter"] for _, r in parsed})
    periods = sorted({pid for pid, _ in parsed})
    values = stub.get_state_multiple(
        [device_key(d) for d in devices]
        + [key("meter", d) for d in devices]
        + [seal_key(p) for p in periods]
        + keys
    )
    n = len(devices)
    certified = dict(zip(devices, values[:n], strict=True))
    meters = dict(zip(devices, values[n : 2 * n], strict=True))
    sealed = dict(zip(periods, values[2 * n : 2 * n + len(periods)], strict=True))
    existing = values[2 * n + len(periods) :]
    records = {d: json_arg("device", certified[d].decode()) for d in devices if certified[d]}
    bounds = {
        d: reading_bound_wh(json_arg("meter", meters[d].decode()), interval)
        for d in devices
        if meters[d]
    }
    for i, ((pid, r), stored) in enumerate(zip(parsed, existing, strict=True)):
        where = f"{action}: readings[{i}] (device {r['meter']}, {r['period']} slot {r['slot']})"
        device = records.get(r["meter"])
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
        if stored:
            raise ChaincodeError(
                Code.DUPLICATE_READING, f"{where}: is already recorded (a replayed reading)"
            )
        try:
            _public_key(device["cert_pem"]).verify(
                base64.b64decode(r["signature"]), signed_bytes(stub.channel_id, r), _ECDSA
            )
        except InvalidSignature:
            raise ChaincodeError(
                Code.BAD_SIGNATURE,
                f"{where}: the signature does not verify against the device's certified key "
                f"(version {device['version']})",
            ) from None
    for k, (_, r) in zip(keys, parsed, strict=True):
        put_json(stub, k, {**r, "tx_id": stub.tx_id})
    return {
        "channel": stub.channel_id,
        "accepted": len(parsed),
        "devices": len(devices),
        "periods": [p.id for p in periods],
        "tx_id": stub.tx_id,
    }
