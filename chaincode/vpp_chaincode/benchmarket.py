"""The market chaincode of benchmark networks: the production contract plus BenchSeedBook.

The benchmarks clear books of 1,000+ orders, more than a network has
aggregator organisations (benchseed.py says why and what is written). The
seeding function therefore lives only in this subclass, not in
``MarketContract``: a production market process has no such function at all
(``UNKNOWN_FUNCTION``), whatever its environment. Only networks that
``tests/bench`` creates serve this class (``python -m vpp_chaincode.server
market-bench``, recorded with the network when it is created, see
``vpp_network.network.SERVED_CONTRACTS``); everything else is inherited
unchanged, so ClearPeriod runs the production path.
"""

from __future__ import annotations

from typing import Any

from vpp_shim.api import ChaincodeError, Stub
from vpp_shim.codes import Code

from vpp_chaincode import access, benchseed, ids
from vpp_chaincode.ledger import tx
from vpp_chaincode.market import MarketContract


class BenchMarketContract(MarketContract):
    """``market`` as benchmark networks serve it (same name, one extra function)."""

    @tx
    def BenchSeedBook(
        self, stub: Stub, period: str, first_agg: str, count: str, seed: str = "1"
    ) -> dict[str, Any]:
        """Synthetic aggregators first_agg.. and their orders for period (benchseed.py).

        VPPO admin only; the period must be OPEN.
        """
        access.require_vppo(stub.caller, "BenchSeedBook")
        return benchseed.seed_book(
            stub,
            ids.parse_period(period),
            ids.parse_agg(first_agg, "first_agg"),
            _count(count),
            _count(seed, "seed"),
        )


def _count(text: str, field: str = "count") -> int:
    if not text.isascii() or not ids.trim(text).isdigit():
        raise ChaincodeError(Code.BAD_ARGUMENT, f"{field} {text!r}: is not a non-negative integer")
    return int(ids.trim(text))
