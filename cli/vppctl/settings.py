"""Global options of one vppctl run (set by the app callback in main.py).

A module-level object rather than click's context because the helpers that
need it (error reporting, connecting) run deep inside commands and in worker
threads, where no click context is current.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class Settings:
    """What the global options chose; reset by every invocation of the app."""

    debug: bool = False
    profile: Path | None = None  # connection profile (file or folder); None: VPP_HOME / repo


SETTINGS = Settings()


def reset(*, debug: bool = False, profile: Path | None = None) -> None:
    """Apply this run's global options (the callback runs once per invocation)."""
    SETTINGS.debug = debug
    SETTINGS.profile = profile
