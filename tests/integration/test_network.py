"""Channel-level integration tests against the real orderers, peers and chaincode servers."""

from __future__ import annotations

import json

import pytest
from helpers import wait_for_equal_heights
from vpp_gateway import connect_as
from vpp_gateway.errors import GatewayError
from vpp_network import fabric_cli
from vpp_network.plan import MAIN_CHANNEL

pytestmark = pytest.mark.network


def test_every_peer_joined_exactly_its_channels(network):
    plan = network.plan
    for org in plan.peer_orgs:
        expected = sorted(c.name for c in plan.channels if org in c.orgs)
        assert fabric_cli.peer_channels(plan, org) == expected, org.peer_host


def test_market_and_meter_are_committed_everywhere(network):
    plan = network.plan
    for channel in plan.channels:
        defs = fabric_cli.committed_chaincodes(plan, channel.orgs[0], channel.name)
        assert [(d["name"], d["version"]) for d in defs] == [
            (channel.chaincode.name, channel.chaincode.version)
        ]


def test_agg3_write_on_main_commits_and_every_peer_reads_it(network):
    plan = network.plan
    with connect_as("agg3-trader") as gw:
        market = gw.network(MAIN_CHANNEL).contract("market")
        tx_id = json.loads(market.submit("Ping"))["tx_id"]
        tx_height = gw.network(MAIN_CHANNEL).block_height()
    wait_for_equal_heights(network, MAIN_CHANNEL, tx_height)
    for org in plan.peer_orgs:
        with connect_as(f"{org.name.lower()}-admin", peer=org.peer_host) as gw:
            market = gw.network(MAIN_CHANNEL).contract("market")
            ping = json.loads(market.evaluate("GetPing", "Agg3MSP"))
            assert ping["tx_id"] == tx_id, org.peer_host


def test_agg3_meter_writes_on_agg3(network):
    with connect_as("agg3-meter1") as gw:
        meter = gw.network("agg3").contract("meter")
        tx_id = json.loads(meter.submit("Ping"))["tx_id"]
        # Meter identities are the Grid's (the metering authority issues them).
        assert json.loads(meter.evaluate("GetPing", "GridMSP"))["tx_id"] == tx_id
        height = gw.network("agg3").block_height()
    wait_for_equal_heights(network, "agg3", height)


@pytest.mark.parametrize("peer", ["peer0.agg4.vpp.local", "peer0.vppo.vpp.local"])
def test_agg4_cannot_read_or_write_agg3(network, peer):
    with connect_as("agg4-admin", peer=peer) as gw:
        meter = gw.network("agg3").contract("meter")
        with pytest.raises(GatewayError) as read:
            meter.evaluate("Version")
        with pytest.raises(GatewayError) as write:
            meter.submit("Ping")
    for exc in (read.value, write.value):
        text = str(exc).lower()
        assert "access denied" in text or "channel" in text, text


def test_restart_keeps_ledgers(network):
    plan = network.plan
    with connect_as("vppo-admin") as gw:
        tx_id = json.loads(gw.network(MAIN_CHANNEL).contract("market").submit("Ping"))["tx_id"]
    before = wait_for_equal_heights(network, MAIN_CHANNEL, 1)
    network.down(quiet=True)
    assert not any(network.running().values())
    network.up()
    after = wait_for_equal_heights(network, MAIN_CHANNEL, before)
    assert after >= before
    with connect_as("grid-admin", peer=plan.grid.peer_host) as gw:
        market = gw.network(MAIN_CHANNEL).contract("market")
        ping = json.loads(market.evaluate("GetPing", "VPPOMSP"))
    assert ping["tx_id"] == tx_id
