"""Fault injection for the reliability tests, inert unless its environment variables are set.

RNNKIT_TEST_CRASH_AT kills the process at a stage of a checkpoint save, RNNKIT_TEST_PAUSE_AT
holds a save until the test releases it, RNNKIT_TEST_INTERRUPT_AT acts as if Ctrl-C arrived at
a given step. They live apart from ``checkpoint.py`` so that the save path reads as what it does.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from rnnkit.train.signals import SIGNALS

PAUSE_LIMIT = 60.0  # seconds a paused save waits for its release: bounds a test that died only


def save_stage(stage: str, count: int, interrupt: bool) -> None:
    """RNNKIT_TEST_CRASH_AT=stage[:n]: SIGKILL this process at ``stage`` of its n-th save
    (default the first), to prove a kill there leaves a complete checkpoint.
    RNNKIT_TEST_PAUSE_AT=stage:FILE: at ``stage`` of the save after a signal, create FILE and
    wait for ``FILE.release`` (see ``_pause``), so a test can send a second signal while that
    save is under way, and know it arrived there."""
    crash = os.environ.get("RNNKIT_TEST_CRASH_AT")
    if crash:
        name, _, nth = crash.partition(":")
        if name == stage and count == int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)
    pause = os.environ.get("RNNKIT_TEST_PAUSE_AT")
    if interrupt and pause and pause.partition(":")[0] == stage:
        _pause(Path(pause.partition(":")[2]))


def _pause(marker: Path) -> None:
    """Create ``marker``, then wait until ``<marker>.release`` exists (PAUSE_LIMIT at most).

    A SIGINT or SIGTERM arriving meanwhile goes to the handler in place (the training guard's)
    first; then ``<marker>.signalled`` is written with its number. The test waits on that file
    rather than on a guessed delay: once it exists, the guard has seen the signal while this
    save was held, so the test may look at the save's files and release it."""
    seen = marker.with_name(marker.name + ".signalled")
    release = marker.with_name(marker.name + ".release")
    chained: dict[int, Callable] = {}
    if threading.current_thread() is threading.main_thread():  # only it may set handlers
        for sig in SIGNALS:
            handler = signal.getsignal(sig)
            if callable(handler):  # an ignored or default signal keeps its meaning
                chained[sig] = handler

        def note(signum: int, frame: object) -> None:
            chained[signum](signum, frame)
            part = seen.with_name(seen.name + ".part")  # renamed: never seen half-written
            part.write_text(f"{signum}\n")
            part.replace(seen)

        for sig in chained:
            signal.signal(sig, note)
    marker.touch()
    deadline = time.monotonic() + PAUSE_LIMIT
    try:
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        for sig, handler in chained.items():
            signal.signal(sig, handler)


def interrupt_at() -> tuple[int, int | None] | None:
    """RNNKIT_TEST_INTERRUPT_AT=E:S (after S steps of epoch E) or E:end: act as if SIGINT
    arrived there, for exact in-process tests of every resume position."""
    text = os.environ.get("RNNKIT_TEST_INTERRUPT_AT")
    if not text:
        return None
    epoch, _, step = text.partition(":")
    return int(epoch), None if step == "end" else int(step)
