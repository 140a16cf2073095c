"""The result files of a run in ``--out``: CSV tables and the resume state.

CSV values are exact decimal text in the user's units (kWh, yuan/kWh,
yuan, reputation as a fraction of one), written with the market's own
formatters, so a table never shows a rounding the ledger did not make.
Rows are appended as each period settles; the state file records how long
each table was at the last settled period, so a run interrupted between
writing a table and the state is cut back to a consistent point on resume.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vpp_market.settlement import money
from vpp_market.units import format_kwh, format_ppm, format_yuan

from vpp_sim.outcome import DayOutcome, PeriodOutcome
from vpp_sim.plan import PeriodPlan

STATE = "state.json"
TABLES: dict[str, tuple[str, ...]] = {
    "periods": (
        "day",
        "hour",
        "period",
        "sale_yuan_per_kwh",
        "purchase_yuan_per_kwh",
        "orders",
        "p2p_kwh",
        "grid_bought_kwh",
        "grid_supplied_kwh",
        "p2p_price_mean_yuan_per_kwh",
        "p2p_price_min_yuan_per_kwh",
        "p2p_price_max_yuan_per_kwh",
        "transactions",
    ),
    "contracts": (
        "day",
        "hour",
        "seq",
        "kind",
        "round",
        "seller",
        "buyer",
        "agg",
        "side",
        "quantity_kwh",
        "price_yuan_per_kwh",
        "xi",
    ),
    "settlements": (
        "day",
        "hour",
        "agg",
        "side",
        "quantity_kwh",
        "contracted_kwh",
        "grid_kwh",
        "delivered_kwh",
        "deviation_kwh",
        "income_yuan",
        "expenditure_yuan",
        "net_yuan",
    ),
    "aggregators": (
        "day",
        "hour",
        "agg",
        "forecast_output_kwh",
        "forecast_load_kwh",
        "output_kwh",
        "load_kwh",
        "charge_kwh",
        "discharge_kwh",
        "soc_kwh",
        "outage",
        "side",
        "quantity_kwh",
        "offer_yuan_per_kwh",
        "reserve_yuan_per_kwh",
        "exported_kwh",
        "imported_kwh",
        "market_net_yuan",
        "outside_market_net_yuan",
        "grid_only_net_yuan",
    ),
    "reputations": ("day", "agg", "r_prev", "a_prev", "a_day", "r", "a"),
    "wallets": ("day", "hour", "wallet", "balance_yuan"),
}


def _agg(n: int | None) -> str:
    return "" if n is None else f"Agg{n}"


class ResultWriter:
    """Appends the tables in ``out`` and keeps the running wallets."""

    def __init__(self, out: Path, sizes: Mapping[str, int] | None = None) -> None:
        self.out = out
        out.mkdir(parents=True, exist_ok=True)
        self.files = {}
        for name, columns in TABLES.items():
            path = out / f"{name}.csv"
            if sizes is not None and path.exists():
                with path.open("r+b") as f:
                    f.truncate(sizes.get(name, 0))
            fresh = sizes is None or not path.exists() or path.stat().st_size == 0
            handle = path.open("w" if sizes is None else "a", newline="", encoding="utf-8")
            writer = csv.writer(handle, lineterminator="\n")
            if fresh:
                writer.writerow(columns)
            self.files[name] = (handle, writer)

    def sizes(self) -> dict[str, int]:
        out = {}
        for name, (handle, _) in self.files.items():
            handle.flush()
            out[name] = handle.tell()
        return out

    def row(self, table: str, values: Sequence[Any]) -> None:
        self.files[table][1].writerow(values)

    def period(
        self,
        plan: PeriodPlan,
        outcome: PeriodOutcome,
        wallets: dict[str, int],
        orders: int | None = None,
    ) -> None:
        """Rows of one settled period; ``orders`` when the plan does not know them (ledger)."""
        d, h = outcome.day, outcome.hour
        p2p = [c for c in outcome.contracts if c.kind == "p2p"]
        grid = [c for c in outcome.contracts if c.kind == "grid"]
        volume = sum(c.quantity_wh for c in p2p)
        mean = min_p = max_p = ""
        if volume:
            # Volume-weighted mean in micro-yuan/kWh, rounded like the market's money.
            mean = format_yuan(sum(c.quantity_wh * c.price for c in p2p) // volume)
            min_p = format_yuan(min(c.price for c in p2p))
            max_p = format_yuan(max(c.price for c in p2p))
        self.row(
            "periods",
            [
                d,
                h,
                outcome.period,
                format_yuan(plan.prices.sale),
                format_yuan(plan.prices.purchase),
                len(plan.orders) if orders is None else orders,
                format_kwh(volume),
                format_kwh(sum(c.quantity_wh for c in grid if c.side == "sell")),
                format_kwh(sum(c.quantity_wh for c in grid if c.side == "buy")),
                mean,
                min_p,
                max_p,
                outcome.transactions,
            ],
        )
        for c in outcome.contracts:
            self.row(
                "contracts",
                [
                    d,
                    h,
                    c.seq,
                    c.kind,
                    c.round if c.round is not None else "",
                    _agg(c.seller),
                    _agg(c.buyer),
                    _agg(c.agg),
                    c.side or "",
                    format_kwh(c.quantity_wh),
                    format_yuan(c.price),
                    format_ppm(c.xi_ppm) if c.xi_ppm is not None else "",
                ],
            )
        nets = {s.agg: s.net for s in outcome.settlements}
        for s in outcome.settlements:
            self.row(
                "settlements",
                [
                    d,
                    h,
                    _agg(s.agg),
                    s.side,
                    format_kwh(s.quantity_wh),
                    format_kwh(s.contracted_wh),
                    format_kwh(s.grid_wh),
                    format_kwh(s.delivered_wh),
                    format_kwh(s.deviation_wh),
                    format_yuan(s.income),
                    format_yuan(s.expenditure),
                    format_yuan(s.net),
                ],
            )
        sale, purchase = plan.prices.sale, plan.prices.purchase
        for a in plan.aggs:
            ex, im = a.exported_wh, a.imported_wh
            grid_only = money(ex, purchase) - money(im, sale)
            if a.order is None:
                outside = grid_only
            elif a.order.side.value == "sell":
                outside = -money(im, sale)  # a seller's import is billed by the grid directly
            else:
                outside = money(ex, purchase)  # a buyer's export is bought by the grid directly
            o = a.order
            self.row(
                "aggregators",
                [
                    d,
                    h,
                    _agg(a.agg),
                    format_kwh(a.forecast_output_wh),
                    format_kwh(a.forecast_load_wh),
                    format_kwh(a.output_wh),
                    format_kwh(a.load_wh),
                    format_kwh(a.charge_wh),
                    format_kwh(a.discharge_wh),
                    format_kwh(a.soc_wh),
                    int(a.outage),
                    o.side.value if o else "",
                    format_kwh(o.quantity_wh) if o else "",
                    format_yuan(o.offer) if o else "",
                    format_yuan(o.reserve) if o else "",
                    format_kwh(ex),
                    format_kwh(im),
                    format_yuan(nets.get(a.agg, 0)),
                    format_yuan(outside),
                    format_yuan(grid_only),
                ],
            )
        for name, delta in outcome.wallet_deltas:
            wallets[name] = wallets.get(name, 0) + delta
        for name in sorted(wallets):
            self.row("wallets", [d, h, name, format_yuan(wallets[name])])

    def day(self, outcome: DayOutcome) -> None:
        for r in outcome.reputations:
            self.row(
                "reputations",
                [
                    outcome.day,
                    _agg(r.agg),
                    format_ppm(r.r_prev_ppm),
                    format_ppm(r.a_prev_ppm),
                    format_ppm(r.a_day_ppm) if r.a_day_ppm is not None else "",
                    format_ppm(r.r_ppm),
                    format_ppm(r.a_ppm),
                ],
            )

    def close(self) -> None:
        for handle, _ in self.files.values():
            handle.close()


def read_state(out: Path) -> dict[str, Any] | None:
    path = out / STATE
    if not path.exists():
        return None
    return json.loads(path.read_text("utf-8"))


def write_state(out: Path, state: dict[str, Any]) -> None:
    """Atomically: a crash leaves the previous state, never half of one."""
    tmp = out / f".{STATE}.tmp"
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True) + "\n", "utf-8")
    os.replace(tmp, out / STATE)
