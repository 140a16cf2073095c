"""Identity life cycle on the running network: register, enrol, list, re-enrol, revoke.

Glue between the connection profile (which names each organisation's CA),
the wallet (where identities live as vpp_gateway reads them), the CA client
and the channel configuration (where a revocation must land for peers to
honour it). ``vppctl identity ...`` is a thin layer over these functions.

Who may do what is decided by the CAs, not here: an organisation's admin is a
registrar and revoker of its own CA only (network-up registers it so), and
may give only the attributes its CA lets it give (``hf.Registrar.Attributes``).
The checks here only turn mistakes into clear errors before a round trip.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from vpp_gateway import ConnectionProfile, connect, load_profile
from vpp_gateway.identity import WalletIdentity, load_wallet_identity
from vpp_shim.attributes import AGG_ATTR, FABRIC_ATTRS_OID, METER_ATTR, ROLE_ATTR

from vpp_ca.channel_msp import Admin, publish_crl
from vpp_ca.client import CAClient, CAEndpoint, Caller, Enrollment
from vpp_ca.errors import AttributeNameError, CAError
from vpp_ca.wallet import write_wallet_identity

KNOWN_ATTRS = (ROLE_ATTR, AGG_ATTR, METER_ATTR)
ROLES = ("trader", "meter")
GRID_MSPID = "GridMSP"
# Who issues meters: the metering authority (the Grid) per market-rules.md's trust rules,
# which the meter chaincode requires (it refuses a meter certificate of any other MSP).
METERS_FROM_GRID = True
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_METER_RE = re.compile(r"agg([1-9][0-9]{0,3})-[A-Za-z0-9][A-Za-z0-9._-]{0,59}")

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


class IdentityInputError(CAError, ValueError):
    """Bad input caught before any request (exit code 2 in vppctl)."""


# --- where things are -------------------------------------------------------------------
def ca_endpoints(profile: ConnectionProfile) -> dict[str, CAEndpoint]:
    """Each organisation's CA by MSP ID, from the profile's ``certificateAuthorities``."""
    raw = json.loads(Path(profile.path).read_text())
    cas = raw.get("certificateAuthorities") or {}
    if not cas:
        raise CAError(
            f"{profile.path} names no certificate authorities; "
            "re-create the network (`make network-clean && make network-up`)"
        )
    base = Path(profile.path).parent
    endpoints = {}
    for mspid, entry in cas.items():
        tls_ca = Path(entry["tls_ca"])
        tls_ca = tls_ca if tls_ca.is_absolute() else base / tls_ca
        try:
            pem = tls_ca.read_bytes()
        except OSError as exc:
            raise CAError(f"cannot read the TLS root of {mspid}'s CA at {tls_ca}: {exc}") from exc
        endpoints[mspid] = CAEndpoint(entry["org"], entry["url"], pem, entry.get("caname", ""))
    return endpoints


def ca_client(profile: ConnectionProfile, mspid: str) -> CAClient:
    endpoints = ca_endpoints(profile)
    if mspid not in endpoints:
        raise IdentityInputError(
            f"no CA for {mspid} (organisations with a CA: {', '.join(sorted(endpoints))})"
        )
    return CAClient(endpoints[mspid])


def org_mspid(org: str) -> str:
    """``Agg3``, ``agg3``, ``3``, ``Grid`` or ``Agg3MSP`` -> ``Agg3MSP``."""
    text = org.strip(" \t")  # not strip(): "3\x1f" is no organisation
    if text.isascii() and text.isdigit():
        return f"Agg{int(text)}MSP"
    if text.lower().endswith("msp"):
        text = text[:-3]
    if text.lower().startswith("agg") and text[3:].isascii() and text[3:].isdigit():
        return f"Agg{int(text[3:])}MSP"
    named = {"vppo": "VPPO", "grid": "Grid", "orderer": "Orderer"}
    if text.lower() in named:
        return f"{named[text.lower()]}MSP"
    raise IdentityInputError(f"org {org!r} is not an organisation (VPPO, Grid, AggN)")


def _caller(entry: WalletIdentity) -> Caller:
    return Caller(entry.identity.cert_pem, entry.signer)


def wallet_meta(profile: ConnectionProfile, name: str) -> dict[str, Any]:
    try:
        return json.loads((profile.wallet / name / "identity.json").read_text())
    except (OSError, ValueError):
        return {}


def certificate_attrs(cert: x509.Certificate) -> dict[str, str]:
    """The Fabric CA attributes a certificate carries (OID 1.2.3.4.5.6.7.8.1)."""
    try:
        ext = cert.extensions.get_extension_for_oid(FABRIC_ATTRS_OID)
    except x509.ExtensionNotFound:
        return {}
    value = ext.value
    raw = value.value if isinstance(value, x509.UnrecognizedExtension) else b""
    try:
        attrs = json.loads(raw).get("attrs") or {}
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in attrs.items()}


# --- attributes --------------------------------------------------------------------------
def registration_attrs(
    mspid: str,
    role: str,
    *,
    meter: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The certificate attributes of a new trader or meter, checked for what the chaincode
    expects: traders of an aggregator's CA; meters of the Grid's, naming ``aggN-<id>``."""
    if role not in ROLES:
        raise IdentityInputError(f"role {role!r} is not one of {', '.join(ROLES)}")
    for name in extra or {}:
        if name not in KNOWN_ATTRS:
            raise AttributeNameError(
                f"unknown attribute {name!r}: the network issues only {', '.join(KNOWN_ATTRS)}"
            )
    attrs = {ROLE_ATTR: role}
    if role == "trader":
        if not (mspid.startswith("Agg") and mspid[3:-3].isdigit()):
            raise IdentityInputError(
                f"a trader belongs to an aggregator; {mspid} is not one (use --org AggN)"
            )
        if meter:
            raise IdentityInputError("--meter is for meters, not traders")
    else:
        if METERS_FROM_GRID and mspid != GRID_MSPID:
            raise IdentityInputError(
                f"meters are issued by the metering authority (GridMSP), not {mspid}"
            )
        m = _METER_RE.fullmatch(meter or "")
        if m is None:
            raise IdentityInputError(
                f"meter id {meter!r} is not aggN-<name> (e.g. agg3-m3): it names its aggregator"
            )
        if not METERS_FROM_GRID and mspid != f"Agg{m.group(1)}MSP":
            raise IdentityInputError(f"meter {meter} belongs to Agg{m.group(1)}, not {mspid}")
        attrs |= {AGG_ATTR: m.group(1), METER_ATTR: meter or ""}
    merged = attrs | dict(extra or {})
    if merged[ROLE_ATTR] != role:
        raise IdentityInputError(f"--attr vpp.role={merged[ROLE_ATTR]} contradicts --role {role}")
    return merged


def check_name(name: str, what: str = "name") -> str:
    if not _NAME_RE.fullmatch(name or ""):
        raise IdentityInputError(
            f"{what} {name!r} is not 1-64 letters, digits, '.', '_', '@', '-' "
            "(starting with a letter or digit)"
        )
    return name


# --- operations --------------------------------------------------------------------------
@dataclass(frozen=True)
class Registered:
    name: str
    mspid: str
    secret: str = field(repr=False)
    attrs: Mapping[str, str]


def register(
    registrar_name: str,
    name: str,
    role: str,
    *,
    org: str | None = None,
    meter: str | None = None,
    extra: Mapping[str, str] | None = None,
    secret: str = "",
    profile: ConnectionProfile | str | Path | None = None,
) -> Registered:
    """Registers ``name`` at organisation ``org``'s CA (default: the registrar's own, or
    the Grid's for a meter), signed by wallet identity ``registrar_name``."""
    prof = profile if isinstance(profile, ConnectionProfile) else load_profile(profile)
    check_name(name)
    registrar = load_wallet_identity(registrar_name, prof.wallet)
    default = GRID_MSPID if role == "meter" and METERS_FROM_GRID else registrar.mspid
    mspid = org_mspid(org) if org else default
    attrs = registration_attrs(mspid, role, meter=meter, extra=extra)
    client = ca_client(prof, mspid)
    secret_out = client.register(_caller(registrar), name, attrs=attrs, secret=secret)
    return Registered(name, mspid, secret_out, attrs)


def enroll(
    name: str,
    secret: str,
    *,
    org: str,
    wallet_name: str | None = None,
    profile: ConnectionProfile | str | Path | None = None,
    overwrite: bool = False,
) -> Path:
    """Enrols ``name`` with its secret at ``org``'s CA and writes it into the wallet."""
    prof = profile if isinstance(profile, ConnectionProfile) else load_profile(profile)
    mspid = org_mspid(org)
    target = check_name(wallet_name or name, "wallet name")
    if (prof.wallet / target).exists() and not overwrite:
        raise IdentityInputError(f"wallet identity {target!r} exists already (pick --wallet-name)")
    client = ca_client(prof, mspid)
    enrolled = client.enroll(name, secret)
    return _write_wallet(prof, target, mspid, enrolled, name, client.endpoint.caname)


def _write_wallet(
    prof: ConnectionProfile,
    target: str,
    mspid: str,
    enrolled: Enrollment,
    enrollment_id: str,
    caname: str,
) -> Path:
    role = certificate_attrs(enrolled.certificate).get(ROLE_ATTR, "client")
    return write_wallet_identity(
        prof.wallet,
        target,
        mspid,
        role,
        enrolled.cert_pem,
        enrolled.key_pem,
        enrollment_id=enrollment_id,
        ca=caname,
    )


def list_identities(
    registrar_name: str,
    *,
    org: str | None = None,
    profile: ConnectionProfile | str | Path | None = None,
) -> list[dict[str, Any]]:
    """The identities registered at the CA that the registrar may see."""
    prof = profile if isinstance(profile, ConnectionProfile) else load_profile(profile)
    registrar = load_wallet_identity(registrar_name, prof.wallet)
    mspid = org_mspid(org) if org else registrar.mspid
    rows = []
    for ident in ca_client(prof, mspid).identities(_caller(registrar)):
        attrs = {
            a.get("name"): a.get("value")
            for a in ident.get("attrs") or []
            if not str(a.get("name", "")).startswith("hf.")
        }
        rows.append(
            {
                "id": ident.get("id"),
                "type": ident.get("type"),
                "mspid": mspid,
                "attrs": ",".join(f"{k}={v}" for k, v in sorted(attrs.items())),
                # Fabric CA marks a revoked identity with max_enrollments -1.
                "state": "revoked" if ident.get("max_enrollments") == -1 else "active",
            }
        )
    return rows


def reenroll(name: str, *, profile: ConnectionProfile | str | Path | None = None) -> Path:
    """A new key and certificate for wallet identity ``name`` (same attributes)."""
    prof = profile if isinstance(profile, ConnectionProfile) else load_profile(profile)
    entry = load_wallet_identity(name, prof.wallet)
    meta = wallet_meta(prof, name)
    client = ca_client(prof, entry.mspid)
    enrolled = client.reenroll(_caller(entry))
    return _write_wallet(
        prof,
        name,
        entry.mspid,
        enrolled,
        meta.get("enrollment_id") or _caller(entry).enrollment_id,
        client.endpoint.caname,
    )


@dataclass(frozen=True)
class RevokeResult:
    enrollment_id: str
    mspid: str
    revoked: tuple[tuple[str, str], ...]
    channels: tuple[str, ...]  # channels whose configuration now carries the CRL


def resolve_enrollment_id(prof: ConnectionProfile, name: str) -> tuple[str, str | None]:
    """(CA enrolment id, MSP ID if known) for a wallet name or an enrolment id."""
    meta = wallet_meta(prof, name)
    if meta:
        try:
            entry = load_wallet_identity(name, prof.wallet)
        except CAError:
            entry = None
        enrollment_id = meta.get("enrollment_id") or (
            _caller(entry).enrollment_id if entry else name
        )
        return enrollment_id, meta.get("mspid")
    return name, None


def revoke(
    revoker_name: str,
    name: str,
    *,
    reason: str = "keycompromise",
    profile: ConnectionProfile | str | Path | None = None,
    progress: Progress = _quiet,
) -> RevokeResult:
    """Revokes ``name`` (wallet name or enrolment id) at its CA, then puts the CA's new CRL
    into its organisation's MSP on every channel the organisation is a member of, and
    waits until every peer there holds it: from then on the peers refuse it."""
    prof = profile if isinstance(profile, ConnectionProfile) else load_profile(profile)
    revoker = load_wallet_identity(revoker_name, prof.wallet)
    enrollment_id, mspid = resolve_enrollment_id(prof, name)
    mspid = mspid or revoker.mspid
    client = ca_client(prof, mspid)
    progress(f"revoking {enrollment_id} at {client.endpoint.describe()} ...")
    result = client.revoke(_caller(revoker), enrollment_id=enrollment_id, reason=reason)
    crl = result.crl_pem or client.gencrl(_caller(revoker))
    channels = sorted(
        c.name
        for c in prof.channels.values()
        if any(prof.peers[p].mspid == mspid for p in c.peers if p in prof.peers)
    )
    progress(f"updating {mspid}'s MSP (CRL) on {', '.join(channels)} ...")
    admins = [Admin(revoker.identity, revoker.signer)]
    with connect(revoker.identity, revoker.signer, profile=prof) as gateway:

        def one(channel: str) -> str:
            publish_crl(gateway, prof, channel, mspid, crl, admins)
            return channel

        with ThreadPoolExecutor(max_workers=4) as pool:
            done = tuple(pool.map(one, channels))
    return RevokeResult(enrollment_id, mspid, result.revoked, done)
