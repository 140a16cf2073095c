"""Every machine-readable code a chaincode refusal can carry: the one list callers branch on.

A refusal is ``ChaincodeError(Code.X, "human message")``. On the wire the
chaincode's response message reads ``X: human message`` (status 500), which
is what a Fabric peer passes through its Gateway error path unchanged
(``chaincode response 500, X: human message``); vpp_gateway splits it back
into ``err.code`` and ``err.chaincode_message``. Programs branch on the code,
never on the message: messages are for people and may be reworded at any
time, codes are a contract (docs/chaincode-api.md lists them).

Adding a refusal: pick the closest existing code; add a new one only when a
caller would react to it differently, and list it in docs/chaincode-api.md.
A code is upper case letters, digits and underscores (``CODE_PATTERN``) so
that the ``CODE: message`` form can be split without ambiguity.

This module imports nothing of the shim, so clients (vppctl) can import it
without pulling in a chaincode.
"""

from __future__ import annotations

import re
from enum import StrEnum

CODE_PATTERN = re.compile(r"[A-Z][A-Z0-9_]*[A-Z0-9]")


class Code(StrEnum):
    """Refusal codes; a ``StrEnum``, so ``err.code == Code.PERIOD_NOT_OPEN`` works on strings."""

    # --- the call itself -----------------------------------------------------------------
    UNKNOWN_FUNCTION = "UNKNOWN_FUNCTION"  # no such transaction in this chaincode
    WRONG_ARGUMENT_COUNT = "WRONG_ARGUMENT_COUNT"  # too few or too many arguments
    BAD_ARGUMENT = "BAD_ARGUMENT"  # an argument is malformed or out of range (message names it)
    ARGUMENT_TOO_LARGE = "ARGUMENT_TOO_LARGE"  # an argument exceeds the size limit
    WRONG_CHANNEL = "WRONG_CHANNEL"  # the chaincode does not serve this channel
    PEER_REFUSED = "PEER_REFUSED"  # the peer refused one of the chaincode's ledger requests
    INTERNAL_ERROR = "INTERNAL_ERROR"  # a bug or a shim failure; details only in the chaincode log
    CLOCK_SKEW = "CLOCK_SKEW"  # the proposal's timestamp is too far from the endorser's clock

    # --- who is calling --------------------------------------------------------------------
    NOT_AUTHORIZED = "NOT_AUTHORIZED"  # the caller's organisation or role may not do this
    NOT_A_PARTY = "NOT_A_PARTY"  # the caller is not a party of the contract it signs

    # --- things that must (not) exist -------------------------------------------------------
    NOT_FOUND = "NOT_FOUND"  # the record asked for does not exist (contract, ping...)
    NOT_REGISTERED = "NOT_REGISTERED"  # the aggregator or meter is not registered
    ALREADY_REGISTERED = "ALREADY_REGISTERED"  # aggregator, MSP, meter or resource taken
    NO_ORDER = "NO_ORDER"  # the aggregator has no order in the period
    REGION_NOT_IN_TOPOLOGY = "REGION_NOT_IN_TOPOLOGY"  # a region off the loaded tie-line tree
    # --- sealed orders (private data) -------------------------------------------------------
    ORDER_DATA_MISSING = "ORDER_DATA_MISSING"  # this peer lacks a sealed order's private data
    ORDER_HASH_MISMATCH = "ORDER_HASH_MISMATCH"  # a sealed order differs from its ledger hash
    NO_CAPACITY = "NO_CAPACITY"  # no certified capacity synced to vpp-main: no orders yet

    # --- the period's life cycle -------------------------------------------------------------
    PERIOD_NOT_FOUND = "PERIOD_NOT_FOUND"  # the period has never been opened
    PERIOD_EXISTS = "PERIOD_EXISTS"  # OpenPeriod: the period is already open or past
    PERIOD_NOT_OPEN = "PERIOD_NOT_OPEN"  # orders: the gate is closed
    PERIOD_WRONG_STATE = "PERIOD_WRONG_STATE"  # the period is not in the state the call needs
    DAY_CLOSED = "DAY_CLOSED"  # the day is closed: nothing of it changes any more
    NOT_READY = "NOT_READY"  # prerequisites missing (signatures, deliveries, settlements)
    TOO_EARLY = "TOO_EARLY"  # a deadline (ledger time) has not passed yet

    # --- contracts, deliveries, meters --------------------------------------------------------
    CONTRACT_NOT_SIGNABLE = "CONTRACT_NOT_SIGNABLE"  # a grid contract or a voided one
    ALREADY_SIGNED = "ALREADY_SIGNED"  # this party has signed this contract before
    ALREADY_ANCHORED = "ALREADY_ANCHORED"  # the delivery is already anchored on vpp-main
    DELIVERY_NOT_SEALED = "DELIVERY_NOT_SEALED"  # the aggregator channel has not sealed it
    DELIVERY_MISMATCH = "DELIVERY_MISMATCH"  # the aggregator channel answered for another period
    PERIOD_SEALED = "PERIOD_SEALED"  # the meter period is sealed: no more readings or seals
    ALREADY_RECORDED = "ALREADY_RECORDED"  # the meter has a reading for this period
    OVER_CAPACITY = "OVER_CAPACITY"  # a reading above its meter's certified capacity x interval
    ORDER_OVER_CAPACITY = "ORDER_OVER_CAPACITY"  # an order above the certified capacity x 1 h
    TERMS_DIFFER = "TERMS_DIFFER"  # a certification repeats other terms than were proposed
    DUPLICATE_READING = "DUPLICATE_READING"  # an interval reading repeated in a batch or replayed
    BAD_SIGNATURE = "BAD_SIGNATURE"  # a device signature does not verify against its certificate

    # --- the Grid's security check ------------------------------------------------------------
    NO_GRID_MODEL = "NO_GRID_MODEL"  # the period was cleared without a grid model: no verdict
    GRID_MODEL_MISMATCH = "GRID_MODEL_MISMATCH"  # the verdict names another model than the period's
    BOOK_CHANGED = "BOOK_CHANGED"  # the verdict checked other contracts than the period's MATCHED


def split_wire_message(text: str) -> tuple[str | None, str]:
    """``"CODE: message"`` -> (code, message); text without a code -> (None, text)."""
    head, sep, rest = text.partition(": ")
    if sep and CODE_PATTERN.fullmatch(head):
        return head, rest
    return None, text
