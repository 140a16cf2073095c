"""Node and channel configuration: configtx.yaml, orderer.yaml and core.yaml per process.

Fabric's own sample configs (from the module in Go's cache) are the base;
only what this network needs is changed, so a reader can diff ours against
Fabric's to see every decision.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from vpp_network import chaincode_tls
from vpp_network.build import fabric_config_dir
from vpp_network.fabric_cli import run
from vpp_network.plan import (
    ORDERER_MSPID,
    Channel,
    NetworkPlan,
    Orderer,
    PeerOrg,
    repo_root,
)

# SmartBFT cuts a block after this interval or this many requests, whichever first;
# Raft cuts after BatchTimeout. Both are stated in docs/benchmarks.md.
BATCH_MAX_INTERVAL = "100ms"
BATCH_TIMEOUT = "100ms"
BATCH_MAX_COUNT = 500

# SmartBFT failure detection (docs/reliability.md). Fabric's sample waits 20 s before a
# follower complains about a request the leader does not order and 1 min without
# heartbeats before it suspects the leader; with a crashed leader every submitter then
# waits 20-60 s. These shorter values keep a large margin over the ordering latency
# on a loaded 2-core machine (well under 1 s) while recovering in seconds.
BFT_REQUEST_COMPLAIN_TIMEOUT = "6s"
BFT_VIEW_CHANGE_RESEND_INTERVAL = "2s"
BFT_VIEW_CHANGE_TIMEOUT = "10s"
BFT_LEADER_HEARTBEAT_TIMEOUT = "10s"
# How soon a peer retries an unreachable gossip peer (see write_peer_config).
GOSSIP_RECONNECT_INTERVAL = "5s"
# Private data reconciliation (docs/sealed-orders.md, "A peer that was down"). A member
# peer of orderBook that lacks a committed order (rebuilt from a snapshot, or it committed
# the block while no other member could hand it the data) refuses ClearPeriod with
# ORDER_DATA_MISSING until its reconciler has pulled the order from the other member.
# Fabric's sample waits 1 min between reconciliation rounds and retries data a round could
# not get (the other member was down or did not answer within 5 s) only after 60 min: a
# recovered peer could hold up clearing for an hour. A round with nothing missing is one
# index scan per channel, so rounds every 5 s and a retry of the deprioritised data every
# minute cost nothing measurable.
PVTDATA_RECONCILE_INTERVAL = "5s"
PVTDATA_DEPRIORITIZED_RETRY_INTERVAL = "1m"


def _sig(rule: str) -> dict[str, str]:
    return {"Type": "Signature", "Rule": rule}


def _meta(rule: str) -> dict[str, str]:
    return {"Type": "ImplicitMeta", "Rule": rule}


def _peer_org_section(plan: NetworkPlan, org: PeerOrg) -> dict[str, Any]:
    m = org.mspid
    return {
        "Name": m,
        "ID": m,
        "MSPDir": str(plan.peer_org_dir(org) / "msp"),
        "Policies": {
            "Readers": _sig(f"OR('{m}.admin','{m}.peer','{m}.client')"),
            "Writers": _sig(f"OR('{m}.admin','{m}.client')"),
            "Admins": _sig(f"OR('{m}.admin')"),
            "Endorsement": _sig(f"OR('{m}.peer')"),
        },
        "AnchorPeers": [{"Host": plan.dial_host(org.peer_host), "Port": org.port}],
    }


def _orderer_org_section(plan: NetworkPlan) -> dict[str, Any]:
    m = ORDERER_MSPID
    return {
        "Name": m,
        "ID": m,
        "MSPDir": str(plan.orderer_org_dir() / "msp"),
        "Policies": {
            "Readers": _sig(f"OR('{m}.member')"),
            "Writers": _sig(f"OR('{m}.member')"),
            "Admins": _sig(f"OR('{m}.admin')"),
        },
        "OrdererEndpoints": [f"{plan.dial_host(o.host)}:{o.port}" for o in plan.orderers],
    }


def _orderer_section(plan: NetworkPlan, channel: Channel) -> dict[str, Any]:
    consenters = []
    for o in plan.orderers:
        d = plan.orderer_dir(o)
        consenters.append(
            {
                "ID": o.number,
                "Host": plan.dial_host(o.host),
                "Port": o.port,
                "MSPID": ORDERER_MSPID,
                "Identity": str(d / "msp" / "signcerts" / f"{o.host}-cert.pem"),
                "ClientTLSCert": str(d / "tls" / "server.crt"),
                "ServerTLSCert": str(d / "tls" / "server.crt"),
            }
        )
    section: dict[str, Any] = {
        "OrdererType": plan.consensus,
        "BatchTimeout": BATCH_TIMEOUT,
        "BatchSize": {
            "MaxMessageCount": BATCH_MAX_COUNT,
            "AbsoluteMaxBytes": "10 MB",
            "PreferredMaxBytes": "2 MB",
        },
    }
    if plan.consensus == "BFT":
        section["ConsenterMapping"] = consenters
        section["SmartBFT"] = {
            "RequestBatchMaxCount": BATCH_MAX_COUNT,
            "RequestBatchMaxInterval": BATCH_MAX_INTERVAL,
            "RequestForwardTimeout": "2s",
            "RequestComplainTimeout": BFT_REQUEST_COMPLAIN_TIMEOUT,
            "RequestAutoRemoveTimeout": "3m0s",
            "ViewChangeResendInterval": BFT_VIEW_CHANGE_RESEND_INTERVAL,
            "ViewChangeTimeout": BFT_VIEW_CHANGE_TIMEOUT,
            "LeaderHeartbeatTimeout": BFT_LEADER_HEARTBEAT_TIMEOUT,
            "CollectTimeout": "1s",
            "IncomingMessageBufferSize": 200,
            "RequestPoolSize": 100000,
            "LeaderHeartbeatCount": 10,
        }
    else:
        section["EtcdRaft"] = {
            "Consenters": [
                {k: c[k] for k in ("Host", "Port", "ClientTLSCert", "ServerTLSCert")}
                for c in consenters
            ],
            "Options": {
                "TickInterval": "500ms",
                "ElectionTick": 10,
                "HeartbeatTick": 1,
                "MaxInflightBlocks": 5,
                "SnapshotIntervalSize": "16 MB",
            },
        }
    return section | {
        "Organizations": [_orderer_org_section(plan)],
        "Policies": {
            "Readers": _meta("ANY Readers"),
            "Writers": _meta("ANY Writers"),
            # The ordering parameters (batching, consenters, ...) of a channel change only
            # with the orderer org's admin AND the consent the channel's own changes need.
            "Admins": _sig(f"AND('{ORDERER_MSPID}.admin',{channel.consent_rule('admin')})"),
            "BlockValidation": _meta("ANY Writers"),
        },
        "Capabilities": {"V2_0": True},
    }


def _channel_profile(plan: NetworkPlan, channel: Channel) -> dict[str, Any]:
    return {
        "Policies": {
            "Readers": _meta("ANY Readers"),
            "Writers": _meta("ANY Writers"),
            "Admins": _meta("MAJORITY Admins"),
        },
        "Capabilities": {"V3_0": True},
        "Orderer": _orderer_section(plan, channel),
        "Application": {
            "Organizations": [_peer_org_section(plan, org) for org in channel.orgs],
            "Policies": {
                "Readers": _meta("ANY Readers"),
                "Writers": _meta("ANY Writers"),
                # No change to the channel's application part (members, policies, ACLs)
                # without the steward's admin and a majority of the members' admins
                # (AggN on agg<N>, the VPPO on vpp-main). /Channel/Admins is MAJORITY of
                # Application and Orderer Admins, i.e. both, so it needs the same.
                "Admins": _sig(channel.consent_rule("admin")),
                # A chaincode definition commits only if the steward's peer and a
                # majority endorse the commit, and a peer endorses it only after its
                # own org approved (Fabric's _lifecycle): so no definition without them.
                "LifecycleEndorsement": _sig(channel.consent_rule("peer")),
                "Endorsement": _sig(channel.consent_rule("peer")),
            },
            "Capabilities": {"V2_5": True},
        },
    }


def profile_name(channel: Channel) -> str:
    return "Channel_" + channel.name.replace("-", "_")


def write_channel_blocks(plan: NetworkPlan) -> None:
    """configtx.yaml with one profile per channel, then a genesis block for each."""
    cfg_dir = plan.net_dir / "configtx"
    cfg_dir.mkdir(parents=True, exist_ok=True)
    configtx = {"Profiles": {profile_name(c): _channel_profile(plan, c) for c in plan.channels}}
    (cfg_dir / "configtx.yaml").write_text(yaml.safe_dump(configtx, sort_keys=False))
    for channel in plan.channels:
        block = plan.channel_block(channel.name)
        block.parent.mkdir(parents=True, exist_ok=True)
        run(
            [
                str(plan.bin_dir / "configtxgen"),
                "-configPath",
                str(cfg_dir),
                "-profile",
                profile_name(channel),
                "-channelID",
                channel.name,
                "-outputBlock",
                str(block),
            ],
            dict(os.environ),
            f"configtxgen for channel {channel.name}",
        )


def _load_sample(name: str) -> dict[str, Any]:
    return yaml.safe_load((fabric_config_dir() / name).read_text())


def write_orderer_config(plan: NetworkPlan, orderer: Orderer, sample: dict[str, Any]) -> Path:
    home = plan.node_home(orderer.name)
    tls = plan.orderer_dir(orderer) / "tls"
    cfg = yaml.safe_load(yaml.safe_dump(sample))
    general = cfg["General"]
    address = plan.host_of(orderer).address
    general["ListenAddress"] = address
    general["ListenPort"] = orderer.port
    general["TLS"].update(
        Enabled=True,
        PrivateKey=str(tls / "server.key"),
        Certificate=str(tls / "server.crt"),
        RootCAs=[str(tls / "ca.crt")],
        ClientAuthRequired=False,
    )
    general["Cluster"].update(
        ClientCertificate=str(tls / "server.crt"),
        ClientPrivateKey=str(tls / "server.key"),
        RootCAs=[str(tls / "ca.crt")],
    )
    general["BootstrapMethod"] = "none"
    general["LocalMSPDir"] = str(plan.orderer_dir(orderer) / "msp")
    general["LocalMSPID"] = ORDERER_MSPID
    cfg["FileLedger"]["Location"] = str(home / "ledger")
    cfg["Admin"]["ListenAddress"] = f"{address}:{orderer.admin_port}"
    cfg["Admin"]["TLS"].update(
        Enabled=True,
        PrivateKey=str(tls / "server.key"),
        Certificate=str(tls / "server.crt"),
        RootCAs=[str(tls / "ca.crt")],
        ClientAuthRequired=True,
        ClientRootCAs=[str(tls / "ca.crt")],
    )
    cfg["Operations"]["ListenAddress"] = f"{address}:{orderer.operations_port}"
    cfg["Operations"]["TLS"]["Enabled"] = False
    cfg["Metrics"]["Provider"] = "disabled"
    cfg["Consensus"] = {"WALDir": str(home / "wal"), "SnapDir": str(home / "snapshot")}
    home.mkdir(parents=True, exist_ok=True)
    (home / "orderer.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return home


def ccaas_builder_dir() -> Path:
    return repo_root() / "network" / "ccaas-builder"


def write_peer_config(plan: NetworkPlan, org: PeerOrg, sample: dict[str, Any]) -> Path:
    home = plan.node_home(org.peer_host)
    peer_dir = plan.peer_dir(org)
    cfg = yaml.safe_load(yaml.safe_dump(sample))
    peer = cfg["peer"]
    # Listen on the machine's own address; tell others the host name they dial
    # (127.0.0.1 for both on the loopback layout).
    listen = plan.host_of(org).address
    dial = plan.dial_host(org.peer_host)
    address = f"{dial}:{org.port}"
    peer.update(
        id=org.peer_host,
        listenAddress=f"{listen}:{org.port}",
        address=address,
        chaincodeListenAddress=f"{listen}:{org.chaincode_port}",
        chaincodeAddress=f"{dial}:{org.chaincode_port}",
        mspConfigPath=str(peer_dir / "msp"),
        localMspId=org.mspid,
        fileSystemPath=str(home / "data"),
    )
    peer["gossip"].update(
        bootstrap=address,
        endpoint=address,
        externalEndpoint=address,
        useLeaderElection=True,
        orgLeader=False,
        # Peers started together first fail to reach each other and retry after this
        # interval; until then a Gateway's discovery knows no other org's peer and refuses
        # every submit. The sample's 25 s made a restarted network unusable for ~26 s.
        reconnectInterval=GOSSIP_RECONNECT_INTERVAL,
    )
    # Sealed orders (docs/sealed-orders.md): a transaction that failed validation never
    # needs its private data, yet by default a member peer missing it (e.g. an order endorsed
    # without the aggregator, refused by its key-level policy) tries to pull it from other
    # peers for pullRetryThreshold (60 s) before committing the block: a stalled peer.
    pvt_data = peer["gossip"].setdefault("pvtData", {})
    pvt_data["skipPullingInvalidTransactionsDuringCommit"] = True
    pvt_data.update(reconciliationEnabled=True, reconcileSleepInterval=PVTDATA_RECONCILE_INTERVAL)
    cfg["ledger"].setdefault("pvtdataStore", {})["deprioritizedDataReconcilerInterval"] = (
        PVTDATA_DEPRIORITIZED_RETRY_INTERVAL
    )
    # The sample writes snapshots to /var/hyperledger/production/snapshots, one folder for
    # every peer of every network on the machine; each peer keeps its own under its data.
    cfg["ledger"].setdefault("snapshots", {})["rootDir"] = str(home / "data" / "snapshots")
    peer["tls"].update(
        enabled=True,
        clientAuthRequired=False,
        cert={"file": str(peer_dir / "tls" / "server.crt")},
        key={"file": str(peer_dir / "tls" / "server.key")},
        rootcert={"file": str(peer_dir / "tls" / "ca.crt")},
    )
    # No Docker here: an empty endpoint keeps /healthz green once an external builder exists.
    cfg["vm"]["endpoint"] = ""
    # The builder's release step adds the peer's client certificate for the chaincode
    # servers' mutual TLS from these variables (set on the peer process, network.py).
    cfg["chaincode"]["externalBuilders"] = [
        {
            "name": "vpp-ccaas",
            "path": str(ccaas_builder_dir()),
            "propagateEnvironment": [
                chaincode_tls.CLIENT_CERT_ENV,
                chaincode_tls.CLIENT_KEY_ENV,
            ],
        }
    ]
    cfg["operations"]["listenAddress"] = f"{listen}:{org.operations_port}"
    cfg["operations"]["tls"]["enabled"] = False
    cfg["metrics"]["provider"] = "disabled"
    home.mkdir(parents=True, exist_ok=True)
    (home / "core.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return home


def write_node_configs(plan: NetworkPlan) -> None:
    orderer_sample = _load_sample("orderer.yaml")
    core_sample = _load_sample("core.yaml")
    for orderer in plan.orderers:
        write_orderer_config(plan, orderer, orderer_sample)
    for org in plan.peer_orgs:
        write_peer_config(plan, org, core_sample)
    cli_home = plan.node_home("cli")
    cli_home.mkdir(parents=True, exist_ok=True)
    (cli_home / "core.yaml").write_text(yaml.safe_dump(core_sample, sort_keys=False))


def refresh_peer_configs(plan: NetworkPlan) -> list[str]:
    """Rewrites every existing peer's core.yaml from the plan; the peers rewritten.

    Run by network-up before it starts the processes of a network made earlier, so a
    setting changed here (e.g. the reconciliation intervals) reaches that network
    at its next start, not only networks made after the change. The base is the
    copy of Fabric's sample that the network keeps (cli/core.yaml): no Go needed.
    """
    sample_file = plan.node_home("cli") / "core.yaml"
    if not sample_file.exists():
        return []
    sample = yaml.safe_load(sample_file.read_text())
    done = []
    for org in plan.peer_orgs:
        if (plan.node_home(org.peer_host) / "core.yaml").exists():
            write_peer_config(plan, org, sample)
            done.append(org.peer_host)
    return done
