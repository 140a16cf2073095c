"""The hosts layout's tests run only under `make test-hosts` (root, VPP_LAYOUT=hosts).

`make test` collects them too and skips them: they need root to create network
namespaces, and their own network in .fabric/hosts-test.
"""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("VPP_LAYOUT") == "hosts" and os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="the hosts layout needs root: `make test-hosts` runs it")
    for item in items:
        if "tests/hosts/" in item.nodeid.replace("\\", "/"):
            item.add_marker(skip)
