"""Chaincode definitions for an organisation that joins a channel after they were committed.

Fabric lets a new member approve a committed definition unchanged at its
current sequence (its peer then serves the chaincode with the member's own
package); it refuses to redefine a committed sequence. So a definition that
must change with the new member (an endorsement or collection policy that
names the members) is approved by every member at the next sequence and
committed again.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from vpp_network import fabric_cli
from vpp_network.fabric_cli import FabricCommandError
from vpp_network.plan import NetworkPlan, PeerOrg

Log = Callable[[str], None]


def ensure_definition(
    plan: NetworkPlan, channel_name: str, package_ids: dict[str, str], log: Log = print
) -> None:
    """Every member of the channel has approved the committed definition of its chaincode
    with its own package; the definition is committed (a new channel: sequence 1).

    A member that joined later approves the committed sequence as it is. If the plan's
    definition differs from the committed one (Fabric refuses to redefine a committed
    sequence), every member approves the plan's at the next sequence and it is committed
    again: e.g. an endorsement or collection policy that names the new member.
    """
    channel = next(c for c in plan.channels if c.name == channel_name)
    committed = fabric_cli.committed_chaincodes(plan, channel.orgs[0], channel_name)
    cc = channel.chaincode
    current = next((d for d in committed if d["name"] == cc.name), None)
    if current is None:
        fabric_cli.approve_and_commit(plan, channel_name, package_ids)
        log(f"      {cc.name} committed on {channel_name}")
        return
    sequence = int(current["sequence"])
    pending = [org for org in channel.orgs if not _approved(plan, org, channel_name, cc.name)]
    try:
        for org in pending:
            _approve(plan, org, channel_name, package_ids[org.mspid], sequence)
            log(f"      {org.name} approved {cc.name} #{sequence} on {channel_name}")
    except FabricCommandError as exc:
        if "redefine" not in str(exc):
            raise
        log(f"      {cc.name}'s definition changes: every member approves #{sequence + 1}")
        fabric_cli.approve_and_commit(plan, channel_name, package_ids, sequence=sequence + 1)
        log(f"      {cc.name} #{sequence + 1} committed on {channel_name}")


def _definition_args(plan: NetworkPlan, channel_name: str, sequence: int) -> list[str]:
    channel = next(c for c in plan.channels if c.name == channel_name)
    cc = channel.chaincode
    collections = fabric_cli.collections_file(plan, channel)  # sealed orders' collection
    return [
        *("--channelID", channel_name, "--name", cc.name, "--version", cc.version),
        *("--sequence", str(sequence), "--signature-policy", channel.endorsement_policy),
        *(("--collections-config", str(collections)) if collections else ()),
        *fabric_cli.orderer_args(plan),
    ]


def _approved(plan: NetworkPlan, org: PeerOrg, channel_name: str, name: str) -> bool:
    """Whether ``org``'s peer already runs the committed definition (its org approved it)."""
    try:
        out = fabric_cli.run(
            [
                str(plan.bin_dir / "peer"),
                *("lifecycle", "chaincode", "querycommitted", "-C", channel_name),
                *("-n", name, "-O", "json"),
            ],
            fabric_cli.admin_env(plan, org),
            f"querycommitted {name} on {channel_name}",
            timeout=30,
        )
    except FabricCommandError:
        return False
    approvals = json.loads(out[out.index("{") :]).get("approvals", {})
    return bool(approvals.get(org.mspid))


def _approve(
    plan: NetworkPlan, org: PeerOrg, channel_name: str, package_id: str, sequence: int
) -> None:
    fabric_cli.run(
        [
            str(plan.bin_dir / "peer"),
            *("lifecycle", "chaincode", "approveformyorg", "--package-id", package_id),
            *_definition_args(plan, channel_name, sequence),
        ],
        fabric_cli.admin_env(plan, org),
        f"{org.name} approving on {channel_name} (#{sequence})",
    )
