"""The names of the wallet identities network-up writes: the one place they are spelled.

``vpp_network.enrolment`` enrols them, vppctl picks its default identities from them
and the tests connect with them; all go through these functions, so a
renamed identity cannot leave one of them behind. An organisation's admin
is ``<org>-admin`` (``vppo-admin``, ``grid-admin``, ``agg3-admin``); each
aggregator also has ``agg<N>-trader`` and ``agg<N>-meter<M>`` (meter id
``agg<N>-m<M>``). This module imports nothing, so any package may use it.
"""

from __future__ import annotations

import re

METERS_PER_AGG = 2

OPERATOR = "vppo-admin"  # the VPPO admin: opens, clears, settles, closes days
GRID_ADMIN = "grid-admin"

_AGG_IDENTITY = re.compile(r"agg([1-9][0-9]*)-(admin|trader|meter([1-9][0-9]*))")


def admin(org_name: str) -> str:
    """The admin identity of an organisation by its name (``VPPO``, ``Grid``, ``Agg3``)."""
    return f"{org_name.lower()}-admin"


def agg_admin(agg: int) -> str:
    return f"agg{agg}-admin"


def agg_trader(agg: int) -> str:
    return f"agg{agg}-trader"


def agg_meter(agg: int, meter: int = 1) -> str:
    """The identity of aggregator ``agg``'s meter ``meter`` (it records as ``meter_id``)."""
    return f"agg{agg}-meter{meter}"


def meter_id(agg: int, meter: int) -> str:
    """The meter id a meter identity's certificate carries (``vpp.meter``)."""
    return f"agg{agg}-m{meter}"


def agg_identities(agg: int) -> list[str]:
    """Every wallet identity of aggregator ``agg``."""
    meters = [agg_meter(agg, m) for m in range(1, METERS_PER_AGG + 1)]
    return [agg_admin(agg), agg_trader(agg), *meters]


def parse_agg_identity(name: str) -> tuple[int, str, int | None] | None:
    """``agg3-meter2`` -> (3, "meter", 2); ``agg3-trader`` -> (3, "trader", None); else None."""
    m = _AGG_IDENTITY.fullmatch(name)
    if m is None:
        return None
    role = "meter" if m.group(3) else m.group(2)
    return int(m.group(1)), role, int(m.group(3)) if m.group(3) else None
