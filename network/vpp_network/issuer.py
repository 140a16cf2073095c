"""The project's one X.509 issuer: P-256 keys and certificates shaped like Fabric's.

The network's own certificates come from its Fabric CA servers
(docs/identities.md). Tests need certificates shaped the same way without a
CA server: the unit tests' callers (one throwaway CA per MSP), the fake
gateway peer's TLS CA and server certificate, and the live tests' forgeries
(a look-alike CA issuing itself a trader attribute). They all issue here.

Attributes go in extension 1.2.3.4.5.6.7.8.1 as ``{"attrs": {...}}`` with
sorted keys, exactly as fabric-ca writes them; the OID is the chaincode's
own constant (vpp_shim.api), which reads them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from vpp_shim.attributes import FABRIC_ATTRS_OID

__all__ = ["FABRIC_ATTRS_OID", "CertificateAuthority", "attrs_extension", "self_signed"]

# Clock skew allowance: a certificate is valid from a little before "now".
_BACKDATE = dt.timedelta(minutes=5)
DEFAULT_VALID_DAYS = 3650


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _subject(common_name: str, ous: Sequence[str], country: str | None) -> x509.Name:
    """Country, OUs, then CN: the order cryptogen and fabric-ca use."""
    names = [x509.NameAttribute(NameOID.COUNTRY_NAME, country)] if country else []
    names += [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou) for ou in ous]
    names.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(names)


def attrs_extension(attrs: Mapping[str, str]) -> x509.UnrecognizedExtension:
    """Fabric CA's attribute extension: JSON ``{"attrs": {...}}``, keys sorted."""
    value = json.dumps({"attrs": dict(attrs)}, sort_keys=True).encode()
    return x509.UnrecognizedExtension(FABRIC_ATTRS_OID, value)


def _key_usage(is_ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=is_ca,
        crl_sign=is_ca,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA certificate and its key; ``issue`` signs new leaf (or CA) certificates."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def create(
        cls, common_name: str, *, valid_days: int = DEFAULT_VALID_DAYS
    ) -> CertificateAuthority:
        """A fresh self-signed CA (throwaway CAs for tests and the fake peer's TLS)."""
        cert_pem, key_pem = self_signed(common_name, is_ca=True, valid_days=valid_days)
        return cls.from_pem(cert_pem, key_pem)

    @classmethod
    def from_pem(cls, cert_pem: bytes, key_pem: bytes) -> CertificateAuthority:
        """An existing CA, e.g. the one cryptogen wrote for an organisation."""
        key = serialization.load_pem_private_key(key_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("a Fabric CA key must be an EC private key")
        return cls(x509.load_pem_x509_certificate(cert_pem), key)

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def issue(
        self,
        common_name: str,
        *,
        ous: Sequence[str] = ("client",),
        attrs: Mapping[str, str] | None = None,
        dns_names: Sequence[str] = (),
        country: str | None = None,
        is_ca: bool = False,
        valid_days: int = DEFAULT_VALID_DAYS,
    ) -> tuple[bytes, bytes]:
        """A new P-256 key and a certificate for it signed by this CA: ``(cert_pem, key_pem)``.

        ``attrs`` adds Fabric CA's attribute extension (None: no extension);
        ``dns_names`` a subjectAltName (TLS server certificates).
        """
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        # Fabric's MSP checks the chain at the leaf's NotBefore: not before the CA's.
        not_before = max(now - _BACKDATE, self.certificate.not_valid_before_utc)
        builder = _builder(
            _subject(common_name, ous, country),
            key,
            not_before,
            min(now + dt.timedelta(days=valid_days), self.certificate.not_valid_after_utc),
            is_ca,
        ).issuer_name(self.certificate.subject)
        try:
            ca_ski = self.certificate.extensions.get_extension_for_class(
                x509.SubjectKeyIdentifier
            ).value
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), False
            )
        except x509.ExtensionNotFound:
            pass
        if dns_names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), False
            )
        if attrs is not None:
            builder = builder.add_extension(attrs_extension(attrs), False)
        cert = builder.sign(self.key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def _builder(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
    is_ca: bool,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(_key_usage(is_ca), True)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )


def self_signed(
    common_name: str,
    *,
    ous: Sequence[str] = (),
    attrs: Mapping[str, str] | None = None,
    is_ca: bool = False,
    valid_days: int = DEFAULT_VALID_DAYS,
) -> tuple[bytes, bytes]:
    """A new P-256 key and a self-signed certificate: ``(cert_pem, key_pem)``."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _subject(common_name, ous, None)
    now = dt.datetime.now(dt.UTC)
    builder = _builder(
        subject, key, now - _BACKDATE, now + dt.timedelta(days=valid_days), is_ca
    ).issuer_name(subject)
    if attrs is not None:
        builder = builder.add_extension(attrs_extension(attrs), False)
    cert = builder.sign(key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)
