"""Checking sealed orders against the salted hashes on the ledger (``vppctl orders verify``).

The ledger keeps, per order, SHA-256(salt || canonical order) (vpp_market.
sealing); whoever is shown an order and its salt can recompute it. Orders
come either as SubmitOrder took them (decimal kWh and yuan/kWh) or as
GetOrderBook shows them (Wh and micro-yuan); both are turned into the same
canonical form before hashing. Nothing here prints or touches the network.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vpp_market.sealing import matches, order_hash
from vpp_market.units import parse_kwh, parse_price

from vppctl.errors import CliError, usage_error
from vppctl.periods import parse_period, period_id


def _agg_number(value: Any) -> int:
    text = str(value).strip()
    digits = text[3:] if text.lower().startswith("agg") else text
    if not digits.isdigit():
        raise usage_error(f"order file: agg {value!r} is not an aggregator (Agg3 or 3)")
    return int(digits)


def _period(text: str) -> str:
    spec = parse_period(text, "period")
    if spec.day is None:
        raise usage_error(f"order file: period {text!r} names no day (DAY-T, e.g. 3-13)")
    return period_id(spec.day, spec.hour)


def canonical(order: dict[str, Any]) -> dict[str, Any]:
    """An order in the units the ledger hashes (Wh, micro-yuan/kWh, agg number, DDDDD-TT)."""
    try:
        quantity = (
            order["quantity_wh"]
            if "quantity_wh" in order
            else parse_kwh(str(order["quantity_kwh"]), "quantity_kwh")
        )
        offer, reserve = order["offer"], order["reserve"]
        if not isinstance(offer, int):
            offer = parse_price(str(offer), "offer")
        if not isinstance(reserve, int):
            reserve = parse_price(str(reserve), "reserve")
        return {
            "agg": _agg_number(order["agg"]),
            "period": _period(str(order["period"])),
            "side": str(order["side"]).strip().lower(),
            "quantity_wh": int(quantity),
            "offer": int(offer),
            "reserve": int(reserve),
        }
    except KeyError as exc:
        raise usage_error(f"order file: field {exc.args[0]!r} is missing") from None
    except ValueError as exc:
        raise usage_error(f"order file: {exc}") from None


def read_order_file(path: Path) -> dict[str, Any]:
    """One order with its salt from a JSON file (a list of one order is accepted too)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise usage_error(f"--file {path}: cannot read an order: {exc}") from None
    if isinstance(data, list) and len(data) == 1:
        data = data[0]
    if not isinstance(data, dict) or "salt" not in data:
        raise usage_error(f"--file {path}: is not one order object with its salt")
    return {**canonical(data), "salt": str(data["salt"])}


def _result(order: dict[str, Any], ledger_hash: str | None, reason: str) -> dict[str, Any]:
    ok = ledger_hash is not None and matches(order, order.get("salt", ""), ledger_hash)
    return {
        "period": order["period"],
        "agg": f"Agg{order['agg']}",
        "hash": ledger_hash,
        "matches": ok,
        "reason": "" if ok else reason,
    }


def check_claim(claimed: dict[str, Any], book: dict[str, Any]) -> dict[str, Any]:
    """A claimed order against the hash the book (GetOrderBook) shows for its aggregator."""
    entry = next((o for o in book["orders"] if o["agg"] == claimed["agg"]), None)
    if entry is None:
        raise CliError(f"Agg{claimed['agg']} has no order in {claimed['period']} on the ledger")
    try:
        order_hash(claimed, claimed["salt"])
    except ValueError as exc:
        raise usage_error(f"order file: {exc}") from None
    return _result(claimed, entry.get("hash"), "does not match the hash on the ledger")


def check_book(book: dict[str, Any], agg: int | None) -> list[dict[str, Any]]:
    """Every order of the book shown in full (with its salt), against its ledger hash."""
    return [
        _result(o, o.get("hash"), "does not match the hash on the ledger")
        for o in book["orders"]
        if not o.get("sealed") and "salt" in o and (agg is None or o["agg"] == agg)
    ]
