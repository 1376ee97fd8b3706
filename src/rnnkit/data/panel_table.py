"""The panel table: many series in one C-contiguous float32 buffer, series after series, with
``offsets`` marking where each starts, its covariates known ahead beside it (stored compactly)
and one row of static values per series. ``read_panel`` builds it; everything after reading
(scaling, windows, forecasts) takes its rows from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rnnkit.data.compact import KnownColumns
from rnnkit.data.statics import StaticColumns


@dataclass
class Panel:
    """Validated series of a long table in one buffer.

    values: (rows, targets + features) float32, finite; series after series, time ascending.
    offsets: (S + 1,) int64; series ``i`` is rows ``offsets[i]:offsets[i + 1]``.
    ids: the series ids (as text), in order of first appearance in the source.
    times: (rows,) datetime64[ns] or int64 time of every row.
    known: the covariates known ahead (``panel_covariates``), the columns after ``values``:
    their values per row are ``known_values``, each stored compactly (``data/compact.py``).
    static: one value per series of each static column (``data/statics.py``), or None.
    """

    values: np.ndarray
    offsets: np.ndarray
    ids: list[str]
    times: np.ndarray
    id_name: str
    time_name: str | None
    targets: list[str]
    features: list[str]
    source: str
    notes: list[str]
    known: list[str] = field(default_factory=list)
    static: StaticColumns | None = None
    known_values: KnownColumns | None = None

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def width(self) -> int:
        """Columns of a row: targets, features, then the known covariates."""
        return self.values.shape[1] + len(self.known)

    def rows_of(self, index: object) -> np.ndarray:
        """(*rows, width) float32: every column of the rows ``index`` (a slice or an integer
        array), the known covariates decoded."""
        base = self.values[index]
        if self.known_values is None:
            return base
        return np.concatenate([base, self.known_values.take(index)], axis=-1)

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, keep: np.ndarray) -> Panel:
        """The series where ``keep`` (S,) is True, in one new buffer."""
        if keep.all():
            return self
        rows = np.repeat(keep, self.lengths)
        lengths = self.lengths[keep]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return Panel(np.ascontiguousarray(self.values[rows]), offsets,
                     [i for i, k in zip(self.ids, keep, strict=True) if k], self.times[rows],
                     self.id_name, self.time_name, self.targets, self.features, self.source,
                     list(self.notes), list(self.known),
                     None if self.static is None else self.static.subset(keep),
                     None if self.known_values is None else self.known_values.subset(rows))
