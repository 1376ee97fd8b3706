"""How long a fit trains when the user does not say.

A flat 200 epochs with patience 20 is 200 optimizer steps on the Nile (54 training windows,
one batch an epoch) and 20,000 on a series with 200,000 windows, where 20 epochs of patience
alone are 60,000 steps past the best model. Convergence goes with optimizer steps, so the
bound and the patience are set in steps and turned into epochs: at most ``MAX_STEPS`` steps
(10 to 200 epochs), and ``PATIENCE_STEPS`` steps without a better validation loss (5 to 20
epochs) before stopping. The learning rate halves after two fifths of the patience, as the
flat defaults (8 of 20) did.

Why these sizes: every fit measured so far (the real series of benchmarks/ACCURACY.md and the
5,000-row daily series of ``make bench``) stops early well inside 5,000 steps, and up to
about 3,000 training windows keeps patience 19 or 20, so those fits train exactly as before.
Half the patience (500 steps) cut the daily series' loop from 8.6 to 4.4 s with the same
model, but changed the monthly sunspots fit (patience 15, learning rate halved sooner: best
epoch 3 instead of 12, test RMSE 17.12 instead of 17.08) and left the work after training at
85% of the shorter loop; it can be asked for with ``--early-stopping``.
"""

from __future__ import annotations

import math
from dataclasses import replace

from rnnkit.config import TrainConfig

MAX_STEPS = 5_000
EPOCHS = (10, 200)
PATIENCE_STEPS = 1_000
PATIENCE = (5, 20)


def steps_per_epoch(windows: int, cfg: TrainConfig) -> int:
    """Optimizer steps an epoch takes over ``windows`` training windows."""
    seen = min(windows, cfg.windows_per_epoch or windows)
    return max(1, math.ceil(seen / cfg.batch_size))


def _within(value: int, bounds: tuple[int, int]) -> int:
    return max(bounds[0], min(bounds[1], value))


def resolve(cfg: TrainConfig, windows: int) -> TrainConfig:
    """``cfg`` with epochs, early_stopping and lr_patience the user left unset (None) chosen
    for ``windows`` training windows; what the user set is kept."""
    if None not in (cfg.epochs, cfg.early_stopping, cfg.lr_patience):
        return cfg
    steps = steps_per_epoch(windows, cfg)
    patience = _within(PATIENCE_STEPS // steps, PATIENCE)
    return replace(
        cfg,
        epochs=_within(MAX_STEPS // steps, EPOCHS) if cfg.epochs is None else cfg.epochs,
        early_stopping=patience if cfg.early_stopping is None else cfg.early_stopping,
        lr_patience=max(1, 2 * patience // 5) if cfg.lr_patience is None else cfg.lr_patience)
