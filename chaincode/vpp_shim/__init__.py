"""Our chaincode-as-a-service shim over hyperledger-fabric-protos.

Contracts are written against :mod:`vpp_shim.api`; :mod:`vpp_shim.server`
serves them to peers; :mod:`vpp_shim.testing` runs them in memory for unit
tests. See docs/chaincode-shim.md for why we do not use fabric-chaincode-python.
"""

from __future__ import annotations

from typing import Any

# Re-exported from vpp_shim.api on first use, so that importing vpp_shim.codes (as
# clients such as vppctl do, to branch on refusal codes) loads no chaincode machinery.
_API = ("Caller", "ChaincodeError", "Contract", "HistoryEntry", "Response", "Stub", "transaction")

__all__ = [*_API, "Code"]


def __getattr__(name: str) -> Any:
    if name == "Code":
        from vpp_shim.codes import Code

        return Code
    if name in _API:
        from vpp_shim import api

        return getattr(api, name)
    raise AttributeError(f"module 'vpp_shim' has no attribute {name!r}")
