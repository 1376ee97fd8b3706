"""Exponential smoothing (ETS), the baseline a forecaster tries first.

The other baselines (mean, last value, seasonal naive, linear AR) are rules; ETS is a fitted
state-space model, and a recurrent network that cannot beat it has not earned its cost.

* **Selection.** Candidate statsmodels ``ETSModel`` forms with additive errors: trend none,
  additive or additive damped; seasonal none, or additive with the run's period when the
  training part holds two full periods and the period is at most :data:`MAX_PERIOD`. Each is
  fitted by maximum likelihood on the training rows only, and the lowest AICc wins.
* **Forecasts.** The chosen parameters stay fixed: the state is filtered through the rows up to
  each origin (never past it, never refitted), and the h-step forecast is read off that state.
* **Failure** never breaks a fit: odd data (constant, too short, NaN, no convergence) gives
  :class:`EtsForecasts` with a note and no forecasts, and the baseline is left out.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from rnnkit.models.ets import EtsFit, checked, statsmodels_model


class EtsForecasts(NamedTuple):
    """``name`` (``"ETS(A,Ad,N)"``) and ``forecasts`` (N, H), or both None and a ``note``
    saying why ETS is left out."""

    name: str | None
    forecasts: np.ndarray | None
    note: str = ""


def _filtered(values: np.ndarray, fit: EtsFit) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The states after each row of ``values`` with the fitted parameters fixed: level (n,),
    trend (n,) and the seasonal values (m + n,), the m initial ones first, so that
    ``seasonal[m + t]`` is the season of row t."""
    form = fit.form
    init = {"initial_level": fit.level}
    if form.trend:
        init["initial_trend"] = fit.trend
    if form.period:
        init["initial_seasonal"] = fit.seasonal
    model = statsmodels_model(values, form, initialization_method="known", **init)
    states = np.asarray(model.smooth([fit.params[k] for k in model.param_names]).states,
                        dtype=np.float64)  # (n, 1 + trend + seasonal)
    trend = states[:, 1] if form.trend else np.zeros(len(values))
    seasonal = (np.concatenate([fit.seasonal, states[:, -1]]) if form.period
                else np.zeros(len(values)))
    return states[:, 0], trend, seasonal


def forecast(series: np.ndarray, origins: np.ndarray, horizon: int, fit: EtsFit) -> np.ndarray:
    """``(N, horizon)`` forecasts of ``series[o+1 .. o+horizon]`` from the state at each origin
    ``o``, filtered through ``series[:o+1]`` only::

        y(o+h | o) = level[o] + (phi + ... + phi^h) trend[o] + season[o + h - m ceil(h/m)]

    (``phi`` is 1 for an undamped trend: the sum is ``h``).
    """
    origins = np.asarray(origins, dtype=np.int64)
    level, trend, seasonal = _filtered(series[: int(origins.max()) + 1], fit)
    form, h = fit.form, np.arange(1, horizon + 1)
    if form.trend is None:
        steps = np.zeros(horizon)
    else:
        phi = fit.params.get("damping_trend", 1.0) if form.damped else 1.0
        steps = np.cumsum(phi ** h.astype(np.float64))
    pred = level[origins, None] + steps[None, :] * trend[origins, None]  # (N, H)
    if form.period:
        m = form.period
        back = m * -(-h // m) - h  # rows back from the origin to the same phase, 0 <= . < m
        pred = pred + seasonal[m + origins[:, None] - back[None, :]]
    return pred


def ets_forecasts(series: np.ndarray, origins: np.ndarray, horizon: int, train_end: int,
                  period: int | None) -> EtsForecasts:
    """ETS selected and fitted on ``series[:train_end]``, forecast from every origin; never
    raises on odd data (the result then holds a note instead of forecasts)."""
    values = np.asarray(series, dtype=np.float64)
    origins = np.asarray(origins, dtype=np.int64)
    if origins.size == 0 or not np.isfinite(values[: int(origins.max()) + 1]).all():
        return EtsForecasts(None, None, "ETS left out: missing or infinite values.")
    fit, why = checked(values[:train_end], period)
    if fit is None:
        return EtsForecasts(None, None, f"ETS left out: {why}")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # statsmodels on odd states; the result is checked
        try:
            pred = forecast(values, origins, horizon, fit)
        except Exception:  # a baseline on odd data must never stop a fit
            pred = None
    if pred is None or not np.isfinite(pred).all():
        return EtsForecasts(None, None, "ETS left out: its forecasts were not finite.")
    return EtsForecasts(f"ETS({fit.form.label})", pred)
