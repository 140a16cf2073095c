"""vppctl watch: events as lines, JSON Lines or CSV rows; --from-block replays; --count stops."""

from __future__ import annotations

import csv
import io
import json
import threading
import time

from fake_fabric import FakeFabric, PaperMarket, invoke
from vppctl.commands_watch import summarize


def test_replay_from_block_zero_as_json_lines(fabric: FakeFabric) -> None:
    m = PaperMarket(fabric)
    m.register()
    pid = m.cleared(1, 13)
    m.sign_all(pid)
    result = invoke("watch", "--from-block", "0", "--idle-timeout", "0.2", "-o", "json")
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    names = [e["event"] for e in events]
    assert names[0] == "PeriodCleared" and set(names[1:]) == {"ContractSignature"}
    assert events[0]["payload"]["period"] == pid and events[0]["payload"]["p2p_wh"] == 707_280
    assert list(events[0]) == ["block", "event", "payload", "tx_id"]
    assert "resume with --from-block" in result.stderr


def test_table_and_csv_and_count(fabric: FakeFabric) -> None:
    m = PaperMarket(fabric)
    m.register()
    m.cleared(1, 2)
    table = invoke("watch", "--from-block", "0", "--count", "1")
    assert table.exit_code == 0, table.output
    assert "PeriodCleared" in table.stdout
    assert "00001-02: 6 orders, 5 matches, P2P 600.56 kWh, grid buys 6.14 kWh" in table.stdout
    rows = list(
        csv.DictReader(
            io.StringIO(invoke("watch", "--from-block", "0", "--count", "1", "-o", "csv").stdout)
        )
    )
    assert rows[0]["event"] == "PeriodCleared" and json.loads(rows[0]["payload"])["matches"] == 5


def test_live_events_arrive_while_watching(fabric: FakeFabric) -> None:
    m = PaperMarket(fabric)
    m.register()

    def later() -> None:
        time.sleep(0.3)
        m.cleared(1, 13)

    thread = threading.Thread(target=later)
    thread.start()
    result = invoke("watch", "--count", "1", "--idle-timeout", "5", "-o", "json")
    thread.join()
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["event"] == "PeriodCleared"


def test_meter_channel_and_bad_channel(fabric: FakeFabric) -> None:
    m = PaperMarket(fabric)
    m.register()
    m.cleared(1, 13)  # a period is sealed once cleared
    m.call("agg3-meter1", "RecordReading", "00001-13", "0", "1000", channel="agg3")
    m.call("agg3-admin", "SealPeriod", "00001-13", channel="agg3")
    result = invoke("watch", "--channel", "agg3", "--from-block", "0", "--count", "1")
    assert result.exit_code == 0, result.output
    assert "agg3 00001-13 sealed: exported 0 kWh, imported 1 kWh" in result.stdout
    bad = invoke("watch", "--channel", "main")
    assert bad.exit_code == 2 and "is not vpp-main or aggN" in bad.stderr


def test_summaries_survive_unknown_payloads() -> None:
    assert summarize("PeriodCleared", {"period": "x"}) == '{"period": "x"}'
    assert summarize("Other", {"b": 1, "a": 2}) == '{"a": 2, "b": 1}'
    text = summarize("PeriodSettled", {"period": "00001-13", "wallet_deltas": {"agg1": 1500}})
    assert text == "00001-13 settled: agg1 +0.0015 yuan"
