"""The time rules of docs/dates.md for every series of a long-format panel, vectorised.

The same rules as one series' (``timeline.py``): rows in time order within their series, one
row per (series, time), and no period missing from the panel's frequency unless ``--fill``
says what to do. Panels reach 100k series x 500 rows, so the checks run in chunks of rows
without full-length temporaries, and nothing is copied when a panel already keeps the rules.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from rnnkit.data.timeline import (
    REGULAR_SHARE,
    combine,
    describe,
    frequency,
    missing_runs,
    positions,
    repeats,
    times_at,
    when,
    with_inserted,
)
from rnnkit.errors import DataError

CHUNK = 1 << 20  # rows per chunk of the checks
PANEL_FILLS = ("ffill", "drop")


class Identity:
    """Row numbers of a table that needed no sorting: row i is row i (no 8-byte-per-row array)."""

    def __getitem__(self, i: object) -> object:
        return i


def row_at(source: str, header: int, i: int) -> str:
    return f"row {i + 1}" + (f" (line {i + 1 + header})" if header > 0 else "")


def _grouped(codes: np.ndarray, times: np.ndarray) -> bool:
    """Whether rows are already grouped by series code and strictly increasing in time within
    each (checked in chunks: no full-length temporaries)."""
    for a in range(0, len(codes) - 1, CHUNK):
        c = codes[a : a + CHUNK + 1]
        t = times[a : a + CHUNK + 1]
        step = np.diff(c)
        if (step < 0).any() or not (t[1:][step == 0] > t[:-1][step == 0]).all():
            return False
    return True


def _first_repeat(codes: np.ndarray, times: np.ndarray) -> int:
    """First row whose (series, time) equals the next row's, or -1 (rows grouped and sorted)."""
    for a in range(0, len(codes) - 1, CHUNK):
        c, t = codes[a : a + CHUNK + 1], times[a : a + CHUNK + 1]
        same = np.flatnonzero((c[1:] == c[:-1]) & (t[1:] == t[:-1]))
        if len(same):
            return a + int(same[0])
    return -1


@dataclass
class Rows:
    """The rows of a panel between reading and assembly, grouped by series and sorted by time
    once ``_in_order`` has run. ``rows``: the source row of each (for messages)."""

    values: np.ndarray  # (rows, columns) float32, NaN = missing
    codes: np.ndarray  # series number of each row
    times: np.ndarray
    rows: np.ndarray | Identity
    uniques: pd.Index
    src: str
    header: int

    def where(self, i: int) -> str:
        return row_at(self.src, self.header, int(self.rows[i]))

    def series(self, i: int) -> str:
        return str(self.uniques[self.codes[i]])

    def when(self, i: int) -> str:
        return when(self.times[i]) if self.times.dtype.kind == "M" else str(self.times[i])

    def take(self, index: np.ndarray) -> None:
        rows = np.arange(len(self.codes)) if isinstance(self.rows, Identity) else self.rows
        self.values, self.codes, self.times = (self.values[index], self.codes[index],
                                               self.times[index])
        self.rows = rows[index]


def in_order(data: Rows, notes: list[str]) -> None:
    """Group rows by series (first appearance) and sort by time within each, stably. Most long
    tables already are: then no sort and no reordered copies (a panel of 50M rows would
    otherwise hold several of each at once)."""
    if _grouped(data.codes, data.times):
        return
    order = np.lexsort((data.times, data.codes))
    moved = int((order != np.arange(len(order))).sum())
    data.values, data.codes, data.times = (data.values[order], data.codes[order],
                                           data.times[order])
    data.rows = order
    notes.append(f"rows were not grouped by series in time order: sorted by series and time "
                 f"({moved} of {len(order)} rows moved)")


def one_row_per_time(data: Rows, duplicates: str | None, notes: list[str]) -> None:
    """Refuse a repeated (series, time) naming both rows, or combine the rows as asked."""
    j = _first_repeat(data.codes, data.times)
    if j < 0:
        return
    if duplicates is None:
        a, b = sorted((int(data.rows[j]), int(data.rows[j + 1])))
        raise DataError(f"{data.src}: series {data.series(j)} has two rows for time "
                        f"{data.when(j)} ({row_at(data.src, data.header, a)} and "
                        f"{row_at(data.src, data.header, b)}); keep one row per series and "
                        "time, or pass --duplicates first|last|mean to combine them.")
    again = repeats(data.times)
    again[1:] &= data.codes[1:] == data.codes[:-1]
    values, kept = combine(data.values, again, duplicates)
    first = data.series(j), data.when(j)
    data.take(kept)
    data.values = np.ascontiguousarray(values, dtype=np.float32)
    notes.append(f"combined {int(again.sum())} rows that repeat a (series, time) (first: series "
                 f"{first[0]} at {first[1]}) by --duplicates {duplicates}")


@dataclass(frozen=True)
class _Clock:
    """The panel's frequency, from its longest series: a pandas alias for datetimes, a step
    for whole-number times. Every series is checked against it."""

    start: np.ndarray  # the panel's first time (a numpy scalar)
    freq: str | None = None  # datetimes
    step: int = 1  # whole-number times
    allowance: int = 0  # missing periods in a row that are not a gap (holidays)

    @property
    def name(self) -> str:
        return describe(self.freq) if self.freq else f"{self.step} (whole-number times)"

    def positions(self, times: np.ndarray) -> np.ndarray:
        """Period number of each time from ``start``; -1 off the frequency."""
        if self.freq:
            return positions(times, self.start, self.freq)
        offset = times - self.start
        return np.where(offset % self.step == 0, offset // self.step, -1)

    def times(self, pos: np.ndarray) -> np.ndarray:
        if self.freq:
            return times_at(self.start, pos, self.freq).to_numpy(dtype="datetime64[ns]")
        return self.start + pos * self.step


def _longest(data: Rows) -> np.ndarray:
    """The times of the longest series (rows grouped by series)."""
    starts = np.searchsorted(data.codes, np.arange(len(data.uniques) + 1, dtype=data.codes.dtype))
    i = int(np.argmax(np.diff(starts)))
    return data.times[starts[i] : starts[i + 1]]


def _panel_clock(data: Rows, t: np.ndarray) -> _Clock | None:
    """The frequency of the longest series ``t``, or None when it has none (irregular)."""
    first = data.times.min()
    if data.times.dtype.kind == "M":
        clock = frequency(pd.DatetimeIndex(t))
        return None if clock.freq is None else _Clock(first, clock.freq, 1, clock.allowance)
    steps = np.diff(t)
    values, counts = np.unique(steps, return_counts=True)
    step = int(values[np.argmax(counts)])
    if step <= 0 or (steps % step).any() or counts.max() < REGULAR_SHARE * len(steps):
        return None
    return _Clock(first, None, step)


def _panel_gaps(data: Rows, clock: _Clock) -> tuple[np.ndarray, np.ndarray, int]:
    """``(after, sizes, off)``: rows followed by missing periods within their series and how
    many, checked in chunks (no full-length temporaries); ``off`` is the first row off the
    frequency, or -1."""
    after, sizes = [], []
    for a in range(0, len(data.codes), CHUNK):
        b = min(a + CHUNK + 1, len(data.codes))
        pos = clock.positions(data.times[a:b])
        off = np.flatnonzero(pos < 0)
        if off.size:
            return np.empty(0, np.int64), np.empty(0, np.int64), a + int(off[0])
        rows, missing = missing_runs(pos, clock.allowance)
        same = data.codes[a + rows] == data.codes[a + rows + 1]
        after.append(a + rows[same])
        sizes.append(missing[same])
    return np.concatenate(after), np.concatenate(sizes), -1


def on_frequency(data: Rows, fill: str | None, notes: list[str]) -> None:
    """Missing periods within a series count as missing values: refused without ``fill``;
    ``ffill`` inserts them carrying the last value over, ``drop`` leaves them out."""
    longest = _longest(data)
    if len(longest) < 3:  # too short to show a frequency
        return
    clock = _panel_clock(data, longest)
    after, sizes, off = (_panel_gaps(data, clock) if clock
                         else (np.empty(0, np.int64), np.empty(0, np.int64), 0))
    if clock is None or off >= 0:
        reason = (f"series {data.series(off)} at {data.when(off)} ({data.where(off)}) is not on "
                  f"the frequency {clock.name} of the longest series" if clock else
                  "its longest series has no regular frequency")
        notes.append(f"the panel's times are irregular ({reason}): training runs on row "
                     "positions")
        return
    if not len(after):
        return
    first = int(after[0])
    gap = (f"{int(sizes.sum())} missing period(s) of frequency {clock.name} in "
           f"{len(np.unique(data.codes[after]))} series, the first in series "
           f"{data.series(first)} from {_at(clock, data, first, 1)} to "
           f"{_at(clock, data, first, int(sizes[0]))}")
    if fill is None or fill not in PANEL_FILLS:
        raise DataError(f"{data.src}: {gap} (after {data.where(first)}); pass --fill ffill (carry "
                        "the last value over them) or --fill drop (leave them out), or add the "
                        "rows.")
    if fill == "drop":
        notes.append(f"{gap}: left out by --fill drop, so windows span the gaps")
        return
    new_pos, source, _ = with_inserted(clock.positions(data.times), after, sizes)
    data.take(source)
    data.times = clock.times(new_pos)
    notes.append(f"{gap}: inserted, carrying the last value of their series forward")


def _at(clock: _Clock, data: Rows, row: int, k: int) -> str:
    """The time ``k`` periods after row ``row``, for messages."""
    t = clock.times(clock.positions(data.times[row : row + 1]) + k)[0]
    return when(t) if data.times.dtype.kind == "M" else str(t)
