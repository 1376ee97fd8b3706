"""Per-column scalers, fit on the training split only and inverted on every output.

Statistics are computed in float64 and stored as plain lists so they serialise to JSON.
A column with zero spread gets scale 1 (rule 7 of RELIABILITY.md: never divide by zero).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnkit.errors import ConfigError


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
        v = np.asarray(values, dtype=np.float64)
        if v.ndim == 1:
            v = v[:, None]
        cols = v.shape[1]
        if kind == "none" or v.shape[0] == 0:
            return cls(kind, [0.0] * cols, [1.0] * cols)
        if kind == "standard":
            shift = v.mean(axis=0)
            scale = v.std(axis=0)
        elif kind == "minmax":
            lo, hi = v.min(axis=0), v.max(axis=0)
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
        """Scale the last axis of ``x`` (columns ``cols`` of the fitted ones); float32 out."""
        shift, scale = self._arrays(cols)
        return ((np.asarray(x, dtype=np.float64) - shift) / scale).astype(np.float32)

    def inverse(self, x: np.ndarray, cols: slice | list[int] | None = None) -> np.ndarray:
        """Undo ``transform`` on the last axis; float64 out (what users see)."""
        shift, scale = self._arrays(cols)
        return np.asarray(x, dtype=np.float64) * scale + shift

    def to_json(self) -> dict:
        return {"kind": self.kind, "shift": self.shift, "scale": self.scale}

    @classmethod
    def from_json(cls, d: dict) -> Scaler:
        return cls(str(d["kind"]), [float(s) for s in d["shift"]], [float(s) for s in d["scale"]])
