"""Builds Fabric's and Fabric CA's binaries from the Go module proxy, once, into `.fabric/bin`.

Fabric's release tarballs and images cannot be downloaded here, so the
binaries are compiled from the modules pinned in `network/fabric-build/go.mod`
and `network/fabric-ca-build/go.mod` (see fabric-samples.lock for why those
versions). A stamp file per module records the go.mod + go.sum hash the
binaries were built from, so a second `make network-up` reuses them and a
change of pin rebuilds only that module's binaries. Each binary is built
under a temporary name and renamed, so a half-built file is never run.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from vpp_network.plan import FABRIC_VERSION, NetworkPlan, repo_root

FABRIC_MODULE = "github.com/hyperledger/fabric"
FABRIC_COMMIT = "435a7f1a780a128756fb2f72bf4cad164bf13fbb"
LDFLAGS = (
    f"-X {FABRIC_MODULE}/common/metadata.Version={FABRIC_VERSION} "
    f"-X {FABRIC_MODULE}/common/metadata.CommitSHA={FABRIC_COMMIT[:12]}"
)
CA_MODULE = "github.com/hyperledger/fabric-ca"


@dataclass(frozen=True)
class GoModule:
    """A pinned build module and the commands built from it."""

    title: str  # for progress lines
    module: str
    folder: str  # under network/
    binaries: tuple[str, ...]
    ldflags: str
    stamp: str  # file name in bin/
    expected: str  # rough first-build time on 2 cores, for the progress line

    @property
    def dir(self) -> Path:
        return repo_root() / "network" / self.folder

    def stamp_value(self) -> str:
        return hashlib.sha256(
            (self.dir / "go.mod").read_bytes() + (self.dir / "go.sum").read_bytes()
        ).hexdigest()

    def ready(self, bin_dir: Path) -> bool:
        stamp = bin_dir / self.stamp
        if not stamp.exists() or stamp.read_text().strip() != self.stamp_value():
            return False
        return all((bin_dir / name).exists() for name in self.binaries)


FABRIC = GoModule(
    "Fabric",
    FABRIC_MODULE,
    "fabric-build",
    ("peer", "orderer", "configtxgen", "osnadmin"),
    LDFLAGS,
    ".stamp",
    "~3-6 min",
)
# fabric-ca v1.5.15 sets its own version in lib/metadata; sqlite (cgo) is most of the time.
FABRIC_CA = GoModule(
    "Fabric CA",
    CA_MODULE,
    "fabric-ca-build",
    ("fabric-ca-server", "fabric-ca-client"),
    "",
    ".stamp-ca",
    "~1-3 min",
)
MODULES = (FABRIC, FABRIC_CA)
BINARIES = FABRIC.binaries


def build_module_dir() -> Path:
    return FABRIC.dir


def binaries_ready(plan: NetworkPlan) -> bool:
    return all(m.ready(plan.bin_dir) for m in MODULES)


def ensure_binaries(plan: NetworkPlan, log=print) -> None:
    """Builds whatever is missing, printing progress and the time each binary took."""
    for module in MODULES:
        if not module.ready(plan.bin_dir):
            _build(plan, module, log)


def _build(plan: NetworkPlan, module: GoModule, log) -> None:
    go = shutil.which("go")
    if go is None:
        raise SystemExit(
            f"network-up: the Go toolchain is needed to build {module.title} (go not on PATH)"
        )
    plan.bin_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GOFLAGS="-mod=mod", CGO_ENABLED=os.environ.get("CGO_ENABLED", "1"))
    log(
        f"Building {module.title} binaries into {plan.bin_dir} "
        f"(first run only; {module.expected} on 2 cores)"
    )
    started = time.monotonic()
    download = subprocess.run(
        [go, "mod", "download", module.module],
        cwd=module.dir,
        env=env,
        capture_output=True,
        text=True,
    )
    if download.returncode != 0:
        raise SystemExit(f"network-up: go mod download failed:\n{download.stderr[-3000:]}")
    for i, name in enumerate(module.binaries, 1):
        t0 = time.monotonic()
        log(f"  [{i}/{len(module.binaries)}] go build {module.module}/cmd/{name} ...")
        sys.stdout.flush()
        target = plan.bin_dir / name
        partial = plan.bin_dir / f".{name}.building-{os.getpid()}"
        flags = ["-ldflags", module.ldflags] if module.ldflags else []
        result = subprocess.run(
            [go, "build", "-trimpath", *flags, "-o", str(partial), f"{module.module}/cmd/{name}"],
            cwd=module.dir,
            env=env,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            partial.unlink(missing_ok=True)
            raise SystemExit(f"network-up: building {name} failed:\n{result.stderr[-3000:]}")
        partial.replace(target)
        log(f"        done in {time.monotonic() - t0:.0f} s")
    (plan.bin_dir / module.stamp).write_text(module.stamp_value() + "\n")
    log(f"{module.title} binaries built in {time.monotonic() - started:.0f} s")


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
