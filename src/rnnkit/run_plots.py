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
        out += _series_plots(run, ev, folder)
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
        fc = run.forecast(steps)
        base, base_name = None, ""
        if pipe.period and pipe.period >= 2 and len(values) >= pipe.period:
            season = values[-pipe.period :, 0]
            base, base_name = np.resize(season, steps), "seasonal naive"
        levels = intervals.levels_of(run.config)
        bands = {lv: (fc[f"{name}_lo{lv}"].to_numpy(), fc[f"{name}_hi{lv}"].to_numpy())
                 for lv in levels if f"{name}_lo{lv}" in fc}
        if not isinstance(fc.index, type(index)):  # irregular dates: numbered steps ahead
            index, fc.index = pd.RangeIndex(len(index)), pd.RangeIndex(
                len(index), len(index) + len(fc))
        out.append(plots.forecast(index, values, fc.index, fc[pipe.targets].to_numpy(), name,
                            folder / "forecast.png", bounds, base, base_name, bands))
    return out


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
