"""Generate the shipped grid model from pandapower's IEEE 33-bus feeder (``case33bw``).

    python -m vpp_grid.build [--out FILE]     # default: the packaged model file

Why this feeder: the case study has six aggregators of about 1 MW each on
"an IEEE distribution feeder"; the 33-bus Baran & Wu system is the standard
feeder of that size (12.66 kV, 3.715 MW / 2.3 Mvar peak load, 32 radial
branches) and the one most VPP and distribution-market studies use, so a
reader can compare voltages with the literature. The 69-bus feeder would
only add buses; CIGRE MV (15 buses, 20 kV) is too stiff for 1 MW trades to
show anything.

What this script decides (docs/grid-check.md explains each choice):

- regions: the main feeder is cut into six consecutive sections, each with the
  laterals that hang off it, so that the regions form the chain R1-...-R6 of
  ``paper_case/tie_lines.csv`` and the five tie-lines are real feeder
  branches; R6 is the far end of the feeder (the weak region);
- connection bus of a region: its electrically farthest bus from the
  substation, where a transfer moves voltage most (a conservative placement);
- base load: 50 % of the feeder's peak load (the hours the paper studies are
  not the peak) with the substation held at 1.02 p.u. (a tap-changer set
  point), which keeps the base case inside 0.95-1.05 p.u.;
- ratings: case33bw carries no thermal ratings (99999 kA), so every branch
  gets the paper's 10 MW tie-line limit as 10 MVA at 12.66 kV (0.456 kA);
- the five normally open tie switches of the case stay open (radial feeder).

The output is our own JSON format (``vpp_grid.model``), decimal strings only,
so its bytes, and its SHA-256, are reproducible.
"""

from __future__ import annotations

import argparse
import json
import math
from decimal import Decimal
from pathlib import Path

from vpp_grid.model import FORMAT, default_model_path, parse

# Bus numbers are pandapower's case33bw indices (0 = substation).
REGIONS: dict[str, tuple[list[int], int]] = {
    # region: (buses, connection bus)
    "R1": ([0, 1, 18, 19, 20, 21], 21),
    "R2": ([2, 3, 4, 22, 23, 24], 24),
    "R3": ([5, 25, 26, 27, 28, 29, 30, 31, 32], 32),
    "R4": ([6, 7, 8, 9], 9),
    "R5": ([10, 11, 12, 13], 13),
    "R6": ([14, 15, 16, 17], 17),
}
# The feeder branch (from_bus, to_bus) that joins two adjacent regions.
TIE_BRANCHES = {("R1", "R2"): (1, 2), ("R2", "R3"): (4, 5), ("R3", "R4"): (5, 6),
                ("R4", "R5"): (9, 10), ("R5", "R6"): (13, 14)}  # fmt: skip
TIE_LIMIT_KW = 10_000  # the paper's 10 MW
BASE_LOAD_SCALE = Decimal("0.5")
SLACK_VM_PU = Decimal("1.02")
LIMITS = {"vm_min_pu": "0.95", "vm_max_pu": "1.05", "max_loading_percent": "100"}


def _text(value: float, places: int) -> str:
    """A pandapower float as a decimal string with ``places`` decimals (trailing zeros cut)."""
    number = Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-places))
    text = format(number.normalize(), "f")
    return "0" if text in ("-0", "") else text


def build() -> bytes:
    """The model file's bytes."""
    import pandapower.networks as pn

    net = pn.case33bw()
    vn_kv = float(net.bus.vn_kv.iloc[0])
    region_of = {b: r for r, (buses, _) in REGIONS.items() for b in buses}
    load_p = net.load.groupby("bus").p_mw.sum()
    load_q = net.load.groupby("bus").q_mvar.sum()
    buses = []
    for b in range(len(net.bus)):
        p_kw = Decimal(_text(load_p.get(b, 0.0) * 1000, 3)) * BASE_LOAD_SCALE
        q_kvar = Decimal(_text(load_q.get(b, 0.0) * 1000, 3)) * BASE_LOAD_SCALE
        buses.append(
            {
                "bus": b,
                "region": region_of[b],
                "p_kw": format(p_kw.normalize(), "f"),
                "q_kvar": format(q_kvar.normalize(), "f"),
            }
        )
    rating_ka = _text(TIE_LIMIT_KW / 1000 / (math.sqrt(3) * vn_kv), 3)
    lines = []
    index_of = {}
    for idx, row in net.line[net.line.in_service].iterrows():
        index_of[(int(row.from_bus), int(row.to_bus))] = int(idx)
        lines.append(
            {
                "line": int(idx),
                "from_bus": int(row.from_bus),
                "to_bus": int(row.to_bus),
                "r_ohm": _text(row.r_ohm_per_km * row.length_km, 4),
                "x_ohm": _text(row.x_ohm_per_km * row.length_km, 4),
                "max_i_ka": rating_ka,
            }
        )
    document = {
        "format": FORMAT,
        "name": "IEEE 33-bus feeder in six VPP regions",
        "source": "pandapower networks.case33bw, by vpp_grid.build",
        "vn_kv": _text(vn_kv, 3),
        "slack": {"bus": int(net.ext_grid.bus.iloc[0]), "vm_pu": str(SLACK_VM_PU)},
        "base_load_scale": str(BASE_LOAD_SCALE),
        "limits": LIMITS,
        "trade_power_factor": "1",
        "regions": [
            {"region": r, "connection_bus": conn, "buses": sorted(buses_)}
            for r, (buses_, conn) in REGIONS.items()
        ],
        "tie_lines": [
            {"from_region": a, "to_region": b, "line": index_of[branch], "limit_kw": TIE_LIMIT_KW}
            for (a, b), branch in TIE_BRANCHES.items()
        ],
        "buses": buses,
        "lines": lines,
    }
    data = _dumps(document).encode()
    parse(data, origin="generated model")  # never write a file we could not load
    return data


def _dumps(document: dict[str, object]) -> str:
    """One field per line and one list item per line: small, diffable, stable bytes."""
    lines = []
    for name, value in document.items():
        if isinstance(value, list):
            items = ",\n".join(f"  {json.dumps(item)}" for item in value)
            lines.append(f" {json.dumps(name)}: [\n{items}\n ]")
        else:
            lines.append(f" {json.dumps(name)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=default_model_path(), help="model file")
    args = parser.parse_args(argv)
    data = build()
    args.out.write_bytes(data)
    model = parse(data)
    print(f"{args.out}: {model.name}, {len(model.buses)} buses, sha256 {model.sha256}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
