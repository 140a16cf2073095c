"""A fleet of devices on aggregator N's channel: set up, report, sign and batch readings.

``vppctl devices simulate`` and the benchmark drive it. Profiles (integer
Wh, deterministic from the seed): PV follows a half-sine between 06:00 and
18:00, wind a slow random walk, loads a morning and evening peak. Faults,
each on a given number of devices:

- ``firmware``: the device reports a software fingerprint the Grid never
  certified (one alarm per device);
- ``stuck``: the meter repeats its first reading every interval;
- ``missing``: the device sends nothing (its meter is missing at the seal);
- ``forged``: one reading per hour whose energy was changed after signing.
  The chaincode refuses the whole batch naming it; the gateway drops the
  named reading and resubmits the rest, as a real gateway would.

Setting up is idempotent: resources and certifications already on the
channel are kept, so a second run reuses the same devices (their keys are
kept in ``<network>/devices/agg<N>/``).
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vpp_gateway import EndorseError

from vppctl.fleet import Device, fingerprint
from vppctl.session import ContractLike, query

KINDS = ("PV", "WT", "load")
CAPACITY_KW = {"PV": 10, "WT": 20, "load": 8}
FAULTS = ("firmware", "stuck", "missing", "forged")
SETUP_BATCH = 50  # resources/certifications per transaction (argument size)
_NAMED_READING = re.compile(r"readings\[(\d+)\]")


@dataclass
class Faults:
    """How many devices get each fault (the first ones of each kind in id order)."""

    firmware: int = 0
    stuck: int = 0
    missing: int = 0
    forged: int = 0

    @classmethod
    def parse(cls, specs: Sequence[str]) -> Faults:
        """``["firmware:2", "missing:1"]`` -> Faults; a bare name means one device."""
        faults = cls()
        for spec in specs:
            name, _, count = spec.partition(":")
            if name not in FAULTS:
                raise ValueError(f"--fault {spec!r}: is not one of {', '.join(FAULTS)}[:N]")
            if count and not count.isdigit():
                raise ValueError(f"--fault {spec!r}: N is not a whole number")
            setattr(faults, name, int(count or 1))
        return faults


@dataclass
class Stats:
    devices: int = 0
    readings_sent: int = 0
    readings_committed: int = 0
    batches: int = 0
    refused: list[str] = field(default_factory=list)
    alarms_raised: int = 0


def fleet(agg: int, count: int, folder: Path | None) -> list[Device]:
    """``count`` devices agg<N>-d0001..: PV, WT and loads in turn."""
    devices = []
    for i in range(1, count + 1):
        kind = KINDS[(i - 1) % len(KINDS)]
        device_id = f"agg{agg}-d{i:04d}"
        if folder is None:
            devices.append(Device.create(device_id, kind, CAPACITY_KW[kind]))
        else:
            devices.append(Device.load(folder, device_id, kind, CAPACITY_KW[kind]))
    return devices


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def setup(
    proposer: ContractLike,
    certifier: ContractLike,
    devices: Sequence[Device],
    submit: Callable[..., Any],
) -> int:
    """Propose (AggN admin) and certify (Grid) each device's resource, certify the devices.

    Returns how many devices were newly certified.
    """
    resources = {r["id"]: r for r in query(certifier, "GetResources")["resources"]}
    new = [d.resource() for d in devices if d.id not in resources]
    for chunk in _chunks(new, SETUP_BATCH):
        submit(proposer, "RegisterResources", json.dumps(list(chunk)))
    pending = [
        d.resource() for d in devices if resources.get(d.id, {}).get("status") != "CERTIFIED"
    ]
    for chunk in _chunks(pending, SETUP_BATCH):
        submit(certifier, "CertifyResources", json.dumps(list(chunk)))
    certified = {r["device"]: r["key_id"] for r in query(certifier, "GetDevices")["devices"]}
    uncertified = [d.certification() for d in devices if certified.get(d.id) != d.key_id()]
    for chunk in _chunks(uncertified, SETUP_BATCH):
        submit(certifier, "CertifyDevice", json.dumps(list(chunk)))
    return len(uncertified)


def energy_wh(device: Device, hour: int, slot: int, slots: int, rng: random.Random) -> int:
    """Energy of one interval (exported for PV/WT, imported for loads), capacity-bounded."""
    bound = device.capacity_kw * 1000 * 3600 // slots // 3600
    t = (hour - 1) + (slot + 0.5) / slots  # hour of day at the interval's middle
    if device.kind == "PV":
        share = max(0.0, math.sin(math.pi * (t - 6) / 12)) if 6 <= t <= 18 else 0.0
    elif device.kind == "WT":
        share = min(1.0, max(0.0, 0.45 + 0.3 * math.sin(t / 3) + rng.uniform(-0.15, 0.15)))
    else:
        share = 0.35 + 0.3 * math.exp(-((t - 8) ** 2) / 4) + 0.35 * math.exp(-((t - 19) ** 2) / 4)
    return min(bound, int(bound * share * rng.uniform(0.9, 1.0)))


def readings(
    channel: str,
    devices: Sequence[Device],
    periods: Sequence[tuple[str, int]],
    slots: int,
    faults: Faults,
    seed: int = 1,
) -> list[list[Any]]:
    """Every device's signed readings for ``periods`` ([(period id, hour)]), faults applied."""
    rng = random.Random(seed)
    missing = {d.id for d in devices[: faults.missing]}
    stuck = {d.id for d in devices[faults.missing : faults.missing + faults.stuck]}
    first: dict[str, int] = {}
    out: list[list[Any]] = []
    for period, hour in periods:
        forged = 0
        for slot in range(slots):
            for d in devices:
                if d.id in missing:
                    continue
                wh = energy_wh(d, hour, slot, slots, rng)
                if d.id in stuck:
                    wh = first.setdefault(d.id, wh)
                exported, imported = (0, wh) if d.kind == "load" else (wh, 0)
                signed = d.reading(channel, period, slot, exported, imported)
                if forged < faults.forged and d.kind != "load" and slot == slots - 1:
                    signed[3] += 1  # changed after signing: the signature no longer matches
                    forged += 1
                out.append(signed)
    return out


def submit_batches(
    gateway: ContractLike,
    items: list[list[Any]],
    batch_size: int,
    submit: Callable[..., Any],
    stats: Stats,
    on_batch: Callable[[int], None] | None = None,
) -> None:
    """Sends ``items`` in batches; a batch refused for one reading is resent without it."""
    for chunk in _chunks(items, batch_size):
        batch = list(chunk)
        while batch:
            stats.batches += 1
            stats.readings_sent += len(batch)
            try:
                result = submit(gateway, "SubmitReadings", json.dumps(batch))
            except EndorseError as exc:
                message = exc.chaincode_message or str(exc)
                named = _NAMED_READING.search(message)
                if named is None or exc.code not in ("BAD_SIGNATURE", "OVER_CAPACITY"):
                    raise
                stats.refused.append(message)
                del batch[int(named.group(1))]
                continue
            stats.readings_committed += result["accepted"]
            break
        if on_batch is not None:
            on_batch(len(chunk))


def report_fingerprints(
    gateway: ContractLike,
    devices: Sequence[Device],
    faults: Faults,
    submit: Callable[..., Any],
    stats: Stats,
) -> None:
    """The gateway reports each device's fingerprints; ``firmware`` faults report a bad one."""
    missing = {d.id for d in devices[: faults.missing]}
    present = [d for d in devices if d.id not in missing]
    wrong = {d.id for d in present[-faults.firmware :]} if faults.firmware else set()
    reports = []
    for d in present:
        report = d.report()
        if d.id in wrong:
            report["software"] = fingerprint("firmware 0.9-unapproved")
        reports.append(report)
    for chunk in _chunks(reports, SETUP_BATCH):
        result = submit(gateway, "ReportFingerprints", json.dumps(list(chunk)))
        stats.alarms_raised += len(result["raised"])
