"""Shared fixtures: the shipped data folder and a runner for the real ``rnnkit`` command."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

DATA_DIR = Path(__file__).parent / "data"

# In-process fits too: `make test` runs two pytest workers on two cores, and a large model's fit
# would otherwise take every core (train/threads.py) and spin-wait on the other worker.
os.environ["OMP_NUM_THREADS"] = "1"

# A CLI call that takes longer than this is hung, not slow: fail instead of blocking the suite.
CLI_TIMEOUT = 180

CliResult = tuple[int, str, str]
Cli = Callable[..., CliResult]


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a CLI subprocess: no debug tracebacks, a headless plot backend,
    UTF-8 output whatever the host locale, one intra-op thread, plus ``extra``.

    One thread: the tests train models of a few units, where a second thread gains nothing, and
    on a busy 2-core box OpenMP threads spin-waiting for each other made a fit 2-3x slower.
    """
    env = {k: v for k, v in os.environ.items() if k != "RNNKIT_DEBUG"}
    env.update({"MPLBACKEND": "Agg", "PYTHONIOENCODING": "utf-8", "OMP_NUM_THREADS": "1"})
    env.update(extra or {})
    return env


def run_cli(*args: str | os.PathLike[str], cwd: str | os.PathLike[str] | None = None,
            env: dict[str, str] | None = None, timeout: float = CLI_TIMEOUT) -> CliResult:
    """Run ``python -m rnnkit *args`` as a real subprocess; return (returncode, stdout, stderr).

    ``env`` entries are added to (not substituted for) the inherited environment.
    """
    proc = subprocess.run(
        [sys.executable, "-m", "rnnkit", *map(str, args)],
        capture_output=True, text=True, encoding="utf-8", timeout=timeout, cwd=cwd,
        env=cli_env(env), check=False,
    )
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> Iterator[None]:
    """One intra-op thread for the in-process tests, as ``cli_env`` gives the subprocesses:
    the models here have a few units, and on a busy 2-core box a second OpenMP thread only
    spin-waits (a tiny RNN step measured ~100x slower). Results do not depend on it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """tests/data: the shipped public-domain series."""
    return DATA_DIR


@pytest.fixture(scope="session")
def cli() -> Cli:
    """``cli("fit", path, "--target", "y")`` -> (returncode, stdout, stderr) of a subprocess."""
    return run_cli

