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
from dataclasses import dataclass

import numpy as np
import torch

from rnnkit.config import ModelConfig, TrainConfig
from rnnkit.data.pairs import Pairs
from rnnkit.evaluate.findings.base import Finding, Subject
from rnnkit.models.least_squares import least_squares_start, param_groups
from rnnkit.models.network import RecurrentNet
from rnnkit.train import objectives
from rnnkit.train.loop import evaluate_loss, train

CLEARLY_BETTER = 0.8  # the real model's loss must be below 80% of the control's
CONTROL_EPOCHS = 30
# The control's cost is capped by work (sample x time steps), not by seconds, so it trains the
# same on a busy machine as on an idle one and its verdict is reproducible: about 3 s here.
CONTROL_WORK = 2_000_000
MIN_EPOCHS = 3
TRAIN_PAIRS = 4096
VAL_PAIRS = 2048


def _subset(pairs: Pairs, n: int, rng: np.random.Generator) -> Pairs:
    if len(pairs) <= n and pairs.index is None and pairs.join is None:
        return pairs
    # indexed pairs (a panel's) are views over the whole buffer: gather them, as training does
    idx = torch.from_numpy(np.sort(rng.choice(len(pairs), min(n, len(pairs)), replace=False)))
    return pairs.take(idx)


def shuffle_targets(pairs: Pairs, rng: np.random.Generator) -> Pairs:
    """The same inputs with the targets of other samples (a permutation across samples).
    A step is scored only where both its own and the borrowed sample have a real target."""
    perm = torch.from_numpy(rng.permutation(len(pairs)))
    mask = None if pairs.mask is None else pairs.mask & pairs.mask[perm]
    return Pairs(pairs.inputs, pairs.targets[perm], mask, pairs.lengths)


@dataclass
class ControlTask:
    """Everything the control trains on, without the run: small contiguous tensors and
    configs, so that it can train in another process while the real model trains."""

    model: ModelConfig
    train: TrainConfig
    objective: str
    prompt: int
    shuffled: Pairs
    val: Pairs


def control_task(model: ModelConfig, train_options: dict, objective: str, prompt: int,
                 train_pairs: Pairs, val_pairs: Pairs) -> ControlTask | None:
    """The control of a run with these configs and pairs (None: too few training pairs).
    Subsets are drawn, targets shuffled and the epochs set here, from the run's seed."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in train_options.items() if k in names})
    rng = np.random.default_rng(cfg.seed)
    train_pairs = _subset(train_pairs, TRAIN_PAIRS, rng)
    if len(train_pairs) < 4:
        return None
    val_pairs = _subset(val_pairs if len(val_pairs) else train_pairs, VAL_PAIRS, rng)
    per_epoch = len(train_pairs) * int(train_pairs.inputs.shape[1])  # sample x time steps
    epochs = max(MIN_EPOCHS, min(CONTROL_EPOCHS, CONTROL_WORK // max(per_epoch, 1)))
    cfg = dataclasses.replace(cfg, epochs=min(cfg.epochs, epochs), quiet=True,
                              max_seconds=None, threads=1)
    return ControlTask(model, cfg, objective, prompt,
                       _compact(shuffle_targets(train_pairs, rng)), _compact(val_pairs))


def _compact(pairs: Pairs) -> Pairs:
    """Own contiguous copies: a view would carry (and pickle) the whole series buffer."""
    def own(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t.contiguous().clone()

    return Pairs(own(pairs.inputs), own(pairs.targets), own(pairs.mask), own(pairs.lengths))


def run_task(task: ControlTask) -> tuple[float, int]:
    """Train the control: (its validation loss, its epochs). One thread: a small control
    model is bound by per-operation overhead, where more threads only add waiting."""
    objective = objectives.pick(task.objective, task.prompt)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(task.train.seed)
            model = RecurrentNet(task.model)
            started = least_squares_start(model, task.shuffled)  # as the real fit started
            groups = param_groups(model, task.train.lr) if started else None
            history = train(model, task.shuffled, task.val, task.train, objective, None, groups)
        model.eval()
        return evaluate_loss(model, task.val, objective), len(history.records) - 1
    finally:
        torch.set_num_threads(threads)


def subject_task(s: Subject) -> ControlTask | None:
    """The control task of the run under examination, or None without data."""
    if not s.has_data:
        return None
    prompt = int(getattr(s.pipeline, "prompt_length", 0) or 0)
    # one network of the members' size: an ensemble's control is one member
    return control_task(dataclasses.replace(s.run.model.cfg, ensemble=1), s.config.get("train", {}),
                        str(s.config.get("objective", "teacher")), prompt, s.pairs("train"),
                        s.pairs("val"))


def control_loss(s: Subject) -> tuple[float, float, int] | None:
    """(real model's loss, control's loss, control epochs) on the validation pairs (training
    pairs when there is no validation split), or None without data. A control trained beside
    the fit (``Run.control``) is used as it is."""
    task = subject_task(s)
    if task is None:
        return None
    found = s.run.control if s.run.control is not None else run_task(task)
    real = evaluate_loss(s.run.model, task.val, objectives.pick(task.objective, task.prompt))
    return real, found[0], found[1]


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
