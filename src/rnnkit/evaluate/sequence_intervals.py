"""Prediction intervals of independent sequences: fixed split conformal on the validation
sequences.

Sequences have no time order between them: a test sequence's error is exchangeable with a
validation sequence's, which is all split conformal needs (``intervals.calibrate``). The
adaptive kind steers each interval by the misses of the rows before it; between independent
sequences there is no "before", so a sequence run's intervals are split conformal whatever
``intervals`` its config names (the stored ``method`` says ``split``).

- seq2one: one half-width per level and target, from the validation sequences' absolute
  errors: widths (levels, 1, targets);
- continuation: one per step of the continuation, since errors grow as the model feeds on its
  own outputs: widths (levels, steps, targets).

The naive interval scored next to the model's is the training-mean baseline (the per-position
mean of the training targets, ``sequence_baselines``' ``"mean"``) ± the quantiles of its own
validation errors. The other sequence baseline, the last input value, is not used: the last
value of a sequence says nothing about, say, its sum.
"""

from __future__ import annotations

import numpy as np

from rnnkit.evaluate import intervals

NAIVE = "mean"  # the baseline the naive interval is built around, and its name in the metrics

Bounds = dict[int, tuple[np.ndarray, np.ndarray]]


def as_steps(a: np.ndarray) -> np.ndarray:
    """seq2one's (N, O) -> (N, 1, O); a continuation's (N, steps, O) as it is."""
    a = np.asarray(a, dtype=np.float64)
    return a[:, None, :] if a.ndim == 2 else a


def calibrate(truth: np.ndarray, pred: np.ndarray, naive: np.ndarray,
              levels: tuple[int, ...]) -> dict | None:
    """What ``config["intervals"]`` keeps: the model's half-widths (``direct``) and the naive
    ones, from validation ``truth``, the model's ``pred`` and the naive forecasts ``naive``
    ((N, O) or (N, steps, O)); None without levels or validation sequences."""
    direct = intervals.calibrate(as_steps(truth), as_steps(pred), levels)
    if direct is None:
        return None
    base = intervals.calibrate(as_steps(truth), as_steps(naive), levels)
    return {"method": "split", "direct": direct.to_json(),
            "naive": None if base is None else base.to_json()}


def _stored(config: dict, name: str) -> intervals.Calibration | None:
    found = intervals.stored(config).get(name)
    return found if isinstance(found, intervals.Calibration) else None


def bounds(config: dict, pred: np.ndarray) -> Bounds:
    """{level: (lo, hi)} around ``pred`` ((N, O) or (N, steps, O)), each shaped like it, from
    the calibration ``config`` holds; {} when it holds none."""
    cal = _stored(config, "direct")
    if cal is None:
        return {}
    shape = np.shape(pred)
    return {level: (lo.reshape(shape), hi.reshape(shape))
            for level, (lo, hi) in cal.bounds(as_steps(pred)).items()}


def score(truth: np.ndarray, model: Bounds, naive_pred: np.ndarray, config: dict) -> dict:
    """``metrics["intervals"]``: coverage, width and interval score of the model's intervals
    ``model`` and of the naive ones around ``naive_pred``, on the same ``truth``."""
    y = as_steps(truth)
    steps = {level: (as_steps(lo), as_steps(hi)) for level, (lo, hi) in model.items()}
    # the naive row is added here under its own name: score_intervals names its naive row
    # "last value", which is not the baseline a sequence's naive interval is built around
    out = intervals.score_intervals(y, steps, as_steps(naive_pred), None)
    base = _stored(config, "naive")
    if base is not None:
        for level, (lo, hi) in base.bounds(as_steps(naive_pred)).items():
            if str(level) in out:
                out[str(level)][NAIVE] = intervals.interval_scores(y, lo, hi, level)
    return out
