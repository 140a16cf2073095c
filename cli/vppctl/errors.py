"""One line on stderr that says what went wrong and what to do, and an exit code.

Every command is wrapped by ``guarded``: the exceptions a user can act on
(a refusal by the chaincode, a network that is down, a missing wallet
identity, a bad argument) become a single line and a non-zero exit; anything
else is a bug and keeps its traceback. ``--debug`` keeps the traceback for
everything, because a developer chasing a problem wants the stack, not advice.

Exit codes: 1 the network or the chaincode refused or failed, 2 bad input or
usage (as click's own usage errors), 3 the network is unreachable or not set
up, 130 interrupted.

A chaincode refusal carries a machine-readable code (docs/chaincode-api.md,
"Refusal codes"): the line ends with ``[CODE]``, and a command run with
``--output json`` writes the error as one JSON line on stderr instead:
``{"error": {"command": ..., "code": ..., "message": ..., "exit_code": ...}}``
(``code`` is null when the chaincode did not refuse). Scripts branch on it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import typer
from vpp_gateway import (
    CommitError,
    CommitTimeoutError,
    ConfigError,
    EndorseError,
    GatewayError,
    IdentityError,
    MvccConflictError,
    PeerUnreachableError,
    ProfileError,
    SubmitError,
)
from vpp_gateway.errors import gateway_found_no_endorsers
from vpp_market.units import InputError

from vppctl.settings import SETTINGS

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NETWORK = 3
EXIT_INTERRUPTED = 130

NETWORK_HINT = "is the network up? run `make network-up`"

F = TypeVar("F", bound=Callable[..., Any])


class CliError(Exception):
    """A failure we can explain in one line; ``exit_code`` as in the module docstring."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def usage_error(message: str) -> CliError:
    """A CliError for bad input (exit 2)."""
    return CliError(message, EXIT_USAGE)


def one_line(text: str) -> str:
    """Collapse whitespace: multi-line gateway details must not break the one-line rule."""
    return " ".join(str(text).split())


def _endorse_message(exc: EndorseError) -> str:
    if exc.chaincode_message is not None:
        code = f" [{exc.code}]" if exc.code else ""
        return f"refused by chaincode: {exc.chaincode_message}{code}"
    details = "; ".join(sorted({d.message for d in exc.details}))
    text = f"the peer refused the call: {exc.message}" + (f" ({details})" if details else "")
    lowered = text.lower()
    if "connection refused" in lowered or "not running" in lowered or "chaincode" in lowered:
        text += " — is the chaincode running? check `make network-status`"
    return text


def describe(exc: BaseException) -> tuple[str, int] | None:
    """The one-line message and exit code for an exception a user can act on, else None."""
    if isinstance(exc, CliError):
        return exc.message, exc.exit_code
    if isinstance(exc, PeerUnreachableError):
        return f"peer at {exc.address} unreachable — {NETWORK_HINT}", EXIT_NETWORK
    if isinstance(exc, ProfileError):
        message = str(exc)
        if message.startswith("no connection profile") or "cannot find the vpp-fabric" in message:
            # load_profile's own text already says where it looked
            return f"{message.split(';')[0]} — {NETWORK_HINT}", EXIT_NETWORK
        return message, EXIT_NETWORK
    if isinstance(exc, IdentityError):
        return (
            f"{exc} — pass --as with a wallet identity (`vppctl identities` lists them)",
            EXIT_USAGE,
        )
    if isinstance(exc, ConfigError):
        return str(exc), EXIT_NETWORK
    if isinstance(exc, EndorseError):
        if exc.chaincode_message is None and gateway_found_no_endorsers(exc.message):
            return (
                f"no peer of an organisation that must endorse is up: {one_line(exc.message)}"
                " — check `make network-status`",
                EXIT_NETWORK,
            )
        return _endorse_message(exc), EXIT_FAILED
    if isinstance(exc, MvccConflictError):
        return (
            f"transaction {exc.tx_id} lost a race with a concurrent transaction "
            f"({exc.validation_code}); nothing was written — run the command again",
            EXIT_FAILED,
        )
    if isinstance(exc, CommitTimeoutError):
        return str(exc), EXIT_FAILED
    if isinstance(exc, CommitError):
        return str(exc), EXIT_FAILED
    if isinstance(exc, SubmitError):
        return f"{exc} — are the orderers up? check `make network-status`", EXIT_FAILED
    if isinstance(exc, GatewayError):
        return str(exc), EXIT_FAILED
    if isinstance(exc, InputError):
        return str(exc), EXIT_USAGE
    return None


def refusal_code(exc: BaseException) -> str | None:
    """The chaincode's refusal code of ``exc`` (e.g. ``PERIOD_NOT_OPEN``), else None."""
    code = getattr(exc, "code", None) if isinstance(exc, GatewayError) else None
    return code if isinstance(code, str) else None


def fail(
    command: str,
    message: str,
    exit_code: int = EXIT_FAILED,
    *,
    code: str | None = None,
    as_json: bool = False,
) -> NoReturn:
    """Print ``vppctl COMMAND: error: MESSAGE`` (or its JSON form) on stderr and exit."""
    if as_json:
        error = {"command": command, "code": code, "message": one_line(message)}
        error["exit_code"] = exit_code
        typer.echo(json.dumps({"error": error}, ensure_ascii=False), err=True)
    else:
        typer.echo(f"vppctl {command}: error: {one_line(message)}", err=True)
    raise typer.Exit(exit_code)


def _wants_json(kwargs: dict[str, Any]) -> bool:
    """The command was given ``--output json`` (its ``output`` parameter)."""
    return str(kwargs.get("output", "")).lower() == "json"


def guarded(fn: F, command: str) -> F:
    """``fn`` with explainable failures turned into one line on stderr and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt:
            if SETTINGS.debug:
                raise
            fail(
                command,
                "interrupted; a transaction already submitted may still commit",
                EXIT_INTERRUPTED,
            )
        except Exception as exc:
            found = describe(exc)  # None for typer.Exit/Abort and for bugs: re-raised
            if found is None or SETTINGS.debug:
                raise
            fail(command, *found, code=refusal_code(exc), as_json=_wants_json(kwargs))

    return wrapper  # type: ignore[return-value]
