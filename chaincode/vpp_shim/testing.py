"""Runs a Contract in memory, with Fabric's visibility rules, for fast unit tests.

Like a peer, a transaction reads only committed state (never its own
writes) and its writes are applied only if it succeeds. Integration tests
run the same contracts on the real network.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from vpp_shim.api import (
    Caller,
    ChaincodeError,
    Contract,
    HistoryEntry,
    Response,
    create_composite_key,
)
from vpp_shim.codes import Code

_tx_counter = itertools.count(1)


@dataclass
class MemoryLedger:
    """World state and key history of one channel, shared by the stubs that run on it."""

    channel_id: str = "vpp-main"
    state: dict[str, bytes] = field(default_factory=dict)
    history: dict[str, list[HistoryEntry]] = field(default_factory=dict)
    events: list[tuple[str, str, bytes]] = field(default_factory=list)
    # Other chaincodes reachable by invoke_chaincode: (channel, name) -> (contract, ledger)
    peers: dict[tuple[str, str], tuple[Contract, MemoryLedger]] = field(default_factory=dict)
    clock_ns: int = 1_700_000_000_000_000_000

    def invoke(
        self,
        contract: Contract,
        caller: Caller,
        function: str,
        *params: str,
        transient: Mapping[str, bytes] | None = None,
    ) -> bytes:
        """Runs a transaction; on success commits its writes and event, else raises."""
        stub = MemoryStub(self, caller, function, list(params), dict(transient or {}))
        payload = contract.invoke(stub)
        self.commit(stub)
        return payload

    def commit(self, stub: MemoryStub) -> None:
        for key, value in stub.writes.items():
            entry = HistoryEntry(stub.tx_id, value or b"", stub.timestamp_ns, value is None)
            self.history.setdefault(key, []).append(entry)
            if value is None:
                self.state.pop(key, None)
            else:
                self.state[key] = value
        if stub.event is not None:
            self.events.append((stub.tx_id, *stub.event))
        self.clock_ns += 1_000_000_000


class MemoryStub:
    def __init__(
        self,
        ledger: MemoryLedger,
        caller: Caller,
        function: str,
        params: list[str],
        transient: dict[str, bytes],
    ) -> None:
        self.ledger = ledger
        self.caller = caller
        self.function = function
        self.params = params
        self.transient = transient
        self.tx_id = f"tx{next(_tx_counter):08d}"
        self.channel_id = ledger.channel_id
        self.timestamp_ns = ledger.clock_ns
        self.writes: dict[str, bytes | None] = {}
        self.event: tuple[str, bytes] | None = None

    def get_state(self, key: str) -> bytes:
        return self.ledger.state.get(key, b"")

    def get_state_multiple(self, keys: list[str]) -> list[bytes]:
        return [self.get_state(k) for k in keys]  # via get_state, so test spies see each read

    def put_state(self, key: str, value: bytes) -> None:
        if not key:
            raise ChaincodeError(Code.BAD_ARGUMENT, "empty key")
        self.writes[key] = bytes(value)

    def del_state(self, key: str) -> None:
        self.writes[key] = None

    def get_state_by_range(self, start: str, end: str) -> Iterator[tuple[str, bytes]]:
        for key in sorted(self.ledger.state):
            if key.startswith("\x00"):
                continue  # Fabric keeps composite keys out of plain range queries
            if key >= start and (not end or key < end):
                yield key, self.ledger.state[key]

    def get_state_by_partial_composite_key(
        self, object_type: str, attributes: list[str]
    ) -> Iterator[tuple[str, bytes]]:
        prefix = create_composite_key(object_type, attributes)
        for key in sorted(self.ledger.state):
            if key.startswith(prefix):
                yield key, self.ledger.state[key]

    def get_history_for_key(self, key: str) -> Iterator[HistoryEntry]:
        yield from reversed(self.ledger.history.get(key, []))

    def set_event(self, name: str, payload: bytes) -> None:
        self.event = (name, bytes(payload))

    def invoke_chaincode(self, name: str, args: list[bytes], channel: str) -> Response:
        target = self.ledger.peers.get((channel or self.channel_id, name))
        if target is None:
            return Response(500, f"chaincode {name} not found on channel {channel}", b"")
        contract, ledger = target
        stub = MemoryStub(ledger, self.caller, args[0].decode(), [a.decode() for a in args[1:]], {})
        try:
            return Response(200, "", contract.invoke(stub))
        except ChaincodeError as exc:
            return Response(500, exc.wire, b"")
