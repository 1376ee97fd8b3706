"""Prediction intervals (issue 12, item 1): split-conformal half-widths from the validation part,
columns in predict and forecast, coverage figures in the metrics, the same after load."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import rnnkit
from rnnkit.config import interval_levels
from rnnkit.errors import ConfigError
from rnnkit.evaluate.intervals import Calibration, calibrate, interval_scores

FAST = {"epochs": 3, "hidden_size": 8, "quiet": True, "seed": 0}


def _ar1(n: int, phi: float = 0.7, sigma: float = 1.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = rng.normal(0.0, sigma, n)
    y = np.zeros(n)
    for t in range(1, n):
        y[t] = phi * y[t - 1] + e[t]
    return y


# --- the conformal rule ---------------------------------------------------------------------
def test_half_width_is_the_conformal_rank_of_the_absolute_residuals():
    residuals = np.arange(1, 101, dtype=float)[:, None, None]  # |r| = 1..100, n = 100
    cal = calibrate(residuals, np.zeros_like(residuals), (80, 95))
    # ceil(101 * 0.8) = 81st and ceil(101 * 0.95) = 96th smallest
    assert cal.widths[:, 0, 0].tolist() == [81.0, 96.0]
    assert cal.points == 100


def test_too_few_points_give_the_widest_interval_the_data_allows():
    r = np.array([3.0, -1.0, 2.0])[:, None, None]
    cal = calibrate(r, np.zeros_like(r), (95,))
    assert cal.widths[0, 0, 0] == 3.0


def test_steps_past_the_calibrated_ones_widen_as_the_square_root():
    cal = Calibration([80], np.array([[[1.0], [2.0]]]), 50)
    w = cal.half_widths(8)[0, :, 0]
    assert w[:2].tolist() == [1.0, 2.0]
    assert w[7] == pytest.approx(2.0 * np.sqrt(8 / 2))
    assert np.all(np.diff(w) >= 0)


def test_per_series_widths_scale_with_each_series():
    pred = np.zeros((2, 1, 1))
    cal = Calibration([80], np.array([[[1.5]]]), 10, per_series=True)
    lo, hi = cal.bounds(pred, scale=np.array([[1.0], [100.0]]))[80]
    assert hi[:, 0, 0].tolist() == [1.5, 150.0] and lo[:, 0, 0].tolist() == [-1.5, -150.0]


def test_interval_score_charges_misses_by_the_level():
    s = interval_scores(np.array([0.0, 5.0]), np.array([-1.0, -1.0]), np.array([1.0, 1.0]), 80)
    assert s["coverage"] == 0.5 and s["width"] == 2.0
    assert s["winkler"] == pytest.approx(2.0 + (2 / 0.2) * 4.0 / 2)


def test_levels_are_parsed_and_checked():
    assert interval_levels("95,80") == (80, 95)
    assert interval_levels("none") == () and interval_levels(None) == ()
    with pytest.raises(ConfigError, match="whole percent"):
        interval_levels("80,100")
    with pytest.raises(ConfigError, match="not a number"):
        interval_levels("eighty")


# --- coverage on a series of known noise -----------------------------------------------------
@pytest.fixture(scope="module")
def ar_run() -> rnnkit.Run:
    # 14,000 rows: the default split leaves 2,100 validation and 2,100 test forecasts
    return rnnkit.fit(_ar1(14_000), window=8, **FAST)


def test_ar1_intervals_cover_at_their_level_within_3_points(ar_run):
    found = ar_run.metrics["intervals"]
    for level in ("80", "95"):
        model = found[level]["model"]
        assert model["points"] >= 2000
        assert abs(100 * model["coverage"] - int(level)) <= 3.0, (level, model)
    # an AR(1) with unit noise: a 95% interval is about 2 * 1.96 wide when the model is right
    assert 3.2 < found["95"]["model"]["width"] < 4.8
    # the naive interval (last value) is wider, and scores worse
    assert found["95"]["last value"]["width"] > found["95"]["model"]["width"]
    assert found["95"]["last value"]["winkler"] > found["95"]["model"]["winkler"]


def test_predict_and_forecast_carry_the_bounds(ar_run):
    pred = ar_run.predict(_ar1(300, seed=1))
    assert list(pred.columns) == ["value", "value_lo80", "value_hi80", "value_lo95",
                                  "value_hi95"]
    v = pred.to_numpy()
    assert (v[:, 3] < v[:, 1]).all() and (v[:, 1] < v[:, 0]).all()
    assert (v[:, 0] < v[:, 2]).all() and (v[:, 2] < v[:, 4]).all()
    f = ar_run.forecast(30)
    width = (f["value_hi95"] - f["value_lo95"]).to_numpy()
    assert width[-1] > width[0]  # uncertainty grows with the steps rolled ahead
    assert ((f["value_lo80"] < f["value"]) & (f["value"] < f["value_hi80"])).all()


def test_levels_none_turns_intervals_off():
    run = rnnkit.fit(_ar1(400), window=8, levels="none", **FAST)
    assert "intervals" not in run.metrics and "intervals" not in run.config
    assert list(run.forecast(3).columns) == ["value"]


def test_horizon_columns_name_each_step_and_the_intervals_survive_load(tmp_path):
    run = rnnkit.fit(_ar1(600), window=8, horizon=2, levels=(90,), out=tmp_path / "r", **FAST)
    pred = run.predict(_ar1(100, seed=2))
    assert list(pred.columns) == ["value_t+1", "value_t+1_lo90", "value_t+1_hi90",
                                  "value_t+2", "value_t+2_lo90", "value_t+2_hi90"]
    loaded = rnnkit.load(tmp_path / "r")
    again = loaded.predict(_ar1(100, seed=2))
    assert np.array_equal(pred.to_numpy(), again.to_numpy())
    assert np.array_equal(run.forecast(5).to_numpy(), loaded.forecast(5).to_numpy())
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert set(metrics["intervals"]) == {"90"}


@pytest.mark.parametrize("method", ["adaptive", "split"])
def test_a_panel_gets_per_series_intervals(method):
    frames = []
    for i, scale in enumerate((1.0, 100.0)):
        frames.append(pd.DataFrame({"unique_id": f"s{i}", "ds": np.arange(400),
                                    "y": scale * _ar1(400, seed=10 + i) + 50 * scale}))
    df = pd.concat(frames)
    run = rnnkit.fit(df, window=8, intervals=method, **FAST)
    direct = run.config["intervals"]["direct"]
    if method == "split":
        assert direct["per_series"] is True
    else:  # each series' volatility now, in its own units
        sigma = np.array(direct["sigma"])[:, 0]
        assert sigma.shape == (2,) and 50 < sigma[1] / sigma[0] < 200
    pred = run.predict(df)
    width = (pred["y_hi80"] - pred["y_lo80"]).groupby(pred["unique_id"]).mean()
    assert 50 < width["s1"] / width["s0"] < 200  # each series' interval in its own units
    fc = run.forecast(4)
    assert {"y_lo95", "y_hi95"} <= set(fc.columns) and len(fc) == 8
    # the panel plot draws the same bands around its held-out forecasts
    from rnnkit.kinds.panel import plot_series

    for shown in plot_series(run):
        lo, hi = shown["bands"][80]
        assert set(shown["bands"]) == {80, 95} and (lo <= shown["pred"]).all()
        assert (shown["pred"] <= hi).all() and (hi - lo).min() > 0
    assert run.metrics["intervals"]["80"]["model"]["points"] > 0


def test_cli_levels_and_interval_columns(tmp_path):
    csv = tmp_path / "ar.csv"
    pd.DataFrame({"y": _ar1(500)}).to_csv(csv, index=False)
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "rnnkit", "fit", str(csv), "--out", str(run_dir),
           "--epochs", "2", "--hidden-size", "8", "--window", "8", "--levels", "90", "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "90% interval: model covers" in done.stdout
    out = tmp_path / "fc.csv"
    done = subprocess.run([sys.executable, "-m", "rnnkit", "forecast", str(run_dir), "--steps",
                           "5", "--out", str(out)], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert list(pd.read_csv(out).columns)[1:] == ["y", "y_lo90", "y_hi90"]
    cmd[cmd.index("90")] = "120"
    cmd[cmd.index(str(run_dir))] = str(tmp_path / "bad")
    bad = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "levels" in bad.stderr
    assert not (tmp_path / "bad").exists()


def test_report_draws_the_interval_table(tmp_path):
    run = rnnkit.fit(_ar1(500), window=8, out=tmp_path / "r", **FAST)
    html = Path(tmp_path / "r" / "report.html").read_text()
    assert "Prediction intervals (test part)" in html and "last value" in html
    del run
