"""The demo's site meters as signed devices: deliveries as 15-minute readings (issue 13).

The paper demo and ``vppctl simulate`` put each aggregator's wind, PV and
load behind its site meter ``agg<N>-m1``. Here that meter is also a device
certified by the Grid (its own P-256 key, kept next to the network's wallet
in ``devices/agg<N>/`` like ``vppctl devices simulate``'s fleet), so a
period's delivery is metered as the device simulator meters it: one signed
reading per interval (``GetMeterConfig`` ``interval_s``), submitted in one
``SubmitReadings`` batch per channel by the aggregator's gateway, and the
seal and anchor carry their Merkle root (``vppctl meter prove``).

AggN seals only once every certified meter has reported (trust rules), so
the batch also carries a zero reading for each other certified device whose
key this network keeps (e.g. a fleet of ``vppctl devices simulate``); a
certified meter nobody here can speak for is left to the seal's refusal,
which names it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vpp_gateway import load_profile
from vpp_network import identities

from vppctl.fleet import Device
from vppctl.session import ContractLike, query
from vppctl.settings import SETTINGS

SITE_METER = 1  # agg<N>-m1: wind, PV and load (the storage meter m2 reports hourly)


def device_folder(agg: int) -> Path:
    """Where device keys of aggregator N live: next to the network's wallet."""
    return Path(load_profile(SETTINGS.profile).wallet).parent / "devices" / f"agg{agg}"


@dataclass
class SiteMeter:
    """Aggregator N's site meter as a certified device, and its channel's other devices."""

    agg: int
    device: Device
    slots: int  # readings per hour
    bound_wh: int  # the most one interval may carry: certified capacity x interval
    meter_numbers: list[int] = field(default_factory=list)  # certified agg<N>-m<k>: the ks
    others: list[Device] = field(default_factory=list)  # other certified devices we hold

    @property
    def channel(self) -> str:
        return f"agg{self.agg}"

    def split(self, wh: int) -> list[int] | None:
        """``wh`` over the hour's intervals (the remainder one Wh at a time from the first);
        None when an interval would exceed the certified bound (then the meter reports
        hourly: capacity x 1 h may exceed the sum of the per-interval floors)."""
        base, rest = divmod(wh, self.slots)
        parts = [base + (1 if i < rest else 0) for i in range(self.slots)]
        return parts if parts[0] <= self.bound_wh else None

    def batch(self, period: str, exported_wh: int, imported_wh: int) -> list[list[Any]] | None:
        """The period's signed readings of the site meter and a zero of each other device."""
        exported, imported = self.split(exported_wh), self.split(imported_wh)
        if exported is None or imported is None:
            return None
        items = [
            self.device.reading(self.channel, period, slot, e, i)
            for slot, (e, i) in enumerate(zip(exported, imported, strict=True))
        ]
        items += [d.reading(self.channel, period, 0, 0, 0) for d in self.others]
        return items


def prepare(
    agg: int, certifier: ContractLike, submit: Any, folder: Path | None = None
) -> SiteMeter:
    """Certify agg<N>-m1's device key (once; again if the key changed) and read the
    channel's interval, the meter's bound and the other devices we hold keys for.

    ``certifier`` is the Grid admin's meter contract on agg<N> (it may read all of it);
    ``submit(contract, function, *args)`` commits.
    """
    folder = folder or device_folder(agg)
    meter_id = identities.meter_id(agg, SITE_METER)
    device = Device.load(folder, meter_id, "site", 0)
    certified = {d["device"]: d["key_id"] for d in query(certifier, "GetDevices")["devices"]}
    if certified.get(meter_id) != device.key_id():
        submit(certifier, "CertifyDevice", json.dumps([device.certification()]))
        certified[meter_id] = device.key_id()
    interval = query(certifier, "GetMeterConfig")["interval_s"]
    meters = {m["meter"]: m for m in query(certifier, "GetResources")["meters"]}
    bound = meters[meter_id]["capacity_w"] * interval // 3600
    numbered = re.compile(rf"agg{agg}-m([1-9][0-9]*)")
    numbers = sorted(int(m.group(1)) for name in meters if (m := numbered.fullmatch(name)))
    others = []
    for other in sorted(set(certified) & set(meters) - {meter_id}):
        if (folder / f"{other}.crt").exists() and (folder / f"{other}.key").exists():
            held = Device.load(folder, other, "device", 0)
            if held.key_id() == certified[other]:
                others.append(held)
    return SiteMeter(agg, device, 3600 // interval, bound, numbers, others)
