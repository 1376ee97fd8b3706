"""The checks behind ``read_table``: text file structure, numbers, dates and missing values.

Every function here raises :class:`~rnnkit.errors.DataError` with a one-line message naming the
source, the column, the 1-based data row (and the file line where there is one), the offending
value and the fix. ``rnnkit.data.read`` opens sources and chooses columns; this module checks.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.tseries.api import guess_datetime_format

from rnnkit.errors import DataError

FILLS = ("ffill", "interpolate", "drop")
# pandas' default NA strings, compared case-insensitively ('NULL', 'Null', '-NAN' are missing too).
NA_STRINGS = frozenset(
    s.lower()
    for s in (
        "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "+nan", "1.#IND",
        "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
    )
)  # fmt: skip
SHOWN_ROWS = 10
_DELIMITERS = ",;\t|"
_SNIFF_LINES = 50
_F64_MAX = float(np.finfo(np.float64).max)
_YEAR = re.compile(r"\d{4}")
_QUARTER = re.compile(r"(\d{4})\s*-?\s*[Qq]([1-4])")
_DATEUTIL_ROWS = 10_000  # beyond this, parsing dates cell by cell with dateutil takes seconds
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


@dataclass(frozen=True)
class Origin:
    """Where cells came from: display name, and the 1-based file line of each data row."""

    source: str  # file path as given, "<DataFrame>", "<array>", ...
    lines: np.ndarray | None = None  # None for in-memory data

    def row(self, i: int) -> str:
        """Return ``"row 5 (line 6)"`` for 0-based row ``i`` (``"row 5"`` without a file)."""
        if self.lines is None:
            return f"row {i + 1}"
        return f"row {i + 1} (line {int(self.lines[i])})"


def show(cell: object, limit: int = 40) -> str:
    """Return ``repr(cell)`` cut to about ``limit`` characters, for messages."""
    if isinstance(cell, np.generic):
        cell = cell.item()
    text = repr(cell.strip() if isinstance(cell, str) else cell)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def row_list(rows: Sequence[int] | np.ndarray) -> str:
    """Return ``"rows 3, 7, 9 and 12 more"`` (1-based) for 0-based ``rows``; ``"row 3"`` for one."""
    rows = [int(r) for r in rows]
    head = ", ".join(str(r + 1) for r in rows[:SHOWN_ROWS])
    more = f" and {len(rows) - SHOWN_ROWS} more" if len(rows) > SHOWN_ROWS else ""
    return f"{'row' if len(rows) == 1 else 'rows'} {head}{more}"


def check_names(names: list[str], label: str) -> None:
    """Raise DataError naming the first duplicate column name."""
    seen: dict[str, int] = {}
    for j, name in enumerate(names):
        if name in seen:
            raise DataError(
                f"{label}: duplicate column name '{name}' (columns {seen[name] + 1} and {j + 1}); "
                f"rename one of them."
            )
        seen[name] = j


def parse_text(
    text: str, display: str, delimiter: str | None
) -> tuple[list[str], dict[str, np.ndarray], Origin, bool]:
    """Split the text of a delimited file into string cells per column.

    ``delimiter`` None sniffs it among ``, ; tab |`` (``','`` when unsure). Returns ``(names,
    columns, origin, sniffed)``; ``origin.lines`` holds the file line of each data row. Blank
    lines are skipped, except inside a one-column file where they are missing cells.

    Raises:
        DataError: a header without rows, a duplicate column name, a row with more or fewer
            fields than the header, or broken quoting (naming the line).
    """
    sniffed = True
    if delimiter is None:
        delimiter, sniffed = sniff(text)
    header, rows, lines = _split_rows(text, delimiter, display)
    if not rows:
        raise DataError(
            f"{display}: file has a header but 0 data rows; expected rows of values below it."
        )
    origin = Origin(display, np.asarray(lines, dtype=np.int64))
    cells = list(zip(*rows, strict=True))
    columns = {name: np.array(cells[j], dtype=object) for j, name in enumerate(header)}
    return header, columns, origin, sniffed


def sniff(text: str) -> tuple[str, bool]:
    """Guess the delimiter among ``, ; tab |`` from the first lines; ``(',', False)`` if unsure."""
    lines = [line for line in text.splitlines()[: _SNIFF_LINES * 2] if line.strip()]
    sample = "\n".join(lines[:_SNIFF_LINES])
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        return ",", False
    # The sniffer only looks at character counts; a delimiter absent from the header is a misread.
    if delimiter not in lines[0]:
        return ",", False
    return delimiter, True


def _split_rows(text: str, delimiter: str, display: str) -> tuple[list[str], list, list[int]]:
    """Return ``(header, rows, file line of each row)``; ragged rows raise DataError."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, skipinitialspace=True)
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    blank: list[int] = []  # blank lines of a one-column file: missing cells unless trailing
    line = 1
    try:
        for fields in reader:
            start, line = line, reader.line_num + 1
            is_blank = not fields or (len(fields) == 1 and not fields[0].strip())
            if header is None:
                if not is_blank:
                    header = [name.strip() or f"Unnamed: {j}" for j, name in enumerate(fields)]
                    check_names(header, display)
                continue
            if is_blank:
                if len(header) == 1:
                    blank.append(start)
                continue
            if blank:
                rows.extend([""] for _ in blank)
                lines.extend(blank)
                blank = []
            if len(fields) != len(header):
                raise DataError(
                    f"{display}: line {start} (row {len(rows) + 1}) has {len(fields)} fields but "
                    f"the header has {len(header)}; check for a missing or extra {delimiter!r} "
                    f"(quote values that contain it)."
                )
            rows.append(fields)
            lines.append(start)
    except csv.Error as error:
        raise DataError(
            f"{display}: line {reader.line_num} cannot be parsed as CSV ({error}); check the "
            f"quoting of that line."
        ) from None
    return header or [], rows, lines


def _numbers(cells: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Return float64 per cell (NaN = missing) and the 0-based rows that are not numbers."""
    if cells.dtype == np.float64:
        return cells, []
    array = np.full(len(cells), np.nan)
    bad: list[int] = []
    for i, cell in enumerate(cells):
        if isinstance(cell, str):
            text = cell.strip()
            if text.lower() not in NA_STRINGS:
                try:
                    array[i] = float(text)
                except ValueError:
                    bad.append(i)
        elif isinstance(cell, bool | np.bool_):  # only a whole boolean column counts as 0/1
            bad.append(i)
        elif isinstance(cell, int | float | np.integer | np.floating):
            try:
                array[i] = float(cell)
            except OverflowError:  # an int too big for float64 is finite: report it as huge
                array[i] = _F64_MAX if cell > 0 else -_F64_MAX
        elif not (cell is None or cell is pd.NA or cell is pd.NaT):
            bad.append(i)
    return array, bad


def looks_numeric(cells: np.ndarray) -> bool:
    """Return True when every non-missing cell is a number and at least one is present."""
    array, bad = _numbers(cells)
    return not bad and not np.isnan(array).all()


def to_float(cells: np.ndarray, column: str, origin: Origin) -> np.ndarray:
    """Convert one column's cells to float64; NaN marks a missing cell.

    Missing cells are empty strings, pandas' NA strings (``NaN``, ``NA``, ``null``, ``#N/A``, ...),
    ``None``, NaN and ``pd.NA``. Booleans are numbers (0/1) only as a whole boolean-dtype column,
    which arrives here as float64; a lone ``True`` among other cells is not a number.

    Raises:
        DataError: a cell is not a number, is infinite (``inf``, ``-Infinity``, ``1e400``) or is
            finite but beyond float32 range (``3e39``); the first offending row is named.
    """
    array, bad = _numbers(cells)
    if bad:
        more = f" ({len(bad) - 1} more non-numeric cells in this column)" if len(bad) > 1 else ""
        first = cells[bad[0]]
        if isinstance(first, str) and _NUMBER.fullmatch(first.strip().replace(",", ".", 1)):
            more += " (a decimal comma? write 1.5, not 1,5)"
        raise DataError(
            f"{origin.source}: column '{column}' {origin.row(bad[0])} has "
            f"{show(first)}, which is not a number{more}; expected numbers only. "
            f"Fix the cell, or leave it empty and pass --fill, or choose another column."
        )
    _check_range(array, cells, column, origin)
    return array


def _check_range(array: np.ndarray, cells: object, column: str, origin: Origin) -> None:
    """Raise on infinity, then on finite values that float32 cannot hold."""
    infinite = np.flatnonzero(np.isinf(array))
    if infinite.size:
        i = int(infinite[0])
        raise DataError(
            f"{origin.source}: column '{column}' contains infinity at {origin.row(i)}: "
            f"{show(cells[i])} ({row_list(infinite)}); expected finite numbers. Replace it with "
            f"a number (infinity is never filled by --fill)."
        )
    with np.errstate(over="ignore"):  # the overflow to inf is exactly what is being detected
        too_big = np.flatnonzero(np.isinf(array.astype(np.float32)))
    if too_big.size:
        i = int(too_big[0])
        raise DataError(
            f"{origin.source}: column '{column}' {origin.row(i)} has {show(cells[i])}, which is "
            f"beyond float32 range (|x| <= 3.4028235e38); rescale the column (for example divide "
            f"by 1e30) before using it."
        )


def looks_like_dates(cells: np.ndarray) -> bool:
    """Return True for datetime cells, or strings of which none is missing or a plain number."""
    if cells.dtype.kind == "M":
        return True
    sample = [c.strip() if isinstance(c, str) else "" for c in cells[:1000]]  # the parse decides
    return cells.dtype == object and all(
        t.lower() not in NA_STRINGS and not _NUMBER.fullmatch(t) for t in sample
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
        if text.lower() in NA_STRINGS or (_NUMBER.fullmatch(text) and not _YEAR.fullmatch(text)):
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


def apply_fill(
    values: np.ndarray, columns: list[str], fill: str | None, origin: Origin,
    rows: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Handle the missing (NaN) cells of a ``(rows, columns)`` matrix by the ``fill`` policy.

    ``ffill`` carries the last value forward and drops leading rows with nothing to carry;
    ``interpolate`` is linear in row order, the nearest value covering leading and trailing gaps;
    ``drop`` removes the rows. ``rows``: the 0-based source row of each matrix row (rows were
    sorted by time), -1 for a period inserted by the time rules; default: the matrix's own order.
    Returns ``(values, kept_rows, notes)``: the matrix without NaN, the 0-based matrix rows it
    keeps, and one sentence per action.

    Raises:
        DataError: missing cells with ``fill`` None (rows listed, ``--fill`` suggested), a column
            with no value at all, or no rows left.
    """
    missing = np.isnan(values)
    order = np.arange(len(values))
    source = order if rows is None else rows
    holes = [j for j in range(len(columns)) if missing[:, j].any()]
    if not holes:
        return values, order, []
    if fill is None:
        _refuse_missing(missing, columns, holes, source, origin)
    if fill == "drop":
        return _drop_missing(values, missing, columns, holes, source, origin)
    for j in holes:
        if missing[:, j].all():
            raise DataError(
                f"{origin.source}: column '{columns[j]}' has only missing values ({len(values)} "
                f"rows), so there is nothing to {fill} from; fix the data or choose another column."
            )
    # Forward fill has nothing to carry before a column's first value: those rows are dropped.
    start = max(int(np.argmin(missing[:, j])) for j in holes) if fill == "ffill" else 0
    values = values.copy()
    notes = [_fill_column(values, missing, j, columns[j], start, fill, source) for j in holes]
    if start:
        notes.append(
            f"dropped the first {start} rows ({_source_rows(source[:start])}): there was no "
            f"earlier value to carry forward"
        )
    return values[start:], order[start:], [note for note in notes if note]


def _source_rows(rows: np.ndarray) -> str:
    """``"rows 3, 7"`` for the source rows, ``"30 inserted periods; row 7"`` with -1s."""
    inserted = int((rows < 0).sum())
    real = np.sort(rows[rows >= 0])
    listed = row_list(real) if real.size else ""
    if not inserted:
        return listed
    return f"{inserted} inserted periods" + (f"; {listed}" if listed else "")


def _refuse_missing(missing: np.ndarray, columns: list[str], holes: list[int],
                    source: np.ndarray, origin: Origin) -> None:
    where = np.sort(source[np.flatnonzero(missing[:, holes[0]])])
    also = "".join(f"; column '{columns[k]}' too" for k in holes[1:])
    raise DataError(
        f"{origin.source}: column '{columns[holes[0]]}' has {where.size} missing value(s) at "
        f"{row_list(where)}{also}; fill them with --fill ffill|interpolate|drop "
        f"(fill='ffill'|'interpolate'|'drop') or fix the data."
    )


def _drop_missing(values: np.ndarray, missing: np.ndarray, columns: list[str],
                  holes: list[int], source: np.ndarray, origin: Origin
                  ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    keep = ~missing.any(axis=1)
    if not keep.any():
        raise DataError(
            f"{origin.source}: no data rows left after dropping missing values (all "
            f"{len(values)} rows miss a value); fix the data or use --fill ffill|interpolate."
        )
    named = ", ".join(f"'{columns[j]}'" for j in holes)
    dropped = source[~keep]
    note = f"dropped {dropped.size} rows with missing values in column(s) {named}"
    return values[keep], np.flatnonzero(keep), [f"{note} ({_source_rows(dropped)})"]


def _fill_column(values: np.ndarray, missing: np.ndarray, j: int, column: str, start: int,
                 fill: str, source: np.ndarray) -> str:
    """Fill column ``j`` of ``values`` in place from row ``start`` on; return the note."""
    gaps = np.flatnonzero(missing[start:, j]) + start
    present = np.flatnonzero(~missing[:, j])
    if fill == "interpolate":
        values[gaps, j] = np.interp(gaps, present, values[present, j])
    else:
        last = np.maximum.accumulate(np.where(missing[:, j], -1, np.arange(len(values))))
        values[gaps, j] = values[last[gaps], j]
    if not gaps.size:
        return ""
    how = "linear interpolation" if fill == "interpolate" else "forward fill"
    return (f"filled {gaps.size} missing values in column '{column}' by {how} "
            f"({_source_rows(source[gaps])})")
