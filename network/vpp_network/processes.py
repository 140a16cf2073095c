"""Starting and stopping the network's processes by PID file, never by name.

Each process we start gets `run/<name>.pid` holding its PID and the kernel's
start time of that PID, so a PID recycled by an unrelated program is never
signalled. Logs go to `logs/<name>.log`.

A process of the hosts layout starts as ``ip netns exec <namespace> <argv>``;
``ip`` enters the namespace and then execs the program in place, so the PID
we record is the program's own (``start`` waits for the exec to have happened).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: list[str]
    env: dict[str, str]
    ports: tuple[int, ...]
    cwd: Path | None = None
    namespace: str | None = None  # the hosts layout's machine (vpp_network.hosts)


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime), counted after the ")" that ends the command name.
    return stat.rsplit(")", 1)[1].split()[19]


class ProcessTable:
    def __init__(self, run_dir: Path, log_dir: Path) -> None:
        self.run_dir = run_dir
        self.log_dir = log_dir

    def pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def start(self, spec: ProcessSpec) -> int:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_file(spec.name), "ab")  # noqa: SIM115 - handed to the child
        argv = spec.argv
        if spec.namespace:
            argv = ["ip", "netns", "exec", spec.namespace, *spec.argv]
        proc = subprocess.Popen(
            argv,
            env=spec.env,
            cwd=spec.cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        if spec.namespace:
            _wait_for_exec(proc)
        record = {
            "pid": proc.pid,
            "start_time": _start_time(proc.pid),
            "argv": spec.argv,
            "ports": list(spec.ports),
            "namespace": spec.namespace,
        }
        self.pid_file(spec.name).write_text(json.dumps(record))
        return proc.pid

    def record(self, name: str) -> dict | None:
        try:
            return json.loads(self.pid_file(name).read_text())
        except (OSError, ValueError):
            return None

    def pid(self, name: str) -> int | None:
        """The PID if the process we started under this name is still alive."""
        rec = self.record(name)
        if rec is None:
            return None
        pid = int(rec["pid"])
        start = _start_time(pid)
        if start is None or start != rec.get("start_time"):
            return None
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return None
        return None if state == "Z" else pid

    def names(self) -> list[str]:
        if not self.run_dir.exists():
            return []
        return sorted(p.stem for p in self.run_dir.glob("*.pid"))

    def stop(self, name: str, timeout: float = 15.0) -> bool:
        """SIGTERM, then SIGKILL after `timeout`; returns True if something was stopped."""
        pid = self.pid(name)
        if pid is None:
            self.pid_file(name).unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.pid(name) is not None:
            _reap(pid)
            time.sleep(0.1)
        if self.pid(name) is not None:
            os.kill(pid, signal.SIGKILL)
            while self.pid(name) is not None:
                _reap(pid)
                time.sleep(0.05)
        self.pid_file(name).unlink(missing_ok=True)
        return True

    def tail(self, name: str, lines: int = 25) -> str:
        try:
            text = self.log_file(name).read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def _wait_for_exec(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Returns once ``ip netns exec`` has exec'd the program (same PID) or has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(OSError):
            if Path(os.readlink(f"/proc/{proc.pid}/exe")).name != "ip":
                return
        time.sleep(0.01)


def _reap(pid: int) -> None:
    """Collects a child we started in this process so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _listening_inodes(port: int, pid: int | None = None) -> set[str]:
    """Listening sockets on ``port`` in the network namespace of ``pid`` (default ours)."""
    inodes: set[str] = set()
    base = f"/proc/{pid}/net" if pid else "/proc/net"
    for table in (f"{base}/tcp", f"{base}/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            local, state, inode = cols[1], cols[3], cols[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    return inodes


def port_listening(port: int, pid: int | None = None) -> bool:
    """Whether something listens on ``port`` where ``pid`` runs (its network namespace)."""
    return bool(_listening_inodes(port, pid))


def port_owner(port: int) -> str | None:
    """'pid 1234 (cmdline)' of whoever listens on the port, or None if it is free."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    targets = {f"socket:[{i}]" for i in inodes}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in targets:
                    cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
                    return f"pid {proc.name} ({cmd[:120]})"
        except OSError:
            continue
    return "an unknown process (not visible to this user)"
