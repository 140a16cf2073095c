"""Version, Ping and GetPing: the health calls both chaincodes share.

`Ping` is the smallest write that proves an org's transactions get endorsed,
ordered and committed on a channel; `GetPing` reads it back from any peer.
"""

from __future__ import annotations

from typing import Any

from vpp_shim.api import ChaincodeError, Stub
from vpp_shim.codes import Code

from vpp_chaincode import ids
from vpp_chaincode.ledger import build_info, get_json, key, put_json, tx


class HealthMixin:
    """Mixed into a Contract; relies on its `name`, `version` and `transactions()`."""

    @tx
    def Version(self, stub: Stub) -> dict[str, Any]:
        """Name, version and build of the running chaincode (evaluate)."""
        return {
            "name": self.name,  # type: ignore[attr-defined]
            "version": self.version,  # type: ignore[attr-defined]
            "build": build_info(),
            "transactions": self.transactions(),  # type: ignore[attr-defined]
        }

    @tx
    def Ping(self, stub: Stub) -> dict[str, Any]:
        """A health write. A blind write (the key is never read), so pings never conflict."""
        record = {
            "mspid": stub.caller.mspid,
            "caller": stub.caller.common_name,
            "channel": stub.channel_id,
            "tx_id": stub.tx_id,
            "timestamp_ns": stub.timestamp_ns,
        }
        put_json(stub, key("ping", ids.parse_name(stub.caller.mspid, "mspid")), record)
        return record

    @tx
    def GetPing(self, stub: Stub, mspid: str) -> dict[str, Any]:
        """The last Ping committed by an org on this channel."""
        record = get_json(stub, key("ping", ids.parse_name(mspid, "mspid")))
        if record is None:
            raise ChaincodeError(Code.NOT_FOUND, f"no Ping from mspid {mspid!r} on this channel")
        return record
