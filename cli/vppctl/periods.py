"""Which period a command means: ``--period T`` or ``--period DAY-T``, or the open one.

The market names a period by day and hour (``00003-13``). People think in
hours ("bid for 13"), so ``--period 13`` is accepted and resolved on the
ledger: the open period with that hour, else the latest day that has it.
Without ``--period`` a trader's command uses the period whose gate is open.

One GetCalendar call says which days have periods, each period's hour and
status, and the last closed day; that is enough to pick the period meant.
Full records (prices, progress) come from GetPeriod, and only for the
periods a command shows or acts on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from vpp_gateway import EvaluateError
from vpp_market.units import trim
from vpp_shim.codes import Code

from vppctl.errors import CliError, usage_error
from vppctl.session import ContractLike, parallel, query

HOURS = 24
MAX_DAY = 99_999

_PERIOD_RE = re.compile(r"(?:([0-9]{1,5})-)?([0-9]{1,2})")


@dataclass(frozen=True)
class PeriodSpec:
    """What the user wrote: an hour, and a day if they gave one."""

    day: int | None
    hour: int


def period_id(day: int, hour: int) -> str:
    """The market's period id: ``DDDDD-TT``, zero padded."""
    return f"{day:05d}-{hour:02d}"


def parse_period(text: str, option: str = "--period") -> PeriodSpec:
    """``13`` or ``3-13`` (``00003-13``) -> PeriodSpec; bad text is a usage error."""
    m = _PERIOD_RE.fullmatch(trim(text))  # not strip(): "13\x1f" is no period
    if m is None:
        raise usage_error(
            f"{option} {text!r}: is not an hour T (1..24) or DAY-T such as 3-13 or 00003-13"
        )
    day = int(m.group(1)) if m.group(1) else None
    hour = int(m.group(2))
    if not 1 <= hour <= HOURS:
        raise usage_error(f"{option} {text!r}: hour {hour} is not in 1..24")
    if day is not None and not 1 <= day <= MAX_DAY:
        raise usage_error(f"{option} {text!r}: day {day} is not in 1..{MAX_DAY}")
    return PeriodSpec(day, hour)


def check_day(day: int, option: str = "--day") -> int:
    if not 1 <= day <= MAX_DAY:
        raise usage_error(f"{option} {day}: is not a day number 1..{MAX_DAY}")
    return day


def _not_opened(exc: EvaluateError) -> bool:
    return exc.code == Code.PERIOD_NOT_FOUND


class Calendar:
    """The ledger's days and periods, read through the market chaincode.

    GetCalendar is read once, on first use; period records (GetPeriod) are
    read when asked for, so they are current.
    """

    def __init__(self, market: ContractLike) -> None:
        self.market = market
        self._calendar: dict[str, Any] | None = None

    def _load(self) -> dict[str, Any]:
        if self._calendar is None:
            self._calendar = query(self.market, "GetCalendar")
        return self._calendar

    def _days(self) -> dict[int, list[dict[str, Any]]]:
        """Every day with periods -> its periods ``{period, t, status}``, by hour."""
        return {
            int(d["day"]): sorted(d["periods"], key=lambda p: p["t"]) for d in self._load()["days"]
        }

    def last_closed_day(self) -> int:
        return int(self._load()["last_closed_day"])

    def active_days(self) -> list[int]:
        """Days after the last closed one that have periods, oldest first."""
        last = self.last_closed_day()
        return sorted(d for d in self._days() if d > last)

    def fresh_day(self) -> int:
        """A day after every day that has periods and after the last closed one."""
        active = self.active_days()
        return max([self.last_closed_day(), *active]) + 1

    def current_day(self) -> int:
        """The day an operator is working on: the latest with periods, else a fresh one."""
        active = self.active_days()
        return active[-1] if active else self.last_closed_day() + 1

    def period(self, day: int, hour: int) -> dict[str, Any] | None:
        """GetPeriod, or None if the period was never opened."""
        try:
            return query(self.market, "GetPeriod", period_id(day, hour))
        except EvaluateError as exc:
            if _not_opened(exc):
                return None
            raise

    def _records(self, summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The full records (GetPeriod) of calendar entries, in the same order."""
        return parallel(lambda p: query(self.market, "GetPeriod", p["period"]), summaries)

    def summaries_of(self, day: int) -> list[dict[str, Any]]:
        """``{period, t, status}`` of every opened period of ``day``, by hour."""
        return self._days().get(day, [])

    def recent_summaries(self) -> list[dict[str, Any]]:
        """``{period, t, status}`` of every period of the active days, oldest first."""
        return [p for day in self.active_days() for p in self.summaries_of(day)]

    def periods_of(self, day: int) -> list[dict[str, Any]]:
        """Every opened period of ``day``, by hour."""
        return self._records(self.summaries_of(day))

    def recent_periods(self) -> list[dict[str, Any]]:
        """Every period of the active days, oldest first."""
        return self._records(self.recent_summaries())

    def open_periods(self) -> list[dict[str, Any]]:
        """Every OPEN period, oldest first, on any day: closing a day skips an earlier day
        none of whose periods settled, and that day's open periods still take orders."""
        days = self._days()
        return self._records(
            [p for day in sorted(days) for p in days[day] if p["status"] == "OPEN"]
        )

    def require(self, day: int, hour: int) -> dict[str, Any]:
        record = self.period(day, hour)
        if record is None:
            raise CliError(
                f"period {period_id(day, hour)} has not been opened "
                f"(the VPPO opens it with `vppctl period open --day {day} -t {hour}`)"
            )
        return record

    def resolve(
        self, spec: PeriodSpec | None, *, day: int | None = None, default: str = "open"
    ) -> dict[str, Any]:
        """The period record the user means.

        ``spec`` with a day (or ``day`` given) is exact. An hour alone picks the
        open period with that hour, else the latest day that has it. No spec:
        the open period (``default="open"``), or for ``default="latest"`` the
        open one if there is exactly one, else the latest period.
        """
        if spec is not None:
            if spec.day is not None or day is not None:
                return self.require(spec.day if spec.day is not None else day, spec.hour)  # type: ignore[arg-type]
            return self._by_hour(spec.hour)
        if day is not None:
            raise usage_error("--day needs --period T to name the hour")
        periods = self.recent_summaries()
        open_ = [p for p in periods if p["status"] == "OPEN"]
        if len(open_) == 1:
            return self._records(open_)[0]
        if len(open_) > 1:
            names = ", ".join(p["period"] for p in open_)
            raise usage_error(f"several periods are open ({names}): pass --period DAY-T")
        if default == "latest" and periods:
            return self._records(periods[-1:])[0]
        raise CliError(
            "no period is open; the VPPO opens one with `vppctl period open -t T` "
            "(or pass --period DAY-T)"
        )

    def _by_hour(self, hour: int) -> dict[str, Any]:
        """The open period with this hour on an active day, else the latest day's."""
        with_hour = [
            (day, p)
            for day, periods in sorted(self._days().items())
            for p in periods
            if p["t"] == hour
        ]
        active = set(self.active_days())
        open_ = [p for day, p in with_hour if day in active and p["status"] == "OPEN"]
        chosen = open_ or [p for _, p in with_hour]
        if chosen:
            return self._records(chosen[-1:])[0]
        raise CliError(
            f"no period with hour {hour} found on the ledger; pass --period DAY-{hour} "
            f"(the VPPO opens one with `vppctl period open -t {hour}`)"
        )
