"""An in-memory Fabric for vppctl's unit tests: the real chaincodes, no network.

Test support, so it lives under tests/ (the CLI package itself loads no
chaincode package; tests/unit/test_cli_structure.py checks that).

``FakeFabric`` runs the real ``market`` and ``meter`` contracts on
``vpp_shim.testing.MemoryLedger`` (vpp-main and one ``aggN`` channel per
aggregator, linked for AnchorDelivery), behind objects shaped like
vpp_gateway's Gateway / Network / Contract. Identities are real
certificates with the roles the network's wallet gives (admin OU, trader
and meter attributes), so the chaincode's access rules apply as on the
network. Refusals surface as the Gateway reports them (EndorseError with
"chaincode response 500, CODE: <message>"), so vppctl's error handling is
exercised too. ``install(monkeypatch)`` points vppctl's ``connect`` here.

Fabric things it does not model: ordering, blocks of several transactions
and therefore MVCC conflicts (each submit commits alone, as its own block).
"""

from __future__ import annotations

import re
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sealed_orders import market_ledger
from vpp_chaincode.market import MarketContract
from vpp_chaincode.meter import MeterContract
from vpp_gateway import EndorseError, ErrorDetail, EvaluateError
from vpp_network import identities
from vpp_network.issuer import self_signed
from vpp_shim.api import Caller, ChaincodeError, Contract
from vpp_shim.testing import MemoryLedger, MemoryStub

MAIN = "vpp-main"


@dataclass
class FakeEvent:
    block_number: int
    tx_id: str
    event_name: str
    payload: bytes


@dataclass
class Call:
    identity: str
    channel: str
    function: str
    args: tuple[str, ...]
    submitted: bool
    transient: dict[str, bytes] = field(default_factory=dict)
    endorsing_orgs: tuple[str, ...] = ()


@dataclass
class FakeFabric:
    """vpp-main (market) and agg1..aggN (meter) in memory; thread-safe like a peer."""

    aggs: int = 6
    main: MemoryLedger = field(default_factory=lambda: market_ledger(MAIN))
    calls: list[Call] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.market = MarketContract()
        self.meter = MeterContract()
        self.slaves = {n: MemoryLedger(channel_id=f"agg{n}") for n in range(1, self.aggs + 1)}
        for n, ledger in self.slaves.items():
            self.main.peers[(f"agg{n}", "meter")] = (self.meter, ledger)
            ledger.peers[(MAIN, "market")] = (self.market, self.main)  # sealing reads the period
        self.heights: dict[str, int] = {MAIN: 1, **{f"agg{n}": 1 for n in self.slaves}}
        self.events: dict[str, list[FakeEvent]] = {ch: [] for ch in self.heights}
        self.lock = threading.RLock()
        self._callers: dict[str, Caller] = {}

    # --- identities ---------------------------------------------------------------------
    @property
    def wallet(self) -> list[str]:
        names = [identities.OPERATOR, identities.GRID_ADMIN]
        for n in self.slaves:
            names += identities.agg_identities(n)
        return names

    def caller(self, name: str) -> Caller:
        """The certificate the network's wallet would hold for ``name``."""
        if name in self._callers:
            return self._callers[name]
        if name not in self.wallet:
            from vpp_gateway import IdentityError

            raise IdentityError(f"no identity {name!r} in the wallet (fake fabric)")
        if name in (identities.OPERATOR, identities.GRID_ADMIN):
            mspid = "VPPOMSP" if name == identities.OPERATOR else "GridMSP"
            cert, _ = self_signed(f"Admin@{name[:4]}", ous=["admin"])
        else:
            parsed = identities.parse_agg_identity(name)
            assert parsed is not None
            n, role, meter = parsed
            mspid = f"Agg{n}MSP"
            if role == "admin":
                cert, _ = self_signed(f"Admin@agg{n}", ous=["admin"])
            elif role == "trader":
                cert, _ = self_signed(
                    f"trader@agg{n}", ous=["client"], attrs={"vpp.role": "trader"}
                )
            else:  # meters are the Grid's (the metering authority's), naming their aggregator
                mspid = "GridMSP"
                meter_id = identities.meter_id(n, meter or 1)
                attrs = {"vpp.role": "meter", "vpp.agg": str(n), "vpp.meter": meter_id}
                cert, _ = self_signed(f"agg{n}-meter{meter}@grid", ous=["client"], attrs=attrs)
        self._callers[name] = Caller(mspid, cert)
        return self._callers[name]

    # --- the gateway side ---------------------------------------------------------------
    def gateway(self, identity: str) -> FakeGateway:
        self.caller(identity)  # an unknown identity fails at connect, as connect_as does
        return FakeGateway(self, identity)

    def install(self, monkeypatch: Any) -> FakeFabric:
        """Make vppctl talk to this fabric (``connect`` and the wallet listing)."""
        import vppctl.session
        import vppctl.site_devices

        monkeypatch.setattr(vppctl.session, "connect", self.gateway)
        monkeypatch.setattr(vppctl.session, "wallet_names", lambda: set(self.wallet))
        # Device keys (the demo's site meters, the device simulator) in a folder of this
        # fabric's own, never next to a real network's wallet.
        keys = Path(tempfile.mkdtemp(prefix="fake-fabric-devices-"))
        monkeypatch.setattr(vppctl.site_devices, "device_folder", lambda agg: keys / f"agg{agg}")
        self.device_keys = keys
        weakref.finalize(self, shutil.rmtree, keys, True)
        return self

    def _target(self, channel: str, chaincode: str) -> tuple[MemoryLedger, Contract]:
        if channel == MAIN and chaincode == "market":
            return self.main, self.market
        agg = int(channel[3:]) if re.fullmatch(r"agg[1-9][0-9]*", channel) else None
        if agg in self.slaves and chaincode == "meter":
            return self.slaves[agg], self.meter
        message = (
            f"make sure the chaincode {chaincode} has been successfully defined on channel "
            f"{channel} and try again"
        )
        raise EndorseError(message, details=[ErrorDetail("fake-peer:7051", "FakeMSP", message)])

    def _member(self, caller: Caller, channel: str) -> None:
        if channel == MAIN or caller.mspid in ("VPPOMSP", "GridMSP"):
            return
        if caller.mspid != f"Agg{channel[3:]}MSP":
            message = f"access denied: {caller.mspid} is not a member of channel {channel}"
            raise EndorseError(message, details=[ErrorDetail("fake-peer:7051", "FakeMSP", message)])

    def invoke(
        self,
        identity: str,
        channel: str,
        chaincode: str,
        function: str,
        args: tuple[Any, ...],
        *,
        submit: bool,
        transient: dict[str, str | bytes] | None = None,
        endorsing_orgs: Any = None,
    ) -> bytes:
        """Run one proposal: evaluate (no commit) or submit (commit as one block).

        It runs as on the caller's own organisation's peer (the Gateway peer,
        which endorses first): an aggregator's peer holds no order book
        collection, so reading it there fails as on the network.
        """
        params = [a.decode() if isinstance(a, bytes) else str(a) for a in args]
        sent = {
            k: v.encode() if isinstance(v, str) else bytes(v) for k, v in (transient or {}).items()
        }
        caller = self.caller(identity)
        error_class = EndorseError if submit else EvaluateError
        with self.lock:
            self.calls.append(
                Call(identity, channel, function, tuple(params), submit, sent,
                     tuple(endorsing_orgs or ()))
            )  # fmt: skip
            ledger, contract = self._target(channel, chaincode)
            self._member(caller, channel)
            stub = MemoryStub(ledger, caller, function, params, sent, peer_mspid=caller.mspid)
            try:
                payload = contract.invoke(stub)
            except ChaincodeError as exc:
                message = f"chaincode response 500, {exc.wire}"
                raise error_class(
                    "failed to endorse transaction, see attached details for more info",
                    details=[ErrorDetail("fake-peer:7051", caller.mspid, message)],
                ) from exc
            if submit:
                ledger.commit(stub)
                block = self.heights[channel]
                self.heights[channel] += 1
                if stub.event is not None:
                    self.events[channel].append(FakeEvent(block, stub.tx_id, *stub.event))
            return payload

    def submits(self, function: str | None = None) -> list[Call]:
        return [
            c for c in self.calls if c.submitted and (function is None or c.function == function)
        ]


class FakeContract:
    def __init__(self, network: FakeNetwork, chaincode: str) -> None:
        self.network = network
        self.fabric = network.gateway.fabric
        self.identity = network.gateway.identity
        self.channel = network.name
        self.name = chaincode

    def evaluate(self, function: str, *args: Any, transient: Any = None, **_: Any) -> bytes:
        return self.fabric.invoke(
            self.identity, self.channel, self.name, function, args, submit=False,
            transient=transient,
        )  # fmt: skip

    def submit(
        self,
        function: str,
        *args: Any,
        commit_timeout: float | None = None,
        retry_on_conflict: int = 0,
        transient: Any = None,
        endorsing_orgs: Any = None,
        **_: Any,
    ) -> bytes:
        return self.fabric.invoke(
            self.identity, self.channel, self.name, function, args, submit=True,
            transient=transient, endorsing_orgs=endorsing_orgs,
        )  # fmt: skip


class FakeEventStream:
    """Events of one channel from ``start`` on; stops after ``timeout`` idle seconds."""

    def __init__(
        self, fabric: FakeFabric, channel: str, start: int | None, timeout: float | None
    ) -> None:
        self.fabric = fabric
        self.channel = channel
        self.next_block = fabric.heights[channel] if start is None else start
        self.timeout = timeout
        self.closed = False
        self._delivered: set[str] = set()
        self.last_block: int | None = None

    def __iter__(self) -> Iterator[FakeEvent]:
        idle_since = time.monotonic()
        while not self.closed:
            with self.fabric.lock:
                pending = [
                    e
                    for e in self.fabric.events[self.channel]
                    if e.block_number >= self.next_block and e.tx_id not in self._delivered
                ]
            for event in pending:
                self._delivered.add(event.tx_id)
                self.last_block = event.block_number
                idle_since = time.monotonic()
                yield event
                if self.closed:
                    return
            if self.timeout is not None and time.monotonic() - idle_since >= self.timeout:
                return
            time.sleep(0.01)

    def close(self) -> None:
        self.closed = True


class FakeNetwork:
    def __init__(self, gateway: FakeGateway, name: str) -> None:
        self.gateway = gateway
        self.name = name

    def contract(self, chaincode: str) -> FakeContract:
        return FakeContract(self, chaincode)

    def block_height(self) -> int:
        with self.gateway.fabric.lock:
            return self.gateway.fabric.heights[self.name]

    def chaincode_events(
        self,
        chaincode: str,
        start_block: int | None = None,
        *,
        timeout: float | None = None,
        **_: Any,
    ) -> FakeEventStream:
        return FakeEventStream(self.gateway.fabric, self.name, start_block, timeout)


class FakeGateway:
    def __init__(self, fabric: FakeFabric, identity: str) -> None:
        self.fabric = fabric
        self.identity = identity
        self.closed = False

    def network(self, name: str) -> FakeNetwork:
        return FakeNetwork(self, name)

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> FakeGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def paper_order(day: int, hour: int, row: Any) -> str:
    """A SubmitOrder argument for a row of the packaged paper book."""
    import json

    return json.dumps(
        {
            "agg": f"Agg{row.agg}",
            "period": f"{day:05d}-{hour:02d}",
            "side": row.side,
            "quantity_kwh": row.quantity_kwh,
            "offer": row.offer,
            "reserve": row.reserve,
        }
    )


class PaperMarket:
    """Steps of the paper's case run directly on a FakeFabric (test set-up, no vppctl)."""

    def __init__(self, fabric: FakeFabric) -> None:
        self.fabric = fabric

    def call(self, identity: str, function: str, *args: str, channel: str = MAIN) -> Any:
        import json

        chaincode = "market" if channel == MAIN else "meter"
        raw = self.fabric.invoke(identity, channel, chaincode, function, args, submit=True)
        return json.loads(raw) if raw else None

    def register(self, reputations_hour: int = 2) -> None:
        """Agg1..Agg6 with the paper's regions, the book's R, two meters, a certified PV of
        1000 kW and load of 500 kW synced to vpp-main (the bound of orders); the tie-lines."""
        import json

        from vppctl import paper_case

        book = {r.agg: r.reputation for r in paper_case.book(reputations_hour)}
        for a in paper_case.aggregators():
            meters = json.dumps([f"agg{a.agg}-m1", f"agg{a.agg}-m2"])
            self.call(f"agg{a.agg}-admin", "RequestAdmission", f"Agg{a.agg}", a.region, meters)
            self.call("vppo-admin", "ApproveAdmission", f"Agg{a.agg}", book[a.agg])
            for terms in (
                (f"agg{a.agg}-site", "PV", "1000", f"agg{a.agg}-m1"),
                (f"agg{a.agg}-load", "load", "500", f"agg{a.agg}-m1"),
            ):
                self.call(f"agg{a.agg}-admin", "RegisterResource", *terms, channel=f"agg{a.agg}")
                self.call("grid-admin", "CertifyResource", *terms, channel=f"agg{a.agg}")
            # Its orders are bounded by that capacity once vpp-main has it (trust rules).
            self.call("vppo-admin", "SyncCapacity", f"Agg{a.agg}")
        lines = [list(r) for r in paper_case.tie_line_rows()]
        self.call("vppo-admin", "LoadTopology", json.dumps(lines))

    def open(self, day: int, hour: int) -> None:
        self.call("vppo-admin", "OpenPeriod", str(day), str(hour))

    def submit_book(self, day: int, hour: int) -> None:
        from sealed_orders import proposal
        from vppctl import paper_case

        for row in paper_case.book(hour):
            _, transient = proposal("SubmitOrder", [paper_order(day, hour, row)])
            self.fabric.invoke(
                f"agg{row.agg}-trader", MAIN, "market", "SubmitOrder", (), submit=True,
                transient=transient,
            )  # fmt: skip

    def cleared(self, day: int, hour: int) -> str:
        """Open, submit the book, close and clear; returns the period id."""
        pid = f"{day:05d}-{hour:02d}"
        self.open(day, hour)
        self.submit_book(day, hour)
        self.call("vppo-admin", "ClosePeriod", pid)
        self.call("vppo-admin", "ClearPeriod", pid)
        return pid

    def sign_all(self, pid: str) -> None:
        import json

        raw = self.fabric.invoke("vppo-admin", MAIN, "market", "GetContracts", (pid,), submit=False)
        for c in json.loads(raw)["contracts"]:
            if c["kind"] == "p2p":
                for party in (c["seller"], c["buyer"]):
                    self.call(f"agg{party}-trader", "SignContract", c["id"])

    def deliver(self, pid: str, hour: int) -> None:
        """Every meter 1 reports the ordered energy; each channel seals."""
        from vppctl import paper_case

        for row in paper_case.book(hour):
            exported = row.quantity_wh if row.side == "sell" else 0
            imported = row.quantity_wh if row.side == "buy" else 0
            ch = f"agg{row.agg}"
            self.call(
                f"agg{row.agg}-meter1",
                "RecordReading",
                pid,
                str(exported),
                str(imported),
                channel=ch,
            )
            self.call(f"agg{row.agg}-admin", "SealPeriod", pid, channel=ch)


_COMMAND: Any = None


def invoke(*args: str) -> Any:
    """``vppctl ARGS`` through typer's CliRunner, stdout and stderr kept apart.

    Building the click command tree of ~30 commands costs most of a second,
    so it is built once per test session instead of once per invocation
    (typer's runner rebuilds it every time).
    """
    global _COMMAND
    import typer.main
    import typer.testing
    from vppctl.main import app

    if _COMMAND is None:
        _COMMAND = typer.main.get_command(app)
    original = getattr(typer.testing, "_get_command", None)
    if original is None:  # another typer: just rebuild
        return typer.testing.CliRunner().invoke(app, list(args))
    typer.testing._get_command = lambda _app: _COMMAND  # type: ignore[attr-defined]
    try:
        return typer.testing.CliRunner().invoke(app, list(args))
    finally:
        typer.testing._get_command = original  # type: ignore[attr-defined]


def invoke_ok(*args: str) -> Any:
    """``invoke`` for a command that must succeed: fails the test with its output otherwise."""
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result
