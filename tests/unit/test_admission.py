"""Admitting an aggregator (vpp_network.admission), the parts that need no network.

Which admins an update needs, and whether the collected signatures are
enough, is forecast from the channel's own policies the way the orderer
decides (a signature serves one principal; ImplicitMeta counts sub-groups):
these tests pin that on protobufs built like the network's consent rule
``AND(steward, OutOf(majority - 1, others))``. The admission's update
changes only the new member's group and the policies that list the members;
its MSP definition file carries no private key. The live test
(tests/integration/test_admission_live.py) admits a real aggregator.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fabric_protos.common import common_pb2, configtx_pb2, policies_pb2
from fabric_protos.msp import identities_pb2, msp_principal_pb2
from vpp_network import config_policy, msp_definition
from vpp_network.channel_config import compute_update, signatures, update_envelope
from vpp_network.config_update import target_config, with_signatures
from vpp_network.fabric_cli import FabricCommandError

ADMIN = msp_principal_pb2.MSPRole.ADMIN
PEER = msp_principal_pb2.MSPRole.PEER


def _principal(mspid: str, role: int) -> msp_principal_pb2.MSPPrincipal:
    return msp_principal_pb2.MSPPrincipal(
        principal_classification=msp_principal_pb2.MSPPrincipal.ROLE,
        principal=msp_principal_pb2.MSPRole(msp_identifier=mspid, role=role).SerializeToString(),
    )


def consent(steward: str, others: list[str], need: int, role: int = ADMIN) -> policies_pb2.Policy:
    """AND('<steward>.<role>', OutOf(need, '<other>.<role>', ...)) as Fabric stores it."""
    ids = [_principal(m, role) for m in [steward, *others]]
    signed = [policies_pb2.SignaturePolicy(signed_by=i) for i in range(len(ids))]
    out_of = policies_pb2.SignaturePolicy(
        n_out_of=policies_pb2.SignaturePolicy.NOutOf(n=need, rules=signed[1:])
    )
    rule = policies_pb2.SignaturePolicy(
        n_out_of=policies_pb2.SignaturePolicy.NOutOf(n=2, rules=[signed[0], out_of])
    )
    envelope = policies_pb2.SignaturePolicyEnvelope(version=0, rule=rule, identities=ids)
    return policies_pb2.Policy(
        type=policies_pb2.Policy.SIGNATURE, value=envelope.SerializeToString()
    )


def _meta(sub: str, rule: int) -> policies_pb2.Policy:
    meta = policies_pb2.ImplicitMetaPolicy(sub_policy=sub, rule=rule)
    return policies_pb2.Policy(
        type=policies_pb2.Policy.IMPLICIT_META, value=meta.SerializeToString()
    )


AGGS = ["Agg1MSP", "Agg2MSP", "Agg3MSP"]


def channel(members: list[str], need: int) -> configtx_pb2.Config:
    """A vpp-main-like configuration: VPPO steward, Grid and ``members`` the others."""
    config = configtx_pb2.Config(sequence=5)
    root = config.channel_group
    root.version, root.mod_policy = 3, "Admins"
    root.policies["Admins"].CopyFrom(
        configtx_pb2.ConfigPolicy(
            mod_policy="Admins", policy=_meta("Admins", policies_pb2.ImplicitMetaPolicy.MAJORITY)
        )
    )
    app = root.groups["Application"]
    app.version, app.mod_policy = 4, "Admins"
    others = ["GridMSP", *members]
    for name, role in (("Admins", ADMIN), ("LifecycleEndorsement", PEER), ("Endorsement", PEER)):
        app.policies[name].CopyFrom(
            configtx_pb2.ConfigPolicy(
                version=1, mod_policy="Admins", policy=consent("VPPOMSP", others, need, role)
            )
        )
    app.values["ACLs"].CopyFrom(configtx_pb2.ConfigValue(mod_policy="Admins", value=b"acl"))
    for mspid in ["VPPOMSP", *others]:
        org = app.groups[mspid]
        org.version, org.mod_policy = 1, "Admins"
        org.values["MSP"].CopyFrom(configtx_pb2.ConfigValue(mod_policy="Admins", value=b"old"))
    orderer = root.groups["Orderer"]
    orderer.version, orderer.mod_policy = 2, "Admins"
    policy = consent("OrdererMSP", [], 0)
    orderer.policies["Admins"].CopyFrom(
        configtx_pb2.ConfigPolicy(version=1, mod_policy="Admins", policy=policy)
    )
    return config


# --- forecasting the orderer's decision ----------------------------------------------------
def test_the_steward_and_a_majority_satisfy_the_consent_rule() -> None:
    config = channel(AGGS, 2)  # 5 members: VPPO and 2 of the 4 others
    path = "/Channel/Application/Admins"
    assert config_policy.satisfied(config, path, ["VPPOMSP", "GridMSP", "Agg2MSP"])
    assert not config_policy.satisfied(config, path, ["VPPOMSP", "GridMSP"])
    assert not config_policy.satisfied(config, path, ["GridMSP", *AGGS])  # no steward
    # One organisation signing twice is one signature.
    assert not config_policy.satisfied(config, path, ["VPPOMSP", "GridMSP", "GridMSP"])


def test_an_admin_signature_does_not_satisfy_a_peer_principal() -> None:
    config = channel(AGGS, 2)
    path = "/Channel/Application/LifecycleEndorsement"
    assert not config_policy.satisfied(config, path, ["VPPOMSP", "GridMSP", *AGGS])


def test_implicit_meta_counts_the_sub_groups() -> None:
    config = channel(AGGS, 2)
    application_only = ["VPPOMSP", "GridMSP", "Agg1MSP"]
    # /Channel/Admins = MAJORITY of Application and Orderer Admins: both.
    assert not config_policy.satisfied(config, "/Channel/Admins", application_only)
    both = [*application_only, "OrdererMSP"]
    assert config_policy.satisfied(config, "/Channel/Admins", both)


def test_an_unknown_policy_is_never_satisfied() -> None:
    assert not config_policy.satisfied(channel(AGGS, 2), "/Channel/Application/Nope", ["VPPOMSP"])


def _generated(new: str) -> configtx_pb2.Config:
    """What configtxgen gives for the channel with one more member (other MSPs differ)."""
    generated = channel([*AGGS, new], 2)
    app = generated.channel_group.groups["Application"]
    org = app.groups[new]
    org.values["MSP"].CopyFrom(configtx_pb2.ConfigValue(mod_policy="Admins", value=b"new"))
    for mspid in app.groups:
        if mspid != new:
            app.groups[mspid].values["MSP"].value = b"regenerated"
    del app.values["ACLs"]
    orderer = generated.channel_group.groups["Orderer"]
    orderer.policies["Admins"].policy.CopyFrom(consent("OrdererMSP", ["VPPOMSP", new], 1))
    return generated


def test_the_update_adds_the_member_and_restates_only_the_member_policies() -> None:
    current = channel(AGGS, 2)
    target = target_config(current, _generated("Agg4MSP"), "Agg4MSP")
    update = compute_update("vpp-main", current, target)
    app = update.write_set.groups["Application"]
    assert app.version == 5  # a new member: the group is modified
    assert app.groups["Agg4MSP"].values["MSP"].value == b"new"
    assert app.groups["Agg4MSP"].version == 0
    # The other members' MSPs and the ACLs are the channel's, not configtxgen's.
    assert all(app.groups[m].version == 1 for m in ["VPPOMSP", "GridMSP", *AGGS])
    assert all(not app.groups[m].values for m in ["VPPOMSP", "GridMSP", *AGGS])
    assert target.channel_group.groups["Application"].values["ACLs"].value == b"acl"
    assert set(app.policies) == {"Admins", "LifecycleEndorsement", "Endorsement"}
    assert all(p.version == 2 for p in app.policies.values())
    assert update.write_set.groups["Orderer"].policies["Admins"].version == 2
    assert config_policy.required_policies(current, update) == [
        "/Channel/Application/Admins",
        "/Channel/Orderer/Admins",
    ]


def test_the_generated_configuration_must_hold_the_new_member() -> None:
    with pytest.raises(ValueError, match="no Agg9MSP group"):
        target_config(channel(AGGS, 2), _generated("Agg4MSP"), "Agg9MSP")


# --- signatures, each organisation's own file ----------------------------------------------
def _signature(mspid: str) -> configtx_pb2.ConfigSignature:
    creator = identities_pb2.SerializedIdentity(mspid=mspid, id_bytes=b"cert")
    header = common_pb2.SignatureHeader(creator=creator.SerializeToString(), nonce=b"n")
    return configtx_pb2.ConfigSignature(
        signature_header=header.SerializeToString(), signature=mspid.encode()
    )


def test_collected_signatures_are_merged_into_the_update(tmp_path: Path) -> None:
    current = channel(AGGS, 2)
    update = compute_update(
        "vpp-main", current, target_config(current, _generated("Agg4MSP"), "Agg4MSP")
    )
    unsigned = tmp_path / "update.pb"
    unsigned.write_bytes(update_envelope(update).SerializeToString())
    merged = tmp_path / "merged.pb"
    merged.write_bytes(with_signatures(unsigned, [_signature("GridMSP"), _signature("Agg1MSP")]))
    found = signatures(merged)
    assert [config_policy.signer_mspid(s) for s in found] == ["GridMSP", "Agg1MSP"]
    assert signatures(unsigned) == []  # the proposal itself is left as it was
    payload = common_pb2.Payload.FromString(
        common_pb2.Envelope.FromString(merged.read_bytes()).payload
    )
    carried = configtx_pb2.ConfigUpdateEnvelope.FromString(payload.data).config_update
    assert configtx_pb2.ConfigUpdate.FromString(carried) == update


# --- the public MSP definition ------------------------------------------------------------
def _msp(folder: Path) -> Path:
    (folder / "cacerts").mkdir(parents=True)
    (folder / "cacerts" / "ca.pem").write_text("ROOT")
    (folder / "tlscacerts").mkdir()
    (folder / "tlscacerts" / "tlsca.pem").write_text("TLSROOT")
    (folder / "keystore").mkdir()
    (folder / "keystore" / "priv_sk.pem").write_text("SECRET KEY")
    (folder / "signcerts").mkdir()
    (folder / "signcerts" / "admin.pem").write_text("ADMIN CERT")
    (folder / "config.yaml").write_text("NodeOUs: {Enable: true}\n")
    return folder


def test_the_definition_carries_public_certificates_only(tmp_path: Path) -> None:
    out = msp_definition.export(
        "Agg7MSP", _msp(tmp_path / "msp"), "127.0.0.1", 8081, tmp_path / "Agg7MSP.json"
    )
    text = out.read_text()
    assert "SECRET KEY" not in text and "ADMIN CERT" not in text
    definition = msp_definition.load(out)
    assert definition["anchor_peer"] == {"host": "127.0.0.1", "port": 8081}
    folder = msp_definition.materialise(definition, tmp_path / "received")
    assert (folder / "cacerts" / "ca.pem").read_text() == "ROOT"
    assert (folder / "tlscacerts" / "tlsca.pem").read_text() == "TLSROOT"
    assert not (folder / "keystore").exists()


def test_a_definition_cannot_write_outside_its_folder(tmp_path: Path) -> None:
    out = msp_definition.export("Agg7MSP", _msp(tmp_path / "msp"), "h", 1, tmp_path / "d.json")
    definition = msp_definition.load(out)
    definition["msp"]["cacerts"] = {"../../evil.pem": "X"}
    with pytest.raises(ValueError, match="not a plain file name"):
        msp_definition.materialise(definition, tmp_path / "received")
    definition["msp"] = {"keystore": {"k.pem": "X"}}
    with pytest.raises(ValueError, match="not a public MSP folder"):
        msp_definition.materialise(definition, tmp_path / "received")


def test_a_file_that_is_not_a_definition_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="bad.json: format"):
        msp_definition.load(bad)


# --- chaincode definitions for a member that joins later ------------------------------------
class FakeLifecycle:
    """Fabric's _lifecycle as seen through vpp_network.fabric_cli: one committed definition,
    approvals per org, and its refusal to redefine a committed sequence."""

    def __init__(self, plan: object, changed: bool) -> None:
        self.plan = plan
        self.changed = changed  # the plan's definition differs from the committed one
        self.calls: list[tuple[str, ...]] = []

    def committed(self, plan: object, org: object, channel: str) -> list[dict[str, object]]:
        return [{"name": "market", "sequence": 1}]

    def run(self, argv: list[str], env: dict[str, str], what: str, timeout: float = 0) -> str:
        mspid = env["CORE_PEER_LOCALMSPID"]
        if "querycommitted" in argv:
            return json.dumps({"sequence": 1, "approvals": {mspid: mspid != "Agg7MSP"}})
        sequence = argv[argv.index("--sequence") + 1]
        self.calls.append(("approve", mspid, sequence))
        if self.changed and sequence == "1":
            raise FabricCommandError(
                "attempted to redefine the current committed sequence (1) for namespace market "
                "with different parameters"
            )
        return ""

    def approve_and_commit(
        self, plan: object, channel: str, ids: dict[str, str], sequence: int | None = None
    ) -> None:
        self.calls.append(("approve_and_commit", channel, str(sequence)))


@pytest.mark.parametrize("changed", [False, True])
def test_a_late_member_approves_or_everyone_redefines(
    monkeypatch: pytest.MonkeyPatch, changed: bool
) -> None:
    from vpp_network import fabric_cli, late_approval
    from vpp_network.plan import NetworkPlan

    plan = NetworkPlan(aggs=7)
    fake = FakeLifecycle(plan, changed)
    monkeypatch.setattr(fabric_cli, "committed_chaincodes", fake.committed)
    monkeypatch.setattr(fabric_cli, "run", fake.run)
    monkeypatch.setattr(fabric_cli, "approve_and_commit", fake.approve_and_commit)
    ids = {org.mspid: f"market_1.0_{org.name.lower()}:x" for org in plan.peer_orgs}
    late_approval.ensure_definition(plan, "vpp-main", ids, log=lambda _m: None)
    # Only the member without an approval approves the committed sequence as it is ...
    assert fake.calls[0] == ("approve", "Agg7MSP", "1")
    if changed:  # ... and a definition that changed is approved by all at #2 and committed
        assert fake.calls[1:] == [("approve_and_commit", "vpp-main", "2")]
    else:
        assert fake.calls[1:] == []
