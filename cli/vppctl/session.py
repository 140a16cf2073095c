"""Connections to the network: one Gateway per wallet identity, JSON in and out.

Commands never build gateways themselves: they ask a ``Session`` for the
``market`` contract (channel vpp-main) or an aggregator's ``meter`` contract
(channel aggN) as some identity. The session connects lazily, reuses one
gateway per identity (the demo acts as a dozen identities) and closes them
all at the end. ``connect`` is the single place that reaches the network, so
unit tests replace it with an in-memory fake (tests/fake_fabric.py).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

import grpc
from vpp_gateway import (
    EndorseError,
    Gateway,
    PeersBehindError,
    Timeouts,
    connect_as,
    list_wallet,
    load_profile,
)

from vppctl.output import progress
from vppctl.settings import SETTINGS

MAIN_CHANNEL = "vpp-main"
MARKET = "market"
METER = "meter"
COMMIT_TIMEOUT = 60.0
# How long a submit waits for every other peer of the channel to commit its block too.
# It returns as soon as they have; on this shared machine a peer was seen >15 s behind
# under load, and the next step (e.g. a trader's order on its own peer right after
# OpenPeriod) then read a state without our write (PERIOD_NOT_FOUND).
SYNC_TIMEOUT = 60.0

T = TypeVar("T")
R = TypeVar("R")


class ContractLike(Protocol):
    """What we use of ``vpp_gateway.Contract`` (and what the test fake provides)."""

    network: Any

    def evaluate(self, function: str, *args: str | bytes | int) -> bytes: ...

    def submit(
        self,
        function: str,
        *args: str | bytes | int,
        transient: Mapping[str, str | bytes] | None = None,
        endorsing_orgs: Sequence[str] | None = None,
        commit_timeout: float | None = None,
        retry_on_conflict: int = 0,
        wait_for_peers: bool = False,
    ) -> bytes: ...


def connect(identity: str) -> Gateway:
    """A gateway acting as wallet ``identity`` on its organisation's peer."""
    return connect_as(identity, profile=SETTINGS.profile, timeouts=Timeouts(peers=SYNC_TIMEOUT))


def wallet_names() -> set[str]:
    """The identities in the profile's wallet (what ``--as`` may name)."""
    return set(list_wallet(load_profile(SETTINGS.profile).wallet))


def meter_channel(agg: int) -> str:
    """Aggregator N's own channel, where its ``meter`` chaincode runs."""
    return f"agg{agg}"


def decode(raw: bytes) -> Any:
    """A chaincode result: canonical JSON, or None for an empty payload."""
    return json.loads(raw) if raw else None


class Session:
    """Gateways by identity, opened on first use and closed together."""

    def __init__(self) -> None:
        self._gateways: dict[str, Gateway] = {}
        self._lock = threading.Lock()

    def gateway(self, identity: str) -> Gateway:
        with self._lock:
            gateway = self._gateways.get(identity)
            if gateway is None:
                gateway = connect(identity)  # a global look-up: tests replace it
                self._gateways[identity] = gateway
            return gateway

    def market(self, identity: str) -> ContractLike:
        return self.gateway(identity).network(MAIN_CHANNEL).contract(MARKET)

    def meter(self, identity: str, agg: int) -> ContractLike:
        return self.gateway(identity).network(meter_channel(agg)).contract(METER)

    def close(self) -> None:
        with self._lock:
            gateways, self._gateways = list(self._gateways.values()), {}
        for gateway in gateways:
            gateway.close()


@contextmanager
def session() -> Iterator[Session]:
    """A Session closed when the block ends (also on errors)."""
    s = Session()
    try:
        yield s
    finally:
        s.close()


# An endorsing peer's gateway drops its connection to another org's peer when that peer
# times out under load ("Closing connection to remote endorser"); proposals in flight on it
# fail with these gRPC statuses. Nothing reached the orderer, so asking again is safe.
_TRANSIENT = ("code = Canceled", "code = Unavailable", "code = DeadlineExceeded")
# Pauses before each new proposal, doubling: 15.5 s in all. Right after network-up a
# peer's gateway kept its link to the VPPO's endorser "closing" for more than 3 s (a CI
# run lost its simulated day on SealPeriod), so a few quick tries are not enough.
TRANSIENT_PAUSES = (0.5, 1.0, 2.0, 4.0, 8.0)
TRANSIENT_ATTEMPTS = len(TRANSIENT_PAUSES) + 1


def transient(err: EndorseError) -> bool:
    """A refusal by no chaincode but by a connection between peers (safe to propose again)."""
    if err.code is not None or err.chaincode_message is not None:
        return False
    if err.grpc_code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE):
        return True  # our own call to the gateway peer timed out or could not be made
    return any(any(t in d.message for t in _TRANSIENT) for d in err.details)


def _again(attempt: int, err: EndorseError) -> bool:
    if attempt + 1 < TRANSIENT_ATTEMPTS and transient(err):
        time.sleep(TRANSIENT_PAUSES[attempt])
        return True
    return False


def query(contract: ContractLike, function: str, *args: str) -> Any:
    """Evaluate a read-only function (one peer, not ordered) and decode its JSON."""
    for attempt in range(TRANSIENT_ATTEMPTS):
        try:
            return decode(contract.evaluate(function, *args))
        except EndorseError as err:
            if not _again(attempt, err):
                raise
    raise AssertionError("unreachable")


def submit(
    contract: ContractLike,
    function: str,
    *args: str,
    message: str | None = None,
    retry_on_conflict: int = 0,
    transient: Mapping[str, str | bytes] | None = None,
    endorsing_orgs: Sequence[str] | None = None,
) -> Any:
    """Submit a transaction and wait until it is committed; a spinner says what is happening.

    Endorse, order and commit take a block (about two seconds), so the user
    sees ``message`` instead of a frozen terminal. ``transient``: data the
    endorsers see but no block keeps (sealed orders); ``endorsing_orgs``: the
    organisations whose peers must endorse, when the caller knows better than
    the Gateway's own choice.
    """
    extra: dict[str, Any] = {}
    if transient is not None:
        extra["transient"] = transient
    if endorsing_orgs is not None:
        extra["endorsing_orgs"] = list(endorsing_orgs)
    with progress(message or f"{function}: waiting for the transaction to commit"):
        for attempt in range(TRANSIENT_ATTEMPTS):
            try:
                return decode(_submit_once(contract, function, args, retry_on_conflict, extra))
            except EndorseError as err:  # endorsement only: the transaction was never sent
                if not _again(attempt, err):
                    raise
    raise AssertionError("unreachable")


def _submit_once(
    contract: ContractLike,
    function: str,
    args: tuple[str, ...],
    retry_on_conflict: int,
    extra: dict[str, Any],
) -> bytes:
    try:
        # Every peer of the channel gets the block before we return, so that every
        # vppctl command, and a script of them, sees its own writes (whichever org's
        # peer simulates the next transaction).
        return contract.submit(
            function,
            *args,
            commit_timeout=COMMIT_TIMEOUT,
            retry_on_conflict=retry_on_conflict,
            wait_for_peers=True,
            **extra,
        )
    except PeersBehindError as err:  # committed; a slow peer only delays its readers
        return err.result or b""


def query_meter(identity: str, agg: int, function: str, *args: str) -> Any:
    """``query`` of aggregator ``agg``'s meter chaincode as ``identity``, in a session of its
    own: most metering commands make this one call and print its answer, so the session,
    the contract and the call are spelled here once."""
    with session() as s:
        return query(s.meter(identity, agg), function, *args)


def submit_meter(identity: str, agg: int, function: str, *args: str, message: str) -> Any:
    """``submit`` to aggregator ``agg``'s meter chaincode, like ``query_meter``."""
    with session() as s:
        return submit(s.meter(identity, agg), function, *args, message=message)


def parallel(fn: Callable[[T], R], items: Sequence[T], workers: int = 8) -> list[R]:
    """``[fn(x) for x in items]`` in threads; results in order, the first failure re-raised.

    Transactions of different aggregators touch different keys, so sending
    them together puts them in one block instead of one block each.
    """
    if len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        futures = [pool.submit(fn, x) for x in items]
        return [f.result() for f in futures]
