"""vppctl against the live network, as a user runs it (a subprocess per command).

`vppctl demo paper` end to end, twice (it must be re-runnable), checking the printed
totals against the paper's; then a small period of our own driven command by command
with --output json: open, bid, orders, clear, contracts, sign, meter, settle, day close.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import pytest

pytestmark = pytest.mark.network

TIMEOUT = 600


def vppctl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "vppctl", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    if check:
        assert result.returncode == 0, f"vppctl {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def as_json(*args: str) -> Any:
    return json.loads(vppctl(*args, "--output", "json").stdout)


TOTALS = {
    2: r"t=2 totals: P2P 600\.56 kWh \(paper 600\.56\); grid buys 6\.14 kWh at 0\.24 "
    r"\(paper 6\.14\); grid supplies 0 kWh at 0\.38 \(paper 0\)",
    13: r"t=13 totals: P2P 707\.28 kWh \(paper 707\.28\); grid buys 36\.68 kWh at 0\.65 "
    r"\(paper 36\.68\); grid supplies 0 kWh at 0\.86 \(paper 0\)",
}


def test_demo_paper_twice(network: object) -> None:
    first = vppctl("demo", "paper")
    for pattern in TOTALS.values():
        assert re.search(pattern, first.stdout), first.stdout
    assert "The first 3 matches agree with the paper" in first.stdout
    assert "(vppctl clear --offline): yes" in first.stdout
    day = int(re.search(r"trading on day (\d+)", first.stderr).group(1))  # type: ignore[union-attr]

    second = vppctl("demo", "paper")
    for pattern in TOTALS.values():
        assert re.search(pattern, second.stdout), second.stdout
    again = int(re.search(r"trading on day (\d+)", second.stderr).group(1))  # type: ignore[union-attr]
    assert again > day
    assert f"Day {again} closed" in second.stdout
    assert "already registered" in second.stderr
    for hour in (2, 13):
        contracts = as_json("contracts", "--period", f"{again}-{hour}")
        assert {c["status"] for c in contracts if c["kind"] == "p2p"} == {"SIGNED"}
        assert as_json("period", "show", "--period", f"{again}-{hour}")[0]["status"] == "SETTLED"


def fresh_day() -> int:
    from vppctl.periods import Calendar
    from vppctl.session import session

    with session() as s:
        return Calendar(s.market("vppo-admin")).fresh_day()


def certified_meters(agg: str) -> list[str]:
    """The meters with a certified resource on agg<N> (what a seal by AggN waits for)."""
    resources = as_json("meter", "resources", "--agg", agg)
    meters = sorted({r["meter"] for r in resources if r["status"] == "CERTIFIED"})
    assert f"agg{agg}-m1" in meters, meters
    return meters


def test_a_period_command_by_command(finished_afterwards: list[str]) -> None:
    day = fresh_day()
    period = f"{day}-5"  # 04:00-05:00: s_t 0.38, f_t 0.24
    finished_afterwards.append(f"{day:05d}-05")  # if the test stops between clear and settle
    opened = as_json("period", "open", "--period", period)
    assert opened[0]["status"] == "OPEN" and opened[0]["purchase"] == 0.24

    buy = as_json("bid", "--agg", "3", "--side", "buy", "--qty", "10", "--price", "0.3",
                  "--period", period)  # fmt: skip
    assert buy[0]["agg"] == "Agg3" and buy[0]["reserve"] == 0.3
    sell = as_json("bid", "--agg", "1", "--side", "sell", "--qty", "12", "--price", "0.25",
                   "--reserve", "0.245", "--period", period)  # fmt: skip
    assert sell[0]["submitter"].startswith("trader@")
    refused = vppctl("bid", "--agg", "2", "--side", "sell", "--qty", "1", "--price", "0.1",
                     "--period", period, check=False)  # fmt: skip
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith("vppctl bid: error: refused by chaincode: SubmitOrder:")
    assert len(refused.stderr.splitlines()) == 1

    orders = as_json("orders", "--period", period)
    assert [(o["agg"], o["side"], o["quantity_kwh"]) for o in orders] == [
        ("Agg1", "sell", 12),
        ("Agg3", "buy", 10),
    ]

    cleared = json.loads(vppctl("clear", "--period", period, "--close", "--json").stdout)
    assert [(m["seller"], m["buyer"], m["quantity_kwh"]) for m in cleared["matches"]] == [
        ("Agg1", "Agg3", 10)
    ]
    assert cleared["grid"] == [{"agg": "Agg1", "side": "sell", "quantity_kwh": 2, "price": 0.24}]

    contracts = as_json("contracts", "--period", period)
    p2p = [c for c in contracts if c["kind"] == "p2p"]
    assert len(p2p) == 1 and p2p[0]["status"] == "MATCHED"
    assert as_json("sign", "--agg", "1", "--period", period)[0]["status"] == "MATCHED"
    assert as_json("sign", "--agg", "3", "--period", period)[0]["status"] == "SIGNED"

    # AggN seals once every meter the Grid certified on agg<N> has reported (trust rules):
    # the site meter m1 carries the delivery, any other certified meter reports its 0.
    delivered = {"1": ("--exported", "12"), "3": ("--imported", "10")}
    for agg, (flag, kwh) in delivered.items():
        for meter in certified_meters(agg):
            number = int(meter.rsplit("-m", 1)[1])
            energy = (flag, kwh) if number == 1 else ("--exported", "0")
            as_json("meter", "read", "--agg", agg, "--period", period, *energy,
                    "--as", f"agg{agg}-meter{number}")  # fmt: skip
    for agg in ("1", "3"):
        as_json("meter", "seal", "--agg", agg, "--period", period)
    settled = as_json("settle", "--period", period, "--anchor")
    assert {r["agg"]: r["delivered_kwh"] for r in settled} == {"Agg1": 12, "Agg3": 10}
    assert as_json("settlements", "--period", period) == settled
    closed = as_json("day", "close", "--day", str(day))
    assert {r["agg"] for r in closed} >= {"Agg1", "Agg3"}
    wallets = as_json("wallet")
    assert round(sum(w["balance"] for w in wallets), 6) == 0


def test_network_status_and_watch(network: object) -> None:
    status = as_json("network", "status")
    assert status["all_up"] is True
    events = vppctl("watch", "--from-block", "0", "--count", "3", "--output", "json").stdout
    names = [json.loads(line)["event"] for line in events.splitlines()]
    assert len(names) == 3 and all(names)
