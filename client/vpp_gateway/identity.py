"""Who signs: an X.509 identity of an MSP, its ECDSA signer, and loading them from disk.

Fabric checks every proposal, transaction envelope and Gateway request
against the creator's certificate, and its MSP rejects ECDSA signatures
whose S is in the upper half of the curve order (signature malleability),
so ``Signer.sign`` always normalises to low S. Identities come either from
our wallet layout (``<wallet>/<name>/{cert.pem,key.pem,identity.json}``,
written by vpp_network) or from a standard MSP folder written by cryptogen.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from fabric_protos.msp import identities_pb2

from vpp_gateway.errors import IdentityError

# Group orders of the curves Fabric's default BCCSP accepts.
CURVE_ORDERS: dict[str, int] = {
    "secp256r1": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "secp384r1": int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF"
        "581A0DB248B0A77AECEC196ACCC52973",
        16,
    ),
}


def _curve_order(curve: ec.EllipticCurve) -> int:
    try:
        return CURVE_ORDERS[curve.name]
    except KeyError:
        raise IdentityError(
            f"unsupported curve {curve.name}; Fabric accepts {', '.join(CURVE_ORDERS)}"
        ) from None


def to_low_s(signature_der: bytes, order: int) -> bytes:
    """The same ECDSA signature with S replaced by ``order - S`` when S > order/2."""
    r, s = decode_dss_signature(signature_der)
    if s > order // 2:
        s = order - s
    return encode_dss_signature(r, s)


def is_low_s(signature_der: bytes, order: int) -> bool:
    """True when S is in the lower half of the order, as Fabric's MSP requires."""
    _, s = decode_dss_signature(signature_der)
    return s <= order // 2


@dataclass(frozen=True)
class Identity:
    """An MSP member as Fabric serialises it: MSP ID plus PEM certificate."""

    mspid: str
    cert_pem: bytes

    def __post_init__(self) -> None:
        if isinstance(self.cert_pem, str):
            object.__setattr__(self, "cert_pem", self.cert_pem.encode())
        try:
            x509.load_pem_x509_certificate(self.cert_pem)
        except ValueError as exc:
            raise IdentityError(f"identity of {self.mspid}: not a PEM certificate: {exc}") from exc

    @cached_property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    @property
    def common_name(self) -> str:
        names = self.certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        return str(names[0].value) if names else ""

    def serialize(self) -> bytes:
        """``msp.SerializedIdentity`` bytes: the ``creator`` of every signed message."""
        return identities_pb2.SerializedIdentity(
            mspid=self.mspid, id_bytes=self.cert_pem
        ).SerializeToString()

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True when ``signature`` is a valid low-S ECDSA/SHA-256 signature by this identity."""
        return verify_signature(self.certificate.public_key(), message, signature)


def verify_signature(public_key: object, message: bytes, signature: bytes) -> bool:
    """Checks a signature the way a Fabric MSP does: ECDSA over SHA-256, and low S."""
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        return False
    try:
        public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return is_low_s(signature, _curve_order(public_key.curve))


class Signer:
    """Signs with an EC private key: ECDSA over SHA-256, DER, low S (what Fabric accepts)."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(private_key, ec.EllipticCurvePrivateKey):
            raise IdentityError("Fabric identities need an EC private key")
        self._key = private_key
        self._order = _curve_order(private_key.curve)

    @classmethod
    def from_pem(cls, key_pem: bytes | str, password: bytes | None = None) -> Signer:
        """Loads a PKCS#8 or SEC1 PEM private key (cryptogen and fabric-ca write PKCS#8)."""
        data = key_pem.encode() if isinstance(key_pem, str) else key_pem
        try:
            key = serialization.load_pem_private_key(data, password=password)
        except (ValueError, TypeError) as exc:
            raise IdentityError(f"not a usable PEM private key: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise IdentityError("Fabric identities need an EC private key")
        return cls(key)

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._key.public_key()

    def sign(self, message: bytes) -> bytes:
        """DER signature of SHA-256(message), normalised to low S."""
        der = self._key.sign(message, ec.ECDSA(hashes.SHA256()))
        return to_low_s(der, self._order)

    def matches(self, identity: Identity) -> bool:
        """True when this key belongs to the identity's certificate."""
        cert_key = identity.certificate.public_key()
        return (
            isinstance(cert_key, ec.EllipticCurvePublicKey)
            and cert_key.public_numbers() == self.public_key.public_numbers()
        )


@dataclass(frozen=True)
class WalletIdentity:
    """One wallet entry: the name vppctl users type, its role and its signing material."""

    name: str
    mspid: str
    role: str
    identity: Identity = field(repr=False)
    signer: Signer = field(repr=False)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise IdentityError(f"cannot read {path}: {exc.strerror or exc}") from exc


def list_wallet(wallet_dir: str | Path) -> list[str]:
    """Names of the identities in a wallet folder (sub-folders with an identity.json)."""
    root = Path(wallet_dir)
    if not root.is_dir():
        raise IdentityError(f"wallet folder {root} does not exist")
    return sorted(p.name for p in root.iterdir() if (p / "identity.json").is_file())


def load_wallet_identity(name: str, wallet_dir: str | Path | None = None) -> WalletIdentity:
    """Loads ``<wallet>/<name>/{cert.pem,key.pem,identity.json}``.

    Without ``wallet_dir`` the wallet named by the connection profile is used.
    The key is checked against the certificate here, because a mismatch would
    otherwise surface much later as an opaque signature or ACL failure.
    """
    if wallet_dir is None:
        from vpp_gateway.profile import load_profile

        wallet_dir = load_profile().wallet
    folder = Path(wallet_dir) / name
    if not folder.is_dir():
        known = ", ".join(list_wallet(wallet_dir)) if Path(wallet_dir).is_dir() else "none"
        raise IdentityError(f"no identity {name!r} in wallet {wallet_dir} (known: {known})")
    try:
        meta = json.loads(_read(folder / "identity.json"))
    except json.JSONDecodeError as exc:
        raise IdentityError(f"{folder / 'identity.json'} is not JSON: {exc}") from exc
    if not isinstance(meta, dict) or not isinstance(meta.get("mspid"), str):
        raise IdentityError(f"{folder / 'identity.json'} needs at least {{'mspid': ...}}")
    identity = Identity(meta["mspid"], _read(folder / "cert.pem"))
    signer = Signer.from_pem(_read(folder / "key.pem"))
    if not signer.matches(identity):
        raise IdentityError(f"{folder}: key.pem does not belong to cert.pem")
    return WalletIdentity(
        name=str(meta.get("name", name)),
        mspid=identity.mspid,
        role=str(meta.get("role", "")),
        identity=identity,
        signer=signer,
    )


def load_msp_identity(msp_dir: str | Path, mspid: str) -> tuple[Identity, Signer]:
    """Loads the signing identity of a standard MSP folder (signcerts/, keystore/).

    The key is the keystore file (``*_sk`` first, then any other file) whose
    public key matches the certificate, so stale keys left in the keystore
    do no harm.
    """
    root = Path(msp_dir)
    certs = sorted((root / "signcerts").glob("*.pem"))
    if not certs:
        raise IdentityError(f"no certificate in {root / 'signcerts'}")
    identity = Identity(mspid, _read(certs[0]))
    keystore = root / "keystore"
    if not keystore.is_dir():
        raise IdentityError(f"no keystore folder in {root}")
    candidates = sorted(keystore.glob("*_sk")) + sorted(
        p for p in keystore.iterdir() if p.is_file() and not p.name.endswith("_sk")
    )
    for path in candidates:
        try:
            signer = Signer.from_pem(_read(path))
        except IdentityError:
            continue
        if signer.matches(identity):
            return identity, signer
    raise IdentityError(f"no key in {keystore} matches {certs[0].name}")
