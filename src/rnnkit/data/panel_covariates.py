"""Covariates of a panel in their roles (``data/covariates.py`` has the rules; this is the long
format): the calendar of every row, and the coming values of the future-known columns of every
series, read from a long table aligned by series id and time.

A panel's known block is the columns after its values: the user's future features (read with
the features), then the calendar columns computed from each row's time (``attach``), each kept
apart from the values in as few bytes as its values allow (``data/compact.py``: a flag is one
byte per row). Their leads are never stored (``data/panel_join.py`` builds them per batch), so
a known covariate costs at most one float32 column per row however long the horizon.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rnnkit.data import calendar, covariates
from rnnkit.data.compact import KnownColumns
from rnnkit.data.covariates import Known
from rnnkit.data.dates import parse_dates
from rnnkit.data.panel_table import Panel
from rnnkit.data.sources import Raw, load
from rnnkit.data.timeline import when
from rnnkit.data.validate import show
from rnnkit.errors import ConfigError, DataError, did_you_mean


def time_index(panel: Panel) -> pd.Index:
    """The times of the panel's longest series (the one ``clock.time_info`` reads the
    frequency from): what ``covariates.resolve`` chooses the automatic calendar by."""
    i = int(np.argmax(panel.lengths))
    times = panel.times[panel.offsets[i] : panel.offsets[i + 1]]
    if panel.time_name is None or times.dtype.kind != "M":
        return pd.RangeIndex(len(times))
    return pd.DatetimeIndex(times, name=panel.time_name)


def roles(features: list[str] | None, opts: dict) -> tuple[list[str], list[str]]:
    """(past features, future features) of a panel fit, each column in one role only; a
    static column given as a feature too is refused."""
    past, future = covariates.roles(features, opts)
    for name in opts.get("static") or ():
        role = "feature" if name in past else "future feature" if name in future else None
        if role:
            raise DataError(f"column {name!r} is given as a static (one value per series) and "
                            f"as a {role} (one value per row); give it once, in the role it "
                            "has: --static for what describes a series, --features for what "
                            "changes over time.")
    return past, future


def attach(panel: Panel, known: Known) -> Panel:
    """``panel`` (read with the past features as its features and the future features as its
    known columns, ``read_panel(..., known=...)``, coded as they were read) with the calendar
    columns of its times after them, each column stored compactly (``data/compact.py``)."""
    if panel.known != list(known.future) or set(panel.features) & set(known.future):
        raise ConfigError(f"internal: panel features {panel.features} and known columns "
                          f"{panel.known} are not the past features and then the future "
                          f"{list(known.future)}.")
    if not known.columns:
        return replace(panel, known=known.columns)
    columns = () if panel.known_values is None else panel.known_values.columns
    if known.dated:
        cal = calendar.encode(pd.DatetimeIndex(panel.times), list(known.calendar),
                              known.holidays)  # (rows, calendar columns) float32
        columns += KnownColumns.of(cal).columns
    return replace(panel, known=known.columns, known_values=KnownColumns(columns))


def future_block(known: Known, future: Any, ids: list[str], times: np.ndarray,
                 names: tuple[str, str | None]) -> np.ndarray:
    """(S, R, K) the known covariates of each series at its ``times`` (S, R), the rows after
    its end: the user's columns from ``future`` (a CSV/Parquet path or a DataFrame, one row
    per series and time, ``names`` = (id column, time column)), the calendar generated from
    the times."""
    s, r = times.shape
    parts = []
    if known.future:
        if future is None:
            raise DataError(f"forecast needs the coming values of the future features "
                            f"{list(known.future)} for {r} rows of each of the {s} series"
                            f"{_from(times)}; pass them with --future CSV (Python: "
                            "future=DataFrame), one row per series and date.")
        parts.append(_user_block(known.future, future, ids, times, names))
    if known.dated:
        cal = calendar.encode(pd.DatetimeIndex(times.reshape(-1)), list(known.calendar),
                              known.holidays)
        parts.append(cal.astype(np.float64).reshape(s, r, -1))
    return np.concatenate(parts, axis=2) if parts else np.zeros((s, r, 0))


def _from(times: np.ndarray) -> str:
    return f" from {when(times.min())}" if times.dtype.kind == "M" and times.size else ""


def _user_block(columns: tuple[str, ...], future: Any, ids: list[str], times: np.ndarray,
                names: tuple[str, str | None]) -> np.ndarray:
    """(S, R, len(columns)) the user's future values, every cell checked."""
    raw = load(str(future) if isinstance(future, Path) else future)
    for c in (names[0], *columns):
        if c not in raw.columns:
            what = "the id column" if c == names[0] else "a future feature of the run"
            raise DataError(f"{raw.source}: no column {c!r}, {what}; give the coming values of "
                            f"each series there.{did_you_mean(c, list(raw.columns))}")
    at = _positions(raw, ids, times, names)  # (S, R) row of the table
    out = np.empty((*times.shape, len(columns)))
    for j, c in enumerate(columns):
        cells = np.asarray(raw.columns[c], dtype=object)
        out[..., j] = _numbers(cells, at, c, raw.source, ids, times)
    return out


def _numbers(cells: np.ndarray, at: np.ndarray, name: str, src: str, ids: list[str],
             times: np.ndarray) -> np.ndarray:
    """(S, R) the cells at rows ``at`` as numbers; the first (series, time) without one is a
    one-line DataError naming both."""
    picked = cells[at]  # (S, R) in series order, then time
    flat = pd.to_numeric(pd.Series(picked.reshape(-1)), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan)
    bad = np.flatnonzero(~np.isfinite(flat))
    if len(bad) == 0:
        return flat.reshape(picked.shape)
    i, k = divmod(int(bad[0]), picked.shape[1])
    cell = picked[i, k]
    where = f"series {ids[i]} at {_name(times, i, k)}"
    if pd.isna(cell) or (isinstance(cell, str) and not cell.strip()):
        raise DataError(f"{src}: column {name!r} has no value for {where}; give every coming "
                        "value of a future feature.")
    raise DataError(f"{src}: column {name!r} has {show(cell)} for {where}, which is not a "
                    "finite number; give numbers only.")


def _name(times: np.ndarray, i: int, k: int) -> str:
    t = times[i, k]
    return f"date {when(t)}" if times.dtype.kind == "M" else f"time {t}"


def _positions(raw: Raw, ids: list[str], times: np.ndarray, names: tuple[str, str | None]
               ) -> np.ndarray:
    """(S, R) the table's row of each series and time: by the time column when the panel has
    one, else each series' first R rows in order."""
    src, s, r = raw.source, *times.shape
    keys = pd.Index(_id_text(raw.columns[names[0]]))
    if names[1] is None:
        return _in_order(keys, ids, r, src)
    if names[1] not in raw.columns:
        raise DataError(f"{src}: no time column {names[1]!r} to align the future values by; "
                        "give the same id and time columns as the data."
                        f"{did_you_mean(names[1], list(raw.columns))}")
    stamps = _times(np.asarray(raw.columns[names[1]], dtype=object), times.dtype, names[1], src)
    table = pd.MultiIndex.from_arrays([keys, stamps])
    if table.has_duplicates:
        j = int(np.argmax(table.duplicated()))
        raise DataError(f"{src}: series {keys[j]} has more than one row for "
                        f"{_name(stamps.to_numpy()[None, j : j + 1], 0, 0)}; give one row per "
                        "series and date.")
    wanted = pd.MultiIndex.from_arrays([np.repeat(np.asarray(ids, dtype=object), r),
                                        times.reshape(-1)])
    at = table.get_indexer(wanted)
    if (at < 0).any():
        i, k = divmod(int(np.argmax(at < 0)), r)
        what = "dates" if times.dtype.kind == "M" else "times"
        raise DataError(f"{src}: no row for series {ids[i]} at {_name(times, i, k)}, one of the "
                        f"{r} {what} each series needs after its end ({_span(times[i])}); give "
                        f"a row for each series and {what[:-1]}.")
    return at.reshape(s, r)


def _id_text(cells: np.ndarray) -> list[str]:
    """Series ids as the panel reader names them: whole numbers without a decimal point
    (a DataFrame's numeric column arrives here as floats)."""
    if cells.dtype.kind == "f":
        return [str(int(x)) if np.isfinite(x) and x == int(x) else str(x) for x in cells]
    return [str(x) for x in cells]


def _span(times: np.ndarray) -> str:
    return f"{when(times[0])} to {when(times[-1])}"


def _times(cells: np.ndarray, kind: np.dtype, name: str, src: str) -> pd.Index:
    """The future table's times, as the panel's: dates (datetime64[ns], no timezone) or whole
    numbers."""
    if kind.kind == "M":
        parsed, bad = parse_dates(cells)
        if parsed is None:
            raise DataError(f"{src}: time column {name!r} has {show(cells[bad])} in row "
                            f"{bad + 1}, which is not a date.")
        parsed = parsed.tz_localize(None) if parsed.tz is not None else parsed
        return pd.Index(parsed.as_unit("ns").to_numpy())
    numbers = pd.to_numeric(pd.Series(cells), errors="coerce").to_numpy(dtype=np.float64,
                                                                          na_value=np.nan)
    wrong = ~np.isfinite(numbers) | (numbers != np.round(numbers))
    if wrong.any():
        j = int(np.argmax(wrong))
        raise DataError(f"{src}: time column {name!r} has {show(cells[j])} in row {j + 1}, "
                        "which is not a whole number like the data's times.")
    return pd.Index(numbers.astype(np.int64))


def _in_order(keys: pd.Index, ids: list[str], r: int, src: str) -> np.ndarray:
    """(S, R) each series' first ``r`` rows, in the table's order (a panel without times)."""
    rows = pd.Series(np.arange(len(keys))).groupby(keys.to_numpy()).apply(list).to_dict()
    out = np.empty((len(ids), r), dtype=np.int64)
    for i, sid in enumerate(ids):
        mine = rows.get(sid, [])
        if len(mine) < r:
            raise DataError(f"{src}: {len(mine)} rows of future values for series {sid}; the "
                            f"forecast needs {r}, one per step ahead.")
        out[i] = mine[:r]
    return out
