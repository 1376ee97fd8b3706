"""Devices and processes: where training runs, and how several processes train as one.

One process: the model and the whole data buffer move to one device once (``--device``).
Several: PyTorch's DistributedDataParallel, launched by ``torchrun`` (which sets RANK,
WORLD_SIZE, LOCAL_RANK and the rendezvous); gloo on CPU, NCCL on CUDA. rnnkit does not launch
or connect processes itself: ``rnnkit fit --nproc N`` only runs torchrun.

The global batch (``batch_size``) is split over the processes, and every process draws the same
epoch order from the seed, so a run takes the same steps at any process count: that is what
lets a checkpoint written by 4 processes resume on 1 (or 3).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from datetime import timedelta

import torch
import torch.distributed as dist

from rnnkit.errors import ConfigError

RESTART_ENV = "TORCHELASTIC_RESTART_COUNT"


@dataclass
class World:
    """This process's place among the training processes (rank 0 of 1 without torchrun)."""

    rank: int = 0
    size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        """Only the main process writes: checkpoints, the run folder, printed results."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def all_sum(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` summed over the processes (itself with one process)."""
        if self.distributed:
            t = t.clone()
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def any(self, *flags: bool) -> list[bool]:
        """Each flag, true when it is true in any process (one small collective)."""
        if not self.distributed:
            return list(flags)
        t = torch.tensor([float(f) for f in flags], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return [bool(v) for v in t.tolist()]

    def shard(self, batch: torch.Tensor) -> tuple[torch.Tensor, float]:
        """This process's part of a global batch of pair numbers, and the weight that makes
        the mean of the processes' (weighted) losses the loss of the whole batch. A process
        with no part takes one pair at weight 0 so that it still joins the gradient sum."""
        if not self.distributed:
            return batch, 1.0
        part = torch.tensor_split(batch, self.size)[self.rank]
        if len(part) == 0:
            return batch[:1], 0.0
        return part, len(part) * self.size / len(batch)


def main_process() -> bool:
    """Rank 0 (or the only process): the one that locks and writes the run folder."""
    return int(os.environ.get("RANK", "0") or 0) == 0


def launched() -> bool:
    """Whether this process was started by torchrun as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def restarted() -> bool:
    """Whether torchrun restarted the workers after a failure (``--max-restarts``)."""
    return int(os.environ.get(RESTART_ENV, "0") or 0) > 0


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """The device named by ``--device``; ``auto`` is CUDA (this process's GPU) when present."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: no CUDA GPU is visible to PyTorch "
                          f"(torch {torch.__version__}, cuda available: False); use --device "
                          "cpu or auto.")
    index = int(name[5:]) if name.startswith("cuda:") else local_rank
    if index >= torch.cuda.device_count():
        raise ConfigError(f"--device {name}: this machine has {torch.cuda.device_count()} "
                          f"GPU(s), numbered 0..{torch.cuda.device_count() - 1}.")
    return torch.device("cuda", index)


def join(device: str) -> World:
    """The World of this process: joins torchrun's process group when launched by it."""
    if not launched():
        return World(0, 1, pick_device(device))
    rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local)
    if not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        # torchrun's store outlives a restart (--max-restarts) and still holds the first
        # attempt's connection keys, which the new processes would wait on for ever; each
        # attempt gets keys of its own.
        agent = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
        store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]),
                              size, is_master=rank == 0 and not agent,
                              timeout=timedelta(minutes=5))
        attempt = os.environ.get(RESTART_ENV, "0") or "0"
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", rank=rank,
                                world_size=size,
                                store=dist.PrefixStore(f"rnnkit/attempt{attempt}", store))
    return World(rank, size, dev)


def leave(together: bool = False) -> None:
    """Leave the process group (at the end of a distributed fit).

    together: every rank ended well, so wait for all of them first. Rank 0 evaluates and saves
    while the others are done; a rank that tore gloo down while a peer still held its
    connection sometimes aborted in gloo's threads ("terminate called without an active
    exception", about 1 run in 8 before). After an error no rank waits: a peer may never come.
    """
    if dist.is_initialized():
        if together:
            dist.barrier()
        dist.destroy_process_group()


def autocast(world: World, precision: str) -> contextlib.AbstractContextManager:
    """Mixed precision for the forward pass: bf16/fp16 autocast on CUDA, nothing on CPU."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if world.device.type != "cuda":
        raise ConfigError(f"--precision {precision} is autocast on CUDA; this run trains on "
                          f"{world.device}. Use --precision fp32 (the default) on CPU.")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def peer_lost(exc: BaseException) -> bool:
    """Whether ``exc`` is a collective failing because another process died."""
    text = str(exc).lower()
    return isinstance(exc, RuntimeError | dist.DistBackendError) and any(
        w in text for w in ("connection", "gloo", "nccl", "peer", "closed", "timed out",
                            "broken pipe"))
