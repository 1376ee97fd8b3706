"""Input/target pairs: the one internal form every problem shape is turned into.

``Pairs`` holds inputs ``(N, T, F)``, targets, an optional mask of scored outputs and optional
lengths. Windows over a long series are strided views (``Tensor.unfold``) of one buffer, never
copies; a batch is gathered by index only when it is used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rnnkit.errors import DataError


@dataclass
class Pairs:
    """inputs (N, T, F); targets (N, T, O) for per-step heads or (N, H, O) for last-step heads;
    mask (N, T) bool of scored steps (per-step heads only); lengths (N,) real steps per row."""

    inputs: torch.Tensor
    targets: torch.Tensor
    mask: torch.Tensor | None = None
    lengths: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def take(self, idx: torch.Tensor) -> Pairs:
        """Gather rows ``idx`` (a batch) into contiguous tensors."""
        return Pairs(
            self.inputs[idx],
            self.targets[idx],
            None if self.mask is None else self.mask[idx],
            None if self.lengths is None else self.lengths[idx],
        )


def series_windows(
    data: torch.Tensor, n_targets: int, window: int, horizon: int, origins: range | np.ndarray
) -> Pairs:
    """Windows of ``window`` rows ending at each origin -> the next ``horizon`` target rows.

    data: (rows, F) scaled working series, targets in the first ``n_targets`` columns.
    origins: indices of each window's last input row; targets are rows origin+1..origin+horizon.
    A ``range`` of origins (how splits produce them) gives inputs (N, window, F) and targets
    (N, horizon, O) that are views into ``data``: no window is copied and no index array is
    built, so memory stays that of the series however many windows there are.
    """
    if len(origins) == 0:
        f = data.shape[1]
        return Pairs(data.new_zeros(0, window, f), data.new_zeros(0, horizon, n_targets))
    if isinstance(origins, range):
        first, last, consecutive = origins[0], origins[-1], origins.step == 1
    else:
        origins = np.asarray(origins, dtype=np.int64)
        first, last = int(origins[0]), int(origins[-1])
        consecutive = bool(np.all(np.diff(origins) == 1))
    if min(first, last) - window + 1 < 0 or max(first, last) + horizon >= data.shape[0]:
        raise DataError(
            f"internal: window origins {first}..{last} do not fit a series of {data.shape[0]} rows"
        )
    # unfold(0, size, 1) gives (rows - size + 1, F, size): a view, permuted to (N, T, F).
    all_inputs = data.unfold(0, window, 1).permute(0, 2, 1)
    all_targets = data[:, :n_targets].unfold(0, horizon, 1).permute(0, 2, 1)
    if consecutive:
        inputs = all_inputs[first - window + 1 : last - window + 2]
        targets = all_targets[first + 1 : last + 2]
    else:
        idx = torch.as_tensor(np.asarray(origins, dtype=np.int64))
        inputs = all_inputs[idx - window + 1]
        targets = all_targets[idx + 1]
    return Pairs(inputs, targets)


def next_step_pairs(seqs: torch.Tensor, warmup: int, lengths: torch.Tensor | None = None) -> Pairs:
    """Sequences (N, T+1, F) -> inputs x[0..T-1], targets x[1..T] (targets are all F columns).

    The first ``warmup`` outputs are not scored (the hidden state is still priming), nor are
    outputs past each sequence's real length.
    """
    inputs = seqs[:, :-1]
    targets = seqs[:, 1:]
    n, t = inputs.shape[:2]
    steps = torch.arange(t)
    mask = (steps >= warmup).expand(n, t).clone()
    if lengths is not None:
        mask &= steps[None, :] < (lengths[:, None] - 1)
        lengths = lengths - 1
    return Pairs(inputs, targets, mask, lengths)


def continuation_pairs(seqs: torch.Tensor, prompt_length: int) -> Pairs:
    """Sequences (N, T, F): the first ``prompt_length`` values are the prompt, the rest is scored.

    Inputs x[0..T-2] -> targets x[1..T-1]; output t predicts x[t+1], so the scored outputs are
    t >= prompt_length - 1 (the continuation only, never the prompt).
    """
    return next_step_pairs(seqs, warmup=prompt_length - 1)


def pad_sequences(seqs: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Variable-length sequences, each (len_i, F) -> padded (N, max_len, F) and lengths (N,).

    Padding goes at the end, so a causal encoder's output at step len_i - 1 never sees it.
    """
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.int64)
    f = seqs[0].shape[1]
    out = torch.zeros(len(seqs), int(lengths.max()), f, dtype=torch.float32)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.from_numpy(np.ascontiguousarray(s, dtype=np.float32))
    return out, lengths
