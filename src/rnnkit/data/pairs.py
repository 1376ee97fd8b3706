"""Input/target pairs: the one internal form every problem shape is turned into.

``Pairs`` holds inputs ``(N, T, F)``, targets, an optional mask of scored outputs and optional
lengths. Windows over a long series are strided views (``Tensor.unfold``) of one buffer, never
copies; a batch is gathered by index only when it is used. Windows of a panel (many series in
one buffer) are the rows of such a view that lie inside one series: a :class:`Segments` index
maps pair numbers to view rows without an index array, so memory stays that of the data.
Inputs that are not rows of the buffer (a panel's covariates known ahead and static inputs)
are joined to a batch as it is gathered (``join``), never stored per window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from rnnkit.errors import DataError


class Segments:
    """Pair numbers 0..N-1 laid over runs of consecutive view rows, one run per series.

    starts: (S,) first view row of each run; counts: (S,) rows in each run. Pair ``k`` is row
    ``starts[s] + k - before[s]`` of run ``s``, found by binary search: O(S) memory, however
    many windows there are.
    """

    def __init__(self, starts: np.ndarray, counts: np.ndarray) -> None:
        self.starts = torch.as_tensor(np.asarray(starts, dtype=np.int64))
        self.counts = torch.as_tensor(np.asarray(counts, dtype=np.int64))
        self.ends = torch.cumsum(self.counts, 0)  # pairs before the end of each run

    def __len__(self) -> int:
        return int(self.ends[-1]) if len(self.ends) else 0

    def rows(self, k: torch.Tensor) -> torch.Tensor:
        """View rows of pair numbers ``k`` (any integer tensor)."""
        k = k.long()
        s = torch.searchsorted(self.ends, k, right=True)
        return self.starts[s] + k - (self.ends[s] - self.counts[s])

    def series(self, k: torch.Tensor) -> torch.Tensor:
        """Run (series) number of each pair number in ``k``."""
        return torch.searchsorted(self.ends, k.long(), right=True)


@dataclass
class Pairs:
    """inputs (N, T, F); targets (N, T, O) for per-step heads or (N, H, O) for last-step heads;
    mask (N, T) bool of scored steps (per-step heads only); lengths (N,) real steps per row.

    With ``index`` (panels, samples), inputs and targets are views over every start row of a
    buffer and only the rows ``index`` names are pairs (Segments, or a tensor of rows);
    ``take`` and ``rows`` gather those. ``join``: (gathered inputs (B, T, F), their view rows
    (B,)) -> the full inputs (B, T, F + extra), for inputs joined per batch.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    mask: torch.Tensor | None = None
    lengths: torch.Tensor | None = None
    index: Segments | torch.Tensor | None = None
    join: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.index) if self.index is not None else int(self.inputs.shape[0])

    def _rows(self, idx: torch.Tensor) -> torch.Tensor:
        if isinstance(self.index, Segments):
            return self.index.rows(idx)
        return self.index[idx.long()]  # type: ignore[index]

    def sample(self, size: int, seed: int) -> Pairs:
        """A fixed draw of ``size`` pairs (in their order), e.g. to validate on a huge panel."""
        gen = torch.Generator().manual_seed(seed)
        n = len(self)
        k = torch.randperm(n, generator=gen, dtype=torch.int32 if n < 2**31 else torch.int64)
        k = k[:size].sort().values.long()
        rows = k if self.index is None else self._rows(k)
        return Pairs(self.inputs, self.targets, self.mask, self.lengths, rows, self.join)

    def take(self, idx: torch.Tensor) -> Pairs:
        """Gather pairs ``idx`` (a batch) into contiguous tensors."""
        if self.index is not None:
            idx = self._rows(idx)
        inputs = self.inputs[idx]
        return Pairs(
            inputs if self.join is None else self.join(inputs, idx),
            self.targets[idx],
            None if self.mask is None else self.mask[idx],
            None if self.lengths is None else self.lengths[idx],
        )

    def to(self, device: torch.device) -> Pairs:
        """The same pairs on ``device`` (for sequences; series move their buffer instead)."""
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device)

        return Pairs(self.inputs.to(device), self.targets.to(device), move(self.mask),
                     move(self.lengths), self.index, self.join)

    def rows(self, start: int, stop: int) -> Pairs:
        """Pairs ``start..stop-1``: views when the pairs are plain, gathered for a panel."""
        if self.index is not None:
            return self.take(torch.arange(start, min(stop, len(self))))
        return Pairs(
            self.inputs[start:stop],
            self.targets[start:stop],
            None if self.mask is None else self.mask[start:stop],
            None if self.lengths is None else self.lengths[start:stop],
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
