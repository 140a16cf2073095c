"""Connection profile loading of vpp_gateway (temp files only)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from vpp_gateway import ProfileError, default_profile_path, find_repo_root, load_profile


def _profile(tmp_path: Path) -> dict:
    return {
        "name": "vpp-fabric",
        "fabric_version": "3.1.1",
        "wallet": "wallet",  # relative: resolved against the profile's folder
        "organizations": {
            "VPPOMSP": {"peers": ["peer0.vppo.vpp.local"]},
            "Agg3MSP": {"peers": ["peer1.agg3.vpp.local", "peer0.agg3.vpp.local"]},
        },
        "peers": {
            "peer0.vppo.vpp.local": {
                "mspid": "VPPOMSP",
                "address": "127.0.0.1:8001",
                "host": "peer0.vppo.vpp.local",
                "tls_ca": str(tmp_path / "tlsca-vppo.pem"),
                "operations": "127.0.0.1:8003",  # extra keys are ignored
            },
            "peer0.agg3.vpp.local": {
                "mspid": "Agg3MSP",
                "address": "127.0.0.1:8041",
                "host": "peer0.agg3.vpp.local",
                "tls_ca": "crypto/tlsca-agg3.pem",
            },
            "peer1.agg3.vpp.local": {
                "mspid": "Agg3MSP",
                "address": "127.0.0.1:8045",
                "tls_ca": "crypto/tlsca-agg3.pem",
            },
        },
        "orderers": {
            "orderer1.ord.vpp.local": {
                "address": "127.0.0.1:7011",
                "host": "orderer1.ord.vpp.local",
                "tls_ca": "crypto/tlsca-ord.pem",
            }
        },
        "channels": {
            "vpp-main": {
                "peers": ["peer0.vppo.vpp.local", "peer0.agg3.vpp.local"],
                "chaincodes": ["market"],
                "endorsers": ["VPPOMSP", "GridMSP"],
            },
            "agg3": {"peers": ["peer1.agg3.vpp.local"], "chaincodes": ["meter"]},
        },
    }


@pytest.fixture
def profile_file(tmp_path: Path) -> Path:
    path = tmp_path / "connection.json"
    path.write_text(json.dumps(_profile(tmp_path)))
    (tmp_path / "tlsca-vppo.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\n")
    return path


def test_load_explicit_file(profile_file: Path, tmp_path: Path) -> None:
    profile = load_profile(profile_file)
    assert profile.name == "vpp-fabric"
    assert profile.fabric_version == "3.1.1"
    assert profile.wallet == tmp_path / "wallet"
    assert set(profile.peers) == {
        "peer0.vppo.vpp.local",
        "peer0.agg3.vpp.local",
        "peer1.agg3.vpp.local",
    }
    agg3 = profile.peer("peer0.agg3.vpp.local")
    assert agg3.address == "127.0.0.1:8041"
    assert agg3.tls_ca == tmp_path / "crypto" / "tlsca-agg3.pem"
    assert profile.peer("peer1.agg3.vpp.local").host == "peer1.agg3.vpp.local"  # defaults to name
    assert profile.orderers["orderer1.ord.vpp.local"].address == "127.0.0.1:7011"
    assert profile.channel("vpp-main").chaincodes == ("market",)
    assert profile.peer("peer0.vppo.vpp.local").tls_ca_pem().startswith(b"-----BEGIN")


def test_load_from_folder_and_vpp_home(
    profile_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_profile(tmp_path).path == profile_file.resolve()
    monkeypatch.setenv("VPP_HOME", str(tmp_path))
    assert default_profile_path() == profile_file
    assert load_profile().path == profile_file.resolve()


def test_gateway_peer_prefers_the_channel_member(profile_file: Path) -> None:
    profile = load_profile(profile_file)
    assert profile.gateway_peer("VPPOMSP").name == "peer0.vppo.vpp.local"
    assert profile.gateway_peer("Agg3MSP").name == "peer1.agg3.vpp.local"  # first listed
    assert profile.gateway_peer("Agg3MSP", channel="vpp-main").name == "peer0.agg3.vpp.local"
    assert profile.gateway_peer("Agg3MSP", channel="agg3").name == "peer1.agg3.vpp.local"


def test_lookups_name_what_exists(profile_file: Path) -> None:
    profile = load_profile(profile_file)
    with pytest.raises(ProfileError, match="peer0.vppo.vpp.local"):
        profile.peer("peer9.nowhere")
    with pytest.raises(ProfileError, match="Agg3MSP"):
        profile.gateway_peer("Agg9MSP")
    with pytest.raises(ProfileError, match="vpp-main"):
        profile.channel("nope")
    with pytest.raises(ProfileError, match="cannot read TLS CA"):
        profile.peer("peer0.agg3.vpp.local").tls_ca_pem()


def test_missing_and_malformed_profiles(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="make network-up"):
        load_profile(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ProfileError, match="not valid JSON"):
        load_profile(bad)
    data = _profile(tmp_path)
    del data["peers"]["peer0.vppo.vpp.local"]["address"]
    bad.write_text(json.dumps(data))
    with pytest.raises(ProfileError, match="missing 'address'"):
        load_profile(bad)
    data = _profile(tmp_path)
    data["organizations"]["GridMSP"] = {"peers": ["peer0.grid.vpp.local"]}
    bad.write_text(json.dumps(data))
    with pytest.raises(ProfileError, match="unknown peer"):
        load_profile(bad)


def test_default_wallet_is_next_to_the_profile(tmp_path: Path) -> None:
    data = _profile(tmp_path)
    del data["wallet"]
    path = tmp_path / "net" / "connection.json"
    path.parent.mkdir()
    path.write_text(json.dumps(data))
    assert load_profile(path).wallet == path.parent.resolve() / "wallet"


def test_repo_root_found_from_a_subfolder_and_from_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "checkout"
    (repo / "docs" / "deep").mkdir(parents=True)
    (repo / "pyproject.toml").write_text('[project]\nname = "vpp-fabric"\n')
    assert find_repo_root(repo / "docs" / "deep") == repo.resolve()
    # Outside any checkout the package's own location (editable install) is used.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VPP_HOME", raising=False)
    root = find_repo_root()
    assert (root / "client" / "vpp_gateway").is_dir()
    assert default_profile_path() == root / ".fabric" / "network" / "connection.json"


def test_channel_endorsers_come_from_the_profile(profile_file: Path) -> None:
    """network-up writes which organisations endorse on each channel; clients read it there."""
    profile = load_profile(profile_file)
    assert profile.channel("vpp-main").endorsers == ("VPPOMSP", "GridMSP")
    assert profile.channel("agg3").endorsers == ()  # an older profile: nothing assumed
