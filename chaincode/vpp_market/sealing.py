"""Sealed orders: the canonical bytes of an order and the salted hash the public ledger holds.

The rules (market-rules.md, "Trust rules", sealed orders): an order's side,
quantity and prices are read only by its aggregator and the clearing
operators (VPPO, Grid); everyone else sees, per order, a salted SHA-256 of
its canonical bytes, so that anyone later shown the order and its salt can
check it against the ledger. This module is that check's single definition,
shared by the chaincode (which writes the hash) and the clients (which
verify it), so both compute the very same bytes.

Why a salt: an order has few plausible values (a side, a quantity in Wh, two
prices in micro-yuan within the day's TOU band), so an unsalted hash could
be inverted by trying them all. 32 random bytes chosen by the submitting
client make that hopeless; the chaincode never draws randomness itself
(every endorser must compute the same hash), it takes the client's salt.

    canonical = {"agg","offer","period","quantity_wh","reserve","side"} as JSON,
                keys sorted, no spaces, integers in fixed-point units
    hash      = SHA-256(salt bytes || canonical), lower-case hex
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from typing import Any

SALT_BYTES = 32
SALT_HEX_LENGTH = 2 * SALT_BYTES
# The fields an order's hash covers (the sealed ones and where the order belongs).
CANONICAL_FIELDS = ("agg", "offer", "period", "quantity_wh", "reserve", "side")


def new_salt() -> str:
    """A fresh salt for one order (client side only: the chaincode never draws randomness)."""
    return secrets.token_hex(SALT_BYTES)


def parse_salt(value: Any, field: str = "salt") -> str:
    """The salt as 64 lower-case hex digits; ValueError naming ``field`` otherwise."""
    if not isinstance(value, str):
        raise ValueError(f"{field} {value!r}: is not a string of {SALT_HEX_LENGTH} hex digits")
    text = value.strip(" \t").lower()
    if len(text) != SALT_HEX_LENGTH or not all(c in "0123456789abcdef" for c in text):
        raise ValueError(
            f"{field} {value[:80]!r}: is not {SALT_HEX_LENGTH} hex digits ({SALT_BYTES} bytes)"
        )
    return text


def canonical_order(order: Mapping[str, Any]) -> bytes:
    """The bytes an order's hash covers: its CANONICAL_FIELDS in fixed-point units.

    ``order`` is a stored order (``agg`` a number, ``period`` ``DDDDD-TT``,
    ``quantity_wh``, ``offer``, ``reserve`` integers, ``side`` sell|buy);
    other fields (salt, submitter, ...) are ignored.
    """
    missing = [f for f in CANONICAL_FIELDS if f not in order]
    if missing:
        raise ValueError(f"order: field {missing[0]!r} is missing (a sealed order has all of "
                         f"{', '.join(CANONICAL_FIELDS)})")  # fmt: skip
    values = {f: order[f] for f in CANONICAL_FIELDS}
    for name in ("agg", "offer", "quantity_wh", "reserve"):
        if not isinstance(values[name], int) or isinstance(values[name], bool):
            raise ValueError(f"order: {name} {values[name]!r}: is not an integer")
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def order_hash(order: Mapping[str, Any], salt: str) -> str:
    """SHA-256(salt || canonical order), hex: what the public ledger holds for the order."""
    digest = hashlib.sha256(bytes.fromhex(parse_salt(salt)) + canonical_order(order))
    return digest.hexdigest()


def matches(order: Mapping[str, Any], salt: str, expected_hash: str) -> bool:
    """Whether ``order`` with ``salt`` is the order hashed as ``expected_hash``."""
    try:
        actual = order_hash(order, salt)
    except ValueError:
        return False
    return hmac.compare_digest(actual, str(expected_hash).lower())
