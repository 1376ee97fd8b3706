"""The ONNX forecast forms of runs with covariates (issue 15): the covariates become inputs.

Each window row's model inputs are its targets, then its past features, then its known
covariates' leads (the values at rows t+1..t+lead, data/covariates.py), then a panel series'
static inputs: the graph builds them from raw values as the pipelines do (rows read as float32,
scaled in float64), and rolls them through the shared ``Forecaster.rolled``.

- ``history`` (batch, L, targets + past features): the table's own columns, raw. A run with
  past features forecasts one round at most (its horizon): later rounds would need the
  features' future values, so ``export`` refuses more steps.
- ``known`` (batch, rows, K): the known covariates' raw values (future features, then the
  calendar columns of ``rnnkit.data.calendar.encode``) at the history's last rows and at the
  ``rows_ahead`` rows after it; slices count from its end, so its length may vary.
- a panel's ``shift`` and ``scale`` (batch, C): each series' centre and spread of every
  column of its table (targets, past features, known covariates), as the run's metadata lists
  them by series; ``sigma`` (batch, targets) as for a plain panel.
- a panel's ``static`` (batch, Z): the series' static values, numeric ones raw, then each
  categorical one as its integer code (its position in the metadata's ``static.categories``);
  the graph scales the numbers and hands the codes to the network's embeddings.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch
from torch import nn

from rnnkit.data.covariates import rows_ahead
from rnnkit.export_graphs import Forecaster

F32, F64 = torch.float32, torch.float64


def _buffer(values: Any) -> torch.Tensor:
    return torch.tensor(np.asarray(values, dtype=np.float64).reshape(-1), dtype=F64)


class CovariateForecaster(Forecaster):
    """The joined inputs of a window: past features, known covariates' leads, statics."""

    def __init__(self, model: nn.Module, pipe: Any, steps: int, halves: np.ndarray | None
                 ) -> None:
        super().__init__(model, pipe, steps, halves)
        self.o, self.p = len(pipe.targets), len(pipe.features)
        self.k, self.lead = len(pipe.known.columns), int(pipe.lead)
        self.ahead = rows_ahead(steps, self.lead) if self.k else 0

    def leads(self, known: torch.Tensor, done: int) -> torch.Tensor:
        """Raw leads (B, window, K*lead), step major, of the window that ends ``done`` rows
        after the history's end."""
        parts = []
        for step in range(1, self.lead + 1):  # row t's lead ``step``: row t + step
            stop = done + step - self.ahead  # from the end of ``known``; 0 means its end
            parts.append(known[:, stop - self.window : stop if stop < 0 else None])
        return torch.cat(parts, dim=-1)

    def joined(self, history: torch.Tensor, known: torch.Tensor | None, done: int,
               scaling: tuple[torch.Tensor, ...], static: torch.Tensor | None
               ) -> torch.Tensor:
        """(B, window, P + K*lead + Z) float32: what the model reads after the targets.
        ``scaling``: (features' shift, scale, leads' shift, scale), each broadcast on
        (B, window, width). Past features are read in the first round only: ``export``
        refuses a run with them more steps than one round."""
        fshift, fscale, kshift, kscale = scaling
        parts = []
        if self.p:
            rows = history[:, -self.window :, self.o :].to(F32).to(F64)
            parts.append(((rows - fshift) / fscale).to(F32))
        if known is not None:
            parts.append(((self.leads(known, done) - kshift) / kscale).to(F32))
        if static is not None:
            parts.append(static[:, None, :].expand(-1, self.window, -1))
        return torch.cat(parts, dim=-1)


class CovariateSeriesGraph(CovariateForecaster):
    """history[, known] -> forecast (and bounds): a series run with past features or
    covariates known ahead, its scaling built in."""

    def __init__(self, model: nn.Module, pipe: Any, steps: int, halves: np.ndarray | None
                 ) -> None:
        super().__init__(model, pipe, steps, halves)
        o, p, sc = self.o, self.p, pipe.scaler
        # the scaler's columns: targets, past features, then the leads (K*lead, step major)
        for name, cut in (("", slice(0, o)), ("f", slice(o, o + p)), ("k", slice(o + p, None))):
            self.register_buffer(f"{name}shift", _buffer(sc.shift[cut]))
            self.register_buffer(f"{name}scale", _buffer(sc.scale[cut]))

    def forward(self, history: torch.Tensor, *known: torch.Tensor) -> tuple:
        read = known[0].to(F32).to(F64) if known else None  # read as the table's rows
        scaling = (self.fshift, self.fscale, self.kshift, self.kscale)
        point = self.rolled(history[..., : self.o], self.shift, self.scale,
                            lambda done: self.joined(history, read, done, scaling, None))
        return self.with_bounds(point, torch.ones_like(point[:, 0]))


class CovariatePanelGraph(CovariateForecaster):
    """history, shift, scale, sigma[, known][, static] -> forecast (and bounds): one global
    model, each series by its own scaling of every column and its own static values."""

    def __init__(self, model: nn.Module, pipe: Any, steps: int, halves: np.ndarray | None
                 ) -> None:
        super().__init__(model, pipe, steps, halves)
        st = pipe.statics
        self.z, self.numeric = st.width, len(st.numeric)
        self.register_buffer("center", _buffer(st.center))
        self.register_buffer("spread", _buffer(st.spread))
        self.register_buffer("sizes", _buffer(st.sizes))

    def encoded(self, static: torch.Tensor) -> torch.Tensor:
        """(B, Z) raw numbers and integer codes -> the inputs ``Statics.encode`` gives: numbers
        scaled, each code the middle of its bucket of (0, 1), which the network's embedding
        reads back."""
        n = self.numeric
        num = (static[:, :n] - self.center) / self.spread
        codes = (static[:, n:] + 0.5) / self.sizes
        return torch.cat([num, codes], dim=-1).to(F32)

    def forward(self, history: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor,
                sigma: torch.Tensor, *rest: torch.Tensor) -> tuple:
        o, base = self.o, self.o + self.p
        read = rest[0].to(F32).to(F64) if self.k else None  # read as the panel's values
        static = self.encoded(rest[-1]) if self.z else None
        # every lead of a column is scaled like the column: (B, 1, K) repeated per step
        scaling = (shift[:, None, o:base], scale[:, None, o:base],
                   shift[:, None, base:].repeat(1, 1, self.lead),
                   scale[:, None, base:].repeat(1, 1, self.lead))
        point = self.rolled(history[..., :o], shift[:, None, :o], scale[:, None, :o],
                            lambda done: self.joined(history, read, done, scaling, static))
        if self.z > self.numeric:  # a graph cannot refuse: an unknown category forecasts NaN
            point = torch.where(self.unknown(rest[-1])[:, None, None],
                                torch.full_like(point, float("nan")), point)
        return self.with_bounds(point, sigma)

    def unknown(self, static: torch.Tensor) -> torch.Tensor:
        """(B,) whether a row's category code is not one of the table's (0..size-1, whole)."""
        codes = static[:, self.numeric:]
        bad = (codes < 0) | (codes > self.sizes - 1) | (codes != torch.round(codes))
        return bad.any(dim=-1)


class CovariateSeriesStream(CovariateSeriesGraph):
    """x[, known], buffer, seen -> y, buffer, seen: a window series run with covariates, one
    observation at a time, as ``KnownStream`` steps it: ``buffer`` (batch, L, C) the last L
    rows as the table holds them (targets, past features, known covariates), ``known``
    (batch, 1 + lead, K) the raw known covariates of x's row and of the ``lead`` rows after
    it (the leads its forecast reads); y the next value's forecast, NaN until L rows came."""

    def __init__(self, model: nn.Module, pipe: Any) -> None:
        super().__init__(model, pipe, 1, None)

    def forward(self, x: torch.Tensor, *rest: torch.Tensor) -> tuple:
        known, (buffer, seen) = stepped(self.k, rest)
        base = super().forward
        return self.buffered(*new_row(x, known), buffer, seen, None, None,
                             lambda rows: base(*split_rows(rows, x, known))[0])


class CovariatePanelStream(CovariatePanelGraph):
    """x[, known], buffer, seen, shift, scale[, static] -> y, buffer, seen: one series of a
    panel with covariates (past features, known covariates, statics), by its own scaling of
    every column and its own static values, as ``Run.stream(series=id)`` steps it; the inputs
    as ``CovariateSeriesStream``'s, ``static`` as the forecast form's (an unknown category
    code gives NaN for its row)."""

    def __init__(self, model: nn.Module, pipe: Any) -> None:
        super().__init__(model, pipe, 1, None)

    def forward(self, x: torch.Tensor, *rest: torch.Tensor) -> tuple:
        known, (buffer, seen, shift, scale, *static) = stepped(self.k, rest)
        sigma = torch.ones_like(shift[:, : self.o])  # no intervals in the one-step form
        base = super().forward

        def forecast(rows: torch.Tensor) -> torch.Tensor:
            # the forecast form's inputs: its join, encoding and NaN for unknown codes
            history, *ahead = split_rows(rows, x, known)
            return base(history, shift, scale, sigma, *ahead, *static)[0]

        return self.buffered(*new_row(x, known), buffer, seen, None, None, forecast)


def stepped(k: int, rest: tuple) -> tuple[torch.Tensor | None, tuple]:
    """(known or None, the other inputs) of a stream graph's inputs after ``x``."""
    return (rest[0], rest[1:]) if k else (None, rest)


def new_row(x: torch.Tensor, known: torch.Tensor | None) -> tuple[torch.Tensor]:
    """(the observed row as the table holds it: x, then its own known covariates,)."""
    return (x if known is None else torch.cat([x, known[:, 0]], dim=-1),)


def split_rows(rows: torch.Tensor, x: torch.Tensor, known: torch.Tensor | None) -> tuple:
    """(history (B, L, O + P)[, known (B, L + lead, K)]) from the buffer's raw rows: the
    known covariates of the buffer's rows, then those of the ``lead`` rows after it."""
    width = x.shape[-1]
    if known is None:
        return (rows,)
    return rows[..., :width], torch.cat([rows[..., width:], known[:, 1:]], dim=1)


def stateful_form(run: Any) -> tuple:
    """(module, example inputs, input names, output names, dynamic axes) of the one-step
    form of a window run with covariates (the per-step form is ``StepGraph``)."""
    pipe, o = run.pipeline, len(run.pipeline.targets)
    w, k = o + len(pipe.features), len(pipe.known.columns)
    x = torch.zeros(1, w, dtype=F64)
    known = [torch.zeros(1, 1 + int(pipe.lead), k, dtype=F64)] if k else []
    buffer = torch.zeros(1, pipe.window + int(pipe.diff), w + k, dtype=F64)
    args = (x, *known, buffer, torch.zeros(1, dtype=torch.int64))
    names = ["x", *(["known"] if k else []), "buffer", "seen"]
    if run.kind == "panel":
        c, z = pipe.shift.shape[1], pipe.statics.width
        graph: nn.Module = CovariatePanelStream(run.model, pipe)
        args = (*args, torch.zeros(1, c, dtype=F64), torch.ones(1, c, dtype=F64),
                *([torch.zeros(1, z, dtype=F64)] if z else []))
        names += ["shift", "scale", *(["static"] if z else [])]
    else:
        graph = CovariateSeriesStream(run.model, pipe)
    outs = ["y", "buffer_out", "seen_out"]
    return graph, args, names, outs, {n: {0: "batch"} for n in (*names, *outs)}


def forecast_form(run: Any, steps: int, halves: np.ndarray | None, rows: int, dynamic: dict
                  ) -> tuple:
    """(module, example inputs, input names, dynamic axes: ``dynamic``'s and the covariate
    inputs') of the forecast form of a run with covariates, traced on ``rows`` of history."""
    pipe, dynamic = run.pipeline, dict(dynamic)
    history = torch.zeros(1, rows, len(pipe.targets) + len(pipe.features), dtype=F64)
    k = len(pipe.known.columns)
    known = ([torch.zeros(1, rows + rows_ahead(steps, pipe.lead), k, dtype=F64)] if k else [])
    if k:
        dynamic["known"] = {0: "batch", 1: "known_rows"}
    if run.kind == "series":
        return (CovariateSeriesGraph(run.model, pipe, steps, halves), (history, *known),
                ["history", *(["known"] if k else [])], dynamic)
    c, o = pipe.shift.shape[1], len(pipe.targets)
    z = pipe.statics.width
    args = (history, torch.zeros(1, c, dtype=F64), torch.ones(1, c, dtype=F64),
            torch.ones(1, o, dtype=F64), *known, *([torch.zeros(1, z, dtype=F64)] if z else []))
    names = ["history", "shift", "scale", "sigma", *(["known"] if k else []),
             *(["static"] if z else [])]
    dynamic.update({n: {0: "batch"} for n in ("shift", "scale", "sigma", "static")
                    if n in names})
    return CovariatePanelGraph(run.model, pipe, steps, halves), args, names, dynamic


def metadata(run: Any, steps: int, stateful: bool = False) -> dict[str, str]:
    """What a deployer needs to build the covariate inputs: the history's (or x's) columns,
    the known covariates (columns in order, calendar features, holidays country, rows ahead;
    for the one-step form ``step_rows``, the rows of ``known`` counted from x's), the past
    features (and how far they reach), the static encoding and a window stream's
    ``buffer_columns``."""
    pipe = run.pipeline
    meta = {"columns": json.dumps([*pipe.targets, *pipe.features])}
    window = getattr(pipe, "shape", "window") == "window"
    if pipe.known.columns:
        # the one-step forms: a window's known holds x's row and the lead rows after it, a
        # per-step run's the row after x's (the row y forecasts)
        step_rows = list(range(1 + int(pipe.lead))) if window else [1]
        meta["known"] = json.dumps({**pipe.known.to_json(), "columns": pipe.known.columns,
                                    "lead": int(pipe.lead),
                                    "rows_ahead": rows_ahead(steps, pipe.lead),
                                    **({"step_rows": step_rows} if stateful else {})})
    if stateful and window and pipe.covariates:
        meta["buffer_columns"] = json.dumps([*pipe.targets, *pipe.features,
                                             *pipe.known.columns])
    if pipe.features:
        meta["features"] = json.dumps({"columns": list(pipe.features),
                                       "max_steps": int(pipe.lead)})
    statics = getattr(pipe, "statics", None)
    if statics:
        meta["static"] = json.dumps({"columns": statics.names, **statics.to_json()})
    return meta


def static_values(pipe: Any) -> np.ndarray:
    """(S, Z) the run's own series' ``static`` inputs (raw numbers, integer codes), read back
    from the float32 inputs the pipeline keeps. A number is given in its shortest float32
    form (346.0, not 346.0000023) wherever that encodes to the same input, as it does for
    the value the data held."""
    st, rows = pipe.statics, np.asarray(pipe.static_rows, dtype=np.float32)
    n, center, spread = len(st.numeric), np.asarray(st.center), np.asarray(st.spread)
    num = rows[:, :n].astype(np.float64) * spread + center
    short = np.array([float(str(v)) for v in num.astype(np.float32).ravel()]).reshape(num.shape)
    same = ((short - center) / spread).astype(np.float32) == rows[:, :n]
    codes = np.rint(rows[:, n:] * np.asarray(st.sizes, dtype=np.float64) - 0.5)
    return np.concatenate([np.where(same, short, num), codes], axis=1)
