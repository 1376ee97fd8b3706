"""RELIABILITY.md, row by row, end to end: the exact exit code, the message naming file, column
and row, and what is (not) left on disk.

The tests that run ``rnnkit`` start it as a real process, ``python -m rnnkit ...``
(tests/helpers_cli.py), and check what a shell sees: the exit status, stdout, stderr (exactly
one ``rnnkit: error:`` line, no traceback) and every file of the folder, hashed before and after.
Rows 1-12: `rnnkit fit` exits 2 with that one line and writes nothing, not even the default run
folder; one process per row, started as a batch.

A fresh process spends ~1.6 s importing torch (~4 s for a fit), so cases that only vary one
already run as a process go through the CLI's entry function ``rnnkit.cli.main.main`` in this
process instead, and their docstrings say so: the other cases of rows 1-12 (NaN, NA, null,
#N/A, -Infinity, a NUL byte, ...), two of the three fill policies, the plain file row 10
compares with, row 13's 40 fuzzed CSVs and the stale-lock takeover of row 22. Library-level
checks need no CLI: a NaN checkpoint refused by ``publish`` (row 21), ``Run.save`` under a held
lock (row 22), in-memory inputs (row 23).

The reader's own tests (test_read.py, test_read_fuzz.py) cover rows 1-13 in depth. Rows 15-16
are in test_hostile_files.py, 17-20 in test_resume.py. Row 24 (DDP) belongs to the scale-out
work.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import cli_env
from helpers_cli import Call, Result, files, one_line_error, run, run_all, succeeded
from helpers_faults import (
    TINY,
    assert_same_weights,
    cli_args,
    history,
    quiet_module,  # noqa: F401 - fixture: one thread, no plots in this module
    scratch,
    tmp_path,  # noqa: F401 - a fixture: tmp_path on tmpfs
)
from hypothesis import given, settings
from test_read_fuzz import csv_texts

import rnnkit
from rnnkit.cli.main import main
from rnnkit.errors import RunLocked
from rnnkit.lock import holder, run_lock
from rnnkit.train.checkpoint import latest_complete, publish, read_checkpoint

DOCS = Path(__file__).parents[1] / "docs" / "reliability.md"


@pytest.fixture(scope="module")
def work() -> Iterator[Path]:
    """A scratch folder for the batches of processes that serve several tests."""
    with scratch("rnnkit-cli-") as folder:
        yield folder


def fails_cleanly(folder: Path, *args: str | os.PathLike[str], code: int = 2) -> str:
    """Run ``rnnkit ARGS`` as a process in ``folder`` (its cwd): it must exit ``code`` with one
    line on stderr and leave every file under ``folder`` as it was. Returns the message."""
    before = files(folder)
    message = one_line_error(run(Call.of(*args, cwd=folder)), code)
    assert files(folder) == before
    return message


def sine_csv(path: Path, rows: int = 80) -> Path:
    path.write_text("y\n" + "".join(f"{np.sin(i / 3):.4f}\n" for i in range(rows)))
    return path


# --- rows 1-12: bad input through `rnnkit fit` ----------------------------------------------
SHORT = "".join(f"{v}\n" for v in range(12))
ROWS = {  # id: (row, file content, options, parts of the message)
    "1 empty": (1, b"", [], ["d.csv: file is empty"]),
    "1 blank lines": (1, b"\n \n\r\n", [], ["d.csv: file is empty"]),
    "2 header only": (2, b"date,y\n", ["--target", "y"], ["header but 0 data rows"]),
    "3 text in target": (3, b"t,y\n1,2.0\n2,abc\n3,4\n", ["--target", "y"],
                         ["d.csv", "column 'y'", "row 2", "line 3", "'abc'"]),
    "4 empty cell": (4, b"t,y\n1,1\n2,\n3,3\n", ["--target", "y"],
                     ["missing value", "'y'", "row 2", "--fill ffill|interpolate|drop"]),
    "4 NaN": (4, b"y\n1\nNaN\n3\n", [], ["missing value", "row 2"]),
    "4 NA": (4, b"y\n1\nNA\n3\n", [], ["missing value", "row 2"]),
    "4 null": (4, b"y\n1\nnull\n3\n", [], ["missing value", "row 2"]),
    "4 #N/A": (4, b"y\n1\n#N/A\n3\n", [], ["missing value", "row 2"]),
    "5 inf": (5, b"t,y\n1,1\n2,inf\n", ["--target", "y"], ["contains infinity", "'y'", "row 2"]),
    "5 -Infinity": (5, b"y\n1\n-Infinity\n", [], ["contains infinity", "row 2"]),
    "5 1e400": (5, b"y\n1\n1e400\n", ["--fill", "drop"], ["contains infinity", "row 2"]),
    "7 3e38+": (7, b"y\n1\n3.5e38\n", [], ["beyond float32", "'3.5e38'", "row 2"]),
    "7 1e308": (7, b"y\n1\n-1e308\n", [], ["beyond float32", "row 2"]),
    "8 one row": (8, b"y\n1\n", ["--window", "10", "--horizon", "3"],
                  ["the series has 1 rows", "needs at least 13"]),
    "8 short": (8, f"y\n{SHORT}".encode(), ["--window", "10", "--horizon", "3",
                                            "--transform", "none"],
                ["the series has 12 rows", "window 10 + horizon 3 needs at least 13"]),
    "9 wrong delimiter": (9, b"a;b\n1\n2\n", ["--target", "b"],
                          ["column 'b' not found", "available: [a;b]",
                           "may use ';' as delimiter"]),
    "11 typo": (11, b"date,value,temp\n2020-01-01,1,2\n", ["--target", "valeu"],
                ["column 'valeu' not found in d.csv; available: [date, value, temp] "
                 "Did you mean 'value'?"]),
    "11 time typo": (11, b"date,value\n2020-01-01,1\n", ["--target", "value", "--time", "dat"],
                     ["column 'dat' not found", "Did you mean 'date'?"]),
    "12 ragged": (12, b"a,b\n1,2\n3,4,5\n", ["--target", "b"],
                  ["d.csv", "line 3", "3 fields but the header has 2"]),
    "12 NUL": (12, b"y\n1\n2\x00\n3\n", [], ["d.csv: line 3 contains a NUL byte"]),
    "12 invalid UTF-8": (12, b"n,y\nok,1\n\xff\xfe,2\n", ["--target", "y"],
                         ["d.csv: line 3 is not valid UTF-8"]),
}


# One real process per row of RELIABILITY.md (docs/reliability.md names this test for each).
# The other cases of a row reach the same one-line error through the same CLI path and are
# checked in this process (a process each costs ~1.6 s).
IN_A_PROCESS = ["1 empty", "2 header only", "3 text in target", "4 empty cell", "5 inf",
                "7 3e38+", "8 short", "9 wrong delimiter", "11 typo", "12 invalid UTF-8"]
VARIANTS = [case for case in ROWS if case not in IN_A_PROCESS]


@pytest.fixture(scope="module")
def bad_input(work: Path) -> dict[str, tuple[Result, dict, dict]]:
    """Each case of IN_A_PROCESS as its own `rnnkit fit d.csv` process, in its own folder with
    the default --out (runs/d): case -> (result, the folder's files before, and after)."""
    folders, calls = {}, []
    for number, case in enumerate(IN_A_PROCESS):
        _, content, options, _ = ROWS[case]
        folders[case] = work / f"row-{number}"
        folders[case].mkdir()
        (folders[case] / "d.csv").write_bytes(content)
        calls.append(Call.of("fit", "d.csv", *options, cwd=folders[case]))
    before = {case: files(folder) for case, folder in folders.items()}
    results = run_all(calls)
    return {case: (result, before[case], files(folders[case]))
            for case, result in zip(IN_A_PROCESS, results, strict=True)}


@pytest.mark.parametrize("case", IN_A_PROCESS)
def test_bad_input_exits_2_and_writes_nothing(bad_input: dict, case: str) -> None:
    """`python -m rnnkit fit d.csv` exits 2 with one line and writes nothing."""
    result, before, after = bad_input[case]
    message = one_line_error(result, 2)
    for part in ROWS[case][3]:
        assert part in message
    assert after == before  # not even runs/ (the default --out)


@pytest.mark.parametrize("case", VARIANTS)
def test_bad_input_variants_exit_2_and_write_nothing(tmp_path: Path, case: str,
                                                     capsys: pytest.CaptureFixture) -> None:
    """The other variants of rows 1-12, through the CLI's entry function ``main`` in this
    process (cwd ``tmp_path``): exit 2, one line on stderr, nothing written."""
    _, content, options, parts = ROWS[case]
    (tmp_path / "d.csv").write_bytes(content)
    before = files(tmp_path)
    with contextlib.chdir(tmp_path):
        code = main(["fit", "d.csv", *options])  # default --out
    out, err = capsys.readouterr()
    assert code == 2 and out == "", (out, err)
    assert err.startswith("rnnkit: error: ") and err.count("\n") == 1, err
    for part in parts:
        assert part in err
    assert files(tmp_path) == before


def test_row6_string_deep_in_a_big_file(tmp_path: Path) -> None:
    values = [f"{i % 97}.5" for i in range(300_000)]
    values[249_999] = "oops"
    (tmp_path / "d.csv").write_text("i,y\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values)))
    message = fails_cleanly(tmp_path, "fit", "d.csv", "--target", "y")
    assert "column 'y'" in message and "row 250000 " in message and "'oops'" in message


def test_row8_predict_on_too_short_data(tmp_path: Path) -> None:
    series = sine_csv(tmp_path / "s.csv")
    rnnkit.fit(series, out=tmp_path / "run", **{**TINY, "epochs": 1, "transform": "none"})
    (tmp_path / "short.csv").write_text("y\n1\n2\n3\n4\n5\n")
    message = fails_cleanly(tmp_path, "predict", "run", "short.csv", "--out", "p.csv")
    assert "predict needs at least 9 rows (window 8 + 1 to predict), got 5" in message


FILLS = {"ffill": "by forward fill", "interpolate": "by linear interpolation",
         "drop": "dropped 1 rows"}


@pytest.mark.parametrize(("fill", "note"), list(FILLS.items()))
def test_row4_fill_policy_proceeds_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture,
                                               fill: str, note: str) -> None:
    """--fill interpolate as a real `python -m rnnkit fit` process; ffill and drop, the same
    path with another policy, through the CLI's ``main`` in this process (a fit in a fresh
    process costs ~4 s)."""
    lines = [f"{np.sin(i / 3):.4f}" for i in range(60)]
    lines[30] = "NA"
    (tmp_path / "d.csv").write_text("y\n" + "\n".join(lines) + "\n")
    args = ["fit", str(tmp_path / "d.csv"), "--fill", fill, "--out", str(tmp_path / "run"),
            *cli_args(epochs=1)]
    if fill == "interpolate":
        out = succeeded(run(Call.of(*args)))
    else:
        assert main(args) == 0
        out = capsys.readouterr().out
    assert note in out and "row 31" in out
    assert (tmp_path / "run" / "model.safetensors").is_file()


def test_row10_bom_and_crlf_train_the_same_model(tmp_path: Path) -> None:
    """The BOM + CRLF file trains in a real `python -m rnnkit fit` process; the plain file, the
    reference, through the CLI's ``main`` in this process (one thread in both: the same sums)."""
    plain = "y\n" + "".join(f"{np.sin(i / 3):.4f}\n" for i in range(80))
    (tmp_path / "plain.csv").write_text(plain)
    (tmp_path / "bom-crlf.csv").write_bytes(b"\xef\xbb\xbf" + plain.replace("\n", "\r\n").encode())
    succeeded(run(Call.of("fit", tmp_path / "bom-crlf.csv", "--out", tmp_path / "bom-crlf",
                          *cli_args(epochs=2))))
    assert main(["fit", str(tmp_path / "plain.csv"), "--out", str(tmp_path / "plain"),
                 *cli_args(epochs=2)]) == 0
    assert_same_weights(tmp_path / "plain", tmp_path / "bom-crlf")
    assert history(tmp_path / "plain") == history(tmp_path / "bom-crlf")


@settings(max_examples=40, deadline=None, derandomize=True)
@given(csv_texts())
def test_row13_fuzzed_csv_through_the_cli(case: tuple[str, str]) -> None:
    """Any CSV text, given to the CLI's entry function ``main`` in this process (not a new
    process per example): exit 0 with a run, or exit 2 ending in our one-line error (after any
    ``rnnkit: warning:`` lines), no traceback, and nothing written."""
    text, target = case
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.csv"
        path.write_bytes(text.encode("utf-8", errors="surrogatepass"))
        out = Path(folder) / "run"
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(["fit", str(path), f"--target={target}", "--out", str(out),
                         *cli_args(epochs=1)])
        assert code in (0, 2)
        assert out.is_dir() == (code == 0)
        lines = err.getvalue().splitlines()
        assert "Traceback" not in err.getvalue()
        if code == 2:
            assert lines and lines.pop().startswith("rnnkit: error: "), lines
            assert sorted(p.name for p in Path(folder).iterdir()) == ["fuzz.csv"]
        assert all(line.startswith("rnnkit: warning: ") for line in lines), lines


# --- row 14: a constant series ----------------------------------------------------------------
def test_row14_constant_series_trains_and_predicts_the_constant(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text("y\n" + "5.5\n" * 80)
    succeeded(run(Call.of("fit", tmp_path / "c.csv", "--out", tmp_path / "run", "--epochs", "3",
                          "--hidden-size", "4", "--quiet")))  # the defaults, as a user runs it
    run_ = rnnkit.load(tmp_path / "run")
    assert all(np.isfinite([r["train_loss"] for r in run_.history]))
    pred = run_.predict(tmp_path / "c.csv")
    np.testing.assert_allclose(pred.to_numpy(), 5.5, rtol=1e-6)
    np.testing.assert_allclose(run_.forecast(5).to_numpy(), 5.5, rtol=1e-6)


# --- row 21: divergence -------------------------------------------------------------------------
def test_row21_learning_rate_1e6_stops_within_a_step_and_keeps_the_good_checkpoint(
        tmp_path: Path) -> None:
    # an identity RNN, unbounded: a huge step makes the state overflow at the next one
    sine_csv(tmp_path / "s.csv", rows=120)
    folder = tmp_path / "run"
    result = run(Call.of("fit", tmp_path / "s.csv", "--out", folder, "--quiet", "--cell", "rnn",
                         "--activation", "identity", "--lr", "1e6", "--window", "8",
                         "--checkpoint-every", "1"))
    assert result.code == 1 and result.out == "", result
    # 120 rows score 18 test forecasts: the few-points warning line comes first (row 29)
    found = re.fullmatch(r"rnnkit: warning: \S+s\.csv: the test part gives only 18 forecasts "
                         r"[^\n]+\n"
                         r"rnnkit: error: training diverged at epoch (\d+), step (\d+): the "
                         r"(loss|gradient norm) became (nan|inf|-inf); last finite loss "
                         r"[0-9.e+]+\. Try a lower learning rate \(--lr 100000\) or gradient "
                         r"clipping \(--clip 1\)\.\n", result.err)
    assert found, result
    epoch = int(found[1])
    good, skipped = latest_complete(folder)  # the last checkpoint before the NaN, intact
    assert good is not None and skipped == []
    assert good.key[0] == epoch - 1 and good.key[2]
    assert not list((folder / "checkpoints").glob(f"ckpt-{epoch:06d}-*"))
    assert not (folder / "model.safetensors").exists()


def test_row21_nan_weights_never_overwrite_a_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "s.csv").write_text("y\n" + "".join(f"{np.sin(i / 3):.4f}\n" for i in range(80)))
    os.environ["RNNKIT_TEST_INTERRUPT_AT"] = "1:end"
    try:
        with pytest.raises(rnnkit.RnnkitError):
            rnnkit.fit(tmp_path / "s.csv", out=tmp_path / "run", **{**TINY, "epochs": 3})
    finally:
        del os.environ["RNNKIT_TEST_INTERRUPT_AT"]
    folder = tmp_path / "run" / "checkpoints"
    before = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    snap = read_checkpoint(folder / "ckpt-000001-end")
    snap.tensors["model.head.weight"] = snap.tensors["model.head.weight"] * float("nan")
    snap.meta["position"]["epoch"] = 2
    with pytest.raises(rnnkit.TrainingError, match=re.escape("tensor model.head.weight holds NaN")):
        publish(folder, snap, keep=3)
    after = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert after == before


# --- row 22: one writer per run folder ----------------------------------------------------------
@pytest.fixture()
def sine(tmp_path: Path) -> Path:
    return sine_csv(tmp_path / "s.csv")


# holds the lock until its stdin closes (or it is killed), after saying that it holds it
LOCK_OWNER = ("import sys\nfrom rnnkit.lock import run_lock\nwith run_lock(sys.argv[1]):\n"
              "    print('locked', flush=True)\n    sys.stdin.read()\n")


@contextlib.contextmanager
def lock_owner(folder: Path) -> Iterator[subprocess.Popen]:
    """Another process holding ``folder``'s lock: yielded once it printed that it holds it
    (never a guess at how long that takes); killed with SIGKILL afterwards."""
    owner = subprocess.Popen([sys.executable, "-c", LOCK_OWNER, str(folder)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env=cli_env())
    try:
        assert owner.stdout.readline() == "locked\n"
        yield owner
    finally:
        owner.kill()  # kill -9: no clean-up, the lock file stays with a dead pid in it
        owner.communicate()


def test_row22_second_writer_is_refused_and_writes_nothing(sine: Path, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    with run_lock(folder):
        before = files(tmp_path)
        results = run_all([Call.of("fit", sine, "--out", folder, *cli_args(epochs=1),
                                   cwd=tmp_path),
                           Call.of("fit", "--resume", folder, cwd=tmp_path)])
        for result in results:
            message = one_line_error(result, 1)
            assert message.startswith(f"rnnkit: error: run folder {folder} is in use by another "
                                      f"rnnkit process (pid {os.getpid()} on "
                                      f"{socket.gethostname()}, since ")
            assert message.endswith("wait for it to finish, or write to another folder (--out).")
        assert files(tmp_path) == before
        assert sorted(p.name for p in folder.iterdir()) == [".lock"]
    assert not folder.exists()  # the lock's folder was empty: removed again


def test_row22_run_save_takes_the_lock_too(sine: Path, tmp_path: Path) -> None:
    run_ = rnnkit.fit(sine, target="y", **{**TINY, "epochs": 1})
    folder = tmp_path / "run"
    with lock_owner(folder) as owner:
        with pytest.raises(RunLocked, match=f"in use by another rnnkit process \\(pid {owner.pid}"):
            run_.save(folder)
        assert sorted(p.name for p in folder.iterdir()) == [".lock"]  # nothing written
    run_.save(folder)  # the owner is gone: its lock is taken over, the run written
    assert rnnkit.load(folder).metrics == run_.metrics
    with run_lock(folder):  # a save inside this process's own lock (as fit does) goes ahead
        run_.save(folder)


def test_row22_lock_of_a_killed_process_is_taken_over(sine: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    """The lock's owner is another process, killed with SIGKILL; the refused fit and the one
    that takes the stale lock over go through the CLI's ``main`` in this process (the refusal
    as a real process is test_row22_second_writer_is_refused_and_writes_nothing)."""
    folder = tmp_path / "run"
    with lock_owner(folder) as owner:
        before = files(tmp_path)
        assert main(["fit", str(sine), "--out", str(folder), *cli_args(epochs=1)]) == 1
        err = capsys.readouterr().err
        assert err.startswith("rnnkit: error: ") and err.count("\n") == 1, err
        assert f"in use by another rnnkit process (pid {owner.pid} on" in err
        assert files(tmp_path) == before
    assert holder(folder) == owner.pid
    assert main(["fit", str(sine), "--out", str(folder), *cli_args(epochs=1)]) == 0
    assert (folder / "model.safetensors").is_file() and not (folder / ".lock").exists()
    assert rnnkit.load(folder).config["train"]["epochs"] == 1


FORK_THEN_DIE = """
import os, signal, sys, time
from rnnkit.lock import run_lock
with run_lock(sys.argv[1]):
    child = os.fork()
    if child == 0:  # a child of the lock's owner, outliving it (a control, a loader worker)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1), os.dup2(null, 2)  # the test reads the parent's output to its end
        time.sleep(60)
        os._exit(0)
    print(child, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_row22_a_forked_child_does_not_keep_a_dead_owners_lock(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", FORK_THEN_DIE, str(folder)], env=cli_env(),
                          capture_output=True, text=True, timeout=60, check=False)
    child = int(proc.stdout.split()[0])
    try:
        assert proc.returncode == -9 and (folder / ".lock").exists()
        os.kill(child, 0)  # still alive, holding a copy of every descriptor it was forked with
        with run_lock(folder):  # ... but not the lock: its owner is dead, the folder is free
            assert holder(folder) == os.getpid()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, 9)


ORPHAN = """
import os, signal, sys, time
from rnnkit.evaluate.findings.beside import die_with_parent
parent = os.getpid()
child = os.fork()
if child == 0:  # what the control trained beside a fit does first
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1), os.dup2(null, 2)
    die_with_parent(parent)
    time.sleep(60)
    os._exit(0)
time.sleep(0.5)
print(child, flush=True)
os.kill(parent, signal.SIGKILL)
"""


def _running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie nobody reaped in a container counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
def test_row22_the_control_beside_a_fit_dies_with_it(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", ORPHAN], env=cli_env(), capture_output=True,
                          text=True, timeout=60, check=False)
    child = int(proc.stdout.split()[0])
    try:
        assert proc.returncode == -9
        for _ in range(100):  # the kernel sends the signal at once; allow a loaded machine
            if not _running(child):
                break
            time.sleep(0.05)
        assert not _running(child)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, 9)


# --- row 23: determinism across fresh processes -------------------------------------------------
def test_row23_two_seeded_runs_in_fresh_processes_are_bit_identical(sine: Path,
                                                                    tmp_path: Path) -> None:
    digest = hashlib.sha256(sine.read_bytes()).hexdigest()
    runs = [tmp_path / "a", tmp_path / "b"]
    for result in run_all([Call.of("fit", sine, "--out", folder, *cli_args(epochs=6))
                           for folder in runs]):
        succeeded(result)
    assert_same_weights(*runs)
    assert history(runs[0]) == history(runs[1])
    assert (runs[0] / "metrics.json").read_bytes() == (runs[1] / "metrics.json").read_bytes()
    a, b = (rnnkit.load(folder).predict(sine) for folder in runs)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert hashlib.sha256(sine.read_bytes()).hexdigest() == digest  # input not mutated


def test_row23_in_memory_input_is_not_mutated() -> None:
    values = np.sin(np.arange(80) / 3)
    frame = pd.DataFrame({"y": values.copy()})
    array = values.copy()
    rnnkit.fit(frame, target="y", **{**TINY, "epochs": 1})
    rnnkit.fit(array, **{**TINY, "epochs": 1})
    pd.testing.assert_frame_equal(frame, pd.DataFrame({"y": values}))
    np.testing.assert_array_equal(array, values)


# --- docs/reliability.md names a test for every row, and those tests exist ---------------------
def test_docs_table_names_existing_tests() -> None:
    text = DOCS.read_text()
    defined = set()
    for path in Path(__file__).parent.glob("test_*.py"):
        defined |= set(re.findall(r"^def (test_\w+)", path.read_text(), re.MULTILINE))
    rows = {int(m[1]): m[2] for m in re.finditer(r"^\| (\d+) \|[^|]*\|(.*)\|\s*$", text,
                                                   re.MULTILINE)}
    assert sorted(rows) == list(range(1, 30))
    for row, cell in rows.items():
        names = re.findall(r"`(test_\w+)`", cell)
        assert names or row == 24, f"row {row} names no test"
        for name in names:
            assert name in defined, f"docs/reliability.md row {row}: no test {name}"
