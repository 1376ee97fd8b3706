"""RELIABILITY.md, row by row, through the command line: the exact exit code, the message naming
file, column and row, and what is (not) left on disk.

The reader's own tests (test_read.py, test_read_fuzz.py) cover rows 1-13 in depth; here each row
is checked once more end to end: `rnnkit fit` exits 2 with a one-line error and writes nothing,
not even the default run folder. Rows 15-16 are in test_hostile_files.py, 17-20 in
test_resume.py. Row 24 (DDP) belongs to the scale-out work.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import cli_env
from helpers_faults import (
    TINY,
    assert_same_weights,
    cli_args,
    history,
    quiet_module,  # noqa: F401 - fixture: one thread, no plots in this module
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


def fails_cleanly(folder: Path, argv: list[str], capsys: pytest.CaptureFixture,
                  code: int = 2) -> str:
    """Run the CLI in ``folder`` (its cwd); it must exit ``code`` with one line on stderr and
    leave ``folder`` exactly as it was. Returns the message."""
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        assert main(argv) == code
    finally:
        os.chdir(cwd)
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("rnnkit: error: ") and err.count("\n") == 1, err
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before
    return err.strip()


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


@pytest.mark.parametrize("case", list(ROWS))
def test_bad_input_exits_2_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture,
                                              case: str) -> None:
    _, content, options, parts = ROWS[case]
    (tmp_path / "d.csv").write_bytes(content)
    message = fails_cleanly(tmp_path, ["fit", "d.csv", *options], capsys)  # default --out
    for part in parts:
        assert part in message


def test_row6_string_deep_in_a_big_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    values = [f"{i % 97}.5" for i in range(300_000)]
    values[249_999] = "oops"
    (tmp_path / "d.csv").write_text("i,y\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values)))
    message = fails_cleanly(tmp_path, ["fit", "d.csv", "--target", "y"], capsys)
    assert "column 'y'" in message and "row 250000 " in message and "'oops'" in message


def test_row8_predict_on_too_short_data(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    series = tmp_path / "s.csv"
    series.write_text("y\n" + "".join(f"{np.sin(i / 3):.4f}\n" for i in range(80)))
    rnnkit.fit(series, out=tmp_path / "run", **{**TINY, "epochs": 1, "transform": "none"})
    (tmp_path / "short.csv").write_text("y\n1\n2\n3\n4\n5\n")
    message = fails_cleanly(tmp_path, ["predict", "run", "short.csv", "--out", "p.csv"], capsys)
    assert "predict needs at least 9 rows (window 8 + 1 to predict), got 5" in message


@pytest.mark.parametrize(("fill", "note"), [("ffill", "by forward fill"),
                                            ("interpolate", "by linear interpolation"),
                                            ("drop", "dropped 1 rows")])
def test_row4_fill_policy_proceeds_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture,
                                               fill: str, note: str) -> None:
    lines = [f"{np.sin(i / 3):.4f}" for i in range(60)]
    lines[30] = "NA"
    (tmp_path / "d.csv").write_text("y\n" + "\n".join(lines) + "\n")
    assert main(["fit", str(tmp_path / "d.csv"), "--fill", fill, "--out", str(tmp_path / "run"),
                 *cli_args(epochs=1)]) == 0
    out = capsys.readouterr().out
    assert note in out and "row 31" in out
    assert (tmp_path / "run" / "model.safetensors").is_file()


def test_row10_bom_and_crlf_train_the_same_model(tmp_path: Path) -> None:
    plain = "y\n" + "".join(f"{np.sin(i / 3):.4f}\n" for i in range(80))
    variants = {"plain.csv": plain.encode(),
                "bom-crlf.csv": b"\xef\xbb\xbf" + plain.replace("\n", "\r\n").encode()}
    for name, content in variants.items():
        (tmp_path / name).write_bytes(content)
        assert main(["fit", str(tmp_path / name), "--out", str(tmp_path / name[:-4]),
                     *cli_args(epochs=2)]) == 0
    assert_same_weights(tmp_path / "plain", tmp_path / "bom-crlf")
    assert history(tmp_path / "plain") == history(tmp_path / "bom-crlf")


@settings(max_examples=40, deadline=None, derandomize=True)
@given(csv_texts())
def test_row13_fuzzed_csv_through_the_cli(case: tuple[str, str]) -> None:
    """Any CSV text: exit 0 with a run, or exit 2 with our one-line error and nothing written."""
    text, target = case
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.csv"
        path.write_bytes(text.encode("utf-8", errors="surrogatepass"))
        out = Path(folder) / "run"
        code = main(["fit", str(path), f"--target={target}", "--out", str(out),
                     *cli_args(epochs=1)])
        assert code in (0, 2)
        assert out.is_dir() == (code == 0)


# --- row 14: a constant series ----------------------------------------------------------------
def test_row14_constant_series_trains_and_predicts_the_constant(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text("y\n" + "5.5\n" * 80)
    assert main(["fit", str(tmp_path / "c.csv"), "--out", str(tmp_path / "run"), "--epochs", "3",
                 "--hidden-size", "4", "--quiet"]) == 0  # the defaults, as a user runs it
    run = rnnkit.load(tmp_path / "run")
    assert all(np.isfinite([r["train_loss"] for r in run.history]))
    pred = run.predict(tmp_path / "c.csv")
    np.testing.assert_allclose(pred.to_numpy(), 5.5, rtol=1e-6)
    np.testing.assert_allclose(run.forecast(5).to_numpy(), 5.5, rtol=1e-6)


# --- row 21: divergence -------------------------------------------------------------------------
def test_row21_learning_rate_1e6_stops_within_a_step_and_keeps_the_good_checkpoint(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # an identity RNN, unbounded: a huge step makes the state overflow at the next one
    (tmp_path / "s.csv").write_text("y\n" + "".join(f"{np.sin(i / 3):.4f}\n" for i in range(120)))
    run = tmp_path / "run"
    assert main(["fit", str(tmp_path / "s.csv"), "--out", str(run), "--quiet", "--cell", "rnn",
                 "--activation", "identity", "--lr", "1e6", "--window", "8",
                 "--checkpoint-every", "1"]) == 1
    err = capsys.readouterr().err
    # 120 rows score 18 test forecasts: the few-points warning line comes first (row 29)
    found = re.fullmatch(r"rnnkit: warning: \S+s\.csv: the test part gives only 18 forecasts "
                         r"[^\n]+\n"
                         r"rnnkit: error: training diverged at epoch (\d+), step (\d+): the "
                         r"(loss|gradient norm) became (nan|inf|-inf); last finite loss "
                         r"[0-9.e+]+\. Try a lower learning rate \(--lr 100000\) or gradient "
                         r"clipping \(--clip 1\)\.\n", err)
    assert found, err
    epoch = int(found[1])
    good, skipped = latest_complete(run)  # the last checkpoint before the NaN, intact
    assert good is not None and skipped == []
    assert good.key[0] == epoch - 1 and good.key[2]
    assert not list((run / "checkpoints").glob(f"ckpt-{epoch:06d}-*"))
    assert not (run / "model.safetensors").exists()


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
    path = tmp_path / "s.csv"
    path.write_text("y\n" + "".join(f"{np.sin(i / 3):.4f}\n" for i in range(80)))
    return path


def test_row22_second_writer_is_refused_and_writes_nothing(sine: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    with run_lock(run):
        for argv in (["fit", str(sine), "--out", str(run), *cli_args(epochs=1)],
                     ["fit", "--resume", str(run)]):
            message = fails_cleanly(tmp_path, argv, capsys, code=1)
            assert message.startswith(f"rnnkit: error: run folder {run} is in use by another "
                                      f"rnnkit process (pid {os.getpid()} on "
                                      f"{socket.gethostname()}, since ")
            assert message.endswith("wait for it to finish, or write to another folder (--out).")
        assert sorted(p.name for p in run.iterdir()) == [".lock"]
    assert not run.exists()  # the lock's folder was empty: removed again


def test_row22_run_save_takes_the_lock_too(sine: Path, tmp_path: Path) -> None:
    run = rnnkit.fit(sine, target="y", **{**TINY, "epochs": 1})
    folder = tmp_path / "run"
    script = ("import sys, time\nfrom rnnkit.lock import run_lock\nwith run_lock(sys.argv[1]):\n"
              "    print('locked', flush=True)\n    time.sleep(300)\n")
    owner = subprocess.Popen([sys.executable, "-c", script, str(folder)],
                             stdout=subprocess.PIPE, text=True, env=cli_env())
    try:
        assert owner.stdout.readline() == "locked\n"
        with pytest.raises(RunLocked, match=f"in use by another rnnkit process \\(pid {owner.pid}"):
            run.save(folder)
        assert sorted(p.name for p in folder.iterdir()) == [".lock"]  # nothing written
    finally:
        owner.kill()
        owner.communicate()
    run.save(folder)  # the owner is gone: its lock is taken over, the run written
    assert rnnkit.load(folder).metrics == run.metrics
    with run_lock(folder):  # a save inside this process's own lock (as fit does) goes ahead
        run.save(folder)


def test_row22_lock_of_a_killed_process_is_taken_over(sine: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    script = ("import sys, time\nfrom rnnkit.lock import run_lock\nwith run_lock(sys.argv[1]):\n"
              "    print('locked', flush=True)\n    time.sleep(300)\n")
    owner = subprocess.Popen([sys.executable, "-c", script, str(run)], stdout=subprocess.PIPE,
                             text=True, env=cli_env())
    try:
        assert owner.stdout.readline() == "locked\n"
        message = fails_cleanly(tmp_path, ["fit", str(sine), "--out", str(run),
                                           *cli_args(epochs=1)], capsys, code=1)
        assert f"in use by another rnnkit process (pid {owner.pid} on" in message
    finally:
        owner.kill()  # kill -9: no clean-up, the lock file stays with a dead pid in it
        owner.communicate()
    assert holder(run) == owner.pid
    assert main(["fit", str(sine), "--out", str(run), *cli_args(epochs=1)]) == 0
    assert (run / "model.safetensors").is_file() and not (run / ".lock").exists()
    assert rnnkit.load(run).config["train"]["epochs"] == 1


# --- row 23: determinism across fresh processes -------------------------------------------------
def test_row23_two_seeded_runs_in_fresh_processes_are_bit_identical(sine: Path,
                                                                    tmp_path: Path) -> None:
    digest = hashlib.sha256(sine.read_bytes()).hexdigest()
    runs = [tmp_path / "a", tmp_path / "b"]
    procs = [subprocess.Popen([sys.executable, "-m", "rnnkit", "fit", str(sine), "--out",
                               str(run), *cli_args(epochs=6)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=cli_env()) for run in runs]
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
    assert_same_weights(*runs)
    assert history(runs[0]) == history(runs[1])
    assert (runs[0] / "metrics.json").read_bytes() == (runs[1] / "metrics.json").read_bytes()
    a, b = (rnnkit.load(run).predict(sine) for run in runs)
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
