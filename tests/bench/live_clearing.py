"""On-network clearing: ClearPeriod of a period holding n orders, timed end to end.

The book is loaded with BenchSeedBook (synthetic aggregators, only on a
network whose market servers run the benchmark contract; see
chaincode/vpp_chaincode/benchmarket.py), then the gate is closed and the VPPO
submits ClearPeriod exactly as in production. Timed separately: endorsement
(both endorsing peers run the chaincode: read the book, clear, write one key
per contract) and ordering + commit. The size of the transaction is the
signed envelope the client hands to the orderers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from workload import Session, wait_in_sync

ENDORSERS = ["VPPOMSP", "GridMSP"]

SEED_CHUNK = 500  # orders per BenchSeedBook transaction
FIRST_AGG = 1_000


def seed(session: Session, period: str, orders: int, seed_value: int) -> float:
    """Loads ``orders`` synthetic orders into the open ``period``; returns the seconds it took."""
    vppo = session.market("vppo-admin")
    started = time.perf_counter()
    for first in range(FIRST_AGG, FIRST_AGG + orders, SEED_CHUNK):
        count = min(SEED_CHUNK, FIRST_AGG + orders - first)
        vppo.submit("BenchSeedBook", period, str(first), str(count), str(seed_value))
    return time.perf_counter() - started


def clear_once(
    session: Session,
    day: int,
    hour: int,
    orders: int,
    *,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Open, seed, close and clear one period; what it cost and what clearing produced."""
    vppo = session.market("vppo-admin")
    period = f"{day}-{hour}"
    # Each step reads what the previous one wrote, on both endorsing peers; the VPPO's
    # submit only waits for its own peer's commit, so let the Grid's peer catch up.
    vppo.submit("OpenPeriod", str(day), str(hour))
    wait_in_sync(session, ENDORSERS)
    progress(f"seeding {orders:,} orders")
    seed_s = seed(session, period, orders, seed_value=day)
    vppo.submit("ClosePeriod", period)
    wait_in_sync(session, ENDORSERS)
    progress(f"ClearPeriod of {orders:,} orders")
    proposal = vppo.new_proposal("ClearPeriod", period)
    started = time.perf_counter()
    transaction = proposal.endorse(timeout=300)
    endorsed = time.perf_counter()
    envelope_bytes = transaction.envelope.ByteSize()
    commit = transaction.submit()
    status = commit.wait(timeout=300)
    committed = time.perf_counter()
    summary = json.loads(transaction.result)
    return {
        "orders": orders,
        "period": summary["period"],
        "seed_s": round(seed_s, 2),
        "endorse_s": round(endorsed - started, 3),
        "order_commit_s": round(committed - endorsed, 3),
        "total_s": round(committed - started, 3),
        "valid": status.valid,
        "block": status.block_number,
        "envelope_bytes": envelope_bytes,
        "result_bytes": len(transaction.result),
        "matches": summary["matches"],
        "contracts": len(summary["contracts"]),
    }
