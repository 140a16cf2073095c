"""TLS for the peer -> chaincode server connection (chaincode as a service).

Every organisation runs its own chaincode servers, and each server accepts
only its own organisation's peer: the server's certificate is issued by the
organisation's TLS CA (the CA its peer already trusts for TLS), and the
server requires a client certificate from that same CA whose common name is
the peer's. The peer presents its own TLS certificate: Fabric's peer dials a
CCaaS server with the ``client_cert``/``client_key`` of the chaincode's
connection.json (core/container/externalbuilder, ``ChaincodeServerUserData``),
which our builder's ``release`` step fills in from the peer's own TLS files
(see network/ccaas-builder), so no private key is ever inside a package.

The CA key is cryptogen's ``tlsca/priv_sk``; with another CA (Fabric CA) this
is the one place to change.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from vpp_network.issuer import CertificateAuthority
from vpp_network.plan import ChaincodeServer, NetworkPlan, PeerOrg

# Environment the peer process gets and propagates to the builder's release step.
CLIENT_CERT_ENV = "VPP_CCAAS_CLIENT_CERT"
CLIENT_KEY_ENV = "VPP_CCAAS_CLIENT_KEY"


@dataclass(frozen=True)
class ServerTls:
    """Files and names ``org``'s server of one chaincode needs."""

    cert: Path
    key: Path
    client_ca: Path
    client_names: tuple[str, ...]


def peer_client_files(plan: NetworkPlan, org: PeerOrg) -> tuple[Path, Path]:
    """The certificate and key the peer presents to its chaincode servers (its TLS pair)."""
    tls = plan.peer_dir(org) / "tls"
    return tls / "server.crt", tls / "server.key"


def peer_common_name(plan: NetworkPlan, org: PeerOrg) -> str:
    """CN of the peer's TLS certificate: the only client name its chaincode servers accept."""
    cert = x509.load_pem_x509_certificate(peer_client_files(plan, org)[0].read_bytes())
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        raise ValueError(f"the TLS certificate of {org.peer_host} has no common name")
    return str(names[0].value)


def server_tls(plan: NetworkPlan, org: PeerOrg, cc: ChaincodeServer) -> ServerTls:
    folder = plan.chaincode_tls_dir(org, cc)
    return ServerTls(
        cert=folder / "server.crt",
        key=folder / "server.key",
        client_ca=plan.peer_tls_ca(org),
        client_names=(peer_common_name(plan, org),),
    )


def issue_server_certs(plan: NetworkPlan) -> None:
    """A TLS server certificate per (organisation, chaincode) it runs, from the org's TLS CA.

    Its only name is ``cc.tls_host(org)`` (e.g. ``market.vppo.vpp.local``): the peer
    dials 127.0.0.1 and checks that name (connection.json ``domain``).
    """
    for cc in plan.chaincodes:
        for org in plan.chaincode_orgs(cc):
            ca = CertificateAuthority.from_pem(
                plan.peer_tls_ca(org).read_bytes(), plan.peer_tls_ca_key(org).read_bytes()
            )
            cert_pem, key_pem = ca.issue(cc.tls_host(org), ous=(), dns_names=[cc.tls_host(org)])
            files = server_tls(plan, org, cc)
            files.cert.parent.mkdir(parents=True, exist_ok=True)
            files.cert.write_bytes(cert_pem)
            files.key.write_bytes(key_pem)
            files.key.chmod(0o600)


def connection_json(plan: NetworkPlan, org: PeerOrg, cc: ChaincodeServer) -> dict[str, object]:
    """What ``org``'s package tells its peer: where its own server is and how to trust it.

    ``client_cert``/``client_key`` are deliberately absent: the builder adds the
    peer's own (CLIENT_CERT_ENV / CLIENT_KEY_ENV) when the peer releases the package.
    """
    return {
        "address": f"127.0.0.1:{cc.port(org)}",
        "domain": cc.tls_host(org),
        "dial_timeout": "10s",
        "tls_required": True,
        "client_auth_required": True,
        "root_cert": plan.peer_tls_ca(org).read_text(),
    }
