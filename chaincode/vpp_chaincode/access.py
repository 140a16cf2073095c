"""Who may call what, decided from the caller's certificate alone.

Fabric has already checked that the creator's certificate chains to its MSP
and that the proposal is signed with its key, so the MSP ID, node OUs and
Fabric CA attributes in the certificate can be trusted:

- VPPO admin: MSP ``VPPOMSP`` with the ``admin`` node OU;
- an aggregator's admin: its MSP with the ``admin`` OU;
- its trader: its MSP with attribute ``vpp.role`` = ``trader``;
- a meter: ``GridMSP`` (the metering authority issues meters) with ``vpp.role`` =
  ``meter``, ``vpp.agg`` = its aggregator's number and ``vpp.meter`` = its meter id.
"""

from __future__ import annotations

from vpp_shim.api import Caller, ChaincodeError
from vpp_shim.attributes import AGG_ATTR, METER_ATTR, ROLE_ATTR
from vpp_shim.codes import Code

VPPO_MSPID = "VPPOMSP"
GRID_MSPID = "GridMSP"
ADMIN_OU = "admin"
TRADER = "trader"
METER = "meter"


def describe(caller: Caller) -> str:
    """``Agg3MSP/trader`` style text for error messages."""
    role = ADMIN_OU if is_admin(caller) else caller.attributes.get(ROLE_ATTR, "member")
    return f"{caller.mspid}/{role}"


def is_admin(caller: Caller) -> bool:
    return ADMIN_OU in caller.ous


def is_vppo_admin(caller: Caller) -> bool:
    return caller.mspid == VPPO_MSPID and is_admin(caller)


def require_vppo(caller: Caller, action: str) -> None:
    if not is_vppo_admin(caller):
        raise ChaincodeError(
            Code.NOT_AUTHORIZED,
            f"{action}: only the VPPO admin may do this, not {describe(caller)}",
        )


def is_trader_of(caller: Caller, mspid: str) -> bool:
    """The org's trader, or its admin (who may do whatever its trader may)."""
    return caller.mspid == mspid and (
        caller.attributes.get(ROLE_ATTR) == TRADER or is_admin(caller)
    )


def require_org_admin(caller: Caller, mspid: str, action: str, *, or_vppo: bool = False) -> None:
    if caller.mspid == mspid and is_admin(caller):
        return
    if or_vppo and is_vppo_admin(caller):
        return
    who = f"the {mspid} admin" + (" or the VPPO admin" if or_vppo else "")
    raise ChaincodeError(
        Code.NOT_AUTHORIZED, f"{action}: only {who} may do this, not {describe(caller)}"
    )


def meter_of(caller: Caller) -> str | None:
    """The meter id a meter identity speaks for, or None if the caller is not a meter."""
    if caller.attributes.get(ROLE_ATTR) != METER:
        return None
    return caller.attributes.get(METER_ATTR) or None


def is_grid_admin(caller: Caller) -> bool:
    return caller.mspid == GRID_MSPID and is_admin(caller)


def grid_meter_of(caller: Caller) -> tuple[int, str] | None:
    """(aggregator number, meter id) of a Grid-issued meter identity, else None.

    Only a certificate of ``GridMSP`` counts: an aggregator's own CA can
    issue itself any attribute, so a meter of its MSP proves nothing.
    """
    meter = meter_of(caller)
    agg_text = caller.attributes.get(AGG_ATTR, "")
    if caller.mspid != GRID_MSPID or meter is None:
        return None
    if not (agg_text.isascii() and agg_text.isdigit() and agg_text[0] != "0"):
        return None
    return int(agg_text), meter
