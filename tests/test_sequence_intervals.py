"""Prediction intervals of sequence runs (issue 12: every shape): split conformal on the
validation sequences, one half-width per target (seq2one) or per continuation step, bound
columns in predict, coverage in the metrics, the same after load, none with ``levels="none"``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import rnnkit
from rnnkit.errors import DataError

FAST = {"hidden_size": 8, "quiet": True, "seed": 0}
SIGMA = 0.5  # the noise on every sum: a perfect model's 95% interval is 2 * 1.96 * SIGMA wide


def _noisy_sums(n: int, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """n sequences of 2-8 values uniform in [-1, 1]; each target their sum plus N(0, SIGMA)."""
    rng = np.random.default_rng(seed)
    seqs = [rng.uniform(-1, 1, int(rng.integers(2, 9))) for _ in range(n)]
    return seqs, np.array([s.sum() for s in seqs]) + rng.normal(0.0, SIGMA, n)


def _ar_sequences(n: int, length: int = 8, seed: int = 0) -> np.ndarray:
    """(n, length) independent AR(1) paths, phi 0.8, noise 0.3."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, length))
    x[:, 0] = rng.normal(size=n)
    for t in range(1, length):
        x[:, t] = 0.8 * x[:, t - 1] + rng.normal(0.0, 0.3, n)
    return x


@pytest.fixture(scope="module")
def sums() -> rnnkit.Run:
    # 10,000 sequences split 40/30/30: 3,000 validation sequences calibrate, 3,000 test ones
    # measure the coverage (its standard error at 80% is then 0.7 points)
    seqs, y = _noisy_sums(10_000)
    return rnnkit.fit(seqs, target=y, cell="gru", epochs=8, split=(0.4, 0.3, 0.3), **FAST)


@pytest.fixture(scope="module")
def continued() -> rnnkit.Run:
    return rnnkit.fit(_ar_sequences(600), prompt_length=4, epochs=3, **FAST)


def test_seq2one_intervals_cover_at_their_level_within_3_points(sums: rnnkit.Run) -> None:
    found = sums.metrics["intervals"]
    for level in ("80", "95"):
        model = found[level]["model"]
        assert model["points"] == 3000
        assert abs(100 * model["coverage"] - int(level)) <= 3.0, (level, model)
    # the model learned the sum: its 95% interval is about as wide as the noise allows
    assert 2 * 1.96 * SIGMA <= found["95"]["model"]["width"] < 1.25 * 2 * 1.96 * SIGMA
    # the naive interval (training mean ± its own quantiles) is wider and scores worse
    assert found["95"]["mean"]["width"] > 2 * found["95"]["model"]["width"]
    assert found["95"]["mean"]["winkler"] > found["95"]["model"]["winkler"]
    # sequences have no time order: split conformal whatever the config's default says
    stored = sums.config["intervals"]
    assert stored["method"] == "split" and stored["direct"]["points"] == 3000
    assert np.shape(stored["direct"]["widths"]) == (2, 1, 1)


def test_seq2one_predict_carries_the_bounds(sums: rnnkit.Run) -> None:
    seqs, _ = _noisy_sums(50, seed=1)
    pred = sums.predict(seqs)
    assert isinstance(pred, pd.DataFrame) and pred.index.name == "sequence"
    assert list(pred.columns) == ["target", "target_lo80", "target_hi80", "target_lo95",
                                  "target_hi95"]
    v = pred.to_numpy()
    assert (v[:, 3] < v[:, 1]).all() and (v[:, 1] < v[:, 0]).all()
    assert (v[:, 0] < v[:, 2]).all() and (v[:, 2] < v[:, 4]).all()
    half = np.array(sums.config["intervals"]["direct"]["widths"])[:, 0, 0]
    np.testing.assert_allclose(v[:, 2] - v[:, 0], half[0])  # one half-width for every sequence
    assert "80% interval: model covers" in sums.table()


def test_a_continuation_run_gets_bounds_for_each_step(continued: rnnkit.Run) -> None:
    widths = np.array(continued.config["intervals"]["direct"]["widths"])
    assert widths.shape == (2, 4, 1)  # levels x the 4 steps after the 4-value prompt x 1
    assert (widths[1] >= widths[0]).all()
    pred = continued.predict(_ar_sequences(20, seed=1))
    assert list(pred.columns[:5]) == ["value_t+1", "value_t+1_lo80", "value_t+1_hi80",
                                      "value_t+1_lo95", "value_t+1_hi95"]
    assert pred.shape == (20, 4 * 5) and pred.columns[-1] == "value_t+4_hi95"
    for k in range(1, 5):
        point, lo, hi = (pred[f"value_t+{k}{s}"] for s in ("", "_lo80", "_hi80"))
        np.testing.assert_allclose(hi - point, widths[0, k - 1, 0])
        assert ((lo < point) & (point < hi)).all()
    # the continuation predicted is the one generate makes from the same prompts
    x = _ar_sequences(20, seed=1)
    gen = continued.generate(x[:, :4], 4)[..., 0]
    np.testing.assert_array_equal(pred[[f"value_t+{k}" for k in range(1, 5)]].to_numpy(), gen)
    points = continued.metrics["intervals"]["80"]["model"]["points"]
    assert points == 4 * continued.metrics["split"]["scored"]
    with pytest.raises(DataError, match="generate"):
        continued.predict(x[:, :4])  # prompts alone hold no continuation to predict


@pytest.mark.parametrize("name", ["sums", "continued"])
def test_saved_and_reloaded_runs_give_identical_intervals(name: str, request: pytest.FixtureRequest,
                                                          tmp_path) -> None:
    run = request.getfixturevalue(name)
    data = _noisy_sums(40, seed=2)[0] if name == "sums" else _ar_sequences(40, seed=2)
    folder = run.save(tmp_path / name, plots=False)
    loaded = rnnkit.load(folder)
    pd.testing.assert_frame_equal(loaded.predict(data), run.predict(data), check_exact=True)
    assert loaded.config["intervals"] == json.loads(json.dumps(run.config["intervals"]))
    assert json.loads((folder / "metrics.json").read_text())["intervals"].keys() == {"80", "95"}


def test_levels_none_gives_no_interval_columns() -> None:
    seqs, y = _noisy_sums(200)
    run = rnnkit.fit(seqs, target=y, epochs=1, levels="none", **FAST)
    assert "intervals" not in run.metrics and "intervals" not in run.config
    assert list(run.predict(seqs[:5]).columns) == ["target"]
