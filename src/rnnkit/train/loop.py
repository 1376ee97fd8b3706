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
from rnnkit.train.distributed import World, autocast, peer_lost
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
def evaluate_loss(model: nn.Module, pairs: Pairs, objective: Objective, batch: int = 4096,
                  world: World | None = None) -> float:
    """Mean objective over ``pairs`` in eval mode (batched so large sets fit in memory); with
    several processes each scores every size-th batch and the sums are added up."""
    if len(pairs) == 0:
        return float("nan")
    world = world or World()
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=world.device)
    for start in range(world.rank * batch, len(pairs), world.size * batch):
        idx = torch.arange(start, min(start + batch, len(pairs)))
        total += objective(model, pairs.take(idx)).double() * len(idx)
    return float(world.all_sum(total)) / len(pairs)


def _progress(cfg: TrainConfig):
    if cfg.quiet or not sys.stderr.isatty():
        return None
    from tqdm.auto import tqdm

    return tqdm(total=cfg.epochs, desc="training", unit="epoch", leave=False)


def train(model: nn.Module, train_pairs: Pairs, val_pairs: Pairs | None, cfg: TrainConfig,
          objective: Objective, callbacks: list[Callback] | None = None,
          param_groups: list[dict] | None = None, checkpoints: Checkpointer | None = None,
          resume: Snapshot | None = None, world: World | None = None) -> History:
    """Fit ``model`` in place with Adam; returns the History. Best weights are restored.

    param_groups: optional Adam parameter groups (e.g. a slower learning rate for a linear
    path that starts at its least-squares optimum); default all parameters at ``cfg.lr``.
    checkpoints: saves the loop's state when due and reports signals; after a signal the loop
    saves at the next step boundary and raises ``Interrupted``. Default: no checkpoints.
    resume: a checkpoint's state to continue from, exactly where it was taken.
    world: the device and, under torchrun, the processes (model and pairs are already on the
    device). Each process trains on its share of every global batch through DDP; all of them
    take the same decisions (stopping, signals) from values summed over the processes.
    """
    world = world or World()
    try:
        return _train(model, train_pairs, val_pairs, cfg, objective, callbacks, param_groups,
                      checkpoints, resume, world)
    except RuntimeError as exc:
        if world.distributed and peer_lost(exc):
            # a collective failed because another process died: one clear line, not gloo's
            raise TrainingError(
                f"process {world.rank} of {world.size} lost its peers (another worker died: "
                f"{' '.join(str(exc).split())[:120]}); the newest checkpoint is intact: rerun "
                "with --max-restarts 1 to resume from it, or rnnkit fit --resume RUN.") from None
        raise


def _train(model: nn.Module, train_pairs: Pairs, val_pairs: Pairs | None, cfg: TrainConfig,
           objective: Objective, callbacks: list[Callback] | None,
           param_groups: list[dict] | None, checkpoints: Checkpointer | None,
           resume: Snapshot | None, world: World) -> History:
    if len(train_pairs) == 0:
        raise TrainingError("no training pairs: the training split is empty.")
    net = model
    if world.distributed:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=None if world.device.type == "cpu"
                                      else [world.device])
    scaler = torch.amp.GradScaler("cuda") if cfg.precision == "fp16" else None
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
        val = evaluate_loss(model, val_pairs, objective, world=world) if has_val else float("nan")
        state.records.append({
            "epoch": epoch, "train_loss": train_loss, "val_loss": val,
            "lr": opt.param_groups[0]["lr"], "grad_norm": grad_norm,
            "seconds": round(time.perf_counter() - started, 4),
        })

    n = len(train_pairs)
    # an epoch is every window, or a fresh draw of windows_per_epoch of them
    per_epoch = min(n, cfg.windows_per_epoch or n)

    def stop_if_signalled(agreed: bool | None = None) -> None:
        """Save and stop if a signal came. Under DDP every process stops at the same step or
        none does: ``agreed`` is what the processes already agreed this step, else they ask."""
        signum = checkpoints.signal(pos) if checkpoints is not None else None
        if world.distributed:
            if not (agreed if agreed is not None else world.any(signum is not None)[0]):
                return
            signum = signum or 15
        if signum is not None:
            snap = capture(model, opt, sched, stopper, state, gen, global_sums(pos),
                           time.perf_counter() - started)
            raise checkpoints.interrupted(snap, signum)  # type: ignore[union-attr]

    def global_sums(p: Position) -> Position:
        """``p`` with the loss sum of every process (what a checkpoint stores)."""
        if not world.distributed:
            return p
        return Position(p.epoch, p.step, p.done, p.last_finite, p.perm,
                        world.all_sum(p.total), p.norms)

    for h in hooks:
        h.on_train_begin(state)
    if resume is None:
        # with windows_per_epoch, the untrained model is scored on a fixed draw of as many
        # windows: a huge panel is never swept whole, not even once
        start = train_pairs if per_epoch == n else train_pairs.sample(per_epoch, cfg.seed)
        record(0, evaluate_loss(model, start, objective, world=world), float("nan"))
        for h in hooks:
            h.on_epoch_end(state)
        # the latest finite batch loss, kept as a tensor so that no step waits to make a float
        pos = Position(0, 0, True, torch.tensor(state.records[0]["train_loss"]))
        stop_if_signalled()
    else:
        pos, seconds = restore(resume, model, opt, sched, stopper, state, gen, n, per_epoch)
        started -= seconds
        if not world.main:  # the stored loss sum counts once, in the main process
            pos.total = torch.zeros_like(pos.total)
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
            if per_epoch < n:
                order = order[:per_epoch].clone()  # a draw without replacement
            pos = Position(epoch, 0, False, pos.last_finite, order)
        first = pos.step  # > 0 only when resuming mid-epoch
        for state.step, start in enumerate(range(first * cfg.batch_size, per_epoch,
                                                 cfg.batch_size), first):
            mine, weight = world.shard(pos.perm[start : start + cfg.batch_size])
            batch = train_pairs.take(mine)
            with autocast(world, cfg.precision):
                loss = objective(net, batch)
            opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss * weight).backward()
                scaler.unscale_(opt)
            else:
                (loss * weight if weight != 1.0 else loss).backward()
            loss = loss.float()
            norm = torch.nn.utils.clip_grad_norm_(
                model.parameters(), cfg.clip if cfg.clip else math.inf)
            bad_loss, signalled = bool(not torch.isfinite(loss)), None
            if world.distributed:  # one collective a step for both questions
                local = checkpoints is not None and checkpoints.guard.signum is not None
                bad_loss, signalled = world.any(bad_loss, local)
            finite_norm = bool(torch.isfinite(norm))
            # fp16 (a GradScaler): an overflowing gradient only skips the step, lowers the scale
            if bad_loss or (not finite_norm and scaler is None):
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
            if scaler is None:
                opt.step()
            else:
                scaler.step(opt)
                scaler.update()
            pos.advance(loss.detach(), norm.detach() if finite_norm else torch.zeros_like(norm),
                        len(mine) if weight else 0)
            stop_if_signalled(signalled)
        pos.done = True
        record(epoch, float(world.all_sum(pos.total)) / per_epoch,
               float(pos.norms) / max(pos.step, 1))
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
            checkpoints.save(capture(model, opt, sched, stopper, state, gen, global_sums(pos),
                                     time.perf_counter() - started))
    if bar is not None:
        bar.close()
    for h in hooks:
        h.on_train_end(state)
    return History(state.records, stopper.best_epoch, state.stop_reason,
                   time.perf_counter() - started)
