"""Sealed orders on the live network (issue 11): competitors never see each other's bids.

Agg3 places an order with values that appear nowhere else (odd quantity and
prices, a fresh salt). Agg4's trader then looks everywhere it can: every
market query on every peer it can reach, GetHistory of the order key, the
chaincode events, and the raw bytes of every block of the period on every
peer (qscc GetBlockByNumber). None of it may hold the order's side,
quantity, offer, reserve or salt. The VPPO sees the whole order, Agg3 its
own; clearing the period gives the same contracts as ``vppctl clear
--offline`` of the VPPO's book; the order survives a restart of the VPPO's
peer, and a tampered copy fails ``vppctl orders verify``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    clear_here_and_offline,
    ensure_aggregators,
    market,
    open_test_period,
    order_json,
    query,
    sealed_order,
    stopped,
    vppctl,
    wait_until,
    wait_until_endorsable,
)
from vpp_gateway import connect_as
from vpp_network.network import Network
from vpp_network.plan import MAIN_CHANNEL

pytestmark = pytest.mark.network

SELLER, BUYER = 3, 4


def _needles(order: dict[str, Any], sent: dict[str, Any]) -> list[bytes]:
    """Every spelling of the sealed values that a leak could carry."""
    texts = {
        sent["salt"],
        sent["quantity_kwh"],
        sent["offer"],
        sent["reserve"],
        str(order["quantity_wh"]),
        str(order["offer"]),
        str(order["reserve"]),
    }
    return [t.encode() for t in texts]


def _blocks(gw: Any, org: str, first: int, last: int) -> list[bytes]:
    """Raw blocks first..last of vpp-main from a peer of ``org`` (qscc, a channel reader)."""
    qscc = gw.network(MAIN_CHANNEL).contract("qscc")
    return [
        qscc.new_proposal("GetBlockByNumber", MAIN_CHANNEL, str(n), endorsing_orgs=[org]).evaluate()
        for n in range(first, last + 1)
    ]


@pytest.fixture(scope="module")
def sealed(network: Network) -> dict[str, Any]:
    """An open period with Agg3's sealed sell order; what was sent and where it landed."""
    ensure_aggregators([SELLER, BUYER])
    wait_until_endorsable(f"agg{SELLER}-trader", f"agg{BUYER}-trader")
    with connect_as("vppo-admin") as gw:
        period = open_test_period(market(gw))
        first_block = gw.network(MAIN_CHANNEL).block_height()
    pid, low = period["period"], period["purchase"]
    # Values found nowhere else: an odd quantity (Wh) and prices between f_t and s_t.
    quantity_wh, offer, reserve = 123_457, low + 12_347, low + 1_239
    text = order_json(SELLER, pid, "sell", quantity_wh, offer, reserve)
    kwargs = sealed_order(text)
    with connect_as(f"agg{SELLER}-trader") as gw:
        placed = json.loads(market(gw).submit("SubmitOrder", wait_for_peers=True, **kwargs))
    sent = json.loads(kwargs["transient"]["order"])
    order = {"quantity_wh": quantity_wh, "offer": offer, "reserve": reserve}
    return {
        "period": period,
        "pid": pid,
        "placed": placed,
        "sent": sent,
        "order": order,
        "needles": _needles(order, sent),
        "first_block": first_block,
    }


def _leaks(blob: bytes, needles: list[bytes]) -> list[bytes]:
    return [n for n in needles if n in blob]


def test_the_result_and_the_block_keep_only_the_hash(sealed: dict[str, Any]) -> None:
    placed = sealed["placed"]
    assert set(placed) == {
        "period", "agg", "hash", "mspid", "submitter", "tx_id", "timestamp_ns", "replaced",
    }  # fmt: skip
    assert not _leaks(json.dumps(placed).encode(), sealed["needles"])


def test_a_competitor_sees_that_the_order_exists_and_nothing_of_it(
    network: Network, sealed: dict[str, Any]
) -> None:
    pid, needles = sealed["pid"], sealed["needles"]
    key = f"order~{pid.replace('-', '~')}~{SELLER:04d}"
    with connect_as(f"agg{BUYER}-trader") as gw:
        contract = market(gw)
        orgs = [org.mspid for org in network.plan.peer_orgs]
        answers: dict[str, bytes] = {}
        for org in orgs:  # every peer of vpp-main it can ask
            for function, args in (
                ("GetOrderBook", (pid,)),
                ("GetPeriod", (pid,)),
                ("GetHistory", (key,)),
                ("GetContracts", (pid,)),
                ("GetCalendar", ()),
            ):
                proposal = contract.new_proposal(function, *args, endorsing_orgs=[org])
                answers[f"{function}@{org}"] = proposal.evaluate()
        book = json.loads(answers["GetOrderBook@Agg4MSP"])
        (theirs,) = [o for o in book["orders"] if o["agg"] == SELLER]
        assert theirs["sealed"] is True and theirs["hash"] == sealed["placed"]["hash"]
        assert not {"side", "quantity_wh", "offer", "reserve", "salt"} & set(theirs)
        for name, answer in answers.items():
            assert not _leaks(answer, needles), f"{name} shows a sealed value"
        # Chaincode events of every block since the period opened.
        events = gw.network(MAIN_CHANNEL).chaincode_events(
            "market", start_block=sealed["first_block"], timeout=5
        )
        payloads = [e.payload for e in events]
        assert not [p for p in payloads if _leaks(p, needles)]
        # The blocks themselves, from every peer: transient data never reaches them, and
        # the private writes appear only as hashes of a salted value.
        last = gw.network(MAIN_CHANNEL).block_height() - 1
        for org in orgs:
            blocks = _blocks(gw, org, sealed["first_block"], last)
            assert blocks and not [b for b in blocks if _leaks(b, needles)], org


def test_the_vppo_and_the_aggregator_see_the_whole_order(sealed: dict[str, Any]) -> None:
    pid, order = sealed["pid"], sealed["order"]
    for identity in ("vppo-admin", "grid-admin", f"agg{SELLER}-trader"):
        with connect_as(identity) as gw:
            book = query(market(gw), "GetOrderBook", pid)
        (mine,) = [o for o in book["orders"] if o["agg"] == SELLER]
        assert mine["sealed"] is False and mine["side"] == "sell", identity
        assert {k: mine[k] for k in order} == order, identity
        assert mine["salt"] == sealed["sent"]["salt"] and mine["hash"] == sealed["placed"]["hash"]


def test_private_data_survives_a_restart_of_the_vppo_peer(
    network: Network, sealed: dict[str, Any]
) -> None:
    peer = network.plan.vppo.peer_host
    with stopped(network, peer):
        pass  # stopped, then started again by the context
    wait_until_endorsable("vppo-admin")
    with connect_as("vppo-admin") as gw:
        contract = market(gw)
        book = wait_until(
            lambda: query(contract, "GetOrderBook", sealed["pid"]), 120, "the VPPO's peer answers"
        )
    (mine,) = [o for o in book["orders"] if o["agg"] == SELLER]
    assert mine["quantity_wh"] == sealed["order"]["quantity_wh"]


def test_verify_accepts_the_order_and_refuses_a_tampered_copy(
    sealed: dict[str, Any], tmp_path: Path
) -> None:
    good = tmp_path / "order.json"
    good.write_text(json.dumps({**sealed["sent"], "agg": f"Agg{SELLER}"}))
    ok = vppctl("orders", "verify", "--file", str(good), "--as", f"agg{BUYER}-trader")
    assert ok.returncode == 0, ok.stderr
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps({**sealed["sent"], "quantity_kwh": "123.458"}))
    bad = vppctl("orders", "verify", "--file", str(tampered), "--as", f"agg{BUYER}-trader")
    assert bad.returncode == 1 and "does not match" in bad.stderr, bad.stderr


def test_clearing_equals_offline_clearing_of_the_same_book(
    sealed: dict[str, Any], tmp_path: Path, finished_afterwards: list[str]
) -> None:
    pid, period = sealed["pid"], sealed["period"]
    finished_afterwards.append(pid)  # settled and its day closed afterwards
    buy = order_json(BUYER, pid, "buy", 100_000, period["sale"] - 5_000, period["sale"])
    with connect_as(f"agg{BUYER}-trader") as gw:
        market(gw).submit("SubmitOrder", wait_for_peers=True, **sealed_order(buy))
    with connect_as("vppo-admin") as gw:
        book = query(market(gw), "GetOrderBook", pid)
    on_network, offline = clear_here_and_offline(period, book, tmp_path)
    assert offline == on_network
