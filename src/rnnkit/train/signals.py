"""SIGINT and SIGTERM during training: set a flag, never stop mid-step.

While a :class:`SignalGuard` is active, Ctrl-C or ``kill`` only records the signal; the loop
looks at it after each optimizer step, saves a checkpoint and raises :class:`Interrupted`,
which the CLI turns into one line and exit status 128 + signal (130 for SIGINT, 143 for
SIGTERM). Further signals while that checkpoint is written are ignored, so a second Ctrl-C
cannot tear it. Outside training the previous handlers are back in place.
"""

from __future__ import annotations

import shlex
import signal
import threading
from pathlib import Path
from types import FrameType, TracebackType

from rnnkit.errors import RnnkitError

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(RnnkitError):
    """Training stopped on a signal after saving a checkpoint; resume continues it exactly."""

    def __init__(self, signum: int, epoch: int, step: int, checkpoint: Path, run: Path) -> None:
        self.signum, self.epoch, self.step = signum, epoch, step
        self.checkpoint, self.run = checkpoint, run
        self.exit_code = 128 + int(signum)
        super().__init__(
            f"interrupted at epoch {epoch} step {step}; checkpoint saved to {checkpoint}; "
            f"resume with: rnnkit fit --resume {shlex.quote(str(run))}"
        )


class SignalGuard:
    """Context manager: SIGINT/SIGTERM set ``signum`` instead of stopping the process.

    Only the main thread can install handlers; elsewhere the guard does nothing. A signal
    whose handler was SIG_IGN (e.g. SIGINT of a background job) stays ignored.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:  # the first signal decides the exit status
            self.signum = signum

    def __enter__(self) -> SignalGuard:
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                old = signal.getsignal(sig)
                if old is signal.SIG_IGN:
                    continue
                self._previous[sig] = signal.SIG_DFL if old is None else old
                signal.signal(sig, self._handle)
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        for sig, old in self._previous.items():
            signal.signal(sig, old)  # type: ignore[arg-type]
        self._previous.clear()
