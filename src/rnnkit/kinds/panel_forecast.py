"""A panel run's forecasts past the end of every series, and what their intervals need: the
forecasts rolled from validation origins, and each series' volatility at its end.

A run without covariates rolls its series' targets alone (``inference.rolling_forecast``); a
run with covariates rolls its whole rows through the pipeline (``inference.covariate_rolling``,
the series kind's loop too): each series' last window, then the rows after it with their known
covariates (read from the user's future table, the calendar generated from the dates).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from rnnkit.data import panel_covariates
from rnnkit.data.clock import future_times
from rnnkit.data.covariates import rows_ahead
from rnnkit.data.panel import PanelPipeline
from rnnkit.data.pipeline import Encoded, output_columns, output_values
from rnnkit.errors import ConfigError, DataError
from rnnkit.evaluate import adaptive, intervals, learned
from rnnkit.evaluate.adaptive import Adaptive
from rnnkit.inference import ahead_rows, covariate_rolling, rolling_forecast, sample_paths
from rnnkit.kinds.panel_data import attach, tail_of
from rnnkit.kinds.panel_rows import BATCH, forecasts, known_truth

ROLLED_STEPS = 100  # forecast steps calibrated through the autoregressive loop, at most
ROLLED_ORIGINS = 2000  # (series, validation origin) pairs they are calibrated from, at most
VOLATILITY_WINDOWS = 1 << 18  # one-step forecasts held at once while reading volatilities


def forecast(run: Any, steps: int, data: Any, future: Any = None) -> pd.DataFrame:
    """Continue every series ``steps`` rows past its end: a long table (id, time, target)."""
    pipe: PanelPipeline = run.pipeline
    if steps < 1:
        raise DataError(f"steps={steps} must be at least 1.")
    if future is not None and not pipe.known.future:
        raise ConfigError("future: this run has no future features, so a forecast needs no "
                          "future values; leave --future out.")
    ids = run.config["panel"]["ids"]
    cal = intervals.stored(run.config).get("rolled")
    sigma = None if cal is None else getattr(cal, "sigma", None)
    if data is not None:
        enc, pipe = attach(run, data)
        tail, ids = tail_of(pipe, enc.dataset), enc.dataset.ids
        if isinstance(cal, Adaptive):
            sigma = volatility_now(run.model, pipe, enc, cal)
    elif run.tail is None:
        raise DataError("no data: pass the long table to continue.")
    else:
        tail = run.tail
    o, s, clock = len(pipe.targets), len(tail["values"]), run.config["panel"]["clock"]
    times = future_times(clock, tail["last"], int(steps))
    if pipe.covariates:
        rows = history_rows(pipe, run.config["panel"], tail, ids, int(steps), future)
        out = covariate_rolling(run.model, pipe, rows, int(steps), series=np.arange(s))
    else:
        rows = tail["values"].astype(np.float64)[:, :, :o]
        out = rolling_forecast(run.model, rows, int(steps), window=pipe.window, diff=pipe.diff,
                               shift=pipe.shift[:, :o], scale=pipe.scale[:, :o], batch=BATCH)
    if learned.is_learned(run.config):
        found = learned.path_bounds(_paths(run, pipe, rows, int(steps)),
                                    learned.levels(run.config))
    else:
        found = {} if cal is None else intervals.ahead(cal, out, pipe.scale[:, :o], sigma)
    bounds = {k: (lo.reshape(s * steps, 1, o), hi.reshape(s * steps, 1, o))
              for k, (lo, hi) in found.items()}
    return long_table(run.config["panel"], ids, np.repeat(np.arange(s), steps),
                      times.reshape(-1), output_values(out.reshape(s * steps, 1, o), bounds),
                      output_columns(pipe.targets, 1, tuple(bounds)))


def history_rows(pipe: PanelPipeline, info: dict, tail: dict[str, np.ndarray], ids: list[str],
                 steps: int, future: Any) -> np.ndarray:
    """(S, need + rows ahead, C) each series' last window and the rows after it: their known
    covariates filled in (``panel_covariates.future_block``), their targets unknown (NaN)."""
    hist = tail["values"].astype(np.float64)  # (S, need, C)
    ahead = None
    if pipe.known.columns:
        times = future_times(info["clock"], tail["last"], rows_ahead(steps, pipe.lead))
        dated = info["clock"].get("kind") in ("datetime", "int")
        ahead = panel_covariates.future_block(pipe.known, future, ids, times,
                                              (info["id"], info["time"] if dated else None))
    # the series kind's rule, checked once (a run with past features goes one round at most)
    first = ahead_rows(pipe, hist[0], steps, None if ahead is None else ahead[0])
    rows = np.full((len(hist), *first.shape), np.nan)
    need = pipe.window + int(pipe.diff)
    rows[:, :need] = hist[:, -need:]
    if ahead is not None:
        rows[:, need:, -len(pipe.known.columns):] = ahead
    return rows


def _paths(run: Any, pipe: PanelPipeline, rows: np.ndarray, steps: int) -> np.ndarray:
    """(S, paths, steps, O) sample paths of a learned run's forecast from ``rows``."""
    s, o = len(rows), len(pipe.targets)
    count = learned.path_count(s)
    draw = learned.drawer(run.config, int(run.config["train"]["seed"]))
    if not pipe.covariates:
        return sample_paths(run.model, rows, steps, count, draw, window=pipe.window,
                            diff=pipe.diff, shift=pipe.shift[:, :o], scale=pipe.scale[:, :o],
                            batch=BATCH)
    paths = covariate_rolling(run.model, pipe, np.repeat(rows, count, axis=0), steps, draw,
                              np.repeat(np.arange(s), count))
    return paths.reshape(s, count, steps, o)


def rolled(run: Any, levels: tuple[int, ...], studentise: tuple | None = None
           ) -> intervals.Calibration | Adaptive | None:
    """Half-widths of rolled forecasts from (series, origin) pairs drawn evenly from the
    validation parts, whose rolled steps (and the rows their leads read) stay inside their
    series. ``studentise``: (buffer rows of the validation origins, the volatility before
    each, the direct adaptive calibration) divides each rolled error by its series'
    volatility at its origin."""
    pipe, panel = run.pipeline, run.data.dataset
    o, need = len(pipe.targets), pipe.window + int(pipe.diff)
    train_end, val_end = pipe.bounds(panel.lengths)
    first = np.maximum(train_end - 1, need - 1)
    steps = int(min(ROLLED_STEPS, max(pipe.horizon, int(np.median(val_end - first)) // 2)))
    ahead = rows_ahead(steps, pipe.lead) if pipe.covariates else steps
    last = np.minimum(val_end - 1 - steps, panel.lengths - 1 - ahead)
    counts = np.maximum(last - first + 1, 0)
    if steps < 1 or counts.sum() == 0:
        return None
    pick = np.unique(np.linspace(0, counts.sum() - 1, min(ROLLED_ORIGINS, counts.sum())
                                 ).astype(np.int64))
    series = np.searchsorted(np.cumsum(counts), pick, side="right")
    local = first[series] + pick - (np.cumsum(counts) - counts)[series]
    rows = panel.offsets[series] + local  # buffer row of each origin
    if pipe.covariates:
        span = np.arange(-need + 1, ahead + 1)
        pred = covariate_rolling(run.model, pipe, panel.rows_of(rows[:, None] + span[None, :]),
                                 steps, series=series)
    else:
        hist = panel.values[rows[:, None] + np.arange(-need + 1, 1)[None, :], :o]
        pred = rolling_forecast(run.model, hist.astype(np.float64), steps, window=pipe.window,
                                diff=pipe.diff, shift=pipe.shift[series, :o],
                                scale=pipe.scale[series, :o], batch=BATCH)
    truth = panel.values[rows[:, None] + np.arange(1, steps + 1)[None, :], :o]
    if studentise is None:
        return intervals.calibrate(truth, pred, levels, pipe.scale[series, :o])
    return adaptive.rolled(truth, pred, levels, rows, studentise)


def volatility_now(model: torch.nn.Module, pipe: PanelPipeline, enc: Encoded, cal: Adaptive
                   ) -> np.ndarray:
    """(S, O) each series' local volatility after its last row, from its one-step errors;
    series in groups of at most ``VOLATILITY_WINDOWS`` forecasts (every row of a 10,000-series
    panel at once would hold several arrays of its size)."""
    o, panel = len(pipe.targets), enc.dataset
    out = cal.start(pipe.scale[:, :o])
    counts = pipe.segments("all", panel.offsets).counts.numpy()
    ends = np.cumsum(counts)
    group, first = 0, 0
    while first < len(counts):
        stop = max(first + 1, int(np.searchsorted(ends, group + VOLATILITY_WINDOWS, "right")))
        only = np.arange(first, stop)
        pred, series, last = forecasts(model, pipe, enc, "all", only=only)
        if len(pred):
            truth = known_truth(pipe, panel, series, last)
            heads = series[adaptive.first_rows(series)]
            _, after = adaptive.volatility(truth[:, 0] - pred[:, 0], series, out[heads])
            out[heads] = after
        group, first = int(ends[stop - 1]), stop
    return out


def long_table(info: dict, ids: list[str], series: np.ndarray, times: np.ndarray,
               values: np.ndarray, columns: list[str]) -> pd.DataFrame:
    """A long-format frame: id, time and the value columns."""
    frame = pd.DataFrame({info["id"]: np.asarray(ids, dtype=object)[series],
                          info["time"] or "step": times})
    for j, c in enumerate(columns):
        frame[c] = values[:, j]
    frame.attrs["long_format"] = True
    return frame
