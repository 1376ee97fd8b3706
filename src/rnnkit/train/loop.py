"""The training loop: reads top to bottom, one epoch at a time.

Whole datasets stay as tensors; batches are slices by a permutation drawn from a generator
seeded from ``TrainConfig.seed`` (reshuffled each epoch), so the same seed gives bit-identical
weights on CPU. Loss values are only turned into Python floats once per epoch, except for the
finiteness check that stops a diverging run within one step.

With a Checkpointer the loop saves its whole state (train/snapshot.py) every N epochs, and at
the first step boundary after SIGINT/SIGTERM, then raises Interrupted; given a checkpoint it
continues exactly where that was taken, mid-epoch included, to bit-identical weights on CPU.

The loop is split as skorch and minGPT split theirs: ``train`` runs epochs; an epoch is
``begin_epoch``, ``train_step`` per batch and ``end_epoch`` (which calls ``validate``). Everything
they share lives in one ``Loop``. Its GradScaler is always there and disabled unless fp16, so no
step branches on it: a disabled scaler hands the loss and ``optimizer.step`` through untouched,
the very same arithmetic as training without one.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from rnnkit.config import TrainConfig
from rnnkit.data.pairs import Pairs
from rnnkit.errors import TrainingError
from rnnkit.train import budget
from rnnkit.train.callbacks import Callback, EarlyStopping, LoopState
from rnnkit.train.checkpoint import Checkpointer
from rnnkit.train.distributed import World, autocast, peer_lost
from rnnkit.train.objectives import Objective
from rnnkit.train.snapshot import Position, Scheduler, Snapshot, capture, restore


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


@dataclass
class Loop:
    """One training session: what it trains with, and where it stands.

    ``net`` is what the steps call: the model itself, or its DDP wrapper. ``state`` is what the
    callbacks see; ``pos`` is the position a checkpoint records (set by ``begin``).
    """

    model: nn.Module
    net: nn.Module
    cfg: TrainConfig
    objective: Objective
    world: World
    train_pairs: Pairs
    val_pairs: Pairs | None  # None when there is no validation split (or it is empty)
    checkpoints: Checkpointer | None
    opt: torch.optim.Optimizer
    sched: Scheduler | None
    scaler: torch.amp.GradScaler
    stopper: EarlyStopping
    hooks: list[Callback]
    state: LoopState
    gen: torch.Generator  # the data order's own generator, seeded from cfg.seed
    started: float
    bar: Any = None
    pos: Position = field(init=False)

    @property
    def per_epoch(self) -> int:
        """Windows an epoch trains on: every one, or a fresh draw of windows_per_epoch."""
        n = len(self.train_pairs)
        return min(n, self.cfg.windows_per_epoch or n)

    @property
    def monitor(self) -> str:
        return "val_loss" if self.val_pairs is not None else "train_loss"

    def seconds(self) -> float:
        return time.perf_counter() - self.started


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
    cfg = budget.resolve(cfg, len(train_pairs))
    try:
        if len(train_pairs) == 0:
            raise TrainingError("no training pairs: the training split is empty.")
        loop = setup(model, train_pairs, val_pairs, cfg, objective, callbacks, param_groups,
                     checkpoints, world)
        begin(loop, resume)
        for epoch in range(loop.pos.epoch + int(loop.pos.done), cfg.epochs + 1):
            if loop.state.stop:  # (a run resumed from the checkpoint taken as it stopped)
                break
            begin_epoch(loop, epoch)
            for step in range(loop.pos.step, _steps(loop)):  # from > 0 only on a resume
                train_step(loop, epoch, step)
            end_epoch(loop, epoch)
        return end_training(loop)
    except RuntimeError as exc:
        if world.distributed and peer_lost(exc):
            # a collective failed because another process died: one clear line, not gloo's
            raise TrainingError(
                f"process {world.rank} of {world.size} lost its peers (another worker died: "
                f"{' '.join(str(exc).split())[:120]}); the newest checkpoint is intact: rerun "
                "with --max-restarts 1 to resume from it, or rnnkit fit --resume RUN.") from None
        raise


def setup(model: nn.Module, train_pairs: Pairs, val_pairs: Pairs | None, cfg: TrainConfig,
          objective: Objective, callbacks: list[Callback] | None,
          param_groups: list[dict] | None, checkpoints: Checkpointer | None,
          world: World) -> Loop:
    """The optimizer, scheduler, scaler, early stopping and data-order generator of a run."""
    net = model
    if world.distributed:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=None if world.device.type == "cpu"
                                      else [world.device])
    scaler = torch.amp.GradScaler("cuda", enabled=cfg.precision == "fp16")
    has_val = val_pairs is not None and len(val_pairs) > 0
    opt = torch.optim.Adam(param_groups or model.parameters(), lr=cfg.lr,
                           weight_decay=cfg.weight_decay)
    # the clock starts once the optimizer exists: its first construction imports torch's
    # compiler stack (about 2 s, once per process), which is not training time
    started = time.perf_counter()
    sched = (torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=cfg.lr_patience)
             if cfg.lr_patience else None)
    stopper = EarlyStopping(cfg.early_stopping, "val_loss" if has_val else "train_loss")
    return Loop(model, net, cfg, objective, world, train_pairs, val_pairs if has_val else None,
                checkpoints, opt, sched, scaler, stopper, [stopper, *(callbacks or [])],
                LoopState(model, opt), torch.Generator().manual_seed(cfg.seed), started,
                _progress(cfg))


def _progress(cfg: TrainConfig):
    if cfg.quiet or not sys.stderr.isatty():
        return None
    from tqdm.auto import tqdm

    return tqdm(total=cfg.epochs, desc="training", unit="epoch", leave=False)


def begin(loop: Loop, resume: Snapshot | None) -> None:
    """Score the untrained model as epoch 0, or put the loop back where ``resume`` was taken."""
    for h in loop.hooks:
        h.on_train_begin(loop.state)
    if resume is not None:
        loop.pos, seconds = restore(resume, loop.model, loop.opt, loop.sched, loop.stopper,
                                    loop.state, loop.gen, len(loop.train_pairs), loop.per_epoch)
        loop.started -= seconds
        if not loop.world.main:  # the stored loss sum counts once, in the main process
            loop.pos.total = torch.zeros_like(loop.pos.total)
        return
    # with windows_per_epoch, the untrained model is scored on a fixed draw of as many
    # windows: a huge panel is never swept whole, not even once
    pairs, cfg = loop.train_pairs, loop.cfg
    start = pairs if loop.per_epoch == len(pairs) else pairs.sample(loop.per_epoch, cfg.seed)
    record(loop, 0, evaluate_loss(loop.model, start, loop.objective, world=loop.world),
           float("nan"))
    for h in loop.hooks:
        h.on_epoch_end(loop.state)
    # the latest finite batch loss, kept as a tensor so that no step waits to make a float
    loop.pos = Position(0, 0, True, torch.tensor(loop.state.records[0]["train_loss"]))
    stop_if_signalled(loop)


def begin_epoch(loop: Loop, epoch: int) -> None:
    """Train mode; a new epoch (not one resumed mid-way) draws its data order."""
    loop.state.epoch = epoch
    loop.model.train()
    if not loop.pos.done:
        return
    n = len(loop.train_pairs)
    # int32 halves the order's memory (8M windows: 32 MB, not 64) and draws the very
    # same permutation as int64 from the same generator
    order = torch.randperm(n, generator=loop.gen, dtype=torch.int32 if n < 2**31 else torch.int64)
    if loop.per_epoch < n:
        order = order[:loop.per_epoch].clone()  # a draw without replacement
    loop.pos = Position(epoch, 0, False, loop.pos.last_finite, order)


def _steps(loop: Loop) -> int:
    """Optimizer steps in an epoch (the last batch may be short)."""
    return -(-loop.per_epoch // loop.cfg.batch_size)


def train_step(loop: Loop, epoch: int, step: int) -> None:
    """One optimizer step on batch ``step`` of this epoch's order, then a look for signals."""
    cfg, world, pos, scaler = loop.cfg, loop.world, loop.pos, loop.scaler
    loop.state.step = step
    start = step * cfg.batch_size
    mine, weight = world.shard(pos.perm[start : start + cfg.batch_size])
    batch = loop.train_pairs.take(mine)
    with autocast(world, cfg.precision):
        loss = loop.objective(loop.net, batch)
    loop.opt.zero_grad(set_to_none=True)
    scaler.scale(loss * weight if weight != 1.0 else loss).backward()
    scaler.unscale_(loop.opt)
    loss = loss.float()
    norm = torch.nn.utils.clip_grad_norm_(loop.model.parameters(),
                                          cfg.clip if cfg.clip else math.inf)
    bad_loss, signalled = bool(not torch.isfinite(loss)), None
    if world.distributed:  # one collective a step for both questions
        local = loop.checkpoints is not None and loop.checkpoints.guard.signum is not None
        bad_loss, signalled = world.any(bad_loss, local)
    finite_norm = bool(torch.isfinite(norm))
    # fp16 (an enabled GradScaler): an overflowing gradient only skips the step, lowers the scale
    if bad_loss or (not finite_norm and not scaler.is_enabled()):
        raise diverged(loop, epoch, step, loss, norm)
    scaler.step(loop.opt)
    scaler.update()
    pos.advance(loss.detach(), norm.detach() if finite_norm else torch.zeros_like(norm),
                len(mine) if weight else 0)
    stop_if_signalled(loop, signalled)


def diverged(loop: Loop, epoch: int, step: int, loss: torch.Tensor,
             norm: torch.Tensor) -> TrainingError:
    """The error that stops a run whose loss or gradient norm stopped being finite."""
    # detach: float() of a tensor that requires grad warns (an error in tests)
    bad = loss.detach() if not torch.isfinite(loss) else norm.detach()
    seen = float(loop.pos.last_finite)
    before = (f"last finite loss {seen:.6g}" if math.isfinite(seen) else
              f"no finite loss before it (the untrained model gives {seen}; "
              "check the scale of the data)")
    return TrainingError(
        f"training diverged at epoch {epoch}, step {step + 1}: the "
        f"{'loss' if not torch.isfinite(loss) else 'gradient norm'} became "
        f"{float(bad)}; {before}. Try a lower learning rate "
        f"(--lr {loop.cfg.lr / 10:g}) or gradient clipping (--clip 1)."
    )


def validate(loop: Loop) -> float:
    """The mean loss on the validation pairs (NaN without them)."""
    if loop.val_pairs is None:
        return float("nan")
    return evaluate_loss(loop.model, loop.val_pairs, loop.objective, world=loop.world)


def record(loop: Loop, epoch: int, train_loss: float, grad_norm: float) -> None:
    """Validate and append the epoch's record to the history."""
    val = validate(loop)
    loop.state.records.append({
        "epoch": epoch, "train_loss": train_loss, "val_loss": val,
        "lr": loop.opt.param_groups[0]["lr"], "grad_norm": grad_norm,
        "seconds": round(loop.seconds(), 4),
    })


def end_epoch(loop: Loop, epoch: int) -> None:
    """Record the epoch, then the scheduler, the callbacks, the time budget, signals, saves."""
    pos, cfg = loop.pos, loop.cfg
    pos.done = True
    record(loop, epoch, float(loop.world.all_sum(pos.total)) / loop.per_epoch,
           float(pos.norms) / max(pos.step, 1))
    if loop.sched is not None:
        loop.sched.step(loop.state.records[-1][loop.monitor])
    for h in loop.hooks:
        h.on_epoch_end(loop.state)
    if loop.bar is not None:
        r = loop.state.records[-1]
        loop.bar.update(1)
        loop.bar.set_postfix(train=f"{r['train_loss']:.3g}", val=f"{r['val_loss']:.3g}")
    if cfg.max_seconds is not None and loop.seconds() > cfg.max_seconds:
        loop.state.stop, loop.state.stop_reason = True, f"time budget of {cfg.max_seconds:g} s"
    stop_if_signalled(loop)  # before the periodic save: a signal always gets its own save
    if loop.checkpoints is not None and loop.checkpoints.due(epoch, loop.seconds()):
        loop.checkpoints.save(snapshot(loop))


def end_training(loop: Loop) -> History:
    """Close the progress bar, let the callbacks finish (best weights back), make the History."""
    if loop.bar is not None:
        loop.bar.close()
    for h in loop.hooks:
        h.on_train_end(loop.state)
    return History(loop.state.records, loop.stopper.best_epoch, loop.state.stop_reason,
                   loop.seconds())


def stop_if_signalled(loop: Loop, agreed: bool | None = None) -> None:
    """Save and stop if a signal came. Under DDP every process stops at the same step or
    none does: ``agreed`` is what the processes already agreed this step, else they ask."""
    checkpoints, world = loop.checkpoints, loop.world
    signum = checkpoints.signal(loop.pos) if checkpoints is not None else None
    if world.distributed:
        if not (agreed if agreed is not None else world.any(signum is not None)[0]):
            return
        signum = signum or 15
    if signum is not None:
        raise checkpoints.interrupted(snapshot(loop), signum)  # type: ignore[union-attr]


def snapshot(loop: Loop) -> Snapshot:
    """The loop's whole state, with the loss sum of every process (what a checkpoint stores)."""
    p, world = loop.pos, loop.world
    if world.distributed:
        p = Position(p.epoch, p.step, p.done, p.last_finite, p.perm, world.all_sum(p.total),
                     p.norms)
    return capture(loop.model, loop.opt, loop.sched, loop.stopper, loop.state, loop.gen, p,
                   loop.seconds())
