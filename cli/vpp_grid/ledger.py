"""From the ledger's public records to the transfers the flow places.

Pure functions over what ``GetContracts``, ``GetAggregator`` and
``GetGridVerdict`` return, so the Grid's check, anyone's verify and the tests
read the ledger the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from vpp_grid.check import Transfer

P2P, MATCHED = "p2p", "MATCHED"


def to_check(contracts: Iterable[Mapping[str, Any]], regions: Mapping[int, str]) -> list[Transfer]:
    """The transfers a check covers: the period's MATCHED P2P contracts, in sequence order."""
    return [
        Transfer(c["id"], c["seq"], regions[c["seller"]], regions[c["buyer"]], c["quantity_wh"])
        for c in sorted(contracts, key=lambda c: c["seq"])
        if c["kind"] == P2P and c["status"] == MATCHED
    ]


def covered(
    contracts: Iterable[Mapping[str, Any]], regions: Mapping[int, str], verdict: Mapping[str, Any]
) -> list[Transfer]:
    """The transfers a stored verdict covered, with the quantities they were cleared with.

    A curtailed contract keeps its cleared quantity in ``cleared_wh``; contracts
    voided or signed after the verdict still count, as they stood when it was given.
    """
    seqs = set(verdict["contracts"])
    return [
        Transfer(
            c["id"],
            c["seq"],
            regions[c["seller"]],
            regions[c["buyer"]],
            c.get("cleared_wh", c["quantity_wh"]),
        )
        for c in sorted(contracts, key=lambda c: c["seq"])
        if c["kind"] == P2P and c["seq"] in seqs
    ]


def as_submitted(stored: Mapping[str, Any]) -> dict[str, Any]:
    """A stored verdict (integers) in the submitted form (decimal strings) that verify reads."""

    def fixed(value: int, places: int) -> str:
        sign = "-" if value < 0 else ""
        whole, frac = divmod(abs(value), 10**places)
        return f"{sign}{whole}.{frac:0{places}d}"

    violations = []
    for v in stored["violations"]:
        if v["kind"] == "bus":
            violations.append({"kind": "bus", "bus": v["bus"], "region": v["region"],
                               "vm_pu": fixed(v["vm_upu"], 6)})  # fmt: skip
        elif v["kind"] == "line":
            violations.append({"kind": "line", "line": v["line"],
                               "loading_percent": fixed(v["loading_mpct"], 3)})  # fmt: skip
        elif v["kind"] == "tie_line":
            violations.append({"kind": "tie_line", "line": v["line"], "tie": v["tie"],
                               "p_kw": fixed(v["p_w"], 3)})  # fmt: skip
        else:
            violations.append({"kind": v["kind"]})
    return {
        "period": stored["period"],
        "model_sha256": stored["model_sha256"],
        "result": stored["result"],
        "curtailments": list(stored["curtailments"]),
        "violations": violations,
    }
