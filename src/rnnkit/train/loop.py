"""The training loop: reads top to bottom, one epoch at a time.

Whole datasets stay as tensors; batches are slices by a permutation drawn from a generator
seeded from ``TrainConfig.seed`` (reshuffled each epoch), so the same seed gives bit-identical
weights on CPU. Loss values are only turned into Python floats once per epoch, except for the
finiteness check that stops a diverging run within one step.

With a Checkpointer the loop saves its whole state (train/snapshot.py) every N epochs, and at
the first step boundary after SIGINT/SIGTERM, then raises Interrupted; given a checkpoint it
continues exactly where that was taken, mid-epoch included, to bit-identical weights on CPU.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from rnnkit.config import TrainConfig
from rnnkit.data.pairs import Pairs
from rnnkit.errors import TrainingError
from rnnkit.train.callbacks import Callback, EarlyStopping, LoopState
from rnnkit.train.checkpoint import Checkpointer
from rnnkit.train.objectives import Objective
from rnnkit.train.snapshot import Position, Snapshot, capture, restore


@dataclass
class History:
    """Per-epoch records (epoch 0 is the untrained model) and how training ended."""

    records: list[dict[str, Any]]
    best_epoch: int
    stop_reason: str
    seconds: float

    @property
    def still_improving(self) -> bool:
        """True when training hit its epoch limit while the best epoch was among the last few."""
        last = self.records[-1]["epoch"] if self.records else 0
        return self.stop_reason == "max epochs" and last - self.best_epoch < 5


@torch.no_grad()
def evaluate_loss(model: nn.Module, pairs: Pairs, objective: Objective, batch: int = 4096) -> float:
    """Mean objective over ``pairs`` in eval mode (batched so large sets fit in memory)."""
    if len(pairs) == 0:
        return float("nan")
    model.eval()
    total = torch.zeros(())
    for start in range(0, len(pairs), batch):
        idx = torch.arange(start, min(start + batch, len(pairs)))
        total += objective(model, pairs.take(idx)) * len(idx)
    return float(total) / len(pairs)


def _progress(cfg: TrainConfig):
    if cfg.quiet or not sys.stderr.isatty():
        return None
    from tqdm.auto import tqdm

    return tqdm(total=cfg.epochs, desc="training", unit="epoch", leave=False)


def train(model: nn.Module, train_pairs: Pairs, val_pairs: Pairs | None, cfg: TrainConfig,
          objective: Objective, callbacks: list[Callback] | None = None,
          param_groups: list[dict] | None = None, checkpoints: Checkpointer | None = None,
          resume: Snapshot | None = None) -> History:
    """Fit ``model`` in place with Adam; returns the History. Best weights are restored.

    param_groups: optional Adam parameter groups (e.g. a slower learning rate for a linear
    path that starts at its least-squares optimum); default all parameters at ``cfg.lr``.
    checkpoints: saves the loop's state when due and reports signals; after a signal the loop
    saves at the next step boundary and raises ``Interrupted``. Default: no checkpoints.
    resume: a checkpoint's state to continue from, exactly where it was taken.
    """
    if len(train_pairs) == 0:
        raise TrainingError("no training pairs: the training split is empty.")
    has_val = val_pairs is not None and len(val_pairs) > 0
    monitor = "val_loss" if has_val else "train_loss"
    opt = torch.optim.Adam(param_groups or model.parameters(), lr=cfg.lr,
                           weight_decay=cfg.weight_decay)
    # the clock starts once the optimizer exists: its first construction imports torch's
    # compiler stack (about 2 s, once per process), which is not training time
    started = time.perf_counter()
    sched = (torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=cfg.lr_patience)
             if cfg.lr_patience else None)
    stopper = EarlyStopping(cfg.early_stopping, monitor)
    hooks: list[Callback] = [stopper, *(callbacks or [])]
    state = LoopState(model, opt)
    gen = torch.Generator().manual_seed(cfg.seed)
    bar = _progress(cfg)

    def record(epoch: int, train_loss: float, grad_norm: float) -> None:
        val = evaluate_loss(model, val_pairs, objective) if has_val else float("nan")
        state.records.append({
            "epoch": epoch, "train_loss": train_loss, "val_loss": val,
            "lr": opt.param_groups[0]["lr"], "grad_norm": grad_norm,
            "seconds": round(time.perf_counter() - started, 4),
        })

    n = len(train_pairs)

    def stop_if_signalled() -> None:
        signum = checkpoints.signal(pos) if checkpoints is not None else None
        if signum is not None:
            snap = capture(model, opt, sched, stopper, state, gen, pos,
                           time.perf_counter() - started)
            raise checkpoints.interrupted(snap, signum)  # type: ignore[union-attr]

    for h in hooks:
        h.on_train_begin(state)
    if resume is None:
        record(0, evaluate_loss(model, train_pairs, objective), float("nan"))
        for h in hooks:
            h.on_epoch_end(state)
        # the latest finite batch loss, kept as a tensor so that no step waits to make a float
        pos = Position(0, 0, True, torch.tensor(state.records[0]["train_loss"]))
        stop_if_signalled()
    else:
        pos, seconds = restore(resume, model, opt, sched, stopper, state, gen, n)
        started -= seconds
    for epoch in range(pos.epoch + 1 if pos.done else pos.epoch, cfg.epochs + 1):
        if state.stop:  # (a run resumed from the checkpoint taken as it stopped)
            break
        state.epoch = epoch
        model.train()
        if pos.done:  # a new epoch: new data order, zeroed sums
            # int32 halves the order's memory (8M windows: 32 MB, not 64) and draws the very
            # same permutation as int64 from the same generator
            order = torch.randperm(n, generator=gen,
                                   dtype=torch.int32 if n < 2**31 else torch.int64)
            pos = Position(epoch, 0, False, pos.last_finite, order)
        first = pos.step  # > 0 only when resuming mid-epoch
        for state.step, start in enumerate(range(first * cfg.batch_size, n, cfg.batch_size),
                                           first):
            batch = train_pairs.take(pos.perm[start : start + cfg.batch_size])
            loss = objective(model, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(
                model.parameters(), cfg.clip if cfg.clip else math.inf)
            if not (torch.isfinite(loss) and torch.isfinite(norm)):
                # detach: float() of a tensor that requires grad warns (an error in tests)
                bad = loss.detach() if not torch.isfinite(loss) else norm.detach()
                seen = float(pos.last_finite)
                before = (f"last finite loss {seen:.6g}" if math.isfinite(seen) else
                          f"no finite loss before it (the untrained model gives {seen}; "
                          "check the scale of the data)")
                raise TrainingError(
                    f"training diverged at epoch {epoch}, step {state.step + 1}: the "
                    f"{'loss' if not torch.isfinite(loss) else 'gradient norm'} became "
                    f"{float(bad)}; {before}. Try a lower learning rate "
                    f"(--lr {cfg.lr / 10:g}) or gradient clipping (--clip 1)."
                )
            opt.step()
            pos.advance(loss.detach(), norm.detach(), len(batch))
            stop_if_signalled()
        pos.done = True
        record(epoch, float(pos.total) / n, float(pos.norms) / pos.step)
        if sched is not None:
            sched.step(state.records[-1][monitor])
        for h in hooks:
            h.on_epoch_end(state)
        if bar is not None:
            r = state.records[-1]
            bar.update(1)
            bar.set_postfix(train=f"{r['train_loss']:.3g}", val=f"{r['val_loss']:.3g}")
        if cfg.max_seconds is not None and time.perf_counter() - started > cfg.max_seconds:
            state.stop, state.stop_reason = True, f"time budget of {cfg.max_seconds:g} s"
        stop_if_signalled()  # before the periodic save: a signal always gets its own save
        if checkpoints is not None and checkpoints.due(epoch, time.perf_counter() - started):
            checkpoints.save(capture(model, opt, sched, stopper, state, gen, pos,
                                     time.perf_counter() - started))
    if bar is not None:
        bar.close()
    for h in hooks:
        h.on_train_end(state)
    return History(state.records, stopper.best_epoch, state.stop_reason,
                   time.perf_counter() - started)
