"""vpp-main and three slave channels in memory, built up to each stage of a period's life.

The access-control matrix and the bad-input tests need, for every market and
meter function, a ledger on which that call *would* succeed for an allowed
caller: otherwise a refusal could come from the state rather than from the
caller, and the test would prove nothing. ``stage(name)`` returns a fresh
copy of the world at one stage (built once, then deep-copied), so each call
under test starts from the same state and cannot affect the next.

Cast: Agg3 (seller) and Agg4 (buyer) trade period 00001-13 and sign one P2P
contract; Agg5 is registered but has no order (the "other aggregator"). Each
has a certified PV of 300 kW and a load of 200 kW on meter agg<N>-m1 (so the
meter may report 500 kWh an hour), synced to vpp-main (SyncCapacity): orders
are bounded by them, 300 kWh to sell and 200 kWh to buy.
"""

from __future__ import annotations

import copy
import functools
import json
from typing import Any

from certs import agg_admin, agg_meter, agg_trader, grid_admin, vppo_admin
from sealed_orders import invoke, market_ledger
from vpp_chaincode.market import MarketContract
from vpp_chaincode.meter import MeterContract
from vpp_shim.api import Caller, ChaincodeError
from vpp_shim.testing import MemoryLedger, MemoryStub
from vppctl.fleet import Device

P = "00001-13"
DEVICE = Device.create("agg3-m1", "PV", 300)
CONTRACT = "00001-13-0001"
AGGS = (3, 4, 5)
# Certified resources of each aggregator on its meter agg<N>-m1: (id, kind, kW).
RESOURCES = {n: ((f"pv{n}", "PV", "300"), (f"load{n}", "load", "200")) for n in AGGS}
VPPO = vppo_admin()
STAGES = (
    "bare",
    "requested",
    "registered",
    "proposed",
    "open",
    "closed",
    "cleared",
    "window_over",
    "reported",
    "sealed",
    "anchored",
    "settled",
)
# The period's signing window (market configuration, seconds): short, as in a demo.
SIGNING_WINDOW_S = 60
# A branch: the Grid loads a model before the period opens, so the cleared period
# waits for its verdict ("grid-cleared"), which the Grid then gives ("grid-checked").
GRID_STAGES = ("grid-cleared", "grid-checked")
GRID_SHA = "ab" * 32
GRID_MODEL = json.dumps(
    {"sha256": GRID_SHA, "name": "test feeder", "buses": 33, "lines": 32,
     "regions": ["R1", "R2", "R3", "R4", "R5", "R6"],
     "vm_min_pu": "0.95", "vm_max_pu": "1.05", "max_loading_percent": "100"}
)  # fmt: skip
GRID_PASS = json.dumps(
    {"period": P, "model_sha256": GRID_SHA, "result": "pass",
     "book": {"contracts": 1, "wh": 100000}, "curtailments": [], "violations": [],
     "after": {"vm_min_pu": "0.97", "vm_max_pu": "1.02", "max_loading_percent": "20"}}
)  # fmt: skip
# How long after clearing the aggregator alone may seal (market configuration, seconds).
SEAL_DEADLINE_S = 120
# Ledger time that passes between clearing and "reported": past the VPPO's sealing deadline.
LATE_S = SEAL_DEADLINE_S + 60


class World:
    def __init__(self) -> None:
        self.market = MarketContract()
        self.meter = MeterContract()
        self.main = market_ledger()
        self.slaves = {n: MemoryLedger(channel_id=f"agg{n}") for n in AGGS}
        self._wire()

    def _wire(self) -> None:
        self.main.peers = {(f"agg{n}", "meter"): (self.meter, s) for n, s in self.slaves.items()}
        for s in self.slaves.values():  # the meter reads the period cross-channel to seal
            s.peers = {("vpp-main", "market"): (self.market, self.main)}

    def clone(self) -> World:
        other = copy.copy(self)
        other.main = copy.deepcopy(self.main)
        other.slaves = {n: copy.deepcopy(s) for n, s in self.slaves.items()}
        other._wire()
        return other

    def pass_time(self, seconds: int) -> None:
        """Ledger time moves on by ``seconds`` on every channel (one clock, as on a network)."""
        now = max(ledger.clock_ns for ledger in (self.main, *self.slaves.values()))
        for ledger in (self.main, *self.slaves.values()):
            ledger.clock_ns = now + seconds * 1_000_000_000

    def ledger(self, channel: str) -> MemoryLedger:
        return self.main if channel == "vpp-main" else self.slaves[int(channel[3:])]

    def call(self, caller: Caller, function: str, *args: str, channel: str = "vpp-main") -> Any:
        contract = self.market if channel == "vpp-main" else self.meter
        # Orders are sealed: an order argument goes out as transient data (sealed_orders).
        raw = invoke(self.ledger(channel), contract, caller, function, *args)
        return json.loads(raw) if raw else None

    def snapshot(self) -> Any:
        """Everything a transaction could change, on every channel (MemoryLedger.snapshot)."""
        return [ledger.snapshot() for ledger in (self.main, *self.slaves.values())]

    def refusal(
        self, caller: Caller, function: str, *args: str, channel: str = "vpp-main"
    ) -> str | None:
        """None if the call succeeded; else its message, after checking it changed nothing."""
        refused = self.refusal_error(caller, function, *args, channel=channel)
        return None if refused is None else str(refused)

    def refusal_error(
        self, caller: Caller, function: str, *args: str, channel: str = "vpp-main"
    ) -> ChaincodeError | None:
        """None if the call succeeded; else the refusal (code and message), checked to have
        changed nothing."""
        before = self.snapshot()
        ledgers = (self.main, *self.slaves.values())
        attempts = [len(ledger.refused) for ledger in ledgers]
        try:
            self.call(caller, function, *args, channel=channel)
        except ChaincodeError as exc:
            wrote = [
                a for n, ledger in zip(attempts, ledgers, strict=True) for a in ledger.refused[n:]
            ]
            assert not wrote, f"refused {function} wrote before refusing: {wrote}"
            assert self.snapshot() == before, f"refused {function} changed the ledger"
            return exc
        return None


class ReadSpy(MemoryStub):
    """A stub that records every read: single keys, ranges and partial composite keys."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.reads: list[str] = []

    def get_state(self, key: str) -> bytes:
        self.reads.append(key)
        return super().get_state(key)

    def get_state_by_range(self, start: str, end: str) -> Any:
        self.reads.append(f"range {start!r}..{end!r}")
        return super().get_state_by_range(start, end)

    def get_state_by_partial_composite_key(self, object_type: str, attributes: list[str]) -> Any:
        self.reads.append(f"partial {object_type}~{'~'.join(attributes)}")
        return super().get_state_by_partial_composite_key(object_type, attributes)


def order(agg: int, side: str, offer: str, reserve: str, period: str = P) -> str:
    return json.dumps(
        {
            "agg": f"Agg{agg}",
            "period": period,
            "side": side,
            "quantity_kwh": "100",
            "offer": offer,
            "reserve": reserve,
        }
    )


def _advance(world: World, stage: str) -> None:
    """Takes the world from the previous stage to ``stage``."""
    if stage == "bare":
        return
    if stage == "requested":  # each aggregator's admin asks to be admitted
        for n in AGGS:
            world.call(agg_admin(n), "RequestAdmission", f"Agg{n}", f"R{n}",
                       json.dumps([f"agg{n}-m1"]))  # fmt: skip
    elif stage == "registered":
        for n in AGGS:
            world.call(VPPO, "ApproveAdmission", f"Agg{n}", "0.5")
            for who, fn in ((agg_admin(n), "RegisterResource"), (grid_admin(), "CertifyResource")):
                for rid, kind, kw in RESOURCES[n]:
                    world.call(who, fn, rid, kind, kw, f"agg{n}-m1", channel=f"agg{n}")
            # Its orders are bounded by that capacity (300 kWh to sell, 200 to buy) once
            # vpp-main has it: the VPPO syncs it, as any party of agg<N> may.
            world.call(VPPO, "SyncCapacity", f"Agg{n}")
        world.call(VPPO, "Ping")
        world.call(VPPO, "Ping", channel="agg3")
        # Meter agg3-m1 is also a device with its own key (signed interval readings).
        certification = json.dumps(DEVICE.certification())
        world.call(grid_admin(), "CertifyDevice", certification, channel="agg3")
        deadlines = {"signing_window_s": SIGNING_WINDOW_S, "seal_deadline_s": SEAL_DEADLINE_S}
        world.call(VPPO, "SetMarketConfig", json.dumps(deadlines))
    elif stage == "proposed":  # Agg3's admin proposes a wind turbine the Grid has not certified
        world.call(agg_admin(3), "RegisterResource", "wt3", "WT", "100", "agg3-m1", channel="agg3")
    elif stage == "open":
        world.call(VPPO, "OpenPeriod", "1", "13")
        # t=13: f_t 0.65, s_t 0.95 in the paper's table; they cross, so one P2P contract.
        world.call(agg_trader(3), "SubmitOrder", order(3, "sell", "0.70", "0.70"))
        world.call(agg_trader(4), "SubmitOrder", order(4, "buy", "0.80", "0.80"))
    elif stage == "closed":
        world.call(VPPO, "ClosePeriod", P)
    elif stage == "cleared":
        cleared = world.call(VPPO, "ClearPeriod", P)
        assert cleared["matches"] == 1, cleared
    elif stage == "window_over":
        world.main.advance(SIGNING_WINDOW_S)  # ledger time: VoidUnsigned is allowed from here
    elif stage == "reported":
        world.call(agg_trader(3), "SignContract", CONTRACT)
        world.call(agg_trader(4), "SignContract", CONTRACT)
        world.call(agg_meter(3, 1), "RecordReading", P, "100000", "0", channel="agg3")
        world.call(agg_meter(4, 1), "RecordReading", P, "0", "100000", channel="agg4")
        world.pass_time(LATE_S)
    elif stage == "sealed":
        for n in (3, 4):
            world.call(agg_admin(n), "SealPeriod", P, channel=f"agg{n}")
    elif stage == "anchored":
        for n in (3, 4):
            world.call(VPPO, "AnchorDelivery", P, f"Agg{n}")
    elif stage == "settled":
        world.call(VPPO, "SettlePeriod", P)
    else:
        raise ValueError(f"unknown stage {stage!r}; stages are {STAGES}")


@functools.cache
def _built(stage: str) -> World:
    index = STAGES.index(stage)
    world = World() if index == 0 else _built(STAGES[index - 1]).clone()
    _advance(world, stage)
    return world


@functools.cache
def _grid_built(stage: str) -> World:
    if stage == "grid-cleared":
        world = _built("registered").clone()
        world.call(grid_admin(), "LoadGridModel", GRID_MODEL)
        for step in ("open", "closed", "cleared"):
            _advance(world, step)
    else:
        world = _grid_built("grid-cleared").clone()
        world.call(grid_admin(), "SubmitGridVerdict", GRID_PASS)
    return world


def stage(name: str) -> World:
    """A fresh copy of the world at stage ``name`` (one of STAGES or GRID_STAGES, or
    "topology": registered, with tie-lines between the cast's regions loaded)."""
    if name in GRID_STAGES:
        return _grid_built(name).clone()
    if name == "topology":
        world = _built("registered").clone()
        world.call(VPPO, "LoadTopology", json.dumps([["R3", "R4", "10000"], ["R4", "R5", "10000"]]))
        return world
    return _built(name).clone()
