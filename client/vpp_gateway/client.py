"""The bottom layer: a gRPC connection to a Gateway peer, and who signs over it.

As in fabric-gateway's Go client, every object of a transaction's life
(Proposal, Transaction, Commit, the event stream) holds one
``GatewayClient``: the connection, the signing identity and the timeouts,
and nothing of Gateway, Network or Contract. So:

* one ``Connection`` (one gRPC channel) can serve many identities: each
  ``connect(identity, signer, connection=conn)`` makes its own client over it;
* a client without a signer still builds everything; the caller signs
  ``bytes_to_sign()`` elsewhere (a hardware key) and hands the signature back
  with ``with_signature(sig)``.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
from fabric_protos.gateway import gateway_pb2_grpc

from vpp_gateway.errors import GatewayError, IdentityError, Stage, map_rpc_error
from vpp_gateway.identity import Identity, Signer
from vpp_gateway.profile import PeerInfo

# Fabric's own default for gRPC messages; blocks and query results can be large.
MAX_MESSAGE_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True)
class Timeouts:
    """Per-call deadlines in seconds (the official clients' defaults).

    ``commit`` also bounds how long ``Contract.submit`` waits, after the
    orderers did not confirm a submit, for that transaction's commit status
    before it reports what it saw (see ``Contract.submit``). ``peers`` bounds
    the opt-in wait until every peer of the channel has the committed block.
    """

    evaluate: float = 5.0
    endorse: float = 15.0
    submit: float = 5.0
    commit: float = 60.0
    peers: float = 30.0


def tls_channel(
    peer: PeerInfo,
    client_tls: tuple[bytes, bytes] | None = None,
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.Channel:
    """A TLS gRPC channel to ``peer`` (which listens on 127.0.0.1 under its host's name)."""
    cert, key = client_tls if client_tls else (None, None)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=peer.tls_ca_pem(), private_key=key, certificate_chain=cert
    )
    base = [
        ("grpc.ssl_target_name_override", peer.host),
        ("grpc.default_authority", peer.host),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]
    return grpc.secure_channel(peer.address, credentials, options=base + list(options))


class Connection:
    """One gRPC channel to one peer's Gateway service; thread-safe and shareable.

    Whoever opened it closes it: a Gateway closes only a connection that
    ``connect`` opened for it, never one passed in.
    """

    def __init__(self, channel: grpc.Channel, peer: PeerInfo) -> None:
        self.channel = channel
        self.peer = peer
        self._stub = gateway_pb2_grpc.GatewayStub(channel)
        self._closed = False

    @classmethod
    def open(
        cls,
        peer: PeerInfo,
        *,
        client_tls: tuple[bytes, bytes] | None = None,
        channel_options: Sequence[tuple[str, Any]] = (),
    ) -> Connection:
        """Connects lazily: an unreachable peer shows up as PeerUnreachableError on first use."""
        return cls(tls_channel(peer, client_tls, channel_options), peer)

    @property
    def address(self) -> str:
        return self.peer.address

    @property
    def closed(self) -> bool:
        return self._closed

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

    def open_stream(self, request: Any) -> Any:
        """Starts a ChaincodeEvents server stream (no deadline; cancel it to stop)."""
        if self._closed:
            raise GatewayError(f"gateway connection to {self.address} is closed")
        return self._stub.ChaincodeEvents(request)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.channel.close()

    def __repr__(self) -> str:
        return f"Connection({self.peer.name} at {self.address})"


class Closeable(Protocol):
    def close(self) -> None: ...


class GatewayClient:
    """The connection, the signing identity and the timeouts: all a leaf object needs.

    ``signer`` may be None for offline signing; then every message must be
    signed through the objects' ``with_signature``, and an attempt to sign
    here raises IdentityError saying so.
    """

    def __init__(
        self,
        connection: Connection,
        identity: Identity,
        signer: Signer | None,
        timeouts: Timeouts | None = None,
    ) -> None:
        if signer is not None and not signer.matches(identity):
            raise IdentityError("the signer's key does not belong to the identity's certificate")
        self.connection = connection
        self.identity = identity
        self.signer = signer
        self.timeouts = timeouts or Timeouts()
        self.creator = identity.serialize()
        self._closed = False
        self._lock = threading.Lock()
        self._streams: weakref.WeakSet[Closeable] = weakref.WeakSet()

    @property
    def address(self) -> str:
        return self.connection.address

    @property
    def closed(self) -> bool:
        return self._closed or self.connection.closed

    def sign(self, message: bytes) -> bytes:
        """Signs with the client's key; without one, explains how to sign offline."""
        if self.signer is None:
            raise IdentityError(
                "this gateway has no signer: sign bytes_to_sign() with your key and pass the "
                "signature to with_signature()"
            )
        return self.signer.sign(message)

    def check_signature(self, message: bytes, signature: bytes) -> None:
        """Refuses a signature (from an offline signer) that Fabric would reject later."""
        if not self.identity.verify(message, signature):
            raise IdentityError(
                f"the signature is not a valid low-S ECDSA signature of these bytes by "
                f"{self.identity.mspid}/{self.identity.common_name}"
            )

    def call(
        self,
        method: str,
        request: Any,
        *,
        stage: Stage,
        tx_id: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        if self._closed:
            raise GatewayError(f"gateway connection to {self.address} is closed", tx_id=tx_id)
        return self.connection.call(method, request, stage=stage, tx_id=tx_id, timeout=timeout)

    def open_stream(self, request: Any) -> Any:
        if self._closed:
            raise GatewayError(f"gateway connection to {self.address} is closed")
        return self.connection.open_stream(request)

    def register_stream(self, stream: Closeable) -> None:
        """Streams are closed with the client (not with a shared connection)."""
        with self._lock:
            self._streams.add(stream)

    def close(self) -> None:
        """Closes this identity's event streams; the connection is its owner's to close."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            streams = list(self._streams)
        for stream in streams:
            stream.close()
