"""Sending sealed orders: the order in transient data, a fresh salt, the right endorsers.

Orders are sealed (docs/sealed-orders.md): SubmitOrder and SubmitOrders take
no arguments (the block keeps arguments for every member to read); the order
JSON travels in the proposal's transient data, which Fabric hands to the
endorsing peers and never writes to a block. Each order carries a salt drawn
here, so the ledger's hash of it cannot be inverted by guessing; the salt is
stored with the order in the aggregator's own collection, so the aggregator
can prove its order later (``vppctl orders verify``) without keeping files.

The transaction needs the market's endorsers (VPPO, Grid: members of the
order book collection) and the aggregator's own peer (its key-level policy
and its implicit collection), so they are named explicitly: the Gateway's
own choice could leave the aggregator out of a first order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from vpp_market.sealing import new_salt

from vppctl.session import ContractLike, submit

TRANSIENT_ORDER = "order"
TRANSIENT_ORDERS = "orders"
DEFAULT_MARKET_ENDORSERS = ("VPPOMSP", "GridMSP")


def salted(order: dict[str, Any]) -> dict[str, Any]:
    """The order with a fresh salt (kept if it has one already)."""
    return order if "salt" in order else {**order, "salt": new_salt()}


def order_endorsers(market: ContractLike, agg: int) -> list[str]:
    """The market's endorsers (from the connection profile) and aggregator ``agg``'s MSP."""
    endorsers: Sequence[str] = DEFAULT_MARKET_ENDORSERS
    try:
        network = market.network
        profile = network.gateway.profile
        endorsers = profile.channels[network.name].endorsers or endorsers
    except (AttributeError, KeyError, TypeError):
        pass  # a gateway without a profile (the tests' fake): the network's defaults
    return sorted({*endorsers, f"Agg{agg}MSP"})


def submit_order(
    market: ContractLike, agg: int, order: dict[str, Any], *, message: str
) -> dict[str, Any]:
    """SubmitOrder with ``order`` sealed; the chaincode's public record of it."""
    return submit(
        market,
        "SubmitOrder",
        message=message,
        transient={TRANSIENT_ORDER: json.dumps(salted(order))},
        endorsing_orgs=order_endorsers(market, agg),
    )


def submit_orders(
    market: ContractLike, agg: int, orders: list[dict[str, Any]], *, message: str
) -> dict[str, Any]:
    """SubmitOrders with each order sealed; ``{agg, count, orders[]}`` of public records."""
    return submit(
        market,
        "SubmitOrders",
        message=message,
        transient={TRANSIENT_ORDERS: json.dumps([salted(o) for o in orders])},
        endorsing_orgs=order_endorsers(market, agg),
    )
