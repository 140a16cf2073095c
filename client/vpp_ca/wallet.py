"""Writing a wallet entry: ``<wallet>/<name>/{cert.pem,key.pem,identity.json}``.

The layout vpp_gateway.load_wallet_identity reads; ``identity.json`` also
records the CA and enrolment id so ``vppctl identity reenroll|revoke`` can
find the identity at its CA again.
"""

from __future__ import annotations

import json
from pathlib import Path


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if private:
        path.touch(mode=0o600)
    path.write_bytes(data)


def write_wallet_identity(
    wallet: Path,
    name: str,
    mspid: str,
    role: str,
    cert: bytes,
    key: bytes,
    *,
    enrollment_id: str = "",
    ca: str = "",
) -> Path:
    """Writes (or replaces) one wallet entry; the key file is readable by its owner only."""
    folder = wallet / name
    _write(folder / "cert.pem", cert)
    _write(folder / "key.pem", key, private=True)
    meta = {"name": name, "mspid": mspid, "role": role}
    if enrollment_id:
        meta |= {"enrollment_id": enrollment_id, "ca": ca}
    _write(folder / "identity.json", (json.dumps(meta, indent=2) + "\n").encode())
    return folder
