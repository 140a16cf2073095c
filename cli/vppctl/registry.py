"""How commands are registered: guarded (one-line errors) and grouped in --help.

Every command goes through ``command`` so that none can forget the error
handling of ``errors.guarded``; the help panels group the ~30 commands by
who uses them.
"""

from __future__ import annotations

from typing import Any, TypeVar

import typer

from vppctl.errors import guarded

F = TypeVar("F")

TRADING = "Trading (aggregators)"
OPERATOR = "Operating the market (VPPO)"
QUERIES = "Queries"
METERS = "Metering (aggregator channels)"
SETUP = "Network, demo and diagnostics"

PANELS = {
    "bid": TRADING,
    "orders": TRADING,
    "cancel": TRADING,
    "contracts": TRADING,
    "sign": TRADING,
    "register": OPERATOR,
    "clear": OPERATOR,
    "void": OPERATOR,
    "anchor": OPERATOR,
    "settle": OPERATOR,
    "settlements": QUERIES,
    "reputation": QUERIES,
    "wallet": QUERIES,
    "aggregators": QUERIES,
    "history": QUERIES,
    "watch": QUERIES,
    "version": SETUP,
    "ping": SETUP,
    "identities": SETUP,
}


def command(group: typer.Typer, name: str, *, path: str | None = None, **kwargs: Any) -> Any:
    """Register ``fn`` as command ``name`` of ``group``, guarded (see ``errors.guarded``).

    ``path`` is how the error line names the command (``period open`` for a
    sub-command); ``kwargs`` go to ``Typer.command`` (epilog, help, ...).
    """
    if path is None and name in PANELS:
        kwargs.setdefault("rich_help_panel", PANELS[name])

    def decorate(fn: F) -> F:
        group.command(name, **kwargs)(guarded(fn, path or name))  # type: ignore[arg-type]
        return fn

    return decorate
