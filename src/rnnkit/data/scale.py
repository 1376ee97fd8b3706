"""Per-column scalers, fit on the training split only and inverted on every output.

Statistics are computed in float64 and stored as plain lists so they serialise to JSON.
A column with zero spread gets scale 1 (rule 7 of RELIABILITY.md: never divide by zero).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnkit.errors import ConfigError

CHUNK = 1 << 20  # rows per float64 chunk when scaling long series


def _moments(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation per column in float64, two passes over chunks."""
    n = v.shape[0]
    total = np.zeros(v.shape[1])
    for s in range(0, n, CHUNK):
        total += v[s : s + CHUNK].sum(axis=0, dtype=np.float64)
    mean = total / n
    sq = np.zeros(v.shape[1])
    for s in range(0, n, CHUNK):
        sq += ((v[s : s + CHUNK].astype(np.float64) - mean) ** 2).sum(axis=0)
    return mean, np.sqrt(sq / n)


@dataclass
class Scaler:
    """``x_scaled = (x - shift) / scale`` per column.

    kind: ``standard`` (mean, std), ``minmax`` (maps the training range to [-1, 1]) or ``none``.
    """

    kind: str
    shift: list[float]
    scale: list[float]

    @classmethod
    def fit(cls, kind: str, values: np.ndarray) -> Scaler:
        """Fit on ``values`` (rows, columns); NaN-free input is the caller's contract."""
        v = np.asarray(values)
        if v.ndim == 1:
            v = v[:, None]
        cols = v.shape[1]
        if kind == "none" or v.shape[0] == 0:
            return cls(kind, [0.0] * cols, [1.0] * cols)
        if kind == "standard":
            shift, scale = _moments(v)
        elif kind == "minmax":
            lo, hi = v.min(axis=0).astype(np.float64), v.max(axis=0).astype(np.float64)
            shift = (lo + hi) / 2
            scale = (hi - lo) / 2
        else:
            raise ConfigError(f"scaler={kind!r} is not supported; use standard, minmax or none.")
        # Near-zero spread relative to the level would blow tiny noise up to unit size.
        flat = ~(scale > 1e-12 * np.maximum(1.0, np.abs(shift)))
        scale = np.where(flat, 1.0, scale)
        return cls(kind, shift.tolist(), scale.tolist())

    def _arrays(self, cols: slice | list[int] | None) -> tuple[np.ndarray, np.ndarray]:
        shift = np.asarray(self.shift, dtype=np.float64)
        scale = np.asarray(self.scale, dtype=np.float64)
        if cols is not None:
            shift, scale = shift[cols], scale[cols]
        return shift, scale

    def transform(self, x: np.ndarray, cols: slice | list[int] | None = None) -> np.ndarray:
        """Scale the last axis of ``x`` (columns ``cols`` of the fitted ones); float32 out.
        Computed in float64 chunk by chunk, so no full float64 copy of a long series exists."""
        shift, scale = self._arrays(cols)
        x = np.asarray(x)
        out = np.empty(x.shape, dtype=np.float32)
        flat_in, flat_out = x.reshape(-1, x.shape[-1]), out.reshape(-1, x.shape[-1])
        for s in range(0, max(len(flat_in), 1), CHUNK):
            flat_out[s : s + CHUNK] = (flat_in[s : s + CHUNK].astype(np.float64) - shift) / scale
        return out

    def inverse(self, x: np.ndarray, cols: slice | list[int] | None = None) -> np.ndarray:
        """Undo ``transform`` on the last axis; float64 out (what users see)."""
        shift, scale = self._arrays(cols)
        return np.asarray(x, dtype=np.float64) * scale + shift

    def to_json(self) -> dict:
        return {"kind": self.kind, "shift": self.shift, "scale": self.scale}

    @classmethod
    def from_json(cls, d: dict) -> Scaler:
        return cls(str(d["kind"]), [float(s) for s in d["shift"]], [float(s) for s in d["scale"]])
