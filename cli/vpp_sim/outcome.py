"""What a market backend reports for a period and a day, in the market's integer units.

Both backends (offline rules, live network) report the same types, so the
engine, the result files and the offline == live test compare them field
by field: equal outcomes mean equal contracts, settlements and reputations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from vpp_sim.plan import PeriodPlan
from vpp_sim.scenario import Scenario


@dataclass(frozen=True, slots=True)
class ContractRow:
    """A P2P contract (``kind`` p2p, round 1 or 2) or a grid absorption (``kind`` grid)."""

    seq: int
    kind: str
    round: int | None
    seller: int | None  # p2p only
    buyer: int | None  # p2p only
    agg: int | None  # grid only: whose remainder
    side: str | None  # grid only: the aggregator's side
    quantity_wh: int
    price: int
    xi_ppm: int | None


@dataclass(frozen=True, slots=True)
class SettlementRow:
    agg: int
    side: str
    quantity_wh: int
    contracted_wh: int
    grid_wh: int
    delivered_wh: int
    deviation_wh: int
    income: int
    expenditure: int
    net: int


@dataclass(frozen=True, slots=True)
class PeriodOutcome:
    day: int  # the simulation's day (1..)
    hour: int
    period: str  # the ledger's period id (DDDDD-TT)
    contracts: tuple[ContractRow, ...]
    settlements: tuple[SettlementRow, ...]
    wallet_deltas: tuple[tuple[str, int], ...]  # sorted by wallet name
    transactions: int

    def comparable(self) -> tuple[Any, ...]:
        """Everything two backends must agree on (not the ledger's period id or tx count)."""
        return (self.day, self.hour, self.contracts, self.settlements, self.wallet_deltas)


@dataclass(frozen=True, slots=True)
class ReputationRow:
    agg: int
    r_prev_ppm: int
    a_prev_ppm: int
    a_day_ppm: int | None  # None: no order that day (carried over)
    r_ppm: int
    a_ppm: int


@dataclass(frozen=True, slots=True)
class DayOutcome:
    day: int
    reputations: tuple[ReputationRow, ...]
    transactions: int = 1


PeriodCallback = Callable[[PeriodOutcome], None]


@dataclass
class StartState:
    """What the market holds when the run starts: R and a per aggregator (ppm)."""

    reputations: dict[int, tuple[int, int]]
    notes: list[str] = field(default_factory=list)


class Market(Protocol):
    """A place to run the market cycle: the offline rules or the live network."""

    name: str

    def start(self, scenario: Scenario, resume: dict[str, Any] | None) -> StartState:
        """Prepare (register, configure) and say the state the run starts from."""
        ...

    def run_day(self, day: int, plans: Sequence[PeriodPlan], on_period: PeriodCallback) -> None:
        """The whole cycle of each period in ``plans``, calling ``on_period`` as each settles."""
        ...

    def close_day(self, day: int) -> DayOutcome:
        """The daily reputation update."""
        ...

    def state(self) -> dict[str, Any]:
        """What a resumed run needs to continue (JSON-able)."""
        ...

    def close(self) -> None: ...
