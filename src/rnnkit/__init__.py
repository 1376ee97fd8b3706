"""rnnkit: recurrent neural networks (RNN, LSTM, GRU) that learn sequences and just work.

    import rnnkit
    run = rnnkit.fit("data.csv", target="close")
    print(run.table())
    run.forecast(steps=30)
    run.save("runs/close"); rnnkit.load("runs/close")

Heavy modules (torch, pandas, matplotlib) load on first use, so ``rnnkit --help`` is instant.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

from rnnkit.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    RnnkitError,
    RunLocked,
    StorageError,
    TrainingError,
)

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "RnnkitError",
    "Run",
    "RunLocked",
    "StorageError",
    "TrainingError",
    "__version__",
    "fit",
    "load",
    "resume",
    "tune",
]


def __getattr__(name: str) -> Any:
    if name in ("fit", "resume"):
        from rnnkit import api

        return getattr(api, name)
    if name in ("load", "Run"):
        from rnnkit import runs

        return getattr(runs, name)
    if name == "tune":  # needs the tune extra (Optuna), imported only when a search runs
        from rnnkit.cli.tune import tune

        return tune
    raise AttributeError(f"module 'rnnkit' has no attribute {name!r}")
