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

import math
import warnings
from typing import NamedTuple

import numpy as np

MIN_TRAIN = 10  # statsmodels' heuristic initial states need at least 10 training values
# Seasonal forms are tried up to this period. With heuristic initial states a fit costs about
# 0.1 s at m = 12, 52, 127 or 365 on ~2,000 training rows (measured; 0.2 s at m = 1,000), so
# cost is not the limit: 366 keeps a daily series' yearly season and leaves out cycles too long
# to be a season (estimating the m initial seasonal values instead cost 1-6 s a fit).
MAX_PERIOD = 366
_TRENDS = ((None, False), ("add", False), ("add", True))  # (trend, damped)
_SMOOTHING = ("smoothing_level", "smoothing_trend", "smoothing_seasonal", "damping_trend")


class Form(NamedTuple):
    """One ETS form: additive error, ``trend`` None or "add" (``damped``), ``period`` of an
    additive season or None."""

    trend: str | None
    damped: bool
    period: int | None

    @property
    def label(self) -> str:
        """``A,Ad,N``: error, trend, seasonal, in the ETS taxonomy's letters."""
        trend = "N" if self.trend is None else "Ad" if self.damped else "A"
        return f"A,{trend},{'N' if self.period is None else 'A'}"


class EtsFit(NamedTuple):
    """A form fitted on the training rows: its smoothing parameters (``_SMOOTHING`` names that
    apply) and initial states (``seasonal``: the m values before the first row, oldest first)."""

    form: Form
    params: dict[str, float]
    level: float
    trend: float
    seasonal: np.ndarray
    aicc: float


class EtsForecasts(NamedTuple):
    """``name`` (``"ETS(A,Ad,N)"``) and ``forecasts`` (N, H), or both None and a ``note``
    saying why ETS is left out."""

    name: str | None
    forecasts: np.ndarray | None
    note: str = ""


def candidates(n_train: int, period: int | None) -> list[Form]:
    """The forms tried: three trends, each also with the season when two periods fit."""
    forms = [Form(t, d, None) for t, d in _TRENDS]
    if period is not None and 2 <= period <= MAX_PERIOD and n_train >= 2 * period:
        forms += [Form(t, d, int(period)) for t, d in _TRENDS]
    return forms


def _model(values: np.ndarray, form: Form, **init: object) -> object:
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel  # ~1 s import: only here

    return ETSModel(values, error="add", trend=form.trend, damped_trend=form.damped,
                    seasonal=None if form.period is None else "add",
                    seasonal_periods=form.period, **init)


def _aicc(loglike: float, n: int, n_params: int, form: Form) -> float:
    """AICc counting the initial states as parameters: the heuristic reads them off the data
    (1 level, 1 trend, m seasonal values), so leaving them out would favour long seasons."""
    k = n_params + 1 + 1 + (form.trend is not None) + (form.period or 0)  # + variance, states
    if n - k - 1 <= 0 or not math.isfinite(loglike):
        return math.inf
    return -2 * loglike + 2 * k + 2 * k * (k + 1) / (n - k - 1)


def fit_form(train: np.ndarray, form: Form) -> EtsFit | None:
    """``form`` fitted by maximum likelihood on ``train``; None when statsmodels fails or does
    not converge."""
    try:
        return _fit(train, form)
    except Exception:  # a baseline on odd data must never stop a fit
        return None


def _fit(train: np.ndarray, form: Form) -> EtsFit | None:
    result = _model(train, form, initialization_method="heuristic").fit(disp=False)
    if not (result.mle_retvals or {}).get("converged", False):
        return None
    params = {k: float(v) for k, v in zip(result.param_names, result.params, strict=True)}
    if not all(math.isfinite(v) for v in params.values()):
        return None
    seasonal = (np.asarray(result.initial_seasonal, dtype=np.float64).reshape(-1)
                if form.period else np.zeros(0))
    return EtsFit(form, params, float(result.initial_level),
                  float(result.initial_trend) if form.trend else 0.0, seasonal,
                  _aicc(float(result.llf), train.size, len(params), form))


def select(train: np.ndarray, period: int | None) -> EtsFit | None:
    """The candidate with the lowest finite AICc, fitted on ``train`` only; None if none fits.
    Ties keep the simpler form (candidates run from simple to seasonal)."""
    fits = [f for f in (fit_form(train, form) for form in candidates(train.size, period))
            if f is not None and math.isfinite(f.aicc)]
    return min(fits, key=lambda f: f.aicc) if fits else None


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
    model = _model(values, form, initialization_method="known", **init)
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
    train = values[:train_end]
    if train.size < MIN_TRAIN:
        return EtsForecasts(None, None, f"ETS left out: {train.size} training values, it needs "
                                        f"at least {MIN_TRAIN}.")
    if origins.size == 0 or not np.isfinite(values[: int(origins.max()) + 1]).all():
        return EtsForecasts(None, None, "ETS left out: missing or infinite values.")
    if np.ptp(train) == 0:
        return EtsForecasts(None, None, "ETS left out: the training values are constant.")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # statsmodels warns on hard optimisations; the fit's result is checked instead
        warnings.simplefilter("ignore")
        fit = select(train, period)
        if fit is None:
            return EtsForecasts(None, None, "ETS left out: no form converged on the training "
                                            "values.")
        try:
            pred = forecast(values, origins, horizon, fit)
        except Exception:  # a baseline on odd data must never stop a fit
            pred = None
    if pred is None or not np.isfinite(pred).all():
        return EtsForecasts(None, None, "ETS left out: its forecasts were not finite.")
    return EtsForecasts(f"ETS({fit.form.label})", pred)
