"""Intervals and scores of a model that learned a distribution (``--loss gaussian|student_t``,
``--quantiles``): the intervals are the predicted distribution's own quantiles, not conformal.

- One-step and horizon forecasts (``predict``, ``evaluate``): the quantiles of each forecast's
  predicted distribution, turned into original units by the same pipeline step as the point.
- Forecasts past the end: sample paths. Each round draws from the predicted distribution and
  feeds the draw back, as the autoregressive loop feeds the point; the interval of a step is the
  spread of the paths there (``PATHS`` paths, fewer per series for large panels).
- Scores beside RMSE: CRPS for gaussian and student_t, computed as twice the mean pinball loss
  over the quantile levels 0.5%, 1.5%, ..., 99.5% (a discretisation of the CRPS integral, within
  about 1%); the mean pinball loss at the learned quantiles for ``--quantiles``.

A pinball model has intervals only at the levels whose two tails lie within its learned
quantiles (0.1 and 0.9 give 80%, not 95%): past the outermost quantile nothing was learned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from torch import nn

from rnnkit.data.pairs import Pairs
from rnnkit.inference import model_params
from rnnkit.models import distributions

PATHS = 500  # sample paths per series for forecasts past the end
PATH_ROWS = 100_000  # at most this many paths in all, for large panels
GRID = (np.arange(100) + 0.5) / 100  # quantile levels of the CRPS discretisation


def loss_of(config: dict) -> str:
    """The run's training loss (``mse`` for a point model and for runs from before it)."""
    return str(config.get("model", {}).get("loss") or "mse")


def is_learned(config: dict) -> bool:
    return loss_of(config) != "mse"


def levels(config: dict) -> tuple[int, ...]:
    """The interval levels a learned run gives: the configured ones (none when intervals are
    off); for a pinball model those inside its learned quantiles, and the level of each pair of
    learned quantiles around the median (0.05 and 0.95: 90%)."""
    wanted = tuple(config.get("data", {}).get("levels") or ())
    if loss_of(config) != "pinball" or not wanted:
        return wanted
    qs = distributions.all_quantiles(config["model"]["quantiles"])
    inside = {lv for lv in wanted if (1 - lv / 100) / 2 >= qs[0] - 1e-9
              and (1 + lv / 100) / 2 <= qs[-1] + 1e-9}
    pairs = {round(100 * (1 - 2 * q)) for q in qs if q < 0.5
             and any(abs(q + r - 1) < 1e-9 for r in qs)}
    return tuple(sorted(inside | {lv for lv in pairs if 0 < lv < 100}))


@dataclass
class Predicted:
    """The predicted distributions of N forecasts: ``point`` (N, H, O) and ``extra``
    (N, H, O, P) raw, in the model's scaled units; ``to_units`` turns scaled outputs into
    original units; ``diff``: the pipeline adds up the steps."""

    loss: str
    quantiles: tuple[float, ...]
    point: np.ndarray
    extra: np.ndarray
    diff: bool
    to_units: Callable[[np.ndarray], np.ndarray]

    def quantile(self, tau: float) -> np.ndarray:
        """(N, H, O) the tau-quantile of each forecast, in original units."""
        return self.to_units(distributions.quantile(self.loss, self.quantiles, self.point,
                                                    self.extra, tau, self.diff))

    def bounds(self, levels: tuple[int, ...]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        return {lv: (self.quantile((1 - lv / 100) / 2), self.quantile((1 + lv / 100) / 2))
                for lv in levels}

    def scores(self, truth: np.ndarray) -> dict:
        """CRPS (gaussian, student_t) or the mean pinball loss at the learned quantiles."""
        y = np.asarray(truth, dtype=np.float64)
        if self.loss == "pinball":
            taus = distributions.all_quantiles(self.quantiles)
            return {"pinball": _mean_pinball(y, taus, self.quantile), "quantiles": list(taus)}
        return {"crps": 2 * _mean_pinball(y, tuple(GRID), self.quantile)}


def _mean_pinball(y: np.ndarray, taus: tuple[float, ...],
                  quantile: Callable[[float], np.ndarray]) -> float:
    total = 0.0
    for tau in taus:
        d = y - quantile(tau)
        total += float(np.mean(np.maximum(tau * d, (tau - 1) * d)))
    return total / len(taus)


def predicted(model: nn.Module, config: dict, pairs: Pairs, diff: bool,
              to_units: Callable[[np.ndarray], np.ndarray]) -> Predicted:
    """The predicted distributions of the forecasts of ``pairs``."""
    point, extra = model_params(model, pairs)
    return Predicted(loss_of(config), tuple(config["model"].get("quantiles") or ()), point,
                     extra, diff, to_units)


def path_count(series: int) -> int:
    return int(max(50, min(PATHS, PATH_ROWS // max(series, 1))))


def drawer(config: dict, seed: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A function drawing one value per forecast from the predicted distribution."""
    rng = np.random.default_rng(seed)
    loss, qs = loss_of(config), tuple(config["model"].get("quantiles") or ())
    return lambda point, extra: distributions.sample(loss, qs, point, extra, rng)


def path_bounds(paths: np.ndarray, levels: tuple[int, ...]
                ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{level: (lo, hi)} (S, steps, O) from sample paths (S, paths, steps, O)."""
    return {lv: (np.quantile(paths, (1 - lv / 100) / 2, axis=1),
                 np.quantile(paths, (1 + lv / 100) / 2, axis=1)) for lv in levels}


def format_scores(metrics: dict) -> str:
    """The table line of a learned run's probabilistic score, or ''."""
    found = metrics.get("probabilistic")
    if not found:
        return ""
    if "crps" in found:
        return (f"CRPS {found['crps']:.4g} (the {found['loss']} distribution the model learned; "
                "lower is better, in the target's units like MAE)")
    qs = ", ".join(f"{q:g}" for q in found["quantiles"])
    return f"mean pinball loss {found['pinball']:.4g} at the learned quantiles {qs}"
