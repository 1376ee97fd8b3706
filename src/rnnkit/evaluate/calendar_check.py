"""Calendar features are kept only where they help, or where nothing else can know the season.

``--calendar auto`` derives the features that fit the data's frequency (``data/calendar.py``).
Each is judged by the ridge AR that ``guard.best_ar`` fits (orders and ridges chosen on
validation), scored on the validation part with and without it, one step ahead and rolled
``CHECK_STEPS`` steps ahead:

- A feature whose cycle fits in the window (the weekday of daily data with a 16-day window)
  repeats something the network can read from the values themselves: it stays only when it
  helps, i.e. at one step or rolled, the validation RMSE is at least ``KEEP_GAIN`` lower with
  it AND the Diebold-Mariano test on the two sets of errors says that is no accident (two-
  sided p below ``KEEP_P``), without the one-step RMSE growing ``KEEP_GAIN`` or more.
- A feature whose cycle is longer than the window (the day of year of daily data) is the
  only way the model can know where in the season it is; it stays unless it hurts, i.e. the
  one-step RMSE is ``KEEP_GAIN`` higher with it, significantly.

Why the second rule: on daily Seattle temperatures the day of year barely moves the next
day's forecast (the AR's validation RMSE 2.56 with it, 2.54 without, p = 0.7) but cuts the
30-day-ahead RMSE of the fitted model from 4.67 to 3.82 (benchmarks/COVARIATES.md); 219
validation days, less than one year, cannot show a yearly effect significantly (p = 0.9
rolled 30 steps). On the short quarterly macro series the month (a 4-row cycle, inside the
window) lowered the AR's one-step RMSE 2.2% for realgovt on 31 validation forecasts with p =
0.11: left out. The linear AR stands in for the network: a weekday or season effect is
additive, which the linear map sees as well as the network does, and the check costs a pass
over the training windows instead of a second fit.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch

from rnnkit.data.covariates import rows_ahead
from rnnkit.evaluate.backtest import default_steps
from rnnkit.evaluate.significance import diebold_mariano
from rnnkit.inference import rolled_from
from rnnkit.models.linear_maps import LinearMap
from rnnkit.train.guard import best_ar, scorer_of, space_of

KEEP_GAIN = 0.02  # the calendar must lower a validation RMSE by 2% or more
KEEP_P = 0.05  # ... and the difference must be significant at 5% (two-sided)
MIN_POINTS = 10  # fewer validation forecasts than this: nothing to decide on
ROLLED_ORIGINS = 200  # validation origins of the rolled forecasts, at most
CHECK_STEPS = 30  # rolled steps ahead, at least (the backtest's steps when longer)
CYCLE_DAYS = {"hour": 1.0, "weekday": 7.0, "dayofyear": 365.25, "month": 365.25}


class Errors(NamedTuple):
    """Squared validation errors of one set of inputs, one per forecast in time order."""

    one: np.ndarray  # (N,) one step (the horizon) ahead
    rolled: np.ndarray | None  # (M,) mean over ``steps`` rolled steps; None: too few origins
    steps: int


class _MapNet(torch.nn.Module):
    """A fitted linear map where the rolling loop expects a network: x -> (y, None)."""

    def __init__(self, fitted: LinearMap, horizon: int, targets: int) -> None:
        super().__init__()
        self.fitted, self.shape = fitted, (horizon, targets)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return torch.from_numpy(self.fitted.apply(x).reshape(len(x), *self.shape)), None


def ar_errors(pipe: Any, encoded: Any) -> Errors | None:
    """The best ridge AR's validation errors over ``pipe``'s inputs; None when there are too
    few to decide on."""
    values = np.asarray(encoded.dataset.values)
    train, val = pipe.pairs(encoded, "train"), pipe.pairs(encoded, "val")
    if len(val) < MIN_POINTS or len(train) < 4:
        return None
    scorer = scorer_of(pipe, values)
    _, fitted = best_ar(train, val, space_of(pipe), scorer)
    steps = max(default_steps(pipe), CHECK_STEPS)
    return Errors(scorer.errors(fitted.apply(val.inputs)),
                  _rolled(pipe, values, fitted, steps, scorer.scale), steps)


def _rolled(pipe: Any, values: np.ndarray, fitted: LinearMap, steps: int, scale: np.ndarray
            ) -> np.ndarray | None:
    n, o, need = len(values), len(pipe.targets), pipe.window + int(pipe.diff)
    train_end, val_end = pipe.bounds(n)
    first = max(train_end - 1, need - 1)
    last = min(val_end - 1 - steps, n - 1 - rows_ahead(steps, pipe.lead))
    if last - first + 1 < MIN_POINTS:
        return None
    origins = np.unique(np.linspace(first, last, min(ROLLED_ORIGINS, last - first + 1)
                                    ).astype(int))
    pred = rolled_from(_MapNet(fitted, pipe.horizon, o), pipe, values, origins, steps)
    truth = np.asarray(values, dtype=np.float64)[
        origins[:, None] + np.arange(1, steps + 1)[None, :], :o]
    return np.mean(((pred - truth) / scale) ** 2, axis=(1, 2))


def _gain(a: np.ndarray, b: np.ndarray, horizon: int) -> tuple[float, float, float, float]:
    """(RMSE with, RMSE without, relative gain, DM p-value)."""
    ra, rb = float(np.sqrt(a.mean())), float(np.sqrt(b.mean()))
    p = diebold_mariano(a - b, horizon).p_value
    return ra, rb, 1 - ra / rb if rb > 0 else 0.0, p


def by_cycle(names: list[str], index: pd.Index, window: int) -> tuple[list[str], list[str]]:
    """(features whose cycle is longer than the window, those whose cycle fits in it)."""
    step = pd.Series(index).diff().median() / pd.Timedelta(days=1)
    long = [n for n in names if CYCLE_DAYS[n] / step > window]
    return long, [n for n in names if n not in long]


def helps(with_calendar: Errors | None, without: Errors | None, horizon: int
          ) -> tuple[bool, str]:
    """(whether the features help significantly, the figures in words)."""
    if with_calendar is None or without is None:
        return False, "the validation part is too small to tell"
    a1, b1, g1, p1 = _gain(with_calendar.one, without.one, horizon)
    said = (f"the linear AR's validation RMSE is {a1:.4g} with them, {b1:.4g} without (p = "
            f"{p1:.2g} over {len(without.one)} forecasts)")
    keep = g1 >= KEEP_GAIN and p1 < KEEP_P
    if with_calendar.rolled is not None and without.rolled is not None:
        steps = with_calendar.steps
        ar, br, gr, pr = _gain(with_calendar.rolled, without.rolled, steps)
        said += (f"; rolled {steps} steps ahead {ar:.4g} with them, {br:.4g} without (p = "
                 f"{pr:.2g} over {len(without.rolled)} origins)")
        keep = keep or (gr >= KEEP_GAIN and pr < KEEP_P and g1 > -KEEP_GAIN)
    return bool(keep), said


def hurts(with_calendar: Errors | None, without: Errors | None, horizon: int
          ) -> tuple[bool, str]:
    """(whether the features make the one-step forecast significantly worse, in words)."""
    if with_calendar is None or without is None:
        return False, "the validation part is too small to tell"
    a1, b1, g1, p1 = _gain(with_calendar.one, without.one, horizon)
    return bool(g1 <= -KEEP_GAIN and p1 < KEEP_P), (
        f"the linear AR's validation RMSE is {a1:.4g} with them, {b1:.4g} without (p = "
        f"{p1:.2g} over {len(without.one)} forecasts)")
