"""Streaming: one observation in, the forecast of the next one out.

``Stream`` carries a per-step model's hidden state (or a window model's last rows) from call
to call; ``DatedStream`` does the same for a run whose inputs include calendar features, and
keeps the clock that dates each observation (one step of the data's frequency after the one
before, from the end of the fitted data), so the calendar of the row it forecasts is known.
``SeriesOfPanel`` (inference.py) streams one series of a panel.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import pandas as pd
import torch
from torch import nn

from rnnkit.data import calendar
from rnnkit.data.clock import extend_index
from rnnkit.data.sequences import SequencePipeline
from rnnkit.data.series import SeriesPipeline
from rnnkit.errors import DataError
from rnnkit.inference import covariate_rolling, series_forecasts
from rnnkit.models.cells import LoopRNN


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


class DatedStream:
    """``Stream`` for a series run with calendar features: each observation is dated one step
    of the data's frequency after the previous one, starting after the fitted data's end
    (``clock``, the run's ``index_info``), and the calendar of the rows it forecasts is made
    from those dates. Columns the user knows ahead (``--future-features``) are not streamed:
    their coming values would have to come with every observation."""

    def __init__(self, model: nn.Module, pipe: SeriesPipeline, clock: dict) -> None:
        if pipe.known.future:
            raise DataError(f"streaming reads one observation at a time; this run also needs "
                            f"the coming values of its future features {list(pipe.known.future)}"
                            ", which a stream does not take: use forecast(steps, future=...).")
        if clock.get("kind") != "datetime":
            raise DataError("streaming a run with calendar features needs the dates of its "
                            "data; this run's clock has none.")
        self.model, self.pipe, self.clock = model, pipe, dict(clock)
        self.model.eval()
        self.width = len(pipe.targets) + len(pipe.features)
        self.reset()

    def reset(self) -> None:
        """Back to no observations, the clock at the end of the fitted data."""
        self.state = None
        self.last: np.ndarray | None = None  # the previous row (diff, per-step models)
        need = self.pipe.window + int(self.pipe.diff) if self.pipe.shape == "window" else 1
        self.buffer: deque[np.ndarray] = deque(maxlen=need)
        self.at = str(self.clock["last"])  # the time of the last row seen

    @torch.inference_mode()
    def update(self, value: float | np.ndarray) -> np.ndarray:
        """Observe ``value`` (scalar or (targets + features,)) at the next time; return the
        forecast of the value after it (O,)."""
        x = np.atleast_1d(np.asarray(value, dtype=np.float64))
        if x.shape != (self.width,) or not np.isfinite(x).all():
            raise DataError(f"stream: observation {value!r} is not {self.width} finite "
                            f"number{'s' if self.width > 1 else ''} (the targets, then the "
                            "features).")
        pipe, o = self.pipe, len(self.pipe.targets)
        times = extend_index({**self.clock, "last": self.at}, 1 + pipe.lead)
        cal = calendar.encode(times, list(pipe.known.calendar), pipe.known.holidays)
        row = np.concatenate([x, cal[0]])
        nxt = np.concatenate([np.full((pipe.lead, self.width), np.nan), cal[1:]], axis=1)
        self.at = pd.Timestamp(times[0]).isoformat()
        if pipe.shape == "window":
            self.buffer.append(row)
            if len(self.buffer) < (self.buffer.maxlen or 0):
                return np.full(o, np.nan)
            rows = np.vstack([*self.buffer, nxt])
            return covariate_rolling(self.model, pipe, rows[None], 1)[0, 0]
        if pipe.diff and self.last is None:  # nothing to difference yet
            self.last = row
            return np.full(o, np.nan)
        block = np.vstack([*([self.last] if pipe.diff else []), row, nxt[:1]])
        work = pipe.scaler.transform(pipe.working(block)[:1])
        y, self.state = self.model.step(torch.from_numpy(work), self.state)
        self.last = row
        pred = pipe.scaler.inverse(y.numpy()[0], slice(0, o))
        return x[:o] + pred if pipe.diff else pred
