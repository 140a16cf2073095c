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

The server certificates are enrolled from the organisation's Fabric CA with
its ``tls`` profile (docs/identities.md), like the peer's own TLS certificate.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

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


# (organisation, TLS host name) -> (cert PEM, key PEM) of a TLS server certificate.
Enrol = Callable[[PeerOrg, str], tuple[bytes, bytes]]


def fabric_ca_enrol(plan: NetworkPlan) -> Enrol:
    """Registers ``host`` at ``org``'s Fabric CA (as its bootstrap registrar) and enrols it
    with the CA's ``tls`` profile, naming only ``host``."""
    from vpp_network import ca as ca_servers

    def enrol(org: PeerOrg, host: str) -> tuple[bytes, bytes]:
        server = plan.ca_of(org)
        client = ca_servers.client(plan, server)
        registrar = ca_servers.bootstrap_registrar(plan, server)
        secret = client.register(registrar, host, id_type="client")
        enrolled = client.enroll(host, secret, profile="tls", hosts=[host])
        return enrolled.cert_pem, enrolled.key_pem

    return enrol


def issue_server_certs(
    plan: NetworkPlan, enrol: Enrol | None = None, orgs: list[PeerOrg] | None = None
) -> None:
    """A TLS server certificate per (organisation, chaincode) it runs, from the org's CA.

    Its only name is ``cc.tls_host(org)`` (e.g. ``market.vppo.vpp.local``): the peer
    dials 127.0.0.1 (loopback layout) or that name (hosts layout, resolving to its own
    machine) and checks the name (connection.json ``domain``). The organisations' CAs
    work in parallel. ``orgs`` limits it to some organisations (an aggregator admitted
    later); default: all.
    """
    enrol = enrol or fabric_ca_enrol(plan)

    def one(org: PeerOrg) -> None:
        for cc in plan.chaincodes:
            if org not in plan.chaincode_orgs(cc):
                continue
            cert_pem, key_pem = enrol(org, cc.tls_host(org))
            files = server_tls(plan, org, cc)
            files.cert.parent.mkdir(parents=True, exist_ok=True)
            files.key.touch(mode=0o600)
            files.key.write_bytes(key_pem)
            files.cert.write_bytes(cert_pem)

    orgs = [
        o
        for o in (plan.peer_orgs if orgs is None else orgs)
        if any(o in plan.chaincode_orgs(cc) for cc in plan.chaincodes)
    ]
    with ThreadPoolExecutor(max_workers=max(1, len(orgs))) as pool:
        list(pool.map(one, orgs))


def connection_json(plan: NetworkPlan, org: PeerOrg, cc: ChaincodeServer) -> dict[str, object]:
    """What ``org``'s package tells its peer: where its own server is and how to trust it.

    ``client_cert``/``client_key`` are deliberately absent: the builder adds the
    peer's own (CLIENT_CERT_ENV / CLIENT_KEY_ENV) when the peer releases the package.
    """
    return {
        "address": f"{plan.dial_host(cc.tls_host(org))}:{cc.port(org)}",
        "domain": cc.tls_host(org),
        "dial_timeout": "10s",
        "tls_required": True,
        "client_auth_required": True,
        "root_cert": plan.peer_tls_ca(org).read_text(),
    }
