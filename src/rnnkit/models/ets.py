"""The ETS model itself: its forms, their fit on training rows (statsmodels) and its one-step
and h-step forecasts as a linear filter over a window.

``evaluate/ets`` scores it as a baseline; ``train/guard`` offers it to the model as a linear
map over the model's own window (see :func:`window_weights`). Both fit it here, once.
"""

from __future__ import annotations

import hashlib
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


def candidates(n_train: int, period: int | None) -> list[Form]:
    """The forms tried: three trends, each also with the season when two periods fit."""
    forms = [Form(t, d, None) for t, d in _TRENDS]
    if period is not None and 2 <= period <= MAX_PERIOD and n_train >= 2 * period:
        forms += [Form(t, d, int(period)) for t, d in _TRENDS]
    return forms


def statsmodels_model(values: np.ndarray, form: Form, **init: object) -> object:
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
    result = statsmodels_model(train, form, initialization_method="heuristic").fit(disp=False)
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
    Ties keep the simpler form (candidates run from simple to seasonal).

    A fit asks for the same selection twice (the guard, then the ETS baseline), so the last
    few results are kept, keyed by the exact training values and the period."""
    values = np.ascontiguousarray(train, dtype=np.float64)
    key = (hashlib.sha256(values.tobytes()).hexdigest(), period)
    if key in _SELECTED:
        return _SELECTED[key]
    fits = [f for f in (fit_form(values, form) for form in candidates(values.size, period))
            if f is not None and math.isfinite(f.aicc)]
    best = min(fits, key=lambda f: f.aicc) if fits else None
    if len(_SELECTED) >= 8:
        _SELECTED.pop(next(iter(_SELECTED)))  # the oldest
    _SELECTED[key] = best
    return best


_SELECTED: dict[tuple[str, int | None], EtsFit | None] = {}


def window_weights(fit: EtsFit, window: int, horizon: int) -> np.ndarray:
    """``(horizon, window)`` weights ``w`` such that ``w @ values`` is this ETS's forecast of the
    ``horizon`` rows after a window of ``window`` values (oldest first), fitted parameters kept.

    Every additive ETS forecast is linear in the values it has filtered, so it becomes a linear
    map over a window once its starting state is itself read from the window: the level from
    the first value, the trend from the slope across the window, the season from zero. The
    weights sum to one, so a constant window forecasts that constant. Longer windows forget
    that start, and the map tends to the model's own forecast.
    """
    form, p = fit.form, fit.params
    alpha = p.get("smoothing_level", 0.0)
    beta = p.get("smoothing_trend", 0.0) if form.trend else 0.0
    gamma = p.get("smoothing_seasonal", 0.0) if form.period else 0.0
    phi = (p.get("damping_trend", 1.0) if form.damped else 1.0) if form.trend else 0.0
    basis = np.eye(window)  # column j: the window with a one at position j
    level = basis[0].copy()
    trend = (basis[-1] - basis[0]) / max(window - 1, 1) if form.trend else np.zeros(window)
    m = form.period or 1
    season = np.zeros((m, window))  # season[k]: the seasonal state of the row k - m back
    for i in range(window):
        error = basis[i] - (level + phi * trend + season[0])
        level = level + phi * trend + alpha * error
        trend = phi * trend + beta * error
        season = np.concatenate([season[1:], (season[0] + gamma * error)[None]])
    steps = np.arange(1, horizon + 1)
    damped = np.cumsum(phi ** steps.astype(np.float64)) if form.trend else np.zeros(horizon)
    back = (steps - 1) % m  # the seasonal state of the same phase, m rows before the target
    return level[None] + damped[:, None] * trend[None] + (season[back] if form.period else 0.0)


def checked(train: np.ndarray, period: int | None) -> tuple[EtsFit | None, str]:
    """:func:`select` on odd data too: (the fit, "") or (None, why ETS is left out). Never
    raises; statsmodels' warnings on hard optimisations are silenced (the fit is checked)."""
    train = np.asarray(train, dtype=np.float64)
    if train.size < MIN_TRAIN:
        return None, f"{train.size} training values, it needs at least {MIN_TRAIN}."
    if not np.isfinite(train).all():
        return None, "missing or infinite values."
    if np.ptp(train) == 0:
        return None, "the training values are constant."
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        fit = select(train, period)
    return (fit, "") if fit is not None else (None, "no form converged on the training values.")
