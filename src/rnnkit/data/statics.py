"""Static covariates of a panel: columns that describe a series, not a step (store size, region).

They are read once per series (``read_statics``: a long table repeats them on every row, and a
value that changes within a series is refused, since it would be a feature), kept per series
and never per row: a 10,000-series panel holds 10,000 values of each, not one per row. The
pipeline joins them to the inputs of every step of a window when a batch is gathered.

How each is encoded (``Statics``):

- **Numeric** columns are scaled over the series (each series counts once): the centre and
  spread are those of the per-series values, so a store size in square metres and a share
  in [0, 1] reach the network at the same scale.
- **Text** (or categorical, or boolean) columns are categories, sorted by label and numbered;
  the network embeds each (``models/network.py``). The code reaches the model as the middle of
  its bucket in (0, 1), ``(code + 0.5) / categories``: bounded like every other input, so the
  linear path and its least-squares start read it as a number of the usual size, and the
  embedding reads the code back exactly (``floor(x * categories)``).

Example:
    >>> cols = StaticColumns(["region"], [np.array(["north", "south", "north"], dtype=object)])
    >>> enc = Statics.fit(cols)
    >>> enc.categories, enc.encode(cols, "<data>", ["a", "b", "c"])[:, 0].tolist()
    ((('north', 'south'),), [0.25, 0.75, 0.25])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rnnkit.data.panel_time import row_at
from rnnkit.data.validate import show
from rnnkit.errors import DataError, did_you_mean

CHUNK = 1 << 20  # rows per chunk of the constancy check: no full-length temporaries
SHOWN = 10  # known categories named in a message, at most


@dataclass
class StaticColumns:
    """The static columns of a panel's series as read: one value per series, numbers
    (float64) for a numeric column, text labels (object) for a categorical one."""

    names: list[str]
    values: list[np.ndarray]  # each (S,)

    def numeric(self, j: int) -> bool:
        return self.values[j].dtype.kind == "f"

    def subset(self, keep: np.ndarray) -> StaticColumns:
        """The series where ``keep`` (S,) is True (or the rows it numbers)."""
        return StaticColumns(list(self.names), [v[keep] for v in self.values])

    def column(self, name: str) -> np.ndarray | None:
        return self.values[self.names.index(name)] if name in self.names else None


def read_statics(frame: pd.DataFrame, names: Sequence[str], codes: np.ndarray, series: int,
                 where: tuple[str, int], ids: pd.Index) -> StaticColumns:
    """One value per series (numbered by ``codes``, (rows,)) of each static column of
    ``frame``, checked: every row has one, and it is the same on every row of its series.
    ``where``: (source, lines before data row 1) for messages; ``ids``: the series' ids."""
    values = []
    for name in names:
        col = frame[name]
        numeric = (pd.api.types.is_numeric_dtype(col.dtype)
                   and not pd.api.types.is_bool_dtype(col.dtype))
        if numeric:
            cells, labels = col.to_numpy(dtype=np.float64, na_value=np.nan), None
        elif isinstance(col.dtype, pd.CategoricalDtype):
            cells, labels = col.array.codes, col.cat.categories
        else:  # text, booleans, mixed: categories by their text
            cells, labels = pd.factorize(col, sort=False)
        per = _per_series(cells, codes, series, name, where, ids, labels)
        if labels is None:
            values.append(per)
        else:
            text = np.asarray([str(x) for x in labels] + [""], dtype=object)
            values.append(text[per.astype(np.int64)])  # code -1 (no rows): ""
    return StaticColumns(list(names), values)


def _per_series(cells: np.ndarray, codes: np.ndarray, series: int, name: str,
                where: tuple[str, int], ids: pd.Index, labels: pd.Index | None
                ) -> np.ndarray:
    """(S,) the value of each series: numbers, or category codes (-1 for a series without
    rows). A missing cell, or two values in one series, is a one-line DataError."""
    src, header = where
    floats = cells.dtype.kind == "f"
    ref = np.full(series, np.nan if floats else -1, dtype=cells.dtype)
    for a in range(0, len(cells), CHUNK):
        part, sel = cells[a : a + CHUNK], codes[a : a + CHUNK]
        gone = np.flatnonzero(np.isnan(part) if floats else part < 0)
        if len(gone):
            i = a + int(gone[0])
            raise DataError(f"{src}: static column '{name}' has no value for series "
                            f"{ids[codes[i]]} ({row_at(src, header, i)}); a static column "
                            "needs its value on every row of every series.")
        before = ref[sel]  # the value of each row's series in earlier chunks
        seen = ~np.isnan(before) if floats else before >= 0
        ref[sel] = part  # the last row of each series in this chunk
        differs = np.flatnonzero((seen & (part != before)) | (part != ref[sel]))
        if len(differs):
            i = a + int(differs[0])
            other = before[differs[0]] if seen[differs[0]] else ref[codes[i]]
            one, two = (cells[i], other) if labels is None else (labels[cells[i]],
                                                                 labels[other])
            raise DataError(
                f"{src}: static column '{name}' is not constant within series {ids[codes[i]]}"
                f": it has {show(one)} and {show(two)} ({row_at(src, header, i)}); a static column "
                "holds one value per series, so give it one, or pass the column as a feature "
                "(--features).")
    return ref


def embedding_size(categories: int) -> int:
    """Width of the embedding of a column of ``categories`` values: ``categories - 1``
    numbers already tell them apart linearly (more only add parameters), the square root
    keeps a large table small (parameters grow as n^1.5, not n^2), and 16 caps it so one
    column of store codes does not outweigh the window's own inputs in a network of 4 to 32
    units.

    Example:
        >>> [embedding_size(n) for n in (2, 4, 10, 100, 10_000)]
        [1, 2, 4, 10, 16]
    """
    return max(1, min(categories - 1, int(np.ceil(np.sqrt(categories))), 16))


@dataclass(frozen=True)
class Statics:
    """How a run turns static columns into inputs: numeric ones scaled by ``center`` and
    ``spread`` (over the training series), categorical ones coded by ``categories`` (sorted
    labels). Inputs come numeric first, then the categorical codes (the last inputs of every
    step, which the network embeds)."""

    numeric: tuple[str, ...] = ()
    center: tuple[float, ...] = ()
    spread: tuple[float, ...] = ()
    categorical: tuple[str, ...] = ()
    categories: tuple[tuple[str, ...], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.numeric or self.categorical)

    @property
    def names(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    @property
    def width(self) -> int:
        """Inputs per step they add."""
        return len(self.numeric) + len(self.categorical)

    @property
    def sizes(self) -> tuple[int, ...]:
        """Categories of each categorical column."""
        return tuple(len(c) for c in self.categories)

    @classmethod
    def fit(cls, columns: StaticColumns | None) -> Statics:
        """The encoding of ``columns`` (the training panel's series)."""
        if columns is None:
            return cls()
        num = [j for j in range(len(columns.names)) if columns.numeric(j)]
        cat = [j for j in range(len(columns.names)) if not columns.numeric(j)]
        center, spread = [], []
        for j in num:
            v = columns.values[j]
            mean, std = float(np.mean(v)), float(np.std(v))
            center.append(mean)
            spread.append(std if std > 0 and np.isfinite(std) else 1.0)  # one value: as is
        return cls(tuple(columns.names[j] for j in num), tuple(center), tuple(spread),
                   tuple(columns.names[j] for j in cat),
                   tuple(tuple(sorted({str(x) for x in columns.values[j]})) for j in cat))

    def encode(self, columns: StaticColumns, source: str, ids: Sequence[str],
               fallback: np.ndarray | None = None) -> np.ndarray:
        """(S, width) float32 inputs of the series of ``columns``. A column the data does not
        have comes from ``fallback`` (S, width), the run's own inputs of these series; an
        unknown category is a one-line DataError."""
        out = np.empty((len(ids), self.width), dtype=np.float32)
        for j, name in enumerate(self.names):
            given = columns.column(name)
            if given is None:
                if fallback is None:
                    raise DataError(f"{source}: no static column {name!r}; give it, one value "
                                    "per series.")
                out[:, j] = fallback[:, j]
            elif j < len(self.numeric):
                out[:, j] = (np.asarray(given, dtype=np.float64) - self.center[j]
                             ) / self.spread[j]
            else:
                out[:, j] = self._codes(j - len(self.numeric), given, source, ids)
        return out

    def _codes(self, j: int, labels: np.ndarray, source: str, ids: Sequence[str]
               ) -> np.ndarray:
        """Each label's code as the middle of its bucket in (0, 1)."""
        known = self.categories[j]
        pos = {c: i for i, c in enumerate(known)}
        codes = np.array([pos.get(str(x), -1) for x in labels], dtype=np.float64)
        if (codes < 0).any():
            i = int(np.argmax(codes < 0))
            shown = ", ".join(known[:SHOWN]) + (f" and {len(known) - SHOWN} more"
                                               if len(known) > SHOWN else "")
            raise DataError(f"{source}: static column '{self.categorical[j]}' has category "
                            f"{show(str(labels[i]))} (series {ids[i]}), which the run was not "
                            f"trained on; known categories: {shown}. Use one of them, or fit "
                            f"again with it.{did_you_mean(str(labels[i]), known)}")
        return (codes + 0.5) / len(known)

    def to_json(self) -> dict:
        return {"numeric": list(self.numeric), "center": list(self.center),
                "spread": list(self.spread), "categorical": list(self.categorical),
                "categories": [list(c) for c in self.categories]}

    @classmethod
    def from_json(cls, d: dict | None) -> Statics:
        d = d or {}
        return cls(tuple(d.get("numeric", ())), tuple(float(x) for x in d.get("center", ())),
                   tuple(float(x) for x in d.get("spread", ())),
                   tuple(d.get("categorical", ())),
                   tuple(tuple(str(x) for x in c) for c in d.get("categories", ())))
