"""vpp_gateway's layering: no import circle, and the leaf objects never reach up.

Every import counts, also ones inside functions or under TYPE_CHECKING: a
circle hidden that way still ties the modules together.
"""

from __future__ import annotations

import ast
from pathlib import Path

import vpp_gateway

PACKAGE = Path(vpp_gateway.__file__).parent
# Modules the transaction's objects live in, and what they may not import.
LEAVES = ("client", "transaction", "events")
UPPER = ("gateway",)


def imports() -> dict[str, set[str]]:
    """{module: vpp_gateway modules it imports}, from the source."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.glob("*.py"):
        name = path.stem
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module:
                parts = node.module.split(".")
                if parts[0] == "vpp_gateway" and len(parts) > 1:
                    found.add(parts[1])
                elif parts == ["vpp_gateway"]:
                    found.update(a.name for a in node.names)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    parts = alias.name.split(".")
                    if parts[0] == "vpp_gateway" and len(parts) > 1:
                        found.add(parts[1])
        graph[name] = {m for m in found if (PACKAGE / f"{m}.py").exists()} - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_checker_finds_a_circle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle_in_vpp_gateway() -> None:
    graph = imports()
    assert {"gateway", "transaction", "events", "client"} <= set(graph)
    assert find_cycle(graph) is None


def test_leaf_objects_do_not_reach_back_into_gateway() -> None:
    graph = imports()
    for leaf in LEAVES:
        assert not graph[leaf] & set(UPPER), f"{leaf} imports {graph[leaf] & set(UPPER)}"
    assert "gateway" not in graph["client"] | graph["transaction"] | graph["events"]


def test_names_every_layer_shares_are_defined_once() -> None:
    """The CA attribute OID and the attribute names the chaincode reads (vpp_shim.attributes) are
    written nowhere else: network enrolment and vppctl's identity commands import them."""
    repo = PACKAGE.parents[1]
    literals = ('"1.2.3.4.5.6.7.8.1"', '"vpp.role"', '"vpp.agg"', '"vpp.meter"')
    found: dict[str, list[str]] = {text: [] for text in literals}
    for folder in ("chaincode", "client", "cli", "network"):
        for path in (repo / folder).rglob("*.py"):
            source = path.read_text()
            for text in literals:
                if text in source:
                    found[text].append(str(path.relative_to(repo)))
    assert found == {text: ["chaincode/vpp_shim/attributes.py"] for text in literals}
