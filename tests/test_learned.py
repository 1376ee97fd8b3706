"""Probabilistic training (issue 12, item 2): ``--loss gaussian|student_t`` and ``--quantiles``.
The intervals come from the distribution the model learned, are scored with the same coverage
figures, and a CRPS or pinball loss stands beside RMSE."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import norm

import rnnkit
from rnnkit.evaluate.learned import GRID, Predicted, levels
from rnnkit.models import distributions

FAST = {"epochs": 3, "hidden_size": 8, "quiet": True, "seed": 0, "window": 8}


def _ar1(n: int, seed: int = 0, noise: str = "gaussian") -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = rng.normal(size=n) if noise == "gaussian" else rng.standard_t(3, size=n)
    y = np.zeros(n)
    for t in range(1, n):
        y[t] = 0.7 * y[t - 1] + e[t]
    return y


@pytest.fixture(scope="module")
def gaussian_run() -> rnnkit.Run:
    return rnnkit.fit(_ar1(14_000), loss="gaussian", **FAST)


# --- the heads ------------------------------------------------------------------------------
def test_gaussian_loss_is_the_negative_log_likelihood():
    point, target = torch.tensor([[[0.5]]]), torch.tensor([[[1.5]]])
    raw = torch.tensor([[[[0.3]]]])
    s = float(torch.nn.functional.softplus(raw)) + distributions.MIN_SCALE
    got = distributions.loss_value("gaussian", (), point, raw, target, None)
    # the constant 0.5 log(2 pi) is left out: it moves no gradient
    assert float(got) == pytest.approx(np.log(s) + 0.5 * (1.0 / s) ** 2, rel=1e-6)


def test_learned_quantiles_never_cross():
    rng = np.random.default_rng(0)
    point = torch.from_numpy(rng.normal(size=(50, 1, 1)))
    extra = torch.from_numpy(10 * rng.normal(size=(50, 1, 1, 4)))
    q = distributions.quantile_values(point, extra, (0.05, 0.1, 0.9, 0.95)).numpy()
    assert q.shape == (50, 1, 1, 5)
    assert (np.diff(q, axis=-1) > 0).all()
    np.testing.assert_array_equal(q[..., 2], point.numpy())  # the median is the point


def test_crps_matches_the_gaussian_closed_form():
    rng = np.random.default_rng(1)
    n = 2000
    point, raw = rng.normal(size=(n, 1, 1)), rng.normal(size=(n, 1, 1, 1))
    sigma = np.logaddexp(0.0, raw[..., 0]) + distributions.MIN_SCALE
    y = point + sigma * rng.normal(size=(n, 1, 1)) * 1.3
    pred = Predicted("gaussian", (), point, raw, False, lambda r: r)
    z = (y - point) / sigma
    closed = np.mean(sigma * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / np.sqrt(np.pi)))
    assert pred.scores(y)["crps"] == pytest.approx(closed, rel=0.01)
    assert len(GRID) == 100


def test_differenced_steps_add_their_offsets_in_quadrature():
    point = np.zeros((1, 3, 1))
    raw = np.full((1, 3, 1, 1), 0.5)
    s = np.logaddexp(0.0, 0.5) + distributions.MIN_SCALE
    q = distributions.quantile("gaussian", (), point, raw, 0.9, diff=True)
    # after integration (cumsum) the k-step offset is z * s * sqrt(k)
    np.testing.assert_allclose(np.cumsum(q[0, :, 0]), norm.ppf(0.9) * s * np.sqrt([1, 2, 3]))


def test_pinball_levels_come_from_the_learned_quantiles():
    cfg = {"data": {"levels": [80, 95]}, "model": {"loss": "pinball",
                                                   "quantiles": [0.05, 0.1, 0.9, 0.95]}}
    assert levels(cfg) == (80, 90)  # 95 would need 0.025 and 0.975
    cfg["data"]["levels"] = []
    assert levels(cfg) == ()


# --- fitted on known noise ------------------------------------------------------------------
def test_gaussian_head_learns_the_noise_and_covers(gaussian_run):
    found = gaussian_run.metrics["intervals"]
    assert gaussian_run.config["intervals"]["method"] == "learned gaussian"
    for level in ("80", "95"):
        model = found[level]["model"]
        assert model["points"] >= 2000
        assert abs(100 * model["coverage"] - int(level)) <= 3.0, (level, model)
    # unit noise: the 95% interval is about 2 * 1.96 wide
    assert 3.5 < found["95"]["model"]["width"] < 4.4
    crps = gaussian_run.metrics["probabilistic"]["crps"]
    # the mean CRPS of N(mu, 1) at its own draws is 1 / sqrt(pi) = 0.564
    assert 0.53 < crps < 0.62
    assert "CRPS" in gaussian_run.table()


def test_forecast_paths_widen_towards_the_stationary_spread(gaussian_run):
    f = gaussian_run.forecast(40)
    width = (f["value_hi95"] - f["value_lo95"]).to_numpy()
    assert 3.4 < width[0] < 4.6  # one step: the noise
    # far ahead: the AR(1)'s own spread, 1.96 * 2 / sqrt(1 - 0.49) = 5.49
    assert 4.6 < width[-5:].mean() < 6.4
    assert ((f["value_lo80"] < f["value"]) & (f["value"] < f["value_hi80"])).all()
    again = gaussian_run.forecast(40)  # seeded paths: the same answer twice
    pd.testing.assert_frame_equal(f, again)


def test_student_t_head_learns_heavy_tails():
    run = rnnkit.fit(_ar1(14_000, noise="t"), loss="student_t", **FAST)
    found = run.metrics["intervals"]
    for level in ("80", "95"):
        assert abs(100 * found[level]["model"]["coverage"] - int(level)) <= 3.0
    pairs = run.pipeline.pairs(run.data, "test")
    with torch.no_grad():
        _, _, extra = run.model(pairs.rows(0, 500).inputs, params=True)
    df = 2 + torch.nn.functional.softplus(extra[..., 1])
    assert float(df.median()) < 8  # t(3) noise: heavy tails, far from Gaussian


def test_quantile_head_covers_between_its_quantiles(tmp_path):
    run = rnnkit.fit(_ar1(14_000), quantiles=(0.1, 0.5, 0.9), out=tmp_path / "q", **FAST)
    found = run.metrics["intervals"]
    assert set(found) == {"80"}  # 95% lies outside the learned quantiles
    assert abs(100 * found["80"]["model"]["coverage"] - 80) <= 3.0
    assert run.metrics["probabilistic"]["quantiles"] == [0.1, 0.5, 0.9]
    new = pd.DataFrame({"value": _ar1(300, seed=1)})
    a, b = run.predict(new), rnnkit.load(tmp_path / "q").predict(new)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == ["value", "value_lo80", "value_hi80"]
    pd.testing.assert_frame_equal(run.forecast(5), rnnkit.load(tmp_path / "q").forecast(5))


def test_a_panel_learns_each_series_spread():
    frames = [pd.DataFrame({"unique_id": f"s{i}", "ds": np.arange(800),
                            "y": scale * _ar1(800, seed=20 + i)})
              for i, scale in enumerate((1.0, 50.0))]
    df = pd.concat(frames)
    run = rnnkit.fit(df, loss="gaussian", **FAST)
    pred = run.predict(df)
    width = (pred["y_hi80"] - pred["y_lo80"]).groupby(pred["unique_id"]).mean()
    assert 25 < width["s1"] / width["s0"] < 100
    fc = run.forecast(3)
    assert {"y_lo95", "y_hi95"} <= set(fc.columns) and len(fc) == 6
    from rnnkit.kinds.panel import plot_series

    shown = plot_series(run)
    assert all(set(s["bands"]) == {80, 95} and len(s["bands"][95][0]) == len(s["pred"])
               for s in shown)


# --- the command line -----------------------------------------------------------------------
def test_cli_loss_and_quantiles(tmp_path):
    csv = tmp_path / "ar.csv"
    pd.DataFrame({"y": _ar1(2000)}).to_csv(csv, index=False)
    base = [sys.executable, "-m", "rnnkit", "fit", str(csv), "--epochs", "2",
            "--hidden-size", "8", "--window", "8", "--quiet"]
    done = subprocess.run([*base, "--out", str(tmp_path / "g"), "--loss", "gaussian"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "CRPS " in done.stdout and "95% interval: model covers" in done.stdout
    html = (tmp_path / "g" / "report.html").read_text()
    assert "CRPS " in html and "Prediction intervals (test part)" in html
    metrics = json.loads((tmp_path / "g" / "metrics.json").read_text())
    assert metrics["probabilistic"]["loss"] == "gaussian"
    for bad, word in ((["--quantiles", "0.1,1.5"], "quantiles"),
                      (["--loss", "gaussian", "--quantiles", "0.1,0.9"], "quantiles"),
                      (["--loss", "poisson"], "loss")):
        out = tmp_path / "bad"
        done = subprocess.run([*base, "--out", str(out), *bad], capture_output=True,
                              text=True, timeout=300, check=False)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert word in done.stderr and "Traceback" not in done.stderr
        assert not out.exists()


def test_sequence_runs_refuse_a_distribution_loss():
    seqs = [np.arange(n, dtype=float) for n in range(3, 40)]
    with pytest.raises(rnnkit.ConfigError, match="sequence run"):
        rnnkit.fit(seqs, [s.sum() for s in seqs], loss="gaussian", **FAST)
