"""Checkpoints, exact resume, signals and crashes (RELIABILITY.md rows 17-20, rules 2-4).

Every test trains the same tiny GRU (helpers_faults.TINY, 16 epochs, a checkpoint each epoch)
and compares its final weights with one uninterrupted run: bit-identical, on CPU.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import cli_env
from helpers_cli import Call, files, run
from helpers_faults import (
    TINY,
    assert_same_weights,
    cli_args,
    history,
    interrupted_run,
    quiet_module,  # noqa: F401 - fixture: one thread, no plots in this module
    run_jobs,
    scratch,
    tmp_path,  # noqa: F401 - a fixture: tmp_path on tmpfs
    write_sine,
)

from rnnkit.api import fit, resume
from rnnkit.cli.main import main
from rnnkit.errors import CheckpointError
from rnnkit.train.checkpoint import (
    STAGES,
    CheckpointWarning,
    latest_complete,
    publish,
    read_checkpoint,
)

EPOCHS = 16
OPTIONS = {**TINY, "epochs": EPOCHS, "checkpoint_every": 1}


@pytest.fixture(scope="module")
def work() -> Iterator[Path]:
    """A world-readable scratch folder: the read-only test runs a child as user 'nobody'."""
    with scratch("rnnkit-resume-") as folder:
        folder.chmod(0o755)
        yield folder


@pytest.fixture(scope="module")
def sine(work: Path) -> Path:
    return write_sine(work / "sine.csv")


@pytest.fixture(scope="module")
def reference(sine: Path, work: Path) -> Path:
    """The uninterrupted run every resumed run must equal."""
    fit(sine, out=work / "reference", **OPTIONS)
    return work / "reference"


@pytest.fixture(scope="module")
def template(sine: Path, work: Path) -> Path:
    """A run interrupted at the end of epoch 2: checkpoints ckpt-000001-end, ckpt-000002-end."""
    interrupted_run(sine, work / "template", "2:end", **OPTIONS)
    return work / "template"


def copy_of(template: Path, dest: Path) -> Path:
    shutil.copytree(template, dest)
    return dest


# --- rule 3: resume is exact, wherever the run stopped ----------------------------------------
# 13 optimizer steps per epoch: "3:13" is after the last step, before the epoch is recorded.
@pytest.mark.parametrize("where", ["0:end", "1:1", "2:7", "3:13", "5:end"])
def test_resume_is_bit_identical_at_every_position(sine: Path, reference: Path, tmp_path: Path,
                                                   where: str) -> None:
    out = tmp_path / "run"
    stop = interrupted_run(sine, out, where, **OPTIONS)
    epoch, _, step = where.partition(":")
    assert (stop.epoch, stop.signum, stop.exit_code) == (int(epoch), signal.SIGINT, 130)
    if step != "end":
        assert stop.step == int(step)
    assert stop.checkpoint == out / "checkpoints" / (
        f"ckpt-{int(epoch):06d}-" + ("end" if step == "end" else f"{int(step):06d}"))
    assert str(stop) == (f"interrupted at epoch {stop.epoch} step {stop.step}; checkpoint saved "
                         f"to {stop.checkpoint}; resume with: rnnkit fit --resume {out}")
    assert not (out / "model.safetensors").exists()
    resume(out)
    assert_same_weights(reference, out)
    assert history(out) == history(reference)
    assert not (out / "checkpoints").exists() and not (out / ".lock").exists()


def test_interrupt_via_cli_prints_one_line_and_exits_130(sine: Path, reference: Path,
                                                         tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    """A real `python -m rnnkit fit` process, interrupted by the test hook exactly where a
    SIGINT after step 4 of epoch 1 would stop it. What follows (the refused option change, the
    resume, the second resume) goes through the CLI's ``main`` in this process; a resume as a
    real process is in test_sigint_and_sigterm_save_exit_and_resume_exactly."""
    out = tmp_path / "run"
    result = run(Call.of("fit", sine, "--out", out, *cli_args(epochs=EPOCHS),
                         env={"RNNKIT_TEST_INTERRUPT_AT": "1:4"}))
    assert (result.code, result.out) == (130, ""), result
    assert result.err == (f"interrupted at epoch 1 step 4; checkpoint saved to {out}/checkpoints/"
                          f"ckpt-000001-000004; resume with: rnnkit fit --resume {out}\n")
    before = files(out)
    assert main(["fit", "--resume", str(out), "--lr", "1"]) == 2  # options are the run's own
    assert "['lr'] cannot change" in capsys.readouterr().err
    assert files(out) == before  # the refusal lost nothing
    assert main(["fit", "--resume", str(out), "--quiet"]) == 0
    assert f"run saved to {out}" in capsys.readouterr().out
    assert_same_weights(reference, out)
    assert main(["fit", "--resume", str(out)]) == 2
    assert "nothing to resume (the run finished: its model is saved)" in capsys.readouterr().err


def test_fresh_fit_refuses_to_wipe_an_unfinished_run(template: Path, sine: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    run = copy_of(template, tmp_path / "run")
    before = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert main(["fit", str(sine), "--out", str(run), *cli_args(epochs=EPOCHS)]) == 2
    err = capsys.readouterr().err
    assert "holds an unfinished run" in err and f"rnnkit fit --resume {run}" in err
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == before


def test_resume_refuses_changed_data(template: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture) -> None:
    run = copy_of(template, tmp_path / "run")
    changed = write_sine(tmp_path / "other.csv", rows=301)
    assert main(["fit", str(changed), "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert f"{changed} is not the file run {run} was trained on" in err
    assert latest_complete(run)[0].source.name == "ckpt-000002-end"  # untouched


def test_publish_keeps_the_newest_k_and_never_replaces_a_complete_one(template: Path,
                                                                     tmp_path: Path) -> None:
    folder = copy_of(template, tmp_path / "run") / "checkpoints"
    snap = read_checkpoint(folder / "ckpt-000002-end")
    for epoch in (3, 4, 5):
        snap.meta["position"]["epoch"] = epoch
        publish(folder, snap, keep=2)
    assert sorted(p.name for p in folder.iterdir()) == [
        "LATEST", "ckpt-000004-end", "ckpt-000005-end", "run.json"]
    assert (folder / "LATEST").read_text() == "ckpt-000005-end\n"
    before = (folder / "ckpt-000005-end" / "state.json").stat().st_mtime_ns
    assert publish(folder, snap, keep=2) == folder / "ckpt-000005-end"  # same position again
    assert (folder / "ckpt-000005-end" / "state.json").stat().st_mtime_ns == before
    (folder / "ckpt-000005-end" / "state.json").write_text("{")  # incomplete: replaced
    publish(folder, snap, keep=2)
    assert read_checkpoint(folder / "ckpt-000005-end").key == (5, 13, True)
    assert sorted(p.name for p in folder.iterdir()) == [
        "LATEST", "ckpt-000004-end", "ckpt-000005-end", "run.json"]


# --- row 17: a truncated or flipped checkpoint -----------------------------------------------
def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


CORRUPTIONS = {
    "truncated tensors": ("state.safetensors", _truncate, "truncated or was replaced"),
    "flipped byte": ("state.safetensors", _flip, "sha256 does not match"),
    "truncated json": ("state.json", _truncate, "not valid JSON"),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_corrupt_latest_checkpoint_falls_back_with_warning(template: Path, reference: Path,
                                                           tmp_path: Path, case: str) -> None:
    name, damage, reason = CORRUPTIONS[case]
    run = copy_of(template, tmp_path / "run")
    bad, good = run / "checkpoints" / "ckpt-000002-end", run / "checkpoints" / "ckpt-000001-end"
    damage(bad / name)
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(bad)
    assert str(bad / name) in str(info.value) and reason in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.warns(CheckpointWarning) as caught:
        resume(run)
    message = str(caught[0].message)
    assert f"checkpoint {bad} is not usable" in message and reason in message
    assert f"resuming from {good} instead" in message
    assert_same_weights(reference, run)


def test_corrupt_checkpoint_warning_via_cli(template: Path, reference: Path,
                                            tmp_path: Path) -> None:
    """`python -m rnnkit fit --resume` as a real process: one warning line names the skipped
    checkpoint and the one used, and the run ends equal to the uninterrupted one."""
    run_folder = copy_of(template, tmp_path / "run")
    _flip(run_folder / "checkpoints" / "ckpt-000002-end" / "state.safetensors")
    result = run(Call.of("fit", "--resume", run_folder))
    assert result.code == 0 and "Traceback" not in result.err, result
    assert result.err.startswith(f"rnnkit: warning: checkpoint {run_folder}/checkpoints/"
                                 "ckpt-000002-end is not usable"), result
    assert f"resuming from {run_folder}/checkpoints/ckpt-000001-end instead" in result.err
    assert "rnnkit: error" not in result.err and f"run saved to {run_folder}" in result.out
    assert_same_weights(reference, run_folder)


def test_no_complete_checkpoint_is_an_error_naming_the_file(template: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    run = copy_of(template, tmp_path / "run")
    for ckpt in (run / "checkpoints").glob("ckpt-*"):
        _flip(ckpt / "state.safetensors")
    assert main(["fit", "--resume", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"rnnkit: error: {run}: no complete checkpoint to resume from")
    assert "state.safetensors: its sha256 does not match" in err and "\n" not in err


# --- rows 18 and 19: kill -9 at every stage of a save and at random; read-only; disk full --------
@pytest.fixture(scope="module")
def faults(template: Path, work: Path) -> dict[str, list[dict]]:
    """One fork server runs every faulty process of rows 18 and 19 (see helpers_faults)."""
    base = work / "faults"
    base.mkdir()
    base.chmod(0o755)
    resume_argv = ["fit", "--resume"]
    jobs: list[dict] = []
    index: dict[str, list[int]] = {}

    def add(key: str, job: dict) -> None:
        index.setdefault(key, []).append(len(jobs))
        jobs.append({"kind": "cli", "log": str(base / f"{key}-{len(jobs)}.log"), **job})

    def copy(key: str, src: Path, dst: Path) -> None:
        index.setdefault(key, []).append(len(jobs))
        jobs.append({"kind": "copy", "src": str(src), "dst": str(dst)})

    # Resuming from epoch 2, save 1 is epoch 3 and save 2 epoch 4, the first that also prunes.
    for stage in STAGES:
        run = base / f"stage-{stage}"
        copy(stage, template, run)
        add(stage, {"argv": [*resume_argv, str(run)], "env": {
            "RNNKIT_TEST_CRASH_AT": f"{stage}:2"}})
        copy(stage, run, base / f"stage-{stage}-after-kill")
        add(stage, {"argv": [*resume_argv, str(run)]})
    run = base / "random"
    copy("random", template, run)
    for k in range(3):  # killed after 1, 2, then 3 more checkpoints (see helpers_faults)
        add("random", {"argv": [*resume_argv, str(run)], "kill": {
            "folder": str(run / "checkpoints"), "after": k + 1}})
        copy("random", run, base / f"random-after-kill-{k}")
    add("random", {"argv": [*resume_argv, str(run)]})
    readonly = base / "readonly"
    shutil.copytree(template, readonly)
    for path in [readonly, *readonly.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    # root ignores permission bits: run that child as 'nobody', for whom they hold
    add("readonly", {"argv": [*resume_argv, str(readonly)],
                     "user": 65534 if os.geteuid() == 0 else None})
    full = base / "full"
    copy("full", template, full)
    add("full", {"argv": [*resume_argv, str(full)], "fsize": 4096})  # as `ulimit -f 4`
    results = run_jobs(jobs, base)
    return {key: [{**jobs[i], **results[i]} for i in where] for key, where in index.items()}


def assert_all_complete(run: Path) -> tuple[int, int, bool]:
    """Every ckpt-* folder of ``run`` is complete (never a torn one); returns the newest key."""
    folders = sorted((run / "checkpoints").glob("ckpt-*"))
    assert folders, f"no checkpoint left in {run}"
    for folder in folders:
        read_checkpoint(folder)  # raises if truncated, flipped or half-written
    snap, skipped = latest_complete(run)
    assert snap is not None and skipped == []
    return snap.key


@pytest.mark.parametrize("stage", STAGES)
def test_kill_9_at_each_stage_of_a_save_leaves_a_complete_checkpoint(
        faults: dict, reference: Path, stage: str) -> None:
    _, crash, snapshot, final = faults[stage]
    assert crash["status"] == -signal.SIGKILL, Path(crash["log"]).read_text()
    after = Path(snapshot["dst"])
    published = STAGES.index(stage) >= STAGES.index("renamed")
    assert assert_all_complete(after) == (4 if published else 3, 13, True)
    latest = (after / "checkpoints" / "LATEST").read_text().strip()
    assert latest in {"ckpt-000003-end", "ckpt-000004-end"}
    assert (after / ".lock").exists()  # left by the dead process; the resume takes it over
    assert final["status"] == 0, Path(final["log"]).read_text()
    assert_same_weights(reference, Path(crash["argv"][-1]))


def test_kill_9_at_random_moments_then_resume(faults: dict, reference: Path) -> None:
    """Three kills that no hook places: each lands wherever the child is when the parent sees
    the checkpoints folder change after a publication (inside a save, pruning, or training)."""
    steps = faults["random"]
    kills = [s for s in steps if s["kind"] == "cli" and "kill" in s]
    assert len(kills) == 3
    for job in kills:
        assert job["status"] == -signal.SIGKILL and "seen" in job, job
    epochs = []
    snaps = [s for s in steps if s["kind"] == "copy" and "after-kill" in s["dst"]]
    for job, snap in zip(kills, snaps, strict=True):
        newest = assert_all_complete(Path(snap["dst"]))
        epochs.append(newest[0])
        # the kill came after the child published the checkpoint LATEST named: it is still there
        assert newest >= read_checkpoint(Path(snap["dst"]) / "checkpoints" / job["seen"]).key
    assert epochs == sorted(epochs) and epochs[0] > 2  # every kill came after progress
    assert steps[-1]["status"] == 0, Path(steps[-1]["log"]).read_text()
    assert_same_weights(reference, Path(steps[0]["dst"]))


def test_read_only_run_folder_is_a_clean_error(faults: dict, template: Path) -> None:
    (job,) = faults["readonly"]
    run = Path(job["argv"][-1])
    log = Path(job["log"]).read_text()
    assert job["status"] == 1, log
    assert log == (f"rnnkit: error: cannot lock the run folder with {run}/.lock: Permission "
                   "denied; check the folder's permissions or write to another folder (--out). "
                   "Files published before are intact.\n")
    assert assert_all_complete(run) == (2, 13, True)


def test_disk_full_is_a_clean_error_and_keeps_the_checkpoint(faults: dict, template: Path) -> None:
    copy, job = faults["full"]
    run = Path(copy["dst"])
    log = Path(job["log"]).read_text()
    assert job["status"] == 1, log
    assert re.fullmatch(r"rnnkit: error: cannot write .*/checkpoints/\.tmp-ckpt-000003-end-[^/]+"
                        r"/state\.safetensors: File too large; raise the file size limit "
                        r"\(ulimit -f\) or free space\. Files published before are intact\.\n",
                        log), log
    assert assert_all_complete(run) == (2, 13, True)
    assert (run / "checkpoints" / "LATEST").read_text() == "ckpt-000002-end\n"
    assert not list((run / "checkpoints").glob(".tmp-*"))  # the half-written save is removed
    for name in ("ckpt-000001-end", "ckpt-000002-end"):
        for file in ("state.safetensors", "state.json"):
            a, b = template / "checkpoints" / name / file, run / "checkpoints" / name / file
            assert a.read_bytes() == b.read_bytes()


# --- row 20: real SIGINT / SIGTERM to a real `rnnkit fit`, then `rnnkit fit --resume` ----------
def _start(sine: Path, out: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "rnnkit", "fit", str(sine), "--out", str(out),
         *cli_args(epochs=EPOCHS, checkpoint_every=1)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(env))


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    """Poll until ``path`` exists; the deadline only bounds a hung process."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.005)


def test_sigint_and_sigterm_save_exit_and_resume_exactly(sine: Path, reference: Path,
                                                         tmp_path: Path) -> None:
    """Each process gets its signal on an event, never after a guessed delay: the moment its
    first checkpoint is published (LATEST appears: training runs, inside the signal guard),
    and the second Ctrl-C the moment the interrupt's save says it is under way (the
    RNNKIT_TEST_PAUSE_AT marker file). That save stays held until the test, having seen the
    process note the second signal (``<marker>.signalled``) and the save's temporary folder,
    creates ``<marker>.release``."""
    marker = tmp_path / "saving"
    runs = {signal.SIGINT: tmp_path / "int", signal.SIGTERM: tmp_path / "term"}
    procs = {signal.SIGINT: _start(sine, runs[signal.SIGINT],
                                   {"RNNKIT_TEST_PAUSE_AT": f"tmp_written:{marker}"}),
             signal.SIGTERM: _start(sine, runs[signal.SIGTERM])}
    # both are watched at once: waiting on one while the other trained unwatched let it finish
    # first on a busy machine (then SIGTERM met no handler: exit -15)
    waiting = dict(procs)
    deadline = time.monotonic() + 120  # bounds a hung process only
    while waiting:
        for sig, proc in list(waiting.items()):
            assert proc.poll() is None, proc.communicate()
            if (runs[sig] / "checkpoints" / "LATEST").exists():
                proc.send_signal(sig)
                del waiting[sig]
        assert time.monotonic() < deadline, f"no checkpoint from {list(waiting)}"
        time.sleep(0.005)
    _wait_for(marker, procs[signal.SIGINT])  # the interrupt's save is under way: Ctrl-C again
    procs[signal.SIGINT].send_signal(signal.SIGINT)
    signalled = marker.with_name(marker.name + ".signalled")
    _wait_for(signalled, procs[signal.SIGINT])  # the guard has seen it, inside the held save
    assert signalled.read_text() == f"{int(signal.SIGINT)}\n"
    # the save is held until released, so its temporary folder (renamed into place after the
    # pause) is still there: the second Ctrl-C arrived during the save, as meant
    tmp = list((runs[signal.SIGINT] / "checkpoints").glob(".tmp-ckpt-*"))
    assert tmp, "the second SIGINT came after the save it was meant to hit"
    marker.with_name(marker.name + ".release").touch()
    for sig, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 128 + sig, err
        line = re.fullmatch(r"interrupted at epoch (\d+) step (\d+); checkpoint saved to (\S+); "
                            r"resume with: rnnkit fit --resume (\S+)\n", err)
        assert line, err
        assert Path(line[4]) == runs[sig] and out == ""
        ckpt = Path(line[3])
        assert ckpt.parent == runs[sig] / "checkpoints"
        snap = read_checkpoint(ckpt)  # complete, despite the second Ctrl-C during its save
        assert snap.key[:2] == (int(line[1]), int(line[2]))
        if sig == signal.SIGINT:  # the folder seen was this very save's
            assert [p.name[: len(ckpt.name) + 6] for p in tmp] == [f".tmp-{ckpt.name}-"], tmp
    # one resumes in a real `rnnkit fit --resume` process, the other in this one (faster)
    proc = subprocess.Popen([sys.executable, "-m", "rnnkit", "fit", "--resume",
                             str(runs[signal.SIGTERM])], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=cli_env())
    assert main(["fit", "--resume", str(runs[signal.SIGINT])]) == 0
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert f"run saved to {runs[signal.SIGTERM]}" in out
    for run_folder in runs.values():
        assert_same_weights(reference, run_folder)
        assert history(run_folder) == history(reference)
