"""Our chaincode-as-a-service shim over hyperledger-fabric-protos.

Contracts are written against :mod:`vpp_shim.api`; :mod:`vpp_shim.server`
serves them to peers; :mod:`vpp_shim.testing` runs them in memory for unit
tests. See docs/chaincode-shim.md for why we do not use fabric-chaincode-python.
"""

from vpp_shim.api import (
    Caller,
    ChaincodeError,
    Contract,
    HistoryEntry,
    Response,
    Stub,
    transaction,
)
from vpp_shim.codes import Code

__all__ = [
    "Caller",
    "ChaincodeError",
    "Code",
    "Contract",
    "HistoryEntry",
    "Response",
    "Stub",
    "transaction",
]
