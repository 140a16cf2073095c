"""Ledger records (integer units) as output rows (the user's units, exact).

The chaincode stores Wh, micro-yuan per kWh, micro-yuan and ppm; people and
scripts read kWh, yuan/kWh, yuan and fractions of one. ``kwh_json`` and
friends give JSON numbers that print exactly, so a row serves the table, the
CSV and the JSON output alike.
"""

from __future__ import annotations

from typing import Any

from vpp_market.model import ClearingResult, GridTrade, Match, Side
from vpp_market.units import kwh_json, ppm_json, yuan_json

GRID = "grid"


def party(value: int | str | None) -> str | None:
    """3 -> "Agg3"; the grid's "grid" -> "Grid"."""
    if value is None:
        return None
    if value == GRID:
        return "Grid"
    return f"Agg{value}"


def kwh(wh: int | None) -> int | float | None:
    return None if wh is None else kwh_json(wh)


def yuan(micro: int | None) -> int | float | None:
    return None if micro is None else yuan_json(micro)


def ppm(value: int | None) -> int | float | None:
    return None if value is None else ppm_json(value)


def hours(t: int) -> str:
    """The hours period ``t`` covers: 13 -> "12:00-13:00"."""
    return f"{t - 1:02d}:00-{t:02d}:00"


def prices_text(period: dict[str, Any]) -> str:
    return f"s_t {yuan(period['sale'])}, f_t {yuan(period['purchase'])} yuan/kWh"


def order_row(order: dict[str, Any]) -> dict[str, Any]:
    """An order as shown; a sealed one (another aggregator's, to an aggregator) has only
    its period, aggregator, submitter and hash: side, quantity and prices stay empty."""
    return {
        "period": order["period"],
        "agg": party(order["agg"]),
        "side": order.get("side"),
        "quantity_kwh": kwh(order.get("quantity_wh")),
        "offer": yuan(order.get("offer")),
        "reserve": yuan(order.get("reserve")),
        "sealed": bool(order.get("sealed", False)),
        "submitter": order.get("submitter"),
        "tx_id": order.get("tx_id"),
        "hash": order.get("hash"),
    }


def contract_row(c: dict[str, Any]) -> dict[str, Any]:
    p2p = c["kind"] == "p2p"
    return {
        "id": c["id"],
        "period": c["period"],
        "kind": c["kind"],
        "round": c.get("round") if p2p else None,
        "seller": party(c["seller"]),
        "buyer": party(c["buyer"]),
        "quantity_kwh": kwh(c["quantity_wh"]),
        "price": yuan(c["price"]),
        "xi": ppm(c.get("xi_ppm")),
        "status": c["status"],
        "signed_by": [party(a) for a in c.get("signatures", [])] if p2p else None,
        "voided_from": c.get("voided_from"),
    }


def settlement_row(s: dict[str, Any]) -> dict[str, Any]:
    return {
        "period": s["period"],
        "agg": party(s["agg"]),
        "side": s["side"],
        "quantity_kwh": kwh(s["quantity_wh"]),
        "contracted_kwh": kwh(s["contracted_wh"]),
        "grid_kwh": kwh(s["grid_wh"]),
        "delivered_kwh": kwh(s["delivered_wh"]),
        "deviation_kwh": kwh(s["deviation_wh"]),
        "a": ppm(s["a_ppm"]),
        "income": yuan(s["income"]),
        "expenditure": yuan(s["expenditure"]),
        "net": yuan(s["net"]),
    }


def period_row(p: dict[str, Any]) -> dict[str, Any]:
    progress = p.get("progress") or {}
    clearing = p.get("clearing") or {}
    return {
        "period": p["period"],
        "day": p["day"],
        "t": p["t"],
        "hours": hours(p["t"]),
        "status": p["status"],
        "sale": yuan(p["sale"]),
        "purchase": yuan(p["purchase"]),
        "orders": progress.get("orders"),
        "contracts": progress.get("contracts"),
        "p2p_kwh": kwh(clearing.get("p2p_wh")),
        "missing": progress.get("missing_for_settlement"),
    }


def wallet_row(w: dict[str, Any]) -> dict[str, Any]:
    name = w["wallet"]
    owner = "Grid" if name == GRID else f"Agg{name[3:]}" if name.startswith("agg") else name
    return {"wallet": name, "owner": owner, "balance": yuan(w["balance"])}


def reading_row(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "period": r["period"],
        "meter": r["meter"],
        "exported_kwh": kwh(r["exported_wh"]),
        "imported_kwh": kwh(r["imported_wh"]),
        "recorded_by": r.get("recorded_by"),
        "tx_id": r.get("tx_id"),
    }


def clearing_result(hour: int, contracts: list[dict[str, Any]]) -> ClearingResult:
    """What ClearPeriod made, rebuilt from the period's contracts.

    P2P contracts in sequence order are the matches (voided ones included:
    voiding comes after clearing); grid contracts made by clearing (not by
    VoidUnsigned) are the grid absorptions. The result prints exactly like
    an offline clearing of the same book.
    """
    ordered = sorted(contracts, key=lambda c: c["seq"])
    matches = tuple(
        Match(
            round=c["round"],
            seller=c["seller"],
            buyer=c["buyer"],
            quantity_wh=c["quantity_wh"],
            price=c["price"],
            xi_ppm=c["xi_ppm"],
            seller_price=c["seller_price"],
            buyer_price=c["buyer_price"],
        )
        for c in ordered
        if c["kind"] == "p2p"
    )
    grid = tuple(
        GridTrade(
            agg=c["agg"], side=Side(c["side"]), quantity_wh=c["quantity_wh"], price=c["price"]
        )
        for c in ordered
        if c["kind"] == "grid" and not c.get("voided_from")
    )
    return ClearingResult(period=hour, matches=matches, grid=grid)
