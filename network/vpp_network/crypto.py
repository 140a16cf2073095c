"""Identities: cryptogen for CAs, nodes and admins; our own issuer for traders and meters.

cryptogen cannot put attributes in a certificate, and the chaincode must tell
a meter from a trader. So traders and meters are issued by vpp_network.issuer
(the project's one issuer), signed by their org's CA key, carrying the Fabric
CA attribute extension (OID 1.2.3.4.5.6.7.8.1) exactly as fabric-ca would:
``vpp.role`` and, for meters, ``vpp.meter``. See docs/architecture.md for the identity list.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import yaml

from vpp_network import identities
from vpp_network.fabric_cli import run
from vpp_network.issuer import FABRIC_ATTRS_OID, CertificateAuthority
from vpp_network.plan import ORDERER_DOMAIN, NetworkPlan, PeerOrg

__all__ = ["FABRIC_ATTRS_OID", "generate", "issue_user", "write_wallet"]

LOCAL_SANS = ["127.0.0.1", "localhost"]


def crypto_config(plan: NetworkPlan) -> dict:
    return {
        "OrdererOrgs": [
            {
                "Name": "Orderer",
                "Domain": ORDERER_DOMAIN,
                "EnableNodeOUs": True,
                "Specs": [{"Hostname": o.name, "SANS": LOCAL_SANS} for o in plan.orderers],
            }
        ],
        "PeerOrgs": [
            {
                "Name": org.name,
                "Domain": org.domain,
                "EnableNodeOUs": True,
                "Specs": [{"Hostname": "peer0", "SANS": LOCAL_SANS}],
                "Users": {"Count": 0},
            }
            for org in plan.peer_orgs
        ],
    }


def generate(plan: NetworkPlan) -> None:
    """Creates all crypto material and the client wallet (only on a fresh network)."""
    config_file = plan.net_dir / "crypto-config.yaml"
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text(yaml.safe_dump(crypto_config(plan), sort_keys=False))
    run(
        [
            str(plan.bin_dir / "cryptogen"),
            "generate",
            f"--config={config_file}",
            f"--output={plan.crypto_dir}",
        ],
        dict(os.environ),
        "cryptogen generate",
    )
    write_wallet(plan)


def _org_ca(plan: NetworkPlan, org: PeerOrg) -> CertificateAuthority:
    ca_dir = plan.peer_org_dir(org) / "ca"
    return CertificateAuthority.from_pem(
        (ca_dir / f"ca.{org.domain}-cert.pem").read_bytes(), (ca_dir / "priv_sk").read_bytes()
    )


def issue_user(
    plan: NetworkPlan, org: PeerOrg, name: str, attrs: dict[str, str]
) -> tuple[bytes, bytes]:
    """A client certificate under the org's CA with Fabric CA-style attributes."""
    return _org_ca(plan, org).issue(f"{name}@{org.domain}", attrs=attrs, country="CN")


def _write_identity(
    wallet: Path, name: str, mspid: str, role: str, cert: bytes, key: bytes
) -> None:
    folder = wallet / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cert.pem").write_bytes(cert)
    (folder / "key.pem").write_bytes(key)
    (folder / "key.pem").chmod(0o600)
    (folder / "identity.json").write_text(
        json.dumps({"name": name, "mspid": mspid, "role": role}, indent=2) + "\n"
    )


def _admin_identity(plan: NetworkPlan, org: PeerOrg) -> tuple[bytes, bytes]:
    msp = plan.admin_msp(org)
    cert = next((msp / "signcerts").glob("*.pem")).read_bytes()
    key = (msp / "keystore" / "priv_sk").read_bytes()
    return cert, key


def write_wallet(plan: NetworkPlan) -> None:
    wallet = plan.wallet_dir
    if wallet.exists():
        shutil.rmtree(wallet)
    for org in plan.peer_orgs:
        admin = identities.admin(org.name)
        _write_identity(wallet, admin, org.mspid, "admin", *_admin_identity(plan, org))
        agg = org.agg_number
        if agg is None:
            continue
        cert, key = issue_user(plan, org, "trader", {"vpp.role": "trader"})
        _write_identity(wallet, identities.agg_trader(agg), org.mspid, "trader", cert, key)
        for m in range(1, identities.METERS_PER_AGG + 1):
            meter_id = identities.meter_id(agg, m)
            cert, key = issue_user(
                plan, org, f"meter{m}", {"vpp.role": "meter", "vpp.meter": meter_id}
            )
            _write_identity(wallet, identities.agg_meter(agg, m), org.mspid, "meter", cert, key)
