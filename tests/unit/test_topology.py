"""Tie-line tree: paths, signed net flows, headroom, and refusing what is not a tree."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vpp_market.topology import TieLine, Topology, TopologyError


def chain(limit_w: int = 10, n: int = 4) -> Topology:
    return Topology(TieLine(f"R{i}", f"R{i + 1}", limit_w) for i in range(1, n))


def test_path_and_headroom_on_a_chain() -> None:
    topo = chain()
    assert topo.path("R1", "R4") == ("R1", "R2", "R3", "R4")
    assert topo.path("R4", "R2") == ("R4", "R3", "R2")
    assert topo.path("R3", "R3") == ("R3",)
    assert topo.headroom("R1", "R4") == 10
    assert topo.headroom("R2", "R2") is None  # no line used: unlimited


def test_flows_are_signed_and_opposite_trades_cancel() -> None:
    topo = chain()
    topo.apply("R1", "R3", 7)
    assert topo.flow("R1", "R2") == 7
    assert topo.flow("R2", "R1") == -7
    assert topo.flow("R3", "R4") == 0
    assert topo.headroom("R1", "R4") == 3
    assert topo.headroom("R2", "R4") == 3  # R2-R3 carries 7 of 10
    assert topo.headroom("R3", "R1") == 17  # against the flow: back to -10
    assert topo.headroom("R4", "R1") == 10  # R4-R3 is still empty
    topo.apply("R3", "R1", 17)
    assert topo.flow("R1", "R2") == -10
    assert topo.headroom("R2", "R1") == 0
    assert topo.headroom("R1", "R2") == 20


def test_apply_refuses_more_than_the_headroom_and_negative_flow() -> None:
    topo = chain()
    with pytest.raises(TopologyError, match="exceeds the headroom 10"):
        topo.apply("R1", "R4", 11)
    with pytest.raises(TopologyError, match="negative"):
        topo.apply("R1", "R4", -1)
    assert topo.flow("R1", "R2") == 0  # nothing half-applied


def test_branching_tree_paths() -> None:
    #     A
    #    / \
    #   B   C
    #  / \    \
    # D   E    F
    topo = Topology(
        [
            TieLine("B", "A", 5),
            TieLine("A", "C", 5),
            TieLine("D", "B", 5),
            TieLine("B", "E", 5),
            TieLine("F", "C", 5),
        ]
    )
    assert topo.path("D", "F") == ("D", "B", "A", "C", "F")
    assert topo.path("E", "D") == ("E", "B", "D")
    topo.apply("D", "F", 4)
    assert topo.flow("A", "C") == 4
    assert topo.flow("F", "C") == -4
    assert topo.headroom("E", "F") == 1
    assert topo.headroom("F", "E") == 5  # B-E is still empty
    assert topo.headroom("F", "D") == 9  # against the flow all the way


def test_copy_is_independent() -> None:
    topo = chain()
    twin = topo.copy()
    twin.apply("R1", "R2", 5)
    assert topo.flow("R1", "R2") == 0
    assert twin.flow("R1", "R2") == 5


@pytest.mark.parametrize(
    ("lines", "match", "line"),
    [
        ([TieLine("A", "B", 1), TieLine("B", "C", 1), TieLine("C", "A", 1)], "closes a loop", 2),
        ([TieLine("A", "B", 1), TieLine("B", "A", 1)], "listed twice", 1),
        ([TieLine("A", "A", 1)], "to itself", 0),
        ([TieLine("A", "B", -1)], "negative", 0),
        ([TieLine("A", "B", 1), TieLine("C", "D", 1)], "not all connected: A B | C D", None),
    ],
)
def test_not_a_tree_is_refused(lines: list[TieLine], match: str, line: int | None) -> None:
    with pytest.raises(TopologyError, match=match) as info:
        Topology(lines)
    assert info.value.line == line


def test_unknown_region_and_isolated_region() -> None:
    with pytest.raises(TopologyError, match="'R9' is not in the topology"):
        chain().headroom("R1", "R9")
    with pytest.raises(TopologyError, match="not all connected"):
        Topology([TieLine("A", "B", 1)], regions=["Z"])
    single = Topology([], regions=["Only"])
    assert single.headroom("Only", "Only") is None


@st.composite
def trees(draw: st.DrawFn) -> tuple[Topology, list[tuple[int, int]]]:
    n = draw(st.integers(min_value=1, max_value=7))
    parents = [draw(st.integers(min_value=0, max_value=i - 1)) for i in range(1, n)]
    lines = []
    for child, parent in enumerate(parents, start=1):
        a, b = (f"R{child}", f"R{parent}") if draw(st.booleans()) else (f"R{parent}", f"R{child}")
        lines.append(TieLine(a, b, draw(st.integers(min_value=0, max_value=20))))
    edges = [(child, parent) for child, parent in enumerate(parents, start=1)]
    return Topology(lines, regions=["R0"]), edges


@settings(deadline=None)  # no timing assertion: the shared CI machine is often loaded
@given(trees(), st.data())
def test_paths_are_simple_and_flows_stay_within_limits(tree, data) -> None:  # type: ignore[no-untyped-def]
    topo, edges = tree
    regions = sorted(topo.regions)
    adjacent = {frozenset((f"R{a}", f"R{b}")) for a, b in edges}
    for _ in range(10):
        src = data.draw(st.sampled_from(regions))
        dst = data.draw(st.sampled_from(regions))
        path = topo.path(src, dst)
        assert path[0] == src and path[-1] == dst
        assert len(set(path)) == len(path)
        assert all(frozenset(pair) in adjacent for pair in zip(path, path[1:], strict=False))
        room = topo.headroom(src, dst)
        if src == dst:
            assert room is None
            continue
        assert room is not None and room >= 0
        q = data.draw(st.integers(min_value=0, max_value=room))
        topo.apply(src, dst, q)
        for line in topo.lines:
            assert abs(topo.flow(line.a, line.b)) <= line.limit_w
        assert topo.headroom(src, dst) == room - q  # every line of the path took q
