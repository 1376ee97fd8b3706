"""Data smells: unscaled values, a (near-)constant series, a trend fed as levels, a season the
window cannot see. Read from the training part only, as the pipeline itself does."""

from __future__ import annotations

import math

import numpy as np

from rnnkit.data.choices import TREND_R2
from rnnkit.evaluate.findings.base import Finding, Subject

UNSCALED_MAGNITUDE = 100.0  # values this large saturate tanh/sigmoid units at once
UNSCALED_TINY = 1e-3  # spreads this small look like a constant to the network
CONSTANT_REPEATS = 0.9  # 90% of steps repeat the previous value


def _training_values(s: Subject) -> tuple[np.ndarray, np.ndarray] | None:
    """(inputs, targets) of the training part in original units: (rows, F), (rows, O)."""
    if not s.has_data:
        return None
    pipe = s.pipeline
    if s.is_series:
        values = s.series_values()
        train_end, _ = pipe.bounds(len(values))
        part = np.asarray(values[:train_end], dtype=np.float64)
        return part, part[:, : len(pipe.targets)]
    seqs, targets = s.sequences()
    idx = pipe.split_indices(len(seqs))["train"]
    x = np.concatenate([seqs[i] for i in idx]).astype(np.float64)
    y = (np.asarray(targets, dtype=np.float64)[idx] if pipe.shape == "seq2one"
         and targets is not None else x[:, : pipe.n_outputs])
    return x, y


def check_data(s: Subject) -> list[Finding]:
    got = _training_values(s)
    out: list[Finding] = []
    if got is not None:
        x, y = got
        out += _constant(s, y)
        if not out:
            out += _unscaled(s, x, y)
    if s.is_series:
        out += _trend(s)
        out += _season(s)
    return out


def _constant(s: Subject, y: np.ndarray) -> list[Finding]:
    spread = float(y.std(axis=0).max()) if len(y) else 0.0
    level = float(np.abs(y).mean()) if len(y) else 0.0
    if spread <= 1e-9 * max(1.0, level):
        return [Finding("constant-series", "error",
                        f"the training targets are constant ({y.ravel()[0]:.6g}): there is "
                        "nothing to learn and every metric is meaningless.",
                        {"target_std": spread, "target_level": level},
                        "check the target column (--target) and the rows read.")]
    if s.is_series and len(y) > 10:
        repeats = float(np.mean(np.all(np.diff(y, axis=0) == 0, axis=1)))
        if repeats >= CONSTANT_REPEATS:
            return [Finding("constant-series", "warning",
                            f"{100 * repeats:.0f}% of training steps repeat the previous value: "
                            "the series is nearly constant, so the last-value baseline is "
                            "almost unbeatable.",
                            {"repeated_steps": repeats},
                            "aggregate to a coarser time step, or check how the data was "
                            "filled (--fill).")]
    return []


def _unscaled(s: Subject, x: np.ndarray, y: np.ndarray) -> list[Finding]:
    kinds = [s.config.get("data", {}).get("scaler")]
    if kinds[0] != "none":
        return []
    both = np.concatenate([x.ravel(), y.ravel()])
    magnitude = float(max(np.abs(both.mean()), both.std()))
    spread = float(min(x.std(axis=0).min(), y.std(axis=0).min()))
    if magnitude > UNSCALED_MAGNITUDE:
        what = (f"the data is not scaled (scaler none) and its values are of size "
                f"{magnitude:.3g}: recurrent units saturate and the optimiser's steps are tiny "
                "next to the targets.")
    elif 0 < spread < UNSCALED_TINY:
        what = (f"the data is not scaled (scaler none) and varies by only {spread:.2g}: the "
                "network sees almost the same input everywhere.")
    else:
        return []
    return [Finding("unscaled-data", "warning", what,
                    {"magnitude": magnitude, "smallest_std": spread, "scaler": "none"},
                    "use --scaler standard (the default); predictions come back in original "
                    "units either way.")]


def _trend(s: Subject) -> list[Finding]:
    pipe = s.pipeline
    r2 = float(getattr(pipe, "trend_r2", 0.0) or 0.0)
    if pipe.diff or r2 < TREND_R2:
        return []
    ev: dict = {"trend_r2": r2, "transform": "none"}
    beyond = math.nan
    if s.has_data:
        values = s.series_values()
        train_end, _ = pipe.bounds(len(values))
        o = len(pipe.targets)
        lo = values[:train_end, :o].min(axis=0)
        hi = values[:train_end, :o].max(axis=0)
        later = values[train_end:, :o]
        if len(later):
            beyond = float(np.mean(np.any((later < lo) | (later > hi), axis=1)))
            ev["later_rows_outside_training_range"] = beyond
    msg = (f"the series has a strong linear trend (R² {r2:.2f}) but is modelled as levels"
           + (f": {100 * beyond:.0f}% of validation/test values lie outside the training range, "
              "where a level model cannot extrapolate" if math.isfinite(beyond) and beyond > 0
              else ", which extrapolates badly once the level leaves the training range")
           + ".")
    return [Finding("trend-needs-diff", "warning", msg, ev,
                    "fit with --transform diff (or auto, the default) to predict changes.")]


def _season(s: Subject) -> list[Finding]:
    pipe = s.pipeline
    period, window = pipe.period, pipe.window
    if not period or period <= window:
        return []
    model, seasonal = s.rmse(), s.rmse("seasonal naive")
    beaten = math.isfinite(model) and math.isfinite(seasonal) and model < seasonal
    msg = (f"the season ({period} steps) is longer than the window ({window}): the model never "
           "sees one full cycle" + ("; it beats the seasonal naive baseline anyway, so the "
                                    "cycle is predictable from less" if beaten else
                                    ", and the seasonal naive baseline beats it") + ".")
    ev = {"period": period, "window": window, "model_rmse": model, "seasonal_naive_rmse": seasonal}
    return [Finding("season-longer-than-window", "info" if beaten else "warning", msg, ev,
                    f"use --window {period} (or more) so each input holds a full season.")]
