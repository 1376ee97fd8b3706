"""The shuffled-target control, trained in a forked child process while the real model trains.

The control does not need the trained model (``control.py``), and a small model trains on one
thread (``train/threads.py``), so on a machine with a second core the control's few seconds
can overlap the fit instead of following it. Only where it is safe and useful: a fit that
writes a run folder (the doctor will ask for the control), one process (no DDP), training on
one CPU thread, at least two cores, and a platform that forks (Linux). A child that fails or
is too slow is simply not used: the doctor then trains the control itself, as before. The
child writes nothing; it is stopped when the fit ends, whatever way it ends.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
from typing import Any

import torch

from rnnkit.evaluate.findings.control import ControlTask, run_task
from rnnkit.train.threads import cores

PR_SET_PDEATHSIG = 1  # linux/prctl.h
WAIT = 600.0  # seconds the fit waits for a child still training once its own training is done


def _close_inherited(keep: int) -> None:
    """Close the file descriptors the fork copied, but the standard streams and ``keep``: the
    run folder's lock is an ``flock``, held while any process has its file open, and the child
    must not keep it held (nor any file of the run open) if the fit dies before it."""
    for name in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else []:
        fd = int(name)
        if fd > 2 and fd != keep:
            with contextlib.suppress(OSError):
                os.close(fd)


def die_with_parent(parent: int) -> None:
    """Linux: have the kernel kill this child when the fit's process dies, however it dies
    (kill -9 included), so that an orphaned control does not train on for nothing."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the fit died before the request took effect
        os._exit(0)


def _child(task: ControlTask, conn: Any, parent: int) -> None:
    die_with_parent(parent)
    _close_inherited(conn.fileno())
    try:
        conn.send(run_task(task))
    except BaseException:  # the parent falls back to training the control itself
        conn.send(None)
    finally:
        conn.close()


class Beside:
    """A control training in a child process; ``result()`` waits for it and stops it."""

    def __init__(self, task: ControlTask) -> None:
        ctx = multiprocessing.get_context("fork")
        self._recv, send = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_child, args=(task, send, os.getpid()), daemon=True)
        self._proc.start()
        send.close()

    @staticmethod
    def wanted(device: Any, distributed: bool) -> bool:
        """Whether a control beside this fit would run on a core that is otherwise idle."""
        return (not distributed and getattr(device, "type", str(device)) == "cpu"
                and torch.get_num_threads() == 1 and cores() >= 2
                and "fork" in multiprocessing.get_all_start_methods())

    def result(self) -> tuple[float, int] | None:
        """(control's validation loss, its epochs), or None if the child failed."""
        try:
            if self._recv.poll(WAIT):
                got = self._recv.recv()
                return None if got is None else (float(got[0]), int(got[1]))
            return None
        except (EOFError, OSError):
            return None
        finally:
            self.stop()

    def stop(self) -> None:
        if self._proc.is_alive():
            self._proc.terminate()
        self._proc.join()
        self._recv.close()
