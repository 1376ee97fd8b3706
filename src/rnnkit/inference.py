"""Predictions in original units: one-step and multi-step forecasts, generation, streaming.

Everything runs under ``torch.inference_mode`` in eval mode, in batches, and converts back
through the pipeline (unscale, integrate ``diff``) so callers only ever see original units.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from numpy.typing import DTypeLike
from torch import nn

from rnnkit.data.pairs import Pairs
from rnnkit.data.sequences import SequencePipeline
from rnnkit.data.series import SeriesPipeline
from rnnkit.errors import DataError
from rnnkit.models.cells import LoopRNN

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
                    steps: int) -> np.ndarray:
    """Continue a series past its end: primes on the last window of ``history`` (rows, O),
    forecasts ``horizon`` rows, appends them and repeats. Returns (steps, O)."""
    if pipe.features:
        raise DataError(
            f"forecast past the end needs future values of the features {pipe.features}, which "
            "are not known; use predict with a table that has them."
        )
    o = len(pipe.targets)
    # float32 like the pipeline's working rows (read like its table), so a forecast from the
    # data's last row equals the prediction at that origin
    return rolling_forecast(model, np.asarray(history)[None], steps, window=pipe.window,
                            diff=pipe.diff, shift=np.asarray(pipe.scaler.shift[:o]),
                            scale=np.asarray(pipe.scaler.scale[:o]),
                            last_step=pipe.shape == "next", read_as=np.float32)[0]


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


class _ScalarStepper:
    """One scaled value in, one scaled prediction out, for a per-step model with one input and
    one output: torch's cell kernel on the model's own weights (looked up once; they are live
    references, so later training shows), the head as one linear call, the linear path as a
    Python multiply. State is a per-layer list. This is what streaming latency is made of."""

    def __init__(self, model: nn.Module) -> None:
        cfg, enc = model.cfg, model.encoder
        self.lstm, self.loop = cfg.cell == "lstm", isinstance(enc, LoopRNN)
        self.fn = (torch.lstm_cell if self.lstm else torch.gru_cell if cfg.cell == "gru"
                   else None if self.loop
                   else {"tanh": torch.rnn_tanh_cell, "relu": torch.rnn_relu_cell}[
                       enc.nonlinearity])
        self.act = enc.act if self.loop else None
        self.layers = [tuple(getattr(enc, f"{w}_l{k}") for w in
                             ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
                       for k in range(cfg.num_layers)]
        self.head_w, self.head_b = model.head.weight, model.head.bias
        self.lin_w = None if model.linear is None else model.linear.weight
        zero = torch.zeros(1, cfg.units)
        self.zero = [(zero, zero) if self.lstm else zero for _ in self.layers]
        self.x = torch.zeros(1, 1)

    def __call__(self, value: float, state: list | None) -> tuple[float, list]:
        self.x.fill_(value)
        inp, new = self.x, []
        for (w_ih, w_hh, b_ih, b_hh), prev in zip(self.layers, state or self.zero, strict=True):
            if self.lstm:
                h, c = torch.lstm_cell(inp, prev, w_ih, w_hh, b_ih, b_hh)
                new.append((h, c))
            elif self.loop:
                h = self.act(torch.addmm(torch.nn.functional.linear(inp, w_ih, b_ih + b_hh),
                                         prev, w_hh.t()))
                new.append(h)
            else:
                h = self.fn(inp, prev, w_ih, w_hh, b_ih, b_hh)
                new.append(h)
            inp = h
        y = torch.nn.functional.linear(inp, self.head_w, self.head_b).item()
        if self.lin_w is not None:
            y += self.lin_w.item() * value
        return y, new


class Stream:
    """Feeds one observation at a time and returns the prediction of the next one.

    Per-step models carry their hidden state across calls (explicitly, via ``model.step``);
    window models keep the last ``window`` observations and re-run them. Before enough history
    has arrived a window model returns NaN. ``reset()`` starts a new independent sequence.
    """

    def __init__(self, model: nn.Module, pipe: SeriesPipeline | SequencePipeline) -> None:
        self.model, self.pipe = model, pipe
        self.model.eval()
        self.windowed = isinstance(pipe, SeriesPipeline) and pipe.shape == "window"
        self.diff = isinstance(pipe, SeriesPipeline) and pipe.diff
        scaler = pipe.scaler if isinstance(pipe, SeriesPipeline) else pipe.x_scaler
        out_scaler = (pipe.y_scaler if isinstance(pipe, SequencePipeline) and pipe.y_scaler
                      else scaler)
        self.n_out = len(pipe.targets) if isinstance(pipe, SeriesPipeline) else pipe.n_outputs
        # Python floats for the common one-in, one-out case: a value costs a few flops, not
        # a round of numpy calls (the per-step latency is what streaming users feel)
        self._in = (scaler.shift[0], scaler.scale[0])
        self._out = (out_scaler.shift[0], out_scaler.scale[0])
        self._scalar = len(scaler.shift) == 1 and self.n_out == 1
        self._x = torch.zeros(1, len(scaler.shift))
        linear = getattr(model, "linear", None)
        self._fast = (_ScalarStepper(model) if self._scalar and not self.windowed
                      and (linear is None or linear.in_features == 1) else None)
        self.reset()

    def reset(self) -> None:
        self.state = None
        self.last: np.ndarray | float | None = None
        need = self.pipe.window + int(self.diff) if self.windowed else 1
        self.buffer: deque[np.ndarray] = deque(maxlen=need)

    @torch.inference_mode()
    def update(self, value: float | np.ndarray) -> np.ndarray:
        """Observe ``value`` (scalar or (F,)); return the forecast of the next value (O,)."""
        if self.diff and not self.windowed and self.last is None:
            # nothing to difference yet: the working series starts at the second observation
            x = np.atleast_1d(np.asarray(value, dtype=np.float64))
            if not np.isfinite(x).all():
                raise DataError(f"stream: observation {value!r} is not a finite number.")
            self.last = float(x[0]) if self._fast is not None and x.size == 1 else x
            return np.full(self.n_out, np.nan)
        if self._fast is not None and np.size(value) == 1:
            v = float(np.reshape(value, -1)[0]) if np.ndim(value) else float(value)
            if not math.isfinite(v):
                raise DataError(f"stream: observation {value!r} is not a finite number.")
            work = v - (self.last if self.last is not None else v) if self.diff else v
            self.last = v
            y, self.state = self._fast((work - self._in[0]) / self._in[1], self.state)
            pred = y * self._out[1] + self._out[0]
            return np.array([v + pred if self.diff else pred])
        x = np.atleast_1d(np.asarray(value, dtype=np.float64))
        if not np.isfinite(x).all():
            raise DataError(f"stream: observation {value!r} is not a finite number.")
        pipe = self.pipe
        if self.windowed:
            self.buffer.append(x)
            if len(self.buffer) < self.buffer.maxlen:
                return np.full(self.n_out, np.nan)
            hist = np.vstack([*self.buffer, np.zeros((pipe.horizon, len(x)))])
            return series_forecasts(self.model, pipe, hist, np.array([len(self.buffer) - 1]))[0, 0]
        if isinstance(pipe, SeriesPipeline):  # per-step series model, several columns
            o = self.n_out
            work = x.copy()
            if pipe.diff:
                prev = self.last if isinstance(self.last, np.ndarray) else x
                work[:o] = x[:o] - prev[:o]
            self.last = x
            inp = torch.from_numpy(pipe.scaler.transform(work))[None, :]
            y, self.state = self.model.step(inp, self.state)
            pred = pipe.scaler.inverse(y.numpy()[0], slice(0, o))
            return x[:o] + pred if pipe.diff else pred
        inp = torch.from_numpy(pipe.inputs_to_model(x))[None, :]
        y, self.state = self.model.step(inp, self.state)
        return pipe.outputs_to_units(y.numpy()[0].astype(np.float64))


class SeriesOfPanel:
    """``Stream`` for one series of a panel run: the global window model with that series' own
    scaling, fed one observation (F,) at a time. It starts primed on the series' last rows
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
    def update(self, value: float | np.ndarray) -> np.ndarray:
        """Observe ``value`` (scalar or (F,)); return the forecast of the next value (O,)."""
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
