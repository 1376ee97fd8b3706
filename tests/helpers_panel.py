"""Synthetic long-format panels for the panel and DDP tests (seeded, so every run is the same).

``make_panel``: each series is a seasonal wave at its own level and amplitude (levels span four
orders of magnitude: per-series scaling is what lets them train together) plus a little noise.
``threshold_panel``: each series switches between two linear regimes by the sign of its last
value (a threshold AR), which no linear AR can follow and a recurrent model can.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def make_panel(series: int, length: int | tuple[int, int], seed: int = 0, period: int = 12,
               start: str = "2000-01-01") -> pd.DataFrame:
    """A long table ``unique_id, ds, y`` of ``series`` monthly series."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(series):
        n = length if isinstance(length, int) else int(rng.integers(*length))
        t = np.arange(n)
        level = 10 ** rng.uniform(0, 4)
        wave = np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
        y = level * (1 + 0.4 * wave + 0.02 * rng.standard_normal(n))
        frames.append(pd.DataFrame({"unique_id": f"s{i:04d}",
                                    "ds": pd.date_range(start, periods=n, freq="MS"), "y": y}))
    return pd.concat(frames, ignore_index=True)


def write_panel(path: Path, series: int, length: int | tuple[int, int], seed: int = 0) -> Path:
    make_panel(series, length, seed).to_csv(path, index=False)
    return path


def threshold_panel(series: int, length: tuple[int, int], seed: int = 1) -> pd.DataFrame:
    """A long table of threshold-AR series, weekly, at levels 10..1000 and scales 0.3..30."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(series):
        n = int(rng.integers(*length))
        x = np.zeros(n)
        noise = 0.1 * rng.standard_normal(n)
        for t in range(1, n):
            x[t] = (0.8 * x[t - 1] + 0.6 if x[t - 1] < 0 else -0.6 * x[t - 1] - 0.2) + noise[t]
        level, scale = 10 ** rng.uniform(1, 3), 10 ** rng.uniform(-0.5, 1.5)
        frames.append(pd.DataFrame({"unique_id": f"s{i:04d}", "y": level + scale * x,
                                    "ds": pd.date_range("2010-01-04", periods=n, freq="W-MON")}))
    return pd.concat(frames, ignore_index=True)[["unique_id", "ds", "y"]]
