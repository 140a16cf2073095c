"""Channel configuration updates, computed in Python (what configtxlator does for the CLI).

Fabric's usual recipe fetches the config block, decodes it with
``configtxlator``, edits JSON, and has ``configtxlator compute_update`` work
out the read and write sets. configtxlator is not among the binaries we
build, and the protobuf messages are already a dependency
(hyperledger-fabric-protos), so the block is decoded, edited and diffed here
as protobuf; signing and submitting stay with Fabric's own ``peer channel
signconfigtx`` / ``peer channel update`` (each signer is an org admin with its
own MSP folder). docs/network.md, "Channel policies", says why.

The diff follows the rules the orderer's config validator applies to a
ConfigUpdate: an element whose content changes is written with its version
plus one (and must satisfy its mod_policy); a group whose set of members
(policies, values, sub-groups) or mod_policy changes is written with its
version plus one and lists every member it keeps, at its current version
(a member left out is deleted); everything on the path to a change is in the
read set at its current version, so a concurrent change fails the update.
"""

from __future__ import annotations

import os
from pathlib import Path

from fabric_protos.common import common_pb2, configtx_pb2

from vpp_network.fabric_cli import admin_env, orderer_args, run
from vpp_network.plan import NetworkPlan, PeerOrg

Element = configtx_pb2.ConfigPolicy | configtx_pb2.ConfigValue


def _diff_map(original: dict, updated: dict) -> tuple[dict, dict, bool]:
    """(written, unchanged, members_changed) for one map of a group (policies or values).

    A changed element is written at its version + 1, a new one at version 0.
    """
    written: dict = {}
    unchanged: dict = {}
    for key, after in updated.items():
        before = original.get(key)
        if before is not None and _same_element(before, after):
            unchanged[key] = before
            continue
        new = written[key] = type(after)()
        new.CopyFrom(after)
        new.version = before.version + 1 if before is not None else 0
    return written, unchanged, set(original) != set(updated)


def _same_element(a: Element, b: Element) -> bool:
    """Equal content and mod_policy (versions are the ledger's, not the editor's)."""
    a_copy, b_copy = type(a)(), type(b)()
    a_copy.CopyFrom(a)
    b_copy.CopyFrom(b)
    a_copy.version = b_copy.version = 0
    return a_copy.SerializeToString(deterministic=True) == b_copy.SerializeToString(
        deterministic=True
    )


def _group_update(
    original: configtx_pb2.ConfigGroup, updated: configtx_pb2.ConfigGroup
) -> tuple[configtx_pb2.ConfigGroup, configtx_pb2.ConfigGroup, bool]:
    """(read set, write set, changed) of one group against its edited copy."""
    read = configtx_pb2.ConfigGroup(version=original.version)
    write = configtx_pb2.ConfigGroup(version=original.version)
    pol_write, pol_same, pol_members = _diff_map(dict(original.policies), dict(updated.policies))
    val_write, val_same, val_members = _diff_map(dict(original.values), dict(updated.values))
    grp_read: dict = {}
    grp_write: dict = {}
    grp_same: dict = {}
    for key in original.groups.keys() & updated.groups.keys():
        sub_read, sub_write, sub_changed = _group_update(original.groups[key], updated.groups[key])
        if sub_changed:
            grp_read[key], grp_write[key] = sub_read, sub_write
        else:
            grp_same[key] = configtx_pb2.ConfigGroup(version=original.groups[key].version)
    for key in updated.groups.keys() - original.groups.keys():
        _, grp_write[key], _ = _group_update(configtx_pb2.ConfigGroup(), updated.groups[key])
        grp_write[key].version = 0
    grp_members = set(original.groups) != set(updated.groups)

    members_changed = (
        pol_members or val_members or grp_members or original.mod_policy != updated.mod_policy
    )
    if not (members_changed or pol_write or val_write or grp_write):
        return read, write, False
    for key, group in grp_read.items():
        read.groups[key].CopyFrom(group)
    for key, group in grp_write.items():
        write.groups[key].CopyFrom(group)
    for key, policy in pol_write.items():
        write.policies[key].CopyFrom(policy)
    for key, value in val_write.items():
        write.values[key].CopyFrom(value)
    if members_changed:
        write.version = original.version + 1
        write.mod_policy = updated.mod_policy
        # Kept members are restated at their current versions (absent would mean deleted).
        for key, policy in pol_same.items():
            read.policies[key].version = write.policies[key].version = policy.version
        for key, value in val_same.items():
            read.values[key].version = write.values[key].version = value.version
        for key, group in grp_same.items():
            read.groups[key].CopyFrom(group)
            write.groups[key].CopyFrom(group)
    return read, write, True


def compute_update(
    channel: str, original: configtx_pb2.Config, updated: configtx_pb2.Config
) -> configtx_pb2.ConfigUpdate:
    """The ConfigUpdate that turns ``original`` into ``updated``; ValueError if they are equal."""
    read, write, changed = _group_update(original.channel_group, updated.channel_group)
    if not changed:
        raise ValueError(f"no difference between the two configurations of {channel}")
    return configtx_pb2.ConfigUpdate(channel_id=channel, read_set=read, write_set=write)


def update_envelope(update: configtx_pb2.ConfigUpdate) -> common_pb2.Envelope:
    """An unsigned CONFIG_UPDATE envelope, as ``peer channel signconfigtx``/``update`` read it."""
    header = common_pb2.ChannelHeader(
        type=common_pb2.HeaderType.CONFIG_UPDATE, channel_id=update.channel_id
    )
    payload = common_pb2.Payload(
        header=common_pb2.Header(channel_header=header.SerializeToString()),
        data=configtx_pb2.ConfigUpdateEnvelope(
            config_update=update.SerializeToString()
        ).SerializeToString(),
    )
    return common_pb2.Envelope(payload=payload.SerializeToString())


def signatures(envelope_file: Path) -> list[configtx_pb2.ConfigSignature]:
    """The signatures collected so far in an update envelope file."""
    envelope = common_pb2.Envelope.FromString(envelope_file.read_bytes())
    payload = common_pb2.Payload.FromString(envelope.payload)
    return list(configtx_pb2.ConfigUpdateEnvelope.FromString(payload.data).signatures)


# --- talking to the network (as org admins, with Fabric's own CLI) -----------------------


def orderer_admin_env(plan: NetworkPlan) -> dict[str, str]:
    """`peer` environment signing as the orderer organisation's admin (signconfigtx only)."""
    org_dir = plan.orderer_org_dir()
    admin = next((org_dir / "users").glob("Admin@*")) / "msp"
    return dict(
        os.environ,
        FABRIC_CFG_PATH=str(plan.node_home("cli")),
        FABRIC_LOGGING_SPEC="warning",
        CORE_PEER_LOCALMSPID="OrdererMSP",
        CORE_PEER_MSPCONFIGPATH=str(admin),
    )


def fetch_config(plan: NetworkPlan, org: PeerOrg, channel: str, work: Path) -> configtx_pb2.Config:
    """The channel's current configuration, from its latest config block (orderer)."""
    block_file = work / f"{channel}-config.block"
    run(
        [
            str(plan.bin_dir / "peer"),
            "channel",
            "fetch",
            "config",
            str(block_file),
            "-c",
            channel,
            *orderer_args(plan),
        ],
        admin_env(plan, org),
        f"fetching the config block of {channel}",
        timeout=60,
    )
    block = common_pb2.Block.FromString(block_file.read_bytes())
    envelope = common_pb2.Envelope.FromString(block.data.data[0])
    payload = common_pb2.Payload.FromString(envelope.payload)
    return configtx_pb2.ConfigEnvelope.FromString(payload.data).config


def sign(plan: NetworkPlan, signer: PeerOrg | None, envelope_file: Path) -> None:
    """Adds ``signer``'s admin signature (None: the orderer org's admin) to the file."""
    env = orderer_admin_env(plan) if signer is None else admin_env(plan, signer)
    who = "the orderer admin" if signer is None else f"{signer.name}'s admin"
    run(
        [str(plan.bin_dir / "peer"), "channel", "signconfigtx", "-f", str(envelope_file)],
        env,
        f"{who} signing {envelope_file.name}",
        timeout=60,
    )


def submit(plan: NetworkPlan, submitter: PeerOrg, channel: str, envelope_file: Path) -> str:
    """Sends the update (``submitter``'s admin signs it too); FabricCommandError if refused."""
    return run(
        [
            str(plan.bin_dir / "peer"),
            "channel",
            "update",
            "-f",
            str(envelope_file),
            "-c",
            channel,
            *orderer_args(plan),
        ],
        admin_env(plan, submitter),
        f"{submitter.name}'s admin updating {channel}",
        timeout=60,
    )
