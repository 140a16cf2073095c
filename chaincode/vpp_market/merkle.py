"""A Merkle tree over a period's readings, so one reading can be proven part of a seal.

Leaf ``i`` is ``sha256(0x00 || leaf_bytes(reading))`` and a node is
``sha256(0x01 || left || right)`` (distinct prefixes: a node can never pass
for a leaf). On a level with an odd number of nodes the last one moves up
unchanged, so no leaf is duplicated and every tree has exactly one shape.
Leaves are in (meter, slot) order, hourly readings (slot ``null``) first.
Pure Python (part of the market library, so the client needs no chaincode
package), used by the chaincode (seal, signature check) and by ``vppctl
meter prove`` and the device simulator (what a device signs: ``leaf_bytes``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

EMPTY_ROOT = hashlib.sha256(b"").hexdigest()
LEAF_FIELDS = ("exported_wh", "imported_wh", "meter", "period", "slot")
_PLAIN = re.compile(r"[A-Za-z0-9._-]*")  # needs no JSON escaping


def leaf_document(channel: str, reading: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical fields of a reading that the tree commits to."""
    return {"channel": channel, **{f: reading.get(f) for f in LEAF_FIELDS}}


def leaf_bytes(channel: str, reading: Mapping[str, Any]) -> bytes:
    """Canonical JSON of the leaf document (sorted keys, no spaces, UTF-8): the bytes a
    device signs and the tree hashes; the same as the chaincode's ``to_json_bytes``.

    Every verified reading costs one of these on each endorser, so the usual
    shape (ids of plain ASCII name characters, integer energy and slot) is
    formatted directly; anything else goes through ``json.dumps``. Both give
    the same bytes (tests/unit/test_merkle.py checks it).
    """
    meter, period, slot = reading.get("meter"), reading.get("period"), reading.get("slot")
    exported, imported = reading.get("exported_wh"), reading.get("imported_wh")
    if (
        type(exported) is int
        and type(imported) is int
        and (slot is None or type(slot) is int)
        and type(channel) is str
        and type(meter) is str
        and type(period) is str
        and _PLAIN.fullmatch(channel)
        and _PLAIN.fullmatch(meter)
        and _PLAIN.fullmatch(period)
    ):
        return (
            f'{{"channel":"{channel}","exported_wh":{exported},"imported_wh":{imported},'
            f'"meter":"{meter}","period":"{period}","slot":{"null" if slot is None else slot}}}'
        ).encode()
    document = leaf_document(channel, reading)
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def leaf_hash(channel: str, reading: Mapping[str, Any]) -> bytes:
    return hashlib.sha256(b"\x00" + leaf_bytes(channel, reading)).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def sort_key(reading: Mapping[str, Any]) -> tuple[str, int]:
    slot = reading.get("slot")
    return reading["meter"], -1 if slot is None else int(slot)


def ordered(readings: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted(readings, key=sort_key)


def root(channel: str, readings: Sequence[Mapping[str, Any]]) -> str:
    """Hex root over ``readings`` (any order in; sorted here)."""
    level = [leaf_hash(channel, r) for r in ordered(readings)]
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        nxt = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0].hex()


def proof(channel: str, readings: Sequence[Mapping[str, Any]], index: int) -> list[list[str]]:
    """Sibling path of leaf ``index`` (in sorted order): ``[["L"|"R", hex], ...]`` bottom up."""
    level = [leaf_hash(channel, r) for r in ordered(readings)]
    if not 0 <= index < len(level):
        raise IndexError(f"leaf {index} is not in 0..{len(level) - 1}")
    path: list[list[str]] = []
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):
            path.append(["L" if sibling < index else "R", level[sibling].hex()])
        nxt = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level, index = nxt, index // 2
    return path


def verify(channel: str, reading: Mapping[str, Any], path: Sequence[Sequence[str]], root_hex: str
           ) -> bool:  # fmt: skip
    """Does ``reading`` with sibling ``path`` hash up to ``root_hex``?"""
    node = leaf_hash(channel, reading)
    for side, sibling_hex in path:
        sibling = bytes.fromhex(sibling_hex)
        node = _node(sibling, node) if side == "L" else _node(node, sibling)
    return node.hex() == root_hex
