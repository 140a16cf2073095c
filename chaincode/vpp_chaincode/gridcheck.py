"""The Grid's transactions on vpp-main: its model's hash and its verdict on a cleared period.

``LoadGridModel`` and ``SubmitGridVerdict`` are the Grid admin's alone. The
power flow runs off-chain (``vpp_grid``, docs/grid-check.md); what reaches
the ledger is what the chaincode can validate without it:

- the verdict names the model the period was cleared under (else
  GRID_MODEL_MISMATCH) and the book it checked: the count and energy of the
  period's MATCHED P2P contracts (else BOOK_CHANGED: recompute);
- ``pass`` has no curtailment and cites no violation; ``curtail`` cites at
  least one, and every cited value really is outside the model's limits;
- curtailments follow the published order: the last k contracts by sequence
  number, all whole except the earliest of them, each 1..q Wh (integers);
- the flow after curtailment is claimed inside the limits.

Voltages (6 decimals), loadings in % (3) and powers in kW (3) arrive as
decimal strings and are stored as integers (micro-p.u., milli-%, W): no float
reaches the write set. Whether the numbers are physically right is what
``vppctl grid verify`` re-computes, from the model whose hash is stored here.
A curtailment takes the same path as VoidUnsigned (``lifecycle.absorb``):
the curtailed energy becomes grid absorption for both parties.
"""

from __future__ import annotations

import re
from typing import Any

from vpp_market.units import InputError, parse_fixed
from vpp_shim.api import ChaincodeError, Stub, to_json_bytes
from vpp_shim.codes import Code

from vpp_chaincode import access, gridmodel, ids, lifecycle, state, views
from vpp_chaincode.ledger import get_json, json_arg, put_json, tx
from vpp_chaincode.state import CLEARED, MATCHED, P2P_KIND, VOIDED

_SHA256_RE = re.compile(r"[0-9a-f]{64}")
PASS, CURTAIL = "pass", "curtail"
MAX_REGIONS = 64
MAX_ELEMENTS = 100_000
MAX_VIOLATIONS = 512
VM_DECIMALS, LOADING_DECIMALS, KW_DECIMALS = 6, 3, 3
VM_MAX = 2 * 10**VM_DECIMALS  # 2 p.u.: beyond any feeder that still solves


def _field(doc: Any, name: str, where: str) -> Any:
    if not isinstance(doc, dict) or name not in doc:
        raise ChaincodeError(Code.BAD_ARGUMENT, f"{where}: field {name!r} is missing")
    return doc[name]


def _int(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ChaincodeError(
            Code.BAD_ARGUMENT, f"{field} {value!r}: is not an integer in {low}..{high}"
        )
    return value


def _decimal(value: Any, field: str, decimals: int, maximum: int | None = None) -> int:
    """A non-negative decimal string with at most ``decimals`` places, as an integer."""
    if not isinstance(value, str):
        raise ChaincodeError(
            Code.BAD_ARGUMENT, f'{field} {value!r}: must be a decimal string such as "1.05"'
        )
    try:
        return parse_fixed(field, value, decimals, maximum=maximum)
    except InputError as exc:
        raise ChaincodeError(Code.BAD_ARGUMENT, str(exc)) from None


def _sha256(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _SHA256_RE.fullmatch(value):
        raise ChaincodeError(
            Code.BAD_ARGUMENT, f"{field} {str(value)[:80]!r}: is not a SHA-256 (64 lowercase hex)"
        )
    return value


def parse_model(text: str) -> dict[str, Any]:
    """LoadGridModel's argument -> the record (limits as integers)."""
    doc = json_arg("model", text)
    where = "model"
    name = _field(doc, "name", where)
    if not isinstance(name, str) or not 0 < len(name) <= 128:
        raise ChaincodeError(Code.BAD_ARGUMENT, f"model.name {str(name)[:80]!r}: 1..128 characters")
    regions = _field(doc, "regions", where)
    if not isinstance(regions, list) or not 0 < len(regions) <= MAX_REGIONS:
        raise ChaincodeError(
            Code.BAD_ARGUMENT, f"model.regions: must be a list of 1..{MAX_REGIONS} region names"
        )
    names = [ids.parse_name(r, "model.regions") for r in regions]
    if len(set(names)) != len(names):
        raise ChaincodeError(Code.BAD_ARGUMENT, "model.regions: a region is listed twice")
    vm_min = _decimal(_field(doc, "vm_min_pu", where), "model.vm_min_pu", VM_DECIMALS, VM_MAX)
    vm_max = _decimal(_field(doc, "vm_max_pu", where), "model.vm_max_pu", VM_DECIMALS, VM_MAX)
    if not 0 < vm_min < vm_max:
        raise ChaincodeError(
            Code.BAD_ARGUMENT, "model.vm_min_pu: must be above 0 and below model.vm_max_pu"
        )
    loading = _decimal(
        _field(doc, "max_loading_percent", where), "model.max_loading_percent", LOADING_DECIMALS
    )
    if loading == 0:
        raise ChaincodeError(Code.BAD_ARGUMENT, "model.max_loading_percent: must be above 0")
    return {
        "sha256": _sha256(_field(doc, "sha256", where), "model.sha256"),
        "name": name,
        "buses": _int(_field(doc, "buses", where), "model.buses", 1, MAX_ELEMENTS),
        "lines": _int(_field(doc, "lines", where), "model.lines", 1, MAX_ELEMENTS),
        "regions": names,
        "vm_min_upu": vm_min,
        "vm_max_upu": vm_max,
        "max_loading_mpct": loading,
    }


def _violations(doc: list[Any], model: dict[str, Any]) -> list[dict[str, Any]]:
    if not isinstance(doc, list) or len(doc) > MAX_VIOLATIONS:
        raise ChaincodeError(
            Code.BAD_ARGUMENT, f"verdict.violations: must be a list of at most {MAX_VIOLATIONS}"
        )
    out = []
    seen = set()
    for i, v in enumerate(doc):
        where = f"verdict.violations[{i}]"
        kind = _field(v, "kind", where)
        if kind == "bus":
            bus = _int(_field(v, "bus", where), f"{where}.bus", 0, model["buses"] - 1)
            vm = _decimal(_field(v, "vm_pu", where), f"{where}.vm_pu", VM_DECIMALS, VM_MAX)
            if model["vm_min_upu"] <= vm <= model["vm_max_upu"]:
                raise ChaincodeError(
                    Code.BAD_ARGUMENT,
                    f"{where}.vm_pu {v['vm_pu']!r}: is within the model's limits, not a violation",
                )
            region = ids.parse_name(_field(v, "region", where), f"{where}.region")
            item = {"kind": kind, "bus": bus, "region": region, "vm_upu": vm}
            ident = ("bus", bus)
        elif kind == "line":
            line = _int(_field(v, "line", where), f"{where}.line", 0, MAX_ELEMENTS)
            loading = _decimal(
                _field(v, "loading_percent", where), f"{where}.loading_percent", LOADING_DECIMALS
            )
            if loading <= model["max_loading_mpct"]:
                raise ChaincodeError(
                    Code.BAD_ARGUMENT,
                    f"{where}.loading_percent {v['loading_percent']!r}: is within the model's "
                    "limit, not a violation",
                )
            item = {"kind": kind, "line": line, "loading_mpct": loading}
            ident = ("line", line)
        elif kind == "tie_line":
            line = _int(_field(v, "line", where), f"{where}.line", 0, MAX_ELEMENTS)
            p_w = _decimal(_field(v, "p_kw", where), f"{where}.p_kw", KW_DECIMALS)
            tie = _field(v, "tie", where)
            if not isinstance(tie, str) or not 0 < len(tie) <= 130:
                raise ChaincodeError(Code.BAD_ARGUMENT, f"{where}.tie {str(tie)[:80]!r}: a name")
            item = {"kind": kind, "line": line, "tie": tie, "p_w": p_w}
            ident = ("tie_line", line)
        elif kind == "no_convergence":
            item = {"kind": kind}
            ident = ("no_convergence", 0)
        else:
            raise ChaincodeError(
                Code.BAD_ARGUMENT,
                f"{where}.kind {str(kind)[:40]!r}: is not bus, line, tie_line or no_convergence",
            )
        if ident in seen:
            raise ChaincodeError(Code.BAD_ARGUMENT, f"{where}: {ident[0]} {ident[1]} cited twice")
        seen.add(ident)
        out.append(item)
    return out


def _curtailments(
    doc: Any, pid: ids.PeriodId, matched: list[dict[str, Any]]
) -> list[tuple[dict[str, Any], int]]:
    """The curtailments in the published order (last matched first), validated."""
    if not isinstance(doc, list) or len(doc) > len(matched):
        raise ChaincodeError(
            Code.BAD_ARGUMENT,
            f"verdict.curtailments: must be a list of at most {len(matched)} "
            "(the period's MATCHED contracts)",
        )
    by_id = {c["id"]: c for c in matched}
    wanted: dict[str, int] = {}
    for i, item in enumerate(doc):
        where = f"verdict.curtailments[{i}]"
        raw_id = _field(item, "contract", where)
        try:
            cpid, seq = ids.parse_contract_id(raw_id, f"{where}.contract")
        except InputError as exc:
            raise ChaincodeError(Code.BAD_ARGUMENT, str(exc)) from None
        cid = ids.contract_id(cpid, seq)
        if cpid != pid or cid not in by_id:
            raise ChaincodeError(
                Code.BAD_ARGUMENT,
                f"{where}.contract {raw_id!r}: is not a MATCHED P2P contract of period {pid}",
            )
        if cid in wanted:
            raise ChaincodeError(Code.BAD_ARGUMENT, f"{where}.contract {cid}: is listed twice")
        quantity = by_id[cid]["quantity_wh"]
        wanted[cid] = _int(_field(item, "wh", where), f"{where}.wh", 1, quantity)
    order = sorted(matched, key=lambda c: c["seq"], reverse=True)
    expected = order[: len(wanted)]
    if {c["id"] for c in expected} != set(wanted):
        raise ChaincodeError(
            Code.BAD_ARGUMENT,
            "verdict.curtailments: must curtail the last matched contracts first: "
            f"{', '.join(sorted(wanted))} given, {', '.join(c['id'] for c in expected)} expected",
        )
    for c in expected[:-1]:
        if wanted[c["id"]] != c["quantity_wh"]:
            raise ChaincodeError(
                Code.BAD_ARGUMENT,
                f"verdict.curtailments: {c['id']} must be curtailed whole "
                f"({c['quantity_wh']} Wh): only the earliest curtailed contract may be partial",
            )
    return [(c, wanted[c["id"]]) for c in expected]


def submit_verdict(stub: Stub, text: str) -> dict[str, Any]:
    """Validate the Grid's verdict on a cleared period, store it and apply its curtailments."""
    doc = json_arg("verdict", text)
    where = "verdict"
    try:
        pid = ids.parse_period(_field(doc, "period", where), "verdict.period")
    except InputError as exc:
        raise ChaincodeError(Code.BAD_ARGUMENT, str(exc)) from None
    record = state.period(stub, pid, CLEARED, "SubmitGridVerdict")
    state.require_day_open(stub, pid, "SubmitGridVerdict")
    pinned = gridmodel.pinned(record)
    if pinned is None:
        raise ChaincodeError(
            Code.NO_GRID_MODEL,
            f"period {pid} was cleared while no grid model was loaded: it needs no verdict",
        )
    named = _sha256(_field(doc, "model_sha256", where), "verdict.model_sha256")
    if named != pinned:
        raise ChaincodeError(
            Code.GRID_MODEL_MISMATCH,
            f"verdict.model_sha256 {named[:12]}...: period {pid} was cleared under grid model "
            f"{pinned[:12]}...; check it with that model",
        )
    if get_json(stub, gridmodel.verdict_key(pid)) is not None:
        raise ChaincodeError(Code.ALREADY_RECORDED, f"period {pid} has a grid verdict already")
    model = gridmodel.loaded(stub)
    if model is None or model["sha256"] != pinned:
        # The Grid loaded another model after this period cleared: the limits to check
        # the cited values against are in the model's history.
        model = _model_version(stub, pinned)
    contracts = views.contracts_with_status(stub, pid)
    matched = [c for c in contracts if c["kind"] == P2P_KIND and c["status"] == MATCHED]
    book = _field(doc, "book", where)
    n = _int(_field(book, "contracts", "verdict.book"), "verdict.book.contracts", 0, 10**6)
    wh = _int(_field(book, "wh", "verdict.book"), "verdict.book.wh", 0, 10**15)
    actual_wh = sum(c["quantity_wh"] for c in matched)
    if (n, wh) != (len(matched), actual_wh):
        raise ChaincodeError(
            Code.BOOK_CHANGED,
            f"verdict.book: checked {n} contracts of {wh} Wh, period {pid} has {len(matched)} "
            f"MATCHED P2P contracts of {actual_wh} Wh; check the period again",
        )
    result = _field(doc, "result", where)
    if result not in (PASS, CURTAIL):
        raise ChaincodeError(
            Code.BAD_ARGUMENT, f"verdict.result {str(result)[:40]!r}: is not pass or curtail"
        )
    violations = _violations(_field(doc, "violations", where), model)
    cuts = _curtailments(_field(doc, "curtailments", where), pid, matched)
    if result == PASS and (cuts or violations):
        raise ChaincodeError(
            Code.BAD_ARGUMENT, "verdict: pass has no curtailments and cites no violation"
        )
    if result == CURTAIL and not (cuts and violations):
        raise ChaincodeError(
            Code.BAD_ARGUMENT,
            "verdict: curtail names at least one curtailment and the violation that causes it",
        )
    after = _field(doc, "after", where)
    vm_min = _decimal(_field(after, "vm_min_pu", "verdict.after"), "verdict.after.vm_min_pu",
                      VM_DECIMALS, VM_MAX)  # fmt: skip
    vm_max = _decimal(_field(after, "vm_max_pu", "verdict.after"), "verdict.after.vm_max_pu",
                      VM_DECIMALS, VM_MAX)  # fmt: skip
    loading = _decimal(_field(after, "max_loading_percent", "verdict.after"),
                       "verdict.after.max_loading_percent", LOADING_DECIMALS)  # fmt: skip
    if not (model["vm_min_upu"] <= vm_min <= vm_max <= model["vm_max_upu"]) or (
        loading > model["max_loading_mpct"]
    ):
        raise ChaincodeError(
            Code.BAD_ARGUMENT,
            "verdict.after: the flow after curtailment must be within the model's limits",
        )
    prices = state.prices(record)
    seq = max((c["seq"] for c in contracts), default=0)
    created: list[str] = []
    for c, cut in cuts:
        stored = {k: v for k, v in c.items() if k != "signatures"}
        stored = {**stored, "cleared_wh": c["quantity_wh"], "curtailed_wh": cut}
        if cut == c["quantity_wh"]:
            stored["status"] = VOIDED
        else:
            stored["quantity_wh"] = c["quantity_wh"] - cut
        put_json(stub, state.contract_key(pid, c["seq"]), stored)
        created += lifecycle.absorb(stub, pid, c, cut, seq, prices)
        seq += 2
    verdict = {
        "period": pid.id,
        "model_sha256": pinned,
        "result": result,
        "contracts": [c["seq"] for c in matched],
        "book": {"contracts": n, "wh": wh},
        "curtailments": [{"contract": c["id"], "wh": cut} for c, cut in cuts],
        "violations": violations,
        "after": {"vm_min_upu": vm_min, "vm_max_upu": vm_max, "max_loading_mpct": loading},
        "grid_contracts": created,
        "submitted_by": access.describe(stub.caller),
        "submitted_tx": stub.tx_id,
        "submitted_ns": stub.timestamp_ns,
    }
    put_json(stub, gridmodel.verdict_key(pid), verdict)
    stub.set_event(
        "GridVerdict",
        to_json_bytes(
            {"period": pid.id, "result": result, "curtailments": verdict["curtailments"]}
        ),
    )
    return verdict


def _model_version(stub: Stub, sha256: str) -> dict[str, Any]:
    for entry in stub.get_history_for_key(gridmodel.MODEL_KEY):
        if not entry.is_delete and entry.value:
            value = json_arg("history", entry.value.decode())
            if value.get("sha256") == sha256:
                return value
    raise ChaincodeError(
        Code.GRID_MODEL_MISMATCH, f"grid model {sha256[:12]}... is not in the model's history"
    )


class GridMixin:
    """The Grid's functions of the market contract (mixed into MarketContract)."""

    @tx
    def LoadGridModel(self, stub: Stub, model: str) -> dict[str, Any]:
        """Record the SHA-256 and limits of the Grid's model file; periods cleared from now on
        wait for the Grid's verdict before signing. Grid admin only; history kept.

        ``model``: JSON {"sha256", "name", "buses", "lines", "regions": [...],
        "vm_min_pu", "vm_max_pu", "max_loading_percent"} (what ``vppctl grid model
        load FILE`` sends; limits as decimal strings).
        """
        access.require_org_admin(stub.caller, gridmodel.GRID_MSPID, "LoadGridModel")
        record = {
            **parse_model(model),
            "loaded_by": access.describe(stub.caller),
            "loaded_tx": stub.tx_id,
            "loaded_ns": stub.timestamp_ns,
        }
        put_json(stub, gridmodel.MODEL_KEY, record)
        stub.set_event("GridModelLoaded", to_json_bytes({"sha256": record["sha256"]}))
        return record

    @tx
    def UnloadGridModel(self, stub: Stub) -> dict[str, Any]:
        """Stop the check: periods cleared from now on need no verdict. Grid admin only.

        Periods already cleared under the model still wait for their verdict; the
        model stays in GetGridModel's history (an ``unloaded`` entry follows it).
        """
        access.require_org_admin(stub.caller, gridmodel.GRID_MSPID, "UnloadGridModel")
        current = gridmodel.loaded(stub)
        if current is None:
            raise ChaincodeError(Code.NOT_FOUND, "UnloadGridModel: no grid model is loaded")
        stub.del_state(gridmodel.MODEL_KEY)
        stub.set_event("GridModelUnloaded", to_json_bytes({"sha256": current["sha256"]}))
        return {"unloaded": current["sha256"], "tx_id": stub.tx_id}

    @tx
    def SubmitGridVerdict(self, stub: Stub, verdict: str) -> dict[str, Any]:
        """The Grid's AC power-flow verdict on a cleared period: pass, or curtailments (Wh).

        ``verdict``: JSON {"period", "model_sha256", "result": "pass"|"curtail",
        "book": {"contracts", "wh"}, "curtailments": [{"contract", "wh"}],
        "violations": [...], "after": {...}} (docs/grid-check.md). Grid admin
        only; once per period; curtailed energy becomes grid absorption.
        """
        access.require_org_admin(stub.caller, gridmodel.GRID_MSPID, "SubmitGridVerdict")
        return submit_verdict(stub, verdict)

    @tx
    def GetGridModel(self, stub: Stub) -> dict[str, Any]:
        """The model in force (null until the Grid loads one) and all loaded, newest first."""
        history: list[dict[str, Any]] = []
        for entry in stub.get_history_for_key(gridmodel.MODEL_KEY):
            if entry.is_delete:
                history.append({"unloaded": True, "unloaded_tx": entry.tx_id})
            elif entry.value:
                history.append(json_arg("history", entry.value.decode()))
        return {"current": gridmodel.loaded(stub), "history": history}

    @tx
    def GetGridVerdict(self, stub: Stub, period: str) -> dict[str, Any]:
        """The Grid's verdict on a period (NOT_FOUND while none), with the model it names."""
        pid = ids.parse_period(period)
        record = state.period(stub, pid, None, "GetGridVerdict")
        verdict = get_json(stub, gridmodel.verdict_key(pid))
        if verdict is None:
            needed = gridmodel.pinned(record)
            why = f"it awaits one on model {needed[:12]}" if needed else "it needs none"
            raise ChaincodeError(Code.NOT_FOUND, f"period {pid} has no grid verdict ({why})")
        return verdict
