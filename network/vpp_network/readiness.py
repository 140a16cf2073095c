"""Waits until every peer can get transactions endorsed on every channel it is in.

Processes being up is not enough: for a few seconds after a start, a peer's
Gateway does not yet know the other organisations' peers (gossip has not
converged) and refuses every submit. The probe endorses a `Ping` proposal
through each peer as its org's admin and never submits it, so it writes
nothing to any ledger; and it evaluates `Version` on that org's own peer, so
every organisation's own chaincode server (reached over mutual TLS) has
answered, not only the ones the chaincode's policy happens to pick.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from vpp_gateway import connect_as
from vpp_gateway.errors import GatewayError

from vpp_network import identities
from vpp_network.plan import Channel, NetworkPlan, PeerOrg


def wait_until_endorsable(
    plan: NetworkPlan,
    timeout: float = 120.0,
    only: Callable[[PeerOrg, Channel], bool] | None = None,
) -> float:
    """Returns the seconds it took; raises TimeoutError naming what is still not ready.

    ``only`` limits the probes to some (organisation, channel) pairs (an admitted
    aggregator's), default all.
    """
    started = time.monotonic()
    pending = [(org, c) for c in plan.channels for org in c.orgs if only is None or only(org, c)]
    last_error = ""
    while pending:
        org, channel = pending[0]
        try:
            with connect_as(
                identities.admin(org.name), peer=org.peer_host, profile=plan.profile_file
            ) as gw:
                contract = gw.network(channel.name).contract(channel.chaincode.name)
                contract.new_proposal("Ping").endorse(timeout=10)
                contract.new_proposal("Version", endorsing_orgs=[org.mspid]).evaluate(timeout=10)
            pending.pop(0)
            continue
        except GatewayError as err:
            last_error = str(err).splitlines()[0]
        if time.monotonic() - started > timeout:
            raise TimeoutError(
                f"{org.peer_host} cannot get {channel.chaincode.name} endorsed on "
                f"{channel.name} after {timeout:.0f} s: {last_error}"
            )
        time.sleep(0.5)
    return time.monotonic() - started
