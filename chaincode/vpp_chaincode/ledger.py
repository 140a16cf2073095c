"""State helpers shared by the contracts: keys, JSON records, arguments, refusals.

Keys are Fabric composite keys (``object~attr~attr`` in the docs, where ``~``
stands for the U+0000 separators Fabric uses), so a partial-key query finds
e.g. every order of a period, and zero padding makes them sort in time and
aggregator order. Records are canonical JSON (``to_json_bytes``) with
integers only: every endorser must write byte-identical values.
"""

from __future__ import annotations

import functools
import inspect
import json
import platform
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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
from vpp_shim.codes import Code

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
        raise ChaincodeError(
            Code.BAD_ARGUMENT, f"key {text!r} is not of the form type~part[~part...]"
        )
    if parts[0] in PLAIN_TYPES:
        return text
    try:
        return key(parts[0], *parts[1:])
    except ChaincodeError as exc:  # U+0000 or U+10FFFF in a part
        raise exc.prefixed(f"key {text!r}") from exc


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


# Every argument is refused above this size: no market input comes near it (168
# orders of SubmitOrders take ~25 KB), and it bounds the work a caller can demand.
MAX_ARG_BYTES = 64 * 1024
# JSON arguments are at most three levels deep (a list of objects of lists).
MAX_JSON_DEPTH = 32


@dataclass(frozen=True, slots=True)
class _Constant:
    """Stands in for NaN/Infinity while parsing, so the refusal can name where it was."""

    name: str


def _unique_keys(field: str) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    def build(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for k, v in pairs:
            if k in result:
                raise ChaincodeError(
                    Code.BAD_ARGUMENT, f"{field}: field {k!r} appears twice (give each field once)"
                )
            result[k] = v
        return result

    return build


def _check_parsed(field: str, text: str, value: Any) -> None:
    """Refuses NaN/Infinity (naming the field that holds it) and nesting over MAX_JSON_DEPTH."""
    stack: list[tuple[str, Any, int]] = [(field, value, 0)]
    while stack:
        path, item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise ChaincodeError(
                Code.BAD_ARGUMENT, f"{field}: is nested deeper than {MAX_JSON_DEPTH} levels"
            )
        if isinstance(item, _Constant):
            raise ChaincodeError(
                Code.BAD_ARGUMENT,
                f"{field} {text[:80]!r}: is not valid JSON: {path} is {item.name} "
                "(NaN and Infinity are not numbers in JSON)",
            )
        if isinstance(item, dict):
            stack.extend((f"{path}.{k}", v, depth + 1) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", v, depth + 1) for i, v in enumerate(item))


def json_arg(field: str, text: str) -> Any:
    """Parse a JSON argument, keeping decimal numbers as their exact text.

    ``parse_float=str`` hands 0.1 over as "0.1", so units parse the decimal the
    caller wrote and no binary float is ever involved. Refused, each naming
    where: NaN/Infinity (``... order.quantity_kwh is NaN``), a field given twice
    in one object (JSON leaves its meaning open), and nesting deeper than any
    argument needs (which would otherwise exhaust the parser's recursion).
    """
    if not isinstance(text, str) or not text.strip():
        raise ChaincodeError(Code.BAD_ARGUMENT, f"{field} {text!r}: is empty (expected JSON)")
    try:
        value = json.loads(
            text,
            parse_float=str,
            parse_constant=_Constant,
            object_pairs_hook=_unique_keys(field),
        )
    except RecursionError:
        raise ChaincodeError(
            Code.BAD_ARGUMENT, f"{field}: is nested deeper than {MAX_JSON_DEPTH} levels"
        ) from None
    except ValueError as exc:
        raise ChaincodeError(
            Code.BAD_ARGUMENT, f"{field} {text[:80]!r}: is not valid JSON: {exc}"
        ) from exc
    _check_parsed(field, text, value)
    return value


def _check_sizes(
    function: str, names: list[str], params: tuple[Any, ...], limit: int = MAX_ARG_BYTES
) -> None:
    for i, value in enumerate(params):
        if isinstance(value, str) and len(value) > limit // 4:
            size = len(value.encode("utf-8", "surrogatepass"))
            if size > limit:
                name = names[i] if i < len(names) else f"argument {i + 1}"
                raise ChaincodeError(
                    Code.ARGUMENT_TOO_LARGE,
                    f"{function}: {name} is {size} bytes; an argument may be at most {limit} bytes",
                )


def batch_tx(max_arg_bytes: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``@tx`` with a larger argument limit, for batch transactions (e.g. 2,000 signed
    readings in one SubmitReadings): the function bounds its own work (item count)."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        return tx(fn, max_arg_bytes=max_arg_bytes)

    return decorate


def tx(fn: Callable[..., Any], *, max_arg_bytes: int = MAX_ARG_BYTES) -> Callable[..., Any]:
    """``@transaction`` that turns an input error (ValueError) into a BAD_ARGUMENT refusal.

    The market modules report bad input as ValueError subclasses naming the
    field and value; as a ChaincodeError the peer fails the transaction and
    discards its write set, so a refused call writes nothing. Any argument
    over MAX_ARG_BYTES is refused first, naming the parameter.
    """

    names = list(inspect.signature(fn).parameters)[2:]  # after self and stub

    @functools.wraps(fn)
    def wrapper(*args: Any) -> Any:
        _check_sizes(fn.__name__, names, args[2:], max_arg_bytes)
        try:
            return fn(*args)
        except ChaincodeError as exc:
            if str(exc).startswith(f"{fn.__name__}:"):
                raise
            raise exc.prefixed(fn.__name__) from exc
        except ValueError as exc:
            raise ChaincodeError(Code.BAD_ARGUMENT, f"{fn.__name__}: {exc}") from exc

    wrapper.max_arg_bytes = max_arg_bytes  # type: ignore[attr-defined]
    return transaction(wrapper)


def build_info() -> dict[str, str]:
    """What ``Version`` reports about the running code (evaluate only, never written)."""
    try:
        package = metadata.version("vpp-fabric")
    except metadata.PackageNotFoundError:
        package = "unknown"
    return {"package": package, "python": platform.python_version()}
