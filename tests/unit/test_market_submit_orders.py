"""SubmitOrders (one aggregator's orders for many periods in one transaction) on MemoryLedger.

Each order must be checked exactly as SubmitOrder checks it, land on its own
key, and one refusal must refuse the whole call without writing anything.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from capacity_setup import certify_and_sync
from certs import agg_admin, agg_meter, agg_trader, vppo_admin
from sealed_orders import invoke, market_ledger, proposal
from vpp_chaincode.market import MarketContract
from vpp_chaincode.orders import MAX_ORDERS_PER_CALL
from vpp_shim.api import ChaincodeError, create_composite_key
from vpp_shim.testing import MemoryStub

VPPO = vppo_admin()
HOURS = (12, 13, 14)


class Market:
    def __init__(self) -> None:
        self.ledger = market_ledger()
        self.contract = MarketContract()

    def call(self, caller: Any, function: str, *args: str) -> Any:
        raw = invoke(self.ledger, self.contract, caller, function, *args)
        return json.loads(raw) if raw else None

    def snapshot(self) -> Any:
        return self.ledger.snapshot()

    def refused(self, caller: Any, function: str, *args: str, match: str) -> str:
        before = self.snapshot()
        with pytest.raises(ChaincodeError, match=match) as caught:
            invoke(self.ledger, self.contract, caller, function, *args)
        assert self.snapshot() == before
        return str(caught.value)


@pytest.fixture
def market() -> Market:
    m = Market()
    for n in (3, 4):
        m.call(agg_admin(n), "RequestAdmission", f"Agg{n}", f"R{n}")
        m.call(VPPO, "ApproveAdmission", f"Agg{n}")
        certify_and_sync(m.ledger, m.contract, n)  # orders are bounded by it
    for t in HOURS:
        m.call(VPPO, "OpenPeriod", "1", str(t))
    return m


def order(t: int = 13, **overrides: Any) -> dict[str, Any]:
    """A buyer's order of Agg3 for day 1, hour t (prices valid in the paper's TOU table)."""
    o = {
        "agg": "Agg3",
        "period": f"1-{t}",
        "side": "buy",
        "quantity_kwh": "285.6",
        "offer": "0.713",
        "reserve": "0.736",
    }
    o.update(overrides)
    return {k: v for k, v in o.items() if v is not None}


def day(**overrides: Any) -> str:
    return json.dumps([order(t, **overrides) for t in HOURS])


def order_key(t: int, agg: int = 3) -> str:
    return create_composite_key("order", ["00001", f"{t:02d}", f"{agg:04d}"])


def test_one_key_per_order_and_the_same_records_as_submit_order(market: Market) -> None:
    result = market.call(agg_trader(3), "SubmitOrders", day())
    assert result["agg"] == 3 and result["count"] == 3
    assert [o["period"] for o in result["orders"]] == ["00001-12", "00001-13", "00001-14"]
    assert all(o["replaced"] is False for o in result["orders"])
    assert set(market.ledger.state) >= {order_key(t) for t in HOURS}
    # The record is the one SubmitOrder writes (apart from tx id, time and the salted hash).
    single = Market()
    single.call(agg_admin(3), "RequestAdmission", "Agg3", "R3")
    single.call(VPPO, "ApproveAdmission", "Agg3")
    certify_and_sync(single.ledger, single.contract, 3)
    single.call(VPPO, "OpenPeriod", "1", "13")
    alone = single.call(agg_trader(3), "SubmitOrder", json.dumps(order(13)))
    batched = result["orders"][1]
    skip = {"tx_id", "timestamp_ns", "hash"}
    assert {k: v for k, v in batched.items() if k not in skip} == {
        k: v for k, v in alone.items() if k not in skip
    }


def test_writes_only_the_order_keys_and_reads_no_hot_key(market: Market) -> None:
    class Spy(MemoryStub):
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            self.reads: set[str] = set()

        def get_state(self, key: str) -> bytes:
            self.reads.add(key)
            return super().get_state(key)

    _, transient = proposal("SubmitOrders", [day()])
    stub = Spy(market.ledger, agg_trader(3), "SubmitOrders", [], transient)
    market.contract.invoke(stub)
    assert set(stub.writes) == {order_key(t) for t in HOURS}
    # Private writes are blind: the aggregator's peer, not a member of the order book
    # collection, must be able to endorse them.
    assert set(stub.private_writes) == {
        (c, order_key(t)) for t in HOURS for c in ("orderBook", "_implicit_org_Agg3MSP")
    }
    assert stub.reads == {
        create_composite_key("aggregator", ["0003"]),
        *(create_composite_key("period", ["00001", f"{t:02d}"]) for t in HOURS),
        *(order_key(t) for t in HOURS),
        create_composite_key("capacity", ["0003"]),  # its own bound, once for all its orders
    }


def test_one_key_level_policy_per_order_on_its_public_hash_only(market: Market) -> None:
    """Every peer evaluates a key's own policy (three endorsement signatures) for each write
    of the key, and looks up each private key's metadata through the chaincode definition:
    a policy on the orderBook copy too doubled that work per order (docs/benchmarks.md,
    "Sealed orders: where the peers' CPU goes"). The public hash alone binds the copy
    (test_sealed_orders: a rewritten copy is refused by clearing)."""
    from vpp_chaincode.keypolicy import owner_policy

    _, transient = proposal("SubmitOrders", [day()])
    stub = MemoryStub(market.ledger, agg_trader(3), "SubmitOrders", [], transient)
    market.contract.invoke(stub)
    assert stub.metadata_writes == {
        order_key(t): {"VALIDATION_PARAMETER": owner_policy("Agg3MSP")} for t in HOURS
    }
    assert stub.private_metadata_writes == {}
    market.ledger.commit(stub)
    # Replacing an order writes no policy at all (the key keeps the one it was created with).
    _, transient = proposal("SubmitOrders", [day(quantity_kwh="100")])
    again = MemoryStub(market.ledger, agg_trader(3), "SubmitOrders", [], transient)
    market.contract.invoke(again)
    assert again.metadata_writes == {} and again.private_metadata_writes == {}


def test_replaces_earlier_orders_and_mixes_json_numbers(market: Market) -> None:
    market.call(agg_trader(3), "SubmitOrder", json.dumps(order(13)))
    text = json.dumps([order(12), order(13, quantity_kwh=100, offer=0.72)])
    result = market.call(agg_admin(3), "SubmitOrders", text)
    assert [o["replaced"] for o in result["orders"]] == [False, True]
    book = market.call(VPPO, "GetOrderBook", "1-13")["orders"]
    assert book[0]["quantity_wh"] == 100_000
    assert book[0]["offer"] == 720_000  # the decimal text, never a float


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (day(quantity_kwh="1.2345"), r"orders\[0\]: quantity_kwh '1.2345': has more than 3"),
        (
            json.dumps([order(12), order(13, offer="0.6")]),
            r"SubmitOrders: orders\[1\]: .*offer: 0.6 yuan/kWh is below the grid purchase price",
        ),
        (
            json.dumps([order(12), order(13, reserve="0.7")]),
            r"orders\[1\]: .*a buyer's reserve 0.7 is below its offer 0.713",
        ),
        (json.dumps([order(12), order(15)]), r"orders\[1\]: .*period 00001-15 has not been opened"),
        (json.dumps([order(12), order(13, price="1")]), r"orders\[1\]: .*unknown field 'price'"),
        (json.dumps([order(12), order(13, reputation="1")]), r"orders\[1\]: reputation is not"),
        (json.dumps([order(12), order(12)]), r"orders\[1\]: period 00001-12 is listed twice"),
        (json.dumps([order(12), order(13, agg="Agg4")]), r"orders\[1\]: agg Agg4 differs"),
        (json.dumps([order(12), [1, 2]]), r"orders\[1\]: .*is not a JSON object"),
        ("[]", r"has 0 orders; SubmitOrders takes 1\.\.168"),
        (json.dumps(order(12)), "is not a JSON list of orders"),
        ("[", "is not valid JSON"),
    ],
)
def test_one_bad_order_refuses_all_and_names_it(market: Market, text: str, match: str) -> None:
    market.refused(agg_trader(3), "SubmitOrders", text, match=match)


def test_too_many_orders_in_one_call(market: Market) -> None:
    text = json.dumps([order(12)] * (MAX_ORDERS_PER_CALL + 1))
    market.refused(agg_trader(3), "SubmitOrders", text, match="has 169 orders")


def test_only_the_aggregators_own_trader_or_admin(market: Market) -> None:
    market.refused(agg_trader(4), "SubmitOrders", day(), match="Agg4MSP/trader may not trade")
    market.refused(agg_meter(3), "SubmitOrders", day(), match="GridMSP/meter may not trade")
    market.refused(VPPO, "SubmitOrders", day(), match="VPPOMSP/admin may not trade")


def test_one_closed_gate_refuses_the_whole_day(market: Market) -> None:
    market.call(VPPO, "ClosePeriod", "1-14")
    message = market.refused(agg_trader(3), "SubmitOrders", day(), match="the gate is closed")
    assert message.startswith("SubmitOrders: orders[2]: period 00001-14 is CLOSED")


def test_noop_writes_nothing(market: Market) -> None:
    before = market.snapshot()
    assert market.ledger.invoke(market.contract, agg_trader(3), "Noop") == b""
    assert market.snapshot()[0] == before[0]
