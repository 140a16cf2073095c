"""The market's state on vpp-main: key layout, record readers, status values.

Every key but ``day~DDDDD`` is a composite key (``~`` stands for Fabric's
U+0000 separators); day and hour are zero padded (``00001``, ``13``),
aggregators four digits (``0003``) and contract sequence numbers nine digits
(``ids.SEQ_KEY_WIDTH``), so each partial-key query returns its records in
time / aggregator / contract order.

    aggregator~<NNNN>                      registry entry
    meter~<meter id>                       meter -> aggregator (uniqueness)
    capacity~<NNNN>                        certified supply/load W synced from agg<N> (order bound)
    reputation~<NNNN>                      current R, a (ppm) and last closed day
    rephist~<NNNN>~<DDDDD>                 one daily reputation step
    wallet~<aggN|grid>                     balance in micro-yuan
    config~tou | config~topology | config~calendar
    day~<DDDDD>              (plain key)   a day that has periods; closed or not
    period~<DDDDD>~<TT>                    status, s_t/f_t, clearing and settlement summary
    order~<DDDDD>~<TT>~<NNNN>              one aggregator's order (its only write)
    contract~<DDDDD>~<TT>~<SSSSSSSSS>      P2P or grid contract
    signature~<DDDDD>~<TT>~<SSSSSSSSS>~<NNNN>  one party's signature of a contract
    delivery~<DDDDD>~<TT>~<NNNN>           metered energy anchored from aggN
    settlement~<DDDDD>~<TT>~<NNNN>         one aggregator's settlement terms
    ping~<mspid>                           last health write of an org
"""

from __future__ import annotations

from typing import Any

from vpp_market.model import PeriodPrices, Side
from vpp_market.settlement import GRID
from vpp_market.topology import TieLine, Topology
from vpp_market.tou import PAPER_TOU, TouBand, TouTable
from vpp_shim.api import ChaincodeError, Stub
from vpp_shim.codes import Code

from vpp_chaincode import access, ids, marketconfig
from vpp_chaincode.ids import PeriodId, agg_key, agg_name
from vpp_chaincode.ledger import get_json, key, plain_key

# Period life cycle, in order.
OPEN, CLOSED, CLEARED, SETTLED = "OPEN", "CLOSED", "CLEARED", "SETTLED"
LIFE_CYCLE = (OPEN, CLOSED, CLEARED, SETTLED)
# Contract kinds and statuses (SIGNED is derived from the signature keys, never stored).
P2P_KIND, GRID_KIND = "p2p", "grid"
MATCHED, SIGNED, VOIDED, ABSORBED = "MATCHED", "SIGNED", "VOIDED", "ABSORBED"

CONFIG_TOU = key("config", "tou")
CONFIG_TOPOLOGY = key("config", "topology")
CONFIG_CALENDAR = key("config", "calendar")
# What GetConfig answers for; each is config~<name>.
CONFIG_NAMES = ("tou", "topology", "calendar", "market")


def day_key(day: int) -> str:
    return plain_key("day", f"{day:05d}")


def period_key(period: PeriodId) -> str:
    return key("period", *period.key_parts)


def order_key(period: PeriodId, agg: int) -> str:
    return key("order", *period.key_parts, agg_key(agg))


def contract_key(period: PeriodId, seq: int) -> str:
    return key("contract", *period.key_parts, ids.seq_key(seq))


def signature_key(period: PeriodId, seq: int, agg: int) -> str:
    return key("signature", *period.key_parts, ids.seq_key(seq), agg_key(agg))


def delivery_key(period: PeriodId, agg: int) -> str:
    return key("delivery", *period.key_parts, agg_key(agg))


def reputation_key(agg: int) -> str:
    return key("reputation", agg_key(agg))


def wallet_key(name: str) -> str:
    return key("wallet", name)


def last_closed_day(stub: Stub) -> int:
    calendar = get_json(stub, CONFIG_CALENDAR)
    return calendar["last_closed_day"] if calendar else 0


def require_day_open(stub: Stub, pid: PeriodId, action: str) -> None:
    """Refuses work on a period of a closed day: its reputation step is already taken,
    so money moved now would never be reflected in anyone's credit value."""
    last = last_closed_day(stub)
    if pid.day <= last:
        raise ChaincodeError(
            Code.DAY_CLOSED, f"{action}: period {pid} belongs to day {pid.day}, which is closed"
        )


def period(stub: Stub, pid: PeriodId, expected: str | None, action: str) -> dict[str, Any]:
    """The period record, refusing a missing period or one not in ``expected`` status."""
    record = get_json(stub, period_key(pid))
    if record is None:
        raise ChaincodeError(Code.PERIOD_NOT_FOUND, f"{action}: period {pid} has not been opened")
    if expected is not None and record["status"] != expected:
        raise ChaincodeError(
            Code.PERIOD_NOT_OPEN if expected == OPEN else Code.PERIOD_WRONG_STATE,
            state_error(action, pid, record["status"], expected),
        )
    return record


def state_error(action: str, pid: PeriodId, status: str, expected: str) -> str:
    """Why ``action`` cannot run in ``status``, in terms a user can act on."""
    text = f"{action}: period {pid} is {status}"
    past = LIFE_CYCLE.index(status) > LIFE_CYCLE.index(expected)
    if expected == OPEN:
        return f"{text}: the gate is closed, orders are no longer accepted or changed"
    if expected == CLOSED:
        return f"{text}: " + ("it has already been cleared" if past else "close the gate first")
    if expected == CLEARED and status == SETTLED:
        return f"{text}: it has already been settled"
    return f"{text}: {action} needs a {expected} period (clear it first)"


def prices(record: dict[str, Any]) -> PeriodPrices:
    """The s_t and f_t fixed in the period record when it was opened."""
    return PeriodPrices(record["t"], record["sale"], record["purchase"])


def tou_bands(table: TouTable) -> list[dict[str, int]]:
    """A TOU table as stored in ``config~tou`` (prices in micro-yuan per kWh)."""
    return [
        {"start_hour": b.start_hour, "end_hour": b.end_hour, "sale": b.sale, "purchase": b.purchase}
        for b in table.bands
    ]


def config(stub: Stub, name: str) -> dict[str, Any]:
    """``config~<name>`` as stored, or what the chaincode applies while it was never written.

    Defaults: the paper's TOU table and no topology (``lines`` null: flows are
    unlimited), both with ``loaded_tx`` null; day 0 as the last closed day.
    """
    if name not in CONFIG_NAMES:
        raise ChaincodeError(
            Code.BAD_ARGUMENT, f"name {name!r}: is not one of {', '.join(CONFIG_NAMES)}"
        )
    if name == "market":
        return marketconfig.current(stub)
    stored = get_json(stub, key("config", name))
    if stored is not None:
        return stored
    if name == "tou":
        return {"bands": tou_bands(PAPER_TOU), "loaded_tx": None}
    if name == "topology":
        return {"lines": None, "loaded_tx": None}
    return {"last_closed_day": 0}


def tou(stub: Stub) -> TouTable:
    """The loaded TOU table, or the paper's until LoadTou has run."""
    stored = get_json(stub, CONFIG_TOU)
    if stored is None:
        return PAPER_TOU
    return TouTable(
        TouBand(b["start_hour"], b["end_hour"], b["sale"], b["purchase"]) for b in stored["bands"]
    )


def topology(stub: Stub) -> Topology | None:
    """The loaded tie-lines, or None (unlimited) until LoadTopology has run."""
    stored = get_json(stub, CONFIG_TOPOLOGY)
    if stored is None:
        return None
    return Topology(TieLine(ln["a"], ln["b"], ln["limit_w"]) for ln in stored["lines"])


def aggregator(stub: Stub, agg: int, action: str) -> dict[str, Any]:
    record = get_json(stub, key("aggregator", agg_key(agg)))
    if record is None:
        raise ChaincodeError(Code.NOT_REGISTERED, f"{action}: {agg_name(agg)} is not registered")
    return record


def trader(stub: Stub, agg: int, action: str) -> dict[str, Any]:
    """The aggregator record if the caller is its trader or admin; refused otherwise."""
    record = aggregator(stub, agg, action)
    if not access.is_trader_of(stub.caller, record["mspid"]):
        raise ChaincodeError(
            Code.NOT_AUTHORIZED,
            f"{action}: {access.describe(stub.caller)} may not trade for {agg_name(agg)} "
            f"(only {record['mspid']} traders and admins may)",
        )
    return record


def grid_contract(
    pid: PeriodId, seq: int, agg: int, side: Side, quantity_wh: int, price: int, voided: str | None
) -> dict[str, Any]:
    """A grid absorption: the grid buys a seller's remainder at f_t or supplies a buyer at s_t."""
    return {
        "id": ids.contract_id(pid, seq),
        "period": pid.id,
        "seq": seq,
        "kind": GRID_KIND,
        "agg": agg,
        "side": side.value,
        "seller": agg if side is Side.SELL else GRID,
        "buyer": GRID if side is Side.SELL else agg,
        "quantity_wh": quantity_wh,
        "price": price,
        "status": ABSORBED,
        "voided_from": voided,
    }
