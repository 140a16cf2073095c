"""Test identities: P-256 certificates shaped like the network's, wrapped as shim Callers.

The contracts decide roles from the certificate alone (MSP ID, node OU,
Fabric CA attributes in extension 1.2.3.4.5.6.7.8.1), so unit tests must use
real certificates, issued here by one throwaway CA per MSP the way
vpp_network.crypto issues traders and meters. Callers are cached: a test run
issues each identity once.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Mapping, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from vpp_shim.api import FABRIC_ATTRS_OID, Caller

_NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@functools.cache
def _ca(mspid: str) -> tuple[x509.Name, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"ca.{mspid.lower()}")]), key


def issue(
    mspid: str,
    common_name: str,
    ous: Sequence[str] = ("client",),
    attrs: Mapping[str, str] | None = None,
) -> bytes:
    """A PEM certificate for ``common_name`` under ``mspid``'s test CA."""
    issuer, ca_key = _ca(mspid)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou) for ou in ous]
        + [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_NOW)
        .not_valid_after(_NOW + dt.timedelta(days=3650))
    )
    if attrs is not None:
        payload = json.dumps({"attrs": dict(attrs)}, sort_keys=True).encode()
        builder = builder.add_extension(
            x509.UnrecognizedExtension(FABRIC_ATTRS_OID, payload), False
        )
    cert = builder.sign(ca_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM)


@functools.cache
def caller(
    mspid: str,
    common_name: str,
    ous: tuple[str, ...] = ("client",),
    attrs: tuple[tuple[str, str], ...] = (),
) -> Caller:
    """A cached Caller; ``attrs`` as sorted pairs (hashable), empty for no extension."""
    return Caller(mspid, issue(mspid, common_name, ous, dict(attrs) if attrs else None))


def vppo_admin() -> Caller:
    return caller("VPPOMSP", "Admin@vppo.vpp.local", ("admin",))


def vppo_client() -> Caller:
    """A VPPO member that is not an admin: may not run the VPPO's transactions."""
    return caller("VPPOMSP", "User1@vppo.vpp.local", ("client",))


def grid_admin() -> Caller:
    return caller("GridMSP", "Admin@grid.vpp.local", ("admin",))


def agg_admin(n: int) -> Caller:
    return caller(f"Agg{n}MSP", f"Admin@agg{n}.vpp.local", ("admin",))


def agg_trader(n: int) -> Caller:
    return caller(f"Agg{n}MSP", f"trader@agg{n}.vpp.local", attrs=(("vpp.role", "trader"),))


def agg_meter(n: int, m: int = 1, meter_id: str | None = None) -> Caller:
    """Meter m of Agg n (meter id ``agg<n>-m<m>`` unless given)."""
    meter = meter_id or f"agg{n}-m{m}"
    return caller(
        f"Agg{n}MSP",
        f"meter{m}@agg{n}.vpp.local",
        attrs=(("vpp.meter", meter), ("vpp.role", "meter")),
    )
