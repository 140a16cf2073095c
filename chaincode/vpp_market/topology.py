"""Tie-lines between regions and the security check on them.

The regions form a tree of tie-lines (market-rules.md, "Security check"), so
between two regions there is exactly one path and a trade's flow is not split.
Over an hourly period a trade of q Wh is a flow of q W along that path. Each
line keeps a signed net flow (positive from its ``a`` end to its ``b`` end);
opposite trades cancel, and every line must stay within +-limit.

A tree is checked, not assumed: with a cycle the path (and so the flow) would
be ambiguous, and with a disconnected region no trade could reach it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class TopologyError(ValueError):
    """The tie-lines do not form a tree, or a region or flow is not valid for them."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        self.reason = reason
        self.line = line  # 0-based index of the tie-line to blame, when there is one
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class TieLine:
    """A tie-line between regions ``a`` and ``b`` carrying at most ``limit_w`` W either way."""

    a: str
    b: str
    limit_w: int


# One step of a path: (line index, +1 if the path runs from the line's a to b, else -1).
Step = tuple[int, int]


class Topology:
    """A tree of tie-lines with the net flow on each; ``apply`` records a trade's flow."""

    def __init__(self, lines: Iterable[TieLine], regions: Iterable[str] = ()) -> None:
        self.lines: tuple[TieLine, ...] = tuple(lines)
        names = list(dict.fromkeys([*regions, *(r for ln in self.lines for r in (ln.a, ln.b))]))
        self.regions: frozenset[str] = frozenset(names)
        self._flow: list[int] = [0] * len(self.lines)
        self._paths: dict[tuple[str, str], tuple[Step, ...]] = {}
        self._index: dict[frozenset[str], int] = {}
        self._check_lines()
        self._parent: dict[str, Step | None] = {}
        self._depth: dict[str, int] = {}
        self._root_tree(names)

    def _check_lines(self) -> None:
        # Union-find over regions: the first line joining two already joined regions closes a cycle.
        leader = {region: region for region in self.regions}

        def find(region: str) -> str:
            while leader[region] != region:
                leader[region] = leader[leader[region]]
                region = leader[region]
            return region

        for index, line in enumerate(self.lines):
            if not isinstance(line.limit_w, int) or isinstance(line.limit_w, bool):
                raise TopologyError(f"tie-line {line.a}-{line.b}: limit is not an integer", index)
            if line.limit_w < 0:
                raise TopologyError(f"tie-line {line.a}-{line.b}: limit is negative", index)
            if line.a == line.b:
                raise TopologyError(
                    f"tie-line {line.a}-{line.b} connects a region to itself", index
                )
            key = frozenset((line.a, line.b))
            if key in self._index:
                raise TopologyError(
                    f"tie-line {line.a}-{line.b} is listed twice (regions must form a tree)", index
                )
            root_a, root_b = find(line.a), find(line.b)
            if root_a == root_b:
                raise TopologyError(
                    f"tie-line {line.a}-{line.b} closes a loop (regions must form a tree)", index
                )
            leader[root_a] = root_b
            self._index[key] = index
        groups: dict[str, list[str]] = {}
        for region in sorted(self.regions):
            groups.setdefault(find(region), []).append(region)
        if len(groups) > 1:
            parts = sorted(" ".join(members) for members in groups.values())
            raise TopologyError("regions are not all connected by tie-lines: " + " | ".join(parts))

    def _root_tree(self, names: list[str]) -> None:
        # Parent pointers and depths from the first region, for paths through the common ancestor.
        if not names:
            return
        neighbours: dict[str, list[tuple[str, Step]]] = {name: [] for name in names}
        for index, line in enumerate(self.lines):
            # (neighbour, the step that climbs from that neighbour up to this region)
            neighbours[line.a].append((line.b, (index, -1)))  # b climbing to a runs b->a
            neighbours[line.b].append((line.a, (index, +1)))  # a climbing to b runs a->b
        root = names[0]
        self._parent[root] = None
        self._depth[root] = 0
        stack = [root]
        while stack:
            region = stack.pop()
            for child, step_to_parent in neighbours[region]:
                if child not in self._depth:
                    self._parent[child] = step_to_parent
                    self._depth[child] = self._depth[region] + 1
                    stack.append(child)

    def copy(self) -> Topology:
        """An independent copy with the same lines and current flows."""
        twin = Topology.__new__(Topology)
        twin.lines = self.lines
        twin.regions = self.regions
        twin._flow = list(self._flow)
        twin._paths = self._paths  # paths never change, so the cache is shared
        twin._index = self._index
        twin._parent = self._parent
        twin._depth = self._depth
        return twin

    def _check_region(self, region: str) -> None:
        if region not in self.regions:
            raise TopologyError(f"region {region!r} is not in the topology")

    def steps(self, src: str, dst: str) -> tuple[Step, ...]:
        """The lines from ``src`` to ``dst`` in order, each with the direction the path runs."""
        key = (src, dst)
        cached = self._paths.get(key)
        if cached is not None:
            return cached
        self._check_region(src)
        self._check_region(dst)
        up: list[Step] = []  # from src climbing to the common ancestor
        down: list[Step] = []  # from dst climbing, reversed afterwards
        a, b = src, dst
        while self._depth[a] > self._depth[b]:
            a = self._climb(a, up)
        while self._depth[b] > self._depth[a]:
            b = self._climb(b, down)
        while a != b:
            a = self._climb(a, up)
            b = self._climb(b, down)
        path = tuple(up) + tuple((index, -direction) for index, direction in reversed(down))
        self._paths[key] = path
        return path

    def _climb(self, region: str, into: list[Step]) -> str:
        step = self._parent[region]
        assert step is not None  # only the root has no parent, and it is never below another
        into.append(step)
        line = self.lines[step[0]]
        return line.b if step[1] > 0 else line.a

    def path(self, src: str, dst: str) -> tuple[str, ...]:
        """The regions from ``src`` to ``dst``, both included."""
        regions = [src]
        for index, direction in self.steps(src, dst):
            line = self.lines[index]
            regions.append(line.b if direction > 0 else line.a)
        return tuple(regions)

    def flow(self, a: str, b: str) -> int:
        """Net flow in W on the tie-line between ``a`` and ``b``, positive from a to b."""
        index = self._index.get(frozenset((a, b)))
        if index is None:
            raise TopologyError(f"no tie-line between {a!r} and {b!r}")
        return self._flow[index] if self.lines[index].a == a else -self._flow[index]

    def headroom(self, src: str, dst: str) -> int | None:
        """The largest q (Wh, i.e. W for an hour) from src to dst keeping every line within limit.

        None means unlimited: src and dst are the same region, so no line is used.
        """
        best: int | None = None
        for index, direction in self.steps(src, dst):
            room = self.lines[index].limit_w - direction * self._flow[index]
            if best is None or room < best:
                best = room
        return None if best is None else max(best, 0)

    def apply(self, src: str, dst: str, quantity: int) -> None:
        """Record a trade of ``quantity`` Wh from src to dst; refuses one beyond the headroom."""
        if quantity < 0:
            raise TopologyError(f"flow {quantity} from {src} to {dst} is negative")
        room = self.headroom(src, dst)
        if room is not None and quantity > room:
            raise TopologyError(
                f"flow {quantity} W from {src} to {dst} exceeds the headroom {room} W"
            )
        for index, direction in self.steps(src, dst):
            self._flow[index] += direction * quantity
