"""The Grid's security check from vppctl: load a model, check a period, verify a verdict.

Shared by ``vppctl grid`` and the paper demo. pandapower is imported only
when a flow runs (``vpp_grid.flow``), so no other command pays for it.
Nothing here prints; errors are ``CliError`` with the next step to take.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vpp_gateway import GatewayError
from vpp_grid import ledger
from vpp_grid.model import GridModel, ModelError, load
from vpp_network import identities
from vpp_shim.codes import Code

from vppctl.errors import CliError, usage_error
from vppctl.session import ContractLike, parallel, query, submit

GRID_ADMIN = identities.GRID_ADMIN


def model_file(path: Path | None) -> GridModel:
    try:
        return load(path)
    except ModelError as exc:
        raise usage_error(str(exc)) from None


def loaded_model(market: ContractLike) -> dict[str, Any] | None:
    return query(market, "GetGridModel")["current"]


def load_model(market: ContractLike, path: Path | None) -> dict[str, Any]:
    """LoadGridModel of the file's hash and limits (the shipped model by default)."""
    model = model_file(path)
    return submit(
        market,
        "LoadGridModel",
        json.dumps(model.summary()),
        message=f"recording grid model {model.sha256[:12]}",
    )


def regions_of(market: ContractLike, contracts: list[dict[str, Any]]) -> dict[int, str]:
    aggs = sorted({a for c in contracts if c["kind"] == "p2p" for a in (c["seller"], c["buyer"])})
    records = parallel(lambda a: query(market, "GetAggregator", str(a)), aggs)
    return {r["agg"]: r["region"] for r in records}


def _model_for(period: dict[str, Any], sha256: str | None, path: Path | None) -> GridModel:
    if sha256 is None:
        raise CliError(
            f"period {period['period']} was cleared without a grid model: it needs no check "
            "(vppctl grid model load FILE applies to periods cleared after it)"
        )
    model = model_file(path)
    if model.sha256 != sha256:
        where = str(path) if path else "the shipped model"
        raise CliError(
            f"{where} has SHA-256 {model.sha256[:12]}..., period {period['period']} was "
            f"cleared under grid model {sha256[:12]}...: pass --model FILE with that model"
        )
    return model


@dataclass
class Checked:
    period: str
    model: GridModel
    outcome: Any  # vpp_grid.check.Outcome
    stored: dict[str, Any] | None  # the verdict on the ledger (None: dry run)
    already: bool  # the ledger had a verdict already (nothing submitted)


def check_period(
    market: ContractLike,
    period: dict[str, Any],
    path: Path | None = None,
    *,
    dry_run: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Checked:
    """Run the check of a cleared period and submit its verdict (as the Grid)."""
    from vpp_grid.check import BaseCaseInfeasible, check

    pid = period["period"]
    if period["status"] != "CLEARED":
        raise CliError(f"period {pid} is {period['status']}: the Grid checks a CLEARED period")
    model = _model_for(period, (period.get("clearing") or {}).get("grid_model"), path)
    contracts = query(market, "GetContracts", pid)["contracts"]
    transfers = ledger.to_check(contracts, regions_of(market, contracts))
    try:
        outcome = check(model, transfers, progress=progress)
    except BaseCaseInfeasible as exc:
        raise CliError(str(exc)) from None
    if dry_run:
        return Checked(pid, model, outcome, None, False)
    existing = _verdict(market, pid)
    if existing is not None:
        return Checked(pid, model, outcome, existing, True)
    stored = submit(
        market,
        "SubmitGridVerdict",
        json.dumps(outcome.verdict(pid)),
        message=f"submitting the grid verdict on {pid}",
    )
    return Checked(pid, model, outcome, stored, False)


def _verdict(market: ContractLike, pid: str) -> dict[str, Any] | None:
    period = query(market, "GetPeriod", pid)
    if not (period.get("clearing") or {}).get("grid_model"):
        return None
    try:
        return query(market, "GetGridVerdict", pid)
    except GatewayError as exc:
        if exc.code == Code.NOT_FOUND:  # no verdict yet
            return None
        raise


@dataclass
class Verified:
    period: str
    model: GridModel
    stored: dict[str, Any]
    finding: Any  # vpp_grid.verify.Finding


def verify_period(market: ContractLike, period: dict[str, Any], path: Path | None) -> Verified:
    """Re-run the flows of a stored verdict from the public contracts."""
    from vpp_grid.verify import verify

    pid = period["period"]
    stored = _verdict(market, pid)
    if stored is None:
        raise CliError(f"period {pid} has no grid verdict to verify")
    model = _model_for(period, stored["model_sha256"], path)
    contracts = query(market, "GetContracts", pid)["contracts"]
    transfers = ledger.covered(contracts, regions_of(market, contracts), stored)
    finding = verify(model, transfers, ledger.as_submitted(stored))
    return Verified(pid, model, stored, finding)
