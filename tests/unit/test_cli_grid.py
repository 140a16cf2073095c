"""vppctl grid on the in-memory fabric: load, check, sign, verify (a lying verdict caught).

The real market chaincode and the real power flow (pandapower) on the shipped
model; only the network is in memory.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_fabric import FakeFabric, PaperMarket, invoke, invoke_ok

pytest.importorskip("pandapower")


@pytest.fixture
def market(fabric: FakeFabric) -> PaperMarket:
    m = PaperMarket(fabric)
    m.register()
    invoke_ok("grid", "model", "load")
    return m


def test_a_paper_period_passes_and_then_signs(fabric: FakeFabric, market: PaperMarket,
                                               tmp_path: Path) -> None:  # fmt: skip
    pid = market.cleared(1, 13)
    # Before the verdict no one signs.
    with pytest.raises(Exception, match="NOT_READY"):
        market.sign_all(pid)
    plot = tmp_path / "t13.png"
    out = json.loads(invoke_ok("grid", "check", "-t", "1-13", "--plot", str(plot),
                               "-o", "json").stdout)  # fmt: skip
    assert out["verdict"]["result"] == "pass" and out["submitted"] is True
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [c.identity for c in fabric.submits("SubmitGridVerdict")] == ["grid-admin"]
    market.sign_all(pid)
    verified = invoke_ok("grid", "verify", "-t", "1-13")
    assert "is right" in verified.stdout
    # Checking again submits nothing.
    again = json.loads(invoke_ok("grid", "check", "-t", "1-13", "-o", "json").stdout)
    assert again["submitted"] is False and len(fabric.submits("SubmitGridVerdict")) == 1


def test_verify_catches_a_verdict_that_curtails_without_a_violation(
    fabric: FakeFabric, market: PaperMarket
) -> None:
    pid = market.cleared(1, 2)
    honest = json.loads(invoke_ok("grid", "check", "-t", "1-2", "--dry-run", "-o", "json").stdout)
    assert honest["verdict"]["result"] == "pass"
    # A Grid that curtails the last contract citing a voltage no flow shows: the chaincode
    # cannot run a power flow, so it accepts the well-formed verdict; verify catches it.
    contracts = json.loads(invoke_ok("contracts", "-t", "1-2", "-o", "json").stdout)
    last = max((c for c in contracts if c["kind"] == "p2p"), key=lambda c: c["id"])
    fake = {"kind": "bus", "bus": 17, "region": "R6", "vm_pu": "1.061"}
    lying = {**honest["verdict"], "result": "curtail", "violations": [fake],
             "curtailments": [{"contract": last["id"], "wh": 10_000}]}  # fmt: skip
    market.call("grid-admin", "SubmitGridVerdict", json.dumps(lying))
    result = invoke("grid", "verify", "-t", "1-2")
    assert result.exit_code == 1, result.output
    assert "is WRONG" in result.stdout and "violates no limit" in result.stdout
    shown = json.loads(invoke_ok("grid", "show", "-t", "1-2", "-o", "json").stdout)
    assert shown["curtailments"] == [{"contract": last["id"], "wh": 10_000}]
    assert pid == shown["period"]


def test_a_model_file_that_is_not_the_periods_is_refused(
    fabric: FakeFabric, market: PaperMarket, tmp_path: Path
) -> None:
    market.cleared(1, 2)
    from vpp_grid.model import default_model_path

    other = tmp_path / "other.json"
    other.write_bytes(default_model_path().read_bytes().replace(b'"1.02"', b'"1.03"'))
    result = invoke("grid", "check", "-t", "1-2", "--model", str(other))
    assert result.exit_code == 1
    assert "pass --model FILE with that model" in result.stderr
    assert fabric.submits("SubmitGridVerdict") == []


def test_the_demo_runs_the_check_when_asked(fabric: FakeFabric) -> None:
    result = invoke("demo", "paper", "--grid", "--no-settle")
    assert result.exit_code == 0, result.output
    assert len(fabric.submits("SubmitGridVerdict")) == 2
    assert "security check on model" in result.stdout and ": pass (" in result.stdout
