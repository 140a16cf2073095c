"""Test identities: P-256 certificates shaped like the network's, wrapped as shim Callers.

The contracts decide roles from the certificate alone (MSP ID, node OU,
Fabric CA attributes in extension 1.2.3.4.5.6.7.8.1), so unit tests must use
real certificates, issued by one throwaway CA per MSP through the issuer
used for test identities (vpp_network.issuer).
Callers are cached: a test run issues each identity once.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

from vpp_network.issuer import CertificateAuthority
from vpp_shim.api import Caller


@functools.cache
def _ca(mspid: str) -> CertificateAuthority:
    return CertificateAuthority.create(f"ca.{mspid.lower()}")


def issue(
    mspid: str,
    common_name: str,
    ous: Sequence[str] = ("client",),
    attrs: Mapping[str, str] | None = None,
) -> bytes:
    """A PEM certificate for ``common_name`` under ``mspid``'s test CA."""
    cert_pem, _key_pem = _ca(mspid).issue(common_name, ous=ous, attrs=attrs)
    return cert_pem


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


def agg_meter(n: int, m: int = 1, meter_id: str | None = None, agg: int | None = None) -> Caller:
    """Meter m of Agg n as the Grid issues it (meter id ``agg<n>-m<m>`` unless given).

    ``agg`` overrides the ``vpp.agg`` attribute (a meter certified for another aggregator).
    """
    meter = meter_id or f"agg{n}-m{m}"
    return caller(
        "GridMSP",
        f"agg{n}-meter{m}@grid.vpp.local",
        attrs=(("vpp.agg", str(agg or n)), ("vpp.meter", meter), ("vpp.role", "meter")),
    )


def self_issued_meter(n: int, m: int = 1) -> Caller:
    """A meter certificate Agg n's own CA issued itself: the attack the trust rules forbid."""
    return caller(
        f"Agg{n}MSP",
        f"meter{m}@agg{n}.vpp.local",
        attrs=(("vpp.agg", str(n)), ("vpp.meter", f"agg{n}-m{m}"), ("vpp.role", "meter")),
    )
