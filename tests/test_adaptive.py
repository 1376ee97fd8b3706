"""Adaptive intervals (issue 12, item 1: series whose volatility changes): studentised conformal
scores with an online level. They must keep their coverage through a change of regime, where a
fixed split-conformal interval does not, and never read a truth before it is known."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import rnnkit
from rnnkit.evaluate import adaptive
from rnnkit.evaluate.intervals import calibrate as split_calibrate

# the simulated series benchmarks/coverage.py measures (loaded by path: "coverage" is also the
# name of a well-known package)
_spec = importlib.util.spec_from_file_location(
    "coverage_bench", Path(__file__).resolve().parents[1] / "benchmarks" / "coverage.py")
_bench = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(_bench)  # type: ignore[union-attr]
garch_walk = _bench.garch_walk

FAST = {"epochs": 3, "hidden_size": 8, "quiet": True, "seed": 0}


def _regimes(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Validation errors of unit scale; test errors calm (1) for 1,000 rows, then wild (4)."""
    rng = np.random.default_rng(seed)
    val = rng.normal(size=500)
    test = np.r_[rng.normal(size=1000), 4 * rng.normal(size=1000)]
    return val[:, None, None], test[:, None, None]


def _cover(truth: np.ndarray, bounds: dict, level: int, rows: slice = slice(None)) -> float:
    lo, hi = bounds[level]
    return float(np.mean((truth[rows] >= lo[rows]) & (truth[rows] <= hi[rows])))


def test_adaptive_intervals_keep_their_level_through_a_change_of_regime():
    val, test = _regimes()
    one = np.ones((len(val), 1))
    cal = adaptive.calibrate(val, np.zeros_like(val), (80, 95), np.zeros(len(val), int), one)
    bounds = cal.online(np.zeros_like(test), test, np.zeros(len(test), int),
                        np.ones((len(test), 1)))
    fixed = split_calibrate(val, np.zeros_like(val), (80, 95)).bounds(np.zeros_like(test))
    wild = slice(1000, 2000)
    for level in (80, 95):
        assert abs(_cover(test, bounds, level) - level / 100) <= 0.03
        assert _cover(test, bounds, level, wild) >= level / 100 - 0.06
        # the fixed interval, calibrated on the calm part, misses most of the wild part
        assert _cover(test, fixed, level, wild) < level / 100 - 0.25


def test_an_interval_never_reads_a_truth_not_yet_known():
    rng = np.random.default_rng(1)
    val, test = rng.normal(size=(300, 2, 1)), rng.normal(size=(200, 2, 1))
    one = np.ones((300, 1))
    cal = adaptive.calibrate(val, np.zeros_like(val), (80,), np.zeros(300, int), one)
    scale = np.ones((200, 1))
    before = cal.online(np.zeros_like(test), test, np.zeros(200, int), scale)[80][1]
    for step in (0, 1):  # origin 100's truth of step k+1 is row 101 + k, known at origin 101 + k
        changed = test.copy()
        changed[100, step] *= 50
        after = cal.online(np.zeros_like(test), changed, np.zeros(200, int), scale)[80][1]
        np.testing.assert_array_equal(after[: 101 + step], before[: 101 + step])
        assert not np.array_equal(after[101 + step :], before[101 + step :])


def test_groups_learn_from_their_own_errors_only():
    rng = np.random.default_rng(2)
    val = rng.normal(size=(400, 1, 1))
    cal = adaptive.calibrate(val, np.zeros_like(val), (80,), np.repeat([0, 1], 200),
                             np.ones((400, 1)))
    calm, wild = rng.normal(size=(300, 1, 1)), 10 * rng.normal(size=(300, 1, 1))
    truth = np.concatenate([calm, wild])
    bounds = cal.online(np.zeros_like(truth), truth, np.repeat([0, 1], 300),
                        np.ones((600, 1)))
    width = bounds[80][1][:, 0, 0] - bounds[80][0][:, 0, 0]
    assert width[:300].mean() * 5 < width[300:].mean()  # calm series stays narrow
    assert abs(_cover(truth, bounds, 80, slice(0, 300)) - 0.8) <= 0.05
    assert abs(_cover(truth, bounds, 80, slice(300, 600)) - 0.8) <= 0.05


def test_a_garch_walk_fit_covers_its_test_part():
    run = rnnkit.fit(garch_walk(3000, seed=3), window=8, **FAST)
    assert run.config["intervals"]["method"] == "adaptive"
    found = run.metrics["intervals"]
    assert found["80"]["model"]["points"] >= 400
    for level in ("80", "95"):
        assert abs(found[level]["model"]["coverage"] - int(level) / 100) <= 0.05
    # studentised intervals are narrower where it is calm: a better interval score
    assert found["95"]["model"]["winkler"] < found["95"]["last value"]["winkler"]


def test_forecast_intervals_follow_the_volatility_at_the_end(tmp_path):
    rng = np.random.default_rng(4)
    calm = np.cumsum(rng.normal(size=1500)) + 100
    run = rnnkit.fit(calm, window=8, out=tmp_path / "r", **FAST)
    wild = np.r_[calm, calm[-1] + np.cumsum(8 * rng.normal(size=60))]

    def width(data: np.ndarray | None) -> float:
        fc = run.forecast(5, data=None if data is None else pd.DataFrame({"value": data}))
        return float((fc["value_hi80"] - fc["value_lo80"]).iloc[0])

    assert width(wild) > 3 * width(calm)
    # from the saved tail the volatility is the fitted data's: the same as with that data
    loaded = rnnkit.load(tmp_path / "r")
    fc = loaded.forecast(5)
    assert float((fc["value_hi80"] - fc["value_lo80"]).iloc[0]) == pytest.approx(width(calm))


def test_split_method_stays_available_and_saved_bounds_survive_load(tmp_path):
    y = np.sin(np.arange(800) / 6) + 0.1 * np.random.default_rng(5).normal(size=800)
    run = rnnkit.fit(y, window=12, intervals="split", out=tmp_path / "s", **FAST)
    assert run.config["intervals"]["method"] == "split"
    assert "kind" not in run.config["intervals"]["direct"]
    run2 = rnnkit.fit(y, window=12, out=tmp_path / "a", **FAST)
    a, b = run2.predict(pd.DataFrame({"value": y})), rnnkit.load(tmp_path / "a").predict(
        pd.DataFrame({"value": y}))
    pd.testing.assert_frame_equal(a, b)
