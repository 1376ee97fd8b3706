"""Tests of the ETS baseline (rnnkit.evaluate.ets): theory on known processes, no look-ahead,
agreement with statsmodels' own forecasts, and fits that never break on odd data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import rnnkit
from rnnkit.evaluate import ets, scoring
from rnnkit.models import ets as ets_model

TINY = {"epochs": 2, "hidden_size": 4, "quiet": True, "seed": 0}


def _local_level(n: int, alpha: float, seed: int = 0, level: float = 100.0) -> np.ndarray:
    """y_t = l_{t-1} + e_t, l_t = l_{t-1} + alpha e_t: the process ETS(A,N,N) describes, whose
    best one-step forecast is the filtered level, with error variance sigma^2 = 1."""
    e = np.random.default_rng(seed).standard_normal(n)
    return level + np.concatenate([[0.0], np.cumsum(alpha * e)[:-1]]) + e


def _rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - truth) ** 2)))


def test_local_level_recovers_alpha_and_beats_last_value_as_theory_says() -> None:
    y = _local_level(3000, alpha=0.3)
    origins = np.arange(2000, 2999)
    out = ets.ets_forecasts(y, origins, 1, train_end=2000, period=None)
    fit = ets_model.select(y[:2000], None)
    assert fit is not None and fit.params["smoothing_level"] == pytest.approx(0.3, abs=0.05)
    assert out.name is not None and out.name.startswith("ETS(A,")
    truth = y[origins + 1]
    # theory: ETS errors are the innovations (variance 1); last value's y_{t+1} - y_t =
    # e_{t+1} - (1 - alpha) e_t has variance 1 + 0.7^2 = 1.49
    assert _rmse(out.forecasts[:, 0], truth) == pytest.approx(1.0, abs=0.06)
    assert _rmse(y[origins], truth) == pytest.approx(np.sqrt(1.49), abs=0.08)


def test_random_walk_ets_matches_last_value() -> None:
    y = 50 + np.cumsum(np.random.default_rng(1).standard_normal(1500))
    origins = np.arange(1000, 1499)
    out = ets.ets_forecasts(y, origins, 1, train_end=1000, period=None)
    assert out.forecasts is not None
    truth = y[origins + 1]
    assert _rmse(out.forecasts[:, 0], truth) == pytest.approx(_rmse(y[origins], truth), rel=0.02)


def test_changing_values_after_an_origin_leaves_earlier_forecasts_alone() -> None:
    t = np.arange(400.0)
    y = 10 + 0.05 * t + 3 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(2).normal(0, 0.5,
                                                                                     400)
    origins, cut = np.arange(299, 396), 340
    changed = y.copy()
    changed[cut + 1 :] += 1000.0  # the truth after origin `cut`
    a = ets.ets_forecasts(y, origins, 4, train_end=300, period=12)
    b = ets.ets_forecasts(changed, origins, 4, train_end=300, period=12)
    assert a.name == b.name and a.name.endswith(",A)")  # the season was chosen
    early = origins <= cut
    np.testing.assert_array_equal(a.forecasts[early], b.forecasts[early])
    assert not np.allclose(a.forecasts[~early], b.forecasts[~early])


def test_multi_step_forecasts_match_statsmodels_from_each_origin() -> None:
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    t = np.arange(300.0)
    y = 5 + 0.1 * t + 2 * np.cos(2 * np.pi * t / 7) + np.random.default_rng(3).normal(0, 0.3, 300)
    fit = ets_model.fit_form(y[:200], ets_model.Form("add", True, 7))
    assert fit is not None
    origins = np.array([199, 250, 280])
    mine = ets.forecast(y, origins, 10, fit)
    for row, o in enumerate(origins):
        model = ETSModel(y[: o + 1], error="add", trend="add", damped_trend=True,
                         seasonal="add", seasonal_periods=7, initialization_method="known",
                         initial_level=fit.level, initial_trend=fit.trend,
                         initial_seasonal=fit.seasonal)
        ref = model.smooth([fit.params[k] for k in model.param_names]).forecast(10)
        np.testing.assert_allclose(mine[row], np.asarray(ref), rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize(("y", "note"), [
    (np.full(60, 5.0), "constant"),
    (np.arange(12.0) ** 1.5, "training values"),
])
def test_constant_and_twelve_row_series_fit_without_ets_and_say_why(y: np.ndarray, note: str
                                                                     ) -> None:
    run = rnnkit.fit(pd.DataFrame({"y": y}), target="y", window=2, **TINY)
    assert not any(k.startswith("ETS") for k in run.metrics["baselines"])
    assert note in run.metrics["baseline_notes"][0]
    assert run.metrics["baseline_notes"][0] in run.table()


def test_odd_values_give_a_note_not_an_exception() -> None:
    y = _local_level(100, 0.5)
    y[30] = np.nan
    out = ets.ets_forecasts(y, np.arange(70, 99), 2, train_end=70, period=None)
    assert out.forecasts is None and "missing" in out.note


def test_label_in_fit_metrics_and_table(data_dir: Path) -> None:
    run = rnnkit.fit(data_dir / "nile_yearly.csv", target="flow_1e8_m3", window=8, **TINY)
    names = [k for k in run.metrics["baselines"] if k.startswith("ETS(")]
    assert len(names) == 1 and names[0] in run.table()
    assert "baseline_notes" not in run.metrics


def test_several_targets_model_each_column_on_its_own() -> None:
    a, b = _local_level(300, 0.3, seed=4), _local_level(300, 0.6, seed=5, level=-20.0)
    base = scoring.series_baselines(np.stack([a, b], axis=1), np.arange(250, 298), 2, 2,
                                    train_end=250, period=None, window=4,
                                    val_end=275)
    name = next(k for k in base if k.startswith("ETS("))
    assert base[name].shape == (48, 2, 2)
    alone = ets.ets_forecasts(b, np.arange(250, 298), 2, train_end=250, period=None)
    np.testing.assert_array_equal(base[name][:, :, 1], alone.forecasts)


def test_verdict_names_ets_when_it_is_the_best_baseline() -> None:
    # a slowly moving level under heavy noise: the last value is noisy, the mean misses the
    # moves, and a 2-value AR cannot average as widely as the fitted exponential smoothing
    y = _local_level(600, alpha=0.08, seed=6)
    run = rnnkit.fit(pd.DataFrame({"y": y}), target="y", window=2, transform="none", **TINY)
    best = run.metrics["verdict"]["baseline"]
    assert best.startswith("ETS(")
    assert f"'{best}'" in scoring.verdict(run.metrics)


@pytest.mark.parametrize("form", [ets_model.Form(None, False, None),
                                  ets_model.Form("add", False, None),
                                  ets_model.Form("add", True, None),
                                  ets_model.Form("add", True, 12)])
def test_window_weights_are_statsmodels_own_forecast_from_the_window(form) -> None:
    # the linear map over a window equals statsmodels filtering that window from the state
    # the map starts at (level = first value, trend = slope across it, season zero)
    rng = np.random.default_rng(3)
    y = np.cumsum(rng.normal(size=400)) + 5 * np.sin(np.arange(400) * 2 * np.pi / 12)
    fit = ets_model.fit_form(y[:300], form)
    assert fit is not None
    window = y[300:340]
    weights = ets_model.window_weights(fit, 40, 5)
    start = fit._replace(level=float(window[0]), trend=float((window[-1] - window[0]) / 39),
                         seasonal=np.zeros(form.period or 0))
    expected = ets.forecast(window, np.array([39]), 5, start)[0]
    np.testing.assert_allclose(weights @ window, expected, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-9)  # constants stay constant
