"""Real ``python -m rnnkit`` processes for the tests that claim the command line.

Each call is a fresh interpreter running ``sys.executable -m rnnkit ARGS`` with the environment
of ``conftest.cli_env`` (no RNNKIT_DEBUG, one thread, a headless plot backend), so what a test
sees is what a user's shell sees: the exit status, the bytes on stdout and stderr, the files
left on disk, and the process's own peak memory. A fresh process spends ~1.6 s importing torch
on this 2-core machine, so a table of cases is started as one batch, ``os.cpu_count()`` processes
at a time, and each case is then checked on its own.

Output goes to files, not pipes, so concurrent processes never block on a full pipe, and each
is reaped with ``os.wait4``, which returns its resource use (``ru_maxrss``) along with its status.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from conftest import CLI_TIMEOUT, cli_env


@dataclass(frozen=True)
class Call:
    """One ``rnnkit ARGS`` command line, run in ``cwd`` with ``env`` added to cli_env()."""

    args: tuple[str, ...]
    cwd: Path | None = None
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, *args: str | os.PathLike[str], cwd: Path | None = None,
           env: dict[str, str] | None = None) -> Call:
        return cls(tuple(map(str, args)), cwd, dict(env or {}))


@dataclass(frozen=True)
class Result:
    """What the process did: exit status (minus the signal that ended it), its output and its
    peak resident memory in KiB."""

    call: Call
    code: int
    out: str
    err: str
    maxrss_kib: int

    def __str__(self) -> str:  # what an assertion shows
        return (f"rnnkit {' '.join(self.call.args)}\n  exit {self.code}\n  stdout: {self.out!r}"
                f"\n  stderr: {self.err!r}")


def run(call: Call, timeout: float = CLI_TIMEOUT) -> Result:
    """Run one command to its end (killed, and the test failed, after ``timeout`` seconds)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-m", "rnnkit", *call.args], stdout=out,
                                stderr=err, stdin=subprocess.DEVNULL, cwd=call.cwd,
                                env=cli_env(call.env))
        deadline = time.monotonic() + timeout
        while True:  # wait for the process to end; the deadline only bounds a hung one
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                _, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = os.waitstatus_to_exitcode(status)
                raise AssertionError(f"rnnkit {' '.join(call.args)} still ran after {timeout} s")
            time.sleep(0.005)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait
        out.seek(0)
        err.seek(0)
        return Result(call, proc.returncode, out.read().decode("utf-8"),
                      err.read().decode("utf-8"), usage.ru_maxrss)


def run_all(calls: Sequence[Call], timeout: float = CLI_TIMEOUT) -> list[Result]:
    """Run independent commands, as many at once as the machine has cores; results in order."""
    workers = max(2, os.cpu_count() or 2)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda call: run(call, timeout), calls))


def files(folder: Path) -> dict[str, str]:
    """Every path under ``folder`` with the sha256 of its bytes ('dir' for folders): compare two
    to show that a command wrote nothing and changed or removed nothing."""
    out = {}
    for path in sorted(Path(folder).rglob("*")):
        key = str(path.relative_to(folder))
        out[key] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def one_line_error(result: Result, code: int = 2) -> str:
    """The process exited ``code`` with nothing on stdout and exactly one line on stderr, our
    ``rnnkit: error:`` line (no traceback); returns that line without its newline."""
    assert result.code == code, result
    assert result.out == "", result
    assert "Traceback" not in result.err, result
    assert result.err.startswith("rnnkit: error: ") and result.err.count("\n") == 1, result
    assert result.err.endswith("\n"), result
    return result.err[:-1]


def succeeded(result: Result) -> str:
    """The process exited 0 without a traceback or an error line; returns its stdout."""
    assert result.code == 0, result
    assert "Traceback" not in result.err and "rnnkit: error" not in result.err, result
    return result.out
