"""Rolling-origin backtest: re-forecast from K origins over the test split, several steps ahead.

From each origin the model sees only rows up to it and forecasts ``steps`` rows recursively
(its own forecasts fed back, as ``forecast`` does past the end of the data); the baselines
forecast the same rows from the same origins. Errors are reported per horizon step, so it shows
how fast each forecast degrades, not only the one-step score.

Example::

    bt = backtest(run, k=10, steps=12)
    print(format_backtest(bt))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnkit.data.covariates import rows_ahead
from rnnkit.errors import ConfigError, DataError
from rnnkit.evaluate.metrics import compute_metrics
from rnnkit.evaluate.scoring import series_baselines, series_scale, series_truth
from rnnkit.inference import forecast_future, rolled_from, series_forecasts

MAX_DEFAULT_STEPS = 24


@dataclass
class Backtest:
    """Forecasts from ``len(origins)`` origins, each ``steps`` rows ahead, in original units.

    origins: (K,) row index of the last row each forecast sees. truth, model: (K, steps, O).
    baselines: {name: (K, steps, O)}. per_step: {name: [metrics of step 1, step 2, ...]} for
    "model" and every baseline. overall: {name: metrics over all steps}. split: which split
    the origins lie in. labels: the time label of each origin.
    """

    origins: np.ndarray
    steps: int
    truth: np.ndarray
    model: np.ndarray
    baselines: dict[str, np.ndarray]
    per_step: dict[str, list[dict[str, float]]]
    overall: dict[str, dict[str, float]]
    split: str
    labels: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"origins": [int(o) for o in self.origins], "labels": self.labels,
                "steps": self.steps, "split": self.split, "per_step": self.per_step,
                "overall": self.overall}


def default_steps(pipe: Any) -> int:
    """The horizon, or one season (at most 24 steps) when the model forecasts one step."""
    return max(pipe.horizon, min(pipe.period or pipe.window, MAX_DEFAULT_STEPS))


def _origins(pipe: Any, n: int, steps: int, k: int) -> tuple[np.ndarray, str]:
    train_end, val_end = pipe.bounds(n)
    first = pipe.window - 1 + int(pipe.diff)
    for split, lo, hi in (("test", val_end - 1, n - steps - 1),
                          ("validation", train_end - 1, val_end - steps - 1)):
        lo = max(lo, first)
        if hi >= lo:
            return np.unique(np.linspace(lo, hi, k).round().astype(np.int64)), split
    raise DataError(f"backtest: no origin in the test or validation rows leaves {steps} rows to "
                    f"forecast ({n} rows, window {pipe.window}); use fewer --steps or a larger "
                    "test split (--split).")


def backtest(run: Any, k: int = 10, steps: int | None = None, data: Any = None) -> Backtest:
    """Forecast ``steps`` rows from ``k`` origins spread evenly over the test split (the
    validation split when there is no test split), next to the baselines.

    run: a series Run with its data (fitted data, ``data``, or its source file).
    k: number of origins (fewer when the split is short). steps: rows forecast from each
    origin (default: the horizon, or one season up to 24 steps).
    """
    if run.kind == "panel":
        raise ConfigError("backtest applies to single-series runs; a panel run is already "
                          "scored on every series' test rows by rnnkit evaluate.")
    if run.kind != "series":
        raise ConfigError("backtest applies to series runs; a sequence run is already scored "
                          "on whole held-out sequences by rnnkit evaluate.")
    if k < 1:
        raise ConfigError(f"backtest: k={k} origins; expected at least 1.")
    from rnnkit.evaluate.doctor import attach_data

    if not attach_data(run, data):
        raise DataError("backtest needs the run's data: pass it (rnnkit evaluate RUN DATA "
                        "--backtest K).")
    pipe = run.pipeline
    values = np.asarray(run.data.dataset.values)
    index = run.data.dataset.index
    o = len(pipe.targets)
    steps = default_steps(pipe) if steps is None else int(steps)
    if steps < 1:
        raise ConfigError(f"backtest: steps={steps}; expected at least 1.")
    if pipe.features and steps > pipe.horizon:
        raise ConfigError(f"backtest: with features {pipe.features} the model cannot forecast "
                          f"past its horizon ({pipe.horizon}) without their future values; use "
                          f"--steps {pipe.horizon} or less.")
    n = len(values)
    # with features the forecasts are direct (no feedback): every origin needs a full horizon;
    # with known covariates, the rows whose covariates its rounds read
    ahead = (max(steps, pipe.horizon) if pipe.features else
             rows_ahead(steps, pipe.lead) if pipe.known.columns else steps)
    origins, split = _origins(pipe, n, ahead, k)
    if pipe.features:
        pred = series_forecasts(run.model, pipe, values, origins)[:, :steps]
    elif pipe.known.columns:
        pred = rolled_from(run.model, pipe, values, origins, steps)
    else:
        pred = np.stack([forecast_future(run.model, pipe, values[: int(a) + 1, :o], steps)
                         for a in origins])  # (K, steps, O)
    truth = series_truth(values, origins, steps, o)
    train_end, val_end = pipe.bounds(n)
    base = series_baselines(values, origins, steps, o, train_end, pipe.period, pipe.window,
                            val_end)
    scale = series_scale(values, train_end, o)
    per_step: dict[str, list[dict[str, float]]] = {}
    overall: dict[str, dict[str, float]] = {}
    for name, fc in {"model": pred, **base}.items():
        per_step[name] = [compute_metrics(truth[:, h], fc[:, h], mase_scale=scale)
                          for h in range(steps)]
        overall[name] = compute_metrics(truth, fc, mase_scale=scale)
    labels = [str(index[int(a)]) for a in origins]
    return Backtest(origins, steps, truth, pred, base, per_step, overall, split, labels)


def shown_steps(steps: int) -> list[int]:
    """Every step up to 12; beyond that 1, 2, 3, 6, 12, 24, ... and the last."""
    if steps <= 12:
        return list(range(1, steps + 1))
    picks = [1, 2, 3, 6]
    h = 12
    while h < steps:
        picks.append(h)
        h *= 2
    return [*picks, steps]


def format_backtest(bt: Backtest, key: str = "rmse") -> str:
    """Per-step errors of the model and the baselines as a text table, with a verdict."""
    names = list(bt.per_step)
    heads = ["step", *names]
    rows = [[str(h), *[_fmt(bt.per_step[m][h - 1][key]) for m in names]]
            for h in shown_steps(bt.steps)]
    rows.append(["all", *[_fmt(bt.overall[m][key]) for m in names]])
    widths = [max(len(r[i]) for r in [heads, *rows]) for i in range(len(heads))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True)))

    out = [f"rolling-origin backtest: {len(bt.origins)} origins over the {bt.split} split "
           f"({bt.labels[0]} .. {bt.labels[-1]}), {bt.steps} steps ahead, {key.upper()} per "
           "step", "", line(heads), line(["-" * w for w in widths]), *map(line, rows)]
    wins = [h for h in range(1, bt.steps + 1)
            if bt.per_step["model"][h - 1][key] < min(
                (bt.per_step[b][h - 1][key] for b in names[1:]), default=math.inf)]
    out.append(f"The model beats every baseline at {len(wins)} of {bt.steps} steps"
               + (" (all of them)." if len(wins) == bt.steps else
                  f"; it does not at step{'s' if bt.steps - len(wins) > 1 else ''} "
                  + _ranges(sorted(set(range(1, bt.steps + 1)) - set(wins))) + "."))
    return "\n".join(out)


def _ranges(steps: list[int]) -> str:
    parts, start = [], None
    for i, h in enumerate(steps):
        if start is None:
            start = h
        if i == len(steps) - 1 or steps[i + 1] != h + 1:
            parts.append(str(start) if start == h else f"{start}-{h}")
            start = None
    return ", ".join(parts)


def _fmt(v: float) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4g}"
