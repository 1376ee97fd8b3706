"""The choices a pipeline makes from its training data, written once for every problem shape:
whether to difference (trend test), which window, and the differenced working rows.

Series and panels both call these, so a series fitted alone and the same series inside a panel
get the same window and transform.
"""

from __future__ import annotations

import numpy as np

# A linear trend explaining half the variance makes level targets extrapolate badly: difference.
TREND_R2 = 0.5
MIN_WINDOW, MAX_WINDOW, NO_PERIOD_WINDOW = 8, 256, 16


def wants_diff(transform: str, trend_r2: float) -> bool:
    """``transform`` is diff, none or auto (auto: difference when the trend test says so)."""
    return transform == "diff" or (transform == "auto" and trend_r2 >= TREND_R2)


def default_window(period: int | None, train_rows: int, horizon: int, diff: bool) -> int:
    """One season (8..256 steps; 16 without a period), cut so that the training rows still
    give at least about three windows: a fit on fewer means little."""
    window = min(max(period or NO_PERIOD_WINDOW, MIN_WINDOW), MAX_WINDOW)
    return max(2, min(window, (train_rows - horizon - int(diff)) // 3))


def differenced(rows: np.ndarray, n_targets: int) -> np.ndarray:
    """Working rows with diff: target changes ``y[t] - y[t-1]`` and the features of row t, for
    t = 1..n-1 (one row fewer than ``rows``)."""
    o = n_targets  # rows (T, C), or (S, T, C) for several windows at once
    return np.concatenate([np.diff(rows[..., :o], axis=-2), rows[..., 1:, o:]], axis=-1)
