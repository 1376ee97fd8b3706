"""A panel's covariates known ahead, one row per data row, each column stored exactly in as few
bytes as its values allow.

Known covariates are often a handful of distinct values repeated over millions of rows: a
promotion or holiday flag, a price level, a one-hot weekday. Such a column is kept as
dictionary codes (uint8 up to 256 distinct values, int16 up to 32,768) into a float32 lookup of
its distinct values; any other column as plain float32. The distinct values are found by their
bits, so decoding gives back the very float32 that was stored (-0.0 stays -0.0): everything
computed from a coded column equals what the plain column gives. A 10,000-series panel of 500
rows holds a flag in 4.8 MB instead of 19.1 MB.

``KnownColumns`` is the numpy side (reading, subsets, the rows a forecast starts from);
``KnownTensors`` the torch side that windows read per batch (``data/panel_join.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

CHUNK = 1 << 20  # rows per chunk while coding: no full-length int64 temporaries
CODES = ((256, np.uint8), (1 << 15, np.int16))  # (distinct values at most, code type)


@dataclass(frozen=True)
class Column:
    """One column: ``data`` (rows,) float32 values, or codes into ``lookup`` (distinct,)
    float32."""

    data: np.ndarray
    lookup: np.ndarray | None = None

    def __getitem__(self, index: object) -> np.ndarray:
        """float32 values at ``index`` (a slice or an integer or boolean array)."""
        picked = self.data[index]
        return picked if self.lookup is None else self.lookup[picked]

    def subset(self, rows: np.ndarray) -> Column:
        """The rows ``rows`` (a boolean mask or row numbers), still coded."""
        return Column(np.ascontiguousarray(self.data[rows]), self.lookup)


def compact(values: np.ndarray) -> Column:
    """``values`` (rows,) float32 as codes when few distinct values allow it, else as they
    are (contiguous float32). A column of a wider array is read in place, not copied first."""
    # distinct by bits: exact, -0.0 apart from 0.0
    bits = np.asarray(values, dtype=np.float32).view(np.uint32)
    limit = CODES[-1][0]
    seen = np.empty(0, dtype=np.uint32)
    for a in range(0, len(bits), CHUNK):
        # a hash table per chunk (a sort of millions of rows costs seconds): a column of many
        # distinct values shows it in the first chunk
        found = pd.unique(bits[a : a + CHUNK])
        seen = np.union1d(seen, found) if len(found) <= limit else found
        if len(seen) > limit:
            return Column(np.ascontiguousarray(values, dtype=np.float32))
    kind = next(k for n, k in CODES if len(seen) <= n)
    codes = np.empty(len(bits), dtype=kind)
    for a in range(0, len(bits), CHUNK):
        codes[a : a + CHUNK] = np.searchsorted(seen, bits[a : a + CHUNK])
    return Column(codes, seen.view(np.float32))


@dataclass(frozen=True)
class KnownColumns:
    """The known covariates of every row, each a :class:`Column`."""

    columns: tuple[Column, ...]

    @classmethod
    def of(cls, block: np.ndarray) -> KnownColumns:
        """From ``block`` (rows, K) float32, each column compacted."""
        return cls(tuple(compact(block[:, j]) for j in range(block.shape[1])))

    def __len__(self) -> int:
        return len(self.columns)

    def take(self, index: object) -> np.ndarray:
        """(*rows, K) float32 values of the rows ``index`` (a slice or an integer array)."""
        return np.stack([c[index] for c in self.columns], axis=-1)

    def subset(self, rows: np.ndarray) -> KnownColumns:
        return KnownColumns(tuple(c.subset(rows) for c in self.columns))

    def recoded(self, rows: np.ndarray) -> KnownColumns:
        """The rows ``rows`` (row numbers: some left out, repeated or reordered), each column
        coded anew from its values there, one at a time: the very columns that coding those
        rows' values gives (a value no longer present leaves the lookup, a code type may
        narrow)."""
        return KnownColumns(tuple(compact(c[rows]) for c in self.columns))

    def select(self, picks: list[int]) -> KnownColumns:
        """Only the columns ``picks``, in that order (shared, not copied)."""
        return KnownColumns(tuple(self.columns[j] for j in picks))

    def nbytes(self) -> int:
        return sum(c.data.nbytes + (0 if c.lookup is None else c.lookup.nbytes)
                   for c in self.columns)

    def tensors(self, device: torch.device) -> KnownTensors:
        """The torch side on ``device`` (on CPU the arrays are shared, not copied)."""
        return KnownTensors(
            [torch.from_numpy(c.data).to(device) for c in self.columns],
            [None if c.lookup is None else torch.from_numpy(c.lookup).to(device)
             for c in self.columns])


@dataclass
class KnownTensors:
    """:class:`KnownColumns` as tensors: what a batch of windows reads."""

    data: list[torch.Tensor]
    lookup: list[torch.Tensor | None]

    def spans(self, starts: torch.Tensor, length: int) -> torch.Tensor:
        """(B, K, length) float32: rows ``starts .. starts + length - 1`` (B,) of every
        column, decoded."""
        out = []
        for data, lookup in zip(self.data, self.lookup, strict=True):
            rows = data.unfold(0, length, 1)[starts]  # (B, length), a gather of a view
            # codes index the lookup as long: a uint8 index would be read as a mask
            out.append(rows if lookup is None else lookup[rows.long()])
        return torch.stack(out, dim=1)
