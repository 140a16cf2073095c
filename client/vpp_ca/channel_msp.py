"""Puts a CA's new CRL into an organisation's MSP in a channel's configuration, so
every peer of the channel refuses the revoked certificates.

Fabric peers do not ask the CA: an MSP knows a certificate is revoked only from
the ``revocation_list`` of its definition in the channel configuration. Changing
it is a config transaction, done here without configtxlator, directly on the
protobuf messages (hyperledger-fabric-protos):

1. read the channel's current ``common.Config`` from a peer (cscc GetChannelConfig);
2. copy the organisation's ``MSP`` value with the new CRL in place of the previous
   CRL of the same issuer;
3. build the ``ConfigUpdate`` (vpp_network.channel_config.compute_update, as
   configtxlator's would): the read set pins the versions of the groups on the
   path, the write set carries the value with its version + 1;
4. sign it with the admins the value's ``mod_policy`` needs (the organisation's
   own ``Admins``), wrap it in a CONFIG_UPDATE envelope and broadcast it to an
   orderer;
5. wait until every peer of the channel holds the new configuration.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from cryptography import x509
from fabric_protos.common import common_pb2, configtx_pb2
from fabric_protos.msp import msp_config_pb2
from fabric_protos.orderer import ab_pb2_grpc
from google.protobuf import timestamp_pb2
from vpp_gateway import ConnectionProfile, Gateway
from vpp_gateway.identity import Identity, Signer
from vpp_gateway.messages import new_nonce

from vpp_ca.errors import CAError

MSP_KEY = "MSP"
APPLICATION = "Application"
BROADCAST_TIMEOUT = 15.0
APPLY_TIMEOUT = 60.0


class ChannelUpdateError(CAError):
    """The orderer refused the config update, or the peers did not apply it in time."""


@dataclass(frozen=True)
class Admin:
    """An identity that signs the config update (its organisation's admin)."""

    identity: Identity
    signer: Signer


def fetch_config(gateway: Gateway, channel: str, org: str | None = None) -> configtx_pb2.Config:
    """The channel's current configuration as a peer of ``org`` (default: ours) holds it."""
    raw = (
        gateway.network(channel)
        .contract("cscc")
        .new_proposal("GetChannelConfig", channel, endorsing_orgs=[org or gateway.identity.mspid])
        .evaluate()
    )
    return configtx_pb2.Config.FromString(raw)


def _org_group_path(config: configtx_pb2.Config, mspid: str) -> tuple[str, str] | None:
    """(section, group name) of the organisation whose MSP is ``mspid``."""
    for section, group in config.channel_group.groups.items():
        for name, org in group.groups.items():
            value = org.values.get(MSP_KEY)
            if value is None:
                continue
            msp = msp_config_pb2.MSPConfig.FromString(value.value)
            if msp_config_pb2.FabricMSPConfig.FromString(msp.config).name == mspid:
                return section, name
    return None


def fabric_msp(config: configtx_pb2.Config, mspid: str) -> msp_config_pb2.FabricMSPConfig | None:
    path = _org_group_path(config, mspid)
    if path is None:
        return None
    value = config.channel_group.groups[path[0]].groups[path[1]].values[MSP_KEY]
    return msp_config_pb2.FabricMSPConfig.FromString(
        msp_config_pb2.MSPConfig.FromString(value.value).config
    )


def _issuer(crl_pem: bytes) -> x509.Name | None:
    try:
        return x509.load_pem_x509_crl(crl_pem).issuer
    except ValueError:
        return None


def with_crl(msp: msp_config_pb2.FabricMSPConfig, crl_pem: bytes) -> bytes:
    """The MSP definition with ``crl_pem`` replacing earlier CRLs of the same issuer."""
    issuer = x509.load_pem_x509_crl(crl_pem).issuer
    updated = msp_config_pb2.FabricMSPConfig()
    updated.CopyFrom(msp)
    kept = [c for c in msp.revocation_list if _issuer(c) != issuer]
    del updated.revocation_list[:]
    updated.revocation_list.extend([*kept, crl_pem])
    return updated.SerializeToString()


def revoked_serials(msp: msp_config_pb2.FabricMSPConfig) -> set[int]:
    """Serial numbers the MSP's CRLs list (what the peers refuse)."""
    serials: set[int] = set()
    for crl_pem in msp.revocation_list:
        try:
            crl = x509.load_pem_x509_crl(crl_pem)
        except ValueError:
            continue
        serials |= {r.serial_number for r in crl}
    return serials


def config_update(
    channel: str, config: configtx_pb2.Config, mspid: str, msp_bytes: bytes
) -> configtx_pb2.ConfigUpdate:
    """The ConfigUpdate that sets organisation ``mspid``'s MSP value to ``msp_bytes``
    (read and write sets by vpp_network.channel_config.compute_update, the project's one
    copy of the orderer's diff rules)."""
    from vpp_network.channel_config import compute_update

    path = _org_group_path(config, mspid)
    if path is None:
        raise ChannelUpdateError(f"channel {channel} has no organisation with MSP {mspid}")
    section, org_name = path
    updated = configtx_pb2.Config()
    updated.CopyFrom(config)
    value = updated.channel_group.groups[section].groups[org_name].values[MSP_KEY]
    kind = msp_config_pb2.MSPConfig.FromString(value.value).type
    value.value = msp_config_pb2.MSPConfig(type=kind, config=msp_bytes).SerializeToString()
    return compute_update(channel, config, updated)


def _signature_header(identity: Identity) -> bytes:
    return common_pb2.SignatureHeader(
        creator=identity.serialize(), nonce=new_nonce()
    ).SerializeToString()


def signed_envelope(
    channel: str, update: configtx_pb2.ConfigUpdate, admins: Sequence[Admin]
) -> common_pb2.Envelope:
    """CONFIG_UPDATE envelope: every admin signs the update; the first signs the envelope."""
    update_bytes = update.SerializeToString()
    envelope_data = configtx_pb2.ConfigUpdateEnvelope(config_update=update_bytes)
    for admin in admins:
        header = _signature_header(admin.identity)
        envelope_data.signatures.add(
            signature_header=header, signature=admin.signer.sign(header + update_bytes)
        )
    now = time.time()
    channel_header = common_pb2.ChannelHeader(
        type=common_pb2.CONFIG_UPDATE,
        channel_id=channel,
        timestamp=timestamp_pb2.Timestamp(seconds=int(now), nanos=int(now % 1 * 1e9)),
    )
    payload = common_pb2.Payload(
        header=common_pb2.Header(
            channel_header=channel_header.SerializeToString(),
            signature_header=_signature_header(admins[0].identity),
        ),
        data=envelope_data.SerializeToString(),
    )
    payload_bytes = payload.SerializeToString()
    return common_pb2.Envelope(
        payload=payload_bytes, signature=admins[0].signer.sign(payload_bytes)
    )


def broadcast(profile: ConnectionProfile, envelope: common_pb2.Envelope) -> None:
    """Sends the envelope to the first orderer that accepts it; raises on refusal."""
    problems = []
    for orderer in profile.orderers.values():
        credentials = grpc.ssl_channel_credentials(root_certificates=orderer.tls_ca.read_bytes())
        options = [
            ("grpc.ssl_target_name_override", orderer.host),
            ("grpc.default_authority", orderer.host),
        ]
        with grpc.secure_channel(orderer.address, credentials, options=options) as chan:
            stub = ab_pb2_grpc.AtomicBroadcastStub(chan)
            try:
                responses = stub.Broadcast(iter([envelope]), timeout=BROADCAST_TIMEOUT)
                response = next(iter(responses))
            except grpc.RpcError as exc:
                problems.append(f"{orderer.name}: {exc.code().name} {exc.details()}")
                continue
        if response.status == common_pb2.SUCCESS:
            return
        status = common_pb2.Status.Name(response.status)
        # A refusal (bad signature, policy, version) is the same on every orderer.
        if response.status in (common_pb2.BAD_REQUEST, common_pb2.FORBIDDEN):
            raise ChannelUpdateError(
                f"orderer {orderer.name} refused the config update: {status} {response.info}"
            )
        problems.append(f"{orderer.name}: {status} {response.info}")
    raise ChannelUpdateError("no orderer took the config update: " + "; ".join(problems))


def publish_crl(
    gateway: Gateway,
    profile: ConnectionProfile,
    channel: str,
    mspid: str,
    crl_pem: bytes,
    admins: Sequence[Admin],
    *,
    timeout: float = APPLY_TIMEOUT,
) -> bool:
    """Makes ``crl_pem`` part of ``mspid``'s MSP on ``channel`` and waits until every peer
    of the channel has it. False if the channel already held exactly this CRL."""
    serials = {r.serial_number for r in x509.load_pem_x509_crl(crl_pem)}
    for attempt in range(3):
        config = fetch_config(gateway, channel)
        msp = fabric_msp(config, mspid)
        if msp is None:
            raise ChannelUpdateError(f"channel {channel} has no organisation with MSP {mspid}")
        if crl_pem in msp.revocation_list:
            return False
        update = config_update(channel, config, mspid, with_crl(msp, crl_pem))
        try:
            broadcast(profile, signed_envelope(channel, update, admins))
            break
        except ChannelUpdateError as exc:
            # Another update of the same channel got in first: read again and retry.
            if attempt == 2 or "version" not in str(exc).lower():
                raise
    orgs = sorted(
        {profile.peers[p].mspid for p in profile.channels[channel].peers if p in profile.peers}
    )
    deadline = time.monotonic() + timeout
    pending = set(orgs)
    while pending:
        for org in sorted(pending):
            try:
                msp = fabric_msp(fetch_config(gateway, channel, org), mspid)
            except Exception:  # noqa: BLE001 - a peer that is behind or restarting: ask again
                continue
            if msp is not None and serials <= revoked_serials(msp):
                pending.discard(org)
        if pending and time.monotonic() > deadline:
            raise ChannelUpdateError(
                f"channel {channel}: the peers of {', '.join(sorted(pending))} did not apply "
                f"the new CRL of {mspid} within {timeout:.0f} s"
            )
        if pending:
            time.sleep(0.3)
    return True
