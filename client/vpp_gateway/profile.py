"""Where the network is: the connection profile written by ``make network-up``.

The profile (docs/architecture.md, "Connection profile shape") lists peers,
orderers, organisations, channels and the wallet folder. It lives at
``$VPP_HOME/connection.json`` or, by default, ``<repo>/.fabric/network/
connection.json``. Relative paths inside it are resolved against the
profile's own folder, so a copied network folder keeps working.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vpp_gateway.errors import ProfileError

PROFILE_FILE = "connection.json"
_PROJECT_NAME = "vpp-fabric"


@dataclass(frozen=True)
class PeerInfo:
    """A peer's gRPC endpoint; ``host`` is the TLS server name its certificate carries."""

    name: str
    mspid: str
    address: str
    host: str
    tls_ca: Path

    def tls_ca_pem(self) -> bytes:
        """The TLS CA certificate(s) that the peer's server certificate chains to."""
        try:
            return self.tls_ca.read_bytes()
        except OSError as exc:
            raise ProfileError(
                f"peer {self.name}: cannot read TLS CA {self.tls_ca}: {exc}"
            ) from exc


@dataclass(frozen=True)
class OrdererInfo:
    name: str
    address: str
    host: str
    tls_ca: Path


@dataclass(frozen=True)
class ChannelInfo:
    name: str
    peers: tuple[str, ...]
    chaincodes: tuple[str, ...]
    # MSP IDs whose peers must endorse a transaction on this channel (its chaincode's
    # policy, as network-up wrote it); empty when the profile does not say.
    endorsers: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConnectionProfile:
    """The parsed profile; look-ups raise ProfileError naming what does exist."""

    path: Path
    name: str
    fabric_version: str
    wallet: Path
    organizations: Mapping[str, tuple[str, ...]]
    peers: Mapping[str, PeerInfo]
    orderers: Mapping[str, OrdererInfo]
    channels: Mapping[str, ChannelInfo]

    def peer(self, name: str) -> PeerInfo:
        try:
            return self.peers[name]
        except KeyError:
            raise ProfileError(
                f"no peer {name!r} in {self.path} (peers: {', '.join(self.peers) or 'none'})"
            ) from None

    def channel(self, name: str) -> ChannelInfo:
        try:
            return self.channels[name]
        except KeyError:
            raise ProfileError(
                f"no channel {name!r} in {self.path} "
                f"(channels: {', '.join(self.channels) or 'none'})"
            ) from None

    def org_peers(self, mspid: str) -> list[PeerInfo]:
        """The peers of an organisation, in profile order."""
        if mspid in self.organizations:
            return [self.peer(n) for n in self.organizations[mspid]]
        found = [p for p in self.peers.values() if p.mspid == mspid]
        if not found:
            raise ProfileError(
                f"no organisation {mspid!r} in {self.path} "
                f"(organisations: {', '.join(self.organizations) or 'none'})"
            )
        return found

    def gateway_peer(self, mspid: str, channel: str | None = None) -> PeerInfo:
        """The peer an identity of ``mspid`` should connect to.

        A Gateway peer only serves its own organisation's clients well (it
        endorses locally first and holds the org's transient data), so we
        pick the org's first peer, preferring one that joined ``channel``.
        """
        peers = self.org_peers(mspid)
        if channel is not None and channel in self.channels:
            joined = [p for p in peers if p.name in self.channels[channel].peers]
            if joined:
                return joined[0]
        return peers[0]


def _is_repo_root(folder: Path) -> bool:
    try:
        text = (folder / "pyproject.toml").read_text()
    except OSError:
        return False
    return f'name = "{_PROJECT_NAME}"' in text


def find_repo_root(start: str | Path | None = None) -> Path:
    """The vpp-fabric checkout: searched upwards from ``start`` (default cwd), then from
    this package's own location (an editable install lives inside the checkout).
    """
    origins = [Path(start) if start is not None else Path.cwd(), Path(__file__).resolve().parent]
    for origin in origins:
        origin = origin.resolve()
        for folder in (origin, *origin.parents):
            if _is_repo_root(folder):
                return folder
    raise ProfileError(
        "cannot find the vpp-fabric checkout from the current folder; set VPP_HOME "
        "to the network folder (the one holding connection.json)"
    )


def default_profile_path() -> Path:
    """``$VPP_HOME/connection.json``, else ``<repo>/.fabric/network/connection.json``."""
    home = os.environ.get("VPP_HOME")
    if home:
        return Path(home).expanduser() / PROFILE_FILE
    return find_repo_root() / ".fabric" / "network" / PROFILE_FILE


def _resolve(base: Path, value: Any, what: str) -> Path:
    if not isinstance(value, str) or not value:
        raise ProfileError(f"{what}: expected a path, got {value!r}")
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _require(obj: Any, key: str, what: str) -> Any:
    if not isinstance(obj, Mapping):
        raise ProfileError(f"{what}: expected an object, got {obj!r}")
    if key not in obj:
        raise ProfileError(f"{what}: missing {key!r}")
    return obj[key]


def parse_profile(data: Mapping[str, Any], path: Path) -> ConnectionProfile:
    """Builds a ConnectionProfile from the decoded JSON; ``path`` anchors relative paths."""
    if not isinstance(data, Mapping):
        raise ProfileError(f"{path}: expected a JSON object")
    base = path.parent
    peers = {}
    for name, raw in dict(data.get("peers") or {}).items():
        what = f"{path}: peer {name}"
        peers[name] = PeerInfo(
            name=name,
            mspid=str(_require(raw, "mspid", what)),
            address=str(_require(raw, "address", what)),
            host=str(raw.get("host") or name),
            tls_ca=_resolve(base, _require(raw, "tls_ca", what), what),
        )
    orderers = {}
    for name, raw in dict(data.get("orderers") or {}).items():
        what = f"{path}: orderer {name}"
        orderers[name] = OrdererInfo(
            name=name,
            address=str(_require(raw, "address", what)),
            host=str(raw.get("host") or name),
            tls_ca=_resolve(base, _require(raw, "tls_ca", what), what),
        )
    organizations = {
        mspid: tuple(dict(raw).get("peers", ()))
        for mspid, raw in dict(data.get("organizations") or {}).items()
    }
    for mspid, names in organizations.items():
        for n in names:
            if n not in peers:
                raise ProfileError(f"{path}: organisation {mspid} lists unknown peer {n!r}")
    channels = {
        name: ChannelInfo(
            name=name,
            peers=tuple(dict(raw).get("peers", ())),
            chaincodes=tuple(dict(raw).get("chaincodes", ())),
            endorsers=tuple(str(m) for m in dict(raw).get("endorsers", ())),
        )
        for name, raw in dict(data.get("channels") or {}).items()
    }
    wallet = data.get("wallet")
    return ConnectionProfile(
        path=path,
        name=str(data.get("name", "")),
        fabric_version=str(data.get("fabric_version", "")),
        wallet=_resolve(base, wallet, f"{path}: wallet") if wallet else base / "wallet",
        organizations=organizations,
        peers=peers,
        orderers=orderers,
        channels=channels,
    )


def load_profile(path: str | Path | None = None) -> ConnectionProfile:
    """Reads the profile at ``path`` (a file, or a folder holding connection.json).

    Without ``path`` it uses ``default_profile_path()``.
    """
    target = Path(path).expanduser() if path is not None else default_profile_path()
    if target.is_dir():
        target = target / PROFILE_FILE
    try:
        text = target.read_text()
    except FileNotFoundError:
        raise ProfileError(
            f"no connection profile at {target}; start the network (make network-up) "
            "or point VPP_HOME at its folder"
        ) from None
    except OSError as exc:
        raise ProfileError(f"cannot read {target}: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProfileError(f"{target} is not valid JSON: {exc}") from exc
    return parse_profile(data, target.resolve())
