"""Which plots a run gets: the loss curves always; held-out forecasts with their interval
bands, residuals and a forecast past the end for a series; predicted vs true or continuations
for sequences; a few series of a panel; the priming curve of a per-step model. The drawing
itself is ``rnnkit.plots``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rnnkit import plots
from rnnkit.data.clock import past_times
from rnnkit.data.covariates import future_rows, user_columns
from rnnkit.evaluate import intervals


def save_run_plots(run: Any, folder: Path) -> list[Path]:
    """The standard plots of a run into ``folder``; returns the files written."""
    folder = Path(folder)
    out = []
    training = run.config.get("training", {})
    if run.history:
        out.append(plots.loss_curves(run.history, folder / "loss.png", training.get("best_epoch"),
                               training.get("stop_reason")))
    if run.kind == "panel":
        if run.data is not None:
            from rnnkit.kinds.panel import plot_series

            out.append(plots.panel_series(plot_series(run), folder / "panel_series.png"))
        return out
    ev = run.evaluation
    if ev is None:
        return out
    if run.kind == "series":
        out += _series_plots(run, ev, folder) + _covariate_plot(run, ev, folder)
    elif run.pipeline.shape == "seq2one":
        mean = ev.baselines.get("mean")
        out.append(plots.scatter(ev.truth, ev.pred, folder / "predictions.png",
                           "Held-out sequences: predicted vs true",
                           None if mean is None else float(np.mean(mean))))
        out.append(plots.sequence_residuals(ev.truth, ev.pred, ev.baselines,
                                            folder / "residuals.png"))
    else:
        out += _continuation_plots(run, ev, folder)
    out += _priming_plot(run, folder)
    return out


def _series_plots(run: Any, ev: Any, folder: Path) -> list[Path]:
    """Held-out forecasts, their residuals and a forecast past the end."""
    pipe, name = run.pipeline, run.pipeline.targets[0]
    values, index = ev.data.dataset.values, ev.data.dataset.index
    bounds = pipe.bounds(len(values))
    out = [plots.series_predictions(index, values, ev.origins, ev.pred, ev.baselines, bounds, name,
                              folder / "predictions.png", ev.truth, ev.bounds or None),
           plots.series_residuals(index, ev.origins, ev.pred, ev.truth, ev.baselines, name,
                            folder / "residuals.png")]
    # past the end only what the run forecasts alone: not past features' or the user's future
    # features' coming values (calendar features come from the dates)
    if not pipe.features and not pipe.known.future:
        steps = max(pipe.horizon, min(2 * (pipe.period or pipe.window), 500))
        out.append(forecast_plot(run, run.forecast(steps), folder / "forecast.png"))
    return out


def forecast_plot(run: Any, fc: pd.DataFrame, path: Path, data: Any = None,
                  future: Any = None) -> Path:
    """A series run's forecast ``fc`` after the history it continues (``data``; else the
    fitted data; else the last rows the run keeps), with its interval bands, the seasonal
    naive beside it, and under it each future feature's history and the coming values the
    forecast was given (``future``, read and aligned as the forecast read it)."""
    pipe, name, fc = run.pipeline, run.pipeline.targets[0], fc.copy()
    index, values, bounds = _history(run, data)
    base, base_name = None, ""
    if pipe.period and pipe.period >= 2 and len(values) >= pipe.period:
        base, base_name = np.resize(values[-pipe.period :, 0], len(fc)), "seasonal naive"
    levels = intervals.levels_of(run.config)
    bands = {lv: (fc[f"{name}_lo{lv}"].to_numpy(), fc[f"{name}_hi{lv}"].to_numpy())
             for lv in levels if f"{name}_lo{lv}" in fc}
    known = {}
    if pipe.known.future and future is not None:
        ahead = future_rows(pipe.known, future, fc.index)  # the future features first
        past = user_columns(values, len(pipe.targets), pipe.features, pipe.known)
        known = {c: (past[c], ahead[:, j]) for j, c in enumerate(pipe.known.future)}
    if not isinstance(fc.index, type(index)):  # irregular dates: numbered steps ahead
        index, fc.index = pd.RangeIndex(len(index)), pd.RangeIndex(
            len(index), len(index) + len(fc))
    return plots.forecast(index, values, fc.index, fc[pipe.targets].to_numpy(), name, path,
                          bounds, base, base_name, bands, known)


def _history(run: Any, data: Any) -> tuple[pd.Index, np.ndarray, tuple[int, int] | None]:
    """(index, values, split bounds or None) of the rows a forecast continues."""
    if data is not None or run.data is not None:
        table = run.behaviour.attach(run, data)[0].dataset
        fitted = data is None
        return table.index, table.values, run.pipeline.bounds(len(table.values)) if fitted else None
    tail = run.config["tail"]
    values, info = np.asarray(tail["values"], dtype=np.float64), tail["index"]
    if info.get("kind") in ("datetime", "irregular"):  # irregular: numbered 1-rows..0
        last = np.array([pd.Timestamp(info["last"]).to_datetime64()])
        times = past_times(info, last, len(values))[0]
        index = pd.Index(times, name=info.get("name"))
    else:
        index = pd.RangeIndex(int(info["last"]) - len(values) + 1, int(info["last"]) + 1,
                              name=info.get("name"))
    return index, values, None


def _covariate_plot(run: Any, ev: Any, folder: Path) -> list[Path]:
    """The user's covariates under the target, ranked by the doctor's shuffles when it ran."""
    pipe = run.pipeline
    if not pipe.covariates:
        return []
    table = ev.data.dataset
    columns = user_columns(table.values, len(pipe.targets), pipe.features, pipe.known)
    found = next((f for f in (run.metrics or {}).get("findings") or []
                  if f.get("code") == "covariates"), None)
    rise = None if found is None else {k.removeprefix("rise_"): float(v)
                                       for k, v in found["evidence"].items()}
    return [plots.covariates(table.index, table.values, columns, ev.origins, ev.pred,
                             pipe.targets[0], folder / "covariates.png", rise)]


def _continuation_plots(run: Any, ev: Any, folder: Path) -> list[Path]:
    """Residuals per step and a few held-out continuations next to their prompts."""
    truth, pred = ev.truth, ev.pred
    out = [plots.sequence_residuals(truth, pred, ev.baselines, folder / "residuals.png")]
    if run.data is not None:
        seqs = run.data.dataset.seqs
        parts = run.pipeline.split_indices(len(seqs))
        idx = parts["test"] if len(parts["test"]) else parts["val"]
        p = seqs[0].shape[0] - truth.shape[1]
        prompt = np.stack([seqs[i][:p] for i in idx[: len(truth)]])
        mean = ev.baselines.get("mean")
        out.append(plots.continuations(truth, pred, prompt, folder / "continuations.png",
                                 mean=None if mean is None else mean[0]))
    return out


def _priming_plot(run: Any, folder: Path) -> list[Path]:
    from rnnkit.evaluate.findings.base import Subject
    from rnnkit.evaluate.findings.model import priming_curve as measure

    pc = measure(Subject(run, run.metrics))
    if pc is None:
        return []
    return [plots.priming_curve(pc.curve, pc.steady, pc.needed, pc.warmup,
                          folder / "priming_curve.png")]
