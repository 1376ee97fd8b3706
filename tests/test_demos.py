"""The four founding problems, end to end on their defaults, with their thresholds.

These are the product's acceptance test: each demo runs exactly as `rnnkit demo NAME` does
(full size; the thresholds are the issue's) and writes a run folder with plots and metrics.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time

import pytest

from rnnkit.demos import run_demo


def _metrics(folder) -> dict:
    return json.loads((folder / "metrics.json").read_text())


def test_sine_priming(tmp_path):
    start = time.process_time()
    res = run_demo("sine", out=tmp_path / "sine", quiet=True)
    m = _metrics(res["folder"])
    assert m["test_mse"] <= 1e-5
    assert m["priming_length"] == 10
    # unprimed first steps are far worse than primed ones: that is the point of priming
    assert m["test_mse_unprimed_first_steps"] > 100 * m["test_mse_primed_first_steps"]
    assert (res["folder"] / "priming.png").stat().st_size > 10_000
    assert time.process_time() - start < 120  # CPU seconds, generous for a loaded CI box


def test_adder_identity_extrapolates(tmp_path):
    res = run_demo("adder", out=tmp_path / "adder", quiet=True)
    m = _metrics(res["folder"])
    assert m["test_mae"] <= 0.01
    ex = {tuple(e["input"]): e["predicted"] for e in m["examples"]}
    assert abs(ex[(1, -2, 30)] - 29) <= 0.05
    assert "explanation" not in m


def test_adder_tanh_explains_why_it_fails(tmp_path):
    res = run_demo("adder", out=tmp_path / "adder_tanh", activation="tanh", quiet=True)
    m = _metrics(res["folder"])
    assert m["test_mae"] > 1.0  # tanh cannot extrapolate a sum
    assert m["tanh_max_output"] < m["doubled_max_sum"]
    assert "tanh squashes" in m["explanation"] and "identity" in m["explanation"]
    assert m["explanation"] in res["text"]


def test_seeded_continuation(tmp_path):
    res = run_demo("seeded", out=tmp_path / "seeded", quiet=True)
    m = _metrics(res["folder"])
    assert m["test_mse_generated"] <= 5e-4  # on the test sequences, not the validation ones
    assert m["baseline_mse_mean"] > 1.0
    assert (res["folder"] / "continuations.png").is_file()
    assert (res["folder"] / "loss.png").is_file()


def test_sunspots_default_cli(tmp_path):
    out = tmp_path / "sun"
    proc = subprocess.run([sys.executable, "-m", "rnnkit", "demo", "sunspots", "--out", str(out),
                           "--quiet"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    m = _metrics(out)
    rmse = m["model"]["rmse"]
    assert rmse < m["baselines"]["last value"]["rmse"]
    assert rmse < m["baselines"]["seasonal naive"]["rmse"]
    assert all(math.isfinite(v) for v in m["model"].values())
    assert "last value" in proc.stdout and "seasonal naive" in proc.stdout
    for f in ("model.safetensors", "config.json", "history.csv", "loss.png", "predictions.png",
              "forecast.png"):
        assert (out / f).is_file(), f


@pytest.mark.parametrize("name", ["sine", "adder", "seeded", "sunspots"])
def test_demo_help_lists_every_demo(name):
    proc = subprocess.run([sys.executable, "-m", "rnnkit", "demo", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and name in proc.stdout
