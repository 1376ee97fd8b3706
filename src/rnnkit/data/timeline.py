"""The time column is the truth: rows become model steps in time order, one row per time, on a
regular frequency.

A window of W rows is W consecutive periods only when the rows are sorted, no time repeats and
no period is missing; otherwise every input/target pair built from it is silently wrong. So,
before any value is used: rows out of order are sorted (stably, with a note); a repeated time is
refused unless the user says how to combine it (``--duplicates first|last|mean``); the regular
frequency is inferred and missing periods count as missing values (refused unless ``--fill``).
An index with no frequency is irregular: it trains on row positions, with a note saying so,
and its forecasts are numbered steps after the last time rather than invented dates.

The frequency is pandas' own (``pd.infer_freq``) when the index is complete. When periods are
missing, pandas returns None, so the candidates the typical step suggests (business days,
anchored weeks, month/quarter/year starts and ends, fixed steps) are tried against the index.
Business days allow short runs of missing weekdays: market holidays are not gaps.

``read.py`` applies these rules to one series, ``panel.py`` to every series of a panel, and
``clock.py`` continues an index with the same frequency, so forecasts give trading days too
(without the holidays the data skips every year).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from rnnkit.data.validate import Origin
from rnnkit.errors import DataError

DUPLICATES = ("first", "last", "mean")
HOLIDAY_RUN = 3  # consecutive weekdays a business-day series may skip as holidays (not a gap)
HOLIDAY_SHARE = 0.1  # more skipped weekdays than this share of the span: not a business-day series
REGULAR_SHARE = 0.5  # at least this share of steps must be one period for a frequency to hold
_DAY = 86_400 * 10**9
_NAMES = {"D": "daily", "B": "business days", "h": "hourly", "min": "every minute",
          "MS": "month starts", "ME": "month ends", "BMS": "business month starts",
          "BME": "business month ends"}  # fmt: skip


def infer_freq(index: pd.DatetimeIndex) -> str | None:
    """``pd.infer_freq`` as a string on every pandas version. pandas 3 warns that it will return
    an offset object instead (a DeprecationWarning, an error under our test settings); we want
    the string for config.json either way, so silence that warning and take ``freqstr``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        freq = pd.infer_freq(index)
    return getattr(freq, "freqstr", freq)


def when(stamp: object) -> str:
    """A time for messages: ``2020-01-31`` (no ``00:00:00``), ``2020-01-31 10:30:00``, or 7."""
    if isinstance(stamp, np.datetime64 | pd.Timestamp | pd.Timedelta):
        return str(stamp if isinstance(stamp, pd.Timedelta) else pd.Timestamp(stamp)
                   ).removesuffix(" 00:00:00")
    return str(stamp)


def nanoseconds(index: pd.DatetimeIndex) -> np.ndarray:
    """int64 nanoseconds of every time (pandas 3 keeps a CSV's dates in seconds)."""
    return index.as_unit("ns").asi8


def describe(freq: str) -> str:
    """``'D' (daily)``: the pandas alias users can look up, with words for the common ones."""
    name = _NAMES.get(freq) or ("weekly" if freq.startswith("W-") else
                                "quarterly" if freq[:2] in ("QS", "QE") else
                                "yearly" if freq[:2] in ("YS", "YE") else "")
    return f"'{freq}' ({name})" if name else f"'{freq}'"


@dataclass(frozen=True)
class Frequency:
    """The regular frequency of a time index, or ``freq`` None when it is irregular."""

    freq: str | None
    holidays: int = 0  # business days: weekdays skipped in short runs (market holidays)

    @property
    def allowance(self) -> int:
        """Missing periods in a row that are not a gap."""
        return HOLIDAY_RUN if self.freq == "B" else 0


def frequency(index: pd.DatetimeIndex) -> Frequency:
    """The regular frequency of a sorted index without repeats (3 times or more), gaps allowed.

    Example:
        >>> days = pd.bdate_range("2021-01-04", periods=30).delete([5, 12])  # two holidays
        >>> frequency(days)
        Frequency(freq='B', holidays=2)
    """
    if len(index) < 3 or not (index.is_monotonic_increasing and index.is_unique):
        return Frequency(None)
    freq = infer_freq(index)
    if freq:
        return Frequency(freq)
    for candidate in _candidates(index):
        pos = positions(index, index[0], candidate)
        if (pos < 0).any():
            continue
        missing = np.diff(pos) - 1
        if candidate == "B":
            holidays = int(missing[(missing > 0) & (missing <= HOLIDAY_RUN)].sum())
            if holidays > HOLIDAY_SHARE * (pos[-1] + 1):
                continue
            regular = np.mean(missing <= HOLIDAY_RUN)
        else:
            holidays, regular = 0, np.mean(missing == 0)
        if regular >= REGULAR_SHARE:
            return Frequency(candidate, holidays)
    return Frequency(None)


def _candidates(index: pd.DatetimeIndex) -> list[str]:
    """The frequencies the typical step of ``index`` suggests, most specific first."""
    steps = np.diff(nanoseconds(index))
    values, counts = np.unique(steps, return_counts=True)
    mode = int(values[np.argmax(counts)])
    days = float(np.median(steps)) / _DAY
    first = index[0]
    month = first.month_name()[:3].upper()
    if 27 <= days <= 32:
        return ["MS", "ME", "BMS", "BME"]
    if 88 <= days <= 93:
        return [f"{kind}-{month}" for kind in ("QS", "QE", "BQS", "BQE")]
    if 364 <= days <= 367:
        return [f"{kind}-{month}" for kind in ("YS", "YE", "BYS", "BYE")]
    if mode == _DAY and (index.day_of_week < 5).all():
        return ["B"]
    if mode == 7 * _DAY:
        return [f"W-{first.day_name()[:3].upper()}"]
    if mode <= 0:
        return []
    if mode % _DAY == 0:
        return ["D" if mode == _DAY else f"{mode // _DAY}D"]
    return [to_offset(pd.Timedelta(mode)).freqstr]


def fixed_step(freq: str, tz: object = None) -> int | None:
    """Nanoseconds of one period when every period has the same length, else None (months,
    business days, anchored weeks; calendar days of a time-zone-aware index, across DST)."""
    if tz is not None:
        return None
    try:
        return int(pd.Timedelta(to_offset(freq)).value)
    except ValueError:
        return None


def positions(times: pd.DatetimeIndex | np.ndarray, start: object, freq: str) -> np.ndarray:
    """Period number of every time on the grid of ``freq`` that starts at ``start`` (int64;
    -1 for a time off that grid). ``times`` may not precede ``start``."""
    index = pd.DatetimeIndex(times)
    start = pd.Timestamp(start)
    ns = nanoseconds(index)
    step = fixed_step(freq, index.tz)
    if step is not None:
        offset = ns - start.value
        return np.where(offset % step == 0, offset // step, -1)
    grid = nanoseconds(pd.date_range(start, index.max(), freq=freq))
    if len(grid) == 0 or grid[0] != start.value:
        return np.full(len(ns), -1, dtype=np.int64)
    pos = np.minimum(np.searchsorted(grid, ns), len(grid) - 1)
    return np.where(grid[pos] == ns, pos, -1).astype(np.int64)


def times_at(start: object, pos: np.ndarray, freq: str, tz: object = None) -> pd.DatetimeIndex:
    """The times of grid periods ``pos`` (int64) of ``freq`` counted from ``start``."""
    step = fixed_step(freq, tz)
    if step is not None:
        return pd.DatetimeIndex(pd.Timestamp(start).value + pos * step, tz=tz)
    grid = pd.date_range(pd.Timestamp(start), periods=int(pos.max()) + 1, freq=freq)
    return grid[pos]


@dataclass
class Steps:
    """Rows of one series on their way to becoming steps.

    index: their times; values: ``(rows, columns)`` float64 (NaN = missing cell); rows: the
    0-based source row of each (-1 for a period inserted by ``--fill``); notes: what was done.
    """

    index: pd.DatetimeIndex
    values: np.ndarray
    rows: np.ndarray
    column: str
    notes: list[str] = field(default_factory=list)

    def take(self, keep: np.ndarray) -> None:
        self.index, self.values, self.rows = self.index[keep], self.values[keep], self.rows[keep]


def put_in_order(steps: Steps) -> None:
    """Sort rows by time (stable: rows with the same time keep their file order), with a note."""
    times = steps.index.asi8
    if (np.diff(times) >= 0).all():
        return
    order = np.argsort(times, kind="stable")
    moved = int((order != np.arange(len(order))).sum())
    steps.take(order)
    steps.notes.append(f"rows were not in time order: sorted by column '{steps.column}' "
                       f"({moved} of {len(order)} rows moved)")


def repeats(times: np.ndarray) -> np.ndarray:
    """``(rows,)`` True where a row has the same time as the row before it (sorted times)."""
    same = np.zeros(len(times), dtype=bool)
    same[1:] = times[1:] == times[:-1]
    return same


def combine(values: np.ndarray, again: np.ndarray, how: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows that repeat the time of the row before (``again``) merged into that row.

    Returns ``(values, kept)``: ``first`` and ``last`` keep one row of each time as it is (NaN
    included); ``mean`` averages each column over the rows that have a value (NaN when none).
    """
    starts = np.flatnonzero(~again)
    if how == "first":
        return values[starts], starts
    if how == "last":
        ends = np.append(starts[1:], len(again)) - 1
        return values[ends], starts
    present = ~np.isnan(values)
    sums = np.add.reduceat(np.where(present, values, 0.0), starts, axis=0)
    counts = np.add.reduceat(present, starts, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):  # no value at all: NaN, as missing
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan), starts


def missing_runs(pos: np.ndarray, allowance: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(after, sizes)``: the rows followed by missing periods (more than ``allowance`` in a
    row) and how many periods are missing after each."""
    missing = np.diff(pos) - 1
    after = np.flatnonzero(missing > allowance)
    return after, missing[after]


def with_inserted(pos: np.ndarray, after: np.ndarray, sizes: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows put on their frequency: ``(positions, source, inserted)`` with every missing
    period of the gaps inserted; ``source`` is the row each new row comes from (for an
    inserted period, the last row before it) and ``inserted`` marks the inserted periods."""
    grow = np.ones(len(pos), dtype=np.int64)
    grow[after] += sizes
    source = np.repeat(np.arange(len(pos)), grow)
    starts = np.cumsum(grow) - grow
    extra = np.arange(len(source)) - np.repeat(starts, grow)  # 0 for a row, 1.. inserted after
    return pos[source] + extra, source, extra > 0


# --- one series (read_table) -------------------------------------------------------------------
def settle(steps: Steps, origin: Origin, fill: str | None, duplicates: str | None) -> None:
    """Apply the three rules to one series in place: order, one row per time, frequency."""
    put_in_order(steps)
    one_row_per_time(steps, origin, duplicates)
    onto_frequency(steps, origin, fill)


def one_row_per_time(steps: Steps, origin: Origin, duplicates: str | None) -> None:
    """Refuse a repeated time naming it and its rows, or combine the rows as asked."""
    again = repeats(steps.index.asi8)
    if not again.any():
        return
    first = int(np.argmax(again))
    stamp = when(steps.index[first])
    dates = int((again & ~np.append(again[1:], False)).sum())  # one per run of repeats
    if duplicates is None:
        end = first + 1
        while end < len(again) and again[end]:
            end += 1
        a, b, *more = sorted(int(r) for r in steps.rows[first - 1 : end])
        extra = f" and {len(more)} more" if more else ""
        also = f"; {dates - 1} more times repeat too" if dates > 1 else ""
        raise DataError(
            f"{origin.source}: time column '{steps.column}' has {stamp} more than once "
            f"({origin.row(a)} and {origin.row(b)}{extra}){also}; keep one row per time, or "
            f"pass --duplicates first|last|mean (duplicates='first'|'last'|'mean') to combine "
            f"them."
        )
    values, kept = combine(steps.values, again, duplicates)
    merged = int(again.sum())
    steps.index, steps.rows, steps.values = steps.index[kept], steps.rows[kept], values
    how = {"first": "kept the first row", "last": "kept the last row",
           "mean": "averaged the rows"}[duplicates]
    steps.notes.append(f"{dates} time(s) had more than one row (first {stamp}); {how} of each "
                       f"(--duplicates {duplicates}), {merged} rows fewer")


def onto_frequency(steps: Steps, origin: Origin, fill: str | None) -> None:
    """Find the frequency; refuse missing periods without ``fill``, else insert them as missing
    values (``drop`` leaves them out), or note that the index is irregular."""
    index = steps.index
    clock = frequency(index)
    if clock.freq is None:
        if len(index) >= 3:
            gaps = np.diff(nanoseconds(index))
            span = [when(pd.Timedelta(int(g))) for g in (gaps.min(), gaps.max())]
            steps.notes.append(  # a forecast date would be a guess: clock.py numbers them
                f"column '{steps.column}' has no regular frequency (steps from {span[0]} to "
                f"{span[1]}): it is irregular, so training runs on row positions and forecasts "
                f"are numbered by steps after the last time ({when(index[-1])}), not dated")
        return
    if clock.holidays:
        steps.notes.append(f"column '{steps.column}' holds business days: {clock.holidays} "
                           f"missing weekday(s) are taken as holidays, not gaps")
    pos = positions(index, index[0], clock.freq)  # all on the grid: frequency() checked
    after, sizes = missing_runs(pos, clock.allowance)
    if not len(after):
        return
    total, first = int(sizes.sum()), int(after[0])
    gap = (f"{total} missing period(s) of frequency {describe(clock.freq)} in {len(after)} "
           f"gap(s), the first from {when(_period(index, pos, first, 1, clock.freq))} to "
           f"{when(_period(index, pos, first, int(sizes[0]), clock.freq))}")
    if fill is None:
        raise DataError(
            f"{origin.source}: time column '{steps.column}' has {gap} (after "
            f"{origin.row(int(steps.rows[first]))}); pass --fill interpolate|ffill|drop "
            f"(fill='interpolate'|'ffill'|'drop') to fill them, or add the missing rows."
        )
    if fill == "drop":
        steps.notes.append(f"{gap}: left out by --fill drop, so windows span the gaps")
        return
    _reindex(steps, pos, after, sizes, clock.freq)
    steps.notes.append(f"{gap}: inserted as missing values, filled below")


def _period(index: pd.DatetimeIndex, pos: np.ndarray, row: int, k: int, freq: str
            ) -> pd.Timestamp:
    """The time ``k`` periods after row ``row``."""
    return times_at(index[0], np.array([pos[row] + k]), freq, index.tz)[0]


def _reindex(steps: Steps, pos: np.ndarray, after: np.ndarray, sizes: np.ndarray,
             freq: str) -> None:
    """Put the series on its frequency: a NaN row for every missing period of the gaps."""
    new_pos, source, inserted = with_inserted(pos, after, sizes)
    values = steps.values[source]
    values[inserted] = np.nan
    rows = np.where(inserted, -1, steps.rows[source])
    index = times_at(steps.index[0], new_pos, freq, steps.index.tz)
    steps.index, steps.values, steps.rows = index.rename(steps.index.name), values, rows
