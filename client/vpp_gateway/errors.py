"""The exceptions of vpp_gateway and the mapping from gRPC status errors to them.

A Gateway peer reports failures as gRPC status errors whose trailing metadata
carries a ``google.rpc.Status`` with one ``gateway.ErrorDetail`` per peer or
orderer that failed (address, MSP ID, message). The useful part for a user
is usually buried in there: the chaincode's own refusal message, wrapped by
the peer as ``chaincode response 500, <message>``. We unwrap it so that
``str(error)`` reads ``chaincode refused: <message>``, and map each stage of
a transaction to its own exception class so callers can react precisely
(retry an MVCC conflict, report a down peer, show a refusal to the user).

Our chaincodes write a refusal as ``CODE: message`` (docs/chaincode-api.md,
"Refusal codes"); ``error.code`` is that machine-readable code (``None`` when
the chaincode did not refuse, or gave no code) and ``error.chaincode_message``
the human text after it. Branch on ``code``, never on message text. The gRPC
status of the failed call is ``error.grpc_code``.

Hierarchy::

    GatewayError
    ├── EndorseError            (chaincode_message when the chaincode refused)
    │   └── EvaluateError
    ├── SubmitError             (outcome_unknown: it may still commit)
    │   └── UnconfirmedSubmitError (also a CommitTimeoutError)
    ├── CommitStatusError       (the CommitStatus call itself failed)
    ├── CommitError             (the transaction was committed as invalid)
    │   └── MvccConflictError   (MVCC_READ_CONFLICT, PHANTOM_READ_CONFLICT)
    ├── CommitTimeoutError      (also a TimeoutError)
    ├── PeersBehindError        (committed, but not yet on every peer; a TimeoutError)
    ├── PeerUnreachableError    (also a ConnectionError)
    └── ChaincodeEventsError
    ConfigError
    ├── ProfileError
    └── IdentityError
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import grpc
from fabric_protos.gateway import gateway_pb2
from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory

Stage = Literal["evaluate", "endorse", "submit", "commit_status", "events"]

MVCC_CODES = frozenset({"MVCC_READ_CONFLICT", "PHANTOM_READ_CONFLICT"})

# How the peer wraps a chaincode's refusal: a Response with status >= 400 from
# the chaincode, or a shim ERROR message turned into a simulation error.
_CHAINCODE_PATTERNS = (
    re.compile(r"chaincode response (?P<status>\d+), (?P<message>.*)", re.S),
    re.compile(r"transaction returned with failure: (?P<message>.*)", re.S),
)

_STATUS_DETAILS_KEY = "grpc-status-details-bin"

# A refusal code at the start of a chaincode message: "PERIOD_NOT_OPEN: SubmitOrder: ...".
_CODE_PREFIX = re.compile(r"(?P<code>[A-Z][A-Z0-9_]*[A-Z0-9]): (?P<message>.*)", re.S)


@dataclass(frozen=True, slots=True)
class ErrorDetail:
    """One endpoint's part of a Gateway failure (copied from ``gateway.ErrorDetail``)."""

    address: str
    msp_id: str
    message: str

    def __str__(self) -> str:
        return f"{self.address} ({self.msp_id}): {self.message}"


class GatewayError(Exception):
    """Base of every error about a call to the Gateway; keeps the raw gRPC facts."""

    def __init__(
        self,
        message: str,
        *,
        tx_id: str | None = None,
        grpc_code: grpc.StatusCode | None = None,
        details: Sequence[ErrorDetail] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.tx_id = tx_id
        self.grpc_code = grpc_code
        self.details = tuple(details)
        # The chaincode's refusal code; set by EndorseError when the chaincode refused.
        self.code: str | None = None

    def _detail_lines(self) -> str:
        """One line per distinct message: all peers failing alike is the common case."""
        grouped: dict[str, list[str]] = {}
        for d in self.details:
            grouped.setdefault(d.message, []).append(f"{d.address} ({d.msp_id})")
        return "".join(f"\n  - {', '.join(where)}: {msg}" for msg, where in grouped.items())

    def __str__(self) -> str:
        return self.message + self._detail_lines()


ENDORSERS_DISAGREE = "ProposalResponsePayloads do not match"


def endorsers_disagreed(error: GatewayError) -> bool:
    """True when endorsing peers returned different results (typically one is a block behind)."""
    return any(ENDORSERS_DISAGREE in d.message for d in error.details) or (
        ENDORSERS_DISAGREE in error.message
    )


class EndorseError(GatewayError):
    """The proposal was refused, by the chaincode or by the peer (policy, ACL, unknown cc).

    ``chaincode_message`` is the chaincode's own message when the chaincode
    refused and ``code`` its refusal code (e.g. ``PERIOD_NOT_OPEN``); ``str()``
    then shows just those, because they are what a user can act on.
    """

    stage = "endorsement"

    def __init__(
        self,
        message: str,
        *,
        tx_id: str | None = None,
        grpc_code: grpc.StatusCode | None = None,
        details: Sequence[ErrorDetail] = (),
    ) -> None:
        super().__init__(message, tx_id=tx_id, grpc_code=grpc_code, details=details)
        found = extract_chaincode_message(message, self.details)
        self.chaincode_status: int | None = found[0] if found else None
        self.chaincode_message: str | None = None
        if found:
            self.code, self.chaincode_message = split_refusal_code(found[1])

    def __str__(self) -> str:
        if self.chaincode_message is not None:
            code = f" [{self.code}]" if self.code else ""
            return f"chaincode refused: {self.chaincode_message}{code}"
        return f"{self.stage} failed: {self.message}{self._detail_lines()}"


class EvaluateError(EndorseError):
    """An evaluate (query) was refused; a subclass so one ``except EndorseError`` covers both."""

    stage = "evaluation"


class SubmitError(GatewayError):
    """The gateway could not confirm that the ordering service took the transaction.

    This does not mean it will never commit: with BFT ordering, orderers
    that did receive it keep it and may order it once a quorum is back. Ask
    ``network.commit_status(tx_id)`` before sending the same thing again.
    """

    def __str__(self) -> str:
        return (
            f"submit of transaction {self.tx_id} not confirmed: {self.message} (it may still "
            f"commit: check its commit status before resubmitting){self._detail_lines()}"
        )

    @property
    def outcome_unknown(self) -> bool:
        """False only when the gateway refused the request itself, before any orderer saw it.

        Everything else (a quorum of BFT orderers not confirming, e.g. because
        some answer "request already processed" for a transaction already in
        a block; a timeout; a broken connection) leaves the transaction
        possibly ordered.
        """
        return self.grpc_code not in _SUBMIT_REFUSED


# Gateway.Submit's own refusals (bad request, unknown channel): nothing was broadcast.
_SUBMIT_REFUSED = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
    }
)


class CommitStatusError(GatewayError):
    """Asking for a transaction's commit status failed (not the transaction itself)."""


class CommitError(GatewayError):
    """The transaction was ordered but committed as invalid (its writes were discarded)."""

    def __init__(self, tx_id: str, validation_code: str, block_number: int | None = None) -> None:
        where = f" in block {block_number}" if block_number is not None else ""
        super().__init__(
            f"transaction {tx_id} was committed invalid{where}: {validation_code}", tx_id=tx_id
        )
        self.validation_code = validation_code
        self.block_number = block_number


class MvccConflictError(CommitError):
    """Another transaction changed what this one read; re-running it may succeed."""


class CommitTimeoutError(GatewayError, TimeoutError):
    """No commit status within the timeout; the transaction may still commit later."""

    def __init__(self, tx_id: str, timeout: float | None) -> None:
        super().__init__(
            f"transaction {tx_id} not committed within {timeout} s; it may still commit "
            "(check again with network.commit_status(tx_id))",
            tx_id=tx_id,
            grpc_code=grpc.StatusCode.DEADLINE_EXCEEDED,
        )
        self.timeout = timeout


class UnconfirmedSubmitError(SubmitError, CommitTimeoutError):
    """The orderers did not confirm the submit, and no commit followed within the timeout.

    ``submit_error`` is what the orderers answered. The transaction may
    still commit (BFT orderers that took it keep it), so ask for its commit
    status before sending the same thing again.
    """

    def __init__(self, submit_error: SubmitError, timeout: float | None) -> None:
        GatewayError.__init__(
            self,
            submit_error.message,
            tx_id=submit_error.tx_id,
            grpc_code=submit_error.grpc_code,
            details=submit_error.details,
        )
        self.submit_error = submit_error
        self.timeout = timeout

    def __str__(self) -> str:
        return (
            f"submit of transaction {self.tx_id} not confirmed ({self.message}) and not "
            f"committed within {self.timeout} s after it; it may still commit: check "
            f"network.commit_status(tx_id) before resubmitting{self._detail_lines()}"
        )


class PeersBehindError(GatewayError, TimeoutError):
    """The transaction committed, but some peers of the channel did not have its block in time."""

    def __init__(
        self, tx_id: str, block_number: int, behind: dict[str, int | None], timeout: float
    ) -> None:
        where = ", ".join(
            f"{org} at height {h}" if h is not None else f"{org} (not answering)"
            for org, h in behind.items()
        )
        super().__init__(
            f"transaction {tx_id} committed in block {block_number}, but within {timeout} s "
            f"these peers did not reach it: {where}",
            tx_id=tx_id,
            grpc_code=grpc.StatusCode.DEADLINE_EXCEEDED,
        )
        self.block_number = block_number
        self.behind = dict(behind)
        self.timeout = timeout
        self.result: bytes | None = None  # set by Contract.submit: the committed result


class PeerUnreachableError(GatewayError, ConnectionError):
    """The gateway peer did not answer (down, wrong address, or TLS handshake failed)."""

    def __init__(self, address: str, reason: str = "", *, tx_id: str | None = None) -> None:
        text = f"gateway peer {address} is unreachable"
        super().__init__(
            f"{text}: {reason}" if reason else text,
            tx_id=tx_id,
            grpc_code=grpc.StatusCode.UNAVAILABLE,
        )
        self.address = address
        self.reason = reason


class ChaincodeEventsError(GatewayError):
    """The chaincode event stream failed for a reason other than a lost connection."""


class ConfigError(Exception):
    """Local configuration is wrong: connection profile or identity files."""


class ProfileError(ConfigError):
    """The connection profile is missing or malformed, or names an unknown peer/org."""


class IdentityError(ConfigError):
    """A wallet or MSP identity cannot be loaded (missing file, bad PEM, key/cert mismatch)."""


def split_refusal_code(text: str) -> tuple[str | None, str]:
    """``"CODE: message"`` -> (code, message); a message without a code -> (None, text)."""
    match = _CODE_PREFIX.fullmatch(text)
    if match:
        return match.group("code"), match.group("message")
    return None, text


def extract_chaincode_message(
    message: str, details: Sequence[ErrorDetail] = ()
) -> tuple[int | None, str] | None:
    """Finds the chaincode's own refusal in the details (first) or the status message."""
    for text in [d.message for d in details] + [message]:
        for pattern in _CHAINCODE_PATTERNS:
            match = pattern.search(text)
            if match:
                status = match.groupdict().get("status")
                return (int(status) if status else None), match.group("message").strip()
    return None


@cache
def _status_class() -> Any:
    """A private ``google.rpc.Status`` class (wire compatible), so we need no googleapis dep.

    ``details`` is declared as repeated bytes: same wire encoding as repeated
    ``google.protobuf.Any``, each element parsed with ``any_pb2.Any`` below.
    """
    file = descriptor_pb2.FileDescriptorProto(
        name="vpp_gateway/rpc_status.proto", package="vpp_gateway.rpc", syntax="proto3"
    )
    msg = file.message_type.add(name="Status")
    fdp = descriptor_pb2.FieldDescriptorProto
    msg.field.add(name="code", number=1, type=fdp.TYPE_INT32, label=fdp.LABEL_OPTIONAL)
    msg.field.add(name="message", number=2, type=fdp.TYPE_STRING, label=fdp.LABEL_OPTIONAL)
    msg.field.add(name="details", number=3, type=fdp.TYPE_BYTES, label=fdp.LABEL_REPEATED)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("vpp_gateway.rpc.Status"))


def encode_status_details(
    code: grpc.StatusCode, message: str, details: Sequence[ErrorDetail]
) -> bytes:
    """The ``grpc-status-details-bin`` value a Gateway peer sends (used by the fake peer)."""
    status = _status_class()(code=code.value[0], message=message)
    for d in details:
        packed = any_pb2.Any()
        packed.Pack(gateway_pb2.ErrorDetail(address=d.address, msp_id=d.msp_id, message=d.message))
        status.details.append(packed.SerializeToString())
    return status.SerializeToString()


def decode_status_details(raw: bytes) -> list[ErrorDetail]:
    """The ErrorDetail entries of a serialized ``google.rpc.Status`` (others are ignored)."""
    status = _status_class().FromString(raw)
    wanted = gateway_pb2.ErrorDetail.DESCRIPTOR.full_name
    found = []
    for raw_any in status.details:
        packed = any_pb2.Any.FromString(raw_any)
        if packed.type_url.rsplit("/", 1)[-1] == wanted:
            d = gateway_pb2.ErrorDetail.FromString(packed.value)
            found.append(ErrorDetail(d.address, d.msp_id, d.message))
    return found


def rpc_error_facts(err: grpc.RpcError) -> tuple[grpc.StatusCode | None, str, list[ErrorDetail]]:
    """(status code, status message, gateway error details) of a failed gRPC call."""
    code = err.code() if hasattr(err, "code") else None
    message = (err.details() if hasattr(err, "details") else None) or str(err)
    details: list[ErrorDetail] = []
    trailing = err.trailing_metadata() if hasattr(err, "trailing_metadata") else None
    for key, value in trailing or ():
        if key == _STATUS_DETAILS_KEY:
            try:
                details = decode_status_details(value)
            except Exception:  # a malformed status must not hide the original error
                details = []
    return code, message, details


_STAGE_CLASSES: dict[str, type[GatewayError]] = {
    "evaluate": EvaluateError,
    "endorse": EndorseError,
    "submit": SubmitError,
    "commit_status": CommitStatusError,
    "events": ChaincodeEventsError,
}


# How Fabric's gateway says that it knows no live peer of an organisation the
# endorsement needs (discovery lists none: it is down or not yet known). It answers
# UNAVAILABLE without details, as our own channel does when the gateway peer itself is
# down, and Fabric gives these refusals no code of their own; the words are its API here
# (fabric internal/pkg/gateway: registry.go, api.go; v3.1.1).
GATEWAY_NO_ENDORSERS = (
    "failed to find any endorsing peers for org",
    "no combination of peers can be derived",
    "no peers available to",
)


def gateway_found_no_endorsers(message: str) -> bool:
    """True when the gateway peer answered that it cannot plan the endorsement."""
    return any(words in message for words in GATEWAY_NO_ENDORSERS)


def map_rpc_error(
    err: grpc.RpcError,
    *,
    stage: Stage,
    address: str,
    tx_id: str | None = None,
    timeout: float | None = None,
    deadline_expired: bool = False,
) -> GatewayError:
    """Turns a failed Gateway call into the exception for its stage.

    UNAVAILABLE without details comes from our own gRPC channel (peer down),
    so it becomes PeerUnreachableError, unless it is the gateway's own
    refusal to plan endorsers (:func:`gateway_found_no_endorsers`);
    UNAVAILABLE *with* details is the gateway saying that *its* targets
    (orderers, endorsers) were unavailable. Both belong to the stage. A Go
    peer whose copy of our deadline fires first resets the stream, which
    reaches us as CANCELLED rather than DEADLINE_EXCEEDED; ``deadline_expired``
    (the caller measured the time) lets us report that as the timeout it is.
    """
    code, message, details = rpc_error_facts(err)
    if code == grpc.StatusCode.CANCELLED and deadline_expired:
        code = grpc.StatusCode.DEADLINE_EXCEEDED
    if (
        code == grpc.StatusCode.UNAVAILABLE
        and not details
        and not gateway_found_no_endorsers(message)
    ):
        return PeerUnreachableError(address, message, tx_id=tx_id)
    if stage == "commit_status" and code == grpc.StatusCode.DEADLINE_EXCEEDED and tx_id:
        return CommitTimeoutError(tx_id, timeout)
    return _STAGE_CLASSES[stage](message, tx_id=tx_id, grpc_code=code, details=details)


def commit_error(tx_id: str, validation_code: str, block_number: int | None) -> CommitError:
    """CommitError, or MvccConflictError for the codes that a re-run may fix."""
    cls = MvccConflictError if validation_code in MVCC_CODES else CommitError
    return cls(tx_id, validation_code, block_number)
