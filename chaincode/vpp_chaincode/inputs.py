"""Parsing the market's structured (JSON) arguments into fixed-point values.

Every error names the field (with its position in a list) and the value, and
nothing is rounded: the units module refuses a decimal with more places than
its unit holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vpp_market.model import Side
from vpp_market.topology import TieLine, Topology
from vpp_market.tou import TouTable, table_from_rows
from vpp_market.units import InputError, parse_kw, parse_kwh, parse_price
from vpp_shim.api import ChaincodeError
from vpp_shim.codes import Code

from vpp_chaincode import ids
from vpp_chaincode.ids import PeriodId
from vpp_chaincode.ledger import json_arg

ORDER_FIELDS = ("agg", "period", "side", "quantity_kwh", "offer", "reserve")
TOU_FIELDS = ("start_hour", "end_hour", "grid_sale_price", "grid_purchase_price")
TIE_LINE_FIELDS = ("from_region", "to_region", "limit_kw")


@dataclass(frozen=True, slots=True)
class OrderInput:
    agg: int
    period: PeriodId
    side: Side
    quantity_wh: int
    offer: int
    reserve: int


def order(text: str) -> OrderInput:
    """An order JSON object; quantities in kWh and prices in yuan/kWh, strings or numbers."""
    data = json_arg("order", text)
    if not isinstance(data, dict):
        raise ChaincodeError(Code.BAD_ARGUMENT, f"order {text[:80]!r}: is not a JSON object")
    if "reputation" in data:
        raise ChaincodeError(
            Code.BAD_ARGUMENT,
            "reputation is not part of an order (clearing reads it from the ledger)",
        )
    unknown = sorted(set(data) - set(ORDER_FIELDS))
    if unknown:
        raise ChaincodeError(
            Code.BAD_ARGUMENT,
            f"order: unknown field {unknown[0]!r} (an order has {', '.join(ORDER_FIELDS)})",
        )
    missing = [f for f in ORDER_FIELDS if f not in data]
    if missing:
        raise ChaincodeError(Code.BAD_ARGUMENT, f"order: field {missing[0]!r} is missing")
    side = data["side"]
    if not isinstance(side, str) or ids.trim(side).lower() not in ("sell", "buy"):
        raise InputError("side", side, "is not 'sell' or 'buy'")
    quantity = parse_kwh(data["quantity_kwh"], "quantity_kwh")
    if quantity <= 0:
        raise InputError("quantity_kwh", data["quantity_kwh"], "is not > 0")
    return OrderInput(
        agg=ids.parse_agg(data["agg"]),
        period=ids.parse_period(data["period"]),
        side=Side(ids.trim(side).lower()),
        quantity_wh=quantity,
        offer=parse_price(data["offer"], "offer"),
        reserve=parse_price(data["reserve"], "reserve"),
    )


def _rows(field: str, text: str, columns: tuple[str, ...]) -> list[list[Any]]:
    """A JSON list of objects with ``columns`` or of lists in that column order (CSV-like)."""
    data = json_arg(field, text)
    if not isinstance(data, list):
        raise ChaincodeError(Code.BAD_ARGUMENT, f"{field}: is not a JSON list")
    rows = []
    for i, row in enumerate(data):
        where = f"{field}[{i}]"
        if isinstance(row, dict):
            unknown = sorted(set(row) - set(columns))
            missing = [c for c in columns if c not in row]
            if unknown or missing:
                problem = f"unknown {unknown[0]!r}" if unknown else f"missing {missing[0]!r}"
                raise ChaincodeError(
                    Code.BAD_ARGUMENT,
                    f"{where}: expected the fields {', '.join(columns)}; {problem}",
                )
            rows.append([row[c] for c in columns])
        elif isinstance(row, list) and len(row) == len(columns):
            rows.append(list(row))
        else:
            raise ChaincodeError(
                Code.BAD_ARGUMENT,
                f"{where} {row!r}: is not an object or a list of {len(columns)} values",
            )
    return rows


def tou_table(text: str) -> TouTable:
    """TOU bands (the columns of paper_case/tou.csv); must cover every hour exactly once."""
    rows = _rows("bands", text, TOU_FIELDS)
    if not rows:
        raise ChaincodeError(
            Code.BAD_ARGUMENT, "bands: is empty (a TOU table needs bands covering the day)"
        )
    return table_from_rows(rows)


def tie_lines(text: str) -> Topology:
    """Tie-lines (the columns of paper_case/tie_lines.csv); they must form a tree."""
    lines = []
    for i, (a, b, limit) in enumerate(_rows("lines", text, TIE_LINE_FIELDS)):
        lines.append(
            TieLine(
                ids.parse_name(a, f"lines[{i}].from_region"),
                ids.parse_name(b, f"lines[{i}].to_region"),
                parse_kw(limit, f"lines[{i}].limit_kw"),
            )
        )
    return Topology(lines)


def meter_ids(agg: int, text: str) -> list[str]:
    """A JSON list of aggregator ``agg``'s meter ids (``aggN-...``), sorted, no duplicates."""
    if not ids.trim(text):
        return []
    value = json_arg("meter_ids", text)
    if not isinstance(value, list):
        raise ChaincodeError(
            Code.BAD_ARGUMENT, f"meter_ids {text!r}: is not a JSON list of meter ids"
        )
    meters = [ids.parse_meter_id(m, agg, f"meter_ids[{i}]") for i, m in enumerate(value)]
    for i, meter in enumerate(meters):
        if meter in meters[:i]:
            raise ChaincodeError(Code.BAD_ARGUMENT, f"meter_ids[{i}] {meter!r}: is listed twice")
    return sorted(meters)
