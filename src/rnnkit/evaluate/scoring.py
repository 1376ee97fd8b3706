"""Scores a model next to its baselines and prints the comparison.

The metrics dictionary is what ``metrics.json`` holds::

    {"model": {metric: value}, "baselines": {name: {metric: value}}, "split": {...}, ...}
"""

from __future__ import annotations

import math

import numpy as np

from rnnkit.evaluate.baselines import forecast_baselines
from rnnkit.evaluate.metrics import METRICS, compute_metrics, mase_scale


def score(y_true: np.ndarray, y_pred: np.ndarray, baselines: dict[str, np.ndarray],
          scale: float | None = None) -> dict:
    """Metrics of the model and of each baseline on the same targets."""
    return {
        "model": compute_metrics(y_true, y_pred, mase_scale=scale),
        "baselines": {k: compute_metrics(y_true, v, mase_scale=scale)
                      for k, v in baselines.items()},
    }


def series_truth(values: np.ndarray, origins: np.ndarray, horizon: int, n_targets: int
                 ) -> np.ndarray:
    """True values (N, H, O) of rows origin+1..origin+H."""
    idx = origins[:, None] + np.arange(1, horizon + 1)[None, :]
    return np.asarray(values, dtype=np.float64)[idx][:, :, :n_targets]


def series_baselines(values: np.ndarray, origins: np.ndarray, horizon: int, n_targets: int,
                     train_end: int, period: int | None, ar_order: int) -> dict[str, np.ndarray]:
    """Each baseline's forecasts (N, H, O) at the model's origins, fitted on training rows:
    one univariate :func:`forecast_baselines` per target column, stacked on the last axis. The
    one stacking rule for a series, used by the evaluation and the backtest alike."""
    per_col = [
        forecast_baselines(np.asarray(values[:, j], dtype=np.float64), origins, horizon,
                           train_end, period=period, ar_order=ar_order)
        for j in range(n_targets)
    ]
    names = [k for k in per_col[0] if all(k in c for c in per_col)]
    return {k: np.stack([c[k] for c in per_col], axis=-1) for k in names}


def series_scale(values: np.ndarray, train_end: int, n_targets: int) -> float | None:
    """MASE denominator: mean absolute one-step change over the training rows (all targets)."""
    scales = [mase_scale(np.asarray(values[:train_end, j], dtype=np.float64))
              for j in range(n_targets)]
    return None if any(s is None for s in scales) else float(np.mean(scales))


TIE = 1e-3  # relative difference under which model and best baseline are reported as equal


def verdict(metrics: dict, key: str = "rmse") -> str:
    """One plain sentence: does the model beat every baseline on ``key``?"""
    model = metrics["model"].get(key, math.nan)
    base = {k: v.get(key, math.nan) for k, v in metrics.get("baselines", {}).items()}
    base = {k: v for k, v in base.items() if not math.isnan(v)}
    if not base or math.isnan(model):
        return ""
    best_name = min(base, key=base.get)
    best = base[best_name]
    if best > 0 and abs(model - best) <= TIE * best:
        # e.g. a model whose best epoch is its least-squares start, scored against that same
        # linear model: "beats it by 0.0%" would claim a skill it does not have
        return (f"The model matches the '{best_name}' baseline on {key.upper()} ({model:.4g} vs "
                f"{best:.4g}, within {100 * TIE:g}%): it has learned no more than that baseline.")
    if model < best:
        gain = 100 * (1 - model / best) if best > 0 else 0.0
        return (f"The model beats every baseline on {key.upper()} ({model:.4g} vs {best:.4g} "
                f"for {best_name}, {gain:.1f}% lower).")
    return (f"Warning: the model is no better than the '{best_name}' baseline on {key.upper()} "
            f"({model:.4g} vs {best:.4g}); it has not learned more than that baseline.")


def _fmt(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.4g}"


def format_table(metrics: dict) -> str:
    """The model and baselines as an aligned text table, followed by the verdict."""
    rows = [("model", metrics["model"]), *list(metrics.get("baselines", {}).items())]
    heads = ["", *[m.upper() for m in METRICS]]
    cells = [[name, *[_fmt(r.get(m)) for m in METRICS]] for name, r in rows]
    widths = [max(len(x) for x in col) for col in zip(heads, *cells, strict=True)]
    line = lambda xs: "  ".join(x.rjust(w) if i else x.ljust(w)  # noqa: E731
                                for i, (x, w) in enumerate(zip(xs, widths, strict=True)))
    out = [line(heads), line(["-" * w for w in widths])] + [line(c) for c in cells]
    v = verdict(metrics)
    return "\n".join(out + ([v] if v else []))
