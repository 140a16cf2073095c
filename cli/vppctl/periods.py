"""Which period a command means: ``--period T`` or ``--period DAY-T``, or the open one.

The market names a period by day and hour (``00003-13``). People think in
hours ("bid for 13"), so ``--period 13`` is accepted and resolved on the
ledger: the open period with that hour, else the latest day that has it.
Without ``--period`` a trader's command uses the period whose gate is open.

The days come from GetCalendar (the days that have periods and the last
closed day). A chaincode without it is read the way the keys allow:
``config~calendar`` (via GetHistory) gives the last closed day, and each
later day that has periods has a ``day~DDDDD`` key (written by OpenPeriod),
scanned until the first day without one. A day's periods are fetched with
GetPeriod, 24 calls in parallel (there is no "periods of a day" query).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from vpp_gateway import EvaluateError

from vppctl.errors import CliError, usage_error
from vppctl.session import ContractLike, parallel, query

HOURS = 24
MAX_DAY = 99_999
# How far back a bare hour is looked for among closed days.
LOOK_BACK_DAYS = 31

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
    m = _PERIOD_RE.fullmatch(text.strip())
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
    return exc.chaincode_message is not None and "has not been opened" in exc.chaincode_message


def _newest_value(market: ContractLike, key: str) -> Any:
    """The current value of a ledger key via GetHistory (None if never written or deleted)."""
    history = query(market, "GetHistory", key)["history"]
    if not history or history[0]["is_delete"]:
        return None
    return history[0]["value"]


class Calendar:
    """The ledger's days and periods, read through the market chaincode."""

    def __init__(self, market: ContractLike) -> None:
        self.market = market
        self._last_closed: int | None = None
        self._days: list[int] | None = None  # every day with periods, when known

    def _load(self) -> None:
        if self._last_closed is not None:
            return
        try:
            calendar = query(self.market, "GetCalendar")
        except EvaluateError as exc:
            if not (exc.chaincode_message and "unknown function" in exc.chaincode_message):
                raise
            value = _newest_value(self.market, "config~calendar")
            self._last_closed = int(value["last_closed_day"]) if value else 0
            return
        self._last_closed = int(calendar["last_closed_day"])
        self._days = sorted(int(d["day"]) for d in calendar["days"])

    def last_closed_day(self) -> int:
        self._load()
        assert self._last_closed is not None
        return self._last_closed

    def active_days(self) -> list[int]:
        """Days after the last closed one that have periods, oldest first."""
        last = self.last_closed_day()
        if self._days is None:  # an older chaincode: scan the day keys
            days = []
            day = last + 1
            while day <= MAX_DAY and _newest_value(self.market, f"day~{day:05d}") is not None:
                days.append(day)
                day += 1
            self._days = days
        return [d for d in self._days if d > last]

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

    def periods_of(self, day: int) -> list[dict[str, Any]]:
        """Every opened period of ``day``, by hour."""
        found = parallel(lambda hour: self.period(day, hour), list(range(1, HOURS + 1)))
        return [p for p in found if p is not None]

    def recent_periods(self) -> list[dict[str, Any]]:
        """Every period of the active days, oldest first."""
        return [p for day in self.active_days() for p in self.periods_of(day)]

    def open_periods(self) -> list[dict[str, Any]]:
        return [p for p in self.recent_periods() if p["status"] == "OPEN"]

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
        periods = self.recent_periods()
        open_ = [p for p in periods if p["status"] == "OPEN"]
        if len(open_) == 1:
            return open_[0]
        if len(open_) > 1:
            names = ", ".join(p["period"] for p in open_)
            raise usage_error(f"several periods are open ({names}): pass --period DAY-T")
        if default == "latest" and periods:
            return periods[-1]
        raise CliError(
            "no period is open; the VPPO opens one with `vppctl period open -t T` "
            "(or pass --period DAY-T)"
        )

    def _by_hour(self, hour: int) -> dict[str, Any]:
        candidates = [p for d in self.active_days() if (p := self.period(d, hour)) is not None]
        open_ = [p for p in candidates if p["status"] == "OPEN"]
        if open_:
            return open_[-1]
        if candidates:
            return candidates[-1]
        last = self.last_closed_day()
        for d in range(last, max(0, last - LOOK_BACK_DAYS), -1):
            found = self.period(d, hour)
            if found is not None:
                return found
        raise CliError(
            f"no period with hour {hour} found on the ledger; pass --period DAY-{hour} "
            f"(the VPPO opens one with `vppctl period open -t {hour}`)"
        )
