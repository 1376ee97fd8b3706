"""The one interface every problem shape's pipeline offers, so that everything after the data
(training, evaluation, diagnosis, saving) is written once for series, sequences and panels.

A pipeline is fitted on the training part of its data, encodes the data into model units once
(an :class:`Encoded` buffer that windows are views of), cuts ``pairs`` for a named split
(train, val, test or all), turns the model's outputs for those pairs back into original units,
and round-trips through JSON (plus, for a panel, per-series statistics as tensors).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar, Protocol

import numpy as np
import torch

from rnnkit.config import DataConfig
from rnnkit.data.pairs import Pairs
from rnnkit.errors import ConfigError

SPLITS = ("train", "val", "test", "all")
CPU = torch.device("cpu")


@dataclass
class Encoded:
    """A dataset in model units: ``dataset`` is what the reader returned (a ``Table``, a
    ``SequenceSet`` or a ``Panel``), ``buffer`` its scaled working rows (None for sequences,
    which are padded per split), ``device`` where pairs are built."""

    dataset: Any
    buffer: torch.Tensor | None
    device: torch.device = CPU

    def to(self, device: torch.device) -> Encoded:
        """The same data on ``device``: the whole buffer moves once, windows stay views."""
        if device == self.device:
            return self
        buffer = None if self.buffer is None else self.buffer.to(device)
        return replace(self, buffer=buffer, device=device)


class Pipeline(Protocol):
    """What series, sequence and panel pipelines all do, with the same signatures."""

    kind: ClassVar[str]  # "series", "sequences" or "panel": the run kind it serves
    shape: str  # window, next, seq2one or continuation

    @classmethod
    def fit(cls, data: Any, cfg: DataConfig) -> tuple[Pipeline, Any]:
        """Choices and scaling from the training part of ``data``; returns the pipeline and
        the data it serves (a panel without the short series it skipped)."""
        ...

    def encode(self, data: Any) -> Encoded:
        """``data`` in model units, once: pairs of every split are cut from it."""
        ...

    def pairs(self, encoded: Encoded, split: str) -> Pairs:
        """The scaled (input, target) pairs of ``split``, on ``encoded.device``."""
        ...

    def to_units(self, outputs: np.ndarray, encoded: Encoded, split: str) -> np.ndarray:
        """Model outputs for ``pairs(encoded, split)`` (in their order) in original units."""
        ...

    def to_json(self) -> dict:
        ...

    def tensors(self) -> dict[str, torch.Tensor]:
        """Statistics too large for JSON (per-series scaling of a panel); often empty."""
        ...


def output_columns(targets: list[str], horizon: int, levels: tuple[int, ...] = ()) -> list[str]:
    """Names of forecast columns: the target names, or ``name_t+k`` for each step k of a
    longer horizon (step-major: all targets of step 1, then of step 2, ...); each followed by
    its interval bounds ``<column>_lo<level>``, ``<column>_hi<level>`` for every level."""
    points = (list(targets) if horizon == 1
              else [f"{t}_t+{k + 1}" for k in range(horizon) for t in targets])
    out = []
    for c in points:
        out.append(c)
        for level in sorted(levels):
            out += [f"{c}_lo{level}", f"{c}_hi{level}"]
    return out


def output_values(pred: np.ndarray, bounds: dict[int, tuple[np.ndarray, np.ndarray]]
                  ) -> np.ndarray:
    """Forecasts (N, H, O) and their interval bounds as rows in ``output_columns`` order."""
    n = len(pred)
    parts = [pred.reshape(n, -1)]
    for level in sorted(bounds):
        lo, hi = bounds[level]
        parts += [lo.reshape(n, -1), hi.reshape(n, -1)]
    return np.stack(parts, axis=-1).reshape(n, -1)


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise ConfigError(f"split {split!r}: expected one of {', '.join(SPLITS)}.")
    return split
