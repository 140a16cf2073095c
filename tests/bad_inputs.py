"""Generated bad orders for SubmitOrder, shared by the in-memory and the live bad-input tests.

Each ``BadInput`` is an argument the market must refuse and the words its
refusal must contain to name what is wrong: the field (``quantity_kwh``,
``offer``, ...) or, for a well-formed reference to something that does not
exist, the thing itself (``Agg9001``). The same generators run hundreds of
times against the MemoryLedger (fast) and a bounded sample against the live
network, so both layers are held to the same expectations.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from hypothesis import strategies as st
from vpp_market.units import format_yuan

FIELDS = ("agg", "period", "side", "quantity_kwh", "offer", "reserve")
NUMERIC = ("quantity_kwh", "offer", "reserve")
MAX_ARG_BYTES = 64 * 1024  # vpp_chaincode.ledger.MAX_ARG_BYTES, repeated to test it independently


@dataclass(frozen=True)
class OrderContext:
    """What a valid order of the caller looks like, and names known not to exist."""

    agg: int
    period: str  # an OPEN period
    sale: int  # s_t, micro-yuan/kWh
    purchase: int  # f_t
    unknown_agg: int = 9001
    unopened_period: str = "99999-23"

    def valid(self, side: str = "buy") -> dict[str, object]:
        """A valid order: prices inside [f_t, s_t], reserve on the right side of the offer."""
        mid = (self.sale + self.purchase) // 2
        return {
            "agg": f"Agg{self.agg}",
            "period": self.period,
            "side": side,
            "quantity_kwh": "12.5",
            "offer": format_yuan(mid),
            "reserve": format_yuan(self.sale if side == "buy" else self.purchase),
        }


@dataclass(frozen=True)
class BadInput:
    category: str
    text: str  # the SubmitOrder argument
    names: tuple[str, ...]  # the refusal must contain at least one of these
    code: str = "BAD_ARGUMENT"  # the refusal code (docs/chaincode-api.md)

    def named_in(self, message: str) -> bool:
        """One of ``names`` appears as a word (``agg`` in ``agg 'X'``, not in ``aggregator``)."""
        return any(
            re.search(rf"(?<![A-Za-z_]){re.escape(name)}(?![A-Za-z_])", message)
            for name in self.names
        )


def _with(ctx: OrderContext, side: str, /, **changes: object) -> str:
    return json.dumps({**ctx.valid(side), **changes})


def _decimal_text(whole: int, decimals: int, last: int) -> str:
    """A decimal whose last digit (non-zero, so it counts) is at position ``decimals``."""
    return f"{whole}.{'0' * (decimals - 1)}{last}"


wrong_json_types = st.sampled_from([None, True, False, [], {}, [1], {"x": 1}, ["12.5"]])
sides = st.sampled_from(["buy", "sell"])


@st.composite
def wrong_type(draw: st.DrawFn, ctx: OrderContext) -> BadInput:
    field = draw(st.sampled_from(FIELDS))
    value = draw(wrong_json_types)
    return BadInput("wrong type", _with(ctx, draw(sides), **{field: value}), (field,))


@st.composite
def not_a_decimal(draw: st.DrawFn, ctx: OrderContext) -> BadInput:
    field = draw(st.sampled_from(NUMERIC))
    value = draw(
        st.sampled_from(["", " ", "abc", "1e3", "1E-2", "0x10", "1,5", "+1", ".5", "5.", "1..2"])
        | st.sampled_from(["١٢", "１２", "1_000", "½", "12 kWh", "--1"])
    )
    return BadInput("not a decimal", _with(ctx, draw(sides), **{field: value}), (field,))


@st.composite
def not_finite(draw: st.DrawFn, ctx: OrderContext) -> BadInput:
    field = draw(st.sampled_from(NUMERIC))
    token = draw(st.sampled_from(["NaN", "Infinity", "-Infinity"]))
    if draw(st.booleans()):  # a JSON token (not valid JSON, but Python's parser knows it)
        text = _with(ctx, draw(sides), **{field: "@@"}).replace('"@@"', token)
    else:  # a string
        text = _with(ctx, draw(sides), **{field: draw(st.sampled_from([token, "nan", "inf"]))})
    return BadInput("NaN/inf", text, (field,))


@st.composite
def not_positive(draw: st.DrawFn, ctx: OrderContext) -> BadInput:
    value = draw(
        st.sampled_from(["0", "0.000", "-0", "-1", "-0.001", 0, -5])
        | st.integers(-(10**9), -1).map(str)
    )
    return BadInput("quantity <= 0", _with(ctx, draw(sides), quantity_kwh=value), ("quantity_kwh",))


@st.composite
def too_many_decimals(draw: st.DrawFn, ctx: OrderContext) -> BadInput:
    field = draw(st.sampled_from(NUMERIC))
    allowed = 3 if field == "quantity_kwh" else 6
    decimals = draw(st.integers(allowed + 1, allowed + 6))
    whole = draw(st.integers(1, 500)) if field == "quantity_kwh" else 0
    value = _decimal_text(whole, decimals, draw(st.integers(1, 9)))
    if draw(st.booleans()):  # as a JSON number: the decimal text is kept exactly
        text = _with(ctx, draw(sides), **{field: "@@"}).replace('"@@"', value)
    else:
        text = _with(ctx, draw(sides), **{field: value})
    return BadInput("too many decimals", text, (field,))


@st.composite
def outside_band(draw: st.DrawFn, ctx: OrderContext) -> BadInput:
    """An offer or reserve below f_t or above s_t (the other price valid)."""
    field = draw(st.sampled_from(["offer", "reserve"]))
    side = draw(sides)
    below = draw(st.booleans()) and ctx.purchase > 0
    if below:
        price = draw(st.integers(0, ctx.purchase - 1))
    else:
        price = draw(st.integers(ctx.sale + 1, ctx.sale * 10))
    order = ctx.valid(side)
    order[field] = format_yuan(price)
    if field == "offer":
        # Keep the reserve valid on its own and on the right side of the bad offer, so the
        # offer is what is wrong.
        order["reserve"] = format_yuan(ctx.sale if side == "buy" else ctx.purchase)
    return BadInput("price outside TOU band", json.dumps(order), (field,))


@st.composite
def reserve_wrong_side(draw: st.DrawFn, ctx: OrderContext) -> BadInput:
    """Both prices inside the band, the reserve on the wrong side of the offer."""
    low = draw(st.integers(ctx.purchase, ctx.sale - 1))
    high = draw(st.integers(low + 1, ctx.sale))
    side = draw(sides)
    offer, reserve = (low, high) if side == "sell" else (high, low)
    text = _with(ctx, side, offer=format_yuan(offer), reserve=format_yuan(reserve))
    return BadInput("reserve on the wrong side", text, ("reserve",))


@st.composite
def unknown_reference(draw: st.DrawFn, ctx: OrderContext) -> BadInput:
    choice = draw(st.sampled_from(["agg", "period", "bad period", "bad agg", "side"]))
    side = draw(sides)
    if choice == "agg":
        return BadInput(
            "unknown aggregator",
            _with(ctx, side, agg=f"Agg{ctx.unknown_agg}"),
            (f"Agg{ctx.unknown_agg}",),
            "NOT_REGISTERED",
        )
    if choice == "period":
        return BadInput(
            "unknown period",
            _with(ctx, side, period=ctx.unopened_period),
            ("period",),
            "PERIOD_NOT_FOUND",
        )
    if choice == "bad period":
        value = draw(st.sampled_from(["0-13", "1-25", "1-0", "100000-1", "x", "1-13-1", "13"]))
        return BadInput("malformed period", _with(ctx, side, period=value), ("period",))
    if choice == "bad agg":
        value = draw(st.sampled_from(["Agg0", "Agg10000", "AggX", "agg-3", "Agg03", "", "0"]))
        return BadInput("malformed aggregator", _with(ctx, side, agg=value), ("agg",))
    value = draw(st.sampled_from(["bid", "", "buyer", "s", "sell buy", "BUY!"]))
    return BadInput("bad side", _with(ctx, side, side=value), ("side",))


@st.composite
def wrong_shape(draw: st.DrawFn, ctx: OrderContext) -> BadInput:
    """Malformed JSON, not an object, unknown, missing or repeated fields, deep nesting."""
    valid = json.dumps(ctx.valid(draw(sides)))
    kind = draw(st.sampled_from(["truncated", "literal", "unknown", "missing", "twice", "deep"]))
    if kind == "truncated":
        cut = draw(st.integers(0, len(valid) - 1))
        return BadInput("malformed JSON", valid[:cut] or " ", ("order",))
    if kind == "literal":
        text = draw(st.sampled_from(["null", "[]", "42", '"order"', "{'agg': 3}", "{,}", "[{}]"]))
        return BadInput("malformed JSON", text, ("order",))
    if kind == "unknown":
        extra = draw(st.sampled_from(["price", "reputation", "Agg", "quantity", "x"]))
        return BadInput("unknown field", valid[:-1] + f', "{extra}": "1"}}', (extra,))
    if kind == "missing":
        field = draw(st.sampled_from(FIELDS))
        order = json.loads(valid)
        del order[field]
        return BadInput("missing field", json.dumps(order), (field,))
    if kind == "twice":
        field = draw(st.sampled_from(FIELDS))
        value = json.dumps(json.loads(valid)[field])
        return BadInput("field given twice", valid[:-1] + f', "{field}": {value}}}', (field,))
    depth = draw(st.integers(33, 20_000))
    return BadInput("nested too deep", "[" * depth + "]" * depth, ("order",))


@st.composite
def oversized(draw: st.DrawFn, ctx: OrderContext) -> BadInput:
    """Over the argument size limit, or a number longer than any market value."""
    if draw(st.booleans()):
        field = draw(st.sampled_from(NUMERIC))
        digits = draw(st.integers(41, 400))
        return BadInput("oversized number", _with(ctx, "buy", **{field: "1" * digits}), (field,))
    pad = draw(st.integers(MAX_ARG_BYTES + 1, 3 * MAX_ARG_BYTES))
    where = draw(st.sampled_from(["whitespace", "field"]))
    if where == "whitespace":  # still valid JSON: only the size is wrong
        text = json.dumps(ctx.valid()) + " " * pad
    else:
        text = _with(ctx, "buy", side="x" * pad)
    return BadInput("oversized payload", text, ("order",), "ARGUMENT_TOO_LARGE")


GENERATORS = {
    "wrong type": wrong_type,
    "not a decimal": not_a_decimal,
    "NaN/inf": not_finite,
    "quantity <= 0": not_positive,
    "too many decimals": too_many_decimals,
    "price outside TOU band": outside_band,
    "reserve on the wrong side": reserve_wrong_side,
    "unknown or malformed reference": unknown_reference,
    "wrong shape": wrong_shape,
    "oversized": oversized,
}


def bad_orders(ctx: OrderContext) -> st.SearchStrategy[BadInput]:
    """Every generator above, about equally often."""
    return st.one_of(*(make(ctx) for make in GENERATORS.values()))
