"""Fabric CA servers: one per organisation, TLS on, on its machine's address only
(127.0.0.1 on the loopback layout), state under
``.fabric/network/ca/<domain>/``.

Each CA issues its organisation's enrolment certificates (signing profile
``default``) and TLS certificates (profile ``tls``), as fabric-samples'
test-network does with ``-ca``: one root per organisation, so the MSP's
``cacerts`` and ``tlscacerts`` hold the same certificate. The bootstrap
registrar's secret is random, written only to ``bootstrap.json`` (mode 0600)
in the CA's folder, and used once by network-up to register the
organisation's admin, who then registers everything else (docs/identities.md).
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import yaml
from vpp_ca.client import CAClient, CAEndpoint, Caller
from vpp_ca.errors import CAError

from vpp_network.plan import LOOPBACK, CAServer, Host, NetworkPlan
from vpp_network.processes import ProcessSpec

BOOTSTRAP_ID = "ca-registrar"
CONFIG_FILE = "fabric-ca-server-config.yaml"
# Certificates live for a year (Fabric CA's default); the CRL handed to the channel
# configuration lasts as long, since peers keep using the last one the channel holds.
CERT_EXPIRY = "8760h"
CRL_EXPIRY = "8760h"


def server_config(plan: NetworkPlan, ca: CAServer, bootstrap_secret: str) -> dict:
    """Our fabric-ca-server-config.yaml: only what differs from the server's defaults."""
    return {
        "port": ca.port,
        "address": ca.address,
        "debug": False,
        "tls": {"enabled": True},
        "ca": {"name": ca.name},
        "crl": {"expiry": CRL_EXPIRY},
        "registry": {
            "maxenrollments": -1,
            "identities": [
                {
                    "name": BOOTSTRAP_ID,
                    "pass": bootstrap_secret,
                    "type": "client",
                    "affiliation": "",
                    "attrs": {
                        "hf.Registrar.Roles": "*",
                        "hf.Registrar.DelegateRoles": "*",
                        "hf.Registrar.Attributes": "*",
                        "hf.Revoker": True,
                        "hf.GenCRL": True,
                        "hf.IntermediateCA": False,
                        "hf.AffiliationMgr": True,
                    },
                }
            ],
        },
        "db": {"type": "sqlite3", "datasource": "fabric-ca-server.db"},
        "affiliations": {},
        "signing": {
            "default": {"usage": ["digital signature"], "expiry": CERT_EXPIRY},
            "profiles": {
                "tls": {
                    "usage": [
                        "signing",
                        "key encipherment",
                        "server auth",
                        "client auth",
                        "key agreement",
                    ],
                    "expiry": CERT_EXPIRY,
                }
            },
        },
        "csr": {
            "cn": ca.name,
            "keyrequest": {"algo": "ecdsa", "size": 256},
            "names": [{"C": "CN", "O": ca.domain}],
            # The CA's own TLS certificate (generated at first start) names these.
            "hosts": ca_tls_hosts(ca),
            "ca": {"expiry": "131400h", "pathlength": 1},
        },
        "cfg": {"identities": {"passwordattempts": 10}},
        "operations": {"listenAddress": f"{ca.address}:{ca.operations_port}", "tls": {}},
        "metrics": {"provider": "disabled"},
    }


def ca_tls_hosts(ca: CAServer) -> list[str]:
    """Names in the CA's TLS certificate: its host name and the address clients dial."""
    if ca.address == LOOPBACK:
        return [LOOPBACK, "localhost", ca.name]
    return [ca.address, ca.name]


def host_of(plan: NetworkPlan, ca: CAServer) -> Host:
    """The machine the CA runs on: its organisation's (the orderers' CA has its own)."""
    org = next((o for o in plan.peer_orgs if o.mspid == ca.mspid), None)
    return plan.host_of(org)


def write_server_config(plan: NetworkPlan, ca: CAServer) -> None:
    """Writes the config and a fresh bootstrap secret (only for a new CA)."""
    home = plan.ca_home(ca)
    home.mkdir(parents=True, exist_ok=True)
    secret_file = home / "bootstrap.json"
    secret = secrets.token_urlsafe(24)
    secret_file.touch(mode=0o600)
    secret_file.write_text(json.dumps({"id": BOOTSTRAP_ID, "secret": secret}) + "\n")
    (home / CONFIG_FILE).write_text(
        yaml.safe_dump(server_config(plan, ca, secret), sort_keys=False)
    )


def process_spec(plan: NetworkPlan, ca: CAServer) -> ProcessSpec:
    home = plan.ca_home(ca)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FABRIC_CA_")}
    return ProcessSpec(
        ca.name,
        [str(plan.bin_dir / "fabric-ca-server"), "start", "--home", str(home)],
        env,
        (ca.port, ca.operations_port),
        cwd=home,
        namespace=host_of(plan, ca).namespace,
    )


def ca_cert_pem(plan: NetworkPlan, ca: CAServer) -> bytes:
    """The CA's self-signed root, written by the server at its first start."""
    return (plan.ca_home(ca) / "ca-cert.pem").read_bytes()


def endpoint(plan: NetworkPlan, ca: CAServer) -> CAEndpoint:
    return CAEndpoint(ca.org, ca.url, ca_cert_pem(plan, ca), caname=ca.name)


def client(plan: NetworkPlan, ca: CAServer) -> CAClient:
    return CAClient(endpoint(plan, ca))


def ready(plan: NetworkPlan, ca: CAServer) -> bool:
    """True once the server answers cainfo over TLS."""
    if not (plan.ca_home(ca) / "ca-cert.pem").exists():
        return False
    try:
        client(plan, ca).cainfo()
    except (CAError, OSError, ValueError):
        return False
    return True


def bootstrap_registrar(plan: NetworkPlan, ca: CAServer) -> Caller:
    """Enrols the bootstrap registrar (once) and keeps its MSP in the CA's folder."""
    home = plan.ca_home(ca)
    folder = home / "registrar"
    cert, key = folder / "cert.pem", folder / "key.pem"
    if cert.exists() and key.exists():
        return Caller.from_pem(cert.read_bytes(), key.read_bytes())
    secret = json.loads((home / "bootstrap.json").read_text())["secret"]
    enrolled = client(plan, ca).enroll(BOOTSTRAP_ID, secret)
    folder.mkdir(parents=True, exist_ok=True)
    _write_private(key, enrolled.key_pem)
    cert.write_bytes(enrolled.cert_pem)
    return enrolled.caller()


def _write_private(path: Path, data: bytes) -> None:
    path.touch(mode=0o600)
    path.write_bytes(data)
