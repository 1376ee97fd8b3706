"""Scores of a panel run: its baselines and a per-series MASE, next to the pooled metrics.

Baselines are per series (each series' training mean, its last value, its seasonal naive) plus
one pooled linear AR: the least-squares map from scaled window to scaled horizon over every
series' training windows, which is also where the model's linear path starts. Pooled errors
are in mixed units, so big series dominate them; MASE divides each series' errors by its own
mean one-step change in training, so every series counts alike.
"""

from __future__ import annotations

import numpy as np
import torch

from rnnkit.data.pairs import Pairs
from rnnkit.data.panel import PanelPipeline
from rnnkit.data.panel_table import Panel
from rnnkit.evaluate import scoring
from rnnkit.evaluate.metrics import mase_scale
from rnnkit.models.least_squares import least_squares

AR_WINDOWS = 500_000  # training windows the pooled AR baseline is fitted on, at most
BATCH = 4096
# window values per batch of the AR's normal equations: 8,192 windows of up to 32 values (the
# least-squares default), fewer of wider windows, whose float64 batch temporaries would
# otherwise grow with the covariates (6 inputs x 24 steps: 9 MB each at 8,192 windows)
AR_BATCH_VALUES = 1 << 18


def _train_rows(pipe: PanelPipeline, panel: Panel) -> list[np.ndarray]:
    """Each series' training rows of its targets (at least one row)."""
    o = len(pipe.targets)
    train_end, _ = pipe.bounds(panel.lengths)
    return [panel.values[a : a + max(int(n), 1), :o]
            for a, n in zip(panel.offsets[:-1], train_end, strict=True)]


def naive_baselines(pipe: PanelPipeline, panel: Panel, series: np.ndarray, last: np.ndarray
                    ) -> dict[str, np.ndarray]:
    """Per-series mean, last value and (when the window holds a season) seasonal naive, as
    (N, H, O) forecasts at the windows ending at buffer rows ``last`` of ``series``."""
    o, h, values = len(pipe.targets), pipe.horizon, panel.values
    shape = (len(last), h, o)
    means = np.stack([r.mean(axis=0, dtype=np.float64) for r in _train_rows(pipe, panel)])
    base = {"mean": np.broadcast_to(means[series, None, :], shape),
            "last value": np.broadcast_to(values[last, None, :o].astype(np.float64), shape)}
    if pipe.period and pipe.period <= pipe.window:  # then the season lies inside the series
        k = np.arange(1, h + 1)
        back = pipe.period * np.ceil(k / pipe.period).astype(np.int64)
        base["seasonal naive"] = values[last[:, None] + k[None, :] - back[None, :], :o
                                        ].astype(np.float64)
    return base


@torch.no_grad()
def pooled_ar(pipe: PanelPipeline, panel: Panel, train: Pairs, pairs: Pairs, series: np.ndarray,
              last: np.ndarray) -> np.ndarray | None:
    """The pooled linear AR fitted on (a draw of) ``train`` and applied to ``pairs``, in
    original units; None without training windows."""
    if len(train) == 0:
        return None
    batch = min(8192, max(1, AR_BATCH_VALUES // (pipe.window * pipe.width)))
    coef, intercept = least_squares(train.sample(min(len(train), AR_WINDOWS), seed=0), batch)
    out = []
    for s in range(0, len(pairs), BATCH):
        x = pairs.rows(s, s + BATCH).inputs
        out.append((x.reshape(len(x), -1).double() @ coef + intercept).numpy())
    raw = np.concatenate(out).reshape(len(pairs), pipe.horizon, len(pipe.targets))
    return pipe.to_levels(raw, series, last, panel.values)


def score(pipe: PanelPipeline, panel: Panel, truth: np.ndarray, pred: np.ndarray,
          base: dict[str, np.ndarray], series: np.ndarray) -> dict:
    """scoring.score of the pooled forecasts, with each row's MASE over per-series scales."""
    metrics = scoring.score(truth, pred, base)
    scales = np.array([[mase_scale(r[:, j]) or np.nan for j in range(r.shape[1])]
                       for r in _train_rows(pipe, panel)])
    scale = scales[series]  # (N, O)
    ok = np.isfinite(scale).all(axis=1)
    for row, p in [(metrics["model"], pred),
                   *[(metrics["baselines"][k], b) for k, b in base.items()]]:
        row["mase"] = (float(np.mean(np.abs(truth - p)[ok] / scale[ok, None, :]))
                       if ok.any() else float("nan"))
    return metrics
