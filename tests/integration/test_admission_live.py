"""Admitting one more aggregator to the running network (issue 16), end to end.

The suite's network has some aggregators (6 by default); this test admits the
next one, Agg<N>, step by step as the organisations would: the new
organisation's CA and identities, the vpp-main update (first signed by too
few admins: the orderer refuses it and nothing changes), channel agg<N>, its
peer and chaincode servers, the market's admission by consent; network-up
restarts its processes from the network's state on disk. Agg<N> then
trades in the next period and settles, and the admission itself changed none
of the other aggregators' ledgers, wallets or reputations.

It runs last (tests/conftest.py): the network keeps the new member, and the
other live tests were written for the aggregators it was created with.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from helpers import certify_test_resources, chain_info, ensure_aggregators, market, query
from vpp_gateway import connect_as
from vpp_network import channel_config, config_policy
from vpp_network.admission import Admission, AdmissionError
from vpp_network.config_update import with_signatures
from vpp_network.fabric_cli import FabricCommandError
from vpp_network.network import Network, existing_network
from vpp_network.plan import MAIN_CHANNEL

pytestmark = pytest.mark.network

PARTNER = 1  # the registered aggregator that trades with the newcomer


def vppctl(*args: str) -> Any:
    result = subprocess.run(
        [sys.executable, "-m", "vppctl", *args, "--output", "json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"vppctl {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout)


def snapshot(net: Network, aggs: list[int]) -> dict[str, Any]:
    """What the admission must not change: the others' market records and channels."""
    with connect_as("vppo-admin") as gw:
        contract = market(gw)
        return {
            "wallets": query(contract, "GetWallets")["wallets"],
            "reputations": [query(contract, "GetReputation", f"Agg{n}") for n in aggs],
            "aggregators": [query(contract, "GetAggregator", f"Agg{n}") for n in aggs],
            "channels": {
                f"agg{n}": chain_info(net, f"agg{n}") for n in range(1, net.plan.aggs + 1)
            },
        }


def main_config(net: Network) -> Any:
    with tempfile.TemporaryDirectory() as work:
        return channel_config.fetch_config(net.plan, net.plan.vppo, MAIN_CHANNEL, Path(work))


def test_an_aggregator_is_admitted_trades_and_settles(
    network: Network, finished_afterwards: list[str]
) -> None:
    before_net = existing_network()
    number = before_net.plan.aggs + 1
    registered = [n for n in range(1, min(before_net.plan.aggs, 6) + 1)]
    ensure_aggregators(registered)
    before = snapshot(before_net, registered)
    admission = Admission(number)
    admission.run("org")
    admission.run("propose")
    assert admission.definition_file.exists() and "PRIVATE" not in (
        admission.definition_file.read_text()
    )

    # --- too few admins: the orderer refuses, and the configuration stays as it was ---------
    admission.run("sign", org="Grid")
    with pytest.raises(AdmissionError, match="do not satisfy /Channel/Application/Admins"):
        admission.run("submit")
    config_before = main_config(before_net)
    with tempfile.TemporaryDirectory() as work:
        premature = Path(work) / "premature.pb"
        premature.write_bytes(with_signatures(admission.update_file, admission.collected()))
        with pytest.raises(FabricCommandError) as refused:
            channel_config.submit(before_net.plan, before_net.plan.vppo, MAIN_CHANNEL, premature)
    text = str(refused.value)
    assert "BAD_REQUEST" in text and "not satisfied" in text, text
    config_after = main_config(before_net)
    assert config_after.SerializeToString(deterministic=True) == config_before.SerializeToString(
        deterministic=True
    )

    # --- the rest of the flow, resumed where it stopped ------------------------------------
    admission.run_all(region="R1", reputation="0.5")
    assert set(admission.done()) == {
        "org",
        "propose",
        "sign",
        "submit",
        "channel",
        "join",
        "market",
    }

    after_net = existing_network()
    assert after_net.plan.aggs == number
    org = after_net.plan.agg_orgs[-1]
    assert all(after_net.running().values()), after_net.running()
    assert {f"chaincode-market-agg{number}", org.peer_host} <= set(after_net.running())
    profile = json.loads(after_net.plan.profile_file.read_text())
    assert f"Agg{number}MSP" in profile["organizations"]
    assert profile["channels"][f"agg{number}"]["peers"] == [
        org.peer_host,
        "peer0.vppo.vpp.local",
        "peer0.grid.vpp.local",
    ]
    # network-up's restart path knows it from the network's state on disk: its stopped
    # processes start again and it endorses.
    for name in (org.peer_host, f"chaincode-market-agg{number}", f"ca.{org.domain}"):
        after_net.stop_process(name)
    existing_network().up()
    assert all(after_net.running().values()), after_net.running()
    # The channel's consent rule now counts the new member like any other.
    config = main_config(after_net)
    assert org.mspid in config.channel_group.groups["Application"].groups
    main = after_net.plan.channels[0]
    others = [o.mspid for o in after_net.plan.agg_orgs[-(main.majority - 1) :]]
    assert org.mspid in others
    assert config_policy.satisfied(config, "/Channel/Application/Admins", ["VPPOMSP", *others])

    # The admission changed nothing of the others (vpp-main grew by the admission itself).
    after = snapshot(before_net, registered)
    new_wallet = f"agg{number}"
    assert [w for w in after["wallets"] if w["wallet"] != new_wallet] == before["wallets"]
    assert [w["balance"] for w in after["wallets"] if w["wallet"] == new_wallet] == [0]
    for key in ("reputations", "aggregators", "channels"):
        assert after[key] == before[key], key

    # --- Agg<N> trades in the next period and settles --------------------------------------
    certify_test_resources(number)
    from vppctl.periods import Calendar
    from vppctl.session import session

    with session() as s:
        day = Calendar(s.market("vppo-admin")).fresh_day()
    period = f"{day}-5"  # 04:00-05:00: s_t 0.38, f_t 0.24
    vppctl("period", "open", "--period", period)
    finished_afterwards.append(period)  # its day is closed when the test ends
    vppctl("bid", "--agg", str(number), "--side", "sell", "--qty", "12", "--price", "0.25",
           "--reserve", "0.245", "--period", period)  # fmt: skip
    vppctl("bid", "--agg", str(PARTNER), "--side", "buy", "--qty", "10", "--price", "0.3",
           "--period", period)  # fmt: skip
    subprocess.run(
        [sys.executable, "-m", "vppctl", "clear", "--period", period, "--close", "--json"],
        check=True,
        capture_output=True,
        timeout=600,
    )
    contracts = vppctl("contracts", "--period", period)
    p2p = [c for c in contracts if c["kind"] == "p2p"]
    assert [(c["seller"], c["buyer"], c["quantity_kwh"]) for c in p2p] == [
        (f"Agg{number}", f"Agg{PARTNER}", 10)
    ]
    vppctl("sign", "--agg", str(number), "--period", period)
    assert vppctl("sign", "--agg", str(PARTNER), "--period", period)[0]["status"] == "SIGNED"
    # AggN seals once every meter the Grid certified on agg<N> has reported (trust rules):
    # the site meter m1 carries the delivery, any other certified meter reports its 0.
    delivered = {number: ("--exported", "12"), PARTNER: ("--imported", "10")}
    for agg, (flag, kwh) in delivered.items():
        resources = vppctl("meter", "resources", "--agg", str(agg))
        meters = sorted({r["meter"] for r in resources if r["status"] == "CERTIFIED"})
        for meter in meters:
            k = int(meter.rsplit("-m", 1)[1])
            energy = (flag, kwh) if k == 1 else ("--exported", "0")
            vppctl("meter", "read", "--agg", str(agg), "--period", period, *energy,
                   "--as", f"agg{agg}-meter{k}")  # fmt: skip
    for agg in (number, PARTNER):
        vppctl("meter", "seal", "--agg", str(agg), "--period", period)
    settled = vppctl("settle", "--period", period, "--anchor")
    assert {r["agg"]: r["delivered_kwh"] for r in settled} == {
        f"Agg{number}": 12,
        f"Agg{PARTNER}": 10,
    }
    (wallet,) = vppctl("wallet", "--agg", str(number))
    assert wallet["balance"] > 0  # it sold 12 kWh
