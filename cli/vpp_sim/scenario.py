"""A simulation scenario: who trades, with what resources, under which prices and weather.

Read from YAML or TOML (by the file's suffix) and checked before anything
runs, so a typo is one line naming the key and the value, never a traceback
halfway through a week. Prices and capacities go through the market's own
parsers (``vpp_market.units``): the numbers the simulation trades with are
exactly the numbers the chaincode would accept. The paper's case ships as
``vpp_sim/data/paper.yaml`` and is the default.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from vpp_market.topology import TieLine, Topology, TopologyError
from vpp_market.tou import TouTable, table_from_rows
from vpp_market.units import InputError, parse_kw, parse_price, parse_reputation

DEFAULT_NAME = "paper.yaml"
HOURS = 24


class ScenarioError(ValueError):
    """A scenario that cannot be simulated; the message names the key and the value."""


@dataclass(frozen=True)
class Location:
    latitude: float
    longitude: float
    altitude_m: float
    timezone: str


@dataclass(frozen=True)
class Wind:
    weibull_scale_ms: float
    weibull_shape: float
    diurnal_amplitude_ms: float
    hourly_sigma_ms: float
    hourly_correlation: float
    local_sigma_ms: float
    cut_in_ms: float
    rated_ms: float
    cut_out_ms: float


@dataclass(frozen=True)
class Pv:
    clear_sky_model: str
    performance_ratio: float
    clearness_mean: float
    clearness_concentration: float


@dataclass(frozen=True)
class Storage:
    hours: float
    efficiency: float
    initial_soc: float


@dataclass(frozen=True)
class MarketSettings:
    reserve_margin: float
    outage_output_share: float


@dataclass(frozen=True)
class Aggregator:
    """One aggregator; capacities in W (kW * 1000), prices in micro-yuan/kWh, R in ppm."""

    number: int
    region: str
    wt_w: int
    pv_w: int
    ess_w: int
    peak_load_w: int
    load_profile: tuple[float, ...]
    cost: int
    reputation_ppm: int
    forecast_error: float
    reliability: tuple[float, ...]

    @property
    def name(self) -> str:
        return f"Agg{self.number}"

    @property
    def capacity_w(self) -> int:
        """Registered capacity: bounds an order (Wh in an hour) and the meters' readings."""
        return self.wt_w + self.pv_w + self.ess_w

    def reliability_on(self, day: int) -> float:
        """The chance a period of ``day`` (1-based) delivers as forecast."""
        return self.reliability[min(day, len(self.reliability)) - 1]


@dataclass(frozen=True)
class Scenario:
    name: str
    start_date: dt.date
    location: Location
    tou_rows: tuple[tuple[int, int, str, str], ...]
    tie_lines: tuple[tuple[str, str, int], ...]  # (a, b, limit in kW)
    wind: Wind
    pv: Pv
    storage: Storage
    market: MarketSettings
    aggregators: tuple[Aggregator, ...]
    digest: str  # sha256 of the source text: a resumed run must use the same scenario

    @property
    def tou(self) -> TouTable:
        return table_from_rows(self.tou_rows)

    def topology(self) -> Topology | None:
        if not self.tie_lines:
            return None
        return Topology(
            (TieLine(a, b, parse_kw(kw)) for a, b, kw in self.tie_lines),
            regions=[a.region for a in self.aggregators],
        )

    def first(self, count: int) -> Scenario:
        """The same scenario with only its first ``count`` aggregators (a smaller network)."""
        if not 1 <= count <= len(self.aggregators):
            raise ScenarioError(f"--aggs {count} is not in 1..{len(self.aggregators)}")
        return dataclasses.replace(
            self,
            aggregators=self.aggregators[:count],
            digest=f"{self.digest}:first{count}" if count < len(self.aggregators) else self.digest,
        )

    def aggregator(self, number: int) -> Aggregator:
        for a in self.aggregators:
            if a.number == number:
                return a
        raise KeyError(number)


def default_path() -> Path:
    """The packaged paper's-case scenario."""
    return Path(str(resources.files("vpp_sim").joinpath("data", DEFAULT_NAME)))


def load(path: str | Path | None = None) -> Scenario:
    """Read and check a scenario (YAML, or TOML for ``*.toml``); the paper's case if None."""
    path = Path(path) if path is not None else default_path()
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ScenarioError(f"scenario {path}: cannot read it ({exc.strerror})") from exc
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ScenarioError(f"scenario {path}: not valid {_kind(path)}: {first}") from exc
    try:
        return parse(data, hashlib.sha256(text.encode()).hexdigest())
    except ScenarioError as exc:
        raise ScenarioError(f"scenario {path}: {exc}") from exc


def _kind(path: Path) -> str:
    return "TOML" if path.suffix == ".toml" else "YAML"


class _Reader:
    """Typed look-ups in a mapping whose errors name the key path."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, Mapping):
            raise ScenarioError(f"{where or 'the scenario'} is not a mapping of keys to values")
        self.data = data
        self.where = where

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def raw(self, name: str, default: Any = ...) -> Any:
        if name not in self.data:
            if default is ...:
                raise ScenarioError(f"{self.key(name)} is missing")
            return default
        return self.data[name]

    def number(
        self, name: str, default: Any = ..., *, low: float = 0.0, high: float | None = None
    ) -> float:
        value = self.raw(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ScenarioError(f"{self.key(name)} {value!r} is not a number")
        if value < low or (high is not None and value > high):
            bound = f"{low}..{high}" if high is not None else f">= {low}"
            raise ScenarioError(f"{self.key(name)} {value!r} is not in {bound}")
        return float(value)

    def sub(self, name: str) -> _Reader:
        return _Reader(self.raw(name, {}), self.key(name))


def _fixed(reader: _Reader, name: str, parser: Any, default: Any = ...) -> int:
    value = reader.raw(name, default)
    try:
        return parser(value, reader.key(name))
    except InputError as exc:
        raise ScenarioError(str(exc)) from exc


def parse(data: Any, digest: str = "") -> Scenario:
    """A Scenario from already-parsed YAML/TOML data (see docs/simulate.md for the keys)."""
    r = _Reader(data, "")
    name = str(r.raw("name", "scenario"))
    start = r.raw("start_date", "2026-06-01")
    if isinstance(start, str):
        try:
            start = dt.date.fromisoformat(start)
        except ValueError as exc:
            raise ScenarioError(f"start_date {start!r} is not a date YYYY-MM-DD") from exc
    if not isinstance(start, dt.date):
        raise ScenarioError(f"start_date {start!r} is not a date YYYY-MM-DD")
    loc = r.sub("location")
    location = Location(
        latitude=loc.number("latitude", low=-90, high=90),
        longitude=loc.number("longitude", low=-180, high=180),
        altitude_m=loc.number("altitude_m", 0.0, low=-500, high=9000),
        timezone=str(loc.raw("timezone", "UTC")),
    )
    tou_rows = _tou(r.raw("tou"))
    tie_lines = _tie_lines(r.raw("tie_lines", []))
    load_profiles = _load_profiles(r.raw("load_profiles"))
    w = r.sub("wind")
    wind = Wind(
        weibull_scale_ms=w.number("weibull_scale_ms", 8.0, low=0.1),
        weibull_shape=w.number("weibull_shape", 2.0, low=0.1),
        diurnal_amplitude_ms=w.number("diurnal_amplitude_ms", 1.5),
        hourly_sigma_ms=w.number("hourly_sigma_ms", 1.2),
        hourly_correlation=w.number("hourly_correlation", 0.8, high=0.999),
        local_sigma_ms=w.number("local_sigma_ms", 0.6),
        cut_in_ms=w.number("cut_in_ms", 3.0),
        rated_ms=w.number("rated_ms", 12.0),
        cut_out_ms=w.number("cut_out_ms", 25.0),
    )
    if not wind.cut_in_ms < wind.rated_ms < wind.cut_out_ms:
        raise ScenarioError(
            f"wind: cut_in_ms {wind.cut_in_ms} < rated_ms {wind.rated_ms} < "
            f"cut_out_ms {wind.cut_out_ms} does not hold"
        )
    p = r.sub("pv")
    model = str(p.raw("clear_sky_model", "ineichen"))
    if model not in ("ineichen", "haurwitz", "simplified_solis"):
        raise ScenarioError(
            f"pv.clear_sky_model {model!r} is not ineichen, haurwitz or simplified_solis"
        )
    pv = Pv(
        clear_sky_model=model,
        performance_ratio=p.number("performance_ratio", 0.85, high=1.0),
        clearness_mean=p.number("clearness_mean", 0.75, low=0.01, high=0.99),
        clearness_concentration=p.number("clearness_concentration", 6.0, low=0.1),
    )
    s = r.sub("storage")
    storage = Storage(
        hours=s.number("hours", 2.0, high=24.0),
        efficiency=s.number("efficiency", 0.92, low=0.01, high=1.0),
        initial_soc=s.number("initial_soc", 0.5, high=1.0),
    )
    m = r.sub("market")
    market = MarketSettings(
        reserve_margin=m.number("reserve_margin", 0.5, high=1.0),
        outage_output_share=m.number("outage_output_share", 0.4, high=1.0),
    )
    aggregators = _aggregators(r.raw("aggregators"), load_profiles)
    scenario = Scenario(
        name=name,
        start_date=start,
        location=location,
        tou_rows=tou_rows,
        tie_lines=tie_lines,
        wind=wind,
        pv=pv,
        storage=storage,
        market=market,
        aggregators=aggregators,
        digest=digest,
    )
    line_regions = {r for a, b, _ in tie_lines for r in (a, b)}
    for a in aggregators:
        if tie_lines and a.region not in line_regions:
            raise ScenarioError(f"{a.name}.region {a.region!r} is on no tie-line")
    try:
        scenario.topology()
    except (TopologyError, InputError) as exc:
        raise ScenarioError(f"tie_lines: {exc}") from exc
    return scenario


def _tou(rows: Any) -> tuple[tuple[int, int, str, str], ...]:
    if not isinstance(rows, list) or not all(isinstance(x, list) and len(x) == 4 for x in rows):
        raise ScenarioError("tou is not a list of [start_hour, end_hour, sale, purchase] rows")
    out = tuple((int(a), int(b), str(s), str(f)) for a, b, s, f in rows)
    try:
        table_from_rows(out)
    except InputError as exc:
        raise ScenarioError(f"tou: {exc}") from exc
    return out


def _tie_lines(rows: Any) -> tuple[tuple[str, str, int], ...]:
    if not isinstance(rows, list) or not all(isinstance(x, list) and len(x) == 3 for x in rows):
        raise ScenarioError("tie_lines is not a list of [region_a, region_b, limit_kw] rows")
    return tuple((str(a), str(b), kw) for a, b, kw in rows)


def _load_profiles(data: Any) -> dict[str, tuple[float, ...]]:
    if not isinstance(data, Mapping) or not data:
        raise ScenarioError("load_profiles is not a mapping of names to 24 numbers")
    out = {}
    for name, profile in data.items():
        if (
            not isinstance(profile, list)
            or len(profile) != HOURS
            or any(isinstance(v, bool) or not isinstance(v, int | float) for v in profile)
            or not all(0 <= v <= 1 for v in profile)
        ):
            raise ScenarioError(
                f"load_profiles.{name} is not a list of 24 numbers in 0..1 (hour 0 .. hour 23)"
            )
        out[str(name)] = tuple(float(v) for v in profile)
    return out


def _aggregators(items: Any, load_profiles: dict[str, tuple[float, ...]]) -> tuple[Aggregator, ...]:
    if not isinstance(items, list) or not items:
        raise ScenarioError("aggregators is not a non-empty list")
    result: list[Aggregator] = []
    for index, item in enumerate(items):
        r = _Reader(item, f"aggregators[{index}]")
        name = str(r.raw("name"))
        if not name.startswith("Agg") or not name[3:].isdigit() or int(name[3:]) < 1:
            raise ScenarioError(f"{r.key('name')} {name!r} is not AggN (N >= 1)")
        number = int(name[3:])
        if any(a.number == number for a in result):
            raise ScenarioError(f"{r.key('name')} {name!r} is listed twice")
        r.where = name
        reliability = r.raw("reliability", 1.0)
        values: Sequence[Any] = reliability if isinstance(reliability, list) else [reliability]
        if not values or any(
            isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 1 for v in values
        ):
            raise ScenarioError(
                f"{name}.reliability {reliability!r} is not a number in 0..1 or a list of them"
            )
        profile = str(r.raw("load_profile", next(iter(load_profiles))))
        if profile not in load_profiles:
            raise ScenarioError(
                f"{name}.load_profile {profile!r} is not one of {', '.join(load_profiles)}"
            )
        agg = Aggregator(
            number=number,
            region=str(r.raw("region")),
            wt_w=_fixed(r, "wt_kw", parse_kw, 0),
            pv_w=_fixed(r, "pv_kw", parse_kw, 0),
            ess_w=_fixed(r, "ess_kw", parse_kw, 0),
            peak_load_w=_fixed(r, "peak_load_kw", parse_kw),
            load_profile=load_profiles[profile],
            cost=_fixed(r, "cost", parse_price, "0"),
            reputation_ppm=_fixed(r, "reputation", parse_reputation, "0.5"),
            forecast_error=r.number("forecast_error", 0.03, high=1.0),
            reliability=tuple(float(v) for v in values),
        )
        if agg.capacity_w == 0:
            raise ScenarioError(f"{name} has no resources (wt_kw, pv_kw and ess_kw are all 0)")
        if agg.peak_load_w > agg.capacity_w:
            raise ScenarioError(
                f"{name}.peak_load_kw {agg.peak_load_w / 1000:g} is above its registered "
                f"capacity {agg.capacity_w / 1000:g} kW (orders may not exceed it)"
            )
        result.append(agg)
    return tuple(sorted(result, key=lambda a: a.number))
