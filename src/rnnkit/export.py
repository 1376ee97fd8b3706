"""Export a run's whole forecasting loop to ONNX, so that a service runs it without Python.

``forecast`` form: input ``history`` (batch, L, targets), float64, in the data's own units,
with L = window (+1 when the run differences; more rows are accepted, the last ones are used).
Output ``forecast`` (batch, steps, targets), and for each interval level of the run
``lo80``/``hi80``... of the same shape. Inside the graph: the differencing, the scaling, the
network, the way back to original units and the autoregressive loop that feeds each forecast
back, done as ``inference.rolling_forecast`` does it (rows read as float32, scaled in float64),
so that onnxruntime gives what ``Run.forecast`` gives.

A series run with covariates known ahead (calendar features, ``--future-features``;
data/covariates.py) also takes ``known`` (batch, rows, K): their raw values at the history's
last rows and at the ``rows_ahead`` rows after it (the metadata's ``known`` names the columns,
the calendar features and holidays, and that count); calendar values come from
``rnnkit.data.calendar.encode`` of the dates, or the client's own code for the same formulas.

A panel exports one global model: its series differ only by their scaling, so the graph also
takes ``shift`` and ``scale`` (batch, targets), each series' centre and spread, and ``sigma``
(batch, targets), what its interval half-widths are multiplied by. The run's own series' values
are in the metadata (``series``), by id.

``stateful`` form: one observation at a time, ``(x, buffer, seen) -> (y, buffer, seen)``, what
``Run.stream()`` does for a window model: ``buffer`` (batch, L, targets) the last L
observations, ``seen`` (batch,) how many arrived; ``y`` (batch, targets) the forecast of the
next value, NaN until L observations arrived. Start from zeros. A panel's stateful form also
takes the series' ``shift`` and ``scale``. A per-step run (shape ``next``) carries its hidden
state instead: ``(x, h[, c][, last], seen) -> (y, h[, c][, last], seen)`` (``StepGraph``).

Intervals: the half-widths of a series run are those ``Run.forecast`` uses, with the volatility
at the end of the run's data (a service that must track a changing volatility refits or uses
``rnnkit serve``). Runs that learn a distribution export the point forecast only: their
intervals come from sampled paths.

The metadata (``model.metadata_props``) holds the rnnkit version, the run's config as JSON, the
input and output names and the levels.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rnnkit import __version__
from rnnkit.data.covariates import rows_ahead
from rnnkit.errors import ConfigError, DataError
from rnnkit.evaluate import intervals, learned
from rnnkit.evaluate.adaptive import Adaptive
from rnnkit.persist import atomic_write_bytes

OPSET = 17
MAX_STEPS = 10_000  # the loop is unrolled into the graph: a bound keeps the file sane


class _Forecaster(nn.Module):
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
                 shift: torch.Tensor, scale: torch.Tensor) -> tuple:
        """One observation into the buffer of recent values; the next value's forecast, NaN
        until the buffer is full."""
        buffer = torch.cat([buffer[:, 1:], x[:, None, :]], dim=1)
        seen = seen + 1
        y = self.one_round(buffer, shift, scale)[:, 0]
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


class SeriesGraph(_Forecaster):
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


class KnownSeriesGraph(SeriesGraph):
    """history, known -> forecast (and bounds): a series run whose inputs include covariates
    known ahead. ``known`` (batch, rows, K) holds their raw values; its last ``ahead`` rows are
    the rows the forecast reads after the history's end, the rows before them the history's
    last rows (at least ``window``). The graph makes each window row's leads (the values at
    rows t+1..t+lead, data/covariates.py) and scales them as the pipeline does. Slices count
    from the end of ``known``, so its length, like the history's, may vary."""

    def __init__(self, model: nn.Module, pipe: Any, steps: int, halves: np.ndarray | None
                 ) -> None:
        super().__init__(model, pipe, steps, halves)
        o = len(pipe.targets)
        self.lead, self.ahead = int(pipe.lead), rows_ahead(steps, int(pipe.lead))
        self.register_buffer("kshift", torch.tensor(pipe.scaler.shift[o:], dtype=torch.float64))
        self.register_buffer("kscale", torch.tensor(pipe.scaler.scale[o:], dtype=torch.float64))

    def leads(self, known: torch.Tensor, done: int) -> torch.Tensor:
        """Scaled leads (B, window, K*lead) of the window that ends ``done`` rows after the
        history's end."""
        parts = []
        for step in range(1, self.lead + 1):  # row t's lead ``step``: row t + step
            stop = done + step - self.ahead  # from the end of ``known``; 0 means its end
            parts.append(known[:, stop - self.window : stop if stop < 0 else None])
        return ((torch.cat(parts, dim=-1) - self.kshift) / self.kscale).to(torch.float32)

    def forward(self, history: torch.Tensor, known: torch.Tensor) -> tuple:
        read = known.to(torch.float32).to(torch.float64)  # read as the pipeline's table rows
        point = self.rolled(history, self.shift, self.scale, lambda done: self.leads(read, done))
        return self.with_bounds(point, torch.ones_like(point[:, 0]))


class PanelGraph(_Forecaster):
    """history, shift, scale, sigma -> forecast (and bounds): per-series scaling as inputs."""

    def forward(self, history: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor,
                sigma: torch.Tensor) -> tuple:
        point = self.rolled(history, shift[:, None, :], scale[:, None, :])
        return self.with_bounds(point, sigma)


class StreamGraph(_Forecaster):
    """x, buffer, seen -> y, buffer, seen: one observation at a time, as ``Stream`` does."""

    def __init__(self, model: nn.Module, pipe: Any) -> None:
        super().__init__(model, pipe, 1, None)
        o = len(pipe.targets)
        self.register_buffer("shift", torch.tensor(pipe.scaler.shift[:o], dtype=torch.float64))
        self.register_buffer("scale", torch.tensor(pipe.scaler.scale[:o], dtype=torch.float64))

    def forward(self, x: torch.Tensor, buffer: torch.Tensor, seen: torch.Tensor) -> tuple:
        return self.buffered(x, buffer, seen, self.shift, self.scale)


class PanelStreamGraph(_Forecaster):
    """x, buffer, seen, shift, scale -> y, buffer, seen: one series of a panel, by its own
    scaling, as ``Run.stream(series=id)`` steps it."""

    def __init__(self, model: nn.Module, pipe: Any) -> None:
        super().__init__(model, pipe, 1, None)

    def forward(self, x: torch.Tensor, buffer: torch.Tensor, seen: torch.Tensor,
                shift: torch.Tensor, scale: torch.Tensor) -> tuple:
        return self.buffered(x, buffer, seen, shift[:, None, :], scale[:, None, :])


class StepGraph(nn.Module):
    """x, h[, c][, last], seen -> y, h[, c][, last], seen: a per-step (``--shape next``)
    model's hidden state carried between calls, as ``Stream`` does. ``last``, the previous
    value, only when the run differences: its first value only sets ``last`` (y is NaN, the
    state unchanged), as there is no change to feed yet."""

    def __init__(self, model: nn.Module, pipe: Any) -> None:
        super().__init__()
        self.model, self.diff = model, bool(pipe.diff)
        self.lstm = model.cfg.cell == "lstm"
        o = len(pipe.targets)
        self.register_buffer("shift", torch.tensor(pipe.scaler.shift[:o], dtype=torch.float64))
        self.register_buffer("scale", torch.tensor(pipe.scaler.scale[:o], dtype=torch.float64))

    def forward(self, x: torch.Tensor, *rest: torch.Tensor) -> tuple:
        k = len(rest) - 1 - int(self.diff)
        state, seen = rest[:k], rest[-1]  # (h,) or (h, c), each (layers, B, units)
        first = (seen == 0)[:, None]  # (B, 1)
        work = x - torch.where(first, x, rest[k]) if self.diff else x
        scaled = ((work - self.shift) / self.scale).to(torch.float32)
        out, new = self.model(scaled[:, None, :], state=state if self.lstm else state[0])
        new = tuple(new) if self.lstm else (new,)
        pred = out[:, 0].to(torch.float64) * self.scale + self.shift
        if self.diff:
            pred = torch.where(first, torch.full_like(pred, float("nan")), x + pred)
            new = tuple(torch.where(first[None], old, n) for old, n in zip(state, new,
                                                                           strict=True))
        return (pred, *new, *([x] if self.diff else []), seen + 1)


def exportable(run: Any, stateful: bool = False) -> None:
    """Refuse, in one line, what the ONNX forms cannot express."""
    if run.kind not in ("series", "panel"):
        raise ConfigError(f"export: a {run.kind} run cannot be exported; the ONNX forms "
                          "forecast series and panels from their recent history.")
    if run.pipeline.features:
        raise ConfigError(f"export: the run uses the features {run.pipeline.features}, whose "
                          "future values a forecast would need; export a run without --features.")
    statics = getattr(run.pipeline, "statics", None)
    if statics:
        raise ConfigError(f"export: the run reads static columns ({', '.join(statics.names)}), "
                          "which the ONNX forms do not take yet; fit without --static to export.")
    known = getattr(run.pipeline, "known", None)
    if known is not None and known.columns and (run.kind != "series" or stateful):
        raise ConfigError(f"export: {'--stateful' if stateful else 'a panel'} with covariates "
                          f"known ahead ({', '.join(known.columns)}) is not exported yet; "
                          "export the forecast form of a series run, or fit with --calendar "
                          "none and without --future-features.")


def half_widths(run: Any, steps: int) -> tuple[np.ndarray | None, list[int]]:
    """(levels, steps, O) interval half-widths per unit of the graph's multiplier, and the
    levels; (None, []) when the run has no interval calibration to carry."""
    cal = intervals.stored(run.config).get("rolled")
    if cal is None or learned.is_learned(run.config):
        return None, []
    o = len(run.pipeline.targets)
    zeros, ones = np.zeros((1, steps, o)), np.ones((1, o))
    if run.kind == "series":
        scale = np.asarray(run.pipeline.scaler.scale[:o], dtype=np.float64)[None]
        sigma = getattr(cal, "sigma", None)
        found = intervals.ahead(cal, zeros, scale, None if sigma is None else np.asarray(sigma))
    else:  # per unit of the series' multiplier, an input of the graph
        found = intervals.ahead(cal, zeros, ones, ones)
    levels = sorted(found)
    return np.stack([found[lv][1][0] for lv in levels]), levels


def panel_multipliers(run: Any) -> dict[str, np.ndarray]:
    """Each of the run's series' shift, scale and interval multiplier (S, O)."""
    pipe, o = run.pipeline, len(run.pipeline.targets)
    cal = intervals.stored(run.config).get("rolled")
    shift, scale = np.asarray(pipe.shift[:, :o]), np.asarray(pipe.scale[:, :o])
    sigma = getattr(cal, "sigma", None)
    if sigma is not None:
        mult = np.asarray(sigma, dtype=np.float64).reshape(len(shift), o)
    elif isinstance(cal, Adaptive):  # no volatility measured yet: its typical share of scale
        mult = cal.start(scale)
    elif cal is not None and getattr(cal, "per_series", False):
        mult = scale
    else:
        mult = np.ones_like(scale)
    return {"shift": shift, "scale": scale, "sigma": mult}


def export_onnx(run: Any, path: str | Path, steps: int = 12, stateful: bool = False) -> Path:
    """Write ``run``'s forecasting loop (or, ``stateful``, its one-step update) to ``path``
    as ONNX; see the module docstring for the inputs and outputs. Returns the path."""
    exportable(run, stateful)
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        raise ConfigError(f"export: steps={steps!r} must be a whole number from 1 to "
                          f"{MAX_STEPS}.")
    graph, args, names, outs, dynamic = _graph(run, steps, stateful)
    graph.eval()
    buf = io.BytesIO()
    # torch's TorchScript-based exporter (deprecated since torch 2.9, still in the pinned 2.13):
    # it traces the unrolled loop into the fused ONNX LSTM/GRU/RNN ops with a free batch
    # dimension; the torch.export-based one fixed the batch at 1 on this graph (tried with
    # torch 2.13 and onnxscript 0.7). Revisit when the torch pin moves.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        # the tracer flags shape checks inside torch's RNN modules as constants: they are (the
        # window and the widths are fixed; only the batch and history length vary, and the
        # parity tests run other batch sizes and lengths than the traced one)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        # about LSTMs traced at batch 1 and run at other sizes: the zero initial state is
        # built from the input's own batch, and the tests run batches of 1 to 3
        warnings.filterwarnings("ignore", "Exporting a model to ONNX with a batch_size",
                                UserWarning)
        torch.onnx.export(graph, args, buf, input_names=names, output_names=outs,
                          dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)
    data = _with_metadata(buf.getvalue(), run, steps, stateful, names, outs)
    out = Path(path)
    try:
        atomic_write_bytes(out, data)
    except OSError as exc:
        raise DataError(f"export: cannot write {out}: {exc.strerror}.") from None
    return out


def _graph(run: Any, steps: int, stateful: bool) -> tuple:
    """(module, example inputs, input names, output names, dynamic axes)."""
    pipe, o = run.pipeline, len(run.pipeline.targets)
    need = pipe.window + int(pipe.diff)
    if stateful:
        return _stateful(run)
    halves, levels = half_widths(run, steps)
    outs = ["forecast", *[f"{side}{lv}" for lv in levels for side in ("lo", "hi")]]
    history = torch.zeros(1, need, o, dtype=torch.float64)
    dynamic = {"history": {0: "batch", 1: "rows"}, **{n: {0: "batch"} for n in outs}}
    if run.kind == "series" and pipe.known.columns:
        k = len(pipe.known.columns)
        known = torch.zeros(1, need + rows_ahead(steps, pipe.lead), k, dtype=torch.float64)
        dynamic["known"] = {0: "batch", 1: "known_rows"}
        return (KnownSeriesGraph(run.model, pipe, steps, halves), (history, known),
                ["history", "known"], outs, dynamic)
    if run.kind == "series":
        return SeriesGraph(run.model, pipe, steps, halves), (history,), ["history"], outs, dynamic
    ones = torch.ones(1, o, dtype=torch.float64)
    names = ["history", "shift", "scale", "sigma"]
    dynamic.update({n: {0: "batch"} for n in names[1:]})
    return (PanelGraph(run.model, pipe, steps, halves), (history, ones, ones, ones), names,
            outs, dynamic)


def _stateful(run: Any) -> tuple:
    """The one-step form: a window model's buffer of recent values, a per-step model's hidden
    state; a panel's series also give their own shift and scale."""
    pipe, o = run.pipeline, len(run.pipeline.targets)
    x, seen = torch.zeros(1, o, dtype=torch.float64), torch.zeros(1, dtype=torch.int64)
    if pipe.shape == "next":
        cfg = run.model.cfg
        carried = [*(["h", "c"] if cfg.cell == "lstm" else ["h"]),
                   *(["last"] if pipe.diff else [])]
        names, outs = ["x", *carried, "seen"], ["y", *[f"{n}_out" for n in carried], "seen_out"]
        dynamic = {n: {1: "batch"} if n[0] in "hc" else {0: "batch"} for n in (*names, *outs)}
        zero = torch.zeros(cfg.num_layers, 1, cfg.units)
        args = (x, *[zero if n in "hc" else torch.zeros(1, o, dtype=torch.float64)
                     for n in carried], seen)
        return StepGraph(run.model, pipe), args, names, outs, dynamic
    buffer = torch.zeros(1, pipe.window + int(pipe.diff), o, dtype=torch.float64)
    names, outs = ["x", "buffer", "seen"], ["y", "buffer_out", "seen_out"]
    if run.kind == "panel":
        ones = torch.ones(1, o, dtype=torch.float64)
        graph, args, names = (PanelStreamGraph(run.model, pipe), (x, buffer, seen, ones, ones),
                              [*names, "shift", "scale"])
    else:
        graph, args = StreamGraph(run.model, pipe), (x, buffer, seen)
    return graph, args, names, outs, {n: {0: "batch"} for n in (*names, *outs)}


def _with_metadata(data: bytes, run: Any, steps: int, stateful: bool, names: list[str],
                   outs: list[str]) -> bytes:
    """The ONNX bytes with the run described in ``metadata_props``."""
    import onnx

    proto = onnx.load_from_string(data)
    meta = {"rnnkit_version": __version__, "rnnkit_form": "stateful" if stateful else
            "forecast", "steps": str(steps), "inputs": json.dumps(names),
            "outputs": json.dumps(outs), "window": str(run.pipeline.window),
            "diff": json.dumps(bool(run.pipeline.diff)),
            "targets": json.dumps(list(run.pipeline.targets)),
            "known": json.dumps({**run.pipeline.known.to_json(),
                                 "columns": run.pipeline.known.columns,
                                 "rows_ahead": rows_ahead(steps, run.pipeline.lead)})
            if getattr(run.pipeline, "known", None) is not None and run.pipeline.known.columns
            else "null",
            "config": json.dumps(run.config, default=str)}
    if run.kind == "panel":
        found = panel_multipliers(run)
        ids = [str(i) for i in run.config["panel"]["ids"]]
        meta["series"] = json.dumps({i: {k: v[n].tolist() for k, v in found.items()}
                                     for n, i in enumerate(ids)})
    onnx.helper.set_model_props(proto, meta)
    return proto.SerializeToString()
