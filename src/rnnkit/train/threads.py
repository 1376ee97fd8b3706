"""How many CPU threads a fit uses: chosen from the model's size, never more than needed.

A small recurrent model is bound by per-step overhead, not arithmetic: a second intra-op
thread gains nothing, and when another process keeps a core busy the threads spin waiting for
it. Measured on this 2-core machine, 6 epochs of the default LSTM(32) over 256-step windows of
a 5,000-row daily series: 3.36 s on 1 thread, 3.40 s on 2; with one other busy process, 3.56 s
on 1 thread and 12.46 s on 2. Larger models do gain: LSTM(64) 0.80 -> 0.59 s, LSTM(128)
2.04 -> 1.13 s, LSTM(256) 7.2 -> 4.5 s from 1 to 2 threads (2 epochs, window 64).

So a fit runs on one thread while a time step of a batch costs fewer than ``SERIAL_WORK``
multiply-adds (about LSTM(48) at batch 64), and on every core the process may use above that.
``TrainConfig.threads`` (``--threads``) overrides the choice; ``OMP_NUM_THREADS`` caps
"every core". The thread count in force before
the fit is restored after it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from rnnkit.config import ModelConfig

SERIAL_WORK = 500_000
GATES = {"lstm": 4, "gru": 3, "rnn": 1}


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def most_threads() -> int:
    """Every core, capped by ``OMP_NUM_THREADS`` when it is set: the usual way to say that
    several jobs share the machine (a test runner's workers, a batch of fits), where a fit
    taking every core makes them spin-wait on each other."""
    cap = os.environ.get("OMP_NUM_THREADS", "").strip()
    return max(1, min(cores(), int(cap))) if cap.isdigit() and int(cap) > 0 else cores()


def step_work(cfg: ModelConfig, batch: int) -> int:
    """Multiply-adds of one time step of one batch: every layer's gates over its inputs."""
    units, gates = cfg.units, GATES[cfg.cell]
    first = gates * units * (units + cfg.input_size)
    rest = (cfg.num_layers - 1) * gates * units * 2 * units
    return batch * (first + rest)


def threads_for(cfg: ModelConfig, batch: int, asked: int | None = None) -> int:
    """The thread count for training ``cfg`` at ``batch``: ``asked`` if given, else one for
    small models and every core for large ones."""
    if asked is not None:
        return asked
    return 1 if step_work(cfg, batch) < SERIAL_WORK else most_threads()


@contextmanager
def thread_count(n: int) -> Iterator[int]:
    """Run the block with ``n`` intra-op threads, then restore the count in force before."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)
