"""Benchmark-only seeding: synthetic aggregators and their orders for one open period.

Why this exists: the market allows one order per aggregator per period and
each aggregator is a Fabric organisation, so a network with six aggregator
orgs can never hold the 1,000 or 5,000 orders per period whose on-network
clearing the benchmarks measure. ``BenchSeedBook`` loads such a book
directly; it exists only in ``benchmarket.BenchMarketContract``, the contract
class that the throwaway networks of ``tests/bench`` serve and that
``make network-up`` never does.

What it writes is exactly what ApproveAdmission and SubmitOrder would
write (registry entry, MSP index, reputation, empty wallet; the order), so
ClearPeriod runs its production path unchanged. The synthetic aggregators
are numbered from BENCH_FIRST_AGG up and belong to MSP IDs no organisation
holds (``Bench<N>MSP``), so nobody can trade, sign or settle as them; their
records carry ``"bench": true``.
Values come from a seeded PRNG keyed by (seed, period, aggregator), so both
endorsers write byte-identical state.
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

from vpp_market.clearing import validate_orders
from vpp_market.model import Order, PeriodPrices, Side
from vpp_market.reputation import INITIAL_COEFFICIENT_PPM
from vpp_market.sealing import order_hash
from vpp_market.settlement import wallet_name
from vpp_shim.api import ChaincodeError, Stub
from vpp_shim.codes import Code

from vpp_chaincode import ids, sealed, state
from vpp_chaincode.ids import PeriodId, agg_key, agg_name
from vpp_chaincode.ledger import key, put_json

BENCH_FIRST_AGG = 1_000  # real aggregators are expected far below; collisions are refused anyway
MAX_PER_CALL = 1_000  # keeps one seeding transaction's write set well under the block limit
REGIONS = tuple(f"R{i}" for i in range(1, 7))
SELLER_WEIGHTS = (6, 5, 4, 3, 2, 1)  # sellers lean to R1, buyers to R6 (tests/bench/bench_clearing)


def synthetic_order(seed: int, pid: PeriodId, agg: int, prices: PeriodPrices) -> dict[str, Any]:
    """One aggregator's order, priced inside [f_t, s_t] like tests/bench/bench_clearing's books.

    Odd aggregators sell, even ones buy; offers overlap in the middle of the
    band so most orders trade. Deterministic in (seed, period, agg).
    """
    rng = random.Random(f"{seed}:{pid.id}:{agg}")
    low, span = prices.purchase, prices.sale - prices.purchase
    side = Side.SELL if agg % 2 else Side.BUY
    if side is Side.SELL:
        offer = low + rng.randint(span * 2 // 7, span * 5 // 7)
        reserve = max(low, offer - rng.randint(0, span // 7))
        weights = SELLER_WEIGHTS
    else:
        offer = low + rng.randint(span * 3 // 7, span * 6 // 7)
        reserve = min(prices.sale, offer + rng.randint(0, span // 7))
        weights = SELLER_WEIGHTS[::-1]
    return {
        "side": side,
        "quantity_wh": rng.randint(1_000, 500_000),
        "offer": offer,
        "reserve": reserve,
        "reputation_ppm": rng.randint(0, 1_000_000),
        "region": rng.choices(REGIONS, weights)[0],
    }


def seed_book(stub: Stub, pid: PeriodId, first_agg: int, count: int, seed: int) -> dict[str, Any]:
    """Registers aggregators first_agg .. first_agg+count-1 (if new) and writes their orders.

    The period must be OPEN, as for any order. An aggregator number already
    admitted by ApproveAdmission (a real one) is refused, never touched.
    """
    if first_agg < BENCH_FIRST_AGG or first_agg + count - 1 > ids.MAX_AGG:
        raise ChaincodeError(
            Code.BAD_ARGUMENT,
            f"first_agg {first_agg}: synthetic aggregators are numbered "
            f"{BENCH_FIRST_AGG}..{ids.MAX_AGG}",
        )
    if not 1 <= count <= MAX_PER_CALL:
        raise ChaincodeError(Code.BAD_ARGUMENT, f"count {count}: is not in 1..{MAX_PER_CALL}")
    record = state.period(stub, pid, state.OPEN, "BenchSeedBook")
    prices = state.prices(record)
    aggs = range(first_agg, first_agg + count)
    registry = stub.get_state_multiple([key("aggregator", agg_key(a)) for a in aggs])
    for agg, raw in zip(aggs, registry, strict=True):  # every check before the first write
        if raw and not json.loads(raw).get("bench"):
            raise ChaincodeError(
                Code.BAD_ARGUMENT, f"{agg_name(agg)} is a registered (non-benchmark) aggregator"
            )
    for agg, raw in zip(aggs, registry, strict=True):
        existing = json.loads(raw) if raw else None
        synthetic = synthetic_order(seed, pid, agg, prices)
        order = Order(
            agg,
            synthetic["side"],
            synthetic["quantity_wh"],
            synthetic["offer"],
            synthetic["reserve"],
            0,
        )
        validate_orders([order], prices)  # the same checks SubmitOrder applies
        mspid = f"Bench{agg}MSP"
        if existing is None:
            put_json(
                stub,
                key("aggregator", agg_key(agg)),
                {
                    "agg": agg,
                    "name": agg_name(agg),
                    "mspid": mspid,
                    "region": synthetic["region"],
                    "channel": ids.agg_channel(agg),
                    "meters": [],
                    "registered_tx": stub.tx_id,
                    "bench": True,
                },
            )
            put_json(stub, key("aggmsp", mspid), {"mspid": mspid, "agg": agg})
            put_json(
                stub,
                state.wallet_key(wallet_name(agg)),
                {"wallet": wallet_name(agg), "balance": 0},
            )
            put_json(
                stub,
                state.reputation_key(agg),
                {
                    "agg": agg,
                    "r_ppm": synthetic["reputation_ppm"],
                    "a_ppm": INITIAL_COEFFICIENT_PPM,
                    "day": None,
                },
            )
        # Sealed like a real order (sealed.py), so ClearPeriod reads the private book as it
        # does in production; the salt is derived, not drawn (every endorser writes the same
        # bytes), which is fine for synthetic orders nobody needs to keep secret.
        private = {
            "period": pid.id,
            "agg": agg,
            "side": order.side.value,
            "quantity_wh": order.quantity_wh,
            "offer": order.offer,
            "reserve": order.reserve,
            "salt": hashlib.sha256(f"bench:{seed}:{pid.id}:{agg}".encode()).hexdigest(),
            "mspid": mspid,
            "submitter": "bench-seed",
            "tx_id": stub.tx_id,
            "timestamp_ns": stub.timestamp_ns,
        }
        sealed.write(
            stub,
            pid,
            private,
            order_hash(private, private["salt"]),
            mspid,
            created=False,
            own_copy=False,
        )
    return {"period": pid.id, "first_agg": first_agg, "count": count, "seed": seed}
