"""The checks behind ``read_table``: text file structure, numbers and missing values.

Every function here raises :class:`~rnnkit.errors.DataError` with a one-line message naming the
source, the column, the 1-based data row (and the file line where there is one), the offending
value and the fix. ``rnnkit.data.read`` opens sources and chooses columns; this module checks.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

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
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


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
        if isinstance(first, str) and NUMBER.fullmatch(first.strip().replace(",", ".", 1)):
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
