"""Export a run's whole forecasting loop to ONNX, so that a service runs it without Python.

``forecast`` form: input ``history`` (batch, L, targets), float64, in the data's own units,
with L = window (+1 when the run differences; more rows are accepted, the last ones are used).
Output ``forecast`` (batch, steps, targets), and for each interval level of the run
``lo80``/``hi80``... of the same shape. Inside the graph: the differencing, the scaling, the
network, the way back to original units and the autoregressive loop that feeds each forecast
back, done as ``inference.rolling_forecast`` does it (rows read as float32, scaled in float64),
so that onnxruntime gives what ``Run.forecast`` gives.

A panel exports one global model: its series differ only by their scaling, so the graph also
takes ``shift`` and ``scale`` (batch, C), each series' centre and spread of every column of its
table (C = targets without covariates), and ``sigma`` (batch, targets), what its interval
half-widths are multiplied by (only where the run has intervals). The run's own series' values
are in the metadata (``series``), by id.

Covariates (``export_covariates.py``): past features are columns of ``history`` after the
targets (a forecast of at most the horizon: one round of the direct head); covariates known
ahead (calendar features, ``--future-features``) come as ``known`` (batch, rows, K), their raw
values at the history's last rows and the ``rows_ahead`` rows after it; a panel's static
columns as ``static`` (batch, Z), numbers raw and categories as integer codes. The metadata's
``columns``, ``known``, ``features`` and ``static`` say how to build each.

``stateful`` form: one observation at a time, ``(x, buffer, seen) -> (y, buffer, seen)``, what
``Run.stream()`` does for a window model: ``buffer`` (batch, L, targets) the last L
observations, ``seen`` (batch,) how many arrived; ``y`` (batch, targets) the forecast of the
next value, NaN until L observations arrived. Start from zeros. A panel's stateful form also
takes the series' ``shift`` and ``scale``. A window run with covariates
(``export_covariates.stateful_form``, as ``KnownStream`` steps it) buffers the raw table rows
instead, ``buffer`` (batch, L, targets + past features + K), and takes ``x`` (batch, targets +
past features) and ``known`` (batch, 1 + lead, K), the raw known covariates of x's row and of
the ``lead`` rows after it; a panel with static columns also takes ``static`` (batch, Z) last,
as its forecast form does. A per-step run (shape ``next``) carries its hidden state instead:
``(x[, known], h[, c][, last], seen) -> (y, h[, c][, last], seen)`` (``StepGraph``; ``x`` the
targets and past features, ``known`` (batch, K) the known covariates of the row ``y``
forecasts).

Intervals: the half-widths of a series run are those ``Run.forecast`` uses, with the volatility
at the end of the run's data (a service that must track a changing volatility refits or uses
``rnnkit serve``). Runs that learn a distribution export the point forecast only: their
intervals come from sampled paths.

The metadata (``model.metadata_props``) holds the rnnkit version, the run's config as JSON, the
input and output names (the graph's own) and how to build the covariate inputs.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit import __version__, export_covariates
from rnnkit.errors import ConfigError, DataError
from rnnkit.evaluate import intervals, learned
from rnnkit.evaluate.adaptive import Adaptive
from rnnkit.export_graphs import PanelGraph, PanelStreamGraph, SeriesGraph, StepGraph, StreamGraph
from rnnkit.persist import atomic_write_bytes

OPSET = 17
MAX_STEPS = 10_000  # the loop is unrolled into the graph: a bound keeps the file sane


def exportable(run: Any, stateful: bool = False, steps: int = 1) -> None:
    """Refuse, in one line, what the ONNX forms cannot express."""
    if run.kind not in ("series", "panel"):
        raise ConfigError(f"export: a {run.kind} run cannot be exported; the ONNX forms "
                          "forecast series and panels from their recent history.")
    pipe = run.pipeline
    features = list(pipe.features)
    if features and not stateful and steps > pipe.lead:
        raise ConfigError(f"export: the run's features {features} are known only up to the last "
                          f"row, so its forecast goes at most {pipe.lead} step(s) (its horizon); "
                          f"export the forecast form with --steps {pipe.lead} or fewer, the "
                          "one-step form with --stateful, or fit with --horizon N for N steps.")


def half_widths(run: Any, steps: int) -> tuple[np.ndarray | None, list[int]]:
    """(levels, steps, O) interval half-widths per unit of the graph's multiplier, and the
    levels; (None, []) when the run has no interval calibration to carry."""
    # a series with past features forecasts one round of its direct head, calibrated as such
    direct = run.kind == "series" and bool(run.pipeline.features)
    cal = intervals.stored(run.config).get("direct" if direct else "rolled")
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
    """Each of the run's series' shift and scale (S, C) of every column of its table
    (targets, past features, known covariates), and interval multiplier (S, O)."""
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
    return {"shift": np.asarray(pipe.shift), "scale": np.asarray(pipe.scale), "sigma": mult}


def export_onnx(run: Any, path: str | Path, steps: int = 12, stateful: bool = False) -> Path:
    """Write ``run``'s forecasting loop (or, ``stateful``, its one-step update) to ``path``
    as ONNX; see the module docstring for the inputs and outputs. Returns the path."""
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        raise ConfigError(f"export: steps={steps!r} must be a whole number from 1 to "
                          f"{MAX_STEPS}.")
    exportable(run, stateful, 1 if stateful else steps)
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
    if pipe.features or pipe.known.columns or getattr(pipe, "statics", None):
        graph, args, names, dynamic = export_covariates.forecast_form(run, steps, halves, need,
                                                                      dynamic)
        return graph, args, names, outs, dynamic
    if run.kind == "series":
        return SeriesGraph(run.model, pipe, steps, halves), (history,), ["history"], outs, dynamic
    ones = torch.ones(1, o, dtype=torch.float64)
    names = ["history", "shift", "scale", "sigma"]
    dynamic.update({n: {0: "batch"} for n in names[1:]})
    return (PanelGraph(run.model, pipe, steps, halves), (history, ones, ones, ones), names,
            outs, dynamic)


def _stateful(run: Any) -> tuple:
    """The one-step form: a window model's buffer of recent values, a per-step model's hidden
    state; a panel's series also give their own shift and scale (and static values)."""
    pipe, o = run.pipeline, len(run.pipeline.targets)
    x, seen = torch.zeros(1, o, dtype=torch.float64), torch.zeros(1, dtype=torch.int64)
    if pipe.shape == "window" and pipe.covariates:  # a buffer of raw table rows
        return export_covariates.stateful_form(run)
    if pipe.shape == "next":
        x = torch.zeros(1, o + len(pipe.features), dtype=torch.float64)  # targets, features
        cfg = run.model.cfg
        carried = [*(["h", "c"] if cfg.cell == "lstm" else ["h"]),
                   *(["last"] if pipe.diff else [])]
        k = len(pipe.known.columns)  # the known covariates of the row y forecasts
        known = ["known"] if k else []
        names = ["x", *known, *carried, "seen"]
        outs = ["y", *[f"{n}_out" for n in carried], "seen_out"]
        dynamic = {n: {1: "batch"} if n[0] in "hc" else {0: "batch"} for n in (*names, *outs)}
        zero = torch.zeros(cfg.num_layers, 1, cfg.units)
        args = (x, *[torch.zeros(1, k, dtype=torch.float64) for _ in known],
                *[zero if n in "hc" else torch.zeros(1, o, dtype=torch.float64)
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
    # the graph's own inputs: the exporter drops one the graph never reads (a panel's sigma
    # when the run has no intervals), and a deployer feeds exactly these
    names = [i.name for i in proto.graph.input]
    meta = {"rnnkit_version": __version__, "rnnkit_form": "stateful" if stateful else
            "forecast", "steps": str(steps), "inputs": json.dumps(names),
            "outputs": json.dumps(outs), "window": str(run.pipeline.window),
            "diff": json.dumps(bool(run.pipeline.diff)),
            "targets": json.dumps(list(run.pipeline.targets)), "known": "null",
            "config": json.dumps(run.config, default=str),
            **export_covariates.metadata(run, 1 if stateful else steps, stateful)}
    if run.kind == "panel":
        found = panel_multipliers(run)
        ids = [str(i) for i in run.config["panel"]["ids"]]
        if getattr(run.pipeline, "statics", None):
            found["static"] = export_covariates.static_values(run.pipeline)
        meta["series"] = json.dumps({i: {k: v[n].tolist() for k, v in found.items()}
                                     for n, i in enumerate(ids)})
    onnx.helper.set_model_props(proto, meta)
    return proto.SerializeToString()
