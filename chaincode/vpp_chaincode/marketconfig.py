"""Market configuration (``config~market``): the deadlines of the trust rules, in seconds.

Deadlines are configuration, not constants, so a demo or a test can use
seconds and a real market hours. They are compared with ledger time only
(the transaction timestamp, which every endorser checks against its own
clock: vpp_shim.api.Contract.check_timestamp).

- ``signing_window_s``: after a period is cleared (``cleared_at``), its
  parties have this long to sign their P2P contracts; only then may the
  VPPO void the unsigned ones (VoidUnsigned).
- ``seal_deadline_s``: after ``cleared_at``, how long an aggregator has to
  seal its delivery on ``agg<N>`` before the VPPO may seal it instead (the
  meter chaincode reads it cross-channel with GetPeriod).

Each period copies the configuration when it is opened (like its TOU
prices), so the VPPO cannot shorten the window of a period whose orders are
already placed: an aggregator sees a period's deadlines before it bids.
"""

from __future__ import annotations

from typing import Any

from vpp_shim.api import ChaincodeError, Stub
from vpp_shim.codes import Code

from vpp_chaincode import ids
from vpp_chaincode.ledger import get_json, json_arg, key

CONFIG_MARKET = key("config", "market")
# What the market applies until SetMarketConfig has run: hours-scale defaults.
DEFAULTS: dict[str, int] = {"signing_window_s": 900, "seal_deadline_s": 3600}
FIELDS = tuple(sorted(DEFAULTS))
MAX_SECONDS = 7 * 24 * 3600  # a week: beyond any settlement cycle; bounds a mistaken value


def current(stub: Stub) -> dict[str, Any]:
    """The stored configuration, or the defaults (``set_tx`` null) while never set."""
    stored = get_json(stub, CONFIG_MARKET)
    if stored is None:
        return {**DEFAULTS, "set_tx": None, "set_ns": None}
    return stored


def parse(text: str, base: dict[str, Any]) -> dict[str, int]:
    """A JSON object of some of FIELDS (whole seconds, 0..MAX_SECONDS), merged onto ``base``."""
    data = json_arg("config", text)
    if not isinstance(data, dict) or not data:
        raise ChaincodeError(
            Code.BAD_ARGUMENT,
            f"config {text[:80]!r}: is not a JSON object with any of {', '.join(FIELDS)}",
        )
    merged = {name: base[name] for name in FIELDS}
    for name, value in data.items():
        if name not in DEFAULTS:
            raise ChaincodeError(
                Code.BAD_ARGUMENT,
                f"config: field {name!r} is not one of {', '.join(FIELDS)}",
            )
        if isinstance(value, bool) or not isinstance(value, int | str):
            value = repr(value)
        text_value = ids.trim(str(value))  # not strip(): "8\x1f" is no number of seconds
        if not text_value.isascii() or not text_value.isdigit():
            raise ChaincodeError(
                Code.BAD_ARGUMENT,
                f"config: {name} {value!r}: is not a whole number of seconds",
            )
        seconds = int(text_value)
        if seconds > MAX_SECONDS:
            raise ChaincodeError(
                Code.BAD_ARGUMENT,
                f"config: {name} {seconds}: is more than {MAX_SECONDS} s (a week)",
            )
        merged[name] = seconds
    return merged


def for_period(stub: Stub) -> dict[str, int]:
    """The deadlines a period opened now keeps for its whole life."""
    config = current(stub)
    return {name: config[name] for name in FIELDS}


def period_deadlines(record: dict[str, Any], stub: Stub) -> dict[str, int]:
    """The period's own deadlines; a period opened before they existed takes today's."""
    if all(name in record for name in FIELDS):
        return {name: record[name] for name in FIELDS}
    return for_period(stub)
