"""Read a table of numbers from a file, DataFrame, Series, array or list, checked before use.

``read_table`` is the one entry point. It either returns a :class:`Table` whose ``values`` are
finite float32, or raises :class:`~rnnkit.errors.DataError` with a one-line message naming the
source, column, 1-based data row (and file line), the offending value and the fix. Parser errors
from csv, pandas or Unicode decoding never escape as such.

The time column is the truth (docs/dates.md): rows are sorted by it, a repeated time or a missing
period stops the read unless ``duplicates``/``fill`` say what to do, and an index without a
regular frequency is noted as irregular. Booleans are numbers (0/1) only in a boolean-dtype
column; a DataFrame's DatetimeIndex is kept as the index when no time column is used.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from rnnkit.data.dates import looks_like_dates, parse_dates
from rnnkit.data.sources import Raw, load
from rnnkit.data.timeline import DUPLICATES, Steps, settle, when
from rnnkit.data.validate import (
    FILLS,
    apply_fill,
    looks_numeric,
    show,
    to_float,
)
from rnnkit.errors import ConfigError, DataError, did_you_mean

# A first column with one of these (lower-cased) names is taken as time when its values parse.
TIME_NAMES = frozenset(
    ("date", "time", "datetime", "timestamp", "ds", "month", "year", "quarter", "week", "day",
     "period")
)  # fmt: skip


@dataclass
class Table:
    """Validated numbers ready for a model.

    Attributes:
        values: ``(n_rows, n_targets + n_features + n_known)`` float32, all finite,
            C-contiguous; targets first, then features, then future-known covariates.
        targets: target column names, in the order the user gave.
        features: feature column names: covariates observed up to each row only.
        index: ``DatetimeIndex`` when a time column (or a DataFrame's DatetimeIndex) was used,
            else ``RangeIndex(n_rows)``. Times rise strictly (rows were sorted, no time repeats).
        source: display name: the file path as given, ``"<DataFrame>"``, ``"<array>"``, ...
        notes: sentences about what was done (time column used, rows sorted, duplicates
            combined, missing periods inserted, values filled, rows dropped).
    """

    values: np.ndarray
    targets: list[str]
    features: list[str]
    index: pd.Index
    source: str
    notes: list[str]
    # covariates known ahead (the user's future features, then calendar columns): the last
    # columns of ``values``; added by ``data.covariates.attach``, never by the reader
    known: list[str] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        """Names of the columns of ``values``: targets, features, known covariates."""
        return self.targets + self.features + self.known

    def head(self, rows: int) -> Table:
        """The first ``rows`` rows: the same series cut earlier."""
        return replace(self, values=self.values[:rows], index=self.index[:rows])


def read_table(
    source: str | Path | pd.DataFrame | pd.Series | np.ndarray | list,
    target: str | Sequence[str] | None = None,
    features: str | Sequence[str] | None = None,
    time: str | None = None,
    fill: str | None = None,
    duplicates: str | None = None,
) -> Table:
    """Read and validate a table of numbers.

    Args:
        source: a path to ``.csv``/``.txt`` (delimiter sniffed among ``, ; tab |``), ``.tsv``
            (tab) or ``.parquet``/``.pq`` (needs pyarrow); other suffixes are read as CSV. Or a
            DataFrame, a Series (column named after it, or ``"value"``), a 1-D array or list
            (column ``"value"``) or a 2-D one (columns ``"x0"``, ``"x1"``, ...).
        target: column name(s) to predict. None: the only numeric column left once the time
            column and features are set aside, else DataError listing the numeric columns.
        features: extra numeric input columns. Default none.
        time: column parsed as dates and used as the index (not a value). None: the first column
            is used when it is not a target or feature and is named like a time (``date``,
            ``month``, ``year``, ``quarter``, ...) or holds non-numeric strings that all parse as
            dates; when that parse fails the rows are just numbered.
        fill: what to do with missing cells in the chosen columns: None (error), ``"ffill"``,
            ``"interpolate"`` or ``"drop"``. Infinity is never filled. Missing periods of a
            regular time index count as missing cells: the table is first put on its frequency
            (a row per missing period), then filled; ``"drop"`` leaves them out.
        duplicates: rows with the same time: None (error naming the time and rows),
            ``"first"``, ``"last"`` or ``"mean"`` (one row per time).

    Returns:
        Table with float32 ``values`` of shape ``(rows, len(targets) + len(features))``.

    Raises:
        DataError: the input cannot be used as given (see the message).
        ConfigError: ``fill`` or ``duplicates`` is not one of the policies above.

    Example:
        >>> read_table([1.0, 2.5, 4.0]).values.shape
        (3, 1)
    """
    _check_policy("fill", fill, FILLS)
    _check_policy("duplicates", duplicates, DUPLICATES)
    fast = _clean_array(source, target, features, time)
    if fast is not None:
        return fast
    try:
        raw = load(source)
        return _select(raw, _as_names(target), _as_names(features), time, fill, duplicates)
    except DataError as error:
        message = str(error)
        if message.isprintable():
            raise
        # Names and cells can hold line breaks or control characters; messages stay one line.
        escaped = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
        raise DataError(escaped) from None


def _check_policy(name: str, value: str | None, choices: tuple[str, ...]) -> None:
    if value is not None and value not in choices:
        expected = ", ".join(repr(c) for c in choices)
        raise ConfigError(
            f"{name}={value!r} is not supported; expected one of None, {expected}."
            f"{did_you_mean(str(value), choices)}"
        )


def _as_names(names: str | Sequence[str] | None) -> list[str]:
    if names is None:
        return []
    if isinstance(names, str) or not isinstance(names, Iterable):
        return [str(names)]  # a DataFrame's column may be named 0
    return [str(name) for name in names]


def _select(
    raw: Raw, targets: list[str], features: list[str], time: str | None, fill: str | None,
    duplicates: str | None,
) -> Table:
    """Choose the time, target and feature columns of ``raw`` and validate their cells."""
    targets = [_resolve(raw, name, "target") for name in targets]
    features = [_resolve(raw, name, "features") for name in features]
    notes: list[str] = []
    time_column, index = _time_index(raw, time, targets + features, notes)
    if not targets:
        targets = [_guess_target(raw, {time_column, *features})]
    chosen = targets + features
    for name in chosen:
        if chosen.count(name) > 1:
            raise DataError(
                f"{raw.source}: column '{name}' is requested twice (as target and/or feature); "
                f"name each column once."
            )
    matrix = np.column_stack([to_float(raw.columns[n], n, raw.origin) for n in chosen])
    rows = None
    if index is not None:
        steps = Steps(index, matrix, np.arange(len(matrix)), _label(time_column, index))
        settle(steps, raw.origin, fill, duplicates)
        index, matrix, rows = steps.index, steps.values, steps.rows
        notes += steps.notes
    matrix, kept, fill_notes = apply_fill(matrix, chosen, fill, raw.origin, rows)
    values = np.ascontiguousarray(matrix, dtype=np.float32)  # in range: to_float checked
    if not np.isfinite(values).all():  # guards the contract; the checks above should prevent it
        raise DataError(f"{raw.source}: values are not finite after validation; please report.")
    if index is None:
        index = pd.RangeIndex(len(kept))
    elif len(kept) < len(index):
        index = index[kept]
    return Table(values, targets, features, index, raw.source, notes + fill_notes)


def _label(time_column: str | None, index: pd.DatetimeIndex) -> str:
    """How messages name the time: its column, or a DataFrame's index by its name."""
    if time_column is not None:
        return time_column
    return "index" if index.name is None else str(index.name)


def _resolve(raw: Raw, name: str, role: str) -> str:
    """Return the header name matching ``name`` (exactly, else ignoring spaces) or raise."""
    if name in raw.columns:
        return name
    if name.strip() in raw.columns:
        return name.strip()
    hint = ""
    if not raw.sniffed:
        for delimiter in ";\t|":
            if any(delimiter in column for column in raw.names):
                hint = f" Hint: the file may use {delimiter!r} as delimiter, not ','."
                break
    suggestion = did_you_mean(name, raw.names) or "."
    raise DataError(
        f"column '{name}' not found in {raw.source}; available: [{', '.join(raw.names)}]"
        f"{suggestion} Pass one of these names as --{role}/{role}=.{hint}"
    )


def _time_index(
    raw: Raw, time: str | None, requested: list[str], notes: list[str]
) -> tuple[str | None, pd.DatetimeIndex | None]:
    """Return ``(time column or None, DatetimeIndex or None)``, explicit or auto-detected."""
    if time is not None:
        name = _resolve(raw, str(time), "time")
        if name in requested:
            raise DataError(
                f"{raw.source}: column '{name}' cannot be both the time column and a "
                f"target/feature; pass another time= column."
            )
        index, bad = parse_dates(raw.columns[name], notes)
        if index is None:
            raise DataError(
                f"{raw.source}: time column '{name}' {raw.origin.row(bad)} has "
                f"{show(raw.columns[name][bad])}, which is not a date; expected dates like "
                f"2020-01-31, 2020-01, 1959Q1 or 1871. Fix the cell or pass another time= column."
            )
        return name, index.rename(name)
    first = raw.names[0]
    cells = raw.columns[first]
    if first in requested:
        return None, raw.index
    by_name = first.strip().lower() in TIME_NAMES
    if not by_name and not looks_like_dates(cells):
        return None, raw.index
    index, bad = parse_dates(cells, notes)
    if index is None:
        if by_name:
            notes.append(
                f"column '{first}' was not used as time index: {raw.origin.row(bad)} has "
                f"{show(cells[bad])}, which is not a date; rows are numbered instead"
            )
        return None, raw.index
    span = f"{when(index.min())} to {when(index.max())}"
    notes.append(f"used column '{first}' as time index ({span})")
    return first, index.rename(first)


def _guess_target(raw: Raw, exclude: set[str | None]) -> str:
    """Return the only candidate column, or the only numeric one, or raise."""
    candidates = [name for name in raw.names if name not in exclude]
    if len(candidates) == 1:
        return candidates[0]
    numeric = [name for name in candidates if looks_numeric(raw.columns[name])]
    if len(numeric) == 1:
        return numeric[0]
    found = f"no numeric column among [{', '.join(candidates)}]"
    if numeric:
        found = f"{len(numeric)} numeric columns [{', '.join(numeric)}]"
    raise DataError(
        f"{raw.source}: cannot tell which column to predict: {found}; pass --target NAME "
        f"(target='NAME' in Python)."
    )


def _clean_array(source: object, target: object, features: object, time: object
                 ) -> Table | None:
    """A 1-D numeric array with only finite float32-range values, taken as it is.

    The general path copies every column to float64 cells to find bad values; for a clean
    array of 10**7 points that is several times the series' own memory. Anything not clean
    (or any column selection) goes the general way, so errors read the same.
    """
    if (not isinstance(source, np.ndarray) or source.ndim != 1 or source.dtype.kind not in "fiu"
            or source.size == 0 or features or time is not None
            or target not in (None, "value", ["value"])):
        return None
    values = source.astype(np.float32, copy=False)
    if not np.isfinite(values).all():
        return None
    return Table(np.ascontiguousarray(values).reshape(-1, 1), ["value"], [],
                 pd.RangeIndex(len(values)), "<array>", [])
