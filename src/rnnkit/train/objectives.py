"""Training objectives: how a batch of pairs becomes a loss.

- ``teacher``: per-step heads fed the true inputs; masked MSE over scored steps (warm-up and
  padding never count);
- ``last``: last-step heads; MSE over the horizon outputs;
- ``closed_loop``: prompt continuation; the model is primed on the prompt, then fed its own
  predictions, and scored on the continuation only -- exactly how it is used afterwards.

With a probabilistic loss (gaussian, student_t, pinball) ``teacher`` and ``last`` score the
predicted distribution instead of the point (``rnnkit.models.distributions.loss_value``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import nn

from rnnkit.data.pairs import Pairs
from rnnkit.models.distributions import loss_value

Objective = Callable[[nn.Module, Pairs], torch.Tensor]


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean squared error over scored entries; ``mask`` (B, T) selects steps of (B, T, O)."""
    err = (pred - target) ** 2
    if mask is None:
        return err.mean()
    m = mask.unsqueeze(-1).to(device=err.device, dtype=err.dtype)  # (B, T, 1)
    return (err * m).sum() / (m.sum() * err.shape[-1]).clamp_min(1)


def teacher(model: nn.Module, batch: Pairs) -> torch.Tensor:
    pred, _ = model(batch.inputs)
    return masked_mse(pred, batch.targets, batch.mask)


def last(model: nn.Module, batch: Pairs) -> torch.Tensor:
    pred, _ = model(batch.inputs, lengths=batch.lengths)
    return masked_mse(pred, batch.targets, None)


def members(model: nn.Module, batch: Pairs) -> torch.Tensor:
    """Ensembles (``models/ensemble.Members``, outputs (B, K, H, O)): while training, each
    member is scored on its own error; evaluated, the error of their average is what counts."""
    pred, _ = model(batch.inputs, lengths=batch.lengths)
    if model.training:
        return ((pred - batch.targets[:, None]) ** 2).mean()
    return masked_mse(pred.mean(dim=1), batch.targets, None)


def closed_loop_predictions(model: nn.Module, inputs: torch.Tensor, prompt_length: int,
                            steps: int) -> torch.Tensor:
    """Predictions (B, steps, O) of the continuation after ``prompt_length`` input steps."""
    return model.generate(inputs[:, :prompt_length], steps)


def closed_loop(model: nn.Module, batch: Pairs, prompt_length: int) -> torch.Tensor:
    steps = batch.targets.shape[1] - (prompt_length - 1)
    pred = closed_loop_predictions(model, batch.inputs, prompt_length, steps)
    return masked_mse(pred, batch.targets[:, prompt_length - 1 :], None)


def likelihood(model: nn.Module, batch: Pairs, loss: str, quantiles: tuple[float, ...],
               per_step: bool) -> torch.Tensor:
    """``teacher`` (per_step) or ``last`` scored by the predicted distribution."""
    lengths = None if per_step else batch.lengths
    pred, _, extra = model(batch.inputs, lengths=lengths, params=True)
    return loss_value(loss, quantiles, pred, extra, batch.targets,
                      batch.mask if per_step else None)


def pick(name: str, prompt_length: int = 0, loss: str = "mse",
         quantiles: tuple[float, ...] = (), ensemble: int = 1) -> Objective:
    """The objective function for a resolved objective name and the model's loss."""
    if ensemble > 1:
        return members
    if name == "closed_loop":
        return partial(closed_loop, prompt_length=prompt_length)
    if loss != "mse":
        return partial(likelihood, loss=loss, quantiles=tuple(quantiles),
                       per_step=name == "teacher")
    return {"teacher": teacher, "last": last}[name]
