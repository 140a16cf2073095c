"""vpp_ca without a CA server: the token Fabric CA verifies, the channel config update
that carries a CRL, and the attribute rules checked before any request."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from fabric_protos.common import configtx_pb2
from fabric_protos.msp import msp_config_pb2
from vpp_ca import channel_msp
from vpp_ca import identities as ids
from vpp_ca.client import Caller, crl_to_pem, csr_pem, new_key
from vpp_ca.errors import AttributeNameError, CAError
from vpp_gateway.identity import CURVE_ORDERS
from vpp_network.issuer import CertificateAuthority

ORDER = CURVE_ORDERS["secp256r1"]


def _caller() -> Caller:
    ca = CertificateAuthority.create("ca.agg3.vpp.local")
    cert, key = ca.issue("Admin@agg3.vpp.local", ous=("admin",))
    return Caller.from_pem(cert, key)


# --- token ---------------------------------------------------------------------------------
def test_token_is_cert_and_signature_over_method_uri_body_cert() -> None:
    caller = _caller()
    body = b'{"id":"agg3-trader2","type":"client"}'
    token = caller.token("POST", "/api/v1/register", body)
    b64cert, b64sig = token.split(".")
    assert base64.b64decode(b64cert) == caller.cert_pem
    # What the CA recomputes: METHOD.b64(uri).b64(body).b64(cert), SHA-256, ECDSA.
    payload = ".".join(
        [
            "POST",
            base64.b64encode(b"/api/v1/register").decode(),
            base64.b64encode(body).decode(),
            b64cert,
        ]
    ).encode()
    public = x509.load_pem_x509_certificate(caller.cert_pem).public_key()
    signature = base64.b64decode(b64sig)
    public.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
    assert decode_dss_signature(signature)[1] <= ORDER // 2  # low S, as Fabric's BCCSP wants


def test_token_does_not_verify_for_another_body_or_uri() -> None:
    caller = _caller()
    token = caller.token("POST", "/api/v1/register", b"{}")
    public = x509.load_pem_x509_certificate(caller.cert_pem).public_key()
    b64cert, b64sig = token.split(".")
    for uri, body in (("/api/v1/revoke", b"{}"), ("/api/v1/register", b'{"id":"x"}')):
        payload = f"POST.{base64.b64encode(uri.encode()).decode()}."
        payload += f"{base64.b64encode(body).decode()}.{b64cert}"
        with pytest.raises(InvalidSignature):
            public.verify(base64.b64decode(b64sig), payload.encode(), ec.ECDSA(hashes.SHA256()))


def test_csr_names_the_enrollment_id_and_hosts() -> None:
    pem = csr_pem(new_key(), "peer0.agg3.vpp.local", ["127.0.0.1", "h"])
    csr = x509.load_pem_x509_csr(pem.encode())
    assert csr.subject.rfc4514_string() == "CN=peer0.agg3.vpp.local"
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(n.value) for n in san] == ["127.0.0.1", "h"]


# --- CRL into the channel configuration ---------------------------------------------------
def _crl(ca_key: ec.EllipticCurvePrivateKey, issuer: str, serials: list[int]) -> bytes:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, issuer)]))
        .last_update(now)
        .next_update(now + dt.timedelta(days=1))
    )
    for serial in serials:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build()
        )
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def _config(revocations: list[bytes]) -> configtx_pb2.Config:
    config = configtx_pb2.Config(sequence=7)
    config.channel_group.version = 3
    app = config.channel_group.groups["Application"]
    app.version = 2
    for name in ("Agg3MSP", "VPPOMSP"):
        org = app.groups[name]
        org.version = 1
        fabric = msp_config_pb2.FabricMSPConfig(name=name, root_certs=[b"root"])
        if name == "Agg3MSP":
            fabric.revocation_list.extend(revocations)
        org.values["MSP"].CopyFrom(
            configtx_pb2.ConfigValue(
                version=4,
                mod_policy="Admins",
                value=msp_config_pb2.MSPConfig(
                    type=0, config=fabric.SerializeToString()
                ).SerializeToString(),
            )
        )
    return config


def test_config_update_changes_only_the_msp_value_with_its_version_plus_one() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    old = _crl(key, "ca.agg3.vpp.local", [1])
    config = _config([old])
    msp = channel_msp.fabric_msp(config, "Agg3MSP")
    assert msp is not None and channel_msp.revoked_serials(msp) == {1}
    new = _crl(key, "ca.agg3.vpp.local", [1, 2])
    update = channel_msp.config_update("agg3", config, "Agg3MSP", channel_msp.with_crl(msp, new))

    assert update.channel_id == "agg3"
    read_org = update.read_set.groups["Application"].groups["Agg3MSP"]
    assert (update.read_set.version, update.read_set.groups["Application"].version) == (3, 2)
    assert read_org.version == 1 and not read_org.values
    written = update.write_set.groups["Application"].groups["Agg3MSP"]
    assert written.version == 1 and list(written.values) == ["MSP"]
    value = written.values["MSP"]
    assert (value.version, value.mod_policy) == (5, "Admins")
    assert "VPPOMSP" not in update.write_set.groups["Application"].groups
    fabric = msp_config_pb2.FabricMSPConfig.FromString(
        msp_config_pb2.MSPConfig.FromString(value.value).config
    )
    assert list(fabric.revocation_list) == [new]  # the old CRL of the same CA is replaced
    assert list(fabric.root_certs) == [b"root"]  # everything else kept


def test_with_crl_keeps_crls_of_other_issuers() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    other = _crl(key, "ca.intermediate", [9])
    msp = msp_config_pb2.FabricMSPConfig(name="GridMSP", revocation_list=[other])
    mine = _crl(key, "ca.grid.vpp.local", [3])
    updated = msp_config_pb2.FabricMSPConfig.FromString(channel_msp.with_crl(msp, mine))
    assert list(updated.revocation_list) == [other, mine]
    assert channel_msp.revoked_serials(updated) == {3, 9}


def test_config_update_for_an_org_not_on_the_channel_is_refused() -> None:
    with pytest.raises(channel_msp.ChannelUpdateError, match="no organisation with MSP Agg9MSP"):
        channel_msp.config_update("agg3", _config([]), "Agg9MSP", b"")


def test_signed_envelope_carries_every_admin_signature() -> None:
    from vpp_gateway.identity import Identity, Signer

    ca = CertificateAuthority.create("ca.agg3.vpp.local")
    admins = []
    for name in ("Admin@agg3.vpp.local", "Admin2@agg3.vpp.local"):
        cert, key = ca.issue(name, ous=("admin",))
        admins.append(channel_msp.Admin(Identity("Agg3MSP", cert), Signer.from_pem(key)))
    update = configtx_pb2.ConfigUpdate(channel_id="agg3")
    envelope = channel_msp.signed_envelope("agg3", update, admins)
    from fabric_protos.common import common_pb2

    payload = common_pb2.Payload.FromString(envelope.payload)
    header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
    assert (header.type, header.channel_id) == (common_pb2.CONFIG_UPDATE, "agg3")
    cue = configtx_pb2.ConfigUpdateEnvelope.FromString(payload.data)
    assert len(cue.signatures) == 2
    for admin, sig in zip(admins, cue.signatures, strict=True):
        assert admin.identity.verify(sig.signature_header + cue.config_update, sig.signature)
    assert admins[0].identity.verify(envelope.payload, envelope.signature)


def test_crl_to_pem_accepts_der_and_pem() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = _crl(key, "ca.x", [5])
    der = x509.load_pem_x509_crl(pem).public_bytes(serialization.Encoding.DER)
    assert crl_to_pem(pem) == pem
    assert x509.load_pem_x509_crl(crl_to_pem(der)).issuer == x509.load_pem_x509_crl(pem).issuer


# --- attributes -------------------------------------------------------------------------------
def test_unknown_attribute_is_refused_before_any_request() -> None:
    with pytest.raises(AttributeNameError, match="unknown attribute 'vpp.colour'"):
        ids.registration_attrs("Agg3MSP", "trader", extra={"vpp.colour": "red"})


def test_trader_attributes_and_bad_roles() -> None:
    assert ids.registration_attrs("Agg3MSP", "trader") == {"vpp.role": "trader"}
    with pytest.raises(ids.IdentityInputError, match="not an aggregator|is not one"):
        ids.registration_attrs("GridMSP", "trader")
    with pytest.raises(ids.IdentityInputError, match="role 'operator'"):
        ids.registration_attrs("Agg3MSP", "operator")
    with pytest.raises(ids.IdentityInputError, match="contradicts"):
        ids.registration_attrs("Agg3MSP", "trader", extra={"vpp.role": "meter"})


def test_meter_attributes_name_the_aggregator() -> None:
    issuer = "GridMSP" if ids.METERS_FROM_GRID else "Agg3MSP"
    assert ids.registration_attrs(issuer, "meter", meter="agg3-m3") == {
        "vpp.role": "meter",
        "vpp.agg": "3",
        "vpp.meter": "agg3-m3",
    }
    with pytest.raises(ids.IdentityInputError, match="aggN-<name>"):
        ids.registration_attrs(issuer, "meter", meter="m3")
    with pytest.raises(ids.IdentityInputError):
        ids.registration_attrs("Agg4MSP", "meter", meter="agg3-m3")


@pytest.mark.parametrize(
    ("text", "mspid"),
    [("3", "Agg3MSP"), ("agg3", "Agg3MSP"), ("Agg3MSP", "Agg3MSP"), ("grid", "GridMSP")],
)
def test_org_names(text: str, mspid: str) -> None:
    assert ids.org_mspid(text) == mspid


def test_org_name_that_is_not_an_org() -> None:
    with pytest.raises(CAError, match="not an organisation"):
        ids.org_mspid("Agg3;rm")
    for text in ("3\x1f", "agg3\x85", "\xa0grid", "³", "agg³"):  # str.strip()/isdigit() took them
        with pytest.raises(CAError, match="not an organisation"):
            ids.org_mspid(text)
