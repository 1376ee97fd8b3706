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
    TrainingError,
)

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "RnnkitError",
    "Run",
    "TrainingError",
    "__version__",
    "fit",
    "load",
]


def __getattr__(name: str) -> Any:
    if name == "fit":
        from rnnkit.api import fit

        return fit
    if name in ("load", "Run"):
        from rnnkit import runs

        return getattr(runs, name)
    raise AttributeError(f"module 'rnnkit' has no attribute {name!r}")
