"""Sealed orders on the in-memory ledger: who sees what, and clearing from a checked book.

The live counterpart (tests/integration/test_sealed_live.py) also scans the
real blocks; here the ledger's own records stand for what a block could show.
"""

from __future__ import annotations

import json

import pytest
from certs import agg_trader, grid_admin
from market_world import VPPO, P, stage
from vpp_chaincode.sealed import ORDER_BOOK
from vpp_market.sealing import order_hash
from vpp_shim.api import ChaincodeError, implicit_collection

SEALED = ("side", "quantity_wh", "offer", "reserve", "salt")


def _public_bytes(world) -> bytes:
    """Everything every member's peer holds: public state, history, events."""
    main = world.main
    history = [e.value for entries in main.history.values() for e in entries]
    return b"".join([*main.state.values(), *history, *(e[2] for e in main.events)])


def test_a_competitor_sees_only_that_an_order_exists() -> None:
    world = stage("open")  # Agg3 sells, Agg4 buys (market_world)
    book = world.call(agg_trader(4), "GetOrderBook", P)["orders"]
    theirs, mine = book
    assert theirs["agg"] == 3 and theirs["sealed"] is True
    assert not set(SEALED) & set(theirs)
    assert mine["agg"] == 4 and mine["sealed"] is False and mine["quantity_wh"] == 100_000
    history = world.call(agg_trader(4), "GetHistory", "order~00001~13~0003")["history"]
    assert not set(SEALED) & set(history[0]["value"])
    # The salts (random, unique to each order) are nowhere in public state, history or events.
    salts = [o["salt"] for o in world.call(VPPO, "GetOrderBook", P)["orders"]]
    assert not [s for s in salts if s.encode() in _public_bytes(world)]


def test_the_operators_see_every_order_checked_against_its_hash() -> None:
    world = stage("open")
    for who in (VPPO, grid_admin()):
        book = world.call(who, "GetOrderBook", P)["orders"]
        assert [o["agg"] for o in book] == [3, 4]
        for o in book:
            assert o["sealed"] is False and order_hash(o, o["salt"]) == o["hash"]


def test_an_aggregators_own_order_is_on_its_own_peer_only() -> None:
    world = stage("open")
    key = world.main.private[ORDER_BOOK]
    assert sorted(world.main.private[implicit_collection("Agg3MSP")]) == [min(key)]
    with pytest.raises(ChaincodeError, match="matching public hash version is not available"):
        world.main.invoke(world.market, agg_trader(3), "GetOrderBook", P, peer_mspid="VPPOMSP")


def test_clearing_refuses_a_book_that_differs_from_its_hashes() -> None:
    world = stage("closed")
    book = world.main.private[ORDER_BOOK]
    key = min(book)
    order = json.loads(book[key])
    book[key] = json.dumps({**order, "offer": order["offer"] + 1}).encode()
    refused = world.refusal_error(VPPO, "ClearPeriod", P)
    assert refused is not None and refused.code == "ORDER_HASH_MISMATCH", refused
    del book[key]  # a peer that never got the private data
    refused = world.refusal_error(VPPO, "ClearPeriod", P)
    assert refused is not None and refused.code == "ORDER_DATA_MISSING", refused
    assert "reconciliation" in str(refused)


def test_vppo_and_grid_rewriting_the_private_copy_cannot_change_what_clears() -> None:
    """Trust rule: the VPPO and the Grid together cannot forge an aggregator's order.

    They can write the ``orderBook`` copy (they endorse every market transaction and
    see the salt), but the copy is bound to the public salted hash, which carries the
    aggregator's own key-level policy: a rewritten copy is refused by clearing,
    anchoring and settlement alike, and neither the hash nor the aggregator's own
    copy can be changed without the aggregator's peer. (So the copy needs no policy
    of its own, which would cost every peer a policy evaluation per order.)
    """
    from vpp_shim.testing import EndorsementPolicyFailure, MemoryStub

    world = stage("closed")
    key = min(world.main.private[ORDER_BOOK])
    order = json.loads(world.main.private[ORDER_BOOK][key])
    forged = json.dumps({**order, "quantity_wh": order["quantity_wh"] * 9}).encode()
    vppo_and_grid = frozenset({"VPPOMSP", "GridMSP"})
    own = implicit_collection(order["mspid"])

    def forge(*writes: tuple[str, bytes]) -> None:
        stub = MemoryStub(world.main, VPPO, "Forged", [], {})
        for coll, value in writes:
            if coll:
                stub.put_private_data(coll, key, value)
            else:
                stub.put_state(key, value)
        world.main.commit(stub, vppo_and_grid)

    public, own_copy = world.main.state[key], world.main.private[own][key]
    rehashed = {**json.loads(public), "hash": order_hash(json.loads(forged), order["salt"])}
    with pytest.raises(EndorsementPolicyFailure):  # the hash with it: the owner's policy
        forge((ORDER_BOOK, forged), ("", json.dumps(rehashed).encode()))
    with pytest.raises(EndorsementPolicyFailure):  # the aggregator's own copy
        forge((ORDER_BOOK, forged), (own, forged))
    forge((ORDER_BOOK, forged))  # the copy alone commits ...
    for who, function in ((VPPO, "ClearPeriod"), (grid_admin(), "GetOrderBook")):
        refused = world.refusal_error(who, function, P)  # ... and is refused, never used
        assert refused is not None and refused.code == "ORDER_HASH_MISMATCH", refused
    assert (world.main.state[key], world.main.private[own][key]) == (public, own_copy)


def test_the_old_argument_form_is_refused_before_anything_is_written() -> None:
    world = stage("open")
    before = world.snapshot()
    with pytest.raises(ChaincodeError, match="takes no arguments") as refused:
        world.main.invoke(world.market, agg_trader(3), "SubmitOrder", '{"agg": "Agg3"}')
    assert refused.value.code == "WRONG_ARGUMENT_COUNT"
    assert world.snapshot() == before
