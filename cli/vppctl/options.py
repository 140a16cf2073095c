"""Options shared by the commands, and who a command acts as by default.

Defaults for ``--as`` follow the network's wallet (docs/architecture.md):
``agg<N>-trader`` for an aggregator's trading, ``agg<N>-admin`` for its
resources, ``agg<N>-meter1`` for a reading, ``grid-admin`` for the metering
authority's, ``vppo-admin`` for the operator's commands and for queries that
name no aggregator.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer
from vpp_network import identities

from vppctl.errors import usage_error
from vppctl.periods import Calendar, PeriodSpec, check_day, parse_period
from vppctl.session import ContractLike

OPERATOR = identities.OPERATOR

AggOption = Annotated[
    int | None,
    typer.Option("--agg", "-a", metavar="N", min=1, help="Aggregator number (Agg3 is 3)."),
]
# Metering commands work on one aggregator's channel agg<N>, so they need the number.
AggChannelOption = Annotated[
    int, typer.Option("--agg", "-a", metavar="N", min=1, help="Aggregator number (channel aggN).")
]
AsOption = Annotated[
    str | None,
    typer.Option(
        "--as",
        metavar="IDENTITY",
        help="Wallet identity to act as (default depends on the command; see --help).",
        show_default=False,
    ),
]
PeriodOption = Annotated[
    str | None,
    typer.Option(
        "--period",
        "-t",
        metavar="[DAY-]T",
        help="Period: hour T (1..24) or DAY-T such as 3-13 (default: the open period).",
        show_default=False,
    ),
]
PeriodFilterOption = Annotated[
    str | None,
    typer.Option(
        "--period",
        "-t",
        metavar="[DAY-]T",
        help="Only this period: hour T (latest day that has it) or DAY-T (default: every period).",
        show_default=False,
    ),
]
RequiredPeriodOption = Annotated[
    str,
    typer.Option(
        "--period",
        "-t",
        metavar="[DAY-]T",
        help="Period: hour T (1..24; the latest day that has it) or DAY-T such as 3-13.",
        show_default=False,
    ),
]
DayOption = Annotated[
    int | None,
    typer.Option("--day", "-d", metavar="DAY", help="Day number (1..99999).", show_default=False),
]

_AGG_IDENTITY = re.compile(r"agg([1-9][0-9]{0,3})-", re.IGNORECASE)


def period_spec(text: str | None) -> PeriodSpec | None:
    return None if text is None else parse_period(text)


def day_value(day: int | None) -> int | None:
    return None if day is None else check_day(day)


def resolve_period(
    market: ContractLike, period: str | None, day: int | None, *, default: str = "open"
) -> dict[str, Any]:
    """The period record ``--period`` and ``--day`` name, looked up on the ledger.

    Both options are checked here; which period an hour alone or no
    ``--period`` means (the open one, or for ``default="latest"`` the latest
    when none is open) is ``Calendar.resolve``'s rule.
    """
    return Calendar(market).resolve(period_spec(period), day=day_value(day), default=default)


def agg_of_identity(identity: str | None) -> int | None:
    """3 for ``agg3-trader`` (the wallet's naming), None otherwise."""
    m = _AGG_IDENTITY.match(identity or "")
    return int(m.group(1)) if m else None


def require_agg(agg: int | None, identity: str | None) -> int:
    """The aggregator from ``--agg``, else from an ``--as aggN-...`` identity."""
    if agg is not None:
        return agg
    found = agg_of_identity(identity)
    if found is None:
        raise usage_error("which aggregator? pass --agg N (or --as aggN-trader)")
    return found


def trader(agg: int, identity: str | None) -> str:
    return identity or identities.agg_trader(agg)


def agg_admin(agg: int, identity: str | None) -> str:
    return identity or identities.agg_admin(agg)


def grid_admin(identity: str | None) -> str:
    """The Grid's admin: the metering authority certifies, retires and configures."""
    return identity or identities.GRID_ADMIN


def meter_identity(agg: int, identity: str | None) -> str:
    return identity or identities.agg_meter(agg, 1)


def operator(identity: str | None) -> str:
    return identity or OPERATOR


def reader(agg: int | None, identity: str | None) -> str:
    """Queries: the aggregator's trader when one is named, else the operator."""
    if identity:
        return identity
    return identities.agg_trader(agg) if agg is not None else OPERATOR
