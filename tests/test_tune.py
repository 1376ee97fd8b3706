"""``rnnkit tune`` / ``rnnkit.tune``: real searches of a few tiny trials on a short series.

The study continues from its SQLite file, bad input is refused before any trial, Ctrl-C keeps
what finished, and the pruning callback reports every epoch and stops a lagging fit.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import rnnkit
from tests.conftest import Cli, cli_env

optuna = pytest.importorskip("optuna")

from rnnkit.cli.tune import STUDY_NAME, pruning_callback  # noqa: E402

FAST = ["--epochs", "3", "--hidden-size", "8", "--early-stopping", "0", "--levels", "none"]


@pytest.fixture(scope="module")
def sun(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 300 months of sunspots: long enough for every window searched."""
    path = tmp_path_factory.mktemp("tune") / "sun.csv"
    pd.read_csv(data_dir / "sunspots_monthly.csv").head(300).to_csv(path, index=False)
    return path


def test_help_and_import_do_not_load_optuna() -> None:
    code = ("import sys, rnnkit\nfrom rnnkit.cli.main import build_parser\n"
            "build_parser().format_help()\nprint('optuna' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=cli_env(), check=True)
    assert proc.stdout.strip() == "False"


def test_without_optuna_tune_says_how_to_get_it(cli: Cli, sun: Path, tmp_path: Path) -> None:
    fake = tmp_path / "fake" / "optuna"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('deliberately missing')\n")
    code, _, stderr = cli("tune", sun, "--target", "sunspot_number", "--trials", "1",
                          "--out", tmp_path / "tuned", env={"PYTHONPATH": str(fake.parent)})
    assert code == 2 and "pip install 'rnnkit[tune]'" in stderr, stderr
    assert not (tmp_path / "tuned").exists()


def test_cli_tune_saves_the_best_run_and_continues_the_study(cli: Cli, sun: Path,
                                                              tmp_path: Path) -> None:
    out = tmp_path / "tuned"
    args = ["tune", sun, "--target", "sunspot_number", "--trials", "3", *FAST, "--out", out]
    code, stdout, stderr = cli(*args)
    assert code == 0, stderr
    assert "best trial" in stdout and "best params: cell=" in stdout
    assert len(pd.read_csv(out / "trials.csv")) == 3
    assert (out / "history.png").stat().st_size > 0
    assert (out / "study.db").is_file()
    run = rnnkit.load(out / "best")
    assert (out / "best" / "report.html").is_file()
    assert len(run.predict(sun)) > 0

    code, stdout, stderr = cli(*args[:5], "2", *args[6:])  # the same command, 2 more trials
    assert code == 0, stderr
    table = pd.read_csv(out / "trials.csv")
    assert list(table["number"]) == [0, 1, 2, 3, 4]
    assert {"number", "state", "value", "seconds", "params_cell"} <= set(table.columns)
    assert "trials in the study: 5" in stdout


@pytest.mark.parametrize(("extra", "message"), [
    (["--target", "sunspt"], "Did you mean 'sunspot_number'?"),
    (["--target", "sunspot_number", "--trials", "0"], "--trials 0: expected"),
    (["--target", "sunspot_number", "--jobs", "0"], "--jobs 0: expected"),
    (["--target", "sunspot_number", "--cell", "lstn"], "cell"),
])
def test_bad_input_is_refused_before_any_trial(cli: Cli, sun: Path, tmp_path: Path,
                                               extra: list[str], message: str) -> None:
    out = tmp_path / "tuned"
    trials = [] if "--trials" in extra else ["--trials", "2"]
    code, _, stderr = cli("tune", sun, *trials, *extra, "--out", out)
    assert code == 2
    assert stderr.count("\n") == 1 and stderr.startswith("rnnkit: error:"), stderr
    assert message in stderr
    assert not (out / "study.db").exists()


def test_an_out_that_is_a_file_is_refused(cli: Cli, sun: Path) -> None:
    code, _, stderr = cli("tune", sun, "--target", "sunspot_number", "--trials", "1",
                          "--out", sun)
    assert code == 2 and "is a file" in stderr


def test_python_api_returns_the_best_run_and_records_every_epoch(sun: Path,
                                                                 tmp_path: Path) -> None:
    result = rnnkit.tune(sun, target="sunspot_number", trials=3, out=tmp_path, jobs=2,
                         epochs=3, early_stopping=0, levels=None, quiet=True,
                         space={"hidden_size": (4, 8), "window": (12, 24)})
    assert isinstance(result.best, rnnkit.Run)
    assert result.counts.get("COMPLETE", 0) >= 1 and sum(result.counts.values()) == 3
    assert 4 <= result.best_params["hidden_size"] <= 8
    assert result.best.config["model"]["hidden_size"] == result.best_params["hidden_size"]
    assert "best params:" in result.summary()
    study = optuna.load_study(study_name=STUDY_NAME, storage=result.storage)
    assert result.best_value == pytest.approx(study.best_value)
    for trial in study.trials:
        if trial.state.name == "COMPLETE":
            # the objective is the best of the validation losses the callback reported
            assert len(trial.intermediate_values) >= 3
            assert trial.value == pytest.approx(min(trial.intermediate_values.values()))


def test_the_pruner_stops_a_lagging_fit(sun: Path) -> None:
    study = optuna.create_study(pruner=optuna.pruners.MedianPruner(n_startup_trials=1))
    good = study.ask()
    for epoch in range(10):  # a trial no real fit can match
        good.report(1e-12, epoch)
    study.tell(good, 1e-12)
    trial = study.ask()
    callback = pruning_callback(trial)
    run = rnnkit.fit(sun, target="sunspot_number", epochs=10, early_stopping=0, levels=None,
                     hidden_size=4, quiet=True, callbacks=[callback])
    assert callback.pruned  # type: ignore[attr-defined]
    assert len(run.history) < 10
    assert run.config["training"]["stop_reason"] == "pruned by the tuner"


def interrupted_study(sun: Path, out: Path) -> str:
    """Start a long study in a real process, Ctrl-C it once a trial has finished; returns
    what it printed on stderr after that first trial's line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnnkit", "tune", str(sun), "--target", "sunspot_number",
         "--trials", "500", *FAST, "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
    assert proc.stderr is not None
    first = proc.stderr.readline()  # one trial has finished
    assert first.startswith("trial 0"), first
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=120)
    assert proc.returncode == 130
    return rest


def test_ctrl_c_keeps_the_finished_trials(sun: Path, tmp_path: Path) -> None:
    out = tmp_path / "tuned"
    rest = interrupted_study(sun, out)
    lines = [line for line in rest.splitlines() if not line.startswith("trial ")]
    assert len(lines) == 1 and "interrupted" in lines[0]
    assert len(pd.read_csv(out / "trials.csv")) >= 1
    assert (out / "history.png").is_file()


def test_an_interrupted_study_continues_and_its_best_run_loads(sun: Path, tmp_path: Path
                                                               ) -> None:
    out = tmp_path / "tuned"
    interrupted_study(sun, out)
    before = pd.read_csv(out / "trials.csv")
    done = before[before["state"] == "COMPLETE"]
    assert len(done) >= 1
    again = subprocess.run(
        [sys.executable, "-m", "rnnkit", "tune", str(sun), "--target", "sunspot_number",
         "--trials", "2", *FAST, "--out", str(out)],
        capture_output=True, text=True, env=cli_env(), timeout=300)
    assert again.returncode == 0, again.stderr
    after = pd.read_csv(out / "trials.csv")
    # the same study: the trials from before the interruption are still there, two more ran
    assert set(done["number"]) <= set(after["number"])
    assert (after["state"] == "COMPLETE").sum() == len(done) + 2
    best = rnnkit.load(out / "best")
    assert np.isfinite(best.forecast(3).to_numpy()).all()
    assert best.config["source"]["path"] == str(sun.resolve())
