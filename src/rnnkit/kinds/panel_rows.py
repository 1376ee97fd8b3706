"""A panel run's held-out forecasts in original units, by series and last input row, and the
truths they are scored against: what evaluation, intervals and plots of a panel all read."""

from __future__ import annotations

import numpy as np
import torch

from rnnkit.data.pairs import Pairs, Segments
from rnnkit.data.panel import PanelPipeline
from rnnkit.data.panel_table import Panel
from rnnkit.data.pipeline import Encoded
from rnnkit.inference import model_outputs

BATCH = 1024  # windows per model call


def forecasts(model: torch.nn.Module, pipe: PanelPipeline, enc: Encoded, split: str,
              only: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(predictions (N, H, O) in original units, series (N,), last input rows (N,)) of
    every series, or of the series numbered ``only``."""
    pairs = split_pairs(pipe, enc, split, only)
    raw = model_outputs(model, pairs, batch=BATCH)
    series, last = pipe.origins(pairs.index, torch.arange(len(pairs)))  # type: ignore[arg-type]
    return pipe.to_levels(raw, series, last, enc.dataset.values), series, last


def split_pairs(pipe: PanelPipeline, enc: Encoded, split: str, only: np.ndarray | None) -> Pairs:
    """Scaled windows of ``split`` of every series, or of the series numbered ``only``."""
    if only is None:
        return pipe.pairs(enc, split)
    index = pipe.segments(split, enc.dataset.offsets)
    counts = np.zeros(len(index.counts), dtype=np.int64)
    counts[only] = index.counts.numpy()[only]
    return pipe.windows(enc.buffer, Segments(index.starts.numpy(), counts), pipe.join(enc))


def known_truth(pipe: PanelPipeline, panel: Panel, series: np.ndarray, last: np.ndarray
                ) -> np.ndarray:
    """(N, H, O) the rows after each forecast's last input row, NaN past its series' end."""
    rows = last[:, None] + np.arange(1, pipe.horizon + 1)[None, :]
    inside = rows < panel.offsets[series + 1][:, None]
    o = len(pipe.targets)
    truth = panel.values[np.minimum(rows, len(panel.values) - 1), :o].astype(np.float64)
    return np.where(inside[:, :, None], truth, np.nan)
