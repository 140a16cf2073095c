"""Gateway -> Network -> Contract: the connection to one peer's Gateway service.

As in the official fabric-gateway clients, the client connects to a single
peer of its own organisation; that peer's Gateway service finds endorsers,
talks to the orderers and reports commits. The client only builds and
signs messages, so it never holds orderer or other-org connection details.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from vpp_gateway.client import Connection, GatewayClient, Timeouts
from vpp_gateway.errors import GatewayError, MvccConflictError, PeersBehindError, SubmitError
from vpp_gateway.events import ChaincodeEventStream
from vpp_gateway.identity import Identity, Signer
from vpp_gateway.messages import Arg
from vpp_gateway.profile import ConnectionProfile, PeerInfo, load_profile
from vpp_gateway.transaction import Commit, CommitStatus, Proposal, chain_height

__all__ = ["Contract", "Gateway", "Network", "Timeouts", "connect", "connect_as"]

log = logging.getLogger(__name__)


def connect(
    identity: Identity,
    signer: Signer | None,
    *,
    peer: str | PeerInfo | None = None,
    profile: ConnectionProfile | str | Path | None = None,
    timeouts: Timeouts | None = None,
    client_tls: tuple[bytes, bytes] | None = None,
    channel_options: Sequence[tuple[str, Any]] = (),
    connection: Connection | None = None,
) -> Gateway:
    """Opens a TLS gRPC channel to a Gateway peer and returns the Gateway.

    ``peer`` is a peer name from the profile, a PeerInfo, or None for the
    first peer of the identity's organisation. The channel connects lazily:
    an unreachable peer shows up as PeerUnreachableError on the first call.
    ``client_tls`` is (cert_pem, key_pem) for peers that require mutual TLS.

    ``connection`` reuses an open Connection (e.g. ``other_gateway.connection``)
    instead: several identities then share one gRPC channel, which stays
    open until its owner closes it. ``signer=None`` builds a gateway whose
    messages are signed offline (see Proposal.with_signature).
    """
    prof: ConnectionProfile | None = None
    if isinstance(profile, ConnectionProfile):
        prof = profile
    elif profile is not None or (connection is None and not isinstance(peer, PeerInfo)):
        prof = load_profile(profile)
    owned = connection is None
    if connection is None:
        if not isinstance(peer, PeerInfo):
            assert prof is not None
            peer = prof.peer(peer) if peer is not None else prof.gateway_peer(identity.mspid)
        connection = Connection.open(peer, client_tls=client_tls, channel_options=channel_options)
    client = GatewayClient(connection, identity, signer, timeouts)
    return Gateway(client, profile=prof, owns_connection=owned)


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

    Thread-safe; close it (or use ``with``) to end its event streams and,
    when ``connect`` opened the connection for it, the gRPC channel.
    """

    def __init__(
        self,
        client: GatewayClient,
        *,
        profile: ConnectionProfile | None = None,
        owns_connection: bool = True,
    ) -> None:
        self.client = client
        self.profile = profile
        self._owns_connection = owns_connection

    @property
    def connection(self) -> Connection:
        return self.client.connection

    @property
    def identity(self) -> Identity:
        return self.client.identity

    @property
    def signer(self) -> Signer | None:
        return self.client.signer

    @property
    def peer(self) -> PeerInfo:
        return self.client.connection.peer

    @property
    def timeouts(self) -> Timeouts:
        return self.client.timeouts

    @property
    def creator(self) -> bytes:
        return self.client.creator

    @property
    def address(self) -> str:
        return self.client.address

    @property
    def closed(self) -> bool:
        return self.client.closed

    def network(self, name: str) -> Network:
        return Network(self, name)

    def close(self) -> None:
        """Closes event streams, then the channel if this gateway opened it; idempotent."""
        self.client.close()
        if self._owns_connection:
            self.client.connection.close()

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

    @property
    def client(self) -> GatewayClient:
        return self.gateway.client

    def contract(self, chaincode: str) -> Contract:
        return Contract(self, chaincode)

    def commit_status(self, tx_id: str, timeout: float | None = None) -> CommitStatus:
        """Waits for a transaction's commit; raises CommitTimeoutError after ``timeout``.

        Works for any transaction ID on the channel, so a commit that timed
        out earlier can be checked again later.
        """
        return Commit.of(self.client, self.name, tx_id).status(timeout)

    def block_height(self, timeout: float | None = None, org: str | None = None) -> int:
        """Number of blocks on the channel, from qscc GetChainInfo on a peer of ``org``
        (default: our own org's), e.g. to wait until another org's peer has our block."""
        return chain_height(self.client, self.name, org, timeout)

    def peer_orgs(self) -> list[str]:
        """The organisations with a peer on this channel, our own first.

        From the connection profile when the gateway has one (``connect``
        with a profile), else just our own organisation.
        """
        own = self.client.identity.mspid
        orgs = [own]
        if self.gateway.profile is not None and self.name in self.gateway.profile.channels:
            for name in self.gateway.profile.channel(self.name).peers:
                mspid = self.gateway.profile.peer(name).mspid
                if mspid not in orgs:
                    orgs.append(mspid)
        return orgs

    def wait_for_peers(self, commit: Commit, timeout: float | None = None) -> None:
        """After ``commit``, waits until a peer of every org on the channel has its block.

        Raises PeersBehindError naming the orgs still behind after ``timeout``
        (default ``Timeouts.peers``). See ``Commit.wait_for_peers``.
        """
        commit.wait_for_peers(self.peer_orgs(), timeout)

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

        Without ``start_block`` the current height is pinned first, so a
        reconnect before the first event loses nothing; if it cannot be
        read, the stream starts at the next commit as the official clients'
        do. See ChaincodeEventStream for resume-after-reconnect and ``timeout``.
        """
        if start_block is None:
            try:
                start_block = self.block_height()
            except GatewayError:
                start_block = None
        return ChaincodeEventStream(
            self.client,
            self.name,
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
        return Proposal.build(
            self.network.client,
            self.network.name,
            self.name,
            function,
            *args,
            transient=transient,
            endorsing_orgs=endorsing_orgs,
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
        wait_for_peers: bool = False,
    ) -> bytes:
        """Endorse -> sign -> submit -> wait for a VALID commit; returns the function's result.

        When the orderers do not confirm the submit but it may have reached
        them (``SubmitError.outcome_unknown``: with BFT ordering typically
        some orderers answering "request already processed" because the
        transaction is already in a block), it is not sent again: its commit
        status is awaited exactly as after a confirmed submit, within
        ``commit_timeout`` (default ``Timeouts.commit``). A commit returns the
        result as usual; none in time raises UnconfirmedSubmitError with
        what the orderers said.

        ``retry_on_conflict=N`` re-runs the whole transaction (new tx ID) up to
        N more times when it commits with an MVCC or phantom read conflict.
        Only pass it for idempotent calls: the conflicting transaction that
        won may already have done what this one meant to do.

        ``wait_for_peers=True`` then waits until a peer of every org on the
        channel has the block (so the next transaction, by anyone, sees this
        one's writes); PeersBehindError after ``Timeouts.peers`` carries
        the result as ``err.result``, since the transaction did commit.
        """
        if retry_on_conflict < 0:
            raise ValueError("retry_on_conflict must be >= 0")
        for attempt in range(retry_on_conflict + 1):
            commit = self._submit_once(function, args, transient, endorsing_orgs)
            try:
                commit.wait(commit_timeout)
            except MvccConflictError:
                if attempt == retry_on_conflict:
                    raise
                # Jittered backoff so that competing clients do not collide again.
                time.sleep(min(0.05 * 2**attempt, 1.0) * random.uniform(0.5, 1.5))
                continue
            if wait_for_peers:
                try:
                    self.network.wait_for_peers(commit)
                except PeersBehindError as err:
                    err.result = commit.result
                    raise
            return commit.result
        raise AssertionError("unreachable")  # pragma: no cover

    def _submit_once(
        self,
        function: str,
        args: Sequence[Arg],
        transient: Mapping[str, str | bytes] | None,
        endorsing_orgs: Sequence[str] | None,
    ) -> Commit:
        transaction = self.new_proposal(
            function, *args, transient=transient, endorsing_orgs=endorsing_orgs
        ).endorse()
        try:
            return transaction.submit()
        except SubmitError as err:
            if not err.outcome_unknown:
                raise
            log.warning("%s; waiting for its commit status instead of resubmitting", err)
            return transaction.unconfirmed_commit(err)

    def __repr__(self) -> str:
        return f"Contract({self.name!r} on {self.network.name!r})"
