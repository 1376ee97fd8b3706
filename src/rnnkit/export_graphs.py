"""The torch modules that ``export.py`` traces into ONNX graphs: the rolling forecast
(``Forecaster``: ``one_round`` and ``rolled``, shared by every forecast form, the covariate
ones of ``export_covariates.py`` included), the streaming buffer and the per-step state.
They compute as ``inference.py`` does (rows read as float32, scaled in float64), so that
onnxruntime gives what ``Run.forecast`` and ``Run.stream`` give.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn


class Forecaster(nn.Module):
    """The rolling forecast as a torch module, traced into the ONNX graph."""

    def __init__(self, model: nn.Module, pipe: Any, steps: int, halves: np.ndarray | None
                 ) -> None:
        super().__init__()
        self.model, self.steps = model, steps
        self.window, self.diff = int(pipe.window), bool(pipe.diff)
        self.last_step = getattr(pipe, "shape", "window") == "next"
        # (levels, steps, O) interval half-widths per unit of the multiplier
        self.register_buffer("halves", torch.zeros(0) if halves is None else
                             torch.from_numpy(np.asarray(halves, dtype=np.float64)))

    def one_round(self, hist: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor,
                  extra: torch.Tensor | None = None) -> torch.Tensor:
        """The next forecasts (B, H, O) in original units from the last rows of ``hist``;
        ``extra`` (B, window, E): scaled inputs joined to each row (covariates' leads)."""
        need = self.window + int(self.diff)
        rows = hist[:, -need:].to(torch.float32)
        x = rows[:, 1:] - rows[:, :-1] if self.diff else rows
        x = ((x.to(torch.float64) - shift) / scale).to(torch.float32)
        raw = self.model(x if extra is None else torch.cat([x, extra], dim=-1))[0]
        if self.last_step:
            raw = raw[:, -1:]
        pred = raw.to(torch.float64) * scale + shift
        if self.diff:
            pred = hist[:, -1:] + torch.cumsum(pred, dim=1)
        return pred

    def rolled(self, history: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor,
               extra: Any = None) -> torch.Tensor:
        """``extra(done)``: the joined inputs of the round ``done`` rows past the end."""
        hist, out, done = history, [], 0
        while done < self.steps:  # unrolled at export: the step count is fixed
            pred = self.one_round(hist, shift, scale, None if extra is None else extra(done))
            out.append(pred)
            hist = torch.cat([hist, pred], dim=1)
            done += int(pred.shape[1])
        return torch.cat(out, dim=1)[:, : self.steps]

    def buffered(self, x: torch.Tensor, buffer: torch.Tensor, seen: torch.Tensor,
                 shift: torch.Tensor | None, scale: torch.Tensor | None,
                 forecast: Any = None) -> tuple:
        """One observation into the buffer of recent values; the next value's forecast, NaN
        until the buffer is full. ``forecast(buffer)``: the round from the buffer's rows, for
        a buffer of raw table rows (covariates); by default ``one_round`` on its targets."""
        buffer = torch.cat([buffer[:, 1:], x[:, None, :]], dim=1)
        seen = seen + 1
        y = (self.one_round(buffer, shift, scale) if forecast is None
             else forecast(buffer))[:, 0]
        full = (seen >= buffer.shape[1])[:, None]
        return torch.where(full, y, torch.full_like(y, float("nan"))), buffer, seen

    def with_bounds(self, point: torch.Tensor, sigma: torch.Tensor) -> tuple:
        if self.halves.numel() == 0:
            return (point,)
        outs = [point]
        for i in range(self.halves.shape[0]):
            half = self.halves[i][None] * sigma[:, None, :]
            outs += [point - half, point + half]
        return tuple(outs)


class SeriesGraph(Forecaster):
    """history -> forecast (and bounds) with the run's own scaling built in."""

    def __init__(self, model: nn.Module, pipe: Any, steps: int, halves: np.ndarray | None
                 ) -> None:
        super().__init__(model, pipe, steps, halves)
        o = len(pipe.targets)
        self.register_buffer("shift", torch.tensor(pipe.scaler.shift[:o], dtype=torch.float64))
        self.register_buffer("scale", torch.tensor(pipe.scaler.scale[:o], dtype=torch.float64))

    def forward(self, history: torch.Tensor) -> tuple:
        point = self.rolled(history, self.shift, self.scale)
        return self.with_bounds(point, torch.ones_like(point[:, 0]))


class PanelGraph(Forecaster):
    """history, shift, scale, sigma -> forecast (and bounds): per-series scaling as inputs."""

    def forward(self, history: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor,
                sigma: torch.Tensor) -> tuple:
        point = self.rolled(history, shift[:, None, :], scale[:, None, :])
        return self.with_bounds(point, sigma)


class StreamGraph(Forecaster):
    """x, buffer, seen -> y, buffer, seen: one observation at a time, as ``Stream`` does."""

    def __init__(self, model: nn.Module, pipe: Any) -> None:
        super().__init__(model, pipe, 1, None)
        o = len(pipe.targets)
        self.register_buffer("shift", torch.tensor(pipe.scaler.shift[:o], dtype=torch.float64))
        self.register_buffer("scale", torch.tensor(pipe.scaler.scale[:o], dtype=torch.float64))

    def forward(self, x: torch.Tensor, buffer: torch.Tensor, seen: torch.Tensor) -> tuple:
        return self.buffered(x, buffer, seen, self.shift, self.scale)


class PanelStreamGraph(Forecaster):
    """x, buffer, seen, shift, scale -> y, buffer, seen: one series of a panel, by its own
    scaling, as ``Run.stream(series=id)`` steps it."""

    def __init__(self, model: nn.Module, pipe: Any) -> None:
        super().__init__(model, pipe, 1, None)

    def forward(self, x: torch.Tensor, buffer: torch.Tensor, seen: torch.Tensor,
                shift: torch.Tensor, scale: torch.Tensor) -> tuple:
        return self.buffered(x, buffer, seen, shift[:, None, :], scale[:, None, :])


class StepGraph(nn.Module):
    """x, h[, c][, last], seen -> y, h[, c][, last], seen: a per-step (``--shape next``)
    model's hidden state carried between calls, as ``Stream`` does. ``x`` (batch, targets +
    past features): a per-step row's features are read with its targets, so the model needs
    no future value of them. ``last``, the previous
    value, only when the run differences: its first value only sets ``last`` (y is NaN, the
    state unchanged), as there is no change to feed yet. A run with covariates known ahead
    also takes ``known`` (batch, K) after ``x``: their raw values at the row ``y`` forecasts
    (x's row + 1: a per-step row carries the covariates of the row after it)."""

    def __init__(self, model: nn.Module, pipe: Any) -> None:
        super().__init__()
        self.model, self.diff = model, bool(pipe.diff)
        self.lstm = model.cfg.cell == "lstm"
        self.o, self.known = len(pipe.targets), bool(pipe.known.columns)
        # the scaler's columns: targets, past features, the known covariates' leads (lead 1)
        o, p, sc = self.o, len(pipe.features), pipe.scaler
        for name, cut in (("", slice(0, o)), ("f", slice(o, o + p)), ("k", slice(o + p, None))):
            self.register_buffer(f"{name}shift", torch.tensor(sc.shift[cut], dtype=torch.float64))
            self.register_buffer(f"{name}scale", torch.tensor(sc.scale[cut], dtype=torch.float64))

    def forward(self, x: torch.Tensor, *rest: torch.Tensor) -> tuple:
        known, rest = (rest[0], rest[1:]) if self.known else (None, rest)
        k = len(rest) - 1 - int(self.diff)
        state, seen = rest[:k], rest[-1]  # (h,) or (h, c), each (layers, B, units)
        first = (seen == 0)[:, None]  # (B, 1)
        x, feats = x[:, : self.o], x[:, self.o :]  # (B, O) targets, (B, P) past features
        work = x - torch.where(first, x, rest[k]) if self.diff else x  # only targets differ
        scaled = torch.cat([((work - self.shift) / self.scale).to(torch.float32),
                            ((feats - self.fshift) / self.fscale).to(torch.float32)], dim=-1)
        if known is not None:  # read as the pipeline's table rows (float32), scaled in float64
            leads = (known.to(torch.float32).to(torch.float64) - self.kshift) / self.kscale
            scaled = torch.cat([scaled, leads.to(torch.float32)], dim=-1)  # (B, O + K)
        out, new = self.model(scaled[:, None, :], state=state if self.lstm else state[0])
        new = tuple(new) if self.lstm else (new,)
        pred = out[:, 0].to(torch.float64) * self.scale + self.shift
        if self.diff:
            pred = torch.where(first, torch.full_like(pred, float("nan")), x + pred)
            new = tuple(torch.where(first[None], old, n) for old, n in zip(state, new,
                                                                           strict=True))
        return (pred, *new, *([x] if self.diff else []), seen + 1)
