"""Plots and the summary of a run, drawn from its CSV tables (so a finished run can be redrawn).

Five figures, each as a PNG (matplotlib) and together in one self-contained
HTML report (plotly, its JavaScript inline, so the file opens offline):

1. ``prices.png``: P2P clearing prices per hour of the day against the TOU
   band [f_t, s_t];
2. ``energy.png``: P2P energy versus grid energy per hour of the day;
3. ``reputation.png``: each aggregator's reputation after each day;
4. ``income.png``: each aggregator's cumulative net income (its wallet);
5. ``costs.png``: each aggregator's and the whole VPP's energy cost in the
   market against a grid-only baseline in which everyone trades only with
   the grid at TOU prices.

Every axis says its unit. Tables missing from a directory (a report drawn
from the ledger has no physical data, so no baseline) leave out their plots.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

FIGURES = ("prices", "energy", "reputation", "income", "costs")
HTML_NAME = "report.html"


@dataclass
class RunTables:
    periods: pd.DataFrame
    contracts: pd.DataFrame
    settlements: pd.DataFrame
    reputations: pd.DataFrame
    wallets: pd.DataFrame
    aggregators: pd.DataFrame | None  # absent when drawn from the ledger


def load_tables(directory: Path) -> RunTables:
    """The tables of a run directory; FileNotFoundError names the first one missing."""

    def read(name: str, required: bool = True) -> pd.DataFrame | None:
        path = directory / f"{name}.csv"
        if not path.exists():
            if required:
                raise FileNotFoundError(f"{path} is missing: is {directory} a simulate --out?")
            return None
        return pd.read_csv(path)

    tables = {n: read(n) for n in ("periods", "contracts", "settlements", "reputations", "wallets")}
    return RunTables(**tables, aggregators=read("aggregators", required=False))  # type: ignore[arg-type]


def _agg_order(names: pd.Series) -> list[str]:
    return sorted(set(names.dropna()), key=lambda n: int(str(n)[3:]) if str(n)[3:].isdigit() else 0)


def price_by_hour(t: RunTables) -> pd.DataFrame:
    """Per hour of day: TOU band and the volume-weighted mean P2P price over all days."""
    p2p = t.contracts[t.contracts["kind"] == "p2p"].copy()
    p2p["value"] = p2p["quantity_kwh"] * p2p["price_yuan_per_kwh"]
    by = p2p.groupby("hour").agg(value=("value", "sum"), kwh=("quantity_kwh", "sum"))
    band = t.periods.groupby("hour")[["sale_yuan_per_kwh", "purchase_yuan_per_kwh"]].first()
    out = band.join(by, how="left")
    out["p2p_mean"] = out["value"] / out["kwh"]
    return out.reset_index()


def energy_by_hour(t: RunTables) -> pd.DataFrame:
    cols = ["p2p_kwh", "grid_bought_kwh", "grid_supplied_kwh"]
    return t.periods.groupby("hour")[cols].mean().reset_index()


def reputation_by_day(t: RunTables) -> pd.DataFrame:
    """Rows (day, agg, r) with day 0 the reputation the run started from."""
    r = t.reputations
    first = r[r["day"] == r["day"].min()][["agg", "r_prev"]].rename(columns={"r_prev": "r"})
    first.insert(0, "day", r["day"].min() - 1)
    return pd.concat([first, r[["day", "agg", "r"]]], ignore_index=True)


def income_over_time(t: RunTables) -> pd.DataFrame:
    """Rows (time in days, wallet, balance) for the aggregators' wallets."""
    w = t.wallets[t.wallets["wallet"].str.startswith("agg")].copy()
    w["time_days"] = w["day"] - 1 + w["hour"] / 24
    w["agg"] = "Agg" + w["wallet"].str[3:]
    return w


def costs(t: RunTables) -> pd.DataFrame | None:
    """Per aggregator and the VPP: energy cost (yuan) in the market and grid-only."""
    if t.aggregators is None or t.aggregators.empty:
        return None
    a = t.aggregators
    per = a.groupby("agg").agg(
        market=("market_net_yuan", "sum"),
        outside=("outside_market_net_yuan", "sum"),
        grid_only=("grid_only_net_yuan", "sum"),
    )
    table = pd.DataFrame(
        {
            "market_cost_yuan": -(per["market"] + per["outside"]),
            "grid_only_cost_yuan": -per["grid_only"],
        }
    )
    table = table.loc[_agg_order(a["agg"])]
    table.loc["VPP"] = table.sum()
    table["saving_yuan"] = table["grid_only_cost_yuan"] - table["market_cost_yuan"]
    base = table["grid_only_cost_yuan"].abs().where(lambda s: s > 0)
    table["saving_pct"] = 100 * table["saving_yuan"] / base
    return table


def summary(t: RunTables) -> pd.DataFrame:
    """One row per aggregator and one for the VPP: energy, money, final reputation."""
    s = t.settlements
    sold = s[s["side"] == "sell"].groupby("agg")["contracted_kwh"].sum()
    bought = s[s["side"] == "buy"].groupby("agg")["contracted_kwh"].sum()
    grid = s.groupby("agg")["grid_kwh"].sum()
    last = t.reputations[t.reputations["day"] == t.reputations["day"].max()].set_index("agg")
    first = t.reputations[t.reputations["day"] == t.reputations["day"].min()].set_index("agg")
    aggs = _agg_order(pd.concat([s["agg"], t.reputations["agg"]]))
    out = pd.DataFrame(index=aggs)
    out["p2p_sold_kwh"] = sold.reindex(aggs).fillna(0)
    out["p2p_bought_kwh"] = bought.reindex(aggs).fillna(0)
    out["grid_absorbed_kwh"] = grid.reindex(aggs).fillna(0)
    out["net_income_yuan"] = s.groupby("agg")["net_yuan"].sum().reindex(aggs).fillna(0)
    c = costs(t)
    if c is not None:
        out["market_cost_yuan"] = c["market_cost_yuan"]
        out["grid_only_cost_yuan"] = c["grid_only_cost_yuan"]
        out["saving_pct"] = c["saving_pct"]
    out["r_start"] = first["r_prev"].reindex(aggs)
    out["r_end"] = last["r"].reindex(aggs)
    total = out.drop(columns=["r_start", "r_end"]).sum()
    if c is not None:
        total["saving_pct"] = c.loc["VPP", "saving_pct"]
    out.loc["VPP"] = total
    return out


# --- PNG (matplotlib) --------------------------------------------------------------------------


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    return plt


def draw_pngs(t: RunTables, out: Path, title: str = "") -> list[Path]:
    plt = _pyplot()
    written: list[Path] = []
    days = int(t.periods["day"].nunique())
    suffix = f" ({title}, {days} day{'s' if days != 1 else ''})" if title else ""

    def save(fig: object, name: str) -> None:
        path = out / f"{name}.png"
        fig.tight_layout()  # type: ignore[attr-defined]
        fig.savefig(path, dpi=100)  # type: ignore[attr-defined]
        plt.close(fig)  # type: ignore[arg-type]
        written.append(path)

    pr = price_by_hour(t)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.fill_between(
        pr["hour"],
        pr["purchase_yuan_per_kwh"],
        pr["sale_yuan_per_kwh"],
        step="mid",
        alpha=0.2,
        color="tab:gray",
        label="TOU band [f_t, s_t]",
    )
    ax.step(pr["hour"], pr["sale_yuan_per_kwh"], where="mid", color="tab:red", lw=1, label="s_t")
    ax.step(
        pr["hour"], pr["purchase_yuan_per_kwh"], where="mid", color="tab:green", lw=1, label="f_t"
    )
    p2p = t.contracts[t.contracts["kind"] == "p2p"]
    if len(p2p):
        ax.scatter(
            p2p["hour"],
            p2p["price_yuan_per_kwh"],
            s=8,
            alpha=0.35,
            color="tab:blue",
            label="P2P contract",
        )
        ax.plot(pr["hour"], pr["p2p_mean"], "o-", color="navy", label="P2P mean (by volume)")
    ax.set(
        xlabel="period t (hour of day, t covers (t-1):00-t:00)",
        ylabel="price (yuan/kWh)",
        title="Clearing prices against the TOU band" + suffix,
        xticks=range(1, 25),
    )
    ax.legend(fontsize=8, loc="upper left")
    save(fig, "prices")

    en = energy_by_hour(t)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.bar(en["hour"], en["p2p_kwh"], label="P2P (between aggregators)", color="tab:blue")
    ax.bar(
        en["hour"],
        en["grid_bought_kwh"],
        bottom=en["p2p_kwh"],
        label="sold to the grid at f_t",
        color="tab:green",
    )
    ax.bar(
        en["hour"],
        en["grid_supplied_kwh"],
        bottom=en["p2p_kwh"] + en["grid_bought_kwh"],
        label="bought from the grid at s_t",
        color="tab:orange",
    )
    ax.set(
        xlabel="period t (hour of day)",
        ylabel="energy per period, mean over days (kWh)",
        title="P2P versus grid energy per hour" + suffix,
        xticks=range(1, 25),
    )
    ax.legend(fontsize=8)
    save(fig, "energy")

    rep = reputation_by_day(t)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for agg in _agg_order(rep["agg"]):
        r = rep[rep["agg"] == agg]
        ax.plot(r["day"], r["r"], "o-", ms=3, label=agg)
    ax.set(
        xlabel="day (0: start of the run)",
        ylabel="reputation R (fraction of 1)",
        title="Reputation of each aggregator after each day" + suffix,
    )
    ax.legend(fontsize=8, ncol=3)
    save(fig, "reputation")

    inc = income_over_time(t)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for agg in _agg_order(inc["agg"]):
        w = inc[inc["agg"] == agg]
        ax.plot(w["time_days"], w["balance_yuan"], lw=1.2, label=agg)
    ax.axhline(0, color="black", lw=0.5)
    ax.set(
        xlabel="time (days)",
        ylabel="cumulative net income (yuan)",
        title="Cumulative net income per aggregator (wallet)" + suffix,
    )
    ax.legend(fontsize=8, ncol=3)
    save(fig, "income")

    c = costs(t)
    if c is not None:
        fig, ax = plt.subplots(figsize=(9, 4.5))
        x = range(len(c))
        ax.bar([i - 0.2 for i in x], c["grid_only_cost_yuan"], 0.4, label="grid only (TOU)")
        ax.bar([i + 0.2 for i in x], c["market_cost_yuan"], 0.4, label="VPP market")
        for i, (_, row) in enumerate(c.iterrows()):
            if pd.notna(row["saving_pct"]):
                top = max(row["grid_only_cost_yuan"], row["market_cost_yuan"], 0)
                ax.annotate(
                    f"{row['saving_pct']:+.1f}%", (i, top), ha="center", va="bottom", fontsize=8
                )
        ax.set_xticks(list(x), list(c.index))
        ax.axhline(0, color="black", lw=0.5)
        ax.set(
            ylabel="energy cost over the run (yuan; negative: net income)",
            title="Energy cost: market against grid only (labels: saving)" + suffix,
        )
        ax.legend(fontsize=8)
        save(fig, "costs")
    return written


# --- HTML (plotly) -----------------------------------------------------------------------------


def draw_html(t: RunTables, out: Path, title: str = "") -> Path:
    import plotly.graph_objects as go

    figs: list[go.Figure] = []
    layout = {"height": 420, "margin": {"l": 60, "r": 20, "t": 50, "b": 50}}

    pr = price_by_hour(t)
    f = go.Figure()
    f.add_trace(
        go.Scatter(x=pr["hour"], y=pr["purchase_yuan_per_kwh"], name="f_t", line_shape="hvh")
    )
    f.add_trace(
        go.Scatter(
            x=pr["hour"], y=pr["sale_yuan_per_kwh"], name="s_t", fill="tonexty", line_shape="hvh"
        )
    )
    p2p = t.contracts[t.contracts["kind"] == "p2p"]
    f.add_trace(
        go.Scatter(
            x=p2p["hour"],
            y=p2p["price_yuan_per_kwh"],
            mode="markers",
            name="P2P contract",
            marker={"size": 4, "opacity": 0.4},
            text=[f"day {d}" for d in p2p["day"]],
        )
    )
    f.add_trace(go.Scatter(x=pr["hour"], y=pr["p2p_mean"], name="P2P mean (by volume)"))
    f.update_layout(
        title="Clearing prices against the TOU band",
        xaxis_title="period t (hour of day)",
        yaxis_title="price (yuan/kWh)",
        **layout,
    )
    figs.append(f)

    en = energy_by_hour(t)
    f = go.Figure(
        [
            go.Bar(x=en["hour"], y=en["p2p_kwh"], name="P2P"),
            go.Bar(x=en["hour"], y=en["grid_bought_kwh"], name="sold to the grid at f_t"),
            go.Bar(x=en["hour"], y=en["grid_supplied_kwh"], name="bought from the grid at s_t"),
        ]
    )
    f.update_layout(
        barmode="stack",
        title="P2P versus grid energy per hour (mean over days)",
        xaxis_title="period t (hour of day)",
        yaxis_title="energy per period (kWh)",
        **layout,
    )
    figs.append(f)

    rep = reputation_by_day(t)
    f = go.Figure(
        [
            go.Scatter(x=r["day"], y=r["r"], name=agg, mode="lines+markers")
            for agg in _agg_order(rep["agg"])
            for r in [rep[rep["agg"] == agg]]
        ]
    )
    f.update_layout(
        title="Reputation after each day",
        xaxis_title="day (0: start)",
        yaxis_title="reputation R (fraction of 1)",
        **layout,
    )
    figs.append(f)

    inc = income_over_time(t)
    f = go.Figure(
        [
            go.Scatter(x=w["time_days"], y=w["balance_yuan"], name=agg, mode="lines")
            for agg in _agg_order(inc["agg"])
            for w in [inc[inc["agg"] == agg]]
        ]
    )
    f.update_layout(
        title="Cumulative net income (wallet)",
        xaxis_title="time (days)",
        yaxis_title="net income (yuan)",
        **layout,
    )
    figs.append(f)

    c = costs(t)
    if c is not None:
        f = go.Figure(
            [
                go.Bar(x=list(c.index), y=c["grid_only_cost_yuan"], name="grid only (TOU)"),
                go.Bar(
                    x=list(c.index),
                    y=c["market_cost_yuan"],
                    name="VPP market",
                    text=[f"{v:+.1f}%" if pd.notna(v) else "" for v in c["saving_pct"]],
                ),
            ]
        )
        f.update_layout(
            barmode="group",
            title="Energy cost: market against grid only (labels: saving)",
            yaxis_title="energy cost (yuan; negative: net income)",
            **layout,
        )
        figs.append(f)

    parts = [fig.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, fig in enumerate(figs)]
    table = summary(t).round(3).to_html(border=0, na_rep="")
    days = int(t.periods["day"].nunique())
    heading = html.escape(f"VPP market simulation: {title or 'run'}, {days} day(s)")
    doc = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{heading}</title>"
        "<style>body{font-family:sans-serif;max-width:1000px;margin:auto}"
        "table{border-collapse:collapse;font-size:13px}td,th{padding:2px 8px;text-align:right}"
        "</style></head><body>"
        f"<h1>{heading}</h1><h2>Summary</h2>{table}"
        "<p>Energy in kWh, money in yuan, reputation as a fraction of 1. Market cost = "
        "payments minus receipts in the market and with the grid outside it; grid only = the "
        "same metered energy traded with the grid at TOU prices.</p>"
        + "".join(parts)
        + "</body></html>"
    )
    path = out / HTML_NAME
    path.write_text(doc, "utf-8")
    return path


def draw(directory: Path, title: str = "") -> list[Path]:
    """Every PNG and the HTML report of the run in ``directory``, written there."""
    t = load_tables(directory)
    if t.periods.empty:
        raise ValueError(f"{directory} holds no settled period yet: nothing to draw")
    return [*draw_pngs(t, directory, title), draw_html(t, directory, title)]
