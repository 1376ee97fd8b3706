"""Predictions in original units: one-step and multi-step forecasts, generation, streaming.

Everything runs under ``torch.inference_mode`` in eval mode, in batches, and converts back
through the pipeline (unscale, integrate ``diff``) so callers only ever see original units.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from numpy.typing import DTypeLike
from torch import nn

from rnnkit.data.covariates import rows_ahead
from rnnkit.data.pairs import Pairs
from rnnkit.data.sequences import SequencePipeline
from rnnkit.data.series import SeriesPipeline
from rnnkit.errors import DataError

BATCH = 4096  # windows per model call
Draw = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (point, parameters) -> draws


@torch.inference_mode()
def model_outputs(model: nn.Module, pairs: Pairs, batch: int = BATCH) -> np.ndarray:
    """Raw (scaled) model outputs for every pair, batched: (N, H, O) or (N, T, O)."""
    model.eval()
    outs = []
    for s in range(0, len(pairs), batch):
        b = pairs.rows(s, s + batch)
        y, _ = model(b.inputs, lengths=b.lengths)
        outs.append(y)
    if not outs:
        return np.zeros((0, 1, 1))
    return torch.cat(outs).numpy().astype(np.float64)


@torch.inference_mode()
def model_params(model: nn.Module, pairs: Pairs, batch: int = BATCH
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(point (N, H, O), distribution parameters (N, H, O, P)) of a probabilistic model, raw
    and scaled, for every pair."""
    model.eval()
    points, extras = [], []
    for s in range(0, len(pairs), batch):
        b = pairs.rows(s, s + batch)
        y, _, extra = model(b.inputs, lengths=b.lengths, params=True)
        points.append(y)
        extras.append(extra)
    return (torch.cat(points).numpy().astype(np.float64),
            torch.cat(extras).numpy().astype(np.float64))


def series_forecasts(model: nn.Module, pipe: SeriesPipeline, values: np.ndarray,
                     origins: np.ndarray) -> np.ndarray:
    """Forecasts (N, H, O) in original units of rows origin+1..origin+H, one per origin."""
    pairs = pipe.windows(pipe.tensor(values), origins)
    return pipe.forecast_units(model_outputs(model, pairs), values, origins)


def forecast_future(model: nn.Module, pipe: SeriesPipeline, history: np.ndarray,
                    steps: int, ahead: np.ndarray | None = None) -> np.ndarray:
    """Continue a series past its end: primes on the last window of ``history`` (rows, O; all
    the table's columns for a run with covariates), forecasts ``horizon`` rows, appends them
    and repeats. ``ahead``: the known covariates of the rows after the end (data/covariates.py
    ``rows_ahead`` of them). Returns (steps, O)."""
    if pipe.covariates:
        rows = ahead_rows(pipe, np.asarray(history, dtype=np.float64), steps, ahead)
        return covariate_rolling(model, pipe, rows[None], steps)[0]
    o = len(pipe.targets)
    # float32 like the pipeline's working rows (read like its table), so a forecast from the
    # data's last row equals the prediction at that origin
    return rolling_forecast(model, np.asarray(history)[None], steps, window=pipe.window,
                            diff=pipe.diff, shift=np.asarray(pipe.scaler.shift[:o]),
                            scale=np.asarray(pipe.scaler.scale[:o]),
                            last_step=pipe.shape == "next", read_as=np.float32)[0]


def ahead_rows(pipe: SeriesPipeline, history: np.ndarray, steps: int,
               ahead: np.ndarray | None) -> np.ndarray:
    """(need + rows ahead, C) the last window of ``history`` and the rows after it: their
    known covariates from ``ahead``, their targets (and past features) unknown (NaN). A run
    with past features forecasts at most one round (its horizon): later rounds would need the
    features' future values."""
    if pipe.features and steps > pipe.lead:
        raise DataError(
            f"this run forecasts at most {pipe.lead} step{'s' if pipe.lead > 1 else ''} ahead: "
            f"its features {pipe.features} are known only up to the last row, and each step "
            f"further would need their future values; forecast {pipe.lead} steps, fit with "
            "--horizon N (a direct N-step head), or give columns whose coming values you know "
            "as --future-features.")
    need, k = pipe.window + int(pipe.diff), len(pipe.known.columns)
    if len(history) < need:
        raise DataError(f"forecast needs at least {need} past values, got {len(history)}.")
    rows = np.full((need + rows_ahead(steps, pipe.lead), history.shape[1]), np.nan)
    rows[:need] = history[-need:]
    if k:
        rows[need:, -k:] = ahead
    return rows


def rolled_from(model: nn.Module, pipe: SeriesPipeline, values: np.ndarray,
                origins: np.ndarray, steps: int) -> np.ndarray:
    """(N, steps, O) forecasts rolled ``steps`` rows from each origin of ``values`` (rows,
    C), the known covariates of the rows after each origin read from ``values`` (which must
    hold ``rows_ahead`` of them)."""
    o, need = len(pipe.targets), pipe.window + int(pipe.diff)
    if not pipe.covariates:
        rows = origins[:, None] + np.arange(-need + 1, 1)[None, :]
        return rolling_forecast(model, np.asarray(values[rows, :o], dtype=np.float64), steps,
                                window=pipe.window, diff=pipe.diff,
                                shift=np.asarray(pipe.scaler.shift[:o]),
                                scale=np.asarray(pipe.scaler.scale[:o]),
                                last_step=pipe.shape == "next", read_as=np.float32)
    span = np.arange(-need + 1, rows_ahead(steps, pipe.lead) + 1)
    return covariate_rolling(model, pipe, np.asarray(values, dtype=np.float64)[
        origins[:, None] + span[None, :]], steps)


@torch.inference_mode()
def covariate_rolling(model: nn.Module, pipe: Any, rows: np.ndarray, steps: int,
                      draw: Draw | None = None, series: np.ndarray | None = None
                      ) -> np.ndarray:
    """``rolling_forecast`` for a run with covariates, through the pipeline's own working
    rows: ``rows`` (S, need + rows ahead, C) each series' last window and the rows after it
    (their known covariates filled in). Each round forecasts ``lead`` rows, writes them into
    the targets of the rows after the window and moves on. Returns (S, steps, O).

    ``pipe`` gives ``window_inputs(rows, series)`` and ``targets_back(raw, series)``, the
    scaling of its working rows and its way back; ``series`` (S,) numbers each row's series
    for a pipeline that scales each series by its own statistics (a panel's)."""
    model.eval()
    need, lead, o = pipe.window + int(pipe.diff), pipe.lead, len(pipe.targets)
    rows = np.array(rows, dtype=np.float64)  # a copy: forecasts are written into it
    out: list[np.ndarray] = []
    done = 0
    while done < steps:
        x = torch.from_numpy(pipe.window_inputs(rows[:, done : done + need + lead], series))
        raw = np.concatenate([_outputs(model, x[s : s + BATCH], draw)
                              for s in range(0, len(x), BATCH)])  # (S, H, O) or (S, W, O)
        if pipe.shape == "next":
            raw = raw[:, -1:]
        pred = pipe.targets_back(raw, series)
        if pipe.diff:
            pred = rows[:, done + need - 1, None, :o] + np.cumsum(pred, axis=1)
        rows[:, done + need : done + need + pred.shape[1], :o] = pred
        out.append(pred)
        done += pred.shape[1]
    return np.concatenate(out, axis=1)[:, :steps]


@torch.inference_mode()
def rolling_forecast(model: nn.Module, history: np.ndarray, steps: int, *, window: int,
                     diff: bool, shift: np.ndarray, scale: np.ndarray, last_step: bool = False,
                     read_as: DTypeLike = np.float64, batch: int = BATCH,
                     draw: Draw | None = None) -> np.ndarray:
    """Continue S series ``steps`` rows past the end of ``history`` (S, rows, O), all series in
    one batch (of at most ``batch`` rows per model call) per round: each round forecasts from
    the last ``window`` working rows, appends the forecast and repeats. Returns (S, steps, O)
    in original units.

    Args:
        window: rows the model sees; ``history`` needs ``window + diff`` rows at least.
        diff: the model works on changes ``y[t] - y[t-1]``; forecasts are integrated back from
            each series' last level.
        shift, scale: the targets' scaling, ``x_scaled = (x - shift) / scale``: (O,) shared by
            every series or (S, O) per series.
        last_step: the model predicts per step (shape ``next``); only its last output, the row
            after the window, is a forecast.
        read_as: dtype the rows are read in before differencing and scaling (float32 for a
            series pipeline, whose working rows are float32).
        draw: a probabilistic model's sampler: (point, parameters) -> one draw each, in
            scaled units; the draws are fed back instead of the points (a sample path).
    """
    need = window + int(diff)
    if steps < 1:
        raise DataError(f"steps={steps} must be at least 1.")
    if history.shape[1] < need:
        raise DataError(f"forecast needs at least {need} past values, got {history.shape[1]}.")
    model.eval()
    shift = np.expand_dims(np.asarray(shift, dtype=np.float64), -2)  # (S, 1, O) or (1, O)
    scale = np.expand_dims(np.asarray(scale, dtype=np.float64), -2)
    hist = history[:, -need:].astype(np.float64)  # (S, need, O)
    out: list[np.ndarray] = []
    done = 0
    while done < steps:
        rows = hist[:, -need:].astype(read_as)
        x = np.diff(rows, axis=1) if diff else rows  # (S, W, O)
        x = ((x.astype(np.float64) - shift) / scale).astype(np.float32)
        xt = torch.from_numpy(x)
        raw = np.concatenate([_outputs(model, xt[s : s + batch], draw)
                              for s in range(0, len(xt), batch)])  # (S, H, O) or (S, W, O)
        if last_step:
            raw = raw[:, -1:]
        pred = raw.astype(np.float64) * scale + shift
        if diff:
            pred = hist[:, -1:, :] + np.cumsum(pred, axis=1)
        out.append(pred)
        hist = np.concatenate([hist, pred], axis=1)[:, -need:]
        done += pred.shape[1]
    return np.concatenate(out, axis=1)[:, :steps]


def _outputs(model: nn.Module, x: torch.Tensor, draw: Draw | None) -> np.ndarray:
    if draw is None:
        return model(x)[0].numpy()
    y, _, extra = model(x, params=True)
    return draw(y.numpy().astype(np.float64), extra.numpy().astype(np.float64))


def sample_paths(model: nn.Module, history: np.ndarray, steps: int, paths: int, draw: Draw,
                 **kw: Any) -> np.ndarray:
    """(S, paths, steps, O) sample paths of S series past the end of ``history`` (S, rows,
    O); ``kw`` as for :func:`rolling_forecast` (a per-series shift and scale are repeated for
    each path)."""
    s = len(history)
    for key in ("shift", "scale"):
        value = np.asarray(kw[key])
        if value.ndim == 2:
            kw[key] = np.repeat(value, paths, axis=0)
    out = rolling_forecast(model, np.repeat(history, paths, axis=0), steps, draw=draw, **kw)
    return out.reshape(s, paths, *out.shape[1:])


@torch.inference_mode()
def sequence_outputs(model: nn.Module, pipe: SequencePipeline, seqs: list[np.ndarray]
                     ) -> np.ndarray:
    """seq2one: one prediction (N, O) per sequence; next: per-step predictions (N, T, O)."""
    pairs = pipe.padded(seqs, None, np.arange(len(seqs)))
    if pipe.shape == "next":
        # next_step_pairs drops the last step as an input; predict on every real step instead
        x = torch.zeros(len(seqs), max(len(s) for s in seqs), pipe.n_features)
        for i, s in enumerate(seqs):
            x[i, : len(s)] = torch.from_numpy(pipe.inputs_to_model(s))
        pairs = Pairs(x, x)
    raw = model_outputs(model, pairs)
    if pipe.shape == "seq2one":
        raw = raw[:, 0, :]
    return pipe.outputs_to_units(raw)


@torch.inference_mode()
def generate(model: nn.Module, pipe: SequencePipeline, prompts: list[np.ndarray],
             steps: int) -> np.ndarray:
    """Prime on each prompt (len_i, F) and generate ``steps`` values: (N, steps, O), batched
    over prompts of the same length."""
    if steps < 1:
        raise DataError(f"steps={steps} must be at least 1.")
    model.eval()
    out = np.zeros((len(prompts), steps, pipe.n_outputs))
    lengths = np.fromiter((len(p) for p in prompts), dtype=np.int64, count=len(prompts))
    groups = [np.flatnonzero(lengths == n) for n in np.unique(lengths)]
    for idx in groups:
        same = np.stack(prompts) if len(groups) == 1 else np.stack([prompts[i] for i in idx])
        x = torch.from_numpy(pipe.inputs_to_model(same))
        y = model.generate(x, steps)  # (B, steps, O)
        out[idx] = pipe.outputs_to_units(y.numpy().astype(np.float64))
    return out


def refuse_future() -> None:
    """A stream's update given future values for a run that has no future features."""
    raise DataError("stream: this run has no future features, so an update takes no future "
                    "values; leave future out.")


class SeriesOfPanel:
    """``Stream`` for one series of a panel run without known covariates (with them:
    ``streaming.KnownStream``): the global window model with that series' own scaling, fed
    one observation (F,) at a time. It starts primed on the series' last rows
    (``primer``, the run's tail), so its first update already forecasts; with no primer it
    returns NaN until ``window`` (+1 with diff) rows arrived, as a window ``Stream`` does."""

    def __init__(self, model: nn.Module, pipe: Any, series: int,
                 primer: np.ndarray | None = None) -> None:
        self.model, self.pipe = model, pipe
        self.model.eval()
        self.shift, self.scale = pipe.shift[series], pipe.scale[series]  # (F,) each
        self.primer = None if primer is None else np.asarray(primer, dtype=np.float64)
        self.reset()

    def reset(self) -> None:
        """Back to the series' primer (its rows at the end of the fitted data)."""
        self.state, self.last = None, None  # what the server's state file keeps for Stream
        self.buffer: deque[np.ndarray] = deque(maxlen=self.pipe.window + int(self.pipe.diff))
        if self.primer is not None:
            self.buffer.extend(self.primer[-self.buffer.maxlen:])

    @torch.inference_mode()
    def update(self, value: float | np.ndarray, future: Any = None) -> np.ndarray:
        """Observe ``value`` (scalar or (F,)); return the forecast of the next value (O,).
        (A panel with known covariates streams by ``streaming.KnownStream``, which takes
        ``future``.)"""
        if future is not None:
            refuse_future()
        x = np.atleast_1d(np.asarray(value, dtype=np.float64))
        if not np.isfinite(x).all():
            raise DataError(f"stream: observation {value!r} is not a finite number.")
        self.buffer.append(x)
        o = len(self.pipe.targets)
        if len(self.buffer) < (self.buffer.maxlen or 0):
            return np.full(o, np.nan)
        # as the panel pipeline encodes its buffer: rows read as float32, scaled in float64
        rows = np.array(self.buffer, dtype=np.float32)
        work = rows.copy()
        if self.pipe.diff:
            work = rows[1:].copy()
            work[:, :o] = rows[1:, :o] - rows[:-1, :o]
        scaled = ((work - self.shift) / self.scale).astype(np.float32)
        raw = self.model(torch.from_numpy(scaled)[None])[0].numpy()[0, 0].astype(np.float64)
        pred = raw * self.scale[:o] + self.shift[:o]
        return rows[-1, :o].astype(np.float64) + pred if self.pipe.diff else pred
