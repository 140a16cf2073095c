"""Builds Fabric's binaries from the Go module proxy, once, into `.fabric/bin`.

Fabric's release tarballs and images cannot be downloaded here, so the
binaries are compiled from the module pinned in `network/fabric-build/go.mod`
(see fabric-samples.lock for why that version). A stamp file records the
go.sum hash the binaries were built from, so a second `make network-up`
reuses them and a change of pin rebuilds them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from vpp_network.plan import FABRIC_VERSION, NetworkPlan, repo_root

BINARIES = ("peer", "orderer", "configtxgen", "osnadmin", "cryptogen")
FABRIC_MODULE = "github.com/hyperledger/fabric"
FABRIC_COMMIT = "435a7f1a780a128756fb2f72bf4cad164bf13fbb"
LDFLAGS = (
    f"-X {FABRIC_MODULE}/common/metadata.Version={FABRIC_VERSION} "
    f"-X {FABRIC_MODULE}/common/metadata.CommitSHA={FABRIC_COMMIT[:12]}"
)


def build_module_dir() -> Path:
    return repo_root() / "network" / "fabric-build"


def _stamp_value() -> str:
    gosum = (build_module_dir() / "go.sum").read_bytes()
    gomod = (build_module_dir() / "go.mod").read_bytes()
    return hashlib.sha256(gomod + gosum).hexdigest()


def binaries_ready(plan: NetworkPlan) -> bool:
    stamp = plan.bin_dir / ".stamp"
    if not stamp.exists() or stamp.read_text().strip() != _stamp_value():
        return False
    return all((plan.bin_dir / name).exists() for name in BINARIES)


def ensure_binaries(plan: NetworkPlan, log=print) -> None:
    """Builds whatever is missing, printing progress and the time each binary took."""
    if binaries_ready(plan):
        return
    go = shutil.which("go")
    if go is None:
        raise SystemExit("network-up: the Go toolchain is needed to build Fabric (go not on PATH)")
    plan.bin_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GOFLAGS="-mod=mod", CGO_ENABLED=os.environ.get("CGO_ENABLED", "1"))
    log(f"Building Fabric binaries into {plan.bin_dir} (first run only; ~3-6 min on 2 cores)")
    started = time.monotonic()
    download = subprocess.run(
        [go, "mod", "download", FABRIC_MODULE],
        cwd=build_module_dir(),
        env=env,
        capture_output=True,
        text=True,
    )
    if download.returncode != 0:
        raise SystemExit(f"network-up: go mod download failed:\n{download.stderr[-3000:]}")
    for i, name in enumerate(BINARIES, 1):
        t0 = time.monotonic()
        log(f"  [{i}/{len(BINARIES)}] go build {FABRIC_MODULE}/cmd/{name} ...")
        sys.stdout.flush()
        result = subprocess.run(
            [
                go,
                "build",
                "-trimpath",
                "-ldflags",
                LDFLAGS,
                "-o",
                str(plan.bin_dir / name),
                f"{FABRIC_MODULE}/cmd/{name}",
            ],
            cwd=build_module_dir(),
            env=env,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise SystemExit(f"network-up: building {name} failed:\n{result.stderr[-3000:]}")
        log(f"        done in {time.monotonic() - t0:.0f} s")
    (plan.bin_dir / ".stamp").write_text(_stamp_value() + "\n")
    log(f"Fabric binaries built in {time.monotonic() - started:.0f} s")


def fabric_config_dir() -> Path:
    """Fabric's sample configs (core.yaml, orderer.yaml) from the module in Go's cache."""
    result = subprocess.run(
        ["go", "list", "-m", "-f", "{{.Dir}}", FABRIC_MODULE],
        cwd=build_module_dir(),
        env=dict(os.environ, GOFLAGS="-mod=mod"),
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(result.stdout.strip()) / "sampleconfig"
