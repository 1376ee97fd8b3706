"""The three kinds of data a run is fitted on, each with its pipeline and its way of reading,
scoring, predicting and saving. ``KINDS`` is the table ``fit`` and ``load`` pick from; the
choice is made once, by ``kind_of``, and everything after it goes one path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rnnkit.data.read_panel import is_panel
from rnnkit.kinds.panel import PanelKind
from rnnkit.kinds.sequences import SequenceKind
from rnnkit.kinds.series import SeriesKind

KINDS: dict[str, Any] = {"series": SeriesKind, "sequences": SequenceKind, "panel": PanelKind}


def kind_of(data: Any, opts: dict) -> str:
    """Which kind ``data`` is: independent sequences, a long-format panel, or one series."""
    if _sequences(data, opts.get("shape"), opts.get("prompt_length")):
        return "sequences"
    if isinstance(data, str | Path | pd.DataFrame) and is_panel(data, opts.get("id")):
        return "panel"
    return "series"


def _sequences(data: Any, shape: str | None, prompt_length: int | None) -> bool:
    if shape in ("seq2one", "continuation"):
        return True
    if shape == "window":
        return False
    if prompt_length and isinstance(data, np.ndarray) and data.ndim == 2:
        # A prompt length only has a meaning for independent sequences (continuation), so an
        # (N, T) array given with one is N sequences, not a table of T columns.
        return True
    if isinstance(data, list | tuple) and data and all(
            isinstance(s, list | tuple | np.ndarray) for s in data):
        return True
    return isinstance(data, np.ndarray) and data.ndim == 3


__all__ = ["KINDS", "kind_of"]
