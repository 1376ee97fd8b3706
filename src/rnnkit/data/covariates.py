"""Covariates: inputs other than the targets' own past, each in an explicit role.

- **Past-observed** (``features``): columns known only up to the last row (a competitor's price
  as it was reported). They are inputs of the rows they belong to; a forecast past the end can
  use them only through a direct multi-step head, at most ``horizon`` steps ahead.
- **Future-known** (``future``): the user's columns whose coming values are known (promotions,
  planned prices), and the calendar features derived from the dates (``data/calendar.py``),
  which a forecast generates itself. The input row t carries their values at rows t+1..t+H
  (``leads``): the window ending at an origin sees the covariates of exactly the rows it
  forecasts, so a promotion planned for the next day moves the next day's forecast. A forecast
  reads their coming values from a table aligned by the time column (``future_rows``).

The table holds the raw columns (targets, past features, known covariates: ``attach``); the
pipeline turns the known block into leads (``leads``) when it builds its working rows, so
training, evaluation and every forecast share that one rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rnnkit.data import calendar
from rnnkit.data.dates import parse_dates
from rnnkit.data.read import Table
from rnnkit.data.sources import load
from rnnkit.data.timeline import frequency, when
from rnnkit.data.validate import show, to_float
from rnnkit.errors import ConfigError, DataError, did_you_mean


@dataclass(frozen=True)
class Known:
    """The future-known covariates of a run: the user's columns, then calendar features of the
    dates (``calendar`` names, ``holidays`` a country code or None)."""

    future: tuple[str, ...] = ()
    calendar: tuple[str, ...] = ()
    holidays: str | None = None

    @property
    def dated(self) -> bool:
        """Whether covariates come from the dates (calendar features or holidays)."""
        return bool(self.calendar) or self.holidays is not None

    @property
    def columns(self) -> list[str]:
        dates = (calendar.columns(list(self.calendar), self.holidays) if self.dated else [])
        return [*self.future, *dates]

    def without_calendar(self) -> Known:
        return Known(self.future)

    def to_json(self) -> dict:
        return {"future": list(self.future), "calendar": list(self.calendar),
                "holidays": self.holidays}

    @classmethod
    def from_json(cls, d: dict | None) -> Known:
        d = d or {}
        return cls(tuple(d.get("future", ())), tuple(d.get("calendar", ())), d.get("holidays"))


def columns_to_read(features: list[str] | None, opts: dict) -> list[str]:
    """The covariate columns a reader takes: past features, then future features, each in
    one role only."""
    if opts.get("static"):
        raise ConfigError(f"static={list(opts['static'])}: static covariates describe the "
                          "series of a panel (long format with an id column); a single series "
                          "has nothing to tell apart, so leave them out.")
    past, future = roles(features, opts)
    return [*past, *future]


def roles(features: list[str] | None, opts: dict) -> tuple[list[str], list[str]]:
    """(past features, future features) as given, each column in one role only."""
    past = [str(c) for c in features or ()]
    future = [str(c) for c in opts.get("future_features") or ()]
    both = sorted(set(future) & set(past))
    if both:
        raise ConfigError(f"column {both[0]!r} is given both as a feature (known up to now) and "
                          "a future feature (known ahead); give it once, in the role it has.")
    return past, future


def resolve(opts: dict, index: pd.Index) -> Known:
    """The run's known covariates from the options (``calendar``, ``holidays``,
    ``future_features``) and the data's index."""
    future = tuple(str(c) for c in opts.get("future_features") or ())
    spec = calendar.parse(opts.get("calendar"))
    holidays = calendar.country(opts.get("holidays"))
    dated = isinstance(index, pd.DatetimeIndex)
    if spec == "auto":
        names = calendar.auto_features(index) if dated else []
    else:
        names = [] if spec == "none" else list(spec)
    if (names or holidays) and not dated:
        raise ConfigError("calendar features need dates: the data has no time column; use "
                          "--time COLUMN, or --calendar none without --holidays.")
    if (names or holidays) and frequency(index).freq is None:
        # an irregular index is forecast in numbered steps (data/clock.py): no dates ahead
        raise ConfigError("calendar features need a regular frequency: the dates of this data "
                          "are irregular, so the dates ahead are not known; use --calendar "
                          "none (and no --holidays), or put the data on a regular frequency.")
    return Known(future, tuple(names), holidays)


def attach(table: Table, known: Known) -> Table:
    """``table`` (read with the past and future features as its features) with the future
    features and calendar columns moved to its known block, after the past features."""
    o = len(table.targets)
    past = [f for f in table.features if f not in known.future]
    pos = {c: i for i, c in enumerate(table.columns)}
    order = [*range(o), *(pos[c] for c in past), *(pos[c] for c in known.future)]
    parts = [table.values[:, order]]
    if known.dated:
        parts.append(calendar.encode(pd.DatetimeIndex(table.index), list(known.calendar),
                                     known.holidays))
    values = np.ascontiguousarray(np.concatenate(parts, axis=1), dtype=np.float32)
    return replace(table, values=values, features=past, known=known.columns)


def user_columns(values: np.ndarray, targets: int, past: list[str],
                 known: Known) -> dict[str, np.ndarray]:
    """The columns the user gave, by name, of rows laid out as ``attach`` makes them: the past
    features after the ``targets``, then the future features (the calendar is not theirs)."""
    names = [*past, *known.future]
    return {n: values[:, targets + j] for j, n in enumerate(names)}


def without_calendar(table: Table, known: Known) -> Table:
    """``table`` with its calendar columns (the last of its known block) left out."""
    cut = len(known.columns) - len(known.future)
    return replace(table, values=np.ascontiguousarray(table.values[:, : table.values.shape[1]
                                                                    - cut]),
                   known=list(known.future))


def with_calendar(table: Table, known: Known, names: list[str]) -> tuple[Table, Known]:
    """``table`` with only the calendar features ``names`` (of ``known``'s), and their
    ``Known`` (the holiday flag is not among them: choose with ``holidays=None``)."""
    bare = without_calendar(table, known)
    out = Known(known.future, tuple(n for n in known.calendar if n in names))
    if not out.calendar:
        return bare, out
    return attach(replace(bare, known=[], features=[*bare.features, *known.future]), out), out


def leads(block: np.ndarray, horizon: int) -> np.ndarray:
    """(..., T, K) known covariates -> (..., T, K*H): row t holds rows t+1, ..., t+H (step
    major), NaN past the end (those rows are no complete forecast's input)."""
    t, k = block.shape[-2], block.shape[-1]
    out = np.full((*block.shape[:-2], t, k * horizon), np.nan, dtype=block.dtype)
    for step in range(1, horizon + 1):
        if step < t:
            out[..., : t - step, (step - 1) * k : step * k] = block[..., step:, :]
    return out


def rows_ahead(steps: int, horizon: int) -> int:
    """Rows of known covariates a forecast of ``steps`` needs after the last row: each round
    forecasts ``horizon`` rows and reads the covariates of all of them."""
    return math.ceil(steps / horizon) * horizon


def future_rows(known: Known, future: Any, dates: pd.Index) -> np.ndarray:
    """(len(dates), K) the known covariates at ``dates``, the rows after the data: the user's
    columns read from ``future`` (a CSV/Parquet path or a DataFrame) aligned by the time
    column, the calendar columns generated from the dates."""
    parts = []
    if known.future:
        if future is None:
            first = f" from {when(dates[0])}" if isinstance(dates, pd.DatetimeIndex) else ""
            raise DataError(f"forecast needs the coming values of the future features "
                            f"{list(known.future)} for {len(dates)} rows{first}; pass them with "
                            "--future CSV (Python: future=DataFrame), one row per date.")
        parts.append(_user_rows(known.future, future, dates))
    if known.dated:
        if not isinstance(dates, pd.DatetimeIndex):
            raise DataError("this run reads calendar features, but the data it continues has "
                            "no regular dates to forecast on; continue data with a regular "
                            "time column.")
        parts.append(calendar.encode(dates, list(known.calendar),
                                     known.holidays).astype(np.float64))
    return np.concatenate(parts, axis=1) if parts else np.zeros((len(dates), 0))


def _user_rows(columns: tuple[str, ...], future: Any, dates: pd.Index) -> np.ndarray:
    """The future features at ``dates`` from the user's table, each checked."""
    raw = load(str(future) if isinstance(future, Path) else future)
    if not isinstance(future, str | Path):  # named by the argument: "future: no row for ..."
        raw = replace(raw, origin=replace(raw.origin, source="future"))
    src = raw.source
    for c in columns:
        if c not in raw.columns:
            raise DataError(f"{src}: no column {c!r}, a future feature of the run; give its "
                            f"coming values there.{did_you_mean(c, list(raw.columns))}")
    at = _positions(raw, dates)
    out = np.empty((len(dates), len(columns)))
    for j, c in enumerate(columns):
        cells = np.asarray(raw.columns[c], dtype=object)[at]
        for i, cell in enumerate(cells):  # one cell at a time: the message names its date
            try:
                out[i, j] = to_float(np.array([cell], dtype=object), c, raw.origin)[0]
            except DataError:
                raise DataError(f"{src}: column {c!r} has {show(cell)} for {_name(dates, i)}"
                                ", which is not a number; give numbers only.") from None
            if np.isnan(out[i, j]):
                raise DataError(f"{src}: column {c!r} has no value for {_name(dates, i)}; "
                                "give every coming value of a future feature.")
    return out


def _positions(raw: Any, dates: pd.Index) -> np.ndarray:
    """Row of the user's table for each date (by its time column), or the first rows in order
    when the run has no dates."""
    src = raw.source
    if not isinstance(dates, pd.DatetimeIndex):
        n = len(next(iter(raw.columns.values()))) if raw.columns else 0
        if n < len(dates):
            raise DataError(f"{src}: {n} rows of future values; the forecast needs "
                            f"{len(dates)}, one per step ahead.")
        return np.arange(len(dates))
    times = _times(raw, dates.name)
    if times.duplicated().any():
        t = times[times.duplicated()][0]
        raise DataError(f"{src}: date {when(t)} appears more than once; give one row per date.")
    naive = dates.tz_localize(None) if dates.tz is not None else dates
    at = times.get_indexer(naive)
    if (at < 0).any():
        raise DataError(f"{src}: no row for {_name(naive, int(np.argmax(at < 0)))}, one of the "
                        f"{len(dates)} dates the forecast needs ({when(naive[0])} to "
                        f"{when(naive[-1])}); give a row for each.")
    return at


def _times(raw: Any, name: Any) -> pd.DatetimeIndex:
    """The user's table's times: its column ``name`` (the data's time column), else a
    DataFrame's own DatetimeIndex."""
    if name is None or str(name) not in raw.columns:
        if raw.index is not None:
            return raw.index.tz_localize(None) if raw.index.tz is not None else raw.index
        raise DataError(f"{raw.source}: no time column {name!r} to align the future values by; "
                        "give the same time column as the data.")
    times, bad = parse_dates(np.asarray(raw.columns[str(name)], dtype=object))
    if times is None:
        raise DataError(f"{raw.source}: time column {name!r} has "
                        f"{show(raw.columns[str(name)][bad])} in {raw.origin.row(bad)}, which is "
                        "not a date.")
    return times.tz_localize(None) if times.tz is not None else times


def _name(dates: pd.Index, i: int) -> str:
    return f"date {when(dates[i])}" if isinstance(dates, pd.DatetimeIndex) else f"step {i + 1}"
