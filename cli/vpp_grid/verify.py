"""Is the Grid's verdict right? Re-run its power flows from the model and the public contracts.

Anyone can run this (``vppctl grid verify``): the model file must hash to the
verdict's ``model_sha256``; the contracts are the ones the verdict covered,
with the quantities they were cleared with. A verdict is right when:

- ``pass``: the uncurtailed flow has no violation;
- ``curtail``: the uncurtailed flow has a violation, the curtailed contracts
  are the last matched ones in order (all whole but the earliest of them),
  the curtailed flow is feasible, and it is not feasible with 1 Wh less
  curtailed, nor with one contract fewer curtailed whole; and they are the
  contracts the rule's own search (vpp_grid.check) picks;
- the violations it cites are the ones the flow shows.

Floating-point results of two machines may differ in the last digits, so a
limit counts as met or broken within ``EPSILON_PU`` in the Grid's favour:
a verdict is called wrong only for a difference no rounding explains.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vpp_grid.check import (
    CURTAIL,
    PASS,
    Transfer,
    _order,
    check,
    injections,
    violation_document,
)
from vpp_grid.flow import Flow, FlowResult
from vpp_grid.model import GridModel

EPSILON_PU = 1e-9  # of a voltage (p.u.); x100 for a loading in %, x1000 for a power in kW


@dataclass(slots=True)
class Finding:
    right: bool
    problems: list[str] = field(default_factory=list)
    before: FlowResult | None = None
    after: FlowResult | None = None
    runs: int = 0


def verify(
    model: GridModel,
    transfers: Sequence[Transfer],
    verdict: Mapping[str, Any],
    flow: Flow | None = None,
) -> Finding:
    """Check ``verdict`` (as stored or submitted) against the flows; problems say what is wrong."""
    flow = flow or Flow(model)
    start = flow.runs
    problems: list[str] = []
    if verdict.get("model_sha256") != model.sha256:
        problems.append(
            f"the verdict names model {verdict.get('model_sha256')}, this file is {model.sha256}"
        )
        return Finding(False, problems)
    curtailed = {c["contract"]: int(c["wh"]) for c in verdict.get("curtailments", [])}
    by_id = {t.contract: t for t in transfers}

    def run(cut: Mapping[str, int]) -> FlowResult:
        return flow.run(injections(transfers, cut))

    def broken(result: FlowResult) -> bool:  # broken beyond doubt
        return bool(result.violations(model, slack=EPSILON_PU))

    def met(result: FlowResult) -> bool:  # met beyond doubt is not needed: within doubt is met
        return not result.violations(model, slack=EPSILON_PU)

    before = run({})
    after = before
    cited = sorted(_cited_key(v) for v in verdict.get("violations", []))
    actual = sorted(_cited_key(violation_document(v)) for v in before.violations(model))
    if verdict.get("result") == PASS:
        if curtailed:
            problems.append("the verdict says pass but curtails contracts")
        if broken(before):
            problems.append(
                "the verdict says pass but the flow violates: "
                + "; ".join(v.describe() for v in before.violations(model, slack=EPSILON_PU))
            )
    elif verdict.get("result") == CURTAIL:
        if not before.violations(model, slack=-EPSILON_PU):
            problems.append(
                "the verdict curtails "
                + ", ".join(f"{c} by {wh} Wh" for c, wh in curtailed.items())
                + " but the uncurtailed flow violates no limit "
                f"(voltages {before.vm_min:.4f}-{before.vm_max:.4f} p.u., "
                f"max loading {before.max_loading:.1f} %)"
            )
        unknown = [c for c in curtailed if c not in by_id]
        if unknown:
            problems.append(
                f"the verdict curtails contracts it did not cover: {', '.join(unknown)}"
            )
        else:
            after = run(curtailed)
            problems.extend(_order_problems(transfers, curtailed))
            if not met(after):
                problems.append(
                    "the curtailed flow still violates: "
                    + "; ".join(v.describe() for v in after.violations(model, slack=EPSILON_PU))
                )
            if not problems:
                problems.extend(_minimality_problems(model, transfers, curtailed, run))
            if not problems:
                rule = [c for c, _ in check(model, transfers, flow).curtailments]
                if sorted(rule) != sorted(curtailed):
                    problems.append(f"the rule curtails {rule}, the verdict {sorted(curtailed)}")
    else:
        problems.append(f"result {verdict.get('result')!r} is neither pass nor curtail")
    if not problems and cited != actual:
        problems.append(f"the verdict cites violations {cited}, the flow shows {actual}")
    return Finding(not problems, problems, before, after, flow.runs - start)


def _cited_key(v: Mapping[str, Any]) -> str:
    element = v.get("bus", v.get("line", ""))
    return f"{v.get('kind')} {element}"


def _order_problems(transfers: Sequence[Transfer], curtailed: Mapping[str, int]) -> list[str]:
    """The curtailed contracts must be the last k, whole but for the earliest one."""
    order = _order(transfers)
    k = len(curtailed)
    expected = [t.contract for t in order[:k]]
    if sorted(curtailed) != sorted(expected):
        return [
            f"the verdict curtails {sorted(curtailed)}; last matched first, it should curtail "
            f"{expected}"
        ]
    problems = []
    for t in order[: k - 1]:
        if curtailed[t.contract] != t.wh:
            problems.append(
                f"{t.contract} is curtailed by {curtailed[t.contract]} of {t.wh} Wh: every "
                "contract but the earliest curtailed one is curtailed whole"
            )
    last = order[k - 1]
    if not 0 < curtailed[last.contract] <= last.wh:
        problems.append(
            f"{last.contract}: curtailment {curtailed[last.contract]} Wh is not in 1..{last.wh}"
        )
    return problems


def _minimality_problems(model, transfers, curtailed, run) -> list[str]:
    """Curtailing less must break a limit (within EPSILON_PU): 1 Wh less, or fewer contracts."""
    order = _order(transfers)
    k = len(curtailed)
    last = order[k - 1]
    problems = []
    less = dict(curtailed)
    less[last.contract] -= 1
    if less[last.contract] == 0:
        del less[last.contract]
    if not run(less).violations(model, slack=-EPSILON_PU):
        problems.append(
            f"the verdict curtails more than needed: {last.contract} curtailed by "
            f"{curtailed[last.contract] - 1} Wh (1 Wh less) already meets every limit"
        )
    if k > 1:
        fewer = {t.contract: t.wh for t in order[: k - 1]}
        if not run(fewer).violations(model, slack=-EPSILON_PU):
            problems.append(
                f"the verdict curtails more contracts than needed: curtailing only the last "
                f"{k - 1} whole already meets every limit"
            )
    return problems
