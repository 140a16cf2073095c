"""A bus-voltage plot of a period: before and after curtailment, limits, regions (PNG)."""

from __future__ import annotations

from pathlib import Path

from vpp_grid.flow import FlowResult
from vpp_grid.model import GridModel


def voltage_plot(
    model: GridModel,
    before: FlowResult,
    after: FlowResult | None,
    path: Path,
    title: str,
    base: FlowResult | None = None,
) -> Path:
    """Write the plot to ``path``: bus voltage (p.u.) by bus, regions shaded and named."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 4.8), dpi=110)
    # Buses in region order (R1's, then R2's, ...), so each region is one band.
    order = [b for r in model.regions for b in r.buses]
    x = list(range(len(order)))

    def series(result: FlowResult) -> list[float]:
        return [result.vm_pu[b] for b in order]

    low, high = float(model.limits.vm_min_pu), float(model.limits.vm_max_pu)
    values = [*before.vm_pu, *(after.vm_pu if after else ()), low, high]
    top = max(values) + 0.025
    start = 0
    for i, region in enumerate(model.regions):
        end = start + len(region.buses)
        ax.axvspan(start - 0.5, end - 0.5, color=("#eeeeee", "#ffffff")[i % 2], zorder=0)
        ax.text((start + end - 1) / 2, top - 0.008, region.region, ha="center", fontsize=9,
                color="#444444")  # fmt: skip
        conn = start + region.buses.index(region.connection_bus)
        ax.annotate("", xy=(conn, low - 0.004), xytext=(conn, low - 0.016),
                    arrowprops={"arrowstyle": "->", "color": "#555555"})  # fmt: skip
        start = end
    ax.axhline(high, color="#c0392b", linestyle="--", linewidth=1, label=f"limits {low}-{high}")
    ax.axhline(low, color="#c0392b", linestyle="--", linewidth=1)
    if base is not None and base.converged:
        ax.plot(x, series(base), color="#999999", marker=".", linewidth=1, label="base case")
    if before.converged:
        ax.plot(x, series(before), color="#e67e22", marker="o", markersize=4, linewidth=1.5,
                label="cleared trades")  # fmt: skip
    if after is not None and after is not before and after.converged:
        ax.plot(x, series(after), color="#2471a3", marker="s", markersize=4, linewidth=1.5,
                label="after curtailment")  # fmt: skip
    ax.set_xticks(x, [str(b) for b in order], fontsize=7)
    ax.set_xlim(-0.5, len(order) - 0.5)
    ax.set_ylim(min(values) - 0.02, top)
    ax.set_xlabel(
        "bus, in region order (arrow: the region's connection bus, where its trades are placed)"
    )
    ax.set_ylabel("voltage (p.u.)")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
