"""Date columns: which cells are dates, and reading them, day-first or month-first as the data
says (a field above 12 is a day). Years and quarters ("2020", "2020Q1") are dates too.

Used by both readers (``data/read.py`` for a series, ``data/read_panel.py`` for a panel), so a date
means the same in both.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
from pandas.tseries.api import guess_datetime_format

from rnnkit.data.validate import NA_STRINGS, NUMBER, show

_YEAR = re.compile(r"\d{4}")
_QUARTER = re.compile(r"(\d{4})\s*-?\s*[Qq]([1-4])")
_DATEUTIL_ROWS = 10_000  # beyond this, parsing dates cell by cell with dateutil takes seconds


def looks_like_dates(cells: np.ndarray) -> bool:
    """Return True for datetime cells, or strings of which none is missing or a plain number."""
    if cells.dtype.kind == "M":
        return True
    sample = [c.strip() if isinstance(c, str) else "" for c in cells[:1000]]  # the parse decides
    return cells.dtype == object and all(
        t.lower() not in NA_STRINGS and not NUMBER.fullmatch(t) for t in sample
    )


def parse_dates(cells: np.ndarray, notes: list[str] | None = None
                ) -> tuple[pd.DatetimeIndex | None, int]:
    """Parse a column as dates; return ``(index, -1)`` or ``(None, first_bad_row)``.

    Four-digit integers are years (``1871`` -> 1871-01-01), ``1959Q1`` is a quarter start, other
    strings go to ``pd.to_datetime`` with the format inferred from the first cell, else ISO 8601
    of any precision. Missing cells and plain numbers that are not years are not dates.
    Day-first and month-first (``13/01/2020``, ``01/13/2020``) are told apart by the data: a
    field above 12 is the day. When no cell decides, month-first is read and a sentence is
    added to ``notes``; when neither order reads every cell, the first cell that fails the
    order the rest decided is the bad row.
    """
    if cells.dtype.kind == "M":
        return _valid(pd.DatetimeIndex(cells))
    texts = [_date_text(cell) for cell in cells]
    for i, text in enumerate(texts):
        if text.lower() in NA_STRINGS or (NUMBER.fullmatch(text) and not _YEAR.fullmatch(text)):
            return None, i
    if all(_YEAR.fullmatch(text) for text in texts):
        return _to_datetime(texts, "%Y")
    quarters = [_QUARTER.fullmatch(text) for text in texts]
    if all(quarters):
        return _to_datetime([f"{q[1]}-{3 * int(q[2]) - 2:02d}-01" for q in quarters if q], None)
    with warnings.catch_warnings():
        # pandas warns (from Cython, where an error cannot propagate) that '31/12/2020' reads
        # day first; the format guessed is what we want to know, not the advice
        warnings.simplefilter("ignore")
        guessed = guess_datetime_format(texts[0])
    swapped = _swap_day_month(guessed)
    if guessed is not None and swapped is not None:
        return _day_or_month_first(texts, guessed, swapped, notes)
    if guessed is None and len(texts) > _DATEUTIL_ROWS:
        return _to_datetime(texts, "ISO8601")
    index, bad = _to_datetime(texts, guessed)  # None: dateutil cell by cell
    if index is None:
        # ISO 8601 allows mixed precision ('2020-01-01', '2020-01-01 10:00'); 'mixed' is not used
        # because it would read 01/02 month-first and 13/02 day-first in the same column.
        index = _to_datetime(texts, "ISO8601")[0]
    return index, bad


def _swap_day_month(fmt: str | None) -> str | None:
    """``%d/%m/%Y`` for ``%m/%d/%Y`` and back: formats where day and month both come before
    the year, the ones a cell alone cannot always decide. None for the others (ISO 8601)."""
    if fmt is None or "%d" not in fmt or "%m" not in fmt:
        return None
    year = max(fmt.find("%Y"), fmt.find("%y"))
    if year < 0 or max(fmt.index("%d"), fmt.index("%m")) > year:
        return None
    return fmt.replace("%d", "\0").replace("%m", "%d").replace("\0", "%m")


def _day_or_month_first(texts: list[str], fmt: str, other: str, notes: list[str] | None
                        ) -> tuple[pd.DatetimeIndex | None, int]:
    """The reading of ``fmt`` or ``other`` (day and month swapped) that parses every cell."""
    one, bad_one = _to_datetime(texts, fmt)
    two, bad_two = _to_datetime(texts, other)
    if one is None or two is None:
        # the later failure is the cell that contradicts what the earlier cells decided
        return (one, -1) if one is not None else (two, -1) if two is not None else (
            None, max(bad_one, bad_two))
    month_first = (one, fmt) if fmt.index("%m") < fmt.index("%d") else (two, other)
    if notes is not None and not one.equals(two):
        notes.append(f"dates such as {show(texts[0])} read month first ({month_first[1]}): no "
                     f"day above 12 tells day and month apart; write them as YYYY-MM-DD to be "
                     f"sure")
    return month_first[0], -1


def _date_text(cell: object) -> str:
    """Return a cell as stripped text ('' when missing; 1871.0 becomes '1871')."""
    if isinstance(cell, str):
        return cell.strip()
    if cell is None or cell is pd.NA or cell is pd.NaT or cell != cell:
        return ""
    return str(int(cell)) if isinstance(cell, float) and cell.is_integer() else str(cell)


def _to_datetime(texts: list[str], fmt: str | None) -> tuple[pd.DatetimeIndex | None, int]:
    """``pd.to_datetime`` that reports the first unparsable row instead of warning or raising."""
    with warnings.catch_warnings():
        # 'could not infer format' is expected for odd inputs; NaT rows are reported instead.
        warnings.simplefilter("ignore")
        try:
            index = pd.to_datetime(texts, format=fmt, errors="coerce")
        except (ValueError, TypeError, OverflowError):  # e.g. mixed time zones
            return None, 0
    return _valid(index) if isinstance(index, pd.DatetimeIndex) else (None, 0)


def _valid(index: pd.DatetimeIndex) -> tuple[pd.DatetimeIndex | None, int]:
    missing = np.flatnonzero(index.isna())
    return (None, int(missing[0])) if missing.size else (index, -1)
