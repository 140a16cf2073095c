"""Runs a Contract in memory, with Fabric's visibility rules, for fast unit tests.

Like a peer, a transaction reads only committed state (never its own
writes) and its writes are applied only if it succeeds. Integration tests
run the same contracts on the real network.

Unlike a peer, the ledger remembers what a refused transaction tried to
write (``refused``): Fabric discards it, but the market's rule is stricter,
"nothing written on bad input" (a refusal is decided before the first
write), and a test can only check that rule if the attempt is visible.

Like a committing peer, :meth:`MemoryLedger.commit` also validates key-level
(state-based) endorsement policies: a write to a key that carries its own
policy commits only if the transaction's endorsing organisations satisfy it,
else :class:`EndorsementPolicyFailure` (Fabric's ENDORSEMENT_POLICY_FAILURE).
By default every organisation endorses, so ordinary tests are unaffected;
an attack test passes ``endorsers=`` to see what a subset of organisations
can commit.

Private data follows Fabric's collection rules as far as a contract can
observe them: values live per collection (never in ``state``, history or
events), a collection with ``member_only_read`` refuses a creator outside its
members, an implicit collection ``_implicit_org_<MSP>`` exists for every
organisation and its writes need that organisation's endorsement, and a
stub whose ``peer_mspid`` is not a member sees only hashes (reading an
existing key fails as on a real non-member peer).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from fabric_protos.common import policies_pb2
from fabric_protos.msp import msp_principal_pb2

from vpp_shim.api import (
    IMPLICIT_COLLECTION_PREFIX,
    MAX_UNICODE,
    VALIDATION_PARAMETER,
    Caller,
    ChaincodeError,
    Contract,
    HistoryEntry,
    Response,
    create_composite_key,
)
from vpp_shim.codes import Code

_tx_counter = itertools.count(1)


@dataclass(frozen=True)
class Collection:
    """A static collection's rules as its definition states them (members by MSP id)."""

    members: frozenset[str]
    member_only_read: bool = True
    member_only_write: bool = False


def _peer_error(message: str) -> ChaincodeError:
    from vpp_shim.stub import PeerError  # the error a real peer's refusal raises

    return PeerError(message)


class EndorsementPolicyFailure(Exception):
    """The transaction would be INVALID on commit: a key's own policy is not satisfied."""


def policy_satisfied(envelope_bytes: bytes, endorsers: frozenset[str]) -> bool:
    """Whether peers of the ``endorsers`` MSPs satisfy a marshalled SignaturePolicyEnvelope.

    Only what the chaincodes write is understood: n-out-of gates over MSP
    role principals; each endorsing organisation counts once per principal.
    """
    envelope = policies_pb2.SignaturePolicyEnvelope.FromString(envelope_bytes)
    orgs = [
        msp_principal_pb2.MSPRole.FromString(p.principal).msp_identifier
        for p in envelope.identities
    ]

    def holds(rule: policies_pb2.SignaturePolicy) -> bool:
        if rule.WhichOneof("Type") == "signed_by":
            return orgs[rule.signed_by] in endorsers
        return sum(holds(r) for r in rule.n_out_of.rules) >= rule.n_out_of.n

    return holds(envelope.rule)


@dataclass(frozen=True)
class RefusedWrites:
    """What a refused transaction wrote before it raised (discarded, as on a peer)."""

    function: str
    keys: tuple[str, ...]
    event: str | None

    @classmethod
    def of(cls, stub: MemoryStub) -> RefusedWrites:
        private = {f"{c}/{k}" for c, k in {*stub.private_writes, *stub.private_metadata_writes}}
        keys = tuple(sorted({*stub.writes, *stub.metadata_writes, *private}))
        return cls(stub.function, keys, stub.event[0] if stub.event else None)


@dataclass
class MemoryLedger:
    """World state and key history of one channel, shared by the stubs that run on it."""

    channel_id: str = "vpp-main"
    state: dict[str, bytes] = field(default_factory=dict)
    history: dict[str, list[HistoryEntry]] = field(default_factory=dict)
    events: list[tuple[str, str, bytes]] = field(default_factory=list)
    # Other chaincodes reachable by invoke_chaincode: (channel, name) -> (contract, ledger)
    peers: dict[tuple[str, str], tuple[Contract, MemoryLedger]] = field(default_factory=dict)
    # Ledger time: the timestamp of the next transaction, and the endorsers' clock.
    clock_ns: int = 1_700_000_000_000_000_000
    # Committed key metadata: key -> {metakey: value} (VALIDATION_PARAMETER: a key's policy).
    metadata: dict[str, dict[str, bytes]] = field(default_factory=dict)
    # Refused transactions that wrote (state, metadata or an event) before refusing.
    refused: list[RefusedWrites] = field(default_factory=list)
    # The chaincode definition's collections (None: any name, every org a member, no
    # read restriction, for tests of contracts that do not care); implicit ones always exist.
    collections: dict[str, Collection] | None = None
    # Private data: collection -> key -> value, and collection -> key -> metadata.
    private: dict[str, dict[str, bytes]] = field(default_factory=dict)
    private_metadata: dict[str, dict[str, dict[str, bytes]]] = field(default_factory=dict)

    def snapshot(self) -> tuple[dict, dict, list, list, dict, dict]:
        """Everything a transaction could change here: state, key history, events, what
        refused transactions tried to write, and the private data. Equal before and after
        a refused call means the refusal wrote nothing, not even before it raised."""
        return (
            dict(self.state),
            copy.deepcopy(self.history),
            list(self.events),
            list(self.refused),
            copy.deepcopy(self.private),
            copy.deepcopy(self.private_metadata),
        )

    def collection(self, name: str) -> Collection | None:
        """The rules of ``name``; None means "anyone" (no collections configured)."""
        if name.startswith(IMPLICIT_COLLECTION_PREFIX):
            return Collection(frozenset({name[len(IMPLICIT_COLLECTION_PREFIX) :]}), False)
        if self.collections is None:
            return None
        if name not in self.collections:
            raise _peer_error(f"collection {name} could not be found")
        return self.collections[name]

    def advance(self, seconds: int) -> None:
        """Lets ``seconds`` of ledger time pass (the next transaction is dated that much later)."""
        self.clock_ns += seconds * 1_000_000_000

    def invoke(
        self,
        contract: Contract,
        caller: Caller,
        function: str,
        *params: str,
        transient: Mapping[str, bytes] | None = None,
        timestamp_ns: int | None = None,
        endorsers: frozenset[str] | None = None,
        peer_mspid: str | None = None,
    ) -> bytes:
        """Runs a transaction; on success commits its writes and event, else raises.

        ``timestamp_ns``: the proposal's date as its client chose it (default:
        the endorsers' clock). ``endorsers``: the MSPs whose peers endorsed it
        (default: all), checked against key-level policies on commit.
        ``peer_mspid``: the organisation of the peer that simulates it (default:
        a peer that holds every collection).
        """
        stub = MemoryStub(
            self,
            caller,
            function,
            list(params),
            dict(transient or {}),
            timestamp_ns,
            peer_mspid=peer_mspid,
        )
        try:
            payload = contract.invoke(stub)
        except ChaincodeError:
            if (
                stub.writes
                or stub.metadata_writes
                or stub.private_writes
                or stub.private_metadata_writes
                or stub.event is not None
            ):
                self.refused.append(RefusedWrites.of(stub))
            raise
        self.commit(stub, endorsers)
        return payload

    def validate(self, stub: MemoryStub, endorsers: frozenset[str] | None) -> None:
        """Fabric's key-level check: each written key's committed policy must be satisfied."""
        if endorsers is None:
            return
        for key in sorted({*stub.writes, *stub.metadata_writes}):
            policy = self.metadata.get(key, {}).get(VALIDATION_PARAMETER)
            if policy and not policy_satisfied(policy, endorsers):
                raise EndorsementPolicyFailure(
                    f"ENDORSEMENT_POLICY_FAILURE: key {key!r} has its own policy; "
                    f"endorsed only by {', '.join(sorted(endorsers))}"
                )
        for coll, key in sorted({*stub.private_writes, *stub.private_metadata_writes}):
            policy = self.private_metadata.get(coll, {}).get(key, {}).get(VALIDATION_PARAMETER)
            if policy and not policy_satisfied(policy, endorsers):
                raise EndorsementPolicyFailure(
                    f"ENDORSEMENT_POLICY_FAILURE: private key {key!r} of {coll} has its own "
                    f"policy; endorsed only by {', '.join(sorted(endorsers))}"
                )
            if coll.startswith(IMPLICIT_COLLECTION_PREFIX):
                # An implicit collection's endorsement policy is its org's Endorsement policy.
                owner = coll[len(IMPLICIT_COLLECTION_PREFIX) :]
                if owner not in endorsers:
                    raise EndorsementPolicyFailure(
                        f"ENDORSEMENT_POLICY_FAILURE: {coll} is written without {owner}'s "
                        f"endorsement (endorsed by {', '.join(sorted(endorsers))})"
                    )

    def commit(self, stub: MemoryStub, endorsers: frozenset[str] | None = None) -> None:
        self.validate(stub, endorsers)
        for key, meta in stub.metadata_writes.items():
            self.metadata.setdefault(key, {}).update(meta)
        for key, value in stub.writes.items():
            entry = HistoryEntry(stub.tx_id, value or b"", stub.timestamp_ns, value is None)
            self.history.setdefault(key, []).append(entry)
            if value is None:
                self.state.pop(key, None)
                self.metadata.pop(key, None)  # Fabric drops a deleted key's metadata
            else:
                self.state[key] = value
        for (coll, key), meta in stub.private_metadata_writes.items():
            self.private_metadata.setdefault(coll, {}).setdefault(key, {}).update(meta)
        for (coll, key), value in stub.private_writes.items():
            if value is None:
                self.private.get(coll, {}).pop(key, None)
                self.private_metadata.get(coll, {}).pop(key, None)
            else:
                self.private.setdefault(coll, {})[key] = value
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
        timestamp_ns: int | None = None,
        now_ns: int | None = None,
        peer_mspid: str | None = None,
    ) -> None:
        self.ledger = ledger
        self.peer_mspid = peer_mspid
        self._now_ns = now_ns
        self.caller = caller
        self.function = function
        self.params = params
        self.transient = transient
        self.tx_id = f"tx{next(_tx_counter):08d}"
        self.channel_id = ledger.channel_id
        self.timestamp_ns = ledger.clock_ns if timestamp_ns is None else timestamp_ns
        self.writes: dict[str, bytes | None] = {}
        self.metadata_writes: dict[str, dict[str, bytes]] = {}
        self.private_writes: dict[tuple[str, str], bytes | None] = {}
        self.private_metadata_writes: dict[tuple[str, str], dict[str, bytes]] = {}
        self.event: tuple[str, bytes] | None = None
        self._private_range_queried = False  # Fabric then refuses the transaction's writes

    def get_state(self, key: str) -> bytes:
        return self.ledger.state.get(key, b"")

    def get_state_multiple(self, keys: list[str]) -> list[bytes]:
        return [self.get_state(k) for k in keys]  # via get_state, so test spies see each read

    def put_state(self, key: str, value: bytes) -> None:
        self._check_writable()
        if not key:
            raise ChaincodeError(Code.BAD_ARGUMENT, "empty key")
        self.writes[key] = bytes(value)

    def del_state(self, key: str) -> None:
        self._check_writable()
        self.writes[key] = None

    def get_state_validation_parameter(self, key: str) -> bytes:
        return self.ledger.metadata.get(key, {}).get(VALIDATION_PARAMETER, b"")

    def set_state_validation_parameter(self, key: str, policy: bytes) -> None:
        if not key:
            raise ChaincodeError(Code.BAD_ARGUMENT, "empty key")
        self.metadata_writes.setdefault(key, {})[VALIDATION_PARAMETER] = bytes(policy)

    # -- private data ----------------------------------------------------------------------
    def _readable(self, collection: str) -> bool:
        """Checks the creator's read permission; True if this peer holds the values."""
        rules = self.ledger.collection(collection)
        if rules is None:
            return True
        if rules.member_only_read and self.caller.mspid not in rules.members:
            raise _peer_error(
                f"tx creator does not have read access permission on privatedata in "
                f"chaincodeName:market collectionName: {collection}"
            )
        return self.peer_mspid is None or self.peer_mspid in rules.members

    def _writable(self, collection: str) -> None:
        rules = self.ledger.collection(collection)
        if rules is not None and rules.member_only_write and self.caller.mspid not in rules.members:
            raise _peer_error(
                f"tx creator does not have write access permission on privatedata in "
                f"chaincodeName:market collectionName: {collection}"
            )

    def get_private_data(self, collection: str, key: str) -> bytes:
        held = self._readable(collection)
        value = self.ledger.private.get(collection, {}).get(key, b"")
        if value and not held:
            raise _peer_error(
                "private data matching public hash version is not available. "
                f"Public hash version = {collection}/{key}, Private data version = nil"
            )
        return value

    def get_private_data_multiple(self, collection: str, keys: list[str]) -> list[bytes]:
        return [self.get_private_data(collection, k) for k in keys]

    def _check_writable(self) -> None:
        if self._private_range_queried:
            raise _peer_error(
                "unsuppored transaction. Transaction has already performed queries on pvt "
                "data. Writes are not allowed"
            )

    def get_private_data_hash(self, collection: str, key: str) -> bytes:
        self.ledger.collection(collection)  # unknown collection: refused
        value = self.ledger.private.get(collection, {}).get(key)
        return hashlib.sha256(value).digest() if value else b""

    def put_private_data(self, collection: str, key: str, value: bytes) -> None:
        self._check_writable()
        self._writable(collection)
        if not key or not value:
            raise ChaincodeError(Code.BAD_ARGUMENT, f"empty private key or value ({key!r})")
        self.private_writes[(collection, key)] = bytes(value)

    def del_private_data(self, collection: str, key: str) -> None:
        self._check_writable()
        self._writable(collection)
        self.private_writes[(collection, key)] = None

    def get_private_data_by_partial_composite_key(
        self, collection: str, object_type: str, attributes: list[str]
    ) -> Iterator[tuple[str, bytes]]:
        held = self._readable(collection)
        self._private_range_queried = True
        prefix = create_composite_key(object_type, attributes)
        values = self.ledger.private.get(collection, {}) if held else {}
        for key in sorted(values):
            if key.startswith(prefix) and key < prefix + MAX_UNICODE:
                yield key, values[key]

    def set_private_data_validation_parameter(
        self, collection: str, key: str, policy: bytes
    ) -> None:
        self._writable(collection)
        if not key:
            raise ChaincodeError(Code.BAD_ARGUMENT, "empty key")
        self.private_metadata_writes.setdefault((collection, key), {})[VALIDATION_PARAMETER] = (
            bytes(policy)
        )

    def now_ns(self) -> int:
        """The endorsers' clock: the ledger's, whatever date the proposal claims."""
        return self.ledger.clock_ns if self._now_ns is None else self._now_ns

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
        # As on a peer, the called chaincode sees the same proposal (date) and the same clock.
        stub = MemoryStub(
            ledger,
            self.caller,
            args[0].decode(),
            [a.decode() for a in args[1:]],
            {},
            timestamp_ns=self.timestamp_ns,
            now_ns=self.now_ns(),
        )
        try:
            return Response(200, "", contract.invoke(stub))
        except ChaincodeError as exc:
            return Response(500, exc.wire, b"")
