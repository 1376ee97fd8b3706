"""The misalignment control: does the model beat a copy trained on shuffled targets?

A copy of the model (same configuration, same seed) is trained briefly on the training pairs
with their targets permuted across samples, so inputs carry no information about targets. It
can learn the targets' distribution, nothing more. If the real model does not clearly beat it
on the validation pairs, whatever it learned is not a relation between inputs and targets:
inputs and targets may be misaligned (the batching helper that paired them wrongly), or there
is nothing to learn from these inputs.

The control is cheap and deterministic: at most a few thousand pairs and a fixed amount of
work (epochs x pairs x steps), seeded from the run's seed, and it leaves the global random
state untouched.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from rnnkit.config import TrainConfig
from rnnkit.data.pairs import Pairs
from rnnkit.evaluate.findings.base import Finding, Subject
from rnnkit.models.least_squares import least_squares_start, param_groups
from rnnkit.models.network import RecurrentNet
from rnnkit.train import objectives
from rnnkit.train.loop import History, evaluate_loss, train

CLEARLY_BETTER = 0.8  # the real model's loss must be below 80% of the control's
CONTROL_EPOCHS = 30
# The control's cost is capped by work (sample x time steps), not by seconds, so it trains the
# same on a busy machine as on an idle one and its verdict is reproducible: about 3 s here.
CONTROL_WORK = 2_000_000
MIN_EPOCHS = 3
TRAIN_PAIRS = 4096
VAL_PAIRS = 2048


def _subset(pairs: Pairs, n: int, rng: np.random.Generator) -> Pairs:
    if len(pairs) <= n:
        return pairs
    idx = torch.from_numpy(np.sort(rng.choice(len(pairs), n, replace=False)))
    return pairs.take(idx)


def shuffle_targets(pairs: Pairs, rng: np.random.Generator) -> Pairs:
    """The same inputs with the targets of other samples (a permutation across samples).
    A step is scored only where both its own and the borrowed sample have a real target."""
    perm = torch.from_numpy(rng.permutation(len(pairs)))
    mask = None if pairs.mask is None else pairs.mask & pairs.mask[perm]
    return Pairs(pairs.inputs, pairs.targets[perm], mask, pairs.lengths)


def _train_config(s: Subject, epochs: int) -> TrainConfig:
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    saved = {k: v for k, v in s.config.get("train", {}).items() if k in names}
    cfg = TrainConfig(**saved)
    return dataclasses.replace(cfg, epochs=min(cfg.epochs, epochs), quiet=True,
                               max_seconds=None)


def control_loss(s: Subject) -> tuple[float, float, int] | None:
    """(real model's loss, control's loss, control epochs) on the validation pairs (training
    pairs when there is no validation split), or None without data."""
    if not s.has_data:
        return None
    seed = int(s.config.get("train", {}).get("seed", 0))
    rng = np.random.default_rng(seed)
    train_pairs = _subset(s.pairs("train"), TRAIN_PAIRS, rng)
    if len(train_pairs) < 4:
        return None
    val_pairs = s.pairs("val") if len(s.pairs("val")) else s.pairs("train")
    val_pairs = _subset(val_pairs, VAL_PAIRS, rng)
    prompt = int(getattr(s.pipeline, "prompt_length", 0) or 0)
    objective = objectives.pick(str(s.config.get("objective", "teacher")), prompt)
    real = evaluate_loss(s.run.model, val_pairs, objective)
    per_epoch = len(train_pairs) * int(train_pairs.inputs.shape[1])  # sample x time steps
    epochs = max(MIN_EPOCHS, min(CONTROL_EPOCHS, CONTROL_WORK // max(per_epoch, 1)))
    cfg = _train_config(s, epochs)
    shuffled = shuffle_targets(train_pairs, rng)
    threads = torch.get_num_threads()
    # One thread: a small control model is bound by per-operation overhead, where more threads
    # only add synchronisation, and on a busy machine make each step wait for a free core.
    torch.set_num_threads(1)
    try:
        history, model = _train_control(s, shuffled, val_pairs, cfg, objective)
    finally:
        torch.set_num_threads(threads)
    model.eval()
    return real, evaluate_loss(model, val_pairs, objective), len(history.records) - 1


def _train_control(s: Subject, shuffled: Pairs, val_pairs: Pairs, cfg: TrainConfig,
                   objective: objectives.Objective) -> tuple[History, RecurrentNet]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = RecurrentNet(s.run.model.cfg)
        # the same set-up as the real fit
        started = least_squares_start(model, shuffled)
        groups = param_groups(model, cfg.lr) if started else None
        history = train(model, shuffled, val_pairs, cfg, objective, None, groups)
    return history, model


def check_control(s: Subject) -> list[Finding]:
    got = control_loss(s)
    if got is None:
        return []
    real, control, epochs = got
    if not (math.isfinite(real) and math.isfinite(control)) or control <= 0:
        return []
    ratio = real / control
    ev = {"model_val_loss": real, "shuffled_control_val_loss": control, "ratio": ratio,
          "control_epochs": epochs}
    if ratio < CLEARLY_BETTER:
        return []
    msg = (f"the model is no better (validation loss {real:.4g}) than a copy trained on "
           f"targets shuffled across samples ({control:.4g}): it learned nothing real about "
           "how the inputs relate to the targets.")
    fix = ("check that each input is paired with its own target (no shifted or shuffled rows, "
           "same order in inputs and targets), and that the inputs can predict the target.")
    return [Finding("misaligned", "error", msg, ev, fix)]
