"""Callbacks: named hooks that do nothing by default. Early stopping sets a flag, never raises."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass
class LoopState:
    """What the loop shares with its callbacks."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    epoch: int = 0
    step: int = 0
    stop: bool = False
    stop_reason: str = "max epochs"
    records: list[dict[str, Any]] = field(default_factory=list)


class Callback:
    """Override any hook; each receives the loop state."""

    def on_train_begin(self, state: LoopState) -> None: ...
    def on_epoch_end(self, state: LoopState) -> None: ...
    def on_train_end(self, state: LoopState) -> None: ...


class EarlyStopping(Callback):
    """Tracks the best monitored loss, stops after ``patience`` epochs without improvement and
    restores the best weights at the end (epoch 0, the untrained model, counts too)."""

    def __init__(self, patience: int, monitor: str = "val_loss") -> None:
        self.patience, self.monitor = patience, monitor
        self.best = float("inf")
        self.best_epoch = 0
        self.best_weights: dict[str, torch.Tensor] | None = None
        self.wait = 0

    def on_epoch_end(self, state: LoopState) -> None:
        value = state.records[-1][self.monitor]
        # a relative margin keeps float noise from counting as progress
        margin = 1e-9 * abs(self.best) if self.best != float("inf") else 0.0
        if value < self.best - margin:
            self.best, self.best_epoch, self.wait = value, state.epoch, 0
            self.best_weights = copy.deepcopy(state.model.state_dict())
        else:
            self.wait += 1
            if self.patience and self.wait >= self.patience:
                state.stop = True
                state.stop_reason = f"early stopping: no improvement for {self.patience} epochs"

    def on_train_end(self, state: LoopState) -> None:
        if self.best_weights is not None:
            state.model.load_state_dict(self.best_weights)
