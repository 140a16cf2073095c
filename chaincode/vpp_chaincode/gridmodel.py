"""The Grid's model on vpp-main and the rule that signing waits for its verdict.

The Grid records the SHA-256 of its grid model file (``LoadGridModel``,
``config~gridmodel``, history kept by the key's history). A period cleared
while a model is loaded carries that hash in its clearing summary
(``grid_model``); its P2P contracts can be signed only once the Grid's
verdict on that model is on the ledger (``gridverdict~<DDDDD>~<TT>``). A
market that never loaded a model keeps the behaviour it had: ``grid_model``
is null and nothing waits. The power flow itself runs off-chain
(``vpp_grid``); docs/grid-check.md.
"""

from __future__ import annotations

from typing import Any

from vpp_shim.api import ChaincodeError, Stub
from vpp_shim.codes import Code

from vpp_chaincode.ids import PeriodId
from vpp_chaincode.ledger import get_json, key

GRID_MSPID = "GridMSP"
MODEL_KEY = key("config", "gridmodel")


def verdict_key(pid: PeriodId) -> str:
    return key("gridverdict", *pid.key_parts)


def loaded(stub: Stub) -> dict[str, Any] | None:
    return get_json(stub, MODEL_KEY)


def loaded_sha256(stub: Stub) -> str | None:
    """The hash of the model in force, or None while the Grid never loaded one."""
    record = loaded(stub)
    return record["sha256"] if record else None


def pinned(record: dict[str, Any]) -> str | None:
    """The model a cleared period must be checked against (None: no check)."""
    return (record.get("clearing") or {}).get("grid_model")


def require_verdict(stub: Stub, pid: PeriodId, record: dict[str, Any], action: str) -> None:
    """Refuses ``action`` on a period that awaits the Grid's verdict (NOT_READY)."""
    model = pinned(record)
    if model is None or get_json(stub, verdict_key(pid)) is not None:
        return
    raise ChaincodeError(
        Code.NOT_READY,
        f"{action}: period {pid} awaits the Grid's security verdict on grid model "
        f"{model[:12]}; the Grid submits it (vppctl grid check --period {pid}) before "
        "anyone signs",
    )
