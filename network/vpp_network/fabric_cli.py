"""Thin wrappers over Fabric's own admin commands (peer, osnadmin) run as an org's admin."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from vpp_network import chaincode_tls
from vpp_network.plan import ChaincodeServer, Channel, NetworkPlan, Orderer, PeerOrg

COMMIT_ATTEMPTS = 10


class FabricCommandError(RuntimeError):
    pass


def run(argv: list[str], env: dict[str, str], what: str, timeout: float = 120) -> str:
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise FabricCommandError(f"{what} failed: " + " | ".join(detail))
    return result.stdout + result.stderr


def admin_env(plan: NetworkPlan, org: PeerOrg) -> dict[str, str]:
    """Environment for `peer` commands acting as `org`'s admin against its own peer."""
    return dict(
        os.environ,
        FABRIC_CFG_PATH=str(plan.node_home("cli")),
        FABRIC_LOGGING_SPEC="warning",
        CORE_PEER_LOCALMSPID=org.mspid,
        CORE_PEER_MSPCONFIGPATH=str(plan.admin_msp(org)),
        CORE_PEER_ADDRESS=f"{plan.host_of(org).address}:{org.port}",
        CORE_PEER_TLS_ENABLED="true",
        CORE_PEER_TLS_ROOTCERT_FILE=str(plan.peer_tls_ca(org)),
    )


def orderer_args(plan: NetworkPlan, orderer: Orderer | None = None) -> list[str]:
    o = orderer or plan.orderers[0]
    return [
        "-o",
        f"{plan.host_of(o).address}:{o.port}",
        "--ordererTLSHostnameOverride",
        o.host,
        "--tls",
        "--cafile",
        str(plan.orderer_tls_ca()),
    ]


def osn_join(plan: NetworkPlan, orderer: Orderer, channel: str) -> None:
    admin_tls = plan.orderer_admin_tls()
    run(
        [
            str(plan.bin_dir / "osnadmin"),
            "channel",
            "join",
            "--channelID",
            channel,
            "--config-block",
            str(plan.channel_block(channel)),
            "-o",
            f"{plan.host_of(orderer).address}:{orderer.admin_port}",
            "--ca-file",
            str(plan.orderer_tls_ca()),
            "--client-cert",
            str(admin_tls / "client.crt"),
            "--client-key",
            str(admin_tls / "client.key"),
        ],
        dict(os.environ),
        f"osnadmin channel join {channel} on {orderer.name}",
    )


def peer_join(plan: NetworkPlan, org: PeerOrg, channel: str) -> None:
    run(
        [str(plan.bin_dir / "peer"), "channel", "join", "-b", str(plan.channel_block(channel))],
        admin_env(plan, org),
        f"{org.peer_host} joining {channel}",
    )


def snapshots_dir(plan: NetworkPlan, org: PeerOrg, channel: str) -> Path:
    """Where ``org``'s peer writes its finished snapshots of ``channel`` (its core.yaml's
    ``ledger.snapshots.rootDir``, configs.write_peer_config), one folder per last block."""
    return plan.node_home(org.peer_host) / "data" / "snapshots" / "completed" / channel


def request_snapshot(plan: NetworkPlan, org: PeerOrg, channel: str) -> None:
    """Asks ``org``'s peer for a snapshot of ``channel`` at its current height (block 0 means
    now); the peer writes it under ``snapshots_dir`` a moment later."""
    run(
        [
            str(plan.bin_dir / "peer"),
            "snapshot",
            "submitrequest",
            "-c",
            channel,
            "-b",
            "0",
            "--peerAddress",
            f"{plan.host_of(org).address}:{org.port}",
            "--tlsRootCertFile",
            str(plan.peer_tls_ca(org)),
        ],
        admin_env(plan, org),
        f"snapshot request for {channel} on {org.peer_host}",
    )


def unjoin(plan: NetworkPlan, org: PeerOrg, channel: str, peer_env: dict[str, str]) -> None:
    """Removes ``channel``'s ledger (blocks, state, private data) from ``org``'s peer, which
    must be stopped; ``peer_env`` is the peer process's environment (its core.yaml)."""
    run(
        [str(plan.bin_dir / "peer"), "node", "unjoin", "-c", channel],
        dict(peer_env, FABRIC_LOGGING_SPEC="warning"),
        f"{org.peer_host} unjoining {channel}",
    )


def join_by_snapshot(plan: NetworkPlan, org: PeerOrg, snapshot: Path) -> None:
    """Starts ``org``'s peer joining a channel from a snapshot (it finishes in the background:
    ``join_by_snapshot_running``)."""
    run(
        [str(plan.bin_dir / "peer"), "channel", "joinbysnapshot", "--snapshotpath", str(snapshot)],
        admin_env(plan, org),
        f"{org.peer_host} joining from snapshot {snapshot}",
    )


def join_by_snapshot_running(plan: NetworkPlan, org: PeerOrg) -> bool:
    out = run(
        [str(plan.bin_dir / "peer"), "channel", "joinbysnapshotstatus"],
        admin_env(plan, org),
        f"joinbysnapshotstatus on {org.peer_host}",
        timeout=30,
    )
    return "No joinbysnapshot operation is in progress" not in out


def peer_channels(plan: NetworkPlan, org: PeerOrg) -> list[str]:
    out = run(
        [str(plan.bin_dir / "peer"), "channel", "list"],
        admin_env(plan, org),
        f"channel list on {org.peer_host}",
        timeout=30,
    )
    lines = out.splitlines()
    if "Channels peers has joined:" in out:
        lines = lines[lines.index(next(x for x in lines if "has joined" in x)) + 1 :]
    return sorted(x.strip() for x in lines if x.strip() and "has joined" not in x)


def channel_height(plan: NetworkPlan, org: PeerOrg, channel: str) -> tuple[int, str]:
    out = run(
        [str(plan.bin_dir / "peer"), "channel", "getinfo", "-c", channel],
        admin_env(plan, org),
        f"getinfo {channel} on {org.peer_host}",
        timeout=30,
    )
    info = json.loads(out[out.index("{") :])
    return int(info["height"]), info.get("currentBlockHash", "")


# --- chaincode as a service -------------------------------------------------------


def _tar_bytes(files: dict[str, bytes]) -> bytes:
    """A deterministic tar.gz (fixed mtime/owner) so the package ID is stable."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.GNU_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write_ccaas_package(plan: NetworkPlan, cc: ChaincodeServer, org: PeerOrg) -> Path:
    """``org``'s own package of ``cc``: its connection.json names ``org``'s own server.

    Organisations approve the same chaincode definition, each with its own package
    id (Fabric lets every org install its own package), so each peer dials its own
    organisation's server over mutual TLS (vpp_network.chaincode_tls).
    """
    connection = chaincode_tls.connection_json(plan, org, cc)
    code = _tar_bytes({"connection.json": json.dumps(connection, indent=2).encode()})
    metadata = json.dumps({"type": "ccaas", "label": cc.label(org)}).encode()
    package = _tar_bytes({"metadata.json": metadata, "code.tar.gz": code})
    path = package_path(plan, cc, org)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(package)
    return path


def package_path(plan: NetworkPlan, cc: ChaincodeServer, org: PeerOrg) -> Path:
    return plan.net_dir / "chaincode" / f"{cc.label(org)}.tar.gz"


def package_id(plan: NetworkPlan, cc: ChaincodeServer, org: PeerOrg) -> str:
    """label:sha256 of the package file, as the peer computes it."""
    data = package_path(plan, cc, org).read_bytes()
    return f"{cc.label(org)}:{hashlib.sha256(data).hexdigest()}"


def install(plan: NetworkPlan, org: PeerOrg, package: Path) -> None:
    try:
        run(
            [str(plan.bin_dir / "peer"), "lifecycle", "chaincode", "install", str(package)],
            admin_env(plan, org),
            f"install {package.name} on {org.peer_host}",
        )
    except FabricCommandError as exc:
        if "already successfully installed" not in str(exc):
            raise


def collections_file(plan: NetworkPlan, channel: Channel) -> Path | None:
    """The channel's collections as the peer CLI reads them, or None if it has none."""
    if not channel.collections:
        return None
    path = plan.net_dir / "chaincode" / f"collections-{channel.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([c.config() for c in channel.collections], indent=2) + "\n")
    return path


def definition_digest(channel: Channel) -> str:
    """What the network's state remembers of a committed definition, to notice a change."""
    text = json.dumps(
        {
            "policy": channel.endorsement_policy,
            "collections": [c.config() for c in channel.collections],
            "version": channel.chaincode.version,
        },
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def committed_sequence(plan: NetworkPlan, channel: Channel) -> int:
    """The sequence of the channel's committed chaincode definition (0 if none)."""
    for d in committed_chaincodes(plan, channel.orgs[0], channel.name):
        if d.get("name") == channel.chaincode.name:
            return int(d.get("sequence", 0))
    return 0


def approve_and_commit(
    plan: NetworkPlan, channel_name: str, pkg_ids: dict[str, str], sequence: int | None = None
) -> None:
    """Every member approves the definition with its own package id (``pkg_ids`` by MSP
    ID), then it is committed with every member's peer endorsing the commit.

    ``sequence``: the definition's sequence (default the plan's, 1: a new channel); an
    upgrade (e.g. new collections) approves and commits the next one.
    """
    channel = next(c for c in plan.channels if c.name == channel_name)
    cc = channel.chaincode
    common = [
        "--channelID",
        channel.name,
        "--name",
        cc.name,
        "--version",
        cc.version,
        "--sequence",
        str(cc.sequence if sequence is None else sequence),
        "--signature-policy",
        channel.endorsement_policy,
        *orderer_args(plan),
    ]
    collections = collections_file(plan, channel)
    if collections is not None:
        common += ["--collections-config", str(collections)]

    def approve(org: PeerOrg) -> None:
        run(
            [
                str(plan.bin_dir / "peer"),
                "lifecycle",
                "chaincode",
                "approveformyorg",
                "--package-id",
                pkg_ids[org.mspid],
                *common,
            ],
            admin_env(plan, org),
            f"{org.name} approving {cc.name} on {channel.name}",
        )

    with ThreadPoolExecutor(max_workers=len(channel.orgs)) as pool:
        list(pool.map(approve, channel.orgs))
    peer_args: list[str] = []
    for org in channel.orgs:
        peer_args += [
            "--peerAddresses",
            f"{plan.host_of(org).address}:{org.port}",
            "--tlsRootCertFiles",
            str(plan.peer_tls_ca(org)),
        ]
    # Right after the approvals, the peers asked to endorse the commit may not all have
    # every approval block yet; they then disagree, and asking again a moment later works.
    for attempt in range(COMMIT_ATTEMPTS):
        try:
            run(
                [
                    str(plan.bin_dir / "peer"),
                    "lifecycle",
                    "chaincode",
                    "commit",
                    *common,
                    *peer_args,
                ],
                admin_env(plan, channel.orgs[0]),
                f"committing {cc.name} on {channel.name}",
            )
            return
        except FabricCommandError:
            if attempt == COMMIT_ATTEMPTS - 1:
                raise
            time.sleep(1.0)


def committed_chaincodes(plan: NetworkPlan, org: PeerOrg, channel: str) -> list[dict]:
    out = run(
        [
            str(plan.bin_dir / "peer"),
            "lifecycle",
            "chaincode",
            "querycommitted",
            "-C",
            channel,
            "-O",
            "json",
        ],
        admin_env(plan, org),
        f"querycommitted {channel}",
        timeout=30,
    )
    return json.loads(out[out.index("{") :]).get("chaincode_definitions", [])
