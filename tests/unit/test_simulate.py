"""`vppctl simulate` / `report` offline: scenario, plans, the engine, resume, reputation at work.

The offline == live comparison runs here against the real chaincodes in
memory (tests/fake_fabric.py FakeFabric) and in tests/integration against the
network.
"""

from __future__ import annotations

import dataclasses
import json
from fractions import Fraction
from pathlib import Path

import pytest
from fake_fabric import FakeFabric
from typer.testing import CliRunner, Result
from vpp_market.model import PeriodPrices, Side
from vpp_market.quotation import reserve_price
from vpp_market.units import PPM
from vpp_sim import profiles
from vpp_sim import scenario as scenario_module
from vpp_sim.engine import Progress, Simulation
from vpp_sim.offline import OfflineMarket
from vpp_sim.plan import plan_day
from vpp_sim.results import TABLES
from vppctl import paper_case
from vppctl.main import app

PAPER = scenario_module.load()


def vppctl(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def run(tmp: Path, scenario=PAPER, market=None, **kw):  # type: ignore[no-untyped-def]
    kw.setdefault("seed", 1)
    kw.setdefault("days", 1)
    return Simulation(scenario, market or OfflineMarket(), out=tmp, **kw).run()


def tables(out: Path) -> dict[str, str]:
    return {name: (out / f"{name}.csv").read_text() for name in TABLES}


# --- scenario --------------------------------------------------------------------------------


def test_default_scenario_is_the_papers_case() -> None:
    caps = {a.agg: a.capacities_kw for a in paper_case.aggregators()}
    assert [a.number for a in PAPER.aggregators] == sorted(caps)
    for a in PAPER.aggregators:
        mine = {"WT": a.wt_w, "PV": a.pv_w, "ESS": a.ess_w}
        assert {k: v for k, v in mine.items() if v} == {
            k: int(v) * 1000 for k, v in caps[a.number].items()
        }
        assert a.region == next(c.region for c in paper_case.aggregators() if c.agg == a.number)
    assert tuple((str(a), str(b), s, f) for a, b, s, f in PAPER.tou_rows) == paper_case.tou_rows()
    assert tuple((a, b, str(kw)) for a, b, kw in PAPER.tie_lines) == paper_case.tie_line_rows()
    book = {r.agg: r.reputation_ppm for r in paper_case.book(2)}
    assert {a.number: a.reputation_ppm for a in PAPER.aggregators} == book


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda d: d["aggregators"][0].update(cost="0.1234567"), "Agg1.cost"),
        (lambda d: d["aggregators"][2].update(peak_load_kw=900), "Agg3.peak_load_kw"),
        (lambda d: d["aggregators"][1].update(reliability=[1.0, 1.5]), "Agg2.reliability"),
        (lambda d: d["aggregators"][1].update(load_profile="office"), "Agg2.load_profile"),
        (lambda d: d["aggregators"][1].update(region="R9"), "Agg2.region"),
        (lambda d: d["wind"].update(rated_ms=2), "cut_in_ms"),
        (lambda d: d.update(tou=[[0, 12, "0.5", "0.3"]]), "tou"),
        (lambda d: d["location"].pop("latitude"), "location.latitude"),
    ],
)
def test_bad_scenario_is_one_line_naming_the_key(tmp_path: Path, edit, named: str) -> None:  # type: ignore[no-untyped-def]
    import yaml

    data = yaml.safe_load(scenario_module.default_path().read_text())
    edit(data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    result = vppctl("simulate", "--offline", "--scenario", str(path), "--out", str(tmp_path / "o"))
    assert result.exit_code == 2, result.output
    assert named in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()  # nothing written on bad input


def test_toml_scenario_reads_like_yaml(tmp_path: Path) -> None:
    import yaml

    data = yaml.safe_load(scenario_module.default_path().read_text())
    data["start_date"] = str(data["start_date"])
    lines = [f"name = {json.dumps(data['name'])}", f"start_date = {json.dumps(data['start_date'])}"]
    lines.append("tou = " + json.dumps(data["tou"]))
    lines.append("tie_lines = " + json.dumps(data["tie_lines"]))
    for section in ("location", "wind", "pv", "storage", "market"):
        lines.append(f"[{section}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in data[section].items()]
    lines.append("[load_profiles]")
    lines += [f"{k} = {json.dumps(v)}" for k, v in data["load_profiles"].items()]
    for agg in data["aggregators"]:
        lines.append("[[aggregators]]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in agg.items()]
    path = tmp_path / "paper.toml"
    path.write_text("\n".join(lines) + "\n")
    toml = scenario_module.load(path)
    assert dataclasses.replace(toml, digest="") == dataclasses.replace(PAPER, digest="")


# --- plans: storage, orders, meters ----------------------------------------------------------


def test_plans_respect_storage_capacity_and_market_bounds() -> None:
    days = 4
    ghi = profiles.clear_sky_ghi(PAPER, days)
    soc: dict[int, int] = {}
    sale = [PAPER.tou.prices_for(t).sale for t in range(1, 25)]
    seen_sides = set()
    for day in range(1, days + 1):
        prof = profiles.day_profiles(PAPER, 7, day, ghi[day - 1])
        for plan in plan_day(PAPER, day, prof, soc):
            prices = plan.prices
            for a in plan.aggs:
                agg = PAPER.aggregator(a.agg)
                e_cap = int(agg.ess_w * PAPER.storage.hours)
                assert 0 <= a.soc_wh <= e_cap
                assert 0 <= a.charge_wh <= agg.ess_w and 0 <= a.discharge_wh <= agg.ess_w
                if a.charge_wh:
                    assert prices.sale == min(sale)  # valley only
                if a.discharge_wh:
                    assert prices.sale > sorted(sale)[11]  # peak only
                for r in a.readings:
                    cap = agg.wt_w + agg.pv_w if r.meter == 1 else agg.ess_w
                    assert 0 <= r.exported_wh <= cap and 0 <= r.imported_wh <= cap
                    assert not (r.exported_wh and r.imported_wh)
                o = a.order
                if o is None:
                    assert a.forecast_output_wh + a.discharge_wh == (
                        a.forecast_load_wh + a.charge_wh
                    )
                    continue
                seen_sides.add(o.side)
                assert 0 < o.quantity_wh <= agg.capacity_w
                assert prices.purchase <= o.offer <= prices.sale
                assert prices.purchase <= o.reserve <= prices.sale
                if o.side is Side.SELL:
                    assert o.reserve <= o.offer
                else:
                    assert o.reserve >= o.offer
    assert seen_sides == {Side.SELL, Side.BUY}


def test_reserve_gives_way_from_the_offer_by_the_margin() -> None:
    prices = PeriodPrices(13, 860_000, 650_000)
    assert reserve_price(Side.SELL, 800_000, prices, 0, Fraction(1, 2)) == 725_000
    assert reserve_price(Side.SELL, 800_000, prices, 700_000, Fraction(1, 2)) == 750_000
    assert reserve_price(Side.SELL, 660_000, prices, 700_000, Fraction(1, 2)) == 660_000
    assert reserve_price(Side.BUY, 700_000, prices, 0, Fraction(1, 2)) == 780_000
    assert reserve_price(Side.BUY, 700_000, prices, 0, Fraction(0)) == 700_000
    with pytest.raises(ValueError, match="margin"):
        reserve_price(Side.BUY, 700_000, prices, 0, Fraction(3, 2))


# --- the engine offline ----------------------------------------------------------------------


def test_same_seed_same_results_other_seed_other_results(tmp_path: Path) -> None:
    run(tmp_path / "a", days=2)
    run(tmp_path / "b", days=2)
    run(tmp_path / "c", days=2, seed=2)
    assert tables(tmp_path / "a") == tables(tmp_path / "b")
    assert tables(tmp_path / "a")["contracts"] != tables(tmp_path / "c")["contracts"]


def test_every_period_balances_and_prices_stay_in_the_tou_band(tmp_path: Path) -> None:
    result = run(tmp_path, days=2)
    assert len(result.periods) == 48 and [d.day for d in result.days] == [1, 2]
    p2p = 0
    for p in result.periods:
        assert sum(delta for _, delta in p.wallet_deltas) == 0
        prices = PAPER.tou.prices_for(p.hour)
        for c in p.contracts:
            assert prices.purchase <= c.price <= prices.sale
            p2p += c.kind == "p2p"
        for s in p.settlements:  # contracts + grid absorption cover each order exactly
            assert s.contracted_wh + s.grid_wh == s.quantity_wh
    assert p2p > 0


def test_interrupted_run_continues_to_the_same_results(tmp_path: Path) -> None:
    class Stop(Exception):
        pass

    def stop_at_day2_hour5(p: Progress) -> None:
        if (p.day, p.hour) == (2, 5) and not p.done:
            raise Stop

    with pytest.raises(Stop):
        run(tmp_path / "cut", days=3, progress=stop_at_day2_hour5)
    state = json.loads((tmp_path / "cut" / "state.json").read_text())
    assert (state["next_day"], state["next_hour"]) == (2, 6)
    resumed = run(tmp_path / "cut", days=3)
    assert resumed.resumed_from == (2, 6)
    assert [p.hour for p in resumed.periods][:2] == [6, 7]
    run(tmp_path / "whole", days=3)
    assert tables(tmp_path / "cut") == tables(tmp_path / "whole")


def test_resuming_another_run_is_refused(tmp_path: Path) -> None:
    quick = ("simulate", "--offline", "--hours", "13", "--no-plots", "--out", str(tmp_path))
    assert vppctl(*quick).exit_code == 0
    other = vppctl(*quick, "--seed", "9")
    assert other.exit_code == 2 and "seed 1" in other.stderr and "--fresh" in other.stderr
    fresh = vppctl(*quick, "--seed", "9", "--fresh")
    assert fresh.exit_code == 0, fresh.output


def test_poor_delivery_loses_reputation_day_by_day_then_gets_worse_prices(tmp_path: Path) -> None:
    """The reputation-weighted price at work: the same orders, only Agg1's delivery differs."""

    def with_reliability(values: tuple[float, ...]):  # type: ignore[no-untyped-def]
        aggs = tuple(
            dataclasses.replace(a, reliability=values) if a.number == 1 else a
            for a in PAPER.aggregators
        )
        return dataclasses.replace(PAPER, aggregators=aggs)

    days = 5
    good = run(tmp_path / "good", with_reliability((1.0,)), days=days)
    poor = run(tmp_path / "poor", with_reliability((0.9, 0.7, 0.5, 0.3, 0.1)), days=days)

    def agg1(result, day: int):  # type: ignore[no-untyped-def]
        return next(r for r in result.days[day - 1].reputations if r.agg == 1)

    r_poor = [agg1(poor, d).r_ppm for d in range(1, days + 1)]
    start = PAPER.aggregator(1).reputation_ppm
    assert all(b < a for a, b in zip([start, *r_poor], r_poor, strict=False)), r_poor
    assert agg1(poor, days).r_ppm < agg1(good, days).r_ppm

    def sales(result, day: int) -> list[tuple[int, int, int]]:  # type: ignore[no-untyped-def]
        return [
            (p.hour, c.quantity_wh, c.price)
            for p in result.periods
            if p.day == day
            for c in p.contracts
            if c.kind == "p2p" and c.seller == 1
        ]

    assert sales(good, 1) == sales(poor, 1)  # day 1 clears with the same reputations
    for day in range(2, days + 1):
        g, p = sales(good, day), sales(poor, day)
        assert [(h, q) for h, q, _ in g] == [(h, q) for h, q, _ in p]  # same trades
        assert sum(q * price for _, q, price in p) < sum(q * price for _, q, price in g)


def test_offline_equals_the_chaincode_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The live backend on the real chaincodes (in memory) gives the offline run's results."""
    from vpp_sim.live import LiveMarket

    FakeFabric().install(monkeypatch)
    hours = frozenset(range(10, 16))
    live = run(tmp_path / "live", market=LiveMarket(), days=2, seed=4, hours=hours)
    assert not live.notes
    offline = run(tmp_path / "off", days=2, seed=4, hours=hours)
    assert [p.comparable() for p in live.periods] == [p.comparable() for p in offline.periods]
    assert live.days == offline.days
    assert any(c.kind == "p2p" for p in live.periods for c in p.contracts)
    assert any(r.r_ppm != r.r_prev_ppm for d in live.days for r in d.reputations)
    for name in ("contracts", "settlements", "reputations", "wallets"):
        assert tables(tmp_path / "live")[name] == tables(tmp_path / "off")[name]
    # ... and the ledger alone gives the same tables back (ledger days 1-2 on a fresh fabric).
    ledger = tmp_path / "ledger"
    drawn = vppctl("report", "--from-ledger", "--days", "1-2", "--out", str(ledger))
    assert drawn.exit_code == 0, drawn.output
    for name in ("periods", "contracts", "settlements", "reputations", "wallets"):
        mine = tables(tmp_path / "live")[name]
        if name == "periods":  # the ledger does not know the transactions behind a period
            mine, theirs = (
                [row.rsplit(",", 1)[0] for row in t.splitlines()]
                for t in (mine, tables(ledger)[name])
            )
            assert mine == theirs
        else:
            assert tables(ledger)[name] == mine
    assert (ledger / "reputation.png").exists() and not (ledger / "costs.png").exists()


def test_reputations_stay_in_range_over_a_month(tmp_path: Path) -> None:
    result = run(tmp_path, days=30, checkpoint_every_s=5.0, keep_outcomes=False)
    assert len(result.days) == 30
    for d in result.days:
        for r in d.reputations:
            assert 0 <= r.r_ppm <= PPM


# --- the commands ----------------------------------------------------------------------------


def test_simulate_writes_tables_plots_and_a_self_contained_report(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = vppctl("simulate", "--offline", "--days", "2", "--hours", "8-20", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "VPP" in result.stdout and "saving %" in result.stdout
    assert "day 2/2 settled and closed" in result.stderr
    for name in TABLES:
        assert (out / f"{name}.csv").read_text().splitlines()[0] == ",".join(TABLES[name])
    for name in ("prices", "energy", "reputation", "income", "costs"):
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (out / "report.html").read_text()
    assert "<script src=" not in html and "Plotly" in html
    assert "price (yuan" in html and "energy cost (yuan" in html
    for png in out.glob("*.png"):
        png.unlink()
    again = vppctl("report", str(out))
    assert again.exit_code == 0, again.output
    assert len(list(out.glob("*.png"))) == 5


def test_report_of_a_directory_without_a_run_is_one_line(tmp_path: Path) -> None:
    result = vppctl("report", str(tmp_path))
    assert result.exit_code == 1 and "periods.csv is missing" in result.stderr
    bad = vppctl("simulate", "--offline", "--hours", "25", "--out", str(tmp_path))
    assert bad.exit_code == 2 and "--hours" in bad.stderr


def test_a_peer_link_closing_for_seconds_is_ridden_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CI run on a quiet machine lost its simulated day when the first minute after
    network-up kept the Agg peer's link to the VPPO's endorser closing for more than
    the 3 s the session waited; pauses double now, 15.5 s in all."""
    from vpp_gateway import EndorseError, ErrorDetail
    from vppctl import session

    slept: list[float] = []
    monkeypatch.setattr(session.time, "sleep", slept.append)
    dropped = ErrorDetail(
        "127.0.0.1:8001",
        "VPPOMSP",
        "rpc error: code = Canceled desc = grpc: the client connection is closing",
    )
    failures = [dropped] * 5

    class Closing:
        network = None

        def submit(self, function: str, *args: str, **kw: object) -> bytes:
            if failures:
                raise EndorseError("endorsement failed", details=[failures.pop(0)])
            return b'{"ok": true}'

    assert session.submit(Closing(), "SealPeriod") == {"ok": True}
    assert sum(slept) >= 10 and slept == sorted(slept)


def test_session_proposes_again_only_after_a_dropped_peer_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under load a peer's gateway drops its link to another org's peer mid-endorsement
    (seen on the live day); such a proposal never reached the orderer, so it is made
    again. A chaincode refusal is never repeated."""
    from vpp_gateway import EndorseError, ErrorDetail
    from vppctl import session

    monkeypatch.setattr(session.time, "sleep", lambda s: None)
    dropped = ErrorDetail(
        "127.0.0.1:28001",
        "VPPOMSP",
        "rpc error: code = Canceled desc = grpc: the client connection is closing",
    )
    refused = ErrorDetail("127.0.0.1:28001", "VPPOMSP", "chaincode response 500, NO_ORDER: none")

    class Flaky:
        network = None

        def __init__(self, failures: list[ErrorDetail]) -> None:
            self.failures = failures
            self.calls = 0

        def submit(self, function: str, *args: str, **kw: object) -> bytes:
            self.calls += 1
            if self.failures:
                raise EndorseError("endorsement failed", details=[self.failures.pop(0)])
            return b'{"ok": true}'

        evaluate = submit

    flaky = Flaky([dropped, dropped])
    assert session.submit(flaky, "Noop") == {"ok": True} and flaky.calls == 3
    flaky = Flaky([dropped])
    assert session.query(flaky, "GetCalendar") == {"ok": True} and flaky.calls == 2
    flaky = Flaky([dropped] * session.TRANSIENT_ATTEMPTS)
    with pytest.raises(EndorseError):
        session.submit(flaky, "Noop")
    assert flaky.calls == session.TRANSIENT_ATTEMPTS
    import grpc
    from vpp_gateway import EvaluateError

    class SlowPeer(Flaky):
        def evaluate(self, function: str, *args: str, **kw: object) -> bytes:
            self.calls += 1
            if self.calls == 1:
                raise EvaluateError(
                    "evaluation failed: Deadline Exceeded",
                    grpc_code=grpc.StatusCode.DEADLINE_EXCEEDED,
                )
            return b"[]"

    slow = SlowPeer([])
    assert session.query(slow, "GetCalendar") == [] and slow.calls == 2
    flaky = Flaky([refused])
    with pytest.raises(EndorseError) as err:
        session.submit(flaky, "Noop")
    assert flaky.calls == 1 and err.value.code == "NO_ORDER"


def test_an_interrupted_live_day_continues_where_the_ledger_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped while later periods are half done (signed, read, sealed, anchored but not
    settled), the run picks each period up in the state the ledger has it in."""
    from vpp_sim.live import LiveMarket

    fabric = FakeFabric().install(monkeypatch)
    hours = frozenset(range(9, 17))

    class Stop(Exception):
        pass

    def stop_after_hour_11(p: Progress) -> None:
        if p.hour == 11 and not p.done:
            raise Stop

    with pytest.raises(Stop):
        run(
            tmp_path / "live", market=LiveMarket(), seed=4, hours=hours, progress=stop_after_hour_11
        )
    # Later periods may be anywhere from opened to settled (settlements run ahead of
    # reporting); the resumed run reports each from the state the ledger has.
    assert "00001-11" in {c.args[0] for c in fabric.submits("SettlePeriod")}
    resumed = run(tmp_path / "live", market=LiveMarket(), seed=4, hours=hours)
    assert resumed.resumed_from == (1, 12)
    offline = run(tmp_path / "off", seed=4, hours=hours)
    for name in ("contracts", "settlements", "reputations", "wallets"):
        assert tables(tmp_path / "live")[name] == tables(tmp_path / "off")[name], name
    assert len(fabric.submits("SettlePeriod")) == len(hours)  # each period settled once
    assert offline.days == resumed.days
