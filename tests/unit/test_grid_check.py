"""The Grid's AC power-flow check (vpp_grid): the model, the rule, verify.

Real pandapower flows on the shipped IEEE 33-bus model; nothing is stubbed.
The expected curtailment is never hard-coded: it is checked by what the rule
promises (feasible with it, infeasible with 1 Wh less, last matched first).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from vpp_market.book import read_aggregators, read_book, read_tie_lines, with_regions
from vpp_market.clearing import clear
from vpp_market.tou import prices_for

pytest.importorskip("pandapower")

from vpp_grid import build  # noqa: E402
from vpp_grid.check import CURTAIL, PASS, Transfer, check, injections  # noqa: E402
from vpp_grid.flow import Flow  # noqa: E402
from vpp_grid.model import ModelError, default_model_path, load, parse  # noqa: E402
from vpp_grid.verify import verify  # noqa: E402

DATA = Path(__file__).parent / "data" / "paper_case"


@pytest.fixture(scope="module")
def model():
    return load()


@pytest.fixture(scope="module")
def flow(model):
    return Flow(model)


def paper_transfers(hour: int) -> list[Transfer]:
    """The paper's period cleared by our rules (with its tie-lines), as region transfers."""
    topology = read_tie_lines(DATA / "tie_lines.csv")
    aggs = read_aggregators(DATA / "aggregators.csv")
    book = with_regions(read_book(DATA / f"book_t{hour:02d}.csv"), aggs, topology)
    region = {o.agg: o.region for o in book.orders}
    result = clear(book.orders, prices_for(hour), topology)
    return [
        Transfer(f"00001-{hour:02d}-{seq:04d}", seq, region[m.seller], region[m.buyer],
                 m.quantity_wh)
        for seq, m in enumerate(result.matches, start=1)
    ]  # fmt: skip


def test_the_shipped_model_is_what_the_script_generates(model) -> None:
    """The file is generated from pandapower's case33bw, not edited by hand."""
    assert build.build() == default_model_path().read_bytes()
    assert len(model.buses) == 33 and len(model.regions) == 6
    assert sorted(b for r in model.regions for b in r.buses) == list(range(33))
    assert [(t.from_region, t.to_region) for t in model.tie_lines] == [
        ("R1", "R2"), ("R2", "R3"), ("R3", "R4"), ("R4", "R5"), ("R5", "R6")
    ]  # fmt: skip


def test_the_base_case_meets_every_limit(model, flow) -> None:
    base = flow.run({})
    assert base.converged and base.violations(model) == []


@pytest.mark.parametrize("hour", [2, 13])
def test_the_paper_periods_pass(model, flow, hour: int) -> None:
    transfers = paper_transfers(hour)
    assert transfers, "the paper's periods have P2P trades"
    outcome = check(model, transfers, flow)
    assert outcome.result == PASS
    assert outcome.curtailments == ()
    verdict = outcome.verdict(f"00001-{hour:02d}")
    assert verdict["violations"] == [] and verdict["result"] == "pass"
    assert verify(model, transfers, verdict, flow).right


# A book no feeder section can take: 1.6 MW injected at the far end (R6) and R5.
WEAK = [
    Transfer("00001-13-0001", 1, "R6", "R1", 700_000),
    Transfer("00001-13-0002", 2, "R6", "R2", 600_000),
    Transfer("00001-13-0003", 3, "R5", "R3", 300_000),
]


def test_a_book_over_1_05_pu_is_curtailed_exactly_enough(model, flow) -> None:
    before = flow.run(injections(WEAK))
    over = [v for v in before.violations(model) if v.kind == "bus"]
    assert over and all(v.value > 1.05 and v.region == "R6" for v in over)

    outcome = check(model, WEAK, flow)
    assert outcome.result == CURTAIL
    cut = dict(outcome.curtailments)
    # Last matched first: 0003 whole, then part of 0002; 0001 untouched.
    assert list(cut) == ["00001-13-0003", "00001-13-0002"]
    assert cut["00001-13-0003"] == 300_000 and 0 < cut["00001-13-0002"] < 600_000
    # The re-check passes, and 1 Wh less would not.
    assert flow.run(injections(WEAK, cut)).violations(model) == []
    less = {**cut, "00001-13-0002": cut["00001-13-0002"] - 1}
    assert flow.run(injections(WEAK, less)).violations(model) != []

    verdict = outcome.verdict("00001-13")
    assert [c["wh"] for c in verdict["curtailments"]] == [300_000, cut["00001-13-0002"]]
    assert {v["bus"] for v in verdict["violations"]} == {v.element for v in over}
    assert all(isinstance(v["vm_pu"], str) for v in verdict["violations"])
    assert verify(model, WEAK, verdict, flow).right


def test_verify_catches_a_curtailment_without_a_violation(model, flow) -> None:
    transfers = paper_transfers(13)
    honest = check(model, transfers, flow).verdict("00001-13")
    lying = {**honest, "result": "curtail",
             "curtailments": [{"contract": transfers[-1].contract, "wh": 1000}]}  # fmt: skip
    finding = verify(model, transfers, lying, flow)
    assert not finding.right
    assert any("violates no limit" in p for p in finding.problems), finding.problems


def test_verify_catches_one_wh_too_many_and_a_hidden_violation(model, flow) -> None:
    verdict = check(model, WEAK, flow).verdict("00001-13")
    greedy = json.loads(json.dumps(verdict))
    greedy["curtailments"][-1]["wh"] += 1
    assert any("more than needed" in p for p in verify(model, WEAK, greedy, flow).problems)
    hiding = {**verdict, "result": "pass", "curtailments": [], "violations": []}
    assert any("says pass" in p for p in verify(model, WEAK, hiding, flow).problems)
    out_of_order = json.loads(json.dumps(verdict))
    out_of_order["curtailments"][0]["contract"] = "00001-13-0001"
    assert not verify(model, WEAK, out_of_order, flow).right


def test_a_model_file_is_validated_and_its_hash_is_of_its_bytes(model) -> None:
    data = default_model_path().read_bytes()
    assert parse(data).sha256 == model.sha256
    other = data.replace(b'"vm_pu": "1.02"', b'"vm_pu": "1.03"')
    assert parse(other).sha256 != model.sha256
    with pytest.raises(ModelError, match="slack.vm_pu"):
        parse(data.replace(b'"vm_pu": "1.02"', b'"vm_pu": 1.02'))
    with pytest.raises(ModelError, match="every bus must belong"):
        parse(data.replace(b'"buses": [14, 15, 16, 17]', b'"buses": [15, 16, 17]'))
