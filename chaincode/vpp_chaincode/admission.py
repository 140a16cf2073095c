"""Admission by consent: an aggregator joins with its own admin's signature and the VPPO's.

Trust rules (market-rules.md, "Admission"): nobody can register an MSP it
does not hold. So admission takes two transactions by two organisations:

1. ``RequestAdmission(agg, region, meter_ids)`` by aggregator N's admin.
   The MSP is not an argument: it is the caller's, from the certificate
   Fabric has verified, and must be ``Agg<N>MSP`` (the MSP that owns channel
   ``agg<N>``, which the meter chaincode trusts by the same name). The
   request is stored under ``admission~<NNNN>``; asking again replaces it.
2. ``ApproveAdmission(agg, initial_reputation)`` by the VPPO admin, which
   sets R_0 (the market's judgement, never the applicant's) and registers
   the aggregator exactly as the registry always recorded it.

Both steps refuse a region that the loaded topology lacks (a region off the
tie-line tree would make every ClearPeriod fail), a number, MSP or meter
already taken. The approval re-checks everything, since the topology or the
registry may have changed in between.
"""

from __future__ import annotations

from typing import Any

from vpp_market.reputation import DEFAULT_REPUTATION_PPM, INITIAL_COEFFICIENT_PPM
from vpp_market.settlement import wallet_name
from vpp_market.units import parse_reputation
from vpp_shim.api import ChaincodeError, Stub
from vpp_shim.codes import Code

from vpp_chaincode import access, ids, inputs, state
from vpp_chaincode.ids import agg_key, agg_name
from vpp_chaincode.ledger import get_json, key, put_json


def admission_key(agg: int) -> str:
    return key("admission", agg_key(agg))


def expected_mspid(agg: int) -> str:
    """The MSP that owns aggregator N: the one of channel ``agg<N>``."""
    return f"{agg_name(agg)}MSP"


def require_region_in_topology(stub: Stub, region: str, action: str) -> None:
    """Refuses a region the loaded tie-line tree lacks (no topology loaded: any region)."""
    topology = state.topology(stub)
    if topology is not None and region not in topology.regions:
        raise ChaincodeError(
            Code.REGION_NOT_IN_TOPOLOGY,
            f"{action}: region {region!r} is not in the loaded topology "
            f"(regions: {', '.join(sorted(topology.regions))}); load a topology with it first",
        )


def _require_free(stub: Stub, number: int, msp: str, meters: list[str], action: str) -> None:
    if get_json(stub, key("aggregator", agg_key(number))) is not None:
        raise ChaincodeError(
            Code.ALREADY_REGISTERED, f"{action}: {agg_name(number)} is already registered"
        )
    # One index key per MSP: admissions of different aggregators never read each
    # other's keys (no MVCC conflict), unlike a registry scan.
    taken = get_json(stub, key("aggmsp", msp))
    if taken is not None:
        raise ChaincodeError(
            Code.ALREADY_REGISTERED,
            f"{action}: mspid {msp!r} already belongs to {agg_name(taken['agg'])}",
        )
    for meter in meters:
        owner = get_json(stub, key("meter", meter))
        if owner is not None:
            raise ChaincodeError(
                Code.ALREADY_REGISTERED,
                f"{action}: meter_ids: {meter!r} already belongs to {agg_name(owner['agg'])}",
            )


def request(stub: Stub, agg: str, region: str, meter_ids: str) -> dict[str, Any]:
    """RequestAdmission: aggregator N's admin asks to join, for its own MSP only."""
    number = ids.parse_agg(agg)
    msp = expected_mspid(number)
    caller = stub.caller
    if caller.mspid != msp or not access.is_admin(caller):
        raise ChaincodeError(
            Code.NOT_AUTHORIZED,
            f"RequestAdmission: only the {msp} admin may ask to admit {agg_name(number)}, "
            f"not {access.describe(caller)} (an organisation requests only for its own MSP)",
        )
    region_name = ids.parse_name(region, "region")
    meters = inputs.meter_ids(number, meter_ids)
    require_region_in_topology(stub, region_name, "RequestAdmission")
    _require_free(stub, number, msp, meters, "RequestAdmission")
    record = {
        "agg": number,
        "mspid": msp,
        "region": region_name,
        "meters": meters,
        "requested_by": caller.common_name,
        "requested_tx": stub.tx_id,
        "requested_ns": stub.timestamp_ns,
    }
    put_json(stub, admission_key(number), record)
    return record


def approve(stub: Stub, agg: str, initial_reputation: str) -> dict[str, Any]:
    """ApproveAdmission: the VPPO admits a requested aggregator with R_0, a_0 = 1, wallet 0."""
    access.require_vppo(stub.caller, "ApproveAdmission")
    number = ids.parse_agg(agg)
    r0 = DEFAULT_REPUTATION_PPM
    if ids.trim(initial_reputation):
        r0 = parse_reputation(initial_reputation, "initial_reputation")
    requested = get_json(stub, admission_key(number))
    if requested is None:
        raise ChaincodeError(
            Code.NOT_FOUND,
            f"ApproveAdmission: {agg_name(number)} has not asked to be admitted "
            f"(RequestAdmission by the {expected_mspid(number)} admin comes first)",
        )
    msp, region, meters = requested["mspid"], requested["region"], requested["meters"]
    require_region_in_topology(stub, region, "ApproveAdmission")
    _require_free(stub, number, msp, meters, "ApproveAdmission")
    record = {
        "agg": number,
        "name": agg_name(number),
        "mspid": msp,
        "region": region,
        "channel": ids.agg_channel(number),
        "meters": meters,
        "requested_tx": requested["requested_tx"],
        "registered_tx": stub.tx_id,
    }
    put_json(stub, key("aggregator", agg_key(number)), record)
    put_json(stub, key("aggmsp", msp), {"mspid": msp, "agg": number})
    for meter in meters:
        put_json(stub, key("meter", meter), {"meter": meter, "agg": number})
    reputation = {"agg": number, "r_ppm": r0, "a_ppm": INITIAL_COEFFICIENT_PPM, "day": None}
    put_json(stub, state.reputation_key(number), reputation)
    wallet = {"wallet": wallet_name(number), "balance": 0}
    put_json(stub, state.wallet_key(wallet_name(number)), wallet)
    stub.del_state(admission_key(number))
    return {**record, "reputation": reputation, "wallet": wallet}
