"""Forecast error metrics, pure numpy.

Every metric is computed in float64 on the flattened arrays; callers pass only the values that are
scored (no mask). ``e = y_pred - y_true``.

| name  | formula                                                       |
|-------|---------------------------------------------------------------|
| mse   | mean(e²)                                                      |
| rmse  | sqrt(mse)                                                     |
| mae   | mean(abs(e))                                                  |
| mape  | 100 * mean(abs(e) / abs(y)) over entries with abs(y) > 1e-8   |
| smape | 100 * mean(2 abs(e) / (abs(y) + abs(ŷ))), with 0/0 counted 0   |
| mase  | mae / mase_scale (scale from :func:`mase_scale` on training)  |

A metric that cannot be defined (mape with every target ≈ 0; mase without a positive scale; any
metric on empty input) is ``float('nan')`` rather than an error, so a table of results can still
be printed.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from rnnkit.errors import ConfigError, DataError

METRICS = ("mse", "rmse", "mae", "mape", "smape", "mase")

# Targets with abs(y) at or below this are left out of mape: the ratio would explode.
_MAPE_EPS = 1e-8


def compute_metrics(
    y_true: ArrayLike, y_pred: ArrayLike, *, mase_scale: float | None = None
) -> dict[str, float]:
    """Return every metric in :data:`METRICS` for one set of predictions.

    Args:
        y_true: targets, any shape.
        y_pred: predictions, the same shape as ``y_true``.
        mase_scale: the in-sample naive MAE of the training series (see :func:`mase_scale`);
            ``mase`` is NaN when it is None or not positive.

    Returns:
        ``{name: value}`` in the order of :data:`METRICS`, plain Python floats. ``mape`` is NaN
        when no target has ``abs(y) > 1e-8``; every metric is NaN on empty input.

    Raises:
        DataError: the two shapes differ.

    Example:
        >>> m = compute_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
        >>> m["mse"], m["mae"], round(m["mape"], 4)
        (0.3333333333333333, 0.3333333333333333, 11.1111)
    """
    true = np.asarray(y_true, dtype=np.float64)
    pred = np.asarray(y_pred, dtype=np.float64)
    if true.shape != pred.shape:
        raise DataError(
            f"compute_metrics got y_true of shape {true.shape} and y_pred of shape "
            f"{pred.shape}; expected the same shape. Pass predictions aligned with the targets."
        )
    true, pred = true.ravel(), pred.ravel()
    if true.size == 0:
        return dict.fromkeys(METRICS, math.nan)

    abs_err = np.abs(pred - true)
    mse = float(np.mean(abs_err**2))
    mae = float(np.mean(abs_err))

    scored = np.abs(true) > _MAPE_EPS
    mape = (
        float(np.mean(abs_err[scored] / np.abs(true[scored])) * 100) if scored.any() else math.nan
    )

    denom = np.abs(true) + np.abs(pred)
    # denom == 0 only when y == ŷ == 0: a perfect prediction, so its term is 0.
    ratio = np.divide(2 * abs_err, denom, out=np.zeros_like(abs_err), where=denom > 0)
    smape = float(np.mean(ratio) * 100)

    mase = mae / mase_scale if mase_scale is not None and mase_scale > 0 else math.nan
    return {
        "mse": mse,
        "rmse": math.sqrt(mse),
        "mae": mae,
        "mape": mape,
        "smape": smape,
        "mase": float(mase),
    }


def mase_scale(train: ArrayLike, m: int = 1) -> float | None:
    """Return the MASE denominator: ``mean(abs(y_t - y_{t-m}))`` over a 1-D training series.

    Args:
        train: the training part of the series, shape ``(n,)``.
        m: the seasonal lag of the naive forecast (1 = last value).

    Returns:
        The scale as a float, or None when the series has fewer than ``m + 1`` points or the
        scale is 0 (a constant series), so :func:`compute_metrics` reports ``mase`` as NaN.

    Raises:
        ConfigError: ``m < 1``.

    Example:
        >>> mase_scale([1.0, 2.0, 4.0])
        1.5
    """
    values = np.asarray(train, dtype=np.float64).ravel()
    if m < 1:
        raise ConfigError(f"mase_scale got m={m}; expected a lag >= 1. Pass m=1 or the period.")
    if values.size < m + 1:
        return None
    scale = float(np.mean(np.abs(values[m:] - values[:-m])))
    return scale if scale > 0 and math.isfinite(scale) else None
