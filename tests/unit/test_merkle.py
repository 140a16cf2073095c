"""The bytes a device signs and the tree hashes: the fast path is the canonical JSON.

``merkle.leaf_bytes`` formats the usual reading directly (it runs once per
reading on each endorser); a signature made over one and checked over the
other must never differ, so every shape is compared with ``json.dumps``.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from vpp_market import merkle

names = st.one_of(
    st.from_regex(r"[A-Za-z0-9._-]{0,20}", fullmatch=True),
    st.text(max_size=12),  # quotes, backslashes, control and non-ASCII characters
    st.integers(),
    st.none(),
)
numbers = st.one_of(st.integers(min_value=-(2**70), max_value=2**70), st.booleans(), st.none(),
                    st.floats(allow_nan=False), st.text(max_size=4))  # fmt: skip


def canonical(channel: Any, reading: dict[str, Any]) -> bytes:
    document = {"channel": channel, **{f: reading.get(f) for f in merkle.LEAF_FIELDS}}
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@settings(max_examples=400, deadline=None)
@given(
    channel=names,
    meter=names,
    period=names,
    slot=st.one_of(st.none(), st.integers(0, 99), numbers),
    exported=numbers,
    imported=numbers,
)
def test_leaf_bytes_is_the_canonical_json(channel: Any, meter: Any, period: Any, slot: Any,
                                          exported: Any, imported: Any) -> None:  # fmt: skip
    reading = {"meter": meter, "period": period, "slot": slot, "exported_wh": exported,
               "imported_wh": imported, "signature": "ignored"}  # fmt: skip
    assert merkle.leaf_bytes(channel, reading) == canonical(channel, reading)


def test_a_usual_reading_and_an_hourly_one() -> None:
    reading = {"meter": "agg3-d0001", "period": "00002-13", "slot": 3, "exported_wh": 812,
               "imported_wh": 0}  # fmt: skip
    assert merkle.leaf_bytes("agg3", reading) == (
        b'{"channel":"agg3","exported_wh":812,"imported_wh":0,"meter":"agg3-d0001",'
        b'"period":"00002-13","slot":3}'
    )
    hourly = {**reading, "slot": None}
    assert merkle.leaf_bytes("agg3", hourly) == canonical("agg3", hourly)
