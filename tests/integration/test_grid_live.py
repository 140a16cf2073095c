"""The Grid's check on the live network (lean): the on-ledger part, with the real CLI.

The Grid loads the shipped model; a period cleared under it refuses signatures
until the verdict is on the ledger; a verdict naming another model is refused
(GRID_MODEL_MISMATCH through the Gateway); `vppctl grid check` submits the
verdict as grid-admin; the parties sign; `vppctl grid verify` (as a trader)
agrees. The model is unloaded at the end so later tests sign as before, and the
period is delivered and settled and its day closed (left cleared, it would keep every
later day from closing: CloseDay answers NOT_READY).
Curtailment on the ledger is covered in memory (tests/unit/test_grid_verdict.py).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import (
    OPERATOR,
    ensure_aggregators,
    market,
    open_test_period,
    order_json,
    query,
    sealed_order,
)
from vpp_gateway import connect_as
from vpp_gateway.errors import EndorseError
from vpp_grid.model import load
from vpp_shim.codes import Code

pytestmark = pytest.mark.network


def vppctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vppctl", *args], capture_output=True,
                          text=True, timeout=600)  # fmt: skip


def test_signing_waits_for_the_grids_verdict_on_its_model(finished_afterwards: list[str]) -> None:
    ensure_aggregators([1, 6])
    model = load()
    with connect_as("grid-admin") as grid_gw, connect_as(OPERATOR) as vppo_gw:
        grid, vppo = market(grid_gw), market(vppo_gw)
        grid.submit("LoadGridModel", json.dumps(model.summary()), wait_for_peers=True)
        try:
            period = open_test_period(vppo)
            pid = period["period"]
            finished_afterwards.append(pid)  # cleared below: settled, day closed at the end
            price = (period["sale"] + period["purchase"]) // 2
            for agg, side in ((6, "sell"), (1, "buy")):
                with connect_as(f"agg{agg}-trader") as gw:
                    market(gw).submit(
                        "SubmitOrder", **sealed_order(order_json(agg, pid, side, 100_000, price))
                    )
            vppo.submit("ClosePeriod", pid, wait_for_peers=True)
            cleared = json.loads(vppo.submit("ClearPeriod", pid, wait_for_peers=True))
            assert cleared["grid_model"] == model.sha256 and cleared["matches"] == 1
            contract = cleared["contracts"][0]

            with connect_as("agg6-trader") as gw, pytest.raises(EndorseError) as early:
                market(gw).submit("SignContract", contract)
            assert early.value.code == Code.NOT_READY

            other = {"period": pid, "model_sha256": "0" * 64, "result": "pass",
                     "book": {"contracts": 1, "wh": 100_000}, "curtailments": [],
                     "violations": [], "after": {"vm_min_pu": "0.97", "vm_max_pu": "1.02",
                                                 "max_loading_percent": "30"}}  # fmt: skip
            with pytest.raises(EndorseError) as mismatch:
                grid.submit("SubmitGridVerdict", json.dumps(other))
            assert mismatch.value.code == Code.GRID_MODEL_MISMATCH

            checked = vppctl("grid", "check", "-t", pid, "-o", "json")
            assert checked.returncode == 0, checked.stderr
            assert json.loads(checked.stdout)["verdict"]["result"] == "pass"
            stored = query(vppo, "GetGridVerdict", pid)
            assert stored["model_sha256"] == model.sha256 and stored["submitted_by"].startswith(
                "GridMSP/"
            )
            for agg in (6, 1):
                with connect_as(f"agg{agg}-trader") as gw:
                    market(gw).submit("SignContract", contract, wait_for_peers=True)
            verified = vppctl("grid", "verify", "-t", pid, "--as", "agg1-trader")
            assert verified.returncode == 0, verified.stderr
            assert "is right" in verified.stdout
        finally:
            grid.submit("UnloadGridModel", wait_for_peers=True)
