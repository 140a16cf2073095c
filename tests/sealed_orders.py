"""Sealed orders in the in-memory test harnesses: an order argument becomes transient data.

Orders are sealed (chaincode/vpp_chaincode/sealed.py): SubmitOrder and
SubmitOrders take no arguments, the order JSON travels in the proposal's
transient data with a client-chosen salt. Most unit tests describe an order
as the JSON text they used to pass as the argument; ``proposal`` turns such
a call into what a client sends (no arguments, transient ``order`` /
``orders`` with a salt added to every object that has none), exactly as
vppctl does (``vppctl.sealing``). Text that is not a JSON object or list of
objects is passed through unchanged as the transient value, so bad-input
tests still reach the chaincode's own parser.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

TRANSIENT_KEYS = {"SubmitOrder": "order", "SubmitOrders": "orders"}


def salt_for(text: str) -> str:
    """A salt fixed by the order's text, so tests are repeatable."""
    return hashlib.sha256(b"test-salt:" + text.encode("utf-8", "surrogatepass")).hexdigest()


def _insert_salts(text: str, depth_of_orders: int) -> str:
    """Adds ``"salt": ...,`` after every ``{`` opening an order object, textually.

    Textual, so the order keeps exactly what the test wrote (a field given
    twice, a number's own spelling) for the chaincode's parser to judge.
    """
    out, depth, in_string, escaped, index = [], 0, False, False, 0
    for ch in text:
        out.append(ch)
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"':
            in_string = True
        elif ch in "[{":
            if ch == "{" and depth == depth_of_orders:
                salt = salt_for(f"{text}#{index}")
                index += 1
                out.append(f'"salt": "{salt}", ')
            depth += 1
        elif ch in "]}":
            depth -= 1
    return "".join(out)


# The chaincode's size limit of an argument, and of a transient order (ledger.MAX_ARG_BYTES).
MAX_BYTES = 64 * 1024


def seal_text(function: str, text: str) -> str:
    """The transient value for ``text``: each order object gets a salt if it has none.

    A text that would exceed the size limit with the salt is left as it is: the
    chaincode refuses it on its size, as it refused the argument before.
    """
    if len(text.encode("utf-8", "surrogatepass")) + 100 * max(1, text.count("{")) > MAX_BYTES:
        return text
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return text
    if function == "SubmitOrder" and isinstance(data, dict) and "salt" not in data:
        return _insert_salts(text, 0) if data else json.dumps({"salt": salt_for(text)})
    if (
        function == "SubmitOrders"
        and isinstance(data, list)
        and all(not isinstance(o, dict) or (o and "salt" not in o) for o in data)
    ):
        return _insert_salts(text, 1)
    return text


def proposal(
    function: str, args: tuple[str, ...] | list[str], transient: dict[str, bytes] | None = None
) -> tuple[list[str], dict[str, bytes]]:
    """(arguments, transient) as a client sends ``function(*args)`` under sealed orders."""
    args = list(args)
    key = TRANSIENT_KEYS.get(function)
    if key is None or len(args) != 1 or transient:
        return args, dict(transient or {})
    return [], {key: seal_text(function, args[0]).encode("utf-8", "surrogatepass")}


def market_ledger(channel_id: str = "vpp-main") -> Any:
    """A MemoryLedger with the market's collections as the chaincode definition has them."""
    from vpp_chaincode.sealed import ORDER_BOOK, ORDER_BOOK_MEMBERS
    from vpp_shim.testing import Collection, MemoryLedger

    rules = {ORDER_BOOK: Collection(frozenset(ORDER_BOOK_MEMBERS), member_only_read=True)}
    return MemoryLedger(channel_id=channel_id, collections=rules)


def invoke(ledger: Any, contract: Any, caller: Any, function: str, *args: str, **kw: Any) -> bytes:
    """``ledger.invoke`` with an order argument sent as a client sends it (``proposal``)."""
    sent, transient = proposal(function, args, kw.pop("transient", None))
    return ledger.invoke(contract, caller, function, *sent, transient=transient, **kw)
