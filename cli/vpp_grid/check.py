"""The Grid's check of a period and its verdict: pass, or which contracts to curtail.

The rule (docs/grid-check.md), reproducible by anyone with the model file
and the public contracts:

1. Run the flow of every P2P contract of the period (MATCHED at check time).
   No violation: the verdict is ``pass``.
2. Otherwise curtail whole contracts, last matched first (highest sequence
   number first): k, the number curtailed, is found by trying k = 1, 2, 4,
   ... up to the first feasible k, then bisecting between the last
   infeasible k and it (so k is feasible and k - 1 is not). The earliest of
   the k contracts is then given back as much as possible: its curtailment
   is the integer c (Wh) with the flow feasible at c and not at c - 1.
3. Curtailing everything gives the base case; a model whose base case is
   infeasible cannot be used (``BaseCaseInfeasible``).

The verdict lists the violations of the uncurtailed flow (the reason) and
the curtailments (integer Wh), with decimal strings for voltages (6
decimals), loadings (3) and powers (kW, 3): no float leaves this module.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vpp_grid.flow import Flow, FlowResult, Violation, decimal_text
from vpp_grid.model import GridModel

PASS, CURTAIL = "pass", "curtail"


class BaseCaseInfeasible(RuntimeError):
    """The model's base case (no trades) already violates a limit: fix the model."""


@dataclass(frozen=True, slots=True)
class Transfer:
    """A P2P contract as the flow sees it: q Wh from the seller's region to the buyer's."""

    contract: str
    seq: int
    seller_region: str
    buyer_region: str
    wh: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the check found: the flows before and after, and the curtailments (Wh)."""

    model: GridModel
    transfers: tuple[Transfer, ...]
    before: FlowResult
    after: FlowResult
    curtailments: tuple[tuple[str, int], ...]
    runs: int

    @property
    def result(self) -> str:
        return CURTAIL if self.curtailments else PASS

    @property
    def violations(self) -> list[Violation]:
        return self.before.violations(self.model)

    def verdict(self, period: str) -> dict[str, Any]:
        """The document ``SubmitGridVerdict`` takes."""
        return verdict_document(period, self)


def injections(
    transfers: Iterable[Transfer], curtailed: Mapping[str, int] | None = None
) -> dict[str, tuple[int, int]]:
    """Per region (generation W, load W) of the transfers less their curtailments."""
    gen: dict[str, int] = defaultdict(int)
    load: dict[str, int] = defaultdict(int)
    curtailed = curtailed or {}
    for t in transfers:
        wh = t.wh - curtailed.get(t.contract, 0)
        gen[t.seller_region] += wh
        load[t.buyer_region] += wh
    return {r: (gen.get(r, 0), load.get(r, 0)) for r in sorted(set(gen) | set(load))}


def _order(transfers: Sequence[Transfer]) -> list[Transfer]:
    """Curtailment order: last matched first."""
    return sorted(transfers, key=lambda t: t.seq, reverse=True)


def check(
    model: GridModel,
    transfers: Sequence[Transfer],
    flow: Flow | None = None,
    progress: Callable[[str], None] | None = None,
) -> Outcome:
    """Apply the rule of this module's docstring."""
    flow = flow or Flow(model)
    for t in transfers:
        model.region(t.seller_region)
        model.region(t.buyer_region)
    start = flow.runs

    def feasible(curtailed: Mapping[str, int]) -> tuple[bool, FlowResult]:
        result = flow.run(injections(transfers, curtailed))
        return not result.violations(model), result

    ok, before = feasible({})
    if ok:
        return Outcome(model, tuple(transfers), before, before, (), flow.runs - start)
    order = _order(transfers)

    def whole(k: int) -> dict[str, int]:
        return {t.contract: t.wh for t in order[:k]}

    # How many contracts, last matched first: galloping (1, 2, 4, ...) to the first
    # feasible run, then bisection between the last infeasible and it.
    low, high, after = 0, 1, before
    while True:
        if progress:
            progress(f"curtailing the last {high} of {len(order)} contracts")
        ok, result = feasible(whole(high))
        if ok:
            after = result
            break
        if high == len(order):
            raise BaseCaseInfeasible(
                f"grid model {model.name!r} ({model.sha256[:12]}): even with every trade "
                "curtailed the flow violates "
                + "; ".join(v.describe() for v in result.violations(model))
            )
        low, high = high, min(2 * high, len(order))
    while high - low > 1:
        mid = (low + high) // 2
        ok, result = feasible(whole(mid))
        if ok:
            high, after = mid, result
        else:
            low = mid
    # The earliest of them is given back as much as possible: the smallest feasible c.
    curtailed = whole(high - 1)
    last = order[high - 1]
    _, previous = feasible(curtailed)
    cut_low, cut_high = 0, last.wh  # cut_low: infeasible, cut_high: feasible
    margins = {cut_low: _excess(model, previous), cut_high: _excess(model, after)}
    while cut_high - cut_low > 1:
        mid = _next_guess(cut_low, cut_high, margins[cut_low], margins[cut_high])
        curtailed[last.contract] = mid
        mid_ok, mid_result = feasible(curtailed)
        margins[mid] = _excess(model, mid_result)
        if mid_ok:
            cut_high, after = mid, mid_result
        else:
            cut_low = mid
    curtailed[last.contract] = cut_high
    pairs = tuple((t.contract, curtailed[t.contract]) for t in order[:high])
    return Outcome(model, tuple(transfers), before, after, pairs, flow.runs - start)


def _excess(model: GridModel, result: FlowResult) -> float | None:
    """How far the worst limit is exceeded (p.u. of its limit; < 0: headroom); None: diverged."""
    if not result.converged:
        return None
    limits = model.limits
    worst = max(
        max(result.vm_pu) - float(limits.vm_max_pu), float(limits.vm_min_pu) - min(result.vm_pu)
    )
    worst = max(
        worst, (max(result.loading_percent, default=0.0) - float(limits.max_loading_percent)) / 100
    )
    for tie, p_kw in zip(model.tie_lines, result.tie_p_kw, strict=True):
        worst = max(worst, (abs(p_kw) - tie.limit_kw) / tie.limit_kw)
    return worst


def _next_guess(low: int, high: int, at_low: float | None, at_high: float | None) -> int:
    """The next curtailment to try in (low, high): where the worst excess crosses zero.

    Voltage and loading are nearly linear in one transfer, so interpolating the
    excess between the bracket's ends lands within a few Wh of the boundary and
    the bracket closes in a handful of flows instead of ~20 bisection steps. The
    guess is pulled one Wh inside the bracket towards the side it approaches from,
    and plain bisection takes over whenever interpolation cannot be trusted. The
    answer is the same either way: the c with c feasible and c - 1 infeasible.
    """
    middle = (low + high) // 2
    if at_low is None or at_high is None or at_low <= 0 or at_high > 0 or at_low == at_high:
        return middle
    guess = low + (high - low) * at_low / (at_low - at_high)
    if high - low <= 4:
        return middle
    return min(max(int(guess), low + 1), high - 1)


def violation_document(v: Violation) -> dict[str, Any]:
    if v.kind == "bus":
        return {"kind": "bus", "bus": v.element, "region": v.region,
                "vm_pu": decimal_text(v.value, 6)}  # fmt: skip
    if v.kind == "line":
        return {"kind": "line", "line": v.element, "loading_percent": decimal_text(v.value, 3)}
    if v.kind == "tie_line":
        return {"kind": "tie_line", "line": v.element, "tie": v.region,
                "p_kw": decimal_text(v.value, 3)}  # fmt: skip
    return {"kind": "no_convergence"}


def verdict_document(period: str, outcome: Outcome) -> dict[str, Any]:
    """The verdict as SubmitGridVerdict takes it: integers and decimal strings only."""
    after = outcome.after
    return {
        "period": period,
        "model_sha256": outcome.model.sha256,
        "result": outcome.result,
        "book": {
            "contracts": len(outcome.transfers),
            "wh": sum(t.wh for t in outcome.transfers),
        },
        "curtailments": [{"contract": c, "wh": wh} for c, wh in outcome.curtailments],
        "violations": [violation_document(v) for v in outcome.violations],
        "after": {
            "vm_min_pu": decimal_text(after.vm_min, 6),
            "vm_max_pu": decimal_text(after.vm_max, 6),
            "max_loading_percent": decimal_text(after.max_loading, 3),
        },
    }
