"""Chaincode as a service: a gRPC server the peers dial, serving one Contract.

Each peer opens its own ``protos.Chaincode/Connect`` stream (and opens a new
one after a restart or network hiccup); every stream gets its own
:class:`~vpp_shim.session.PeerSession`, so any number of peers, and a peer
reconnecting while its old stream is still being torn down, are served side
by side. Transactions of all streams run in one bounded thread pool.

See docs/chaincode-shim.md for the protocol and why this is not
fabric-chaincode-python.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import threading
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from fabric_protos.peer import chaincode_shim_pb2_grpc

from vpp_shim.api import Contract
from vpp_shim.session import ChaincodeMessage, PeerSession

log = logging.getLogger(__name__)

LISTEN_HOST = "127.0.0.1"
PEER_FEATURES_ENV = "VPP_SHIM_PEER_FEATURES"  # "off": no write batching, no multi-key reads
MAX_MESSAGE_BYTES = 100 * 1024 * 1024  # the peer's and Go shim's limit

# The peer's chaincode client pings every 60 s (keepalive 60 s / timeout 20 s,
# permitted without calls). gRPC's server defaults punish pings more often
# than every 5 minutes without data with GOAWAY "too_many_pings", which kills
# every stream and makes the next invocations fail; so accept pings at any
# rate, with or without calls. We ping the peer on the same schedule to notice
# a vanished peer.
SERVER_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 1_000),
    ("grpc.http2.max_ping_strikes", 0),  # 0: never GOAWAY for pings
    ("grpc.http2.max_pings_without_data", 0),  # our own keepalive pings are not capped
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.so_reuseport", 0),  # a port already taken is an error, not a silent share
)


@dataclass(frozen=True)
class TlsConfig:
    """Server TLS. With ``client_ca_pem``, peers must present a client certificate it signed;
    with ``client_names`` too, one whose common name is among them (e.g. only the own
    organisation's peer, not every holder of a certificate from that CA)."""

    cert_pem: bytes
    key_pem: bytes
    client_ca_pem: bytes | None = None
    client_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.client_names and self.client_ca_pem is None:
            raise ValueError(
                "client_names need client_ca_pem: names of unverified clients mean nothing"
            )

    def client_allowed(self, context: grpc.ServicerContext) -> bool:
        """Whether the TLS client of ``context`` may open a stream (always, without names)."""
        if not self.client_names:
            return True
        names = context.auth_context().get("x509_common_name", [])
        return any(n.decode(errors="replace") in self.client_names for n in names)

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.key_pem, self.cert_pem)],
            root_certificates=self.client_ca_pem,
            require_client_auth=self.client_ca_pem is not None,
        )


# Network namespaces the project creates for its hosts layout (vpp_network.hosts).
PROJECT_NETNS = Path("/run/netns")
PROJECT_NETNS_PREFIX = "vpp-"


def in_project_namespace() -> bool:
    """Whether this process runs in a network namespace the project created (the hosts
    layout's machines: ``/run/netns/vpp-*``), where the only other address is the
    machine's own, reachable only over the project's bridge."""
    try:
        mine = os.stat("/proc/self/ns/net")
        names = sorted(PROJECT_NETNS.glob(f"{PROJECT_NETNS_PREFIX}*"))
    except OSError:
        return False
    for path in names:
        try:
            st = os.stat(path)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino):
            return True
    return False


def check_address(address: str) -> tuple[str, int]:
    """Splits HOST:PORT, refusing anything but 127.0.0.1 (our peers are local processes),
    except, inside a project namespace, that machine's own IPv4 address (not 0.0.0.0)."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"chaincode address {address!r} is not HOST:PORT")
    if host != LISTEN_HOST and not (_is_unicast_ipv4(host) and in_project_namespace()):
        raise ValueError(
            f"chaincode server must listen on {LISTEN_HOST} only (or its machine's address "
            f"inside a project network namespace), not {host!r} ({address!r})"
        )
    return host, int(port_text)


def _is_unicast_ipv4(host: str) -> bool:
    try:
        ip = ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return not (ip.is_unspecified or ip.is_multicast)


class _ChaincodeServicer(chaincode_shim_pb2_grpc.ChaincodeServicer):
    """protos.Chaincode: one PeerSession per Connect stream."""

    def __init__(
        self,
        contract: Contract,
        chaincode_id: str,
        executor: ThreadPoolExecutor,
        request_timeout: float | None,
        peer_features: bool = True,
        tls: TlsConfig | None = None,
    ) -> None:
        self._tls = tls
        self._contract = contract
        self._chaincode_id = chaincode_id
        self._executor = executor
        self._request_timeout = request_timeout
        self._peer_features = peer_features
        self._lock = threading.Lock()
        self._sessions: weakref.WeakSet[PeerSession] = weakref.WeakSet()
        self._draining = False

    def Connect(  # noqa: N802 (gRPC's method name)
        self, request_iterator: Iterator[ChaincodeMessage], context: grpc.ServicerContext
    ) -> Iterator[ChaincodeMessage]:
        if self._tls is not None and not self._tls.client_allowed(context):
            names = context.auth_context().get("x509_common_name", [])
            log.warning("refused a stream from %s (client names %s)", context.peer(), names)
            context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"client certificate is not one of {', '.join(self._tls.client_names)}",
            )
        session = PeerSession(
            contract=self._contract,
            chaincode_id=self._chaincode_id,
            executor=self._executor,
            request_timeout=self._request_timeout,
            peer=context.peer(),
            peer_features=self._peer_features,
        )
        with self._lock:
            if self._draining:
                context.abort(grpc.StatusCode.UNAVAILABLE, "chaincode server is shutting down")
            self._sessions.add(session)
        # Whatever ends the RPC (peer gone, cancel, server stop) must also wake the
        # writer and every transaction waiting for a reply on this stream.
        if not context.add_callback(lambda: session.close("rpc terminated")):
            session.close("rpc terminated")
        log.info("[%s] peer connected", session.peer)
        return session.start(request_iterator)

    def sessions(self) -> list[PeerSession]:
        with self._lock:
            return list(self._sessions)

    def drain(self, grace: float) -> None:
        """Refuses new transactions, waits up to ``grace`` s for running ones, ends the streams."""
        with self._lock:
            self._draining = True
        deadline = time.monotonic() + grace
        for session in self.sessions():
            session.drain()
        while time.monotonic() < deadline:
            if not any(s.active_transactions for s in self.sessions()):
                break
            time.sleep(0.02)
        for session in self.sessions():
            session.close("server stopping")


class ChaincodeServer(grpc.Server):
    """The running chaincode server: a grpc.Server whose stop() first lets transactions finish.

    ``address``/``port`` are where it actually listens (useful with port 0).
    """

    def __init__(
        self,
        server: grpc.Server,
        servicer: _ChaincodeServicer,
        executor: ThreadPoolExecutor,
        address: str,
    ) -> None:
        self._server = server
        self._servicer = servicer
        self._executor = executor
        self.address = address
        self.port = int(address.rpartition(":")[2])
        self._stopped: threading.Event | None = None
        self._stop_lock = threading.Lock()

    def sessions(self) -> list[PeerSession]:
        """The live peer streams (for diagnostics and tests)."""
        return [s for s in self._servicer.sessions() if not s.closed.is_set()]

    def add_generic_rpc_handlers(self, generic_rpc_handlers: Any) -> None:
        self._server.add_generic_rpc_handlers(generic_rpc_handlers)

    def add_registered_method_handlers(self, service_name: str, method_handlers: Any) -> None:
        self._server.add_registered_method_handlers(service_name, method_handlers)

    def add_insecure_port(self, address: str) -> int:
        check_address(address)
        return self._server.add_insecure_port(address)

    def add_secure_port(self, address: str, server_credentials: grpc.ServerCredentials) -> int:
        check_address(address)
        return self._server.add_secure_port(address, server_credentials)

    def start(self) -> None:
        self._server.start()

    def stop(self, grace: float | None) -> threading.Event:
        """Graceful stop; returns an Event set once everything has stopped.

        With a grace period: no new streams; on open streams new transactions
        are refused (ERROR) while running ones get up to ``grace`` seconds to
        complete; then the streams end. ``grace=None`` ends them at once.
        """
        with self._stop_lock:
            if self._stopped is not None:
                return self._stopped
            self._stopped = done = threading.Event()
        grpc_done = self._server.stop(grace)  # no new RPCs from here on

        def finish() -> None:
            try:
                self._servicer.drain(grace or 0.0)
                grpc_done.wait()
                self._executor.shutdown(wait=False, cancel_futures=True)
            finally:
                done.set()
                log.info("chaincode server on %s stopped", self.address)

        threading.Thread(target=finish, name="vpp-shim-stop", daemon=True).start()
        return done

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        return self._server.wait_for_termination(timeout)


def serve(
    contract: Contract,
    address: str,
    chaincode_id: str,
    *,
    max_workers: int = 32,
    tls: TlsConfig | None = None,
    max_streams: int = 16,
    request_timeout: float | None = 300.0,
    grpc_options: Sequence[tuple[str, Any]] | None = None,
    peer_features: bool | None = None,
) -> ChaincodeServer:
    """Starts serving ``contract`` to peers on ``address`` (127.0.0.1:PORT; port 0 picks one).

    ``chaincode_id`` is the package id the peers know the chaincode by
    (label:hash); it is what we REGISTER as. ``max_workers`` bounds the
    transactions running at once over all streams, ``max_streams`` the peer
    streams (each holds a gRPC thread for its writer). ``request_timeout``
    bounds the wait for any single peer reply (the peer gives up on a
    transaction after its own execute timeout, 30 s by default).
    ``grpc_options`` replaces :data:`SERVER_OPTIONS` (tests only).
    ``peer_features``: use the write batching and multi-key reads a peer
    offers in READY; by default yes unless VPP_SHIM_PEER_FEATURES=off, which
    keeps one round trip per ledger call (to compare, or to rule them out).
    """
    if peer_features is None:
        peer_features = os.environ.get(PEER_FEATURES_ENV, "on").strip().lower() != "off"
    check_address(address)
    if not chaincode_id:
        raise ValueError("chaincode_id (the package id the peer expects) must not be empty")
    if not isinstance(contract, Contract):
        raise TypeError(f"expected a vpp_shim.api.Contract, got {type(contract).__name__}")
    executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="vpp-shim-tx")
    servicer = _ChaincodeServicer(
        contract, chaincode_id, executor, request_timeout, peer_features, tls
    )
    server = grpc.server(
        ThreadPoolExecutor(max_workers=max_streams, thread_name_prefix="vpp-shim-stream"),
        options=list(SERVER_OPTIONS if grpc_options is None else grpc_options),
        maximum_concurrent_rpcs=max_streams,
    )
    chaincode_shim_pb2_grpc.add_ChaincodeServicer_to_server(servicer, server)
    try:
        if tls is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, tls.credentials())
    except RuntimeError as exc:
        executor.shutdown(wait=False)
        raise OSError(f"cannot listen on {address}: {exc}") from exc
    if not port:
        executor.shutdown(wait=False)
        raise OSError(f"cannot listen on {address}")
    bound = f"{check_address(address)[0]}:{port}"
    server.start()
    log.info(
        "chaincode %s (%s) listening on %s%s",
        contract.name,
        chaincode_id,
        bound,
        " with TLS" if tls else "",
    )
    return ChaincodeServer(server, servicer, executor, bound)


def run(
    contract: Contract,
    address: str,
    chaincode_id: str,
    *,
    grace: float = 10.0,
    **kwargs: Any,
) -> None:
    """Serves until SIGTERM/SIGINT, then stops gracefully (``grace`` s for running transactions).

    Keyword arguments are passed to :func:`serve`. Signal handlers are only
    installed when called from the main thread (Python's rule); otherwise it
    simply serves until the server is stopped.
    """
    server = serve(contract, address, chaincode_id, **kwargs)
    stop_requested = threading.Event()
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():

        def on_signal(signum: int, _frame: object) -> None:
            log.info("signal %s: stopping chaincode server", signal.Signals(signum).name)
            stop_requested.set()

        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, on_signal)
    try:
        while not stop_requested.is_set():
            if not server.wait_for_termination(0.5):  # False: the server has terminated
                break
    finally:
        server.stop(grace).wait()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@dataclass(frozen=True)
class EnvSettings:
    """What :func:`run_from_env` reads, in the CCaaS convention of fabric-samples."""

    address: str
    chaincode_id: str
    tls: TlsConfig | None = None


def settings_from_env(environ: Mapping[str, str] | None = None) -> EnvSettings:
    """Reads CHAINCODE_SERVER_ADDRESS, CHAINCODE_ID and the optional TLS variables.

    TLS is off unless CHAINCODE_TLS_DISABLED is "false"; then
    CHAINCODE_TLS_CERT and CHAINCODE_TLS_KEY name PEM files, and
    CHAINCODE_CLIENT_CA_CERT (optional) the CA peers' client certificates
    must chain to, and CHAINCODE_CLIENT_NAMES (optional, comma-separated,
    needs the CA) the common names a client certificate may have.
    """
    env = os.environ if environ is None else environ
    address = env.get("CHAINCODE_SERVER_ADDRESS", "")
    chaincode_id = env.get("CHAINCODE_ID", "")
    if not address:
        raise ValueError("CHAINCODE_SERVER_ADDRESS is not set (e.g. 127.0.0.1:9999)")
    if not chaincode_id:
        raise ValueError("CHAINCODE_ID is not set (the package id, label:hash)")
    tls = None
    if env.get("CHAINCODE_TLS_DISABLED", "true").strip().lower() in ("false", "0", "no"):
        cert, key = env.get("CHAINCODE_TLS_CERT", ""), env.get("CHAINCODE_TLS_KEY", "")
        if not cert or not key:
            raise ValueError("TLS is enabled: set CHAINCODE_TLS_CERT and CHAINCODE_TLS_KEY")
        ca = env.get("CHAINCODE_CLIENT_CA_CERT", "")
        names = tuple(
            n.strip() for n in env.get("CHAINCODE_CLIENT_NAMES", "").split(",") if n.strip()
        )
        tls = TlsConfig(
            cert_pem=Path(cert).read_bytes(),
            key_pem=Path(key).read_bytes(),
            client_ca_pem=Path(ca).read_bytes() if ca else None,
            client_names=names,
        )
    return EnvSettings(address=address, chaincode_id=chaincode_id, tls=tls)


def run_from_env(contract: Contract, **kwargs: Any) -> None:
    """:func:`run` with address, package id and TLS from the environment (see settings_from_env)."""
    settings = settings_from_env()
    run(contract, settings.address, settings.chaincode_id, tls=settings.tls, **kwargs)
