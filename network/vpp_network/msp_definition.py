"""An organisation's public MSP definition: the one file a new member hands to the others.

What channel configuration needs to know about an organisation is public:
its MSP ID, its root (and TLS root) certificates, its Node OU settings and
where its anchor peer listens. ``export`` writes exactly that, as JSON,
from the organisation's own MSP folder (never a key: the folder's
``keystore`` is not read); ``materialise`` turns the file back into an MSP
folder on the receiving side, which configtxgen reads to build the
organisation's group of the channel configuration. Fabric's own samples
pass ``configtxgen -printOrg`` JSON around; that form needs configtxlator
to turn back into protobuf, which this project does not build.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FORMAT = "vpp-fabric/msp-definition/1"
PUBLIC_FOLDERS = ("cacerts", "tlscacerts", "intermediatecerts", "tlsintermediatecerts", "crls")


def export(mspid: str, msp_dir: Path, anchor_host: str, anchor_port: int, out: Path) -> Path:
    """Writes ``mspid``'s public definition from its MSP folder ``msp_dir`` to ``out``."""
    files: dict[str, dict[str, str]] = {}
    for folder in PUBLIC_FOLDERS:
        found = sorted((msp_dir / folder).glob("*.pem")) if (msp_dir / folder).is_dir() else []
        if found:
            files[folder] = {f.name: f.read_text() for f in found}
    if "cacerts" not in files:
        raise ValueError(f"{msp_dir}: no cacerts/*.pem; enrol the organisation first")
    definition = {
        "format": FORMAT,
        "mspid": mspid,
        "msp": files,
        "config.yaml": (msp_dir / "config.yaml").read_text(),
        "anchor_peer": {"host": anchor_host, "port": anchor_port},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(definition, indent=2) + "\n")
    return out


def load(path: Path) -> dict[str, Any]:
    """The definition in ``path``; ValueError naming the file if it is not one."""
    try:
        definition = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable MSP definition ({exc})") from exc
    if not isinstance(definition, dict) or definition.get("format") != FORMAT:
        raise ValueError(f"{path}: format is not {FORMAT!r}")
    for field in ("mspid", "msp", "config.yaml", "anchor_peer"):
        if field not in definition:
            raise ValueError(f"{path}: field {field!r} is missing")
    return definition


def materialise(definition: dict[str, Any], folder: Path) -> Path:
    """An MSP folder holding the definition's certificates and config.yaml; ``folder``."""
    for sub, files in definition["msp"].items():
        if sub not in PUBLIC_FOLDERS:
            raise ValueError(f"msp folder {sub!r}: not a public MSP folder")
        for name, pem in files.items():
            if "/" in name or name.startswith("."):
                raise ValueError(f"msp file name {name!r}: not a plain file name")
            target = folder / sub / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(pem)
    (folder / "config.yaml").write_text(definition["config.yaml"])
    return folder
