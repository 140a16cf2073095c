"""What the meter chaincode's modules share: keys, channel owner, configuration, refusals.

Keys on a slave channel ``aggN`` (``~`` stands for Fabric's U+0000 separators):

    resource~<id>                    a resource: proposed by AggN, certified by the Grid
    meter~<meter id>                 a certified meter: its resources and capacity
    device~<meter id>                a device's current certification (key, fingerprints)
    devhist~<meter id>~<VVVV>        every certification version, kept
    devreport~<meter id>             the device's last fingerprint report
    alarm~<meter id>~<field>         an open alarm (deleted when cleared)
    reading~<DDDDD>~<TT>~<meter id>  one hourly reading (RecordReading)
    ireading~<DDDDD>~<TT>~<meter id> a device's signed interval readings of the hour
    seal~<DDDDD>~<TT>                the period's sealed delivery summary
    config~meter                     interval and report settings (the Grid's)
"""

from __future__ import annotations

from typing import Any

from vpp_shim.api import ChaincodeError, Stub
from vpp_shim.codes import Code

from vpp_chaincode import ids
from vpp_chaincode.ledger import get_json, key

MARKET_CHANNEL = "vpp-main"
MARKET_CHAINCODE = "market"
CONFIG_KEY = key("config", "meter")
# Defaults of config~meter: 15-minute readings, a fingerprint report at least hourly.
DEFAULT_CONFIG = {"interval_s": 900, "report_interval_s": 3600}
# What the VPPO must wait after ClearPeriod before sealing alone, if neither the period
# nor the market's configuration says (the market's own default is the same).
DEFAULT_SEAL_DEADLINE_S = 3600
SUPPLY_KINDS = frozenset({"PV", "WT", "ESS"})
LOAD_KINDS = frozenset({"load", "ESS"})


def owner(stub: Stub) -> int:
    """The aggregator that owns this channel (aggN -> N); refuses any other channel."""
    agg = ids.channel_agg(stub.channel_id)
    if agg is None:
        raise ChaincodeError(
            Code.WRONG_CHANNEL,
            f"the meter chaincode serves aggregator channels aggN, not {stub.channel_id!r}",
        )
    return agg


def agg_mspid(agg: int) -> str:
    return f"{ids.agg_name(agg)}MSP"


def config(stub: Stub) -> dict[str, int]:
    """The channel's metering configuration (stored, else the defaults)."""
    return {**DEFAULT_CONFIG, **(get_json(stub, CONFIG_KEY) or {})}


def now_s(stub: Stub) -> int:
    """Ledger time in whole seconds: the transaction timestamp, the same on every endorser."""
    return stub.timestamp_ns // 1_000_000_000


def seal_key(pid: ids.PeriodId) -> str:
    return key("seal", *pid.key_parts)


def meter_record(stub: Stub, meter: str) -> dict[str, Any] | None:
    return get_json(stub, key("meter", meter))
