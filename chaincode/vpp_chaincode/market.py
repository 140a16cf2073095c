"""The ``market`` chaincode on channel vpp-main: orders, clearing, contracts, settlement.

One method per transaction (fabric-samples style): string arguments, JSON
results, a ChaincodeError for every refusal (the peer then discards the whole
write set, so a refused call writes nothing). The market rules live in
``vpp_market``; this class decides who may call what and parses arguments,
``lifecycle`` runs the VPPO's period operations and ``state`` holds the key
layout. The period's life cycle:

    OpenPeriod -> OPEN -(SubmitOrder/CancelOrder)- ClosePeriod -> CLOSED
      -> ClearPeriod -> CLEARED -(SignContract, VoidUnsigned, AnchorDelivery)-
      SettlePeriod -> SETTLED -> CloseDay (reputation of the day)

Concurrency: the order path writes only its own ``order~<day>~<t>~<agg>`` key
and reads keys nobody writes while the gate is open, but for its own
aggregator's ``capacity~<agg>`` (written only by a SyncCapacity of that
aggregator), so bids of different aggregators never conflict; an order
racing ClosePeriod (or its aggregator's SyncCapacity) in one block fails
validation on the period (capacity) key, a retryable MVCC conflict. Each
party's signature is its own key, so both parties can sign a contract in the
same block.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from vpp_market.settlement import wallet_name
from vpp_shim.api import ChaincodeError, Contract, Stub, to_json_bytes
from vpp_shim.codes import Code

from vpp_chaincode import (
    access,
    admission,
    capacity,
    gridmodel,
    ids,
    inputs,
    keypolicy,
    lifecycle,
    marketconfig,
    orders,
    sealed,
    state,
    views,
)
from vpp_chaincode.gridcheck import GridMixin
from vpp_chaincode.health import HealthMixin
from vpp_chaincode.ids import PeriodId, agg_key, agg_name
from vpp_chaincode.ledger import (
    get_json,
    json_arg,
    parse_display_key,
    put_json,
    query,
    records,
    tx,
)
from vpp_chaincode.state import CLEARED, OPEN, P2P_KIND, VOIDED


class MarketContract(HealthMixin, GridMixin, Contract):
    name = "market"
    version = "1.0"

    @tx
    def RequestAdmission(
        self, stub: Stub, agg: str, region: str, meter_ids: str = ""
    ) -> dict[str, Any]:
        """Aggregator N's admin asks to join the market (its own MSP, from its certificate).

        The first half of admission by consent (admission.py); the VPPO's
        ApproveAdmission completes it. ``meter_ids``: JSON list of ``aggN-...``.
        """
        return admission.request(stub, agg, region, meter_ids)

    @tx
    def ApproveAdmission(
        self, stub: Stub, agg: str, initial_reputation: str = ""
    ) -> dict[str, Any]:
        """The VPPO admits a requested aggregator with R_0 (default 0.5), a_0 = 1, wallet 0."""
        return admission.approve(stub, agg, initial_reputation)

    @tx
    def LoadTou(self, stub: Stub, bands: str) -> dict[str, Any]:
        """Replace the TOU table; periods opened afterwards take their s_t, f_t from it.

        ``bands``: JSON list of {"start_hour", "end_hour", "grid_sale_price",
        "grid_purchase_price"} objects or of [start, end, sale, purchase] rows
        (the columns of paper_case/tou.csv), prices in yuan/kWh.
        """
        access.require_vppo(stub.caller, "LoadTou")
        table = inputs.tou_table(bands)
        record = {"bands": state.tou_bands(table), "loaded_tx": stub.tx_id}
        put_json(stub, state.CONFIG_TOU, record)
        return record

    @tx
    def LoadTopology(self, stub: Stub, lines: str) -> dict[str, Any]:
        """Replace the tie-lines; the next ClearPeriod checks flows against them.

        ``lines``: JSON list of {"from_region", "to_region", "limit_kw"} objects
        or [from, to, limit_kw] rows (paper_case/tie_lines.csv). Must be a
        non-empty tree holding every registered aggregator's region (else
        every ClearPeriod would fail on the missing region); RemoveTopology
        returns to no limits.
        """
        access.require_vppo(stub.caller, "LoadTopology")
        topology = inputs.tie_lines(lines)
        if not topology.lines:
            raise ChaincodeError(
                Code.BAD_ARGUMENT,
                "LoadTopology: lines is empty; a topology needs at least one tie-line "
                "(RemoveTopology removes the limits)",
            )
        missing = sorted(
            f"{agg_name(a['agg'])} ({a['region']})"
            for a in records(stub, "aggregator")
            if a["region"] not in topology.regions
        )
        if missing:
            raise ChaincodeError(
                Code.REGION_NOT_IN_TOPOLOGY,
                "LoadTopology: the tie-lines leave out the region of registered aggregators: "
                + ", ".join(missing),
            )
        record = {
            "lines": [{"a": t.a, "b": t.b, "limit_w": t.limit_w} for t in topology.lines],
            "loaded_tx": stub.tx_id,
        }
        put_json(stub, state.CONFIG_TOPOLOGY, record)
        return record

    @tx
    def SetMarketConfig(self, stub: Stub, config: str) -> dict[str, Any]:
        """Set the market's deadlines (seconds); periods opened afterwards keep them.

        ``config``: JSON object with any of ``signing_window_s`` (how long after
        clearing the parties may sign before VoidUnsigned is allowed) and
        ``seal_deadline_s`` (how long after clearing an aggregator has to seal
        its delivery before the VPPO may), whole seconds 0..604800. Fields not
        given keep their value. Read back with GetConfig("market").
        """
        access.require_vppo(stub.caller, "SetMarketConfig")
        merged = marketconfig.parse(config, marketconfig.current(stub))
        record = {**merged, "set_tx": stub.tx_id, "set_ns": stub.timestamp_ns}
        put_json(stub, marketconfig.CONFIG_MARKET, record)
        return record

    @tx
    def RemoveTopology(self, stub: Stub) -> dict[str, Any]:
        """Remove the tie-lines: the next ClearPeriod has no line limits (unlimited flows)."""
        access.require_vppo(stub.caller, "RemoveTopology")
        if get_json(stub, state.CONFIG_TOPOLOGY) is None:
            raise ChaincodeError(Code.NOT_FOUND, "RemoveTopology: no topology is loaded")
        stub.del_state(state.CONFIG_TOPOLOGY)
        return {"lines": None, "removed_tx": stub.tx_id}

    # --- VPPO: the period's life cycle ------------------------------------------------
    @tx
    def OpenPeriod(self, stub: Stub, day: str, t: str) -> dict[str, Any]:
        """Open the gate of (day, t), fixing its TOU prices s_t and f_t for its whole life."""
        access.require_vppo(stub.caller, "OpenPeriod")
        pid = PeriodId(ids.parse_day(day), ids.parse_hour(t))
        last = state.last_closed_day(stub)
        if pid.day <= last:
            raise ChaincodeError(
                Code.DAY_CLOSED, f"day {pid.day} is closed (days up to {last} are closed)"
            )
        if get_json(stub, state.period_key(pid)) is not None:
            raise ChaincodeError(Code.PERIOD_EXISTS, f"period {pid} is already open or past")
        prices = state.tou(stub).prices_for(pid.hour)
        record = {
            "period": pid.id,
            "day": pid.day,
            "t": pid.hour,
            "status": OPEN,
            "sale": prices.sale,
            "purchase": prices.purchase,
            "opened_tx": stub.tx_id,
            "opened_ns": stub.timestamp_ns,
            # The deadlines of this period, fixed now like its prices (marketconfig).
            **marketconfig.for_period(stub),
        }
        put_json(stub, state.period_key(pid), record)
        # A blind write (never read here), so OpenPeriods of one day never conflict.
        put_json(stub, state.day_key(pid.day), {"day": pid.day, "closed": False})
        return record

    @tx
    def ClosePeriod(self, stub: Stub, period: str) -> dict[str, Any]:
        """Close the gate: orders after this (or racing it in one block) are refused."""
        access.require_vppo(stub.caller, "ClosePeriod")
        pid = ids.parse_period(period)
        record = state.period(stub, pid, OPEN, "ClosePeriod")
        record = {
            **record,
            "status": state.CLOSED,
            "closed_tx": stub.tx_id,
            "closed_ns": stub.timestamp_ns,
        }
        put_json(stub, state.period_key(pid), record)
        return record

    @tx
    def ClearPeriod(self, stub: Stub, period: str) -> dict[str, Any]:
        """Clear the closed book with the ledger's reputations; emits PeriodCleared."""
        access.require_vppo(stub.caller, "ClearPeriod")
        return lifecycle.clear_period(stub, ids.parse_period(period))

    @tx
    def VoidUnsigned(self, stub: Stub, period: str) -> dict[str, Any]:
        """Turn every P2P contract still lacking a signature into grid absorption, both sides.

        Only once the period's signing window is over: ledger time (this
        transaction's timestamp) at or after ``cleared_at + signing_window_s``.
        """
        access.require_vppo(stub.caller, "VoidUnsigned")
        pid = ids.parse_period(period)
        state.require_day_open(stub, pid, "VoidUnsigned")
        return lifecycle.void_unsigned(stub, pid)

    @tx
    def AnchorDelivery(self, stub: Stub, period: str, agg: str) -> dict[str, Any]:
        """Record an aggregator's metered energy, read cross-channel from its sealed aggN."""
        access.require_vppo(stub.caller, "AnchorDelivery")
        pid = ids.parse_period(period)
        state.require_day_open(stub, pid, "AnchorDelivery")
        return lifecycle.anchor_delivery(stub, pid, ids.parse_agg(agg))

    @tx
    def SettlePeriod(self, stub: Stub, period: str) -> dict[str, Any]:
        """Settle a cleared period once, naming whatever is still missing; emits PeriodSettled."""
        access.require_vppo(stub.caller, "SettlePeriod")
        pid = ids.parse_period(period)
        state.require_day_open(stub, pid, "SettlePeriod")
        return lifecycle.settle(stub, pid)

    @tx
    def CloseDay(self, stub: Stub, day: str) -> dict[str, Any]:
        """The daily reputation update of every aggregator; emits DayClosed."""
        access.require_vppo(stub.caller, "CloseDay")
        return lifecycle.close_day(stub, ids.parse_day(day))

    # --- traders ------------------------------------------------------------------------
    @tx
    def SyncCapacity(self, stub: Stub, agg: str) -> dict[str, Any]:
        """Copy aggregator N's certified capacity from its channel agg<N> (GetCapacity) to
        ``capacity~<N>``, the bound of its orders (capacity.py says why it can be trusted).

        Takes no number: each endorser reads its own copy of agg<N>. AggN's
        traders and admin, the VPPO admin and the Grid admin may run it.
        """
        return capacity.sync(stub, agg)

    @tx
    def SubmitOrder(self, stub: Stub, *order: str) -> dict[str, Any]:
        """Place or replace the caller's aggregator's sealed order while the gate is open.

        No arguments (``*order`` only catches the pre-sealing form, to refuse it
        clearly): the order travels in the proposal's transient data
        ``order``, JSON {"agg", "period", "side", "quantity_kwh", "offer",
        "reserve", "salt"}; kWh with at most 3 decimals, yuan/kWh with at most
        6, as decimal strings or JSON numbers; ``salt`` 64 hex digits drawn by
        the client. Result (kept in the block): the public record, i.e. the
        order's hash, never its side, quantity or prices (sealed.py).
        """
        _no_arguments("SubmitOrder", order, sealed.TRANSIENT_ORDER)
        return orders.submit_one(stub)

    @tx
    def SubmitOrders(self, stub: Stub, *orders_json: str) -> dict[str, Any]:
        """One aggregator's sealed orders for several periods (e.g. its day) in one transaction.

        No arguments: transient data ``orders`` is a JSON list of SubmitOrder
        objects (each with its own salt), all for the same aggregator, each for
        a different period (at most 168). Each is checked exactly as
        SubmitOrder checks it and written to its own key; one refusal refuses
        them all. Result: ``{agg, count, orders[]}`` of public records.
        """
        _no_arguments("SubmitOrders", orders_json, sealed.TRANSIENT_ORDERS)
        return orders.submit_many(stub)

    @tx
    def CancelOrder(self, stub: Stub, period: str, agg: str) -> dict[str, Any]:
        """Withdraw the caller's aggregator's order (public hash and private copies)."""
        number = ids.parse_agg(agg)
        pid = ids.parse_period(period)
        registered = state.trader(stub, number, "CancelOrder")
        state.period(stub, pid, OPEN, "CancelOrder")
        if get_json(stub, state.order_key(pid, number)) is None:
            raise ChaincodeError(Code.NO_ORDER, f"{agg_name(number)} has no order in period {pid}")
        sealed.delete(stub, pid, number, registered["mspid"])
        return {"period": pid.id, "agg": number, "cancelled": True}

    @tx
    def SignContract(self, stub: Stub, contract_id: str) -> dict[str, Any]:
        """A party's signature on a P2P contract, with its own identity; both -> SIGNED."""
        pid, seq = ids.parse_contract_id(contract_id)
        contract = get_json(stub, state.contract_key(pid, seq))
        if contract is None:
            raise ChaincodeError(Code.NOT_FOUND, f"contract {contract_id!r} does not exist")
        if contract["kind"] != P2P_KIND:
            raise ChaincodeError(
                Code.CONTRACT_NOT_SIGNABLE,
                f"{contract['id']} is a grid contract; it needs no signature",
            )
        record = state.period(stub, pid, CLEARED, "SignContract")
        state.require_day_open(stub, pid, "SignContract")
        gridmodel.require_verdict(stub, pid, record, "SignContract")
        if contract["status"] == VOIDED:
            raise ChaincodeError(
                Code.CONTRACT_NOT_SIGNABLE,
                f"{contract['id']} was voided (turned into grid absorption)",
            )
        party, signer_msp = None, ""
        for role in ("seller", "buyer"):
            registered = state.aggregator(stub, contract[role], "SignContract")
            if access.is_trader_of(stub.caller, registered["mspid"]):
                party, signer_msp = contract[role], registered["mspid"]
        if party is None:
            raise ChaincodeError(
                Code.NOT_A_PARTY,
                f"{access.describe(stub.caller)} is not a party of {contract['id']} "
                f"(seller {agg_name(contract['seller'])}, buyer {agg_name(contract['buyer'])}); "
                "each party signs with its own trader or admin identity",
            )
        if get_json(stub, state.signature_key(pid, seq, party)) is not None:
            raise ChaincodeError(
                Code.ALREADY_SIGNED, f"{agg_name(party)} has already signed {contract['id']}"
            )
        put_json(
            stub,
            state.signature_key(pid, seq, party),
            {
                "contract": contract["id"],
                "agg": party,
                "mspid": stub.caller.mspid,
                "signer": stub.caller.common_name,
                "tx_id": stub.tx_id,
                "timestamp_ns": stub.timestamp_ns,
            },
        )
        keypolicy.protect(stub, state.signature_key(pid, seq, party), signer_msp)
        # The other party's signature key is deliberately not read: if it were, seller
        # and buyer signing in the same block would invalidate each other (MVCC).
        # SIGNED is derived from the two keys when contracts are queried.
        result = {"contract": contract["id"], "signed_by": party}
        stub.set_event("ContractSignature", to_json_bytes(result))
        return result

    # --- queries (any member) ----------------------------------------------------------
    @tx
    def GetOrderBook(self, stub: Stub, period: str) -> dict[str, Any]:
        """The period's orders as the caller may see them (sealed.view).

        VPPO and Grid: every order in full. An aggregator: its own order in
        full (evaluated on its own peer, which holds its copy) and of every
        other only that it exists (``sealed``: true, its hash and submitter).
        """
        pid = ids.parse_period(period)
        record = state.period(stub, pid, None, "GetOrderBook")
        return {
            "period": pid.id,
            "status": record["status"],
            "sale": record["sale"],
            "purchase": record["purchase"],
            "orders": sealed.view(stub, pid),
        }

    @tx
    def GetContracts(self, stub: Stub, period: str = "", agg: str = "") -> dict[str, Any]:
        """Contracts of a period (or of all periods), optionally only those of ``agg``."""
        pid = ids.parse_period(period) if ids.trim(period) else None
        number = ids.parse_agg(agg) if ids.trim(agg) else None
        contracts = views.contracts_with_status(stub, pid)
        if number is not None:
            contracts = [c for c in contracts if number in (c["seller"], c["buyer"])]
        return {"period": pid.id if pid else None, "agg": number, "contracts": contracts}

    @tx
    def GetAggregator(self, stub: Stub, agg: str) -> dict[str, Any]:
        number = ids.parse_agg(agg)
        record = state.aggregator(stub, number, "GetAggregator")
        return {
            **record,
            "reputation": get_json(stub, state.reputation_key(number)),
            "wallet": get_json(stub, state.wallet_key(wallet_name(number))),
        }

    @tx
    def GetCapacity(self, stub: Stub, agg: str) -> dict[str, Any]:
        """The certified capacity last synced from agg<N>: {agg, supply_w, load_w, synced_*}."""
        return capacity.get(stub, agg)

    @tx
    def GetCapacities(self, stub: Stub) -> dict[str, Any]:
        """Every aggregator's synced capacity, by aggregator number."""
        return {"capacities": capacity.all_synced(stub)}

    @tx
    def GetWallets(self, stub: Stub) -> dict[str, Any]:
        """Every wallet's balance (micro-yuan); ``total`` is always 0."""
        wallets = records(stub, "wallet")
        return {"wallets": wallets, "total": sum(w["balance"] for w in wallets)}

    @tx
    def GetReputation(self, stub: Stub, agg: str) -> dict[str, Any]:
        """Current R and a (ppm) and the daily history, oldest first."""
        number = ids.parse_agg(agg)
        state.aggregator(stub, number, "GetReputation")
        return {
            "agg": number,
            "current": get_json(stub, state.reputation_key(number)),
            "history": records(stub, "rephist", agg_key(number)),
        }

    @tx
    def GetPeriod(self, stub: Stub, period: str) -> dict[str, Any]:
        """The period record and its progress (orders, contracts, anchored deliveries)."""
        pid = ids.parse_period(period)
        record = state.period(stub, pid, None, "GetPeriod")
        counts: dict[str, int] = defaultdict(int)
        for c in views.contracts_with_status(stub, pid):
            counts[c["status"]] += 1
        progress: dict[str, Any] = {
            "orders": sum(1 for _ in query(stub, "order", *pid.key_parts)),
            "contracts": dict(sorted(counts.items())),
            "anchored": [d["agg"] for d in records(stub, "delivery", *pid.key_parts)],
        }
        if record["status"] == CLEARED:
            progress["missing_for_settlement"] = views.missing_for_settlement(stub, pid)
        return {**record, "progress": progress}

    @tx
    def GetCalendar(self, stub: Stub) -> dict[str, Any]:
        """The days that have periods, each with its periods' status, and the last closed day."""
        return views.calendar(stub)

    @tx
    def GetSettlements(self, stub: Stub, period: str) -> dict[str, Any]:
        """Each ordering aggregator's settlement terms, by aggregator number; [] until settled."""
        pid = ids.parse_period(period)
        state.period(stub, pid, None, "GetSettlements")
        return {"period": pid.id, "settlements": records(stub, "settlement", *pid.key_parts)}

    @tx
    def GetConfig(self, stub: Stub, name: str) -> dict[str, Any]:
        """``tou``, ``topology``, ``calendar`` or ``market`` as stored, else the default."""
        return state.config(stub, name)

    @tx
    def GetHistory(self, stub: Stub, key_text: str) -> dict[str, Any]:
        """Every committed value of one key, newest first (``type~part~...``, see the docs)."""
        entries = []
        for entry in stub.get_history_for_key(parse_display_key(key_text)):
            value = None
            if not entry.is_delete and entry.value:
                value = json_arg("value", entry.value.decode())
            entries.append(
                {
                    "tx_id": entry.tx_id,
                    "timestamp_ns": entry.timestamp_ns,
                    "is_delete": entry.is_delete,
                    "value": value,
                }
            )
        return {"key": key_text, "history": entries}

    # --- measuring ---------------------------------------------------------------------
    @tx
    def Noop(self, stub: Stub) -> None:
        """Reads and writes nothing: submitted, it measures what Fabric alone costs per tx."""


def _no_arguments(action: str, arguments: tuple[str, ...], transient_key: str) -> None:
    """Refuses the pre-sealing form (the order as an argument, which the block would keep)."""
    if arguments:
        raise ChaincodeError(
            Code.WRONG_ARGUMENT_COUNT,
            f"{action}: takes no arguments, got {len(arguments)}: orders are sealed, the "
            f"order travels in the proposal's transient data {transient_key!r} "
            "(vppctl bid sends it so)",
        )
