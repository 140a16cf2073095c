"""State helpers shared by the contracts: keys, JSON records, arguments, refusals.

Keys are Fabric composite keys (``object~attr~attr`` in the docs, where ``~``
stands for the U+0000 separators Fabric uses), so a partial-key query finds
e.g. every order of a period, and zero padding makes them sort in time and
aggregator order. Records are canonical JSON (``to_json_bytes``) with
integers only: every endorser must write byte-identical values.
"""

from __future__ import annotations

import functools
import json
import platform
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Any

from vpp_shim.api import (
    ChaincodeError,
    Stub,
    create_composite_key,
    split_composite_key,
    to_json_bytes,
    transaction,
)

PLAIN_TYPES = frozenset({"day"})  # the only plain (non-composite) keys: day~DDDDD


def key(object_type: str, *parts: str) -> str:
    return create_composite_key(object_type, list(parts))


def plain_key(object_type: str, *parts: str) -> str:
    return "~".join([object_type, *parts])


def display_key(stored: str) -> str:
    """A stored key as the ``type~a~b`` text that GetHistory accepts."""
    if stored.startswith("\x00"):
        object_type, parts = split_composite_key(stored)
        return "~".join([object_type, *parts])
    return stored


def parse_display_key(text: str) -> str:
    """``order~00001~13~0003`` -> the stored key (composite unless a plain type)."""
    parts = text.split("~")
    if len(parts) < 2 or not all(parts):
        raise ChaincodeError(f"key {text!r} is not of the form type~part[~part...]")
    if parts[0] in PLAIN_TYPES:
        return text
    return key(parts[0], *parts[1:])


def get_json(stub: Stub, k: str) -> dict[str, Any] | None:
    raw = stub.get_state(k)
    return json.loads(raw) if raw else None


def put_json(stub: Stub, k: str, value: Any) -> None:
    stub.put_state(k, to_json_bytes(value))


def query(stub: Stub, object_type: str, *parts: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Records under a partial composite key, in key order."""
    for k, raw in stub.get_state_by_partial_composite_key(object_type, list(parts)):
        yield k, json.loads(raw)


def records(stub: Stub, object_type: str, *parts: str) -> list[dict[str, Any]]:
    return [value for _, value in query(stub, object_type, *parts)]


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def json_arg(field: str, text: str) -> Any:
    """Parse a JSON argument, keeping decimal numbers as their exact text.

    ``parse_float=str`` hands 0.1 over as "0.1", so units parse the decimal the
    caller wrote and no binary float is ever involved; NaN/Infinity are refused.
    """
    if not isinstance(text, str) or not text.strip():
        raise ChaincodeError(f"{field} {text!r}: is empty (expected JSON)")
    try:
        return json.loads(text, parse_float=str, parse_constant=_no_constant)
    except ValueError as exc:
        raise ChaincodeError(f"{field} {text[:80]!r}: is not valid JSON: {exc}") from exc


def tx(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``@transaction`` that turns an input error (ValueError) into a ChaincodeError.

    The market modules report bad input as ValueError subclasses naming the
    field and value; as a ChaincodeError the peer fails the transaction and
    discards its write set, so a refused call writes nothing.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any) -> Any:
        try:
            return fn(*args)
        except ChaincodeError as exc:
            if str(exc).startswith(f"{fn.__name__}:"):
                raise
            raise ChaincodeError(f"{fn.__name__}: {exc}") from exc
        except ValueError as exc:
            raise ChaincodeError(f"{fn.__name__}: {exc}") from exc

    return transaction(wrapper)


def build_info() -> dict[str, str]:
    """What ``Version`` reports about the running code (evaluate only, never written)."""
    try:
        package = metadata.version("vpp-fabric")
    except metadata.PackageNotFoundError:
        package = "unknown"
    return {"package": package, "python": platform.python_version()}
