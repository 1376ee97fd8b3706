"""The training loop's whole state as tensors + JSON: what makes a resume exact.

Tensors (saved in one safetensors file):

    model.<name>                      the weights
    optim.<i>.<key>                   Adam's state of parameter i (step, exp_avg, exp_avg_sq)
    best.<name>                       early stopping's best weights so far
    rng.torch, rng.order              torch's global generator; the data-order generator
    loop.perm                         this epoch's data order (mid-epoch only)
    loop.total, loop.norms, loop.last_finite    this epoch's running sums; last finite loss

Everything else is JSON: the position (epoch, steps done in it, whether it is complete), Adam's
parameter groups (learning rates), the plateau scheduler, early stopping's counters, the history
records, numpy's and Python's random states and the seconds trained so far. ``restore`` checks
all of it against the live model and optimizer before it changes anything.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rnnkit.errors import CheckpointError
from rnnkit.persist import check_tensors
from rnnkit.train.callbacks import EarlyStopping, LoopState

Scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau


def _zero() -> torch.Tensor:
    return torch.zeros(())


@dataclass
class Position:
    """Where the loop is: ``epoch`` in progress (finished when ``done``), ``step`` optimizer
    steps taken in it, its data order and running sums, and the last finite batch loss."""

    epoch: int
    step: int
    done: bool
    last_finite: torch.Tensor
    perm: torch.Tensor | None = None
    total: torch.Tensor = field(default_factory=_zero)
    norms: torch.Tensor = field(default_factory=_zero)

    def advance(self, loss: torch.Tensor, norm: torch.Tensor, size: int) -> None:
        """Account for one optimizer step on ``size`` pairs (tensors: no host sync)."""
        if self.total.device != loss.device:  # sums live where the loss is (a GPU)
            self.total, self.norms = self.total.to(loss.device), self.norms.to(loss.device)
        self.last_finite = loss
        self.total += loss * size
        self.norms += norm
        self.step += 1

    @property
    def key(self) -> tuple[int, int, bool]:
        return self.epoch, self.step, self.done


@dataclass
class Snapshot:
    """A checkpoint's content in memory; ``source`` names its folder in messages."""

    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]
    source: Path | None = None

    @property
    def key(self) -> tuple[int, int, bool]:
        p = self.meta["position"]
        return int(p["epoch"]), int(p["step"]), bool(p["done"])


def capture(model: nn.Module, opt: torch.optim.Optimizer, sched: Scheduler | None,
            stopper: EarlyStopping, state: LoopState, gen: torch.Generator, pos: Position,
            seconds: float) -> Snapshot:
    """Everything the loop needs to continue exactly from ``pos``."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    opt_sd = opt.state_dict()
    opt_extra: dict[str, dict[str, Any]] = {}
    for i, st in opt_sd["state"].items():
        opt_extra[str(i)] = {}
        for key, value in st.items():
            if torch.is_tensor(value):
                tensors[f"optim.{i}.{key}"] = value
            else:
                opt_extra[str(i)][key] = value
    if stopper.best_weights is not None:
        tensors.update({f"best.{k}": v for k, v in stopper.best_weights.items()})
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.order"] = gen.get_state()
    tensors["loop.total"], tensors["loop.norms"] = pos.total, pos.norms
    tensors["loop.last_finite"] = pos.last_finite
    if not pos.done and pos.perm is not None:
        tensors["loop.perm"] = pos.perm
    np_state = np.random.get_state()
    py_state = random.getstate()
    meta = {
        "position": {"epoch": pos.epoch, "step": pos.step, "done": pos.done},
        "seconds": seconds,
        "optimizer": {"param_groups": opt_sd["param_groups"], "state": opt_extra},
        "scheduler": None if sched is None else sched.state_dict(),
        "stopper": {"best": stopper.best, "best_epoch": stopper.best_epoch,
                    "wait": stopper.wait, "has_best_weights": stopper.best_weights is not None},
        "loop": {"stop": state.stop, "stop_reason": state.stop_reason,
                 "records": state.records},
        "rng": {"numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],  # type: ignore[misc]
                "python": [py_state[0], list(py_state[1]), py_state[2]]},
    }
    return Snapshot(tensors, meta)


def restore(snap: Snapshot, model: nn.Module, opt: torch.optim.Optimizer,
            sched: Scheduler | None, stopper: EarlyStopping, state: LoopState,
            gen: torch.Generator, n_pairs: int, per_epoch: int | None = None
            ) -> tuple[Position, float]:
    """Put the loop back where ``snap`` was taken; returns (position, seconds trained).

    Every part is checked first (names, shapes, dtypes, finiteness, types); a checkpoint that
    does not fit raises CheckpointError naming it and leaves model and optimizer untouched.
    """
    where = f"{snap.source or 'checkpoint'}"
    try:
        parts = _check(snap, model, opt, sched, n_pairs, per_epoch or n_pairs)
    except CheckpointError as exc:
        raise CheckpointError(f"{where}: {exc}") from None
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise CheckpointError(f"{where}: state.json is invalid ({type(exc).__name__}: {exc})."
                              ) from None
    weights, best, opt_sd, pos, meta = parts
    model.load_state_dict(weights)
    opt.load_state_dict(opt_sd)
    if sched is not None:
        sched.load_state_dict(meta["scheduler"])
    s = meta["stopper"]
    stopper.best, stopper.best_epoch, stopper.wait = float(s["best"]), int(s["best_epoch"]), int(
        s["wait"])
    stopper.best_weights = best
    loop = meta["loop"]
    state.stop, state.stop_reason = bool(loop["stop"]), str(loop["stop_reason"])
    state.records = [dict(r) for r in loop["records"]]
    state.epoch, state.step = pos.epoch, pos.step
    torch.set_rng_state(snap.tensors["rng.torch"])
    gen.set_state(snap.tensors["rng.order"])
    name, keys, *rest = meta["rng"]["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))
    version, internal, gauss = meta["rng"]["python"]
    random.setstate((version, tuple(internal), gauss))
    return pos, float(meta["seconds"])


def _check(snap: Snapshot, model: nn.Module, opt: torch.optim.Optimizer,
           sched: Scheduler | None, n_pairs: int, per_epoch: int) -> tuple:
    t, meta = snap.tensors, snap.meta
    expected = model.state_dict()
    weights = _group(t, "model.", expected)
    best = _group(t, "best.", expected) if meta["stopper"]["has_best_weights"] else None
    params = [p for g in opt.param_groups for p in g["params"]]
    groups = meta["optimizer"]["param_groups"]
    if len(groups) != len(opt.param_groups) or any(
            len(g["params"]) != len(live["params"]) for g, live in zip(groups, opt.param_groups,
                                                                      strict=True)):
        raise CheckpointError("optimizer parameter groups do not match the model.")
    opt_state: dict[int, dict[str, Any]] = {}
    for name, tensor in t.items():
        if not name.startswith("optim."):
            continue
        _, index, key = name.split(".", 2)
        i = int(index)
        if not 0 <= i < len(params):
            raise CheckpointError(f"tensor {name!r} names parameter {i}; the model has "
                                  f"{len(params)}.")
        want = () if key == "step" else tuple(params[i].shape)
        if tuple(tensor.shape) != want or not torch.isfinite(tensor).all():
            raise CheckpointError(f"tensor {name!r} has shape {tuple(tensor.shape)} or "
                                  f"non-finite values; parameter {i} needs {want}.")
        opt_state.setdefault(i, {})[key] = tensor
    for index, extra in meta["optimizer"]["state"].items():
        opt_state.setdefault(int(index), {}).update(extra)
    for group in groups:
        group["betas"] = tuple(group["betas"])
        if not all(isinstance(group[k], int | float) and group[k] >= 0
                   for k in ("lr", "eps", "weight_decay")):
            raise CheckpointError("an optimizer group has a negative or non-numeric setting.")
    if sched is not None and not isinstance(meta["scheduler"], dict):
        raise CheckpointError("the learning-rate scheduler state is missing.")
    pos_meta = meta["position"]
    epoch, step, done = pos_meta["epoch"], pos_meta["step"], pos_meta["done"]
    if not (isinstance(epoch, int) and isinstance(step, int) and isinstance(done, bool)
            and epoch >= 0 and 0 <= step <= n_pairs):
        raise CheckpointError(f"position epoch={epoch!r} step={step!r} is not valid.")
    for name in ("rng.torch", "rng.order", "loop.total", "loop.norms", "loop.last_finite"):
        if name not in t:
            raise CheckpointError(f"tensor {name!r} is missing.")
    if t["rng.torch"].dtype != torch.uint8 or t["rng.order"].dtype != torch.uint8:
        raise CheckpointError("the random generator states are not uint8 tensors.")
    perm = t.get("loop.perm")
    if not done and (perm is None or perm.dtype not in (torch.int32, torch.int64)
                     or tuple(perm.shape) != (per_epoch,) or not _draw_of(perm, n_pairs)):
        what = (f"a permutation of the {n_pairs} training pairs" if per_epoch == n_pairs
                else f"a draw of {per_epoch} distinct pairs of the {n_pairs} training pairs")
        raise CheckpointError(f"the data order (loop.perm) is not {what}.")
    records = meta["loop"]["records"]
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise CheckpointError("the history records are not a list of objects.")
    pos = Position(epoch, step, done, t["loop.last_finite"].clone(),
                   None if done else perm, t["loop.total"].clone(), t["loop.norms"].clone())
    return weights, best, {"state": opt_state, "param_groups": groups}, pos, meta


def _draw_of(perm: torch.Tensor, n: int) -> bool:
    """Whether ``perm`` holds distinct pair numbers in 0..n-1 (all of them: a permutation)."""
    if len(perm) == 0:
        return True
    values = torch.sort(perm).values.long()
    if len(perm) == n:
        return torch.equal(values, torch.arange(n))
    return bool(values[0] >= 0 and values[-1] < n and (values[1:] > values[:-1]).all())


def _group(tensors: dict[str, torch.Tensor], prefix: str, expected: dict[str, torch.Tensor]
           ) -> dict[str, torch.Tensor]:
    """The tensors under ``prefix``, checked name by name against ``expected``."""
    found = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    check_tensors(found, expected, prefix=prefix, noun="values")
    return found
