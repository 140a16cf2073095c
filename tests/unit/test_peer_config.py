"""The peers' core.yaml: private data reconciliation settings, and that network-up brings
a network made earlier up to date (configs.refresh_peer_configs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from vpp_network import configs, fabric_cli
from vpp_network.plan import NetworkPlan


def _sample() -> dict[str, Any]:
    """The parts of Fabric's sample core.yaml that write_peer_config changes."""
    return {
        "peer": {
            "gossip": {"pvtData": {"reconcileSleepInterval": "1m"}},
            "tls": {},
        },
        "vm": {"endpoint": "unix:///var/run/docker.sock"},
        "chaincode": {},
        "operations": {"listenAddress": "", "tls": {"enabled": True}},
        "metrics": {"provider": "prometheus"},
        "ledger": {"pvtdataStore": {"deprioritizedDataReconcilerInterval": "60m"}},
    }


@pytest.fixture
def plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> NetworkPlan:
    monkeypatch.setenv("VPP_HOME", str(tmp_path))
    return NetworkPlan(aggs=2)


def _core(plan: NetworkPlan, host: str) -> dict[str, Any]:
    return yaml.safe_load((plan.node_home(host) / "core.yaml").read_text())


def test_every_peer_reconciles_missing_private_data_within_seconds(plan: NetworkPlan) -> None:
    configs.write_peer_config(plan, plan.grid, _sample())
    core = _core(plan, plan.grid.peer_host)
    pvt = core["peer"]["gossip"]["pvtData"]
    assert pvt["reconciliationEnabled"] is True
    assert pvt["reconcileSleepInterval"] == configs.PVTDATA_RECONCILE_INTERVAL == "5s"
    assert pvt["skipPullingInvalidTransactionsDuringCommit"] is True
    retry = core["ledger"]["pvtdataStore"]["deprioritizedDataReconcilerInterval"]
    assert retry == configs.PVTDATA_DEPRIORITIZED_RETRY_INTERVAL == "1m"


def test_each_peer_writes_its_snapshots_under_its_own_data(plan: NetworkPlan) -> None:
    for org in (plan.vppo, plan.grid):
        configs.write_peer_config(plan, org, _sample())
        root = Path(_core(plan, org.peer_host)["ledger"]["snapshots"]["rootDir"])
        assert root == plan.node_home(org.peer_host) / "data" / "snapshots"
        completed = fabric_cli.snapshots_dir(plan, org, "vpp-main")
        assert completed == root / "completed" / "vpp-main"


def test_network_up_rewrites_the_peer_configs_of_an_existing_network(plan: NetworkPlan) -> None:
    cli = plan.node_home("cli")
    cli.mkdir(parents=True)
    (cli / "core.yaml").write_text(yaml.safe_dump(_sample()))
    old = _sample()  # as a network made before the settings were written
    for org in (plan.vppo, plan.grid):
        home = plan.node_home(org.peer_host)
        home.mkdir(parents=True)
        (home / "core.yaml").write_text(yaml.safe_dump(old))
    assert configs.refresh_peer_configs(plan) == [plan.vppo.peer_host, plan.grid.peer_host]
    for org in (plan.vppo, plan.grid):
        core = _core(plan, org.peer_host)
        assert core["peer"]["gossip"]["pvtData"]["reconcileSleepInterval"] == "5s"
        assert core["peer"]["id"] == org.peer_host
    # A peer without a config yet (not made, or an admission under way) is left alone.
    assert not (plan.node_home(plan.agg_orgs[0].peer_host) / "core.yaml").exists()


def test_a_network_without_its_sample_copy_is_left_as_it_is(plan: NetworkPlan) -> None:
    assert configs.refresh_peer_configs(plan) == []
