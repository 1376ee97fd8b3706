"""Calendar covariates: what the date alone says about a step, known for any future date.

A forecast can use inputs that are not part of the series only if they are known at every step
it forecasts. The calendar is such an input: the hour, weekday, day of year and month of a
future time, and whether it is a public holiday, follow from the time itself, so ``encode``
gives them for the training rows and for the forecast horizon alike.

How each is encoded:

- **Cyclical features as sine/cosine pairs** (hour of day, day of year, month). As a plain number
  the month jumps from 12 to 1 between December and January although the two are neighbours;
  on the unit circle (``sin``, ``cos`` of ``2*pi*k/period``) the last value sits next to the
  first, every step of the cycle is the same distance, and two numbers say where in the cycle a
  time is without ambiguity (a sine alone maps two months to one value).
- **Weekday one-hot** (Monday=0 .. Sunday=6). Weekday effects are rarely smooth: Saturday and
  Sunday differ from Friday by a step, not by a seventh of a cycle, and a one-hot column per day
  lets the network learn each day's level on its own.
- **Public holidays** as a 0/1 column from the ``holidays`` package, for one country.

Timezone-aware times use their local wall time: 09:00 in Berlin is hour 9, not 8 (UTC).

Example:
    >>> times = pd.date_range("2024-01-01", periods=3, freq="D")
    >>> columns(["weekday"], None)[:2]
    ['cal_weekday_0', 'cal_weekday_1']
    >>> encode(times, ["weekday"], None)[:, :3].tolist()
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from rnnkit.data.timeline import frequency
from rnnkit.errors import ConfigError, DataError, did_you_mean

FEATURES: tuple[str, ...] = ("hour", "weekday", "dayofyear", "month")
CHOICES = ("auto", "none")
_PHRASES = {"hour": "hour of day (sine/cosine)", "weekday": "weekday (one-hot)",
            "dayofyear": "day of year (sine/cosine)", "month": "month (sine/cosine)"}  # fmt: skip
_DAY = pd.Timedelta(days=1)
_MONTHLY = (pd.offsets.MonthBegin, pd.offsets.MonthEnd, pd.offsets.BusinessMonthBegin,
            pd.offsets.BusinessMonthEnd, pd.offsets.CustomBusinessMonthBegin,
            pd.offsets.CustomBusinessMonthEnd, pd.offsets.SemiMonthBegin,
            pd.offsets.SemiMonthEnd, pd.offsets.QuarterBegin, pd.offsets.QuarterEnd,
            pd.offsets.BQuarterBegin, pd.offsets.BQuarterEnd, pd.offsets.WeekOfMonth,
            pd.offsets.LastWeekOfMonth)  # fmt: skip
_NO_DATES = "the data has no time column; use --time COLUMN or"


def auto_features(index: pd.Index) -> list[str]:
    """The features that fit the index's frequency.

    Finer than daily (hourly, 15 minutes, 3 hours) -> ``["hour", "weekday"]``; daily or
    business-daily -> ``["weekday", "dayofyear"]``; weekly -> ``["dayofyear"]``; monthly or
    quarterly -> ``["month"]``; yearly, irregular, or not a DatetimeIndex -> ``[]``. A step of
    several days keeps the weekday unless it is whole weeks (every row the same weekday).

    Example:
        >>> auto_features(pd.date_range("2024-01-01", periods=48, freq="h"))
        ['hour', 'weekday']
    """
    if not isinstance(index, pd.DatetimeIndex):
        return []
    freq = frequency(index).freq
    return [] if freq is None else _for_offset(to_offset(freq))


def _for_offset(offset: pd.DateOffset) -> list[str]:
    """The features of one pandas offset (see ``auto_features``)."""
    if isinstance(offset, pd.offsets.BusinessDay | pd.offsets.CustomBusinessDay):
        return ["weekday", "dayofyear"]
    if isinstance(offset, pd.offsets.BusinessHour | pd.offsets.CustomBusinessHour):
        return ["hour", "weekday"]
    if isinstance(offset, pd.offsets.Week):
        return ["dayofyear"]
    if isinstance(offset, _MONTHLY):
        return ["month"]
    if not isinstance(offset, pd.offsets.Tick | pd.offsets.Day):  # Day is no Tick in pandas 3
        return []  # yearly and the rarer anchored offsets
    step = pd.Timedelta(offset)
    if step < _DAY:
        return ["hour", "weekday"]
    if step % _DAY:
        return []  # such as 36 hours: no steady hour or weekday
    return ["dayofyear"] if (step // _DAY) % 7 == 0 else ["weekday", "dayofyear"]


def parse(spec: str | list[str] | tuple | None) -> str | list[str]:
    """The ``--calendar`` option checked: ``"auto"`` (default when None), ``"none"``, or names.

    Names come as a list or a comma-separated string (``"weekday,month"``), any case, spaces
    allowed; they are returned in ``FEATURES`` order without repeats. An empty selection is
    ``"none"``.

    Raises:
        ConfigError: a name that is not ``auto``, ``none`` or one of ``FEATURES``, or ``auto``
            / ``none`` given together with names.

    Example:
        >>> parse("month, weekday")
        ['weekday', 'month']
    """
    if spec is None:
        return "auto"
    given = spec.split(",") if isinstance(spec, str) else list(spec)
    if any(not isinstance(name, str) for name in given):
        raise ConfigError(f"--calendar got {spec!r}; expected names as text, such as "
                          f"'weekday,month'; use 'auto', 'none' or names from {_valid()}")
    names = [name.strip().lower() for name in given if name.strip()]
    if not names:
        return "none"
    for name in names:
        if name not in FEATURES + CHOICES:
            raise ConfigError(f"--calendar got unknown feature '{name}'; expected 'auto', "
                              f"'none' or names from {_valid()}."
                              f"{did_you_mean(name, FEATURES + CHOICES)}")
    alone = [name for name in names if name in CHOICES]
    if alone and len(set(names)) > 1:
        raise ConfigError(f"--calendar got {', '.join(names)}; '{alone[0]}' stands alone: use "
                          f"--calendar {alone[0]} or names from {_valid()}")
    return alone[0] if alone else [name for name in FEATURES if name in names]


def _valid() -> str:
    return ", ".join(FEATURES)


def country(code: str | None) -> str | None:
    """A ``--holidays`` country code checked against the ``holidays`` package.

    Case-insensitive, returned upper-case: ``"us"`` -> ``"US"``. ISO alpha-2 and alpha-3 codes
    are both accepted (``"DE"``, ``"DEU"``). None stays None.

    Raises:
        ConfigError: a code the ``holidays`` package does not support.

    Example:
        >>> country("gb")
        'GB'
    """
    if code is None:
        return None
    import holidays

    supported = holidays.list_supported_countries()
    upper = str(code).strip().upper()
    if upper not in supported:
        raise ConfigError(f"--holidays got unknown country code '{code}'; expected an ISO "
                          f"country code the holidays package supports, such as US, GB or DE "
                          f"(see holidays.list_supported_countries())."
                          f"{_suggest(upper, supported)}")
    return upper


def _suggest(upper: str, supported: Iterable[str]) -> str:
    """Did-you-mean for a country code: the nearest code for a short typo ('USS' -> 'US'), the
    code of a country name ('Germany' -> 'DE'); nothing for a long text that is no name."""
    if len(upper) <= 3:
        return did_you_mean(upper, supported)
    from holidays import registry

    codes = {entry[0].lower(): entry[1] for entry in getattr(registry, "COUNTRIES", {}).values()}
    close = difflib.get_close_matches(re.sub("[^a-z]", "", upper.lower()), codes, n=1,
                                      cutoff=0.8)
    return f" Did you mean '{codes[close[0]]}'?" if close else ""


def columns(names: list[str], holidays: str | None) -> list[str]:
    """Column names of ``encode``'s output, in order.

    hour -> ``cal_hour_sin``, ``cal_hour_cos``; weekday -> ``cal_weekday_0`` ..
    ``cal_weekday_6`` (Monday=0); dayofyear -> ``cal_doy_sin``, ``cal_doy_cos``; month ->
    ``cal_month_sin``, ``cal_month_cos``; then ``cal_holiday`` when ``holidays`` is set.
    Features come in ``FEATURES`` order whatever the order of ``names``.

    Example:
        >>> columns(["month", "hour"], "US")
        ['cal_hour_sin', 'cal_hour_cos', 'cal_month_sin', 'cal_month_cos', 'cal_holiday']
    """
    out: list[str] = []
    for name in _checked(names):
        if name == "weekday":
            out += [f"cal_weekday_{day}" for day in range(7)]
        else:
            short = "doy" if name == "dayofyear" else name
            out += [f"cal_{short}_sin", f"cal_{short}_cos"]
    return out + (["cal_holiday"] if holidays else [])


def _checked(names: list[str]) -> list[str]:
    """``names`` in ``FEATURES`` order without repeats; unknown ones raise ConfigError."""
    if isinstance(names, str):
        raise ConfigError(f"calendar features got the text {names!r}; expected a list of names "
                          f"from {_valid()}; resolve it with parse() and auto_features() first")
    for name in names:
        if name not in FEATURES:
            raise ConfigError(f"calendar features got unknown feature '{name}'; expected names "
                              f"from {_valid()}.{did_you_mean(name, FEATURES)}")
    return [name for name in FEATURES if name in names]


def encode(times: pd.Index, names: list[str], holidays: str | None) -> np.ndarray:
    """The calendar features of every time: ``(len(times), len(columns(names, holidays)))``.

    float32, columns as ``columns`` names them. hour: angle ``2*pi*(hour + minute/60)/24``;
    dayofyear: ``2*pi*(dayofyear-1)/days in that year`` (365 or 366); month:
    ``2*pi*(month-1)/12``; each as ``sin``, ``cos``. weekday: one-hot, Monday=0. holiday: 1.0
    on a public holiday of that country (``holidays.country_holidays``), else 0.0.
    Timezone-aware times use their local time. Vectorised; holidays are looked up once per
    distinct date.

    Raises:
        ConfigError: features asked of an index without dates (a RangeIndex).
        DataError: a missing time (NaT).

    Example:
        >>> encode(pd.DatetimeIndex(["2024-01-01 06:00"]), ["hour"], None).round(6).tolist()
        [[1.0, 0.0]]
    """
    names = _checked(names)
    if not isinstance(times, pd.DatetimeIndex):
        if names:
            raise ConfigError(f"calendar features need dates: {_NO_DATES} --calendar none")
        if holidays:
            raise ConfigError(f"public holidays need dates: {_NO_DATES} leave out --holidays")
        return np.zeros((len(times), 0), dtype=np.float32)
    if times.hasnans:
        raise DataError(f"calendar features need a time on every row: {int(times.isna().sum())}"
                        f" time(s) are missing (NaT); drop or fill those rows first")
    local = times.tz_localize(None) if times.tz is not None else times
    parts = [_feature(local, name) for name in names]
    if holidays:
        parts.append(_holiday(local, holidays)[:, None])
    if not parts:
        return np.zeros((len(times), 0), dtype=np.float32)
    return np.concatenate(parts, axis=1, dtype=np.float32)  # (N, columns)


def _feature(local: pd.DatetimeIndex, name: str) -> np.ndarray:
    """The columns of one feature, ``(N, 2)`` for sine/cosine or ``(N, 7)`` for weekday."""
    if name == "weekday":
        return np.eye(7, dtype=np.float32)[local.day_of_week.to_numpy()]  # (N, 7)
    if name == "hour":
        turn = (local.hour.to_numpy() + local.minute.to_numpy() / 60.0) / 24.0
    elif name == "dayofyear":
        days = np.where(local.is_leap_year, 366.0, 365.0)
        turn = (local.day_of_year.to_numpy() - 1) / days
    else:
        turn = (local.month.to_numpy() - 1) / 12.0
    angle = 2.0 * np.pi * turn
    return np.stack([np.sin(angle), np.cos(angle)], axis=1)  # (N, 2)


def _holiday(local: pd.DatetimeIndex, code: str) -> np.ndarray:
    """1.0 on the public holidays of ``code``, else 0.0: one lookup per distinct date."""
    import holidays

    days = local.to_numpy().astype("datetime64[D]")
    unique, inverse = np.unique(days, return_inverse=True)
    years = range(int(local.year.min()), int(local.year.max()) + 1) if len(local) else []
    found = holidays.country_holidays(country(code), years=years)
    marked = np.array(sorted(found), dtype="datetime64[D]")
    return np.isin(unique, marked).astype(np.float32)[inverse.reshape(-1)]  # (N,)


def describe(names: list[str], holidays: str | None) -> str:
    """One phrase for the fit output and the report.

    Example:
        >>> describe(["dayofyear", "weekday"], "US")
        'weekday (one-hot), day of year (sine/cosine), public holidays (US)'
        >>> describe([], None)
        'none'
    """
    phrases = [_PHRASES[name] for name in _checked(names)]
    phrases += [f"public holidays ({holidays})"] if holidays else []
    return ", ".join(phrases) or "none"
