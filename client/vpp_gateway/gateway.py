"""Gateway -> Network -> Contract: the connection to one peer's Gateway service.

As in the official fabric-gateway clients, the client connects to a single
peer of its own organisation; that peer's Gateway service finds endorsers,
talks to the orderers and reports commits. The client only builds and
signs messages, so it never holds orderer or other-org connection details.
"""

from __future__ import annotations

import random
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import grpc
from fabric_protos.common import ledger_pb2
from fabric_protos.gateway import gateway_pb2, gateway_pb2_grpc

from vpp_gateway.errors import (
    GatewayError,
    IdentityError,
    MvccConflictError,
    Stage,
    map_rpc_error,
)
from vpp_gateway.identity import Identity, Signer
from vpp_gateway.messages import Arg, build_proposal, commit_status_request
from vpp_gateway.profile import ConnectionProfile, PeerInfo, load_profile
from vpp_gateway.transaction import Commit, CommitStatus, Proposal, validation_code_name

if TYPE_CHECKING:
    from vpp_gateway.events import ChaincodeEventStream

# Fabric's own default for gRPC messages; blocks and query results can be large.
MAX_MESSAGE_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True)
class Timeouts:
    """Per-call deadlines in seconds (the official clients' defaults)."""

    evaluate: float = 5.0
    endorse: float = 15.0
    submit: float = 5.0
    commit: float = 60.0


def _tls_channel(
    peer: PeerInfo,
    client_tls: tuple[bytes, bytes] | None,
    options: Sequence[tuple[str, Any]],
) -> grpc.Channel:
    cert, key = client_tls if client_tls else (None, None)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=peer.tls_ca_pem(), private_key=key, certificate_chain=cert
    )
    base = [
        # The peers listen on 127.0.0.1 but their TLS certificates name the host.
        ("grpc.ssl_target_name_override", peer.host),
        ("grpc.default_authority", peer.host),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]
    return grpc.secure_channel(peer.address, credentials, options=base + list(options))


def connect(
    identity: Identity,
    signer: Signer,
    *,
    peer: str | PeerInfo | None = None,
    profile: ConnectionProfile | str | Path | None = None,
    timeouts: Timeouts | None = None,
    client_tls: tuple[bytes, bytes] | None = None,
    channel_options: Sequence[tuple[str, Any]] = (),
) -> Gateway:
    """Opens a TLS gRPC channel to a Gateway peer and returns the Gateway.

    ``peer`` is a peer name from the profile, a PeerInfo, or None for the
    first peer of the identity's organisation. The channel connects lazily:
    an unreachable peer shows up as PeerUnreachableError on the first call.
    ``client_tls`` is (cert_pem, key_pem) for peers that require mutual TLS.
    """
    if not signer.matches(identity):
        raise IdentityError("the signer's key does not belong to the identity's certificate")
    if not isinstance(peer, PeerInfo):
        prof = profile if isinstance(profile, ConnectionProfile) else load_profile(profile)
        peer = prof.peer(peer) if peer is not None else prof.gateway_peer(identity.mspid)
    channel = _tls_channel(peer, client_tls, channel_options)
    return Gateway(channel, identity, signer, peer, timeouts or Timeouts())


def connect_as(
    name: str,
    *,
    profile: ConnectionProfile | str | Path | None = None,
    peer: str | PeerInfo | None = None,
    **kwargs: Any,
) -> Gateway:
    """Connects as wallet identity ``name`` (e.g. "agg3-trader") to its org's gateway peer."""
    from vpp_gateway.identity import load_wallet_identity

    prof = profile if isinstance(profile, ConnectionProfile) else load_profile(profile)
    entry = load_wallet_identity(name, prof.wallet)
    return connect(entry.identity, entry.signer, peer=peer, profile=prof, **kwargs)


class Gateway:
    """A connection to one peer's Gateway service, acting as one identity.

    Thread-safe; close it (or use ``with``) to release the gRPC channel.
    """

    def __init__(
        self,
        channel: grpc.Channel,
        identity: Identity,
        signer: Signer,
        peer: PeerInfo,
        timeouts: Timeouts,
    ) -> None:
        self._channel = channel
        self._stub = gateway_pb2_grpc.GatewayStub(channel)
        self.identity = identity
        self.signer = signer
        self.peer = peer
        self.timeouts = timeouts
        self.creator = identity.serialize()
        self._closed = False
        self._lock = threading.Lock()
        self._streams: weakref.WeakSet[ChaincodeEventStream] = weakref.WeakSet()

    @property
    def address(self) -> str:
        return self.peer.address

    @property
    def closed(self) -> bool:
        return self._closed

    def network(self, name: str) -> Network:
        return Network(self, name)

    def call(
        self,
        method: str,
        request: Any,
        *,
        stage: Stage,
        tx_id: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """One unary Gateway RPC, with its gRPC failure mapped to our exceptions."""
        if self._closed:
            raise GatewayError(f"gateway connection to {self.address} is closed", tx_id=tx_id)
        started = time.monotonic()
        try:
            return getattr(self._stub, method)(request, timeout=timeout)
        except grpc.RpcError as err:
            expired = timeout is not None and time.monotonic() - started >= timeout
            raise map_rpc_error(
                err,
                stage=stage,
                address=self.address,
                tx_id=tx_id,
                timeout=timeout,
                deadline_expired=expired,
            ) from err

    def open_stream(self, request: gateway_pb2.SignedChaincodeEventsRequest) -> Any:
        """Starts a ChaincodeEvents server stream (no deadline; cancel it to stop)."""
        if self._closed:
            raise GatewayError(f"gateway connection to {self.address} is closed")
        return self._stub.ChaincodeEvents(request)

    def register_stream(self, stream: ChaincodeEventStream) -> None:
        with self._lock:
            self._streams.add(stream)

    def close(self) -> None:
        """Closes event streams, then the channel; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            streams = list(self._streams)
        for stream in streams:
            stream.close()
        self._channel.close()

    def __enter__(self) -> Gateway:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Gateway({self.identity.mspid}/{self.identity.common_name} -> "
            f"{self.peer.name} at {self.address})"
        )


class Network:
    """A channel as seen through the gateway."""

    def __init__(self, gateway: Gateway, name: str) -> None:
        self.gateway = gateway
        self.name = name

    def contract(self, chaincode: str) -> Contract:
        return Contract(self, chaincode)

    def commit_status(self, tx_id: str, timeout: float | None = None) -> CommitStatus:
        """Waits for a transaction's commit; raises CommitTimeoutError after ``timeout``.

        Works for any transaction ID on the channel, so a commit that timed
        out earlier can be checked again later.
        """
        gateway = self.gateway
        request = commit_status_request(channel=self.name, tx_id=tx_id, creator=gateway.creator)
        signed = gateway_pb2.SignedCommitStatusRequest(
            request=request, signature=gateway.signer.sign(request)
        )
        effective = timeout if timeout is not None else gateway.timeouts.commit
        response = gateway.call(
            "CommitStatus", signed, stage="commit_status", tx_id=tx_id, timeout=effective
        )
        return CommitStatus(tx_id, validation_code_name(response.result), response.block_number)

    def block_height(self, timeout: float | None = None, org: str | None = None) -> int:
        """Number of blocks on the channel, from qscc GetChainInfo on a peer of ``org``
        (default: our own org's), e.g. to wait until another org's peer has our block."""
        raw = (
            self.contract("qscc")
            .new_proposal(
                "GetChainInfo", self.name, endorsing_orgs=[org or self.gateway.identity.mspid]
            )
            .evaluate(timeout)
        )
        return int(ledger_pb2.BlockchainInfo.FromString(raw).height)

    def chaincode_events(
        self,
        chaincode: str,
        start_block: int | None = None,
        *,
        timeout: float | None = None,
        after_tx_id: str | None = None,
        max_reconnects: int = 5,
        reconnect_delay: float = 0.5,
    ) -> ChaincodeEventStream:
        """Events of ``chaincode`` from ``start_block`` (default: the next block committed).

        See ChaincodeEventStream for resume-after-reconnect and ``timeout``.
        """
        from vpp_gateway.events import ChaincodeEventStream

        return ChaincodeEventStream(
            self,
            chaincode,
            start_block=start_block,
            timeout=timeout,
            after_tx_id=after_tx_id,
            max_reconnects=max_reconnects,
            reconnect_delay=reconnect_delay,
        )

    def __repr__(self) -> str:
        return f"Network({self.name!r} via {self.gateway.address})"


class Contract:
    """A chaincode on a channel: evaluate (query) and submit (ledger update) functions."""

    def __init__(self, network: Network, name: str) -> None:
        self.network = network
        self.name = name

    def new_proposal(
        self,
        function: str,
        *args: Arg,
        transient: Mapping[str, str | bytes] | None = None,
        endorsing_orgs: Sequence[str] | None = None,
    ) -> Proposal:
        """A fresh proposal (new nonce, new transaction ID) for one call of ``function``."""
        tx_id, proposal_bytes = build_proposal(
            channel=self.network.name,
            chaincode=self.name,
            function=function,
            args=args,
            transient=transient,
            creator=self.network.gateway.creator,
        )
        return Proposal(
            self.network, self.name, function, tx_id, proposal_bytes, list(endorsing_orgs or [])
        )

    def evaluate(
        self,
        function: str,
        *args: Arg,
        transient: Mapping[str, str | bytes] | None = None,
        target_orgs: Sequence[str] | None = None,
    ) -> bytes:
        """Runs a read-only function on one peer; raises EvaluateError when refused."""
        proposal = self.new_proposal(
            function, *args, transient=transient, endorsing_orgs=target_orgs
        )
        return proposal.evaluate()

    def submit_async(
        self,
        function: str,
        *args: Arg,
        transient: Mapping[str, str | bytes] | None = None,
        endorsing_orgs: Sequence[str] | None = None,
    ) -> Commit:
        """Endorses and submits; returns the Commit (result known) without waiting for it."""
        proposal = self.new_proposal(
            function, *args, transient=transient, endorsing_orgs=endorsing_orgs
        )
        return proposal.endorse().submit()

    def submit(
        self,
        function: str,
        *args: Arg,
        transient: Mapping[str, str | bytes] | None = None,
        endorsing_orgs: Sequence[str] | None = None,
        commit_timeout: float | None = None,
        retry_on_conflict: int = 0,
    ) -> bytes:
        """Endorse -> sign -> submit -> wait for a VALID commit; returns the function's result.

        ``retry_on_conflict=N`` re-runs the whole transaction (new tx ID) up to
        N more times when it commits with an MVCC or phantom read conflict.
        Only pass it for idempotent calls: the conflicting transaction that
        won may already have done what this one meant to do.
        """
        if retry_on_conflict < 0:
            raise ValueError("retry_on_conflict must be >= 0")
        for attempt in range(retry_on_conflict + 1):
            commit = self.submit_async(
                function, *args, transient=transient, endorsing_orgs=endorsing_orgs
            )
            try:
                commit.wait(commit_timeout)
            except MvccConflictError:
                if attempt == retry_on_conflict:
                    raise
                # Jittered backoff so that competing clients do not collide again.
                time.sleep(min(0.05 * 2**attempt, 1.0) * random.uniform(0.5, 1.5))
                continue
            return commit.result
        raise AssertionError("unreachable")  # pragma: no cover

    def __repr__(self) -> str:
        return f"Contract({self.name!r} on {self.network.name!r})"
