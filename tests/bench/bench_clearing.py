"""Time ``vpp_market.clearing.clear`` on synthetic books of 1k, 10k and 100k orders.

Not a pytest module (pytest collects ``test_*.py`` only). Run it as

    .venv/bin/python tests/bench/bench_clearing.py [--json out.json] [--sizes 1000 10000 100000]

Three cases per size: no topology; a 6-region chain whose lines never bind;
the same chain with limits small enough that lines bind (sellers lean to one
end of the chain and buyers to the other, and a line carries at most 2 kWh per
order, under 2% of the supply). The growth exponent k of t ~ n^k is
the least-squares slope of log t on log n; k near 1 is the O(n log n) the
engine aims at, k near 2 would be the literal O(buyers x sellers) loop.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from vpp_market.clearing import clear
from vpp_market.model import ClearingResult, Order, PeriodPrices, Side
from vpp_market.topology import TieLine, Topology

PRICES = PeriodPrices(period=2, sale=380_000, purchase=240_000)
REGIONS = [f"R{i}" for i in range(1, 7)]
SEED = 20240611
SELLER_WEIGHTS = [6, 5, 4, 3, 2, 1]
BUYER_WEIGHTS = SELLER_WEIGHTS[::-1]


def synthetic_book(n: int, seed: int = SEED) -> list[Order]:
    """n orders, half sellers and half buyers, with overlapping prices so most of them trade."""
    rng = random.Random(seed + n)
    orders = []
    for agg in range(1, n + 1):
        side = Side.SELL if agg % 2 else Side.BUY
        if side is Side.SELL:
            offer = rng.randint(280_000, 340_000)
            reserve = max(PRICES.purchase, offer - rng.randint(0, 20_000))
        else:
            offer = rng.randint(300_000, 360_000)
            reserve = min(PRICES.sale, offer + rng.randint(0, 20_000))
        orders.append(
            Order(
                agg=agg,
                side=side,
                quantity_wh=rng.randint(1_000, 500_000),
                offer=offer,
                reserve=reserve,
                reputation_ppm=rng.randint(0, 1_000_000),
                # Sellers lean to R1, buyers to R6, so the chain carries a net flow east.
                region=rng.choices(REGIONS, SELLER_WEIGHTS if side is Side.SELL else BUYER_WEIGHTS)[
                    0
                ],
            )
        )
    rng.shuffle(orders)
    return orders


def chain(limit_w: int) -> Topology:
    return Topology(TieLine(a, b, limit_w) for a, b in zip(REGIONS, REGIONS[1:], strict=False))


def binding_limit(n: int) -> int:
    # About n/2 x 250 kWh is offered; the middle line would carry a fifth of it unconstrained.
    # Let each line carry 2 kWh per order (under 2% of the supply), so lines bind early.
    return n * 2_000


CASES: dict[str, Callable[[int], Topology | None]] = {
    "no lines": lambda n: None,
    "chain, slack lines": lambda n: chain(10**15),
    "chain, binding lines": lambda n: chain(binding_limit(n)),
}
LITERAL = "literal spec loop, no lines"


def literal_clear() -> Callable[..., ClearingResult]:
    """The tests' literal O(buyers x sellers) transcription of the spec, for comparison."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
    from clearing_oracle import oracle_clear

    return oracle_clear


def time_clear(
    orders: list[Order],
    topology: Topology | None,
    repeats: int,
    engine: Callable[..., ClearingResult] = clear,
) -> tuple[float, ClearingResult]:
    best = math.inf
    result: ClearingResult | None = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = engine(orders, PRICES, topology)
        best = min(best, time.perf_counter() - start)
    assert result is not None
    return best, result


def growth_exponent(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of log(seconds) on log(n)."""
    xs = [math.log(n) for n, _ in points]
    ys = [math.log(t) for _, t in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
    }
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        info["cpu_model"] = next(
            line.split(":", 1)[1].strip()
            for line in cpuinfo.splitlines()
            if line.startswith("model name")
        )
        meminfo = Path("/proc/meminfo").read_text().split()
        info["memory_gib"] = round(int(meminfo[meminfo.index("MemTotal:") + 1]) / 2**20, 1)
    except (OSError, StopIteration, ValueError):
        pass
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument(
        "--repeats", type=int, default=3, help="best of N runs (the literal loop runs once)"
    )
    parser.add_argument(
        "--literal-max",
        type=int,
        default=10_000,
        help="also time the spec's loop as printed up to this size (0: never)",
    )
    args = parser.parse_args()
    runs = [(n, case) for n in args.sizes for case in CASES]
    runs += [(n, LITERAL) for n in args.sizes if n <= args.literal_max]
    console = Console()
    rows: list[dict[str, Any]] = []
    books: dict[int, list[Order]] = {}
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("clearing", total=len(runs))
        for n, case in runs:
            progress.update(task, description=f"{case}, n={n:,}")
            book = books.setdefault(n, synthetic_book(n))
            if case == LITERAL:
                seconds, result = time_clear(book, None, 1, literal_clear())
            else:
                seconds, result = time_clear(book, CASES[case](n), args.repeats)
            matched = sum(m.quantity_wh for m in result.matches)
            supplied = sum(o.quantity_wh for o in book if o.side is Side.SELL)
            rows.append(
                {
                    "case": case,
                    "orders": n,
                    "seconds": round(seconds, 4),
                    "matches": len(result.matches),
                    "sold_p2p_share": round(matched / supplied, 3),
                }
            )
            progress.advance(task)
    exponents = {}
    for case in [*CASES, LITERAL]:
        points = [(r["orders"], r["seconds"]) for r in rows if r["case"] == case]
        if len(points) >= 2:
            exponents[case] = round(growth_exponent(points), 2)
    table = Table(title="clear(): best wall time, synthetic books")
    for column in ("case", "orders", "seconds", "matches", "sold P2P", "growth k"):
        table.add_column(column, justify="left" if column == "case" else "right")
    for r in rows:
        last = r["orders"] == max(x["orders"] for x in rows if x["case"] == r["case"])
        table.add_row(
            r["case"],
            f"{r['orders']:,}",
            f"{r['seconds']:.3f}",
            f"{r['matches']:,}",
            f"{r['sold_p2p_share']:.1%}",
            f"{exponents[r['case']]:.2f}" if last and r["case"] in exponents else "",
        )
    console.print(table)
    info = machine()
    console.print(f"machine: {info}", highlight=False)
    if args.json:
        document = {"machine": info, "seed": SEED, "results": rows, "growth_exponent": exponents}
        args.json.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
