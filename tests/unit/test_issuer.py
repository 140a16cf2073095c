"""The one certificate issuer (vpp_network.issuer): what Fabric's MSP and our chaincode check."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from vpp_network.issuer import CertificateAuthority, self_signed
from vpp_shim.api import Caller


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create("ca.agg3.vpp.local")


def test_issued_certificate_chains_to_the_ca(ca: CertificateAuthority) -> None:
    cert_pem, _ = ca.issue("trader@agg3.vpp.local", attrs={"vpp.role": "trader"})
    cert = x509.load_pem_x509_certificate(cert_pem)
    cert.verify_directly_issued_by(ca.certificate)
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_the_chaincode_reads_roles_and_attributes(ca: CertificateAuthority) -> None:
    attrs = {"vpp.role": "meter", "vpp.meter": "agg3-m1"}
    cert_pem, _ = ca.issue("meter1@agg3.vpp.local", attrs=attrs, country="CN")
    caller = Caller("Agg3MSP", cert_pem)
    assert caller.attributes == attrs
    assert caller.ous == ("client",)
    assert caller.common_name == "meter1@agg3.vpp.local"
    plain, _ = ca.issue("Admin@agg3.vpp.local", ous=("admin",))
    assert Caller("Agg3MSP", plain).attributes == {}


def test_a_leaf_is_never_valid_before_its_ca() -> None:
    """Fabric's MSP checks the chain at the leaf's NotBefore (a fresh CA is younger than 5 min)."""
    ca = CertificateAuthority.create("fresh-ca")
    cert = x509.load_pem_x509_certificate(ca.issue("user")[0])
    assert cert.not_valid_before_utc >= ca.certificate.not_valid_before_utc
    assert cert.not_valid_after_utc <= ca.certificate.not_valid_after_utc
    assert cert.not_valid_before_utc <= dt.datetime.now(dt.UTC)


def test_key_matches_certificate_and_tls_names(ca: CertificateAuthority) -> None:
    cert_pem, key_pem = ca.issue("peer0.test", ous=(), dns_names=["peer0.test"])
    cert = x509.load_pem_x509_certificate(cert_pem)
    key = serialization.load_pem_private_key(key_pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["peer0.test"]


def test_self_signed_ca_can_issue() -> None:
    cert_pem, key_pem = self_signed("tls-ca", is_ca=True)
    ca = CertificateAuthority.from_pem(cert_pem, key_pem)
    issued = x509.load_pem_x509_certificate(ca.issue("x")[0])
    issued.verify_directly_issued_by(ca.certificate)
