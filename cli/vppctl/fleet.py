"""The device side of issue 13: device keys, fingerprints, signed interval readings.

A ``Device`` holds its own P-256 key and certificate (issued by
vpp_network.issuer, the project's one issuer) and signs each interval
reading over the canonical bytes the chaincode verifies
(``vpp_market.merkle.leaf_bytes``, which the chaincode verifies). Used by ``vppctl devices
simulate``, the benchmark and the tests, so all sign exactly alike.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from vpp_market.merkle import leaf_bytes

_ECDSA = ec.ECDSA(hashes.SHA256())


def fingerprint(content: bytes | str) -> str:
    """SHA-256 hex of a software image, strategy file or settings document."""
    data = content.encode() if isinstance(content, str) else content
    return hashlib.sha256(data).hexdigest()


@dataclass
class Device:
    """One device: id (= its meter id), kind, capacity, key and what it runs."""

    id: str
    kind: str
    capacity_kw: int
    cert_pem: str
    key: ec.EllipticCurvePrivateKey
    software: str = "firmware 1.0"
    strategy: str = "strategy: follow dispatch"
    settings: str = "settings: p_max=100%"

    @classmethod
    def create(cls, device_id: str, kind: str, capacity_kw: int) -> Device:
        from vpp_network.issuer import self_signed  # loads vpp_shim: only when keys are made

        cert, key_pem = self_signed(f"{device_id}.device", ous=("device",))
        key = serialization.load_pem_private_key(key_pem, password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return cls(device_id, kind, capacity_kw, cert.decode(), key)

    @classmethod
    def load(cls, folder: Path, device_id: str, kind: str, capacity_kw: int) -> Device:
        """The device's key from ``folder`` (made there on first use), so reruns reuse it."""
        cert_file, key_file = folder / f"{device_id}.crt", folder / f"{device_id}.key"
        if cert_file.exists() and key_file.exists():
            key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            return cls(device_id, kind, capacity_kw, cert_file.read_text(), key)
        device = cls.create(device_id, kind, capacity_kw)
        folder.mkdir(parents=True, exist_ok=True)
        cert_file.write_text(device.cert_pem)
        key_file.write_bytes(
            device.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        key_file.chmod(0o600)
        return device

    def key_id(self) -> str:
        """What the chaincode records as the device's key (SHA-256 of its public key DER)."""
        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return hashlib.sha256(der).hexdigest()  # as vpp_chaincode.devices.key_id

    def fingerprints(self) -> dict[str, str]:
        return {
            "software": fingerprint(self.software),
            "strategy": fingerprint(self.strategy),
            "settings": fingerprint(self.settings),
        }

    def resource(self) -> dict[str, str]:
        """The resource terms the aggregator proposes and the Grid certifies."""
        return {"id": self.id, "kind": self.kind, "capacity_kw": str(self.capacity_kw),
                "meter": self.id}  # fmt: skip

    def certification(self) -> dict[str, str]:
        """What the Grid certifies for this device (CertifyDevice)."""
        return {"device": self.id, "cert_pem": self.cert_pem, **self.fingerprints()}

    def report(self) -> dict[str, str]:
        """What the gateway reports the device runs (ReportFingerprints)."""
        return {"device": self.id, **self.fingerprints()}

    def reading(self, channel: str, period: str, slot: int, exported_wh: int, imported_wh: int
                ) -> list[Any]:  # fmt: skip
        """One signed reading in SubmitReadings' form."""
        doc = {"period": period, "meter": self.id, "slot": slot, "exported_wh": exported_wh,
               "imported_wh": imported_wh}  # fmt: skip
        signature = self.key.sign(leaf_bytes(channel, doc), _ECDSA)
        return [period, self.id, slot, exported_wh, imported_wh,
                base64.b64encode(signature).decode()]  # fmt: skip
