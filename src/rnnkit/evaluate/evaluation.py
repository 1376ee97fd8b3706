"""What an evaluation leaves behind besides its metrics: the forecasts it scored, in original
units, so that the doctor and the plots read the same numbers the table was computed from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Evaluation:
    """The scored forecasts of one evaluation.

    split: the split scored (test, val, or "given data").
    pred, truth: (N, H, O) for windows, (N, T, O) per step, (N, O) for seq2one; original units.
    baselines: each baseline's forecasts, shaped like ``pred``.
    data: the encoded data that was scored (``rnnkit.data.pipeline.Encoded``), None for a
        panel's sample.
    origins: series only: the last input row of each forecast.
    bounds: {level: (lo, hi)} prediction intervals of ``pred``, the ones the metrics scored.
    """

    split: str
    pred: np.ndarray
    truth: np.ndarray
    baselines: dict[str, np.ndarray] = field(default_factory=dict)
    data: Any = None
    origins: np.ndarray | None = None
    bounds: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
