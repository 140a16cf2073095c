"""The admission's configuration update: what changes on ``vpp-main``, and its signatures.

Pure protobuf work (no network), so it is unit-tested directly: the target
configuration takes from configtxgen's genesis of the channel with the new
member list only what the admission means (the new member's group and the
policies that list the members), and the collected signatures, each an
organisation's own file, are merged into the update envelope for submission.
"""

from __future__ import annotations

from pathlib import Path

from fabric_protos.common import common_pb2, configtx_pb2


def block_config(block: common_pb2.Block) -> configtx_pb2.Config:
    envelope = common_pb2.Envelope.FromString(block.data.data[0])
    payload = common_pb2.Payload.FromString(envelope.payload)
    return configtx_pb2.ConfigEnvelope.FromString(payload.data).config


# The policies whose rule lists the members (docs/network.md, "Channel policies"): what a
# channel created with the new member list has, so the new member's consent counts.
MEMBER_POLICIES = (
    ("Application", "Admins"),
    ("Application", "LifecycleEndorsement"),
    ("Application", "Endorsement"),
    ("Orderer", "Admins"),
)


def target_config(
    current: configtx_pb2.Config, generated: configtx_pb2.Config, mspid: str
) -> configtx_pb2.Config:
    """``current`` plus ``mspid``'s organisation group and the member-listing policies of
    ``generated`` (configtxgen's genesis of the channel with the new member list).

    Everything else stays as the channel has it now (ACLs, CRLs, batch sizes,
    other members' MSPs), so the update changes only what the admission means.
    """
    target = configtx_pb2.Config()
    target.CopyFrom(current)
    new_app = generated.channel_group.groups["Application"]
    if mspid not in new_app.groups:
        raise ValueError(f"the generated configuration has no {mspid} group")
    app = target.channel_group.groups["Application"]
    app.groups[mspid].CopyFrom(new_app.groups[mspid])
    for group, name in MEMBER_POLICIES:
        source = generated.channel_group.groups[group].policies[name]
        policy = target.channel_group.groups[group].policies[name]
        policy.policy.CopyFrom(source.policy)
    return target


def with_signatures(update_file: Path, signatures: list[configtx_pb2.ConfigSignature]) -> bytes:
    """The update envelope of ``update_file`` carrying ``signatures`` (one per MSP)."""
    envelope = common_pb2.Envelope.FromString(update_file.read_bytes())
    payload = common_pb2.Payload.FromString(envelope.payload)
    update_envelope = configtx_pb2.ConfigUpdateEnvelope.FromString(payload.data)
    del update_envelope.signatures[:]
    update_envelope.signatures.extend(signatures)
    payload.data = update_envelope.SerializeToString()
    return common_pb2.Envelope(payload=payload.SerializeToString()).SerializeToString()
