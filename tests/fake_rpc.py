"""A failed gRPC call as grpcio raises it, without a server.

The gateway tests feed these to ``vpp_gateway``'s error mapping and to the
chaincode event stream; ``details`` attaches the gateway's ErrorDetail list
the way a Fabric gateway does (``grpc-status-details-bin``).
"""

from __future__ import annotations

import grpc
from vpp_gateway import ErrorDetail
from vpp_gateway.errors import encode_status_details


class FakeRpcError(grpc.RpcError, grpc.Call):
    """What grpcio raises for a failed unary call or a broken stream."""

    def __init__(
        self, code: grpc.StatusCode, message: str, details: list[ErrorDetail] | None = None
    ) -> None:
        self._code = code
        self._message = message
        self._trailing: tuple = ()
        if details is not None:
            raw = encode_status_details(code, message, details)
            self._trailing = (("grpc-status-details-bin", raw),)

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._message

    def trailing_metadata(self) -> tuple:
        return self._trailing

    # grpc.Call's remaining abstract methods
    def initial_metadata(self) -> tuple:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> float | None:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: object) -> bool:
        return False
