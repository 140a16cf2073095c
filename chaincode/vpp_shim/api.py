"""What a contract sees of Fabric: the stub, the caller and how transactions are dispatched.

The model is fabric-samples' asset-transfer contracts: one ``Contract``
subclass per chaincode, one method per transaction marked ``@transaction``,
string parameters, JSON results. A transaction fails by raising
``ChaincodeError(code, message)``; the peer then discards its whole write set,
so a failed call writes nothing. The code (``vpp_shim.codes.Code``) is what
programs branch on; the message is for people.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

from cryptography import x509

from vpp_shim.attributes import FABRIC_ATTRS_OID
from vpp_shim.codes import CODE_PATTERN, Code

# Ledger time is the transaction timestamp, which the client chooses. Every endorser
# refuses a proposal whose timestamp is further than this from its own clock, so no
# party can back- or forward-date a transaction past a deadline by more than it.
# Configurable per chaincode server (environment, read when the contract is built).
CLOCK_SKEW_ENV = "VPP_MAX_CLOCK_SKEW_S"
DEFAULT_MAX_CLOCK_SKEW_S = 30
# The state-metadata key whose value is a key's own endorsement policy (Fabric's
# peer.MetaDataKeys VALIDATION_PARAMETER, as the Go shim names it).
VALIDATION_PARAMETER = "VALIDATION_PARAMETER"


def clock_skew_bound_s(environ: Mapping[str, str] | None = None) -> int:
    """The skew bound in whole seconds: ``VPP_MAX_CLOCK_SKEW_S`` (>= 1), else the default."""
    env = os.environ if environ is None else environ
    text = env.get(CLOCK_SKEW_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_CLOCK_SKEW_S
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{CLOCK_SKEW_ENV}={text!r}: is not a whole number of seconds >= 1")
    return int(text)


# The implicit collection Fabric gives every organisation of a channel (no definition
# needed): its members are the organisation's peers, and writing it needs that org's
# endorsement (its "Endorsement" policy).
IMPLICIT_COLLECTION_PREFIX = "_implicit_org_"


def implicit_collection(mspid: str) -> str:
    """``_implicit_org_<MSPID>``: the organisation's own private data collection."""
    return IMPLICIT_COLLECTION_PREFIX + mspid


class ChaincodeError(Exception):
    """Fails the transaction (response status 500) with a machine-readable code and a message.

    ``str(error)`` is the human message alone (so prefixes can be added with
    ``error.prefixed``); ``error.wire`` is what the peer receives as the
    response message: ``CODE: message`` (see vpp_shim.codes).
    """

    def __init__(self, code: Code | str, message: str) -> None:
        if not CODE_PATTERN.fullmatch(str(code)):
            raise ValueError(f"refusal code {code!r} is not of the form {CODE_PATTERN.pattern}")
        super().__init__(message)
        self.code = str(code)
        self.message = message

    @property
    def wire(self) -> str:
        return f"{self.code}: {self.message}"

    def prefixed(self, prefix: str) -> ChaincodeError:
        """The same refusal with ``prefix: `` in front of the message (code kept)."""
        return ChaincodeError(self.code, f"{prefix}: {self.message}")


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    message: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    tx_id: str
    value: bytes
    timestamp_ns: int
    is_delete: bool


@dataclass(frozen=True)
class Caller:
    """The transaction's creator: MSP ID and X.509 certificate (PEM)."""

    mspid: str
    cert_pem: bytes

    @cached_property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    @cached_property
    def common_name(self) -> str:
        names = self.certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        return str(names[0].value) if names else ""

    @cached_property
    def ous(self) -> tuple[str, ...]:
        names = self.certificate.subject.get_attributes_for_oid(
            x509.NameOID.ORGANIZATIONAL_UNIT_NAME
        )
        return tuple(str(n.value) for n in names)

    @cached_property
    def attributes(self) -> Mapping[str, str]:
        try:
            ext = self.certificate.extensions.get_extension_for_oid(FABRIC_ATTRS_OID)
        except x509.ExtensionNotFound:
            return {}
        raw = ext.value.value  # UnrecognizedExtension -> bytes
        return dict(json.loads(raw).get("attrs", {}))


class Stub(Protocol):
    """The calls a contract may make during one transaction."""

    tx_id: str
    channel_id: str
    function: str
    params: list[str]
    transient: Mapping[str, bytes]
    timestamp_ns: int
    caller: Caller

    def get_state(self, key: str) -> bytes: ...
    def get_state_multiple(self, keys: list[str]) -> list[bytes]:
        """Committed values of ``keys`` in order (b"" when absent), in as few round trips as the
        peer allows: one transaction reading many keys should not pay one round trip each."""
        ...

    def put_state(self, key: str, value: bytes) -> None: ...
    def del_state(self, key: str) -> None: ...
    def get_state_validation_parameter(self, key: str) -> bytes:
        """The key's own endorsement policy as committed (b"" when it has none)."""
        ...

    def set_state_validation_parameter(self, key: str, policy: bytes) -> None:
        """Gives ``key`` its own endorsement policy (a marshalled SignaturePolicyEnvelope).

        Fabric then validates every later write of the key against it instead
        of the chaincode's policy; the change itself must satisfy the policy in
        force before it (the chaincode's, for a key that has none yet).
        """
        ...

    # Private data (Fabric collections): the value stays on the collection members' peers,
    # the block and every other peer get only SHA-256 hashes of key and value.
    def get_private_data(self, collection: str, key: str) -> bytes:
        """The committed private value (b"" when absent); fails on a peer that is not a
        member of the collection for a key that exists (it holds only the hash)."""
        ...

    def get_private_data_multiple(self, collection: str, keys: list[str]) -> list[bytes]:
        """Private values of ``keys`` in order (b"" when absent), in few round trips."""
        ...

    def get_private_data_hash(self, collection: str, key: str) -> bytes:
        """SHA-256 of the committed private value, readable on every peer (b"" when absent)."""
        ...

    def put_private_data(self, collection: str, key: str, value: bytes) -> None: ...
    def del_private_data(self, collection: str, key: str) -> None: ...
    def get_private_data_by_partial_composite_key(
        self, collection: str, object_type: str, attributes: list[str]
    ) -> Iterator[tuple[str, bytes]]:
        """A private range query; Fabric then refuses every write of the transaction."""
        ...

    def set_private_data_validation_parameter(
        self, collection: str, key: str, policy: bytes
    ) -> None:
        """A private key's own endorsement policy, as set_state_validation_parameter."""
        ...

    def now_ns(self) -> int:
        """This endorser's own clock (ns since the epoch): only to check the proposal's
        timestamp, never to decide anything written (endorsers would disagree)."""
        ...

    def get_state_by_range(self, start: str, end: str) -> Iterator[tuple[str, bytes]]: ...
    def get_state_by_partial_composite_key(
        self, object_type: str, attributes: list[str]
    ) -> Iterator[tuple[str, bytes]]: ...
    def get_history_for_key(self, key: str) -> Iterator[HistoryEntry]: ...
    def set_event(self, name: str, payload: bytes) -> None: ...
    def invoke_chaincode(self, name: str, args: list[bytes], channel: str) -> Response: ...


COMPOSITE_NS = "\x00"
MIN_UNICODE = "\x00"
MAX_UNICODE = "\U0010ffff"


def create_composite_key(object_type: str, attributes: list[str]) -> str:
    """Fabric's composite key encoding (same bytes as the Go shim produces)."""
    for part in [object_type, *attributes]:
        if MIN_UNICODE in part or MAX_UNICODE in part:
            raise ChaincodeError(
                Code.BAD_ARGUMENT, f"composite key part {part!r} contains a reserved character"
            )
    return COMPOSITE_NS + object_type + MIN_UNICODE + "".join(a + MIN_UNICODE for a in attributes)


def split_composite_key(key: str) -> tuple[str, list[str]]:
    parts = key[1:].split(MIN_UNICODE)
    return parts[0], parts[1:-1]


def to_json_bytes(value: Any) -> bytes:
    """Canonical JSON (sorted keys, no spaces): every endorser must emit identical bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def transaction(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Marks a Contract method as a callable transaction (the method name is the function)."""
    fn._vpp_transaction = True  # type: ignore[attr-defined]
    return fn


class Contract:
    """Base class: dispatches ``stub.function`` to the method of that name."""

    name: str = "contract"
    version: str = "0.0.0"
    # Proposals further than this from the endorser's clock are refused (see CLOCK_SKEW_ENV).
    max_clock_skew_s: int = clock_skew_bound_s()

    def transactions(self) -> list[str]:
        return sorted(
            n for n in dir(type(self)) if getattr(getattr(type(self), n), "_vpp_transaction", False)
        )

    def invoke(self, stub: Stub) -> bytes:
        """Runs one transaction; raises ChaincodeError for any refusal."""
        method = getattr(type(self), stub.function, None)
        if method is None or not getattr(method, "_vpp_transaction", False):
            raise ChaincodeError(
                Code.UNKNOWN_FUNCTION,
                f"unknown function {stub.function!r}; "
                f"{self.name} offers: {', '.join(self.transactions())}",
            )
        self.check_timestamp(stub)
        try:  # arity first: a TypeError raised inside the method is a bug, not the caller's
            inspect.signature(method).bind(self, stub, *stub.params)
        except TypeError as exc:
            raise ChaincodeError(
                Code.WRONG_ARGUMENT_COUNT, f"{stub.function}: wrong number of arguments: {exc}"
            ) from exc
        result = method(self, stub, *stub.params)
        if result is None:
            return b""
        if isinstance(result, bytes):
            return result
        if isinstance(result, str):
            return result.encode()
        return to_json_bytes(result)

    def check_timestamp(self, stub: Stub) -> None:
        """Refuses a proposal dated further than ``max_clock_skew_s`` from this endorser's clock.

        Deadlines compare the transaction timestamp (ledger time); without this
        check a client could date a proposal into the past or future at will.
        Every endorser checks against its own clock, so a transaction needs
        each endorsing organisation to accept its date.
        """
        skew_ns = stub.timestamp_ns - stub.now_ns()
        if abs(skew_ns) > self.max_clock_skew_s * 1_000_000_000:
            direction = "ahead of" if skew_ns > 0 else "behind"
            raise ChaincodeError(
                Code.CLOCK_SKEW,
                f"{stub.function}: the proposal's timestamp is {abs(skew_ns) / 1e9:.1f} s "
                f"{direction} this endorser's clock; at most {self.max_clock_skew_s} s is "
                f"accepted ({CLOCK_SKEW_ENV}): check the client's clock",
            )
