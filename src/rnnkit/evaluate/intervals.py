"""Prediction intervals calibrated on the validation part: fixed split conformal (here) and the
adaptive kind (``adaptive.py``, the default), behind one pair of calls, ``around`` (forecasts
whose truth arrives row after row) and ``ahead`` (forecasts past the end).

For each level (say 80%), forecast step and target, the half-width is the
``ceil((n + 1) * 0.80)``-th smallest absolute residual of the n validation forecasts: if the
test errors are exchangeable with the validation errors, an interval ``forecast ± half-width``
covers the truth with probability at least 80%, whatever the model and the noise
(Vovk et al. 2005; Lei et al. 2018). Nothing here fits a distribution.

A panel pools its series: each residual is divided by its series' scale first, and the
half-width is multiplied back by the scale of the series it is used for. Forecasts further
ahead than any step calibrated widen as the square root of the step (a random walk's errors),
which the run's notes say; calibrated steps never do that.

The figures an evaluation reports for an interval: coverage (share of truths inside), mean
width, and the interval (Winkler) score: the width plus ``2 / (1 - level)`` times the distance by
which the truth falls outside (Gneiting & Raftery 2007); lower is better.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rnnkit.evaluate import learned
from rnnkit.evaluate.adaptive import Adaptive, extend

DEFAULT_LEVELS = (80, 95)


@dataclass
class Calibration:
    """Half-widths of split-conformal intervals.

    levels: interval levels in percent. widths: (levels, steps, targets) half-widths, in
    original units or, when ``per_series``, in units of each series' scale. points: how many
    validation forecasts each half-width rests on.
    """

    levels: list[int]
    widths: np.ndarray
    points: int
    per_series: bool = False

    @property
    def steps(self) -> int:
        return int(self.widths.shape[1])

    def half_widths(self, steps: int) -> np.ndarray:
        """(levels, steps, targets) half-widths for forecast steps 1..steps; steps past the
        calibrated ones grow as the square root of the step from the last calibrated one."""
        return extend(self.widths, steps)

    def bounds(self, pred: np.ndarray, scale: np.ndarray | None = None
               ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """{level: (lo, hi)} around forecasts ``pred`` (N, steps, targets); ``scale`` (N,
        targets) is each row's series scale for a per-series calibration."""
        w = self.half_widths(pred.shape[1])
        out = {}
        for i, level in enumerate(self.levels):
            half = w[i][None] if scale is None else w[i][None] * scale[:, None, :]
            out[level] = (pred - half, pred + half)
        return out

    def to_json(self) -> dict:
        return {"levels": list(self.levels), "widths": self.widths.tolist(),
                "points": self.points, "per_series": self.per_series}

    @classmethod
    def from_json(cls, d: dict) -> Calibration:
        widths = np.asarray(d["widths"], dtype=np.float64)
        if widths.ndim != 3 or widths.shape[0] != len(d["levels"]):
            raise ValueError(f"interval widths of shape {widths.shape} for levels {d['levels']}")
        return cls([int(v) for v in d["levels"]], widths, int(d["points"]),
                   bool(d.get("per_series", False)))


def calibrate(truth: np.ndarray, pred: np.ndarray, levels: list[int] | tuple[int, ...],
              scale: np.ndarray | None = None) -> Calibration | None:
    """Split-conformal half-widths from validation forecasts ``pred`` and their ``truth``
    (N, steps, targets); ``scale`` (N, targets) makes them per-series. None without data."""
    if len(truth) == 0 or not levels:
        return None
    scores = np.abs(np.asarray(truth, dtype=np.float64) - pred)
    if scale is not None:
        scores = scores / scale[:, None, :]
    n = len(scores)
    widths = np.stack([_conformal_quantile(scores, level / 100, n) for level in levels])
    return Calibration(list(levels), widths, n, scale is not None)


def _conformal_quantile(scores: np.ndarray, level: float, n: int) -> np.ndarray:
    """The ceil((n + 1) * level)-th smallest score along axis 0 (the largest when n is too
    small for the level: the interval is then as wide as the data allows, and says so by its
    points)."""
    rank = min(math.ceil((n + 1) * level), n)
    return np.sort(scores, axis=0)[rank - 1]


def interval_scores(truth: np.ndarray, lo: np.ndarray, hi: np.ndarray, level: int) -> dict:
    """Coverage (0..1), mean width and mean interval (Winkler) score of intervals [lo, hi]."""
    y = np.asarray(truth, dtype=np.float64)
    alpha = 1 - level / 100
    below, above = np.maximum(lo - y, 0.0), np.maximum(y - hi, 0.0)
    winkler = (hi - lo) + (2 / alpha) * (below + above)
    return {"coverage": float(np.mean((y >= lo) & (y <= hi))), "width": float(np.mean(hi - lo)),
            "winkler": float(np.mean(winkler)), "points": int(y.size)}


def score_intervals(truth: np.ndarray, model: dict[int, tuple[np.ndarray, np.ndarray]],
                    naive_pred: np.ndarray, naive_cal: Calibration | None,
                    scale: np.ndarray | None = None) -> dict:
    """``{"80": {"model": {...}, "last value": {...}}, ...}``: the model's intervals ``model``
    ({level: (lo, hi)}) and the naive ones (last value ± its own validation residual
    quantiles) on the same test truth."""
    naive = None if naive_cal is None else naive_cal.bounds(
        naive_pred, scale if naive_cal.per_series else None)
    out = {}
    for level, (lo, hi) in model.items():
        row = {"model": interval_scores(truth, lo, hi, level)}
        if naive is not None and level in naive:
            row["last value"] = interval_scores(truth, *naive[level], level)
        out[str(level)] = row
    return out


def around(cal: Calibration | Adaptive, pred: np.ndarray, truth: np.ndarray,
           group: np.ndarray, scale: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{level: (lo, hi)} of forecasts ``pred`` (N, H, O) whose ``truth`` becomes known one row
    after another (NaN where it never does), rows one apart within each ``group``; ``scale``
    (N, O) is each row's data scale. An adaptive calibration learns from the earlier rows."""
    if isinstance(cal, Adaptive):
        return cal.online(pred, truth, group, scale)
    return cal.bounds(pred, scale if cal.per_series else None)


def ahead(cal: Calibration | Adaptive, pred: np.ndarray, scale: np.ndarray,
          sigma: np.ndarray | None) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{level: (lo, hi)} of forecasts past the end (S, steps, O): ``scale`` (S, O) each series'
    data scale, ``sigma`` (S, O) its volatility now (adaptive calibrations only)."""
    if isinstance(cal, Adaptive):
        return cal.ahead(pred, cal.start(scale) if sigma is None else sigma)
    return cal.bounds(pred, scale if cal.per_series else None)


def format_intervals(metrics: dict) -> str:
    """Lines for the metrics table: coverage, width and interval score per level."""
    rows = metrics.get("intervals") or {}
    lines = []
    for level, row in rows.items():
        parts = []
        for name, s in row.items():
            parts.append(f"{name} covers {100 * s['coverage']:.1f}%, width {s['width']:.4g}, "
                         f"interval score {s['winkler']:.4g}")
        lines.append(f"{level}% interval: " + "; ".join(parts))
    return "\n".join(lines)


def stored(config: dict) -> dict[str, Calibration | Adaptive]:
    """The calibrations a run's config holds (``config["intervals"]``), by kind: ``direct``
    (each step of the horizon), ``rolled`` (forecast steps past the end), ``naive``."""
    found = config.get("intervals") or {}
    return {k: Adaptive.from_json(v) if v.get("kind") == "adaptive" else
            Calibration.from_json(v) for k, v in found.items()
            if isinstance(v, dict) and k != "method"}


def method_of(config: dict) -> str:
    """``adaptive`` or ``split``: how a run's intervals are calibrated (older runs: split);
    ``learned <loss>`` when they come from the distribution the model learned."""
    if learned.is_learned(config):
        return f"learned {learned.loss_of(config)}"
    return str(config.get("data", {}).get("intervals") or "split")


def held_out(config: dict, pred: np.ndarray, truth: np.ndarray, group: np.ndarray,
             scale: np.ndarray, naive_pred: np.ndarray,
             dist: Callable[[], learned.Predicted]) -> tuple[dict, dict]:
    """(metrics to add, bounds) of held-out forecasts ``pred`` (N, H, O) of known ``truth``:
    their intervals (from the learned distribution ``dist()``, or the calibrations) scored next
    to the naive interval's, and a learned run's CRPS or pinball loss."""
    out: dict = {}
    if learned.is_learned(config):
        d = dist()
        bounds = d.bounds(learned.levels(config))
        out["probabilistic"] = {"loss": learned.loss_of(config), **d.scores(truth)}
    else:
        bounds = with_truth(config, pred, truth, group, scale, dist)
    if bounds:
        out["intervals"] = score_intervals(truth, bounds, naive_pred,
                                           stored(config).get("naive"), scale)
    return out, bounds


def with_truth(config: dict, pred: np.ndarray, truth: np.ndarray, group: np.ndarray,
               scale: np.ndarray, dist: Callable[[], learned.Predicted]
               ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{level: (lo, hi)} of forecasts whose truth arrives row after row (NaN where it never
    does): the learned distribution's quantiles, or the direct calibration's intervals."""
    if learned.is_learned(config):
        return dist().bounds(learned.levels(config))
    cal = stored(config).get("direct")
    return {} if cal is None else around(cal, pred, truth, group, scale)


def levels_of(config: dict) -> tuple[int, ...]:
    """The interval levels a run was fitted with (``config["data"]["levels"]``)."""
    return tuple(config.get("data", {}).get("levels") or ())
