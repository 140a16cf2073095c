"""The server tolerates the peer's keepalive pings without GOAWAY "too_many_pings".

The peer pings its chaincode connection every 60 s, idle or not. gRPC's
server defaults allow one ping per 5 minutes without data and answer the
third early ping with GOAWAY (ENHANCE_YOUR_CALM, "too_many_pings"), which is
what fabric-chaincode-python's server does to peers. Real 60 s pings would
make a slow test, so a client pings every second: a server with gRPC's
defaults drops the stream after ~3 s (checked here as a control, so the test
proves its pings are aggressive enough), ours keeps it usable.
"""

from __future__ import annotations

import threading
import time

from fake_peer import FakePeer, Msg, response_of, running_server

AGGRESSIVE_PINGS = (
    ("grpc.keepalive_time_ms", 1_000),
    ("grpc.keepalive_timeout_ms", 2_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),  # keep pinging while idle
)
IDLE_SECONDS = 4.0  # gRPC defaults drop such a stream after 3 pings


def idle_then_transact(address: str, outcome: dict[str, object]) -> None:
    """Our server: after IDLE_SECONDS of pings only, the stream still runs transactions."""
    with FakePeer(address, options=AGGRESSIVE_PINGS) as peer:
        peer.handshake()
        time.sleep(IDLE_SECONDS)  # an open, idle stream: only pings on the wire
        try:
            done = peer.run_transaction("tx-after-idle", ["Echo", "still", "here"])
            outcome["payload"] = response_of(done).payload
        except (EOFError, AssertionError) as exc:
            outcome["failure"] = str(exc)
        outcome["error"] = peer.error


def idle_until_dropped(address: str, outcome: dict[str, object]) -> None:
    """The control: gRPC's default server policy ends the same idle stream."""
    with FakePeer(address, options=AGGRESSIVE_PINGS) as peer:
        peer.handshake()
        outcome["ended"] = peer.ended.wait(IDLE_SECONDS * 3)  # typically after ~3-4 s
        outcome["error"] = peer.error


def test_pings_every_second_on_an_idle_stream_do_not_end_it():
    ours: dict[str, object] = {}
    control: dict[str, object] = {}
    with (
        running_server() as server,
        running_server(grpc_options=[("grpc.so_reuseport", 0)]) as default_server,
    ):
        threads = [
            threading.Thread(target=idle_then_transact, args=(server.address, ours)),
            threading.Thread(target=idle_until_dropped, args=(default_server.address, control)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(IDLE_SECONDS * 3 + 5)

    assert ours.get("payload") == b"still here", ours
    assert ours.get("error") is None, ours
    # Control: the same pings against gRPC's default server policy end the stream.
    error = control.get("error")
    assert control.get("ended") and error is not None, control
    assert "ping" in (error.details() or "").lower(), control


def test_server_options_permit_frequent_pings():
    from vpp_shim.server import SERVER_OPTIONS

    options = dict(SERVER_OPTIONS)
    assert options["grpc.keepalive_permit_without_calls"] == 1
    assert options["grpc.http2.max_ping_strikes"] == 0
    assert options["grpc.http2.min_ping_interval_without_data_ms"] <= 1_000
    assert options["grpc.http2.max_pings_without_data"] == 0


def test_peer_keepalive_message_echo_uses_the_same_stream():
    with running_server() as server, FakePeer(server.address) as peer:
        peer.handshake()
        for _ in range(3):
            peer.send(Msg(type=Msg.KEEPALIVE))
        assert [peer.recv().type for _ in range(3)] == [Msg.KEEPALIVE] * 3
