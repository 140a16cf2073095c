"""One AC power flow of the base case plus a set of inter-region transfers (pandapower).

A P2P contract of q Wh in an hourly period is a transfer of q W on average:
generation of q W at the seller's region's connection bus and load of q W
at the buyer's, at unity power factor, on top of the model's base load.
Grid contracts are not placed: energy the grid buys or supplies is the
Grid's own dispatch (docs/grid-check.md says why and what that leaves out).

Only the sums per region matter, so one flow costs the same for 6 or 1,000
contracts. The pandapower network is built once per model and reused:
``Flow.run`` only changes the 2 x regions injections and re-solves.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from vpp_grid.model import GridModel

# Newton-Raphson mismatch: far below the 1 W (1e-6 MW) a verdict resolves.
TOLERANCE_MVA = 1e-10


@dataclass(frozen=True, slots=True)
class Violation:
    """One limit broken: a bus voltage, a branch loading or a tie-line's power."""

    kind: str  # "bus" | "line" | "tie_line" | "no_convergence"
    element: int  # bus or line number (-1 for no_convergence)
    value: float  # vm_pu, loading_percent or |p_kw|
    limit: float
    region: str = ""

    def describe(self) -> str:
        if self.kind == "bus":
            side = "over" if self.value > self.limit else "under"
            return (
                f"bus {self.element} ({self.region}) at {self.value:.6f} p.u., "
                f"{side} the {self.limit:g} p.u. limit"
            )
        if self.kind == "line":
            return f"line {self.element} loaded {self.value:.3f} % (limit {self.limit:g} %)"
        if self.kind == "tie_line":
            return (
                f"tie-line {self.region} (line {self.element}) carries {self.value:.3f} kW "
                f"(limit {self.limit:g} kW)"
            )
        return "the power flow does not converge"


@dataclass(frozen=True, slots=True)
class FlowResult:
    converged: bool
    vm_pu: tuple[float, ...]  # by bus number
    loading_percent: tuple[float, ...]  # by position in model.lines
    tie_p_kw: tuple[float, ...]  # by position in model.tie_lines, from-side active power
    injections_w: Mapping[str, tuple[int, int]] = field(default_factory=dict)

    def violations(self, model: GridModel, slack: float = 0.0) -> list[Violation]:
        """Limits broken by more than ``slack`` (negative slack: also those within |slack|)."""
        if not self.converged:
            return [Violation("no_convergence", -1, 0.0, 0.0)]
        low = float(model.limits.vm_min_pu)
        high = float(model.limits.vm_max_pu)
        found = []
        region_of = {b.bus: b.region for b in model.buses}
        for bus, vm in enumerate(self.vm_pu):
            if vm > high + slack:
                found.append(Violation("bus", bus, vm, high, region_of[bus]))
            elif vm < low - slack:
                found.append(Violation("bus", bus, vm, low, region_of[bus]))
        max_loading = float(model.limits.max_loading_percent)
        for line, loading in zip(model.lines, self.loading_percent, strict=True):
            if loading > max_loading + slack * 100:
                found.append(Violation("line", line.line, loading, max_loading))
        for tie, p_kw in zip(model.tie_lines, self.tie_p_kw, strict=True):
            if abs(p_kw) > tie.limit_kw + slack * 1000:
                name = f"{tie.from_region}-{tie.to_region}"
                found.append(Violation("tie_line", tie.line, abs(p_kw), tie.limit_kw, name))
        return found

    @property
    def vm_min(self) -> float:
        return min(self.vm_pu) if self.vm_pu else 0.0

    @property
    def vm_max(self) -> float:
        return max(self.vm_pu) if self.vm_pu else 0.0

    @property
    def max_loading(self) -> float:
        return max(self.loading_percent) if self.loading_percent else 0.0


class Flow:
    """The model as a pandapower network, ready to solve for any set of region injections."""

    def __init__(self, model: GridModel) -> None:
        import pandapower as pp

        logging.getLogger("pandapower").setLevel(logging.ERROR)
        self.model = model
        self._pp = pp
        net = pp.create_empty_network(name=model.name, sn_mva=1.0)
        vn = float(model.vn_kv)
        for b in model.buses:
            pp.create_bus(net, vn_kv=vn, index=b.bus, name=str(b.bus))
        for b in model.buses:
            if b.p_kw or b.q_kvar:
                pp.create_load(net, b.bus, p_mw=float(b.p_kw) / 1000, q_mvar=float(b.q_kvar) / 1000)
        for ln in model.lines:
            pp.create_line_from_parameters(
                net, ln.from_bus, ln.to_bus, length_km=1.0,
                r_ohm_per_km=float(ln.r_ohm), x_ohm_per_km=float(ln.x_ohm),
                c_nf_per_km=0.0, max_i_ka=float(ln.max_i_ka), index=ln.line,
            )  # fmt: skip
        pp.create_ext_grid(net, model.slack_bus, vm_pu=float(model.slack_vm_pu))
        self._gen = {}
        self._load = {}
        for r in model.regions:
            self._gen[r.region] = pp.create_sgen(net, r.connection_bus, p_mw=0.0, name=r.region)
            self._load[r.region] = pp.create_load(
                net, r.connection_bus, p_mw=0.0, name=f"trades {r.region}"
            )
        self.net = net
        self._line_order = [ln.line for ln in model.lines]
        self._tie_order = [t.line for t in model.tie_lines]
        self.runs = 0

    def run(self, injections_w: Mapping[str, tuple[int, int]]) -> FlowResult:
        """Solve with ``{region: (generation W, load W)}`` (absent regions: 0)."""
        for region in self._gen:
            gen_w, load_w = injections_w.get(region, (0, 0))
            self.net.sgen.at[self._gen[region], "p_mw"] = gen_w / 1e6
            self.net.load.at[self._load[region], "p_mw"] = load_w / 1e6
        self.runs += 1
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._pp.runpp(self.net, numba=False, tolerance_mva=TOLERANCE_MVA, max_iteration=30)
        except self._pp.LoadflowNotConverged:
            return FlowResult(False, (), (), (), dict(injections_w))
        res_bus = self.net.res_bus.vm_pu
        res_line = self.net.res_line
        return FlowResult(
            converged=True,
            vm_pu=tuple(float(res_bus.at[b.bus]) for b in self.model.buses),
            loading_percent=tuple(
                float(res_line.at[i, "loading_percent"]) for i in self._line_order
            ),
            tie_p_kw=tuple(float(res_line.at[i, "p_from_mw"]) * 1000 for i in self._tie_order),
            injections_w=dict(injections_w),
        )


def decimal_text(value: float, places: int) -> str:
    """A float result as the decimal string a verdict carries (fixed ``places``, half-even)."""
    return str(Decimal(repr(value)).quantize(Decimal(1).scaleb(-places)))
