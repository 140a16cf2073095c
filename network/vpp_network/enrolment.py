"""network-up's identities, all enrolled from the organisations' Fabric CAs.

For each CA (one per organisation, see vpp_network.ca), in parallel:

1. the bootstrap registrar registers the organisation's admin
   (``Admin@<domain>``, type ``admin``) with the registrar rights it needs
   later for ``vppctl identity`` (register clients with the ``vpp.*``
   attributes its organisation issues, revoke, generate CRLs);
2. it registers the organisation's nodes (``peer0.<domain>`` type ``peer``,
   ``ordererN.<domain>`` type ``orderer``), each enrolled twice: its signing
   certificate (profile ``default``) and its TLS certificate (profile ``tls``);
3. the admin registers the organisation's users: each aggregator's trader
   (``vpp.role=trader``) and, at the Grid (the metering authority), every
   aggregator's meters (``vpp.role=meter``, ``vpp.agg=N``, ``vpp.meter=aggN-mK``).

Everything lands in the folder layout cryptogen used to write
(``crypto/peerOrganizations/<domain>/{msp,tlsca,peers,users}``), so node
configs and channel profiles read the same paths, and in the wallet that
vpp_gateway and vppctl read (``vppo-admin``, ``agg3-trader``, ``agg3-meter1``...).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml
from vpp_ca.client import CAClient, Caller, Enrollment
from vpp_ca.identities import METERS_FROM_GRID
from vpp_ca.wallet import write_wallet_identity
from vpp_shim.attributes import AGG_ATTR, METER_ATTR, ROLE_ATTR

from vpp_network import ca as ca_servers
from vpp_network import identities
from vpp_network.plan import (
    LOOPBACK,
    ORDERER_DOMAIN,
    CAServer,
    NetworkPlan,
    PeerOrg,
)

LOCAL_HOSTS = ("127.0.0.1", "localhost")
# The certificate attributes each kind of organisation's admin may give (hf.Registrar.Attributes).
METER_ISSUER_ATTRS = (ROLE_ATTR, AGG_ATTR, METER_ATTR)
GRID_ATTRS = METER_ISSUER_ATTRS if METERS_FROM_GRID else (ROLE_ATTR,)
AGG_ATTRS = (ROLE_ATTR,) if METERS_FROM_GRID else METER_ISSUER_ATTRS
NODE_OUS = ("client", "peer", "admin", "orderer")


def admin_id(domain: str) -> str:
    return f"Admin@{domain}"


def registrar_attrs(attrs: tuple[str, ...]) -> dict[str, str]:
    """What an organisation's admin may do at its own CA (and nothing at any other)."""
    return {
        "hf.Registrar.Roles": "client",
        "hf.Registrar.Attributes": ",".join(attrs),
        "hf.Revoker": "true",
        "hf.GenCRL": "true",
    }


def meter_attrs(agg: int, meter_id: str) -> dict[str, str]:
    return {ROLE_ATTR: "meter", AGG_ATTR: str(agg), METER_ATTR: meter_id}


# --- files ---------------------------------------------------------------------------
def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if private:
        path.touch(mode=0o600)
    path.write_bytes(data)


def write_msp(
    folder: Path, domain: str, ca_pem: bytes, enrollment: Enrollment | None, cert_name: str = ""
) -> None:
    """An MSP folder: the org's root as CA and TLS CA, Node OUs, and (for a member) its
    signing certificate and key."""
    ca_file = f"ca.{domain}-cert.pem"
    _write(folder / "cacerts" / ca_file, ca_pem)
    _write(folder / "tlscacerts" / f"tlsca.{domain}-cert.pem", ca_pem)
    ous = {
        f"{ou.capitalize()}OUIdentifier": {
            "Certificate": f"cacerts/{ca_file}",
            "OrganizationalUnitIdentifier": ou,
        }
        for ou in NODE_OUS
    }
    config = {"NodeOUs": {"Enable": True, **ous}}
    _write(folder / "config.yaml", yaml.safe_dump(config, sort_keys=False).encode())
    if enrollment is not None:
        _write(folder / "signcerts" / f"{cert_name}-cert.pem", enrollment.cert_pem)
        _write(folder / "keystore" / "priv_sk", enrollment.key_pem, private=True)


def write_tls(folder: Path, ca_pem: bytes, tls: Enrollment, prefix: str = "server") -> None:
    _write(folder / f"{prefix}.crt", tls.cert_pem)
    _write(folder / f"{prefix}.key", tls.key_pem, private=True)
    _write(folder / "ca.crt", ca_pem)


# --- enrolment --------------------------------------------------------------------------
@dataclass
class _OrgJob:
    """Enrols one organisation's admin, nodes and users from its CA."""

    plan: NetworkPlan
    ca: CAServer

    @property
    def client(self) -> CAClient:
        return ca_servers.client(self.plan, self.ca)

    @property
    def ca_pem(self) -> bytes:
        return ca_servers.ca_cert_pem(self.plan, self.ca)

    def enrol(self, registrar: Caller, name: str, id_type: str, **register: object) -> Enrollment:
        secret = self.client.register(registrar, name, id_type=id_type, **register)  # type: ignore[arg-type]
        return self.client.enroll(name, secret)

    def node(self, registrar: Caller, host: str, id_type: str, home: Path, address: str) -> None:
        """A node's MSP and TLS pair; its TLS certificate names ``host`` and the address
        clients in the root namespace dial (127.0.0.1 and localhost on loopback)."""
        secret = self.client.register(registrar, host, id_type=id_type)
        hosts = (*LOCAL_HOSTS, host) if address == LOOPBACK else (host, address)
        write_msp(home / "msp", self.ca.domain, self.ca_pem, self.client.enroll(host, secret), host)
        write_tls(
            home / "tls", self.ca_pem, self.client.enroll(host, secret, profile="tls", hosts=hosts)
        )

    def admin(self, registrar: Caller, org_dir: Path, attrs: tuple[str, ...]) -> Enrollment:
        name = admin_id(self.ca.domain)
        rights = registrar_attrs(attrs) if attrs else {}
        secret = self.client.register(registrar, name, id_type="admin", registrar_attrs=rights)
        enrolled = self.client.enroll(name, secret)
        home = org_dir / "users" / name
        write_msp(home / "msp", self.ca.domain, self.ca_pem, enrolled, name)
        if self.ca.domain == ORDERER_DOMAIN:  # osnadmin authenticates with a TLS client cert
            tls = self.client.enroll(name, secret, profile="tls", hosts=LOCAL_HOSTS)
            write_tls(home / "tls", self.ca_pem, tls, prefix="client")
        return enrolled


def _enrol_orderer_org(plan: NetworkPlan) -> None:
    job = _OrgJob(plan, plan.orderer_ca)
    registrar = ca_servers.bootstrap_registrar(plan, job.ca)
    org_dir = plan.orderer_org_dir()
    write_msp(org_dir / "msp", job.ca.domain, job.ca_pem, None)
    _write(plan.orderer_tls_ca(), job.ca_pem)
    job.admin(registrar, org_dir, ())
    for orderer in plan.orderers:
        address = plan.host_of(orderer).address
        job.node(registrar, orderer.host, "orderer", plan.orderer_dir(orderer), address)


def _enrol_peer_org(plan: NetworkPlan, org: PeerOrg, wallet: Path) -> None:
    job = _OrgJob(plan, plan.ca_of(org))
    registrar = ca_servers.bootstrap_registrar(plan, job.ca)
    org_dir = plan.peer_org_dir(org)
    write_msp(org_dir / "msp", org.domain, job.ca_pem, None)
    _write(plan.peer_tls_ca(org), job.ca_pem)
    _write(org_dir / "ca" / f"ca.{org.domain}-cert.pem", job.ca_pem)
    is_grid = org == plan.grid
    attrs = GRID_ATTRS if is_grid else AGG_ATTRS if org.agg_number else ()
    admin = job.admin(registrar, org_dir, attrs)
    job.node(registrar, org.peer_host, "peer", plan.peer_dir(org), plan.host_of(org).address)
    ca_name = job.ca.name
    write_wallet_identity(
        wallet,
        identities.admin(org.name),
        org.mspid,
        "admin",
        admin.cert_pem,
        admin.key_pem,
        enrollment_id=admin_id(org.domain),
        ca=ca_name,
    )
    users: list[tuple[str, str, str, dict[str, str]]] = []  # wallet name, CA id, role, attrs
    if org.agg_number is not None:
        trader = identities.agg_trader(org.agg_number)
        users.append((trader, f"trader@{org.domain}", "trader", {ROLE_ATTR: "trader"}))
    metered = (
        (plan.agg_orgs if is_grid else []) if METERS_FROM_GRID else [org] if org.agg_number else []
    )
    for agg in metered:
        n = agg.agg_number or 0
        for m in range(1, identities.METERS_PER_AGG + 1):
            name = identities.agg_meter(n, m)
            attrs_m = meter_attrs(n, identities.meter_id(n, m))
            users.append((name, f"{name}@{org.domain}", "meter", attrs_m))
    admin_caller = admin.caller()

    def user(entry: tuple[str, str, str, dict[str, str]]) -> None:
        name, ca_id, role, user_attrs = entry
        enrolled = job.enrol(admin_caller, ca_id, "client", attrs=user_attrs)
        write_wallet_identity(
            wallet,
            name,
            org.mspid,
            role,
            enrolled.cert_pem,
            enrolled.key_pem,
            enrollment_id=ca_id,
            ca=ca_name,
        )

    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(user, users))


def enrol_peer_org(plan: NetworkPlan, org: PeerOrg, wallet: Path) -> None:
    """Enrols one peer organisation from its running CA (an aggregator admitted later).

    Its meters come with it only if aggregators issue their own; otherwise the
    metering authority issues them (``enrol_agg_meters``).
    """
    wallet.mkdir(parents=True, exist_ok=True)
    _enrol_peer_org(plan, org, wallet)


def enrol_agg_meters(plan: NetworkPlan, agg: PeerOrg, wallet: Path) -> list[str]:
    """The Grid's admin registers and enrols the meters of an aggregator admitted later
    (when meters come from the metering authority); the wallet names it wrote.

    Meters already in the wallet are kept (a resumed admission registers none twice).
    """
    if not METERS_FROM_GRID or agg.agg_number is None:
        return []
    grid = plan.grid
    job = _OrgJob(plan, plan.ca_of(grid))
    admin_msp = plan.admin_msp(grid)
    cert = next((admin_msp / "signcerts").glob("*.pem")).read_bytes()
    admin = Caller.from_pem(cert, (admin_msp / "keystore" / "priv_sk").read_bytes())
    written = []
    n = agg.agg_number
    for m in range(1, identities.METERS_PER_AGG + 1):
        name = identities.agg_meter(n, m)
        if (wallet / name / "cert.pem").exists():
            continue
        ca_id = f"{name}@{grid.domain}"
        enrolled = job.enrol(
            admin, ca_id, "client", attrs=meter_attrs(n, identities.meter_id(n, m))
        )
        write_wallet_identity(
            wallet,
            name,
            grid.mspid,
            "meter",
            enrolled.cert_pem,
            enrolled.key_pem,
            enrollment_id=ca_id,
            ca=job.ca.name,
        )
        written.append(name)
    return written


def generate(plan: NetworkPlan, log: Callable[[str], None] = print) -> float:
    """Enrols every node, admin, trader and meter from the running CAs; returns seconds."""
    started = time.monotonic()
    wallet = plan.wallet_dir
    if wallet.exists():
        shutil.rmtree(wallet)
    wallet.mkdir(parents=True)
    jobs: list[Callable[[], None]] = [lambda: _enrol_orderer_org(plan)]
    jobs += [lambda o=org: _enrol_peer_org(plan, o, wallet) for org in plan.peer_orgs]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        for future in [pool.submit(job) for job in jobs]:
            future.result()
    return time.monotonic() - started
