"""Config updates computed in Python (vpp_network.channel_config), checked on protobufs.

The orderer accepts an update only if its read set matches the current
versions and every written element carries its version + 1 (0 when new), and
a group whose member set changes lists every member it keeps (one left out is
deleted). These tests pin those rules without a network; the live tests send
such updates to real orderers.
"""

from __future__ import annotations

import pytest
from fabric_protos.common import configtx_pb2, policies_pb2
from vpp_network.channel_config import compute_update, signatures, update_envelope


def _policy(rule: int, version: int = 0) -> configtx_pb2.ConfigPolicy:
    meta = policies_pb2.ImplicitMetaPolicy(sub_policy="Admins", rule=rule)
    return configtx_pb2.ConfigPolicy(
        version=version,
        mod_policy="Admins",
        policy=policies_pb2.Policy(
            type=policies_pb2.Policy.IMPLICIT_META, value=meta.SerializeToString()
        ),
    )


def _config() -> configtx_pb2.Config:
    config = configtx_pb2.Config()
    root = config.channel_group
    root.version = 4
    root.mod_policy = "Admins"
    app = root.groups["Application"]
    app.version = 2
    app.mod_policy = "Admins"
    app.policies["Admins"].CopyFrom(_policy(policies_pb2.ImplicitMetaPolicy.MAJORITY, 1))
    app.policies["Readers"].CopyFrom(_policy(policies_pb2.ImplicitMetaPolicy.ANY, 0))
    app.values["Capabilities"].CopyFrom(
        configtx_pb2.ConfigValue(version=3, mod_policy="Admins", value=b"caps")
    )
    org = app.groups["Agg3MSP"]
    org.version = 1
    org.mod_policy = "Admins"
    root.groups["Orderer"].version = 7
    return config


def _edit(config: configtx_pb2.Config) -> configtx_pb2.Config:
    copy = configtx_pb2.Config()
    copy.CopyFrom(config)
    return copy


def test_changing_a_policy_writes_it_at_version_plus_one_only():
    original = _config()
    updated = _edit(original)
    updated.channel_group.groups["Application"].policies["Admins"].CopyFrom(
        _policy(policies_pb2.ImplicitMetaPolicy.ANY, 1)
    )
    update = compute_update("agg3", original, updated)
    app_write = update.write_set.groups["Application"]
    assert update.channel_id == "agg3"
    assert app_write.version == 2  # membership unchanged: the group itself is not modified
    assert dict(app_write.policies).keys() == {"Admins"}
    assert app_write.policies["Admins"].version == 2
    assert (
        app_write.policies["Admins"].policy
        == updated.channel_group.groups["Application"].policies["Admins"].policy
    )
    assert update.read_set.groups["Application"].version == 2
    assert update.write_set.version == update.read_set.version == 4
    assert "Orderer" not in update.write_set.groups  # untouched branches are left out


def test_adding_a_value_bumps_the_group_and_restates_what_it_keeps():
    original = _config()
    updated = _edit(original)
    app = updated.channel_group.groups["Application"]
    app.values["ACLs"].CopyFrom(configtx_pb2.ConfigValue(mod_policy="Admins", value=b"acl"))
    update = compute_update("agg3", original, updated)
    write = update.write_set.groups["Application"]
    assert write.version == 3 and write.mod_policy == "Admins"
    assert write.values["ACLs"].version == 0 and write.values["ACLs"].value == b"acl"
    # Kept members at their current versions, content omitted (the orderer keeps its own).
    assert write.values["Capabilities"].version == 3 and write.values["Capabilities"].value == b""
    assert {k: v.version for k, v in write.policies.items()} == {"Admins": 1, "Readers": 0}
    assert write.groups["Agg3MSP"].version == 1
    assert update.read_set.groups["Application"].version == 2


def test_removing_a_value_leaves_it_out_of_the_bumped_group():
    original = _config()
    updated = _edit(original)
    del updated.channel_group.groups["Application"].values["Capabilities"]
    write = compute_update("agg3", original, updated).write_set.groups["Application"]
    assert write.version == 3
    assert "Capabilities" not in write.values


def test_no_difference_is_an_error_naming_the_channel():
    with pytest.raises(ValueError, match="agg3"):
        compute_update("agg3", _config(), _config())


def test_the_envelope_is_an_unsigned_config_update_for_the_cli():
    original = _config()
    updated = _edit(original)
    del updated.channel_group.groups["Application"].values["Capabilities"]
    envelope = update_envelope(compute_update("agg3", original, updated))
    from fabric_protos.common import common_pb2

    payload = common_pb2.Payload.FromString(envelope.payload)
    header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
    assert header.type == common_pb2.HeaderType.CONFIG_UPDATE and header.channel_id == "agg3"
    inner = configtx_pb2.ConfigUpdateEnvelope.FromString(payload.data)
    assert configtx_pb2.ConfigUpdate.FromString(inner.config_update).channel_id == "agg3"
    assert not inner.signatures


def test_signatures_reads_them_back(tmp_path):
    original = _config()
    updated = _edit(original)
    del updated.channel_group.groups["Application"].values["Capabilities"]
    envelope = update_envelope(compute_update("agg3", original, updated))
    path = tmp_path / "update.pb"
    path.write_bytes(envelope.SerializeToString())
    assert signatures(path) == []
