"""What every check shares: the Finding record and the Subject a check looks at.

A check is a function ``check(subject) -> list[Finding]``. It reads the run (model, pipeline,
config, history, metrics) and, when the data is at hand, pairs of any split in model units.
Checks never change the run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from rnnkit.data.pairs import Pairs
from rnnkit.errors import DataError

SEVERITIES = ("info", "warning", "error")


def fmt(value: Any) -> str:
    """A figure as a reader wants it: 4 significant digits, ints and words as they are."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


# over-fitting evidence (Subject.overfit): more parameters per training window than this, or
# early stopping with the best validation loss this many times the training loss
OVERFIT_PER_WINDOW = 10.0
OVERFIT_GAP = 1.5


@dataclass
class Finding:
    """One thing the doctor noticed.

    code: a stable short name (``no-skill``, ``saturation``, ...), for scripts and tests.
    severity: ``info`` (worth knowing), ``warning`` (likely hurts) or ``error`` (the model does
        not do what it should).
    message: one plain sentence saying what is wrong.
    evidence: the figures the sentence rests on.
    fix: one sentence saying what to try.
    """

    code: str
    severity: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    fix: str = ""

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity {self.severity!r} is not one of {SEVERITIES}")

    def line(self) -> str:
        """``[warning] code: message (evidence) -> fix`` on one line."""
        ev = ", ".join(f"{k}={fmt(v)}" for k, v in self.evidence.items())
        return (f"[{self.severity}] {self.code}: {self.message}" + (f" ({ev})" if ev else "")
                + (f" -> {self.fix}" if self.fix else ""))

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "message": self.message,
                "evidence": dict(self.evidence), "fix": self.fix}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Finding:
        return cls(str(d["code"]), str(d["severity"]), str(d["message"]),
                   dict(d.get("evidence") or {}), str(d.get("fix") or ""))


class Subject:
    """The run under examination, with lazy access to its data in model units.

    ``has_data`` is False for a run loaded without its data (inline data, not reattached):
    checks that need pairs then stay silent rather than guess.
    """

    def __init__(self, run: Any, metrics: dict | None) -> None:
        self.run = run
        self.metrics = metrics or {}
        self.config: dict = run.config
        self.history: list[dict] = run.history or []
        self.pipeline = run.pipeline
        self.data = run.data  # the run's data in model units (an Encoded), or None
        self.has_data = self.data is not None
        self._pairs: dict[str, Pairs] = {}

    # --- facts about the run ------------------------------------------------------------------
    @property
    def shape(self) -> str:
        return str(self.pipeline.shape)

    @property
    def is_series(self) -> bool:
        return self.run.kind == "series"

    @property
    def evaluation(self) -> Any:
        """The forecasts behind the metrics (``rnnkit.evaluate.evaluation.Evaluation``)."""
        return self.run.evaluation

    def rmse(self, name: str | None = None) -> float:
        """RMSE of the model (``name`` None) or of a baseline, NaN when unknown."""
        row = (self.metrics.get("model") if name is None
               else self.metrics.get("baselines", {}).get(name)) or {}
        v = row.get("rmse")
        return float("nan") if v is None else float(v)

    def skill_ratio(self) -> float:
        """Model RMSE / the better of the mean and last-value baselines (NaN when unknown):
        1 means no better than predicting a constant or repeating the last value."""
        base = [self.rmse(b) for b in ("mean", "last value")]
        base = [b for b in base if math.isfinite(b)]
        model = self.rmse()
        if not base or not math.isfinite(model):
            return float("nan")
        best = min(base)
        if best <= 0:
            return float("nan") if model <= 0 else float("inf")
        return model / best

    def overfit(self) -> str | None:
        """Why the model looks over-fitted, in words, or None when the evidence does not say
        so. Evidence: parameters per training window, the epoch of the best validation loss
        against the last one, and the validation loss over the training loss at that epoch.
        Advice that reads this never answers over-fitting with "train longer"."""
        losses = [(r.get("train_loss"), r.get("val_loss")) for r in self.history]
        losses = [(t, v) for t, v in losses if t is not None and v is not None
                  and math.isfinite(t) and math.isfinite(v) and t > 0]
        params = sum(p.numel() for p in self.run.model.parameters())
        windows = len(self.pairs("train")) if self.has_data and self.is_series else 0
        per_window = params / windows if windows else math.nan
        stopped = str(self.config.get("training", {}).get("stop_reason", ""))
        gap = math.nan
        if losses:
            best = min(range(len(losses)), key=lambda i: losses[i][1])
            gap = losses[best][1] / losses[best][0]
        early = stopped.startswith("early stopping")
        if not ((math.isfinite(per_window) and per_window > OVERFIT_PER_WINDOW)
                or (early and math.isfinite(gap) and gap > OVERFIT_GAP)):
            return None
        parts = []
        if math.isfinite(per_window):
            parts.append(f"{params:,} parameters for {windows:,} training windows")
        if math.isfinite(gap):
            parts.append(f"validation loss {gap:.1f}x the training loss at its best epoch")
        return "; ".join(parts)

    # --- data in model units --------------------------------------------------------------------
    def series_values(self) -> np.ndarray:
        if not self.has_data or not self.is_series:
            raise DataError("internal: series values asked of a run without series data")
        return np.asarray(self.data.dataset.values)

    def sequences(self) -> tuple[list[np.ndarray], np.ndarray | None]:
        """The sequences and their seq2one targets (None otherwise)."""
        if not self.has_data or self.is_series:
            raise DataError("internal: sequences asked of a run without sequences")
        return self.data.dataset.seqs, self.data.dataset.targets

    def tensor(self) -> torch.Tensor:
        """The scaled working series (rows, F)."""
        return self.data.buffer

    def targets(self) -> np.ndarray:
        """Every target of the data in model units, (M, O): warm-up and padding dropped."""
        if self.is_series:
            return self.tensor()[:, : len(self.pipeline.targets)].double().numpy()
        return scored_targets(self.pairs("all")).double().numpy()

    def pairs(self, split: str) -> Pairs:
        """Scaled pairs of ``split`` (train, val, test, all), exactly as training built them."""
        if split in self._pairs:
            return self._pairs[split]
        if not self.has_data:
            raise DataError("internal: pairs asked of a run without data")
        pairs = self.pipeline.pairs(self.data, split)
        self._pairs[split] = pairs
        return pairs

    def held_out(self) -> str:
        """The split the checks score on: test when it has pairs, else validation, else train."""
        for split in ("test", "val", "train"):
            if self.has_data and len(self.pairs(split)):
                return split
        return "train"


def scored_targets(pairs: Pairs) -> torch.Tensor:
    """The targets that the loss scores, flattened to (M, O): warm-up and padding dropped."""
    y = pairs.targets
    if pairs.mask is not None and y.shape[1] == pairs.mask.shape[1]:
        return y[pairs.mask]
    return y.reshape(-1, y.shape[-1])
