"""End-to-end tests of the ``rnnkit`` command, each call a real subprocess (``python -m rnnkit``).

Exit codes: 0 success, 2 bad input or usage; errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import rnnkit

Cli = Callable[..., tuple[int, str, str]]  # the `cli` fixture of conftest.py

COMMANDS = ("fit", "evaluate", "predict", "forecast", "generate", "demo")
RUN_FILES = {"model.safetensors", "config.json", "metrics.json", "history.csv", "loss.png",
             "predictions.png", "forecast.png"}
PROMPT = "0.1,0.5,-0.3,0.9,0.2"
# the options of the shared sunspot run; the BOM/CRLF test repeats them on a re-encoded copy
SUN_OPTS = ("--target", "sunspot_number", "--window", "12", "--epochs", "2", "--hidden-size", "8",
            "--quiet")


def with_bands(column: str) -> list[str]:
    """A forecast column followed by its 80% and 95% interval bounds (docs/uncertainty.md)."""
    return [column, *(f"{column}_{side}{level}" for level in (80, 95) for side in ("lo", "hi"))]


def python_c(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -c code`` in a subprocess, with ``env`` added to the inherited environment."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})}, check=False)


def assert_clean_error(rc: int, err: str, *needles: str) -> None:
    """Exit 2, one line on stderr, no traceback, mentioning every needle."""
    assert rc == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("rnnkit: error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, err)


@pytest.fixture(scope="module")
def sun_csv(data_dir: Path) -> Path:
    return data_dir / "sunspots_monthly.csv"


@pytest.fixture(scope="module")
def sun_fit(cli: Cli, sun_csv: Path, tmp_path_factory: pytest.TempPathFactory
            ) -> tuple[int, str, str, Path]:
    """One CLI fit of the sunspots, shared by the evaluate/predict/forecast tests."""
    folder = tmp_path_factory.mktemp("cli") / "sun"
    rc, out, err = cli("fit", sun_csv, *SUN_OPTS, "--out", folder)
    return rc, out, err, folder


@pytest.fixture(scope="module")
def sun_dir(sun_fit: tuple[int, str, str, Path]) -> Path:
    rc, _, err, folder = sun_fit
    assert rc == 0, err
    return folder


@pytest.fixture(scope="module")
def seeded_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[rnnkit.Run, Path]:
    """A continuation run (prompt of 5 -> 5 more), made with the Python API and saved."""
    x = np.random.default_rng(2).uniform(-1, 1, (60, 10))
    run = rnnkit.fit(x, prompt_length=5, epochs=2, hidden_size=8, quiet=True)
    folder = run.save(tmp_path_factory.mktemp("cli") / "seeded", plots=False)
    return run, folder


# --- start-up: version and help, without the heavy imports -------------------------------------
def test_version(cli: Cli) -> None:
    rc, out, err = cli("--version")
    assert rc == 0, err
    assert out.strip() == f"rnnkit {rnnkit.__version__}"


def test_help_lists_commands_with_an_example(cli: Cli) -> None:
    rc, out, err = cli("--help")
    assert rc == 0, err
    assert "example" in out
    for name in COMMANDS:
        assert name in out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_help_has_an_example(cli: Cli, command: str) -> None:
    rc, out, err = cli(command, "--help")
    assert rc == 0, err
    assert f"usage: rnnkit {command}" in out
    assert "example" in out


def test_parser_help_and_version_import_no_torch_or_matplotlib() -> None:
    code = (
        "import sys\n"
        "from rnnkit.cli.main import build_parser, main\n"
        "build_parser()\n"
        "for argv in (['--help'], ['--version'], ['fit', '--help'], ['generate', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print([m for m in ('torch', 'matplotlib', 'pandas') if m in sys.modules], "
        "file=sys.stderr)\n"
    )
    proc = python_c(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "[]"


def test_version_and_help_work_when_torch_cannot_import(cli: Cli, tmp_path: Path) -> None:
    for name in ("torch", "matplotlib"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(
            f"raise ImportError('{name} is deliberately broken for this test')\n")
    env = {"PYTHONPATH": str(tmp_path)}
    probe = python_c("import torch", env)
    assert "deliberately broken" in probe.stderr  # the fake really shadows torch
    rc, out, err = cli("--version", env=env)
    assert rc == 0, err
    assert out.strip() == f"rnnkit {rnnkit.__version__}"
    for argv in (["--help"], ["fit", "--help"]):
        rc, out, err = cli(*argv, env=env)
        assert rc == 0, err
        assert "example" in out


# --- fit, evaluate, predict, forecast, generate -------------------------------------------------
def test_fit_prints_table_and_run_folder(sun_fit: tuple[int, str, str, Path]) -> None:
    rc, out, err, folder = sun_fit
    assert rc == 0, err
    assert "Traceback" not in err
    assert {p.name for p in folder.iterdir()} >= RUN_FILES
    lines = out.splitlines()
    assert any(line.split()[:3] == ["MSE", "RMSE", "MAE"] for line in lines)
    assert any(line.startswith("model ") for line in lines)
    assert any(line.startswith("last value ") for line in lines)
    assert any(line.startswith("linear AR(") for line in lines)
    assert "used column 'month' as time index" in out
    assert f"run saved to {folder}" in out


def test_fit_json_is_valid_json(cli: Cli, data_dir: Path, tmp_path: Path) -> None:
    rc, out, err = cli("fit", data_dir / "nile_yearly.csv", "--window", "8", "--epochs", "2",
                       "--hidden-size", "4", "--quiet", "--json", "--out", tmp_path / "nile")
    assert rc == 0, err
    payload = json.loads(out)  # stdout holds the JSON document and nothing else
    assert payload["run"] == str(tmp_path / "nile")
    metrics = payload["metrics"]
    assert set(metrics["model"]) == {"mse", "rmse", "mae", "mape", "smape", "mase"}
    assert {"mean", "last value"} <= set(metrics["baselines"])
    assert any(k.startswith("linear AR(") for k in metrics["baselines"])
    saved = json.loads((tmp_path / "nile" / "metrics.json").read_text())
    assert metrics == saved


def test_evaluate_prints_table(cli: Cli, sun_dir: Path) -> None:
    rc, out, err = cli("evaluate", sun_dir)
    assert rc == 0, err
    assert any(line.startswith("model ") for line in out.splitlines())
    assert "last value" in out
    assert "baseline" in out.splitlines()[-1]  # the verdict sentence


def test_readme_sunspots_verdict_is_what_the_demo_prints(cli: Cli, tmp_path: Path) -> None:
    """The README's `make demo` claims: the verdict and the guard's line it shows are the ones
    printed; the model's test RMSE is below every baseline's over the 469 test months, and the
    difference to the best one (a linear AR chosen on validation) is within noise."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    claim = next(line for line in readme.splitlines()
                 if line.startswith("No significant difference between the model and the "))
    kept = next(line for line in readme.splitlines() if line.startswith("forecasts come from "))
    rc, out, err = cli("demo", "sunspots", "--out", tmp_path / "sun", "--quiet")
    assert rc == 0, err
    assert claim in out.splitlines() and kept in out.splitlines()
    metrics = json.loads((tmp_path / "sun" / "metrics.json").read_text())
    test = metrics["verdict"]
    assert test["baseline"].startswith("linear AR(") and test["test_points"] == 469
    assert f"'{test['baseline']}' baseline" in claim and "over 469 test points" in claim
    assert all(metrics["model"]["rmse"] < b["rmse"] for b in metrics["baselines"].values())
    assert test["p_value"] > 0.05 and test["p_values"]["last value"] < 0.01
    # the README's interval claim: the lines it shows are the ones printed, and the coverage of
    # the 469 test months is within 5 points of nominal
    found = json.loads((tmp_path / "sun" / "metrics.json").read_text())["intervals"]
    covers = {lv: f"{100 * found[str(lv)]['model']['coverage']:.1f}%" for lv in (80, 95)}
    assert f"they cover {covers[80]} and {covers[95]}" in readme.replace("\n", " ")
    for level in (80, 95):
        line = next(x for x in out.splitlines() if x.startswith(f"{level}% interval: "))
        assert line in readme
        assert line.startswith(f"{level}% interval: model covers {covers[level]},")
        model = found[str(level)]["model"]
        assert model["points"] == 469 and abs(100 * model["coverage"] - level) <= 5
        assert model["winkler"] < found[str(level)]["last value"]["winkler"]


def test_evaluate_json_matches_the_saved_metrics(cli: Cli, sun_dir: Path) -> None:
    rc, out, err = cli("evaluate", sun_dir, "--json")
    assert rc == 0, err
    metrics = json.loads(out)
    saved = json.loads((sun_dir / "metrics.json").read_text())
    assert set(metrics["baselines"]) == set(saved["baselines"])
    for name, value in saved["model"].items():  # re-scored from the file: same numbers
        assert metrics["model"][name] == pytest.approx(value, rel=1e-9)


def test_closed_pipe_is_not_an_internal_error(sun_dir: Path) -> None:
    """`rnnkit evaluate RUN --json | head -1`: the reader is gone before the output comes."""
    proc = subprocess.Popen([sys.executable, "-m", "rnnkit", "evaluate", sun_dir, "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    proc.stdout.close()  # long before the run is loaded and scored
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141
    assert err == b""


def test_predict_writes_csv_with_index_and_target(cli: Cli, sun_dir: Path, sun_csv: Path,
                                                  tmp_path: Path) -> None:
    out_csv = tmp_path / "pred.csv"
    rc, out, err = cli("predict", sun_dir, sun_csv, "--out", out_csv)
    assert rc == 0, err
    frame = pd.read_csv(out_csv)
    raw = pd.read_csv(sun_csv)
    assert list(frame.columns) == ["month", *with_bands("sunspot_number")]
    assert len(frame) == len(raw) - 12
    assert f"wrote {len(frame)} rows" in out
    assert pd.Timestamp(frame["month"][0]) == pd.Timestamp(raw["month"][12])
    assert np.isfinite(frame["sunspot_number"]).all()
    assert frame["sunspot_number"].mean() == pytest.approx(raw["sunspot_number"].mean(), rel=0.3)


def test_forecast_writes_steps_rows(cli: Cli, sun_dir: Path, tmp_path: Path) -> None:
    out_csv = tmp_path / "f.csv"
    rc, out, err = cli("forecast", sun_dir, "--steps", "6", "--out", out_csv)
    assert "wrote 6 rows" in out
    assert rc == 0, err
    frame = pd.read_csv(out_csv, index_col=0)
    assert len(frame) == 6
    assert list(frame.columns) == with_bands("sunspot_number")
    assert pd.Timestamp(frame.index[0]) == pd.Timestamp("2009-07-01")
    assert np.isfinite(frame.to_numpy()).all()


def test_generate_prints_the_continuation(cli: Cli, seeded_run: tuple[rnnkit.Run, Path]
                                          ) -> None:
    run, folder = seeded_run
    expected = run.generate([float(v) for v in PROMPT.split(",")], 5)[:, 0]
    rc, out, err = cli("generate", folder, "--prompt", PROMPT, "--steps", "5")
    assert rc == 0, err
    assert out.startswith("generated: ")
    values = [float(v) for v in out.removeprefix("generated: ").split(",")]
    assert len(values) == 5
    np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-6)  # printed to 6 digits

    rc, out, err = cli("generate", folder, "--prompt", PROMPT, "--steps", "5", "--json")
    assert rc == 0, err
    payload = json.loads(out)
    assert len(payload["generated"]) == 5
    assert payload["prompt"] == [0.1, 0.5, -0.3, 0.9, 0.2]
    np.testing.assert_allclose(payload["generated"], expected, rtol=1e-6)


# --- bad input: exit 2, one line, no traceback --------------------------------------------------
def test_missing_file(cli: Cli, tmp_path: Path) -> None:
    rc, _, err = cli("fit", tmp_path / "no_such.csv", "--target", "y", "--out", tmp_path / "x")
    assert_clean_error(rc, err, "not found", "no_such.csv")
    assert not (tmp_path / "x").exists()  # nothing written


def test_missing_column_lists_columns_and_suggests(cli: Cli, sun_csv: Path) -> None:
    rc, _, err = cli("fit", sun_csv, "--target", "sunspot")
    assert_clean_error(rc, err, "'sunspot'", "available: [month, sunspot_number]",
                       "Did you mean 'sunspot_number'?")


def test_text_in_target_column_names_the_row(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("date,y\n2000-01-01,1\n2000-01-02,2\n2000-01-03,abc\n2000-01-04,4\n")
    rc, _, err = cli("fit", bad, "--target", "y")
    assert_clean_error(rc, err, "bad.csv", "column 'y'", "row 3", "'abc'")


def test_missing_values_need_fill_then_fill_says_so(cli: Cli, data_dir: Path,
                                                   tmp_path: Path) -> None:
    co2 = data_dir / "co2_mauna_loa_weekly.csv"
    rc, _, err = cli("fit", co2, "--target", "co2_ppmv", "--window", "12", "--epochs", "2",
                     "--quiet", "--out", tmp_path / "refused")
    assert_clean_error(rc, err, "59 missing value", "--fill")
    assert not (tmp_path / "refused").exists()  # validated before anything is written

    rc, out, err = cli("fit", co2, "--target", "co2_ppmv", "--window", "12", "--epochs", "2",
                       "--hidden-size", "4", "--quiet", "--fill", "interpolate",
                       "--out", tmp_path / "filled")
    assert rc == 0, err
    assert "filled 59 missing values" in out and "interpolation" in out


def test_bad_option_value_suggests_the_nearest(cli: Cli, sun_csv: Path) -> None:
    rc, _, err = cli("fit", sun_csv, "--target", "sunspot_number", "--cell", "lstmm")
    assert_clean_error(rc, err, "'lstmm'", "Did you mean 'lstm'?")


def test_window_longer_than_series(cli: Cli, data_dir: Path) -> None:
    rc, _, err = cli("fit", data_dir / "nile_yearly.csv", "--window", "5000")
    assert_clean_error(rc, err, "window 5000", "100 rows", "5001")


def test_evaluate_folder_without_config(cli: Cli, tmp_path: Path) -> None:
    rc, _, err = cli("evaluate", tmp_path)
    assert_clean_error(rc, err, "config.json")


def test_generate_with_non_numeric_prompt(cli: Cli, seeded_run: tuple[rnnkit.Run, Path]
                                          ) -> None:
    rc, _, err = cli("generate", seeded_run[1], "--prompt", "a,b", "--steps", "5")
    assert_clean_error(rc, err, "'a,b'", "numbers")


def test_usage_error_exits_2(cli: Cli) -> None:
    rc, _, err = cli("forecast", "somewhere")  # --steps is required
    assert rc == 2
    assert "Traceback" not in err and "--steps" in err


# --- encodings ----------------------------------------------------------------------------------
def test_bom_and_crlf_give_the_same_metrics(cli: Cli, sun_csv: Path, sun_dir: Path,
                                            tmp_path: Path) -> None:
    text = sun_csv.read_bytes().decode("utf-8").replace("\r\n", "\n")
    odd = tmp_path / "sunspots_bom_crlf.csv"
    odd.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))
    rc, _, err = cli("fit", odd, *SUN_OPTS, "--out", tmp_path / "odd")
    assert rc == 0, err
    plain = json.loads((sun_dir / "metrics.json").read_text())
    other = json.loads((tmp_path / "odd" / "metrics.json").read_text())
    assert other == plain
    # two processes, same seed: the very same weight file, byte for byte
    weights = (sun_dir / "model.safetensors").read_bytes()
    assert (tmp_path / "odd" / "model.safetensors").read_bytes() == weights
