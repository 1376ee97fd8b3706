"""The sequence pipeline: independent sequences (lists or arrays) -> padded, scaled pairs.

Serves three shapes: ``seq2one`` (a variable-length sequence -> one target), ``continuation``
(prompt of ``prompt_length`` values -> the rest) and ``next`` (every step predicts the next).
Sequences are split by their order (first 70% train, ...). Inputs are scaled with statistics of
the training sequences' real steps (padding never counts); seq2one targets have their own scaler.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from rnnkit.config import DataConfig
from rnnkit.data.pairs import Pairs, continuation_pairs, next_step_pairs, pad_sequences
from rnnkit.data.pipeline import Encoded, check_split
from rnnkit.data.scale import Scaler
from rnnkit.data.series import (
    SEARCH_ROWS,
    needed_parts,
    scored_part,
    split_text,
    warn_few_points,
)
from rnnkit.errors import DataError


def as_sequences(data: Any, name: str = "sequences") -> list[np.ndarray]:
    """Normalise a list of sequences / a 2-D (N, T) or 3-D (N, T, F) array to a list of
    float32 arrays (len_i, F), checking every value is a finite number."""
    if (isinstance(data, np.ndarray) and data.ndim in (2, 3) and data.dtype.kind in "fiu"
            and data.size and np.isfinite(data).all() and np.abs(data).max() <= 3.4e38):
        # a clean numeric array is checked once as a whole, not sequence by sequence
        whole = data.astype(np.float64, copy=False)
        whole = whole[:, :, None] if whole.ndim == 2 else whole
        return list(whole)
    if isinstance(data, np.ndarray) and data.ndim in (2, 3):
        rows = [data[i] for i in range(data.shape[0])]
    elif isinstance(data, list | tuple):
        rows = list(data)
    else:
        raise DataError(
            f"{name}: expected a list of sequences or an (N, T[, F]) array, got "
            f"{type(data).__name__}."
        )
    if not rows:
        raise DataError(f"{name}: no sequences given.")
    out: list[np.ndarray] = []
    width = None
    for i, row in enumerate(rows):
        try:
            a = np.asarray(row, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(f"{name}: sequence {i} holds a value that is not a number.") from None
        a = a[:, None] if a.ndim == 1 else a
        if a.ndim != 2 or a.shape[0] == 0:
            raise DataError(f"{name}: sequence {i} is empty or not 1-D/2-D (shape {a.shape}).")
        bad = np.argwhere(~np.isfinite(a))
        if bad.size:
            step = int(bad[0][0])
            raise DataError(
                f"{name}: sequence {i}, step {step + 1}: value {a[step, bad[0][1]]} is not a "
                "finite number; remove or fill it."
            )
        if np.abs(a).max() > 3.4e38:
            raise DataError(f"{name}: sequence {i} has values beyond float32 range.")
        if width is not None and a.shape[1] != width:
            raise DataError(
                f"{name}: sequence {i} has {a.shape[1]} features, sequence 0 has {width}."
            )
        width = a.shape[1]
        out.append(a)
    return out


def as_targets(targets: Any, n: int) -> np.ndarray:
    """seq2one targets -> (N, O) float64, one row per sequence, all finite."""
    try:
        y = np.asarray(targets, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError("target: expected numbers, one per sequence.") from None
    y = y[:, None] if y.ndim == 1 else y
    if y.ndim != 2 or y.shape[0] != n:
        raise DataError(
            f"target: got {y.shape[0] if y.ndim else 0} values for {n} sequences; "
            "give one target per sequence."
        )
    if not np.isfinite(y).all():
        i = int(np.argwhere(~np.isfinite(y))[0][0])
        raise DataError(f"target: value at sequence {i} is not a finite number.")
    return y


@dataclass
class SequenceSet:
    """Independent sequences as the reader returns them: ``seqs`` (each (len_i, F) float64)
    and, for seq2one, ``targets`` (N, O), one row per sequence."""

    seqs: list[np.ndarray]
    targets: np.ndarray | None = None
    source: str = "<sequences>"

    def __len__(self) -> int:
        return len(self.seqs)


def split_counts(n: int | np.ndarray, fracs: tuple[float, float, float]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(end of training, end of validation) of ``n`` sequences taken in order."""
    a, b, _ = fracs
    rows = np.asarray(n, dtype=np.float64)
    return np.round(rows * a).astype(np.int64), np.round(rows * (a + b)).astype(np.int64)


def _lacking(n: int | np.ndarray, fracs: tuple[float, float, float]) -> np.ndarray:
    """True where ``n`` sequences leave a needed part (training; validation and test unless
    their fraction is 0) without a sequence."""
    t1, t2 = split_counts(n, fracs)
    count = {"train": t1, "val": t2 - t1, "test": np.asarray(n) - t2}
    return np.any([count[p] < 1 for p in needed_parts(fracs)], axis=0)


def _refuse_few(source: str, n: int, fracs: tuple[float, float, float]) -> None:
    """DataError when ``n`` sequences give no training, validation or test sequence."""
    if not _lacking(n, fracs):
        return
    # every part holds a sequence from 2 / (its fraction) sequences on (rounding moves <= 1)
    top = math.ceil(max(2 / f for f in fracs if f > 0)) + 2
    need = top
    if top <= SEARCH_ROWS:
        counts = np.arange(1, top + 1)
        need = int(counts[np.flatnonzero(_lacking(counts, fracs))[-1]]) + 1
    parts = [{"train": "a training", "val": "a validation", "test": "a test"}[p]
             for p in needed_parts(fracs)]
    raise DataError(
        f"{source}: {n} sequences are too few: split {split_text(fracs)} needs at least {need} "
        f"to give {', '.join(parts[:-1])} and {parts[-1]} sequence (sequences are split in "
        "their order); give more sequences or a different --split.")


@dataclass
class SequencePipeline:
    """Scaling and the pair rule of independent sequences."""

    kind: ClassVar[str] = "sequences"
    shape: str
    n_features: int
    n_outputs: int
    prompt_length: int
    warmup: int
    x_scaler: Scaler
    y_scaler: Scaler | None
    split_fracs: tuple[float, float, float]

    @classmethod
    def fit(cls, data: SequenceSet, cfg: DataConfig) -> tuple[SequencePipeline, SequenceSet]:
        """Check the sequences fit the shape; scalers from the training sequences."""
        seqs, targets = data.seqs, data.targets
        f = seqs[0].shape[1]
        n = len(seqs)
        lengths = {len(s) for s in seqs}
        if cfg.shape == "seq2one":
            if targets is None:
                raise DataError("seq2one needs a target per sequence: fit(seqs, target=values).")
            o = targets.shape[1]
        else:
            o = f
        if cfg.shape == "continuation":
            if len(lengths) != 1:
                raise DataError(
                    "continuation: every sequence must have the same length "
                    f"(got lengths {sorted(lengths)[:5]}...)."
                )
            t = lengths.pop()
            if not 1 <= cfg.prompt_length < t:
                raise DataError(
                    f"continuation: prompt_length={cfg.prompt_length} must be "
                    f"between 1 and the sequence length - 1 ({t - 1})."
                )
        if cfg.shape == "next" and min(len(s) for s in seqs) < 2:
            raise DataError("next: every sequence needs at least 2 steps (an input and a target).")
        pipe = cls(
            cfg.shape,
            f,
            o,
            cfg.prompt_length,
            cfg.warmup,
            Scaler("none", [], []),
            None,
            tuple(cfg.split),
        )
        parts = pipe.split_indices(n)
        _refuse_few(data.source, n, pipe.split_fracs)
        warn_few_points(data.source, len(parts[scored_part(pipe.split_fracs)]), pipe.split_fracs,
                        "sequences")
        tr = parts["train"]
        pipe.x_scaler = Scaler.fit(cfg.scaler, np.concatenate([seqs[i] for i in tr]))
        if targets is not None and cfg.shape == "seq2one":
            pipe.y_scaler = Scaler.fit(cfg.scaler, targets[tr])
        return pipe, data

    def split_indices(self, n: int) -> dict[str, np.ndarray]:
        t1, t2 = split_counts(n, self.split_fracs)
        idx = np.arange(n)
        return {"train": idx[:t1], "val": idx[t1:t2], "test": idx[t2:], "all": idx}

    def encode(self, data: SequenceSet) -> Encoded:
        # sequences are padded per split (to that split's longest), so nothing is built here
        return Encoded(data, None)

    def pairs(self, encoded: Encoded, split: str) -> Pairs:
        """Padded, scaled pairs of the sequences of ``split``."""
        data: SequenceSet = encoded.dataset
        idx = self.split_indices(len(data))[check_split(split)]
        pairs = self.padded(data.seqs, data.targets, idx)
        return pairs if encoded.device.type == "cpu" else pairs.to(encoded.device)

    def to_units(self, outputs: np.ndarray, encoded: Encoded, split: str) -> np.ndarray:
        return self.outputs_to_units(outputs)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {}

    def padded(self, seqs: list[np.ndarray], targets: np.ndarray | None, idx: np.ndarray
               ) -> Pairs:
        """Pairs for sequences ``idx`` (scaled)."""
        if len(idx) == 0:
            t = max(len(s) for s in seqs)
            return Pairs(torch.zeros(0, t, self.n_features), torch.zeros(0, 1, self.n_outputs))
        x, lengths = pad_sequences([self.x_scaler.transform(seqs[i]) for i in idx])
        if self.shape == "seq2one":
            y = torch.zeros(len(idx), 1, self.n_outputs)
            if targets is not None and self.y_scaler is not None:
                y = torch.from_numpy(self.y_scaler.transform(targets[idx]))[:, None, :]
            return Pairs(x, y, None, lengths)
        if self.shape == "continuation":
            return continuation_pairs(x, self.prompt_length)
        return next_step_pairs(x, self.warmup, lengths)

    def outputs_to_units(self, pred: np.ndarray) -> np.ndarray:
        """Scaled model outputs (..., O) -> original units."""
        scaler = self.y_scaler if self.y_scaler is not None else self.x_scaler
        return scaler.inverse(pred, slice(0, self.n_outputs))

    def inputs_to_model(self, x: np.ndarray) -> np.ndarray:
        return self.x_scaler.transform(x)

    def to_json(self) -> dict:
        return {
            "shape": self.shape,
            "n_features": self.n_features,
            "n_outputs": self.n_outputs,
            "prompt_length": self.prompt_length,
            "warmup": self.warmup,
            "x_scaler": self.x_scaler.to_json(),
            "y_scaler": None if self.y_scaler is None else self.y_scaler.to_json(),
            "split": list(self.split_fracs),
        }

    @classmethod
    def from_json(cls, d: dict, tensors: dict[str, torch.Tensor] | None = None
                  ) -> SequencePipeline:
        return cls(
            str(d["shape"]),
            int(d["n_features"]),
            int(d["n_outputs"]),
            int(d["prompt_length"]),
            int(d["warmup"]),
            Scaler.from_json(d["x_scaler"]),
            None if d["y_scaler"] is None else Scaler.from_json(d["y_scaler"]),
            tuple(float(s) for s in d["split"]),
        )
