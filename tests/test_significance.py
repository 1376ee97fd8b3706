"""The Diebold–Mariano test behind the verdict: its t tail, its size under the null, its power,
and the sentences and findings built on it. Pure numpy, seeded, no training."""

from __future__ import annotations

import doctest
import math
from types import SimpleNamespace

import numpy as np
import pytest

from rnnkit.errors import DataError
from rnnkit.evaluate import significance
from rnnkit.evaluate.findings.base import Subject
from rnnkit.evaluate.findings.skill import check_skill
from rnnkit.evaluate.scoring import score, significance_note, verdict
from rnnkit.evaluate.significance import (
    compare,
    diebold_mariano,
    long_run_variance,
    loss_differential,
    regularized_beta,
    student_t_two_sided,
)

REPLICATIONS = 200


def test_docstring_examples_run() -> None:
    assert doctest.testmod(significance, raise_on_error=True).attempted >= 2


# --- the t tail without scipy -------------------------------------------------------------------
@pytest.mark.parametrize("t", [0.0, 0.3, 1.0, 2.5, 12.0, -4.0])
def test_t_tail_matches_the_closed_forms(t: float) -> None:
    cauchy = 1 - 2 / math.pi * math.atan(abs(t))  # df = 1
    two = 1 - abs(t) / math.sqrt(2 + t * t)  # df = 2
    assert student_t_two_sided(t, 1) == pytest.approx(cauchy, abs=1e-12)
    assert student_t_two_sided(t, 2) == pytest.approx(two, abs=1e-12)
    normal = math.erfc(abs(t) / math.sqrt(2))  # df -> infinity
    assert student_t_two_sided(t, 1e7) == pytest.approx(normal, rel=1e-5, abs=1e-12)


def test_t_tail_known_values() -> None:
    assert student_t_two_sided(2.0, 10) == pytest.approx(0.0733880, abs=1e-6)
    assert student_t_two_sided(2.228139, 10) == pytest.approx(0.05, abs=1e-6)
    assert student_t_two_sided(1.983972, 100) == pytest.approx(0.05, abs=1e-6)
    assert student_t_two_sided(math.inf, 5) == 0.0


@pytest.mark.parametrize("a, b", [(0.5, 0.5), (2.0, 3.0), (30.0, 0.5), (0.5, 200.0)])
def test_incomplete_beta_identities(a: float, b: float) -> None:
    for x in (0.01, 0.2, 0.5, 0.9, 0.999):
        assert regularized_beta(x, a, b) == pytest.approx(1 - regularized_beta(1 - x, b, a),
                                                          abs=1e-12)
        assert regularized_beta(x, a, 1.0) == pytest.approx(x**a, rel=1e-10)
    assert regularized_beta(0.0, a, b) == 0.0 and regularized_beta(1.0, a, b) == 1.0


# --- size and power -------------------------------------------------------------------------------
def _overlapping_errors(rng: np.random.Generator, n: int, h: int, sd: float) -> np.ndarray:
    """Errors (n, h) of h-step forecasts from consecutive origins: step k's error sums the
    innovations of rows t+1..t+k, so neighbouring forecasts share errors (MA(h-1) differentials)."""
    u = rng.normal(0, sd, n + h)
    return np.stack([np.cumsum(u[t + 1 : t + 1 + h]) for t in range(n)])


def _rejection_rate(h: int, n: int, seed: int) -> tuple[float, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = np.empty(REPLICATIONS)
    for i in range(REPLICATIONS):
        truth = rng.normal(0, 5, (n, h))
        a = truth + _overlapping_errors(rng, n, h, 1.0)  # two forecasts of equal skill
        b = truth + _overlapping_errors(rng, n, h, 1.0)
        p[i] = compare(truth, a, b, horizon=h).p_value
    return float(np.mean(p < 0.05)), p


@pytest.mark.parametrize("h, n", [(1, 100), (4, 200)])
def test_p_value_is_uniform_under_the_null(h: int, n: int) -> None:
    rate, p = _rejection_rate(h, n, seed=20 + h)
    assert 0.02 <= rate <= 0.09, rate
    assert np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()
    deciles = np.histogram(p, bins=10, range=(0, 1))[0]
    assert deciles.min() >= 8 and deciles.max() <= 34, deciles  # 20 expected in each


def test_p_value_is_small_when_one_forecast_is_clearly_better() -> None:
    rng = np.random.default_rng(5)
    truth = rng.normal(0, 5, (100, 1))
    good = truth + rng.normal(0, 1.0, truth.shape)
    poor = truth + rng.normal(0, 2.0, truth.shape)  # twice the error
    r = compare(truth, good, poor)
    assert r.p_value < 1e-3 and r.statistic < 0 and r.significant()
    flipped = compare(truth, poor, good)
    assert flipped.statistic == pytest.approx(-r.statistic)
    assert flipped.p_value == pytest.approx(r.p_value)


def test_loss_differential_averages_each_origin_and_its_mean_is_the_mse_gap() -> None:
    rng = np.random.default_rng(1)
    y, a, b = (rng.normal(size=(30, 3, 2)) for _ in range(3))
    d = loss_differential(y, a, b)
    assert d.shape == (30,)
    assert d.mean() == pytest.approx(np.mean((a - y) ** 2) - np.mean((b - y) ** 2))
    with pytest.raises(DataError, match="same shape"):
        loss_differential(y, a, b[:, :2])


def test_edge_cases() -> None:
    few = diebold_mariano([1.0, -2.0])
    assert math.isnan(few.p_value) and few.test_points == 2 and not few.tested
    same = compare(np.zeros(10), np.ones(10), np.ones(10))
    assert same.p_value == 1.0 and same.statistic == 0.0
    always = diebold_mariano(np.full(10, -0.5))
    assert always.p_value == 0.0 and always.statistic == -math.inf
    assert diebold_mariano(np.ones(10), horizon=50).horizon == 5  # capped at N // 2
    with pytest.raises(DataError, match="horizon"):
        diebold_mariano(np.ones(10), horizon=0)


def test_a_negative_window_sum_falls_back_to_newey_west_weights() -> None:
    d = 0.1 + np.tile([1.0, -1.0], 20)  # lag-1 autocovariance -γ_0: γ_0 + 2γ_1 < 0
    assert 0 < long_run_variance(d, 1) < 0.1
    assert long_run_variance(d, 1) == pytest.approx(float(np.var(d)) * (1 + (39 / 40) * -1))
    r = diebold_mariano(d, horizon=2)
    assert math.isfinite(r.statistic) and 0 <= r.p_value <= 1


# --- what score stores and the verdict says -------------------------------------------------------
def _scored(model_sd: float, base_sd: float, n: int = 200, seed: int = 3,
            horizon: int | None = None) -> dict:
    rng = np.random.default_rng(seed)
    truth = rng.normal(10, 5, (n, 1, 1))
    pred = truth + rng.normal(0, model_sd, truth.shape)
    base = {"last value": truth + rng.normal(0, base_sd, truth.shape),
            "mean": np.full(truth.shape, 10.0)}
    return score(truth, pred, base, horizon=horizon)


def test_score_stores_the_test_against_the_best_baseline() -> None:
    m = _scored(1.0, 1.5)
    v = m["verdict"]
    assert v["baseline"] == "last value" and v["test_points"] == 200 and v["horizon"] == 1
    assert v["p_value"] < 1e-3 and v["statistic"] < 0
    assert set(v["p_values"]) == {"last value", "mean"} and v["p_values"]["mean"] < 1e-3
    assert {"baseline", "p_value", "statistic", "test_points"} <= set(v)
    rng = np.random.default_rng(0)
    y = rng.normal(size=(40, 6, 2))
    assert score(y, y + 0.1, {"last value": y + 0.2})["verdict"]["horizon"] == 6  # (N, H, O)
    assert score(y, y + 0.1, {"last value": y + 0.2}, horizon=1)["verdict"]["horizon"] == 1


def test_verdict_sentences_quote_rmse_p_and_test_points() -> None:
    better = _scored(1.0, 1.5)
    s = verdict(better)
    assert s.startswith("The model beats every baseline on RMSE (")
    assert "for last value" in s and "p < 0.001 over 200 test points, significant at 5%" in s
    worse = verdict(_scored(1.5, 1.0))
    assert worse.startswith("Warning: the model is worse than the 'last value' baseline on RMSE")
    assert "p < 0.001 over 200 test points" in worse
    tie = _scored(1.0, 1.03, n=60, seed=8)
    p = tie["verdict"]["p_value"]
    assert p >= 0.05, p
    assert verdict(tie).startswith("No significant difference between the model and the 'last "
                                   "value' baseline on RMSE (")
    assert f"p = {p:.2g} over 60 test points" in verdict(tie)
    assert "Diebold-Mariano" in significance_note(tie)


def test_verdict_with_too_few_test_points_does_not_claim_a_winner() -> None:
    one = _scored(1.0, 1.5, n=1)
    assert one["verdict"]["p_value"] is None
    assert verdict(one).startswith("On only 1 test point the model's RMSE is ")
    assert verdict(one).endswith("too few to tell whether either is better.")


def test_a_tie_is_still_a_tie_and_old_metrics_keep_the_old_sentence() -> None:
    m = _scored(1.0, 1.5)
    m["baselines"]["last value"]["rmse"] = m["model"]["rmse"] * 1.0005
    assert verdict(m).startswith("The model matches the 'last value' baseline on RMSE")
    old = _scored(1.0, 1.5)
    del old["verdict"]  # a metrics.json written before the test
    assert verdict(old).startswith("The model beats every baseline on RMSE (")
    assert verdict(old).endswith("% lower).")


# --- the doctor ---------------------------------------------------------------------------------
def _subject(metrics: dict) -> Subject:
    run = SimpleNamespace(config={}, history=[], pipeline=None, data=None, evaluation=None,
                          kind="series")
    return Subject(run, metrics)


def _ar_metrics(p: float | None, ar: float = 9.0) -> dict:
    metrics = {"model": {"rmse": 10.0},
               "baselines": {"mean": {"rmse": 40.0}, "last value": {"rmse": 20.0},
                             "linear AR(8)": {"rmse": ar}}}
    metrics["verdict"] = {"baseline": "linear AR(8)", "p_value": p, "statistic": 1.0,
                          "test_points": 50, "horizon": 1,
                          "p_values": {"linear AR(8)": p, "mean": 0.0, "last value": 0.0}}
    return metrics


def test_baseline_better_only_when_significant() -> None:
    found = {f.code: f for f in check_skill(_subject(_ar_metrics(0.01)))}
    assert "baseline-better" in found and found["baseline-better"].evidence["p_value"] == 0.01
    assert "not-significant" not in found
    noise = {f.code: f for f in check_skill(_subject(_ar_metrics(0.3)))}
    assert "baseline-better" not in noise
    note = noise["not-significant"]
    assert note.severity == "info" and "p = 0.3 over 50 test points" in note.message
    few = {f.code: f for f in check_skill(_subject(_ar_metrics(None, ar=9.8)))}
    assert set(few) == {"not-significant"}
    assert "only 50 test points" in few["not-significant"].message
    old = _ar_metrics(None)
    del old["verdict"]  # metrics from before the test: the 5% rule alone, as before
    assert {f.code for f in check_skill(_subject(old))} == {"baseline-better"}
