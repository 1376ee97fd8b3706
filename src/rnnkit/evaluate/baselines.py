"""Baselines printed next to every model.

Two interfaces:

* :func:`forecast_baselines` — origin-based forecasts of one univariate series in original units,
  shape ``(N, horizon)`` like the model's forecasts at the same origins.
* :func:`sequence_baselines` — per-sample predictions for problems that are not one series
  (sequence classification/regression), shape ``(n, *S)`` like the targets.

Every fitted quantity (the mean, the AR coefficients) uses only the training part, so changing
values after ``train_end`` never changes a baseline's parameters. The linear AR is fitted by
the same least-squares routine that starts a model's linear path (``models/least_squares``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

from rnnkit.data.pairs import series_windows
from rnnkit.errors import ConfigError, DataError
from rnnkit.models.least_squares import AR_ORDERS, AR_RIDGES, RIDGE, moments, solve

_CHUNK = 65_536  # AR windows held at once: memory stays flat on long series


class LinearAR(NamedTuple):
    """A direct multi-output linear AR map, in original units.

    ``forecast[k] = intercept[k] + window @ coef[:, k]`` where ``window`` holds the ``order``
    values ``series[o-order+1 .. o]`` (oldest first) and ``k`` is the 0-based step.

    Attributes:
        coef: ``(order, horizon)``.
        intercept: ``(horizon,)``.
        order: the number of past values actually used (may be lower than asked).
    """

    coef: np.ndarray
    intercept: np.ndarray
    order: int


def _check_series(series: np.ndarray, train_end: int) -> np.ndarray:
    values = np.asarray(series, dtype=np.float64)
    if values.ndim != 1:
        raise DataError(
            f"Baselines got a series of shape {values.shape}; expected one univariate series of "
            "shape (n,). Pass one column at a time."
        )
    if not 1 <= train_end <= values.size:
        raise ConfigError(
            f"Baselines got train_end={train_end} for a series of {values.size} values; expected "
            f"1 <= train_end <= {values.size}. Pass the number of training values."
        )
    return values


def _windows(series: np.ndarray, origins: np.ndarray, order: int) -> np.ndarray:
    """Return ``(N, order)`` windows ``series[o-order+1 .. o]``, padded with ``series[0]``."""
    padded = np.concatenate([np.full(order - 1, series[0]), series])
    # padded[o + order - 1] is series[o], so the window ending at o starts at padded[o].
    return sliding_window_view(padded, order)[origins]


def fit_linear_ar(series: np.ndarray, horizon: int, train_end: int, order: int,
                  ridge: float = RIDGE) -> LinearAR | None:
    """Fit the direct multi-output AR(order) map on the training part only.

    Training rows are every origin ``o`` with ``o - order + 1 >= 0`` and
    ``o + horizon < train_end``: the inputs and all ``horizon`` targets lie in
    ``series[:train_end]``. When there are fewer than ``2 * (order + 1)`` rows the order is
    lowered (down to 1) so the least-squares problem stays well-posed; None when even AR(1) has
    too few rows.

    The fit is :func:`rnnkit.models.least_squares.least_squares`, the same ridge-stabilised
    least squares (on centred windows, so a large offset or constant stretches stay stable)
    that starts a model's linear path.

    Args:
        series: ``(n,)`` values in original units.
        horizon: number of steps forecast per origin, >= 1.
        train_end: number of leading values that may be used for fitting.
        order: the number of past values ``p`` asked for, >= 1.

    Returns:
        A :class:`LinearAR`, or None when the training part is too short.

    Example:
        >>> y = 0.5 ** np.arange(12.0)  # y_t = 0.5 y_{t-1}, exactly
        >>> ar = fit_linear_ar(y, horizon=1, train_end=12, order=1)
        >>> round(float(ar.coef[0, 0]), 6), ar.order
        (0.5, 1)
    """
    fits = _ar_fits(_check_series(series, train_end), horizon, train_end, order, (ridge,))
    return None if fits is None else fits[0]


def _ar_fits(values: np.ndarray, horizon: int, train_end: int, order: int,
             ridges: tuple[float, ...]) -> list[LinearAR] | None:
    """:func:`fit_linear_ar` at each of ``ridges``, from one pass over the training windows
    (the normal equations do not depend on the ridge)."""
    if horizon < 1 or order < 1:
        raise ConfigError(
            f"fit_linear_ar got horizon={horizon}, order={order}; expected both >= 1."
            " Pass positive integers."
        )
    # rows = train_end - horizon - p + 1 >= 2 (p + 1)  <=>  p <= (train_end - horizon - 1) / 3
    order = min(order, (train_end - horizon - 1) // 3)
    if order < 1:
        return None
    train = torch.from_numpy(np.ascontiguousarray(values[:train_end]))[:, None]  # (rows, 1)
    # windows are views of the training part: a long series is never copied window by window
    m = moments(series_windows(train, 1, order, horizon, range(order - 1, train_end - horizon)))
    return [LinearAR(coef=c.numpy(), intercept=i.numpy(), order=order)
            for c, i in (solve(m, ridge) for ridge in ridges)]  # (p, h), (h,)


def choose_ar(series: np.ndarray, horizon: int, train_end: int, val_end: int,
              also: tuple[int | None, ...] = ()) -> LinearAR | None:
    """The linear AR whose order and ridge (``AR_ORDERS`` and the orders ``also``, such as
    the model's window and the period, x ``AR_RIDGES``) give the lowest
    RMSE on the validation rows ``series[train_end:val_end]``, each fitted on the training
    rows only; None when the training part is too short for AR(1).

    Every forecast scored has its targets inside the validation rows (origins ``train_end - 1``
    to ``val_end - horizon - 1``); without any, AR(1) with the smallest ridge.
    """
    values = _check_series(series, train_end)
    origins = np.arange(train_end - 1, val_end - horizon)
    truth = values[origins[:, None] + np.arange(1, horizon + 1)] if origins.size else None
    best: tuple[float, LinearAR] | None = None
    tried: set[int] = set()
    for order in sorted(set(AR_ORDERS) | {int(a) for a in also if a}):
        fits = _ar_fits(values, horizon, train_end, order, AR_RIDGES)
        if fits is None or fits[0].order in tried:
            break  # too short, or lowered to an order already tried
        if truth is None:
            return fits[0]
        for ar in fits:
            err = float(np.mean((_ar_forecasts(values, origins, horizon, ar) - truth) ** 2))
            if best is None or err < best[0]:
                best = (err, ar)
        tried.add(fits[0].order)
    return None if best is None else best[1]


def _check_origins(values: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    starts = np.asarray(origins)
    if starts.ndim != 1 or not np.issubdtype(starts.dtype, np.integer):
        raise DataError(
            f"forecast_baselines got origins of shape {starts.shape} and dtype {starts.dtype};"
            " expected a 1-D integer array. Pass np.asarray(origins, dtype=int)."
        )
    if starts.size and (starts.min() < 0 or starts.max() >= values.size):
        raise DataError(
            f"forecast_baselines got origins from {starts.min()} to {starts.max()}; expected "
            f"indices in [0, {values.size - 1}] of the series. Drop origins outside the series."
        )
    if horizon < 1:
        raise ConfigError(f"forecast_baselines got horizon={horizon}; expected >= 1.")
    return starts


def _seasonal_naive(values: np.ndarray, starts: np.ndarray, horizon: int, period: int
                    ) -> np.ndarray:
    """Step ``k`` (1-based) predicts ``series[o + k - period * ceil(k / period)]``, the same
    phase one season back; steps whose index would be negative predict ``series[o]``."""
    steps = np.arange(1, horizon + 1)
    back = period * -(-steps // period)  # period * ceil(k / period), integer maths
    index = starts[:, None] + steps[None, :] - back[None, :]  # (N, horizon)
    return np.where(index >= 0, values[np.maximum(index, 0)], values[starts][:, None])


def _ar_forecasts(values: np.ndarray, starts: np.ndarray, horizon: int, ar: LinearAR
                  ) -> np.ndarray:
    """``ar`` applied at every origin; origins with fewer than ``p`` past values repeat
    ``series[0]`` as padding."""
    pred = np.empty((starts.size, horizon))
    for s in range(0, starts.size, _CHUNK):  # (chunk, p) windows at a time
        window = _windows(values, starts[s : s + _CHUNK], ar.order)
        pred[s : s + _CHUNK] = window @ ar.coef + ar.intercept
    return pred


def forecast_baselines(
    series: np.ndarray,
    origins: np.ndarray,
    horizon: int,
    train_end: int,
    period: int | None = None,
    ar_order: int | None = None,
    val_end: int | None = None,
) -> dict[str, np.ndarray]:
    """Forecast ``series[o+1 .. o+horizon]`` from each origin ``o`` with simple baselines.

    Args:
        series: ``(n,)`` one univariate series in original units.
        origins: ``(N,)`` ints, the index of the last observed value of each forecast.
        horizon: steps per forecast, >= 1.
        train_end: ``series[:train_end]`` is the training part, the only one fitted on.
        period: seasonal period; adds "seasonal naive" when it is >= 2.
        ar_order: past values for the linear AR; adds ``"linear AR(p)"`` (``p`` the order used,
            lowered when the training part is short) when there is enough training data.
        val_end: with it, the AR's order and ridge are those that score best on the
            validation rows ``series[train_end:val_end]`` (:func:`choose_ar`), with
            ``ar_order`` and ``period`` among the orders tried.

    Returns:
        ``{name: (N, horizon) float64}``, in order: ``"mean"`` (of ``series[:train_end]``),
        ``"last value"`` (``series[o]`` at every step), ``"seasonal naive"``
        (:func:`_seasonal_naive`), ``"linear AR(p)"`` (:func:`fit_linear_ar`).

    Example:
        >>> y = np.array([1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0])
        >>> out = forecast_baselines(y, np.array([5]), horizon=2, train_end=6, period=3)
        >>> out["last value"].tolist(), out["seasonal naive"].tolist(), out["mean"].tolist()
        ([[3.0, 3.0]], [[1.0, 2.0]], [[2.0, 2.0]])
    """
    values = _check_series(series, train_end)
    starts = _check_origins(values, origins, horizon)
    out = {
        "mean": np.full((starts.size, horizon), values[:train_end].mean()),
        "last value": np.repeat(values[starts][:, None], horizon, axis=1),
    }
    if period is not None and period >= 2:
        out["seasonal naive"] = _seasonal_naive(values, starts, horizon, period)
    if val_end is not None:
        ar = choose_ar(values, horizon, train_end, val_end, also=(ar_order, period))
    else:
        ar = None if ar_order is None else fit_linear_ar(values, horizon, train_end, ar_order)
    if ar is not None:
        out[f"linear AR({ar.order})"] = _ar_forecasts(values, starts, horizon, ar)
    return out


def sequence_baselines(
    train_targets: np.ndarray, last_inputs: np.ndarray, n: int
) -> dict[str, np.ndarray]:
    """Per-sample baselines for sequence problems that are not one series.

    Args:
        train_targets: ``(M, *S)`` targets of the training samples.
        last_inputs: ``(n,)`` or ``(n, 1)``, the last input value of each sample to predict.
        n: number of samples to predict.

    Returns:
        ``{"mean": (n, *S), "last value": (n, *S)}``, float64: the per-position mean of the
        training targets, and each sample's last input repeated across ``S``.

    Example:
        >>> out = sequence_baselines(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([5.0, 6.0]), 2)
        >>> out["mean"].tolist(), out["last value"].tolist()
        ([[2.0, 3.0], [2.0, 3.0]], [[5.0, 5.0], [6.0, 6.0]])
    """
    targets = np.asarray(train_targets, dtype=np.float64)
    last = np.asarray(last_inputs, dtype=np.float64)
    if targets.ndim < 1 or targets.shape[0] == 0:
        raise DataError(
            f"sequence_baselines got train_targets of shape {targets.shape}; expected (M, *S) "
            "with M >= 1 training samples."
        )
    if last.shape not in ((n,), (n, 1)):
        raise DataError(
            f"sequence_baselines got last_inputs of shape {last.shape}; expected ({n},) or "
            f"({n}, 1), one value per sample. Pass the last input step of a univariate input."
        )
    target_shape = targets.shape[1:]
    full = (n, *target_shape)
    last = last.reshape((n,) + (1,) * len(target_shape))  # (n, 1, ..., 1) broadcasts over S
    return {
        "mean": np.broadcast_to(targets.mean(axis=0), full).copy(),
        "last value": np.broadcast_to(last, full).copy(),
    }
