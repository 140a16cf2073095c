"""`vppctl simulate` on the live network: a seeded day equals the same day offline, exactly.

The live run starts from whatever reputations the shared ledger holds (earlier
tests and demos have moved them), so the offline run is started from the same
(R, a) that the live backend reported at its start; everything else (orders,
meter readings) comes from the seed alone. Contracts, settlements, wallet
movements and the day's reputation update must then be identical.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from vpp_sim import scenario as scenario_module
from vpp_sim.engine import Simulation
from vpp_sim.live import LiveMarket
from vpp_sim.offline import OfflineMarket
from vpp_sim.outcome import StartState

pytestmark = pytest.mark.network

SEED = 11


class RecordingLive(LiveMarket):
    """The live backend, keeping the state it reported at the start."""

    started: StartState | None = None

    def start(self, scenario, resume):  # type: ignore[no-untyped-def]
        self.started = super().start(scenario, resume)
        return self.started


@pytest.mark.usefixtures("open_days_finished_afterwards")
def test_a_seeded_day_on_the_network_equals_the_offline_day(
    network: object, tmp_path: Path
) -> None:
    scenario = scenario_module.load()
    live_market = RecordingLive()
    live = Simulation(scenario, live_market, seed=SEED, days=1, out=tmp_path / "live").run()
    assert live_market.started is not None
    assert [p.hour for p in live.periods] == list(range(1, 25))
    assert all(p.period.endswith(f"-{p.hour:02d}") for p in live.periods)

    offline = Simulation(
        scenario,
        OfflineMarket(initial=live_market.started.reputations),
        seed=SEED,
        days=1,
        out=tmp_path / "offline",
    ).run()
    assert [p.comparable() for p in live.periods] == [p.comparable() for p in offline.periods]
    assert live.days == offline.days
    # Not a vacuous agreement: trading, deviations and a reputation update happened.
    assert sum(c.kind == "p2p" for p in live.periods for c in p.contracts) > 0
    assert any(s.deviation_wh for p in live.periods for s in p.settlements)
    assert any(r.r_ppm != r.r_prev_ppm for r in live.days[0].reputations)
    for name in ("contracts", "settlements", "reputations", "wallets"):
        mine = (tmp_path / "live" / f"{name}.csv").read_text()
        assert mine == (tmp_path / "offline" / f"{name}.csv").read_text(), name
