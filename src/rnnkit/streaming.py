"""Streaming: one observation in, the forecast of the next one out.

``Stream`` carries a per-step model's hidden state (or a window model's last rows) from call
to call. ``KnownStream`` does the same for a run whose inputs include covariates known ahead
(a series run's, or one series of a panel's): it keeps the clock that dates each observation
(one step of the data's frequency after the one before), so the calendar of the rows it
forecasts is known, and the values of the user's future features that the updates gave for
the rows ahead, so no value is given twice. ``SeriesOfPanel`` (inference.py) streams one
series of a panel without known covariates.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from rnnkit.data import calendar
from rnnkit.data.clock import extend_index, future_times
from rnnkit.data.sequences import SequencePipeline
from rnnkit.data.series import SeriesPipeline
from rnnkit.errors import DataError, did_you_mean
from rnnkit.inference import covariate_rolling, refuse_future, series_forecasts
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
    def update(self, value: float | np.ndarray, future: Any = None) -> np.ndarray:
        """Observe ``value`` (scalar or (F,)); return the forecast of the next value (O,).
        ``future`` is for runs with future features (``KnownStream``); here it is refused."""
        if future is not None:
            refuse_future()
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


TimesAfter = Callable[[str, int], pd.DatetimeIndex]  # (a row's time, n) -> the n times after it


def times_after(clock: dict, panel: bool = False) -> TimesAfter | None:
    """The dates of the rows after a given time on a run's clock (a series run's
    ``index_info``, or a panel's ``time_info`` with ``panel``); None when its rows have no
    regular dates (numbered rows, an irregular index)."""
    if clock.get("kind") != "datetime" or not clock.get("freq"):
        return None
    if panel:
        return lambda at, n: pd.DatetimeIndex(
            future_times(clock, np.array([pd.Timestamp(at).to_datetime64()]), n)[0])
    return lambda at, n: pd.DatetimeIndex(extend_index({**clock, "last": at}, n))


class KnownStream:
    """``Stream`` for a run whose inputs include covariates known ahead (data/covariates.py):
    calendar features, made from each observation's date, and the user's future features,
    whose values come with the updates. Input row t carries the known values of rows
    t+1..t+lead, so the forecast after an observation reads those of the ``lead`` rows after
    it (``pipe.lead``: the horizon of a window model, 1 per step).

    ``update(value, future)``: ``value`` the observed row's targets and past features;
    ``future`` each future feature's values for the ``lead`` rows after it (a mapping column
    -> sequence, or a DataFrame with those columns). The observed row's own values are the
    first ones the update before gave (the stream keeps them: its windows read them), so a
    stream's first update (and the first after ``reset``) gives them too: ``lead + 1`` values,
    the observed row's first. ``future_rows`` says how many the next update takes. A value
    given again for the same row (a revised plan) replaces the earlier one.

    Each observation is dated one step of the data's frequency after the previous, from
    ``at`` (the fitted data's end; ``clock``: the dates after a time, None for rows without
    dates). A panel's series (``series``, its number) is scaled by its own statistics and
    starts primed on ``primer``, its last rows in the fitted data (raw, with their known
    covariates), so its first update already forecasts; a series run's stream starts empty
    and returns NaN until a window (+1 with diff) arrived.
    """

    def __init__(self, model: nn.Module, pipe: Any, clock: TimesAfter | None, at: str | None,
                 series: int | None = None, primer: np.ndarray | None = None) -> None:
        if pipe.known.dated and (clock is None or at is None):
            raise DataError("streaming a run with calendar features needs the dates of its "
                            "data; this run's clock has none.")
        self.model, self.pipe, self.clock, self.start = model, pipe, clock, at
        self.model.eval()
        self.series = None if series is None else np.array([series])
        self.primer = None if primer is None else np.asarray(primer, dtype=np.float64)
        self.width = len(pipe.targets) + len(pipe.features)  # what an observation holds
        self.names = list(pipe.known.future)
        self.reset()

    def reset(self) -> None:
        """Back to no observations (a panel series: to its primer), the clock at the start."""
        self.state = None
        self.last: np.ndarray | None = None  # the previous row (diff, per-step models)
        self.row: np.ndarray | None = None  # the last observed row, with its known covariates
        self.ahead: np.ndarray | None = None  # (lead, future features): the rows after it
        pipe = self.pipe
        need = pipe.window + int(pipe.diff) if pipe.shape == "window" else 1
        self.buffer: deque[np.ndarray] = deque(maxlen=need)
        if self.primer is not None:
            self.buffer.extend(self.primer[-need:])
        self.at = self.start  # the time of the last row seen

    @property
    def future_rows(self) -> int:
        """Values of each future feature the next update takes (0: the run has none)."""
        return (self.pipe.lead + int(self.ahead is None)) if self.names else 0

    @torch.inference_mode()
    def update(self, value: float | np.ndarray, future: Any = None) -> np.ndarray:
        """Observe ``value`` (scalar or (targets + features,)) at the next time, with the
        future features' values ``future``; return the forecast of the value after it (O,)."""
        x = np.atleast_1d(np.asarray(value, dtype=np.float64))
        if x.shape != (self.width,) or not np.isfinite(x).all():
            raise DataError(f"stream: observation {value!r} is not {self.width} finite "
                            f"number{'s' if self.width > 1 else ''} (the targets, then the "
                            "features).")
        row, nxt, at = self._rows(x, self._future(future))  # checked before anything changes
        pipe, o = self.pipe, len(self.pipe.targets)
        self.row, self.at = row, at
        self.ahead = nxt[:, self.width : self.width + len(self.names)] if self.names else None
        if pipe.shape == "window":
            self.buffer.append(row)
            if len(self.buffer) < (self.buffer.maxlen or 0):
                return np.full(o, np.nan)
            rows = np.vstack([*self.buffer, nxt])
            return covariate_rolling(self.model, pipe, rows[None], 1, series=self.series)[0, 0]
        if pipe.diff and self.last is None:  # nothing to difference yet
            self.last = row
            return np.full(o, np.nan)
        block = np.vstack([*([self.last] if pipe.diff else []), row, nxt[:1]])
        work = pipe.scaler.transform(pipe.working(block)[:1])
        y, self.state = self.model.step(torch.from_numpy(work), self.state)
        self.last = row
        pred = pipe.scaler.inverse(y.numpy()[0], slice(0, o))
        return x[:o] + pred if pipe.diff else pred

    def _rows(self, x: np.ndarray, given: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                               str | None]:
        """(the observed row (C,), the ``lead`` rows after it (lead, C), its time): raw rows
        as the table holds them, the targets and past features of the rows ahead unknown."""
        lead = self.pipe.lead
        own = given[0] if self.ahead is None else self.ahead[0]
        row, nxt = [x, own], [np.full((lead, self.width), np.nan), given[len(given) - lead:]]
        at = self.at
        if self.clock is not None and at is not None:
            times = self.clock(at, 1 + lead)
            at = pd.Timestamp(times[0]).isoformat()
            if self.pipe.known.dated:
                known = self.pipe.known
                cal = calendar.encode(times, list(known.calendar), known.holidays)
                row.append(cal[0])
                nxt.append(cal[1:])
        return np.concatenate(row), np.concatenate(nxt, axis=1), at

    def _future(self, future: Any) -> np.ndarray:
        """(future_rows, future features) from ``future``, each value checked."""
        if not self.names:
            if future is not None:
                refuse_future()
            return np.zeros((self.pipe.lead + 1, 0))
        want = self.future_rows
        if future is None:
            raise DataError(f"stream: this run reads the coming values of its future features "
                            f"{self.names}; pass update(value, future={{{self.names[0]!r}: "
                            f"[...]}}) with {self._wanted()}.")
        if not isinstance(future, Mapping | pd.DataFrame):
            raise DataError(f"stream: future is a {type(future).__name__}; expected a mapping "
                            f"column -> values (or a DataFrame) with {self._wanted()}.")
        out = np.empty((want, len(self.names)))
        for j, name in enumerate(self.names):
            if name not in future:
                raise DataError(f"stream: future has no column {name!r}, a future feature of "
                                f"the run; give {self._wanted()}."
                                f"{did_you_mean(name, [str(c) for c in future])}")
            cells = np.asarray(future[name], dtype=object).reshape(-1)
            if len(cells) != want:
                raise DataError(f"stream: future[{name!r}] has {len(cells)} value"
                                f"{'s' if len(cells) != 1 else ''}; this update takes "
                                f"{self._wanted()}.")
            out[:, j] = [_number(c, f"future[{name!r}][{i}]") for i, c in enumerate(cells)]
        return out

    def _wanted(self) -> str:
        lead = self.pipe.lead
        after = "the row after it" if lead == 1 else f"the {lead} rows after it"
        if self.ahead is None:
            return (f"{lead + 1} values each: the observed row's own, then {after} (a stream's "
                    "first update gives its own row's too; later ones only the rows after)")
        return f"{lead} value{'s' if lead > 1 else ''} each: {after}"


def _number(cell: Any, where: str) -> float:
    """One known value: a finite number (a bool counts as 0 or 1)."""
    bad = DataError(f"stream: {where} is {cell!r}, which is not a number; give numbers only.")
    if isinstance(cell, str | bytes) or cell is None:
        raise bad
    try:
        value = float(cell)
    except (TypeError, ValueError):
        raise bad from None
    if not math.isfinite(value):
        raise DataError(f"stream: {where} is {cell!r}; give a finite number for every row "
                        "ahead (its planned value).")
    return value
