"""The VPPO's period and day operations: clear, void, anchor, settle, close the day.

The contract (market.py) checks who calls and parses arguments; these
functions check the state, apply the rules of ``vpp_market`` and write. None
of them reads a key it writes in the same transaction (Fabric shows a
transaction only committed state), and each writes every key at most once.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from vpp_market.clearing import clear
from vpp_market.model import Order, PeriodPrices, Side
from vpp_market.reputation import close_day as reputation_step
from vpp_market.reputation import evaluation_ppm
from vpp_market.settlement import P2PContract, Position, Settlement, settle_period
from vpp_shim.api import ChaincodeError, Stub, to_json_bytes
from vpp_shim.codes import Code, split_wire_message

from vpp_chaincode import gridmodel, ids, marketconfig, sealed, state, views
from vpp_chaincode.ids import PeriodId, agg_key, agg_name
from vpp_chaincode.ledger import get_json, json_arg, key, put_json, records
from vpp_chaincode.state import (
    CLEARED,
    CLOSED,
    GRID_KIND,
    MATCHED,
    P2P_KIND,
    SETTLED,
    VOIDED,
)


def clear_period(stub: Stub, pid: PeriodId) -> dict[str, Any]:
    """Clear the closed book with the ledger's reputations; one contract key per trade."""
    record = state.period(stub, pid, CLOSED, "ClearPeriod")
    topology = state.topology(stub)
    book: list[Order] = []
    reputations: dict[str, int] = {}
    # The sealed book from the orderBook collection (VPPO and Grid, the endorsers, hold it),
    # each order checked against its public hash: a partial or altered book is refused.
    orders = sealed.book(stub, pid, "ClearPeriod")
    # Every order's aggregator and reputation in one GET_STATE_MULTIPLE per 1,000 keys:
    # one round trip per key made ClearPeriod of 5,000 orders take ~14 s to endorse
    # (docs/benchmarks.md). Same keys read, same refusal for an unregistered one.
    aggs = [o["agg"] for o in orders]
    values = stub.get_state_multiple(
        [key("aggregator", agg_key(a)) for a in aggs] + [state.reputation_key(a) for a in aggs]
    )
    registry, reps = values[: len(orders)], values[len(orders) :]
    for o, raw_registered, raw_rep in zip(orders, registry, reps, strict=True):
        if not raw_registered:
            raise ChaincodeError(
                Code.NOT_REGISTERED, f"ClearPeriod: {agg_name(o['agg'])} is not registered"
            )
        registered = json.loads(raw_registered)
        rep = json.loads(raw_rep)  # written together with the aggregator
        reputations[agg_name(o["agg"])] = rep["r_ppm"]
        book.append(
            Order(
                agg=o["agg"],
                side=Side(o["side"]),
                quantity_wh=o["quantity_wh"],
                offer=o["offer"],
                reserve=o["reserve"],
                reputation_ppm=rep["r_ppm"],
                region=registered["region"],
            )
        )
    result = clear(book, state.prices(record), topology)
    contract_ids: list[str] = []
    for seq, m in enumerate(result.matches, start=1):
        contract = {
            "id": ids.contract_id(pid, seq),
            "period": pid.id,
            "seq": seq,
            "kind": P2P_KIND,
            "round": m.round,
            "seller": m.seller,
            "buyer": m.buyer,
            "quantity_wh": m.quantity_wh,
            "price": m.price,
            "xi_ppm": m.xi_ppm,
            "seller_price": m.seller_price,
            "buyer_price": m.buyer_price,
            "status": MATCHED,
        }
        put_json(stub, state.contract_key(pid, seq), contract)
        contract_ids.append(contract["id"])
    for seq, g in enumerate(result.grid, start=len(result.matches) + 1):
        contract = state.grid_contract(pid, seq, g.agg, g.side, g.quantity_wh, g.price, None)
        put_json(stub, state.contract_key(pid, seq), contract)
        contract_ids.append(contract["id"])
    summary = {
        "period": pid.id,
        "orders": len(book),
        "matches": len(result.matches),
        "p2p_wh": sum(m.quantity_wh for m in result.matches),
        "grid_bought_wh": sum(g.quantity_wh for g in result.grid if g.side is Side.SELL),
        "grid_supplied_wh": sum(g.quantity_wh for g in result.grid if g.side is Side.BUY),
        "contracts": contract_ids,
        "reputations_ppm": reputations,
        "topology": topology is not None,
        # The grid model in force when the period cleared: its contracts wait for
        # the Grid's verdict on this model before anyone signs (gridmodel.py).
        "grid_model": gridmodel.loaded_sha256(stub),
    }
    put_json(
        stub,
        state.period_key(pid),
        {
            **record,
            **marketconfig.period_deadlines(record, stub),
            "status": CLEARED,
            "cleared_tx": stub.tx_id,
            # Ledger time of clearing, whole seconds: the deadlines count from here.
            "cleared_at": stub.timestamp_ns // 1_000_000_000,
            "clearing": summary,
        },
    )
    stub.set_event("PeriodCleared", to_json_bytes(summary))
    return summary


def void_unsigned(stub: Stub, pid: PeriodId) -> dict[str, Any]:
    """Turn every P2P contract still lacking a signature into grid absorption, both sides."""
    record = state.period(stub, pid, CLEARED, "VoidUnsigned")
    deadline = signing_deadline(record, stub)
    now = stub.timestamp_ns // 1_000_000_000
    if now < deadline:
        window = marketconfig.period_deadlines(record, stub)["signing_window_s"]
        raise ChaincodeError(
            Code.TOO_EARLY,
            f"VoidUnsigned: period {pid}'s signing window ({window} s after clearing) is open "
            f"until ledger time {deadline}; it is {now}, {deadline - now} s to go",
        )
    prices = state.prices(record)
    contracts = views.contracts_with_status(stub, pid)
    seq = max((c["seq"] for c in contracts), default=0)
    voided: list[str] = []
    created: list[str] = []
    for c in contracts:
        if c["kind"] != P2P_KIND or c["status"] != MATCHED:
            continue
        stored = {k: v for k, v in c.items() if k != "signatures"}
        put_json(stub, state.contract_key(pid, c["seq"]), {**stored, "status": VOIDED})
        voided.append(c["id"])
        created += absorb(stub, pid, c, c["quantity_wh"], seq, prices)
        seq += 2
    result = {"period": pid.id, "voided": voided, "grid_contracts": created}
    if voided:
        stub.set_event("ContractsVoided", to_json_bytes(result))
    return result


def signing_deadline(record: dict[str, Any], stub: Stub) -> int:
    """Ledger time (s) from which unsigned contracts of a cleared period may be voided."""
    window = marketconfig.period_deadlines(record, stub)["signing_window_s"]
    # A period cleared before cleared_at existed: its clearing time is unknown, so its
    # window counts from its opening (always earlier, hence never later than intended).
    cleared_at = record.get("cleared_at", record["opened_ns"] // 1_000_000_000)
    return cleared_at + window


def absorb(
    stub: Stub,
    pid: PeriodId,
    contract: dict[str, Any],
    quantity_wh: int,
    last_seq: int,
    prices: PeriodPrices,
) -> list[str]:
    """Turn ``quantity_wh`` of a P2P contract into grid absorption for both sides.

    The grid buys it from the seller at f_t and supplies it to the buyer at
    s_t: two grid contracts numbered ``last_seq + 1`` and ``+ 2``, each naming
    the P2P contract it came from. Voiding (all of an unsigned contract) and the
    Grid's curtailment (part or all of one) both take this path, so settlement
    sees one kind of grid absorption and every wallet still sums to zero.
    """
    created = []
    for offset, (agg, side, price) in enumerate(
        (
            (contract["seller"], Side.SELL, prices.purchase),
            (contract["buyer"], Side.BUY, prices.sale),
        ),
        start=1,
    ):
        grid = state.grid_contract(
            pid, last_seq + offset, agg, side, quantity_wh, price, contract["id"]
        )
        put_json(stub, state.contract_key(pid, last_seq + offset), grid)
        created.append(grid["id"])
    return created


def anchor_delivery(stub: Stub, pid: PeriodId, agg: int) -> dict[str, Any]:
    """Record an aggregator's metered energy from its sealed slave channel aggN.

    The query runs on the endorsing peer's own copy of aggN: with the market's
    AND(VPPO, Grid) policy two orgs must read the same sealed summary for the
    transaction to be endorsed (docs/endorsement.md).
    """
    state.period(stub, pid, CLEARED, "AnchorDelivery")
    state.aggregator(stub, agg, "AnchorDelivery")
    order = sealed.order(stub, pid, agg, "AnchorDelivery")
    if order is None:
        raise ChaincodeError(
            Code.NO_ORDER, f"AnchorDelivery: {agg_name(agg)} has no order in period {pid}"
        )
    if get_json(stub, state.delivery_key(pid, agg)) is not None:
        raise ChaincodeError(
            Code.ALREADY_ANCHORED,
            f"AnchorDelivery: delivery of {agg_name(agg)} for {pid} is already anchored",
        )
    channel = ids.agg_channel(agg)
    response = stub.invoke_chaincode(
        "meter", [b"DeliverySummary", pid.id.encode()], channel=channel
    )
    if response.status != 200:
        inner_code, inner_message = split_wire_message(response.message)
        raise ChaincodeError(
            inner_code or Code.DELIVERY_NOT_SEALED,
            f"AnchorDelivery: channel {channel} has no sealed delivery for {pid}: {inner_message}",
        )
    summary = json_arg("DeliverySummary", response.payload.decode())
    if summary.get("channel") != channel or summary.get("period") != pid.id:
        raise ChaincodeError(
            Code.DELIVERY_MISMATCH,
            f"AnchorDelivery: channel {channel} answered for "
            f"{summary.get('channel')}/{summary.get('period')}, not {channel}/{pid}",
        )
    side = Side(order["side"])
    delivery = {
        "period": pid.id,
        "agg": agg,
        "channel": channel,
        "side": side.value,
        "quantity_wh": order["quantity_wh"],
        "exported_wh": summary["exported_wh"],
        "imported_wh": summary["imported_wh"],
        "metered_wh": summary["exported_wh"] if side is Side.SELL else summary["imported_wh"],
        "sha256": summary["sha256"],
        "merkle_root": summary.get("merkle_root"),
        "readings": summary["readings"],
        "missing_meters": summary.get("missing_meters", []),
        "sealed_tx": summary["sealed_tx"],
        "anchored_tx": stub.tx_id,
    }
    put_json(stub, state.delivery_key(pid, agg), delivery)
    return delivery


def _settlement_record(
    pid: PeriodId, agg: int, s: Settlement, missing_meters: list[str]
) -> dict[str, Any]:
    return {
        "period": pid.id,
        "agg": agg,
        "side": s.side.value,
        "quantity_wh": s.quantity_wh,
        "contracted_wh": s.contracted_wh,
        "grid_wh": s.grid_wh,
        "delivered_wh": s.delivered_wh,
        "deviation_wh": s.deviation_wh,
        "income": s.income,
        "expenditure": s.expenditure,
        "net": s.net,
        "a_ppm": evaluation_ppm(s.quantity_wh, s.delivered_wh),
        # Meters that never reported (sealed by the VPPO after the deadline): counted as 0.
        "missing_meters": missing_meters,
        "terms": [
            {
                "kind": t.kind,
                "quantity_wh": t.quantity_wh,
                "price": t.price,
                "amount": t.amount,
                "counterparty": t.counterparty,
            }
            for t in s.terms
        ],
    }


def settle(stub: Stub, pid: PeriodId) -> dict[str, Any]:
    """Settle a cleared period once: every term of the spec as a wallet transfer."""
    record = state.period(stub, pid, CLEARED, "SettlePeriod")
    missing = views.missing_for_settlement(stub, pid)
    if missing:
        raise ChaincodeError(
            Code.NOT_READY, f"SettlePeriod: period {pid} cannot settle yet: " + "; ".join(missing)
        )
    deliveries = {d["agg"]: d for d in records(stub, "delivery", *pid.key_parts)}
    grid_wh: dict[int, int] = defaultdict(int)
    p2p: list[P2PContract] = []
    for c in records(stub, "contract", *pid.key_parts):
        if c["kind"] == GRID_KIND:
            grid_wh[c["agg"]] += c["quantity_wh"]
        elif c["status"] != VOIDED:
            p2p.append(P2PContract(c["seller"], c["buyer"], c["quantity_wh"], c["price"]))
    positions = [
        Position(
            agg=o["agg"],
            side=Side(o["side"]),
            quantity_wh=o["quantity_wh"],
            metered_wh=deliveries[o["agg"]]["metered_wh"],
            grid_wh=grid_wh[o["agg"]],
        )
        for o in sealed.book(stub, pid, "SettlePeriod")
    ]
    result = settle_period(positions, p2p, state.prices(record))
    for agg, s in result.settlements.items():
        put_json(
            stub,
            key("settlement", *pid.key_parts, agg_key(agg)),
            _settlement_record(pid, agg, s, deliveries[agg].get("missing_meters", [])),
        )
    deltas = result.wallet_deltas()
    balances: dict[str, int] = {}
    for name, delta in deltas.items():
        wallet = get_json(stub, state.wallet_key(name)) or {"wallet": name, "balance": 0}
        balances[name] = wallet["balance"] + delta
        put_json(stub, state.wallet_key(name), {"wallet": name, "balance": balances[name]})
    summary = {
        "period": pid.id,
        "aggregators": len(result.settlements),
        "transfers": [
            {"payer": t.payer, "payee": t.payee, "amount": t.amount, "kind": t.kind}
            for t in result.transfers
        ],
        "wallet_deltas": deltas,
    }
    put_json(
        stub,
        state.period_key(pid),
        {**record, "status": SETTLED, "settled_tx": stub.tx_id, "settlement": summary},
    )
    stub.set_event("PeriodSettled", to_json_bytes({"period": pid.id, "wallet_deltas": deltas}))
    return {**summary, "balances": balances}


def close_day(stub: Stub, day: int) -> dict[str, Any]:
    """The 24 h reputation update of every aggregator, kept as a per-day history.

    Days close in order. A day with a settled period must be closed before
    any later day, and only once all its periods settled. A day none of whose
    periods ever settled (no delivery was settled, so nothing can be
    evaluated) is skipped like a day without periods: R and a carry over.

    Trust rules (closing a day): refused for a day with no opened period (so
    a day beyond the calendar, e.g. 99999, can never close every day before
    it and stall OpenPeriod), and while any period of an earlier open day is
    cleared but not settled (closing past it would abandon its contracts:
    no money would ever move for them). Each refusal names the periods.
    """
    last = state.last_closed_day(stub)
    if day <= last:
        raise ChaincodeError(
            Code.DAY_CLOSED, f"CloseDay: day {day} is already closed (days up to {last} are)"
        )
    own = records(stub, "period", f"{day:05d}")
    if not own:
        raise ChaincodeError(
            Code.NOT_FOUND,
            f"CloseDay: day {day} has no opened period; only a day of the calendar "
            "(GetCalendar) with periods can close",
        )
    for _, raw in stub.get_state_by_range(state.day_key(last + 1), state.day_key(day)):
        earlier = json_arg("day", raw.decode())["day"]
        periods = records(stub, "period", f"{earlier:05d}")
        cleared = [p["period"] for p in periods if p["status"] == CLEARED]
        if cleared:
            raise ChaincodeError(
                Code.NOT_READY,
                f"CloseDay: day {earlier} (before day {day}) has periods cleared but not "
                f"settled: {', '.join(cleared)}; settle them (or close day {earlier}) first",
            )
        if any(p["status"] == SETTLED for p in periods):
            raise ChaincodeError(
                Code.NOT_READY,
                f"CloseDay: day {earlier} has settled periods and is not closed: close it first",
            )
    unsettled = [f"{p['period']} is {p['status']}" for p in own if p["status"] != SETTLED]
    if unsettled:
        raise ChaincodeError(
            Code.NOT_READY, f"CloseDay: day {day} has periods not settled: " + "; ".join(unsettled)
        )
    traded: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for s in records(stub, "settlement", f"{day:05d}"):
        traded[s["agg"]].append(s)
    updates: dict[str, int] = {}
    for registered in records(stub, "aggregator"):
        agg = registered["agg"]
        rep = get_json(stub, state.reputation_key(agg))
        assert rep is not None  # written together with the aggregator
        periods = traded.get(agg, [])
        step = reputation_step(
            rep["r_ppm"], rep["a_ppm"], [(s["quantity_wh"], s["delivered_wh"]) for s in periods]
        )
        put_json(
            stub,
            state.reputation_key(agg),
            {"agg": agg, "r_ppm": step.r_ppm, "a_ppm": step.a_ppm, "day": day},
        )
        put_json(
            stub,
            key("rephist", agg_key(agg), f"{day:05d}"),
            {
                "agg": agg,
                "day": day,
                "r_prev_ppm": step.r_prev_ppm,
                "a_prev_ppm": step.a_prev_ppm,
                "a_day_ppm": step.a_day_ppm,
                "r_ppm": step.r_ppm,
                "a_ppm": step.a_ppm,
                "carried_over": step.carried_over,
                "periods": [
                    {
                        "period": s["period"],
                        "quantity_wh": s["quantity_wh"],
                        "metered_wh": s["delivered_wh"],
                        "a_ppm": s["a_ppm"],
                    }
                    for s in periods
                ],
                "tx_id": stub.tx_id,
            },
        )
        updates[agg_name(agg)] = step.r_ppm
    put_json(stub, state.day_key(day), {"day": day, "closed": True, "closed_tx": stub.tx_id})
    put_json(stub, state.CONFIG_CALENDAR, {"last_closed_day": day})
    summary = {"day": day, "reputations_ppm": updates}
    stub.set_event("DayClosed", to_json_bytes(summary))
    return summary
