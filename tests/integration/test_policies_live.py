"""Channel policies and independent endorsers, tried against the real orderers and peers.

On ``agg<N>`` nothing about the channel (configuration, ordering parameters,
chaincode definitions) changes without AggN's admin; on ``vpp-main`` nothing
without the VPPO's and a majority. Each organisation's peer reaches only its
own organisation's chaincode server, over mutual TLS. Updates are computed in
Python (vpp_network.channel_config) and signed and sent with Fabric's own
``peer channel signconfigtx`` / ``update`` as each organisation's admin.

The accepted updates these tests make are no-ops for the network: an explicit
ACL equal to Fabric's default (``_lifecycle/QueryChaincodeDefinition`` ->
Writers) is added or removed in turn.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from fabric_protos.common import configtx_pb2, policies_pb2
from fabric_protos.orderer import configuration_pb2 as orderer_config_pb2
from fabric_protos.peer import chaincode_shim_pb2_grpc, configuration_pb2
from vpp_network import channel_config, fabric_cli
from vpp_network.fabric_cli import FabricCommandError
from vpp_network.network import Network
from vpp_network.plan import MAIN_CHANNEL, PeerOrg

pytestmark = pytest.mark.network

NOOP_ACL = "_lifecycle/QueryChaincodeDefinition"
NOOP_ACL_POLICY = "/Channel/Application/Writers"  # Fabric's default for it
Edit = Callable[[configtx_pb2.Config], None]


def toggle_noop_acl(config: configtx_pb2.Config) -> None:
    app = config.channel_group.groups["Application"]
    if "ACLs" in app.values:
        del app.values["ACLs"]
        return
    acls = configuration_pb2.ACLs()
    acls.acls[NOOP_ACL].policy_ref = NOOP_ACL_POLICY
    app.values["ACLs"].CopyFrom(
        configtx_pb2.ConfigValue(mod_policy="Admins", value=acls.SerializeToString())
    )


def majority_admins(config: configtx_pb2.Config) -> None:
    """The attack of issue 10: back to "any two of three" for the channel and its chaincode."""
    app = config.channel_group.groups["Application"]
    for name, sub in (("Admins", "Admins"), ("LifecycleEndorsement", "Endorsement")):
        meta = policies_pb2.ImplicitMetaPolicy(
            sub_policy=sub, rule=policies_pb2.ImplicitMetaPolicy.MAJORITY
        )
        app.policies[name].policy.CopyFrom(
            policies_pb2.Policy(
                type=policies_pb2.Policy.IMPLICIT_META, value=meta.SerializeToString()
            )
        )


def bigger_blocks(config: configtx_pb2.Config) -> None:
    value = config.channel_group.groups["Orderer"].values["BatchSize"]
    batch = orderer_config_pb2.BatchSize.FromString(value.value)
    batch.max_message_count += 1
    value.value = batch.SerializeToString()


def config_of(network: Network, channel: str, work: Path) -> configtx_pb2.Config:
    return channel_config.fetch_config(network.plan, network.plan.vppo, channel, work)


def attempt(
    network: Network,
    channel: str,
    edit: Edit,
    signers: list[PeerOrg | None],
    work: Path,
) -> FabricCommandError | None:
    """Proposes ``edit`` on ``channel`` signed by ``signers`` (None: the orderer org's admin;
    the last one submits); the orderer's refusal, or None if the update was accepted."""
    original = config_of(network, channel, work)
    updated = configtx_pb2.Config()
    updated.CopyFrom(original)
    edit(updated)
    envelope = work / f"{channel}-update.pb"
    update = channel_config.compute_update(channel, original, updated)
    envelope.write_bytes(channel_config.update_envelope(update).SerializeToString())
    *cosigners, submitter = signers
    assert submitter is not None, "an application org's admin submits"
    for signer in cosigners:
        channel_config.sign(network.plan, signer, envelope)
    assert len(channel_config.signatures(envelope)) == len(cosigners)
    try:
        channel_config.submit(network.plan, submitter, channel, envelope)
    except FabricCommandError as exc:
        return exc
    return None


def assert_refused(
    network: Network, channel: str, edit: Edit, signers: list, work: Path, path: str
) -> None:
    """Refused by the orderer for the policy at ``path``, and the configuration unchanged."""
    before = config_of(network, channel, work)
    refusal = attempt(network, channel, edit, signers, work)
    assert refusal is not None, f"{channel}: update signed by {signers} was accepted"
    text = str(refusal)
    assert "BAD_REQUEST" in text and path in text and "not satisfied" in text, text
    after = config_of(network, channel, work)
    assert after.sequence == before.sequence
    assert after.SerializeToString(deterministic=True) == before.SerializeToString(
        deterministic=True
    )


def assert_accepted(network: Network, channel: str, signers: list, work: Path) -> None:
    before = config_of(network, channel, work).sequence
    refusal = attempt(network, channel, toggle_noop_acl, signers, work)
    assert refusal is None, str(refusal)
    # The orderer accepted the update; it is in force once the config block reached the
    # VPPO's peer, which under load can take a few seconds.
    deadline = time.monotonic() + 60
    while (sequence := config_of(network, channel, work).sequence) == before:
        if time.monotonic() > deadline:
            break
        time.sleep(1)
    assert sequence == before + 1


# --- agg<N>: nothing without AggN -----------------------------------------------------------
def test_agg3_config_needs_agg3s_admin(network: Network, tmp_path: Path) -> None:
    plan = network.plan
    agg3 = plan.agg_orgs[2]
    # VPPO and Grid together were a majority of agg3's three admins: no longer enough.
    assert_refused(
        network, "agg3", majority_admins, [plan.vppo, plan.grid], tmp_path, "/Channel/Application"
    )
    assert_refused(
        network, "agg3", toggle_noop_acl, [plan.vppo, plan.grid], tmp_path, "/Channel/Application"
    )
    # The orderer org cannot retune agg3's ordering with them either.
    assert_refused(
        network, "agg3", bigger_blocks, [None, plan.vppo, plan.grid], tmp_path, "/Channel/Orderer"
    )
    # Agg3 alone is no majority.
    assert_refused(network, "agg3", toggle_noop_acl, [agg3], tmp_path, "/Channel/Application")
    # Agg3 with one more: the same update passes (so the refusals above are the policy's).
    assert_accepted(network, "agg3", [plan.vppo, agg3], tmp_path)


def _approve(network: Network, org: PeerOrg, channel: str, sequence: int, policy: str) -> None:
    plan = network.plan
    cc = plan.meter
    try:
        fabric_cli.run(
            [
                str(plan.bin_dir / "peer"),
                *("lifecycle", "chaincode", "approveformyorg"),
                *("--channelID", channel, "--name", cc.name, "--version", cc.version),
                *("--sequence", str(sequence), "--signature-policy", policy),
                *("--package-id", network.packages()[cc.name][org.mspid]),
                *fabric_cli.orderer_args(plan),
            ],
            fabric_cli.admin_env(plan, org),
            f"{org.name} approving meter #{sequence} on {channel}",
        )
    except FabricCommandError as exc:  # approved by an earlier run of this test
        if "unchanged content" not in str(exc):
            raise


def test_meter_definition_without_agg3_is_refused(network: Network) -> None:
    """VPPO and Grid approve a meter definition that drops Agg3 from its endorsement and
    commit it with their two peers: the commit is invalid, the definition unchanged."""
    plan = network.plan
    (before,) = fabric_cli.committed_chaincodes(plan, plan.vppo, "agg3")
    sequence = int(before["sequence"]) + 1
    hostile = "AND('VPPOMSP.peer','GridMSP.peer')"
    for org in (plan.vppo, plan.grid):
        _approve(network, org, "agg3", sequence, hostile)
    peers: list[str] = []
    for org in (plan.vppo, plan.grid):
        peers += ["--peerAddresses", f"{plan.host_of(org).address}:{org.port}"]
        peers += ["--tlsRootCertFiles", str(plan.peer_tls_ca(org))]
    with pytest.raises(FabricCommandError) as refused:
        fabric_cli.run(
            [
                str(plan.bin_dir / "peer"),
                *("lifecycle", "chaincode", "commit", "--channelID", "agg3"),
                *("--name", "meter", "--version", plan.meter.version),
                *("--sequence", str(sequence), "--signature-policy", hostile),
                *fabric_cli.orderer_args(plan),
                *peers,
            ],
            fabric_cli.admin_env(plan, plan.vppo),
            "committing meter without Agg3",
        )
    assert "ENDORSEMENT_POLICY_FAILURE" in str(refused.value), str(refused.value)
    (after,) = fabric_cli.committed_chaincodes(plan, plan.agg_orgs[2], "agg3")
    assert after == before


# --- vpp-main: nothing without the VPPO and a majority ------------------------------------
def test_vpp_main_config_needs_the_vppo(network: Network, tmp_path: Path) -> None:
    plan = network.plan
    everyone_else = [org for org in plan.peer_orgs if org != plan.vppo]
    assert_refused(
        network, MAIN_CHANNEL, toggle_noop_acl, everyone_else, tmp_path, "/Channel/Application"
    )
    main = plan.channels[0]
    # The VPPO with too few others is no majority either.
    too_few = [plan.vppo, *everyone_else[: main.majority - 2]]
    assert_refused(
        network, MAIN_CHANNEL, toggle_noop_acl, too_few, tmp_path, "/Channel/Application"
    )
    assert_accepted(
        network, MAIN_CHANNEL, [*everyone_else[: main.majority - 1], plan.vppo], tmp_path
    )


# --- each organisation's chaincode server serves its own peer only ------------------------
def _dial(
    network: Network, org: PeerOrg, cert: Path | None, key: Path | None
) -> grpc.RpcError | None:
    """Opens a chaincode stream to ``org``'s market server with a client pair; the error, or
    None if the server registered (what it does for its own peer)."""
    plan = network.plan
    credentials = grpc.ssl_channel_credentials(
        root_certificates=plan.peer_tls_ca(org).read_bytes(),
        private_key=key.read_bytes() if key else None,
        certificate_chain=cert.read_bytes() if cert else None,
    )
    address = f"{plan.host_of(org).address}:{plan.market.port(org)}"
    options = [("grpc.ssl_target_name_override", plan.market.tls_host(org))]
    with grpc.secure_channel(address, credentials, options=options) as channel:
        stream = chaincode_shim_pb2_grpc.ChaincodeStub(channel).Connect(iter(()), timeout=10)
        try:
            first = next(stream)
        except grpc.RpcError as exc:
            return exc
        stream.cancel()
        assert first.type == first.REGISTER
        return None


def test_a_chaincode_server_serves_only_its_own_peer(network: Network) -> None:
    plan = network.plan
    vppo, grid = plan.vppo, plan.grid
    own = plan.peer_dir(vppo) / "tls"
    assert _dial(network, vppo, own / "server.crt", own / "server.key") is None
    no_cert = _dial(network, vppo, None, None)
    other_org = plan.peer_dir(grid) / "tls"
    grids_peer = _dial(network, vppo, other_org / "server.crt", other_org / "server.key")
    # A certificate from the VPPO's own TLS CA that does not name its peer: the VPPO's
    # meter chaincode server's (admins enrolled from Fabric CA hold no TLS client pair).
    sibling = plan.peer_org_dir(vppo) / "chaincode" / "meter"
    own_admin = _dial(network, vppo, sibling / "server.crt", sibling / "server.key")
    assert no_cert is not None and no_cert.code() == grpc.StatusCode.UNAVAILABLE
    assert grids_peer is not None and grids_peer.code() == grpc.StatusCode.UNAVAILABLE
    assert own_admin is not None and own_admin.code() == grpc.StatusCode.PERMISSION_DENIED
