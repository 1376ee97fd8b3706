"""Shared pieces of the reliability tests, and a fork server that runs faulty CLI processes.

As a script, ``python tests/helpers_faults.py JOBS.json RESULTS.json`` imports rnnkit once, then
runs each job of JOBS.json in order. A ``cli`` job forks a child that applies its fault (an
environment hook such as RNNKIT_TEST_CRASH_AT, a file size limit like ``ulimit -f``, another
user id), runs ``rnnkit.cli.main.main(argv)`` and exits with its status; the parent may SIGKILL
it on an event it sees from outside: after the run's LATEST pointer has moved ``after`` times,
at the first change to the checkpoints folder that follows (a save's temporary folder, a
rename, a pruned checkpoint set aside; at the latest the next checkpoint's name), never after a
guessed delay. A ``copy`` job snapshots a folder between jobs. These are CLI runs in a forked
interpreter, not ``python -m rnnkit`` processes: their claim is what a kill leaves on disk.
Forking a warm interpreter starts each child in milliseconds instead of the seconds a fresh
``python -m rnnkit`` takes, which keeps a test of every stage of a save fast.
The parent never runs torch computations before forking (OpenMP's thread pool does not survive
fork), so each child starts from the same state as a fresh process.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

HERE = Path(__file__).resolve()

# The tiny run every reliability test trains: a GRU of 4 units on a 300-point sine, no linear
# path (so the recurrent weights are what improves, up to the last epoch), a plateau scheduler
# and early stopping that both act, so their state is part of what resume must restore.
TINY: dict[str, Any] = {
    "cell": "gru", "hidden_size": 4, "window": 8, "batch_size": 16, "seed": 3, "lr": 0.01,
    "linear_path": False, "early_stopping": 6, "lr_patience": 2, "quiet": True,
}


@contextlib.contextmanager
def scratch(prefix: str = "rnnkit-") -> Iterator[Path]:
    """A fresh folder, removed afterwards; on tmpfs when the machine has one. Each checkpoint
    fsyncs six times, tens of milliseconds on a disk and nothing on tmpfs, and these tests save
    hundreds of checkpoints; kill -9, rename and permissions behave the same on both."""
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    try:
        yield folder
    finally:
        for path in folder.rglob("*"):  # undo read-only test folders so rmtree can delete
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)
        shutil.rmtree(folder)


def write_sine(path: Path, rows: int = 300) -> Path:
    """A deterministic two-tone sine as CSV with a header ``y``."""
    t = np.arange(rows)
    y = np.sin(2 * np.pi * t / 25) + 0.3 * np.sin(2 * np.pi * t / 7)
    path.write_text("y\n" + "".join(f"{v:.6f}\n" for v in y))
    return path


def cli_args(**overrides: Any) -> list[str]:
    """TINY (plus overrides) as command-line options."""
    out: list[str] = []
    for name, value in {**TINY, **overrides}.items():
        if name == "quiet":
            out += ["--quiet"] if value else []
        elif name == "linear_path":
            out += [] if value else ["--no-linear-path"]
        else:
            out += ["--" + name.replace("_", "-"), str(value)]
    return out


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(Path(folder) / "model.safetensors"))


def assert_same_weights(a: Path, b: Path) -> None:
    """Bit-identical final weights of two run folders."""
    wa, wb = weights(a), weights(b)
    assert sorted(wa) == sorted(wb)
    for name in wa:
        assert torch.equal(wa[name], wb[name]), f"{name} differs between {a} and {b}"


def history(folder: Path) -> list[str]:
    """history.csv without the wall-clock column, one string per line."""
    lines = (Path(folder) / "history.csv").read_text().splitlines()
    keep = [i for i, h in enumerate(lines[0].split(",")) if h != "seconds"]
    return [",".join(line.split(",")[i] for i in keep) for line in lines]


def interrupted_run(data: Path, out: Path, where: str, **options: Any) -> Any:
    """Fit until the test hook interrupts it ``where`` ("E:S" = after S steps of epoch E, or
    "E:end"), exactly as a SIGINT arriving there would; returns the Interrupted error."""
    import pytest

    from rnnkit.api import fit
    from rnnkit.train.signals import Interrupted

    os.environ["RNNKIT_TEST_INTERRUPT_AT"] = where
    try:
        with pytest.raises(Interrupted) as info:
            fit(data, out=out, **options)
    finally:
        del os.environ["RNNKIT_TEST_INTERRUPT_AT"]
    return info.value


@contextlib.contextmanager
def one_thread_no_plots() -> Iterator[None]:
    """For a test module: one torch thread, as in the CLI processes the tests start
    (conftest.cli_env), so in-process and subprocess runs compute the very same sums; and no
    PNG plots (two thirds of a tiny fit's time; they never touch the weights)."""
    import pytest

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("rnnkit.run_plots.save_run_plots", lambda run, folder: [])
        yield
    torch.set_num_threads(before)


class Bomb:
    """Unpickling this calls ``open(marker, "w")``: a side effect a test can see."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple:
        return (open, (self.marker, "w"))


def run_jobs(jobs: list[dict[str, Any]], workdir: Path, timeout: float = 300) -> list[dict]:
    """Run ``jobs`` in the fork server; returns one result per job (``status`` of cli jobs:
    the exit code, or minus the signal that ended the child)."""
    spec, results = workdir / "jobs.json", workdir / "results.json"
    spec.write_text(json.dumps(jobs))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    env.pop("RNNKIT_DEBUG", None)
    proc = subprocess.run([sys.executable, str(HERE), str(spec), str(results)], env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(results.read_text())


# --- the fork server -----------------------------------------------------------------------
def _child(job: dict[str, Any]) -> None:
    """In the forked child: apply the fault, run the CLI, exit with its status (never return)."""
    status = 99
    try:
        log = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.environ.update(job.get("env", {}))
        if job.get("fsize"):
            import resource

            resource.setrlimit(resource.RLIMIT_FSIZE, (job["fsize"], job["fsize"]))
        if job.get("user") is not None:
            os.setgroups([])
            os.setgid(job["user"])
            os.setuid(job["user"])
        from rnnkit.cli.main import main

        status = main(job["argv"])
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def _latest(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _listing(folder: Path) -> list[str]:
    try:
        return sorted(os.listdir(folder))
    except OSError:
        return []


def _run_cli(job: dict[str, Any]) -> dict[str, Any]:
    import signal
    import time

    kill = job.get("kill")
    folder = Path(kill["folder"]) if kill else Path()
    seen = _latest(str(folder / "LATEST")) if kill else ""
    pid = os.fork()
    if pid == 0:
        _child(job)
    started = time.monotonic()
    deadline = started + job.get("timeout", 120)  # bounds a hung child; no timing assumption
    result: dict[str, Any] = {}
    done, status = 0, 0
    if kill:
        # Wait for LATEST to move ``after`` times, then kill at the first change of the folder
        # seen after that: wherever the child then is (inside a save, pruning, or training
        # the next epoch) is where it dies. The next save changes the folder for sure, so the
        # wait ends without ever guessing how long an epoch takes.
        moves, before = 0, None
        while not done and time.monotonic() < deadline:
            now = _latest(str(folder / "LATEST"))
            if now not in (seen, ""):
                seen, moves = now, moves + 1
                before = _listing(folder) if moves == kill["after"] else before
            if before is not None and (listing := _listing(folder)) != before:
                os.kill(pid, signal.SIGKILL)
                result.update(seen=seen.strip(), changed=sorted(set(listing) ^ set(before)))
                break
            done, status = os.waitpid(pid, os.WNOHANG)
            time.sleep(0.0005)
    while not done:
        done, status = os.waitpid(pid, os.WNOHANG)
        if not done and time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            result["timed_out"] = True
        time.sleep(0.002)
    result["status"] = os.waitstatus_to_exitcode(status)
    return result


def _serve(spec: Path, results: Path) -> None:
    # warm every import a child needs, so children start at once; no torch maths before fork
    import matplotlib.pyplot  # noqa: F401
    import torch._dynamo  # noqa: F401  (Adam's first use imports it: 2 s per fresh process)

    import rnnkit.api
    import rnnkit.cli.main
    import rnnkit.run_plots

    # PNG plots are most of a tiny run's time and never touch the weights these tests compare
    rnnkit.run_plots.save_run_plots = lambda run, folder: []
    import time

    out = []
    for job in json.loads(spec.read_text()):
        started = time.perf_counter()
        if job["kind"] == "copy":
            shutil.copytree(job["src"], job["dst"], symlinks=True)
            out.append({})
        else:
            out.append(_run_cli(job))
        out[-1]["seconds"] = round(time.perf_counter() - started, 3)
    results.write_text(json.dumps(out))


if __name__ == "__main__":
    _serve(Path(sys.argv[1]), Path(sys.argv[2]))


# Fixtures shared by the fault-injection modules (test_hostile_files, test_reliability,
# test_resume), which import them by name.
@pytest.fixture(scope="module", autouse=True)
def quiet_module() -> Iterator[None]:
    """One torch thread and no PNG plots for the whole module (see one_thread_no_plots)."""
    with one_thread_no_plots():
        yield


@pytest.fixture()
def tmp_path() -> Iterator[Path]:
    """pytest's tmp_path, but on tmpfs where there is one (see scratch)."""
    with scratch() as folder:
        yield folder
