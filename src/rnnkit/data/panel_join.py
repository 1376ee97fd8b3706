"""What a panel window reads besides its rows of the scaled buffer: the leads of the covariates
known ahead, and the static inputs of its series.

Both are joined when a batch is gathered, never stored per window or per row: the known
covariates stay one raw column each beside the panel's values (``data/compact.py``: float32,
or exact codes of few distinct values, decoded as they are read), scaled by the window's
series as they are read, and a series' statics are one row of an (S, Z) table.
``PanelJoin`` does it for the training and evaluation windows (torch, per batch) and
``numpy_inputs`` for the rolling forecasts (numpy, per round), with the same arithmetic, so a
forecast from a series' last row equals the prediction at that origin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

from rnnkit.data.compact import KnownTensors


@dataclass
class PanelJoin:
    """The joined inputs of windows over a panel buffer: ``known`` the raw covariates known
    ahead, K per row (None without), scaled by each series' ``shift``/``scale`` (S, K)
    float64 and turned into ``lead`` steps of leads; ``statics`` (S, Z) float32 (None
    without).
    ``offsets`` (S + 1,): the buffer row each series starts at."""

    offsets: torch.Tensor
    window: int
    lead: int
    known: KnownTensors | None = None
    shift: torch.Tensor | None = None
    scale: torch.Tensor | None = None
    statics: torch.Tensor | None = None

    def __call__(self, inputs: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
        """Inputs (B, W, F) of windows starting at buffer rows ``starts`` (B,) ->
        (B, W, F + K * lead + Z)."""
        starts = starts.to(self.offsets.device).long()
        series = torch.searchsorted(self.offsets, starts, right=True) - 1  # (B,)
        parts = [inputs]
        if self.known is not None:
            # row t of a window reads rows t+1 .. t+lead: rows start+1 .. start+W+lead-1
            block = self.known.spans(starts + 1, self.window + self.lead - 1).double()
            # in place: the same arithmetic without two more (B, K, W+L-1) float64 temporaries
            block.sub_(self.shift[series, :, None]).div_(self.scale[series, :, None])
            parts.append(_leads(block.float().transpose(1, 2), self.lead))
        if self.statics is not None:
            parts.append(self.statics[series, None, :].expand(-1, inputs.shape[1], -1))
        return torch.cat(parts, dim=-1) if len(parts) > 1 else inputs


def _leads(block: torch.Tensor, lead: int) -> torch.Tensor:
    """(B, W + lead - 1, K) rows -> (B, W, lead * K): row t holds rows t+1..t+lead (step
    major, as ``covariates.leads``)."""
    b, _, k = block.shape
    steps = block.unfold(1, lead, 1)  # (B, W, K, lead)
    return steps.permute(0, 1, 3, 2).reshape(b, steps.shape[1], lead * k)


def numpy_inputs(work: np.ndarray, known: np.ndarray | None, lead: int,
                 scaling: tuple[np.ndarray, np.ndarray], statics: np.ndarray | None
                 ) -> np.ndarray:
    """Scaled inputs (S, W, F) of windows given as float32 working rows ``work`` (S, W, base)
    and the raw known covariates ``known`` (S, W + lead - 1, K) of the rows after each of
    them (None without). ``scaling``: each window's series' (shift, scale) (S, base + K);
    ``statics`` (S, Z) its static inputs."""
    shift, scale = scaling
    base, (s, w) = work.shape[2], work.shape[:2]
    parts = [((work - shift[:, None, :base]) / scale[:, None, :base]).astype(np.float32)]
    if known is not None:
        block = ((known - shift[:, None, base:]) / scale[:, None, base:]).astype(np.float32)
        steps = sliding_window_view(block, lead, axis=1)  # (S, W, K, lead)
        parts.append(steps.transpose(0, 1, 3, 2).reshape(s, w, -1))
    if statics is not None:
        parts.append(np.broadcast_to(statics[:, None, :], (s, w, statics.shape[1])))
    return np.concatenate(parts, axis=-1) if len(parts) > 1 else parts[0]
