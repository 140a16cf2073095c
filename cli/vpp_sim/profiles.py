"""Hourly forecasts and what really happens: wind, sun, load, and their errors.

Everything random comes from numpy generators seeded by (seed, day, stream,
aggregator), never from a shared running generator, so a day's weather does
not depend on how many days ran before it: a resumed run and a fresh run
draw the same numbers, and two runs that differ only in one aggregator's
delivery reliability see the same forecasts (and so place the same orders).

- PV: pvlib's clear-sky irradiance (Ineichen by default) at the scenario's
  place and date, times a daily clearness drawn from a Beta distribution and
  a small hourly cloud factor, times the plant's performance ratio.
- WT: the area's hub-height wind speed, a Weibull daily mean plus a diurnal
  swing (stronger at night) and an AR(1) hourly fluctuation, plus a small
  local difference per site, through a cubic power curve between cut-in and
  rated speed (0 beyond cut-out).
- Load: the scenario's daily profile times each aggregator's peak load, with
  a few per cent of daily level noise.
- Realisation: output and load each multiplied by 1 + N(0, forecast_error);
  with probability 1 - reliability a period is an outage in which generation
  is only ``outage_output_share`` of its forecast.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from vpp_sim.scenario import HOURS, Scenario, Wind

# Random streams (the third seed word): one job each, so changing one never shifts another.
AREA_WEATHER = 1
SITE_WEATHER = 2
REALISATION = 3
LOAD_LEVEL_SIGMA = 0.03


def rng(seed: int, day: int, stream: int, agg: int = 0) -> np.random.Generator:
    """The generator of one (day, stream, aggregator); independent of every other."""
    return np.random.default_rng([seed, day, stream, agg])


@lru_cache(maxsize=8)
def _clear_sky(
    lat: float, lon: float, alt: float, tz: str, model: str, start: dt.date, days: int
) -> np.ndarray:
    import pandas as pd
    from pvlib.location import Location

    site = Location(lat, lon, tz=tz, altitude=alt)
    # Mid-hour instants: period t covers [(t-1):00, t:00), its sun is that of (t-1):30.
    times = pd.date_range(
        dt.datetime.combine(start, dt.time(0, 30)), periods=days * HOURS, freq="h", tz=tz
    )
    with warnings.catch_warnings():
        # pvlib 0.16 still calls pandas' deprecated DatetimeIndex.dayofyear; not ours to fix.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        ghi = site.get_clearsky(times, model=model)["ghi"].to_numpy()
    return np.nan_to_num(ghi).clip(min=0).reshape(days, HOURS)


def clear_sky_ghi(scenario: Scenario, days: int) -> np.ndarray:
    """Clear-sky global horizontal irradiance (W/m^2), shape (days, 24), day 1 first."""
    loc = scenario.location
    return _clear_sky(
        loc.latitude,
        loc.longitude,
        loc.altitude_m,
        loc.timezone,
        scenario.pv.clear_sky_model,
        scenario.start_date,
        days,
    )


def power_curve(speed_ms: np.ndarray, wind: Wind) -> np.ndarray:
    """Share of rated power (0..1) at each hub-height wind speed."""
    v = np.asarray(speed_ms, dtype=float)
    cubic = (v**3 - wind.cut_in_ms**3) / (wind.rated_ms**3 - wind.cut_in_ms**3)
    share = np.where(v < wind.cut_in_ms, 0.0, np.where(v < wind.rated_ms, cubic, 1.0))
    return np.where(v >= wind.cut_out_ms, 0.0, share)


@dataclass(frozen=True)
class DayProfiles:
    """One day's hourly energy per aggregator, Wh as ints, arrays indexed [agg_index, hour]."""

    wind_ms: np.ndarray  # the area's wind speed (for plots and docs), shape (24,)
    wt_wh: np.ndarray
    pv_wh: np.ndarray
    load_wh: np.ndarray
    output_error: np.ndarray  # realised / forecast generation factor
    load_error: np.ndarray  # realised / forecast load factor
    outage: np.ndarray  # bool: generation fell to the outage share


def day_profiles(scenario: Scenario, seed: int, day: int, ghi_day: np.ndarray) -> DayProfiles:
    """Forecasts and realisation factors of ``day`` (1-based) for every aggregator."""
    wind = scenario.wind
    area = rng(seed, day, AREA_WEATHER)
    mean = wind.weibull_scale_ms * area.weibull(wind.weibull_shape)
    hours = np.arange(HOURS)
    diurnal = wind.diurnal_amplitude_ms * np.cos(2 * np.pi * (hours - 2) / HOURS)
    noise = np.empty(HOURS)
    level = area.normal(0.0, wind.hourly_sigma_ms)
    rho = wind.hourly_correlation
    for h in range(HOURS):
        noise[h] = level
        level = rho * level + np.sqrt(1 - rho * rho) * area.normal(0.0, wind.hourly_sigma_ms)
    speed = np.clip(mean + diurnal + noise, 0.0, None)
    pv = scenario.pv
    a, b = (
        pv.clearness_mean * pv.clearness_concentration,
        (1 - pv.clearness_mean) * pv.clearness_concentration,
    )
    clearness = area.beta(a, b)
    clouds = np.clip(1 + area.normal(0.0, 0.08, HOURS), 0.5, 1.1)
    sun = np.clip(ghi_day * clearness * clouds / 1000.0, 0.0, 1.0) * pv.performance_ratio

    n = len(scenario.aggregators)
    wt = np.zeros((n, HOURS), dtype=np.int64)
    pvo = np.zeros((n, HOURS), dtype=np.int64)
    load = np.zeros((n, HOURS), dtype=np.int64)
    out_err = np.ones((n, HOURS))
    load_err = np.ones((n, HOURS))
    outage = np.zeros((n, HOURS), dtype=bool)
    for i, agg in enumerate(scenario.aggregators):
        site = rng(seed, day, SITE_WEATHER, agg.number)
        local = np.clip(speed + site.normal(0.0, wind.local_sigma_ms, HOURS), 0.0, None)
        wt[i] = np.rint(agg.wt_w * power_curve(local, wind)).astype(np.int64)
        pvo[i] = np.rint(agg.pv_w * sun).astype(np.int64)
        level_factor = max(0.5, 1 + site.normal(0.0, LOAD_LEVEL_SIGMA))
        profile = np.asarray(agg.load_profile) * level_factor
        load[i] = np.rint(agg.peak_load_w * np.clip(profile, 0, 1)).astype(np.int64)
        real = rng(seed, day, REALISATION, agg.number)
        out_err[i] = np.clip(1 + real.normal(0.0, agg.forecast_error, HOURS), 0.0, None)
        load_err[i] = np.clip(1 + real.normal(0.0, agg.forecast_error, HOURS), 0.0, None)
        outage[i] = real.random(HOURS) >= agg.reliability_on(day)
    return DayProfiles(speed, wt, pvo, load, out_err, load_err, outage)
