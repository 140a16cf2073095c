"""Signing and identity loading of vpp_gateway (no network)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from fabric_protos.msp import identities_pb2
from hypothesis import given, settings
from hypothesis import strategies as st
from vpp_gateway import (
    Identity,
    IdentityError,
    Signer,
    list_wallet,
    load_msp_identity,
    load_wallet_identity,
)
from vpp_gateway.identity import CURVE_ORDERS, is_low_s, to_low_s, verify_signature
from vpp_network.issuer import self_signed

P256_ORDER = CURVE_ORDERS["secp256r1"]


@pytest.fixture(scope="module")
def keypair() -> tuple[bytes, bytes]:
    return self_signed("agg3-trader", ous=["client"], attrs={"vpp.role": "trader"})


@pytest.fixture(scope="module")
def signer(keypair: tuple[bytes, bytes]) -> Signer:
    return Signer.from_pem(keypair[1])


@settings(max_examples=60, deadline=None)
@given(message=st.binary(max_size=256))
def test_signatures_are_low_s_and_verify_with_the_public_key(
    signer: Signer, keypair: tuple[bytes, bytes], message: bytes
) -> None:
    signature = signer.sign(message)
    _, s = decode_dss_signature(signature)
    assert s <= P256_ORDER // 2
    # Verifiable with plain cryptography, independent of our own verify helper.
    signer.public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    assert Identity("Agg3MSP", keypair[0]).verify(message, signature)


def test_high_s_is_normalised_and_still_valid(signer: Signer) -> None:
    message = b"proposal bytes"
    r, s = decode_dss_signature(signer.sign(message))
    high = encode_dss_signature(r, P256_ORDER - s)  # the malleable twin, rejected by Fabric
    assert not is_low_s(high, P256_ORDER)
    signer.public_key.verify(high, message, ec.ECDSA(hashes.SHA256()))  # valid ECDSA...
    assert not verify_signature(signer.public_key, message, high)  # ...but not for an MSP
    fixed = to_low_s(high, P256_ORDER)
    assert decode_dss_signature(fixed) == (r, s)
    assert verify_signature(signer.public_key, message, fixed)


def test_verify_rejects_other_messages_and_keys(signer: Signer) -> None:
    other = Signer(ec.generate_private_key(ec.SECP256R1()))
    signature = signer.sign(b"a")
    assert not verify_signature(signer.public_key, b"b", signature)
    assert not verify_signature(other.public_key, b"a", signature)


def test_serialized_identity_round_trips(keypair: tuple[bytes, bytes]) -> None:
    identity = Identity("Agg3MSP", keypair[0].decode())  # str is accepted, stored as bytes
    decoded = identities_pb2.SerializedIdentity.FromString(identity.serialize())
    assert decoded.mspid == "Agg3MSP"
    assert decoded.id_bytes == keypair[0]
    assert identity.common_name == "agg3-trader"


def test_non_ec_and_bad_pem_are_refused() -> None:
    with pytest.raises(IdentityError):
        Signer.from_pem(b"not a key")
    with pytest.raises(IdentityError):
        Identity("X", b"not a cert")
    with pytest.raises(IdentityError, match="unsupported curve"):
        Signer(ec.generate_private_key(ec.SECP256K1()))


def _write_wallet_entry(
    wallet: Path, name: str, mspid: str, role: str, cert: bytes, key: bytes
) -> None:
    folder = wallet / name
    folder.mkdir(parents=True)
    (folder / "cert.pem").write_bytes(cert)
    (folder / "key.pem").write_bytes(key)
    (folder / "identity.json").write_text(json.dumps({"name": name, "mspid": mspid, "role": role}))


def test_wallet_identity_loads_and_signs(tmp_path: Path, keypair: tuple[bytes, bytes]) -> None:
    _write_wallet_entry(tmp_path, "agg3-trader", "Agg3MSP", "trader", *keypair)
    (tmp_path / "stray-folder").mkdir()
    assert list_wallet(tmp_path) == ["agg3-trader"]
    entry = load_wallet_identity("agg3-trader", tmp_path)
    assert (entry.name, entry.mspid, entry.role) == ("agg3-trader", "Agg3MSP", "trader")
    assert entry.identity.verify(b"x", entry.signer.sign(b"x"))
    assert "key" not in repr(entry).lower().replace("walletidentity", "")


def test_wallet_rejects_key_of_another_certificate(
    tmp_path: Path, keypair: tuple[bytes, bytes]
) -> None:
    _, other_key = self_signed("someone-else")
    _write_wallet_entry(tmp_path, "bad", "Agg3MSP", "trader", keypair[0], other_key)
    with pytest.raises(IdentityError, match="does not belong"):
        load_wallet_identity("bad", tmp_path)


def test_wallet_reports_unknown_name_and_broken_metadata(
    tmp_path: Path, keypair: tuple[bytes, bytes]
) -> None:
    _write_wallet_entry(tmp_path, "agg1-admin", "Agg1MSP", "admin", *keypair)
    with pytest.raises(IdentityError, match="known: agg1-admin"):
        load_wallet_identity("agg9-trader", tmp_path)
    (tmp_path / "agg1-admin" / "identity.json").write_text("{not json")
    with pytest.raises(IdentityError, match="not JSON"):
        load_wallet_identity("agg1-admin", tmp_path)
    (tmp_path / "agg1-admin" / "identity.json").write_text('{"name": "agg1-admin"}')
    with pytest.raises(IdentityError, match="mspid"):
        load_wallet_identity("agg1-admin", tmp_path)


def test_msp_folder_picks_the_key_matching_the_certificate(
    tmp_path: Path, keypair: tuple[bytes, bytes]
) -> None:
    cert, key = keypair
    _, stale = self_signed("old")
    (tmp_path / "signcerts").mkdir()
    (tmp_path / "keystore").mkdir()
    (tmp_path / "signcerts" / "Admin@agg3.vpp.local-cert.pem").write_bytes(cert)
    (tmp_path / "keystore" / "aaaa_sk").write_bytes(stale)  # sorts first, does not match
    (tmp_path / "keystore" / "priv_sk").write_bytes(key)
    identity, signer = load_msp_identity(tmp_path, "Agg3MSP")
    assert identity.mspid == "Agg3MSP"
    assert signer.matches(identity)

    (tmp_path / "keystore" / "priv_sk").unlink()
    (tmp_path / "keystore" / "key.pem").write_bytes(key)  # fabric-ca style name also works
    assert load_msp_identity(tmp_path, "Agg3MSP")[1].matches(identity)

    (tmp_path / "keystore" / "key.pem").unlink()
    with pytest.raises(IdentityError, match="no key"):
        load_msp_identity(tmp_path, "Agg3MSP")


def test_msp_folder_without_certificate(tmp_path: Path) -> None:
    with pytest.raises(IdentityError, match="no certificate"):
        load_msp_identity(tmp_path, "Agg3MSP")
