"""Tests of rnnkit.evaluate.baselines: hand-checked indices and training-only fitting."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from rnnkit.errors import ConfigError, DataError
from rnnkit.evaluate import baselines
from rnnkit.evaluate.baselines import fit_linear_ar, forecast_baselines, sequence_baselines


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def _ar1(rng: np.random.Generator, phi: float, n: int, level: float = 0.0) -> np.ndarray:
    noise = rng.standard_normal(n)
    y = np.zeros(n)
    for t in range(1, n):
        y[t] = phi * y[t - 1] + noise[t]
    return y + level


def test_mean_and_last_value() -> None:
    series = np.arange(10.0) * 10  # value = 10 * index, so indices are visible
    out = forecast_baselines(series, np.array([2, 7]), horizon=3, train_end=5)
    assert list(out) == ["mean", "last value"]
    np.testing.assert_array_equal(out["mean"], np.full((2, 3), 20.0))  # mean(0, 10, .., 40)
    np.testing.assert_array_equal(out["last value"], [[20.0] * 3, [70.0] * 3])


def test_seasonal_naive_indices_and_fallback() -> None:
    series = np.arange(10.0) * 10
    out = forecast_baselines(series, np.array([4, 1]), horizon=5, train_end=8, period=3)
    # origin 4: k = 1..5 -> indices 2, 3, 4, 2, 3 (4 + k - 3 * ceil(k / 3))
    np.testing.assert_array_equal(out["seasonal naive"][0], [20.0, 30.0, 40.0, 20.0, 30.0])
    # origin 1: indices -1, 0, 1, -1, 0; the negative ones fall back to series[1]
    np.testing.assert_array_equal(out["seasonal naive"][1], [10.0, 0.0, 10.0, 10.0, 0.0])


@pytest.mark.parametrize("period", [None, 1])
def test_no_seasonal_naive_without_a_period(period: int | None) -> None:
    out = forecast_baselines(np.arange(10.0), np.array([5]), horizon=2, train_end=8, period=period)
    assert "seasonal naive" not in out


def test_ar1_coefficient_is_recovered(rng: np.random.Generator) -> None:
    series = _ar1(rng, phi=0.7, n=2000, level=100.0)
    ar = fit_linear_ar(series, horizon=2, train_end=1500, order=1)
    assert ar is not None and ar.order == 1
    assert ar.coef.shape == (1, 2) and ar.intercept.shape == (2,)
    assert ar.coef[0, 0] == pytest.approx(0.7, abs=0.05)
    assert ar.coef[0, 1] == pytest.approx(0.49, abs=0.05)  # two steps ahead: phi ** 2
    # The mean of an AR(1) around a level c is c, so intercept = c (1 - phi).
    assert ar.intercept[0] == pytest.approx(100.0 * (1 - ar.coef[0, 0]), abs=0.5)


def test_ar_forecast_uses_fitted_map_and_pads_with_first_value(rng: np.random.Generator) -> None:
    series = _ar1(rng, phi=0.5, n=200)
    origins = np.array([0, 1, 150])
    out = forecast_baselines(series, origins, horizon=2, train_end=120, ar_order=3)
    ar = fit_linear_ar(series, horizon=2, train_end=120, order=3)
    assert ar is not None
    windows = np.array([[series[0]] * 3, [series[0], series[0], series[1]], series[148:151]])
    np.testing.assert_allclose(out["linear AR(3)"], windows @ ar.coef + ar.intercept)


def test_baselines_never_look_past_train_end(rng: np.random.Generator) -> None:
    series = _ar1(rng, phi=0.6, n=300)
    changed = series.copy()
    changed[200:] = rng.standard_normal(100) * 50 + 1000
    kwargs = {"horizon": 3, "train_end": 200, "period": 7, "ar_order": 4}
    origins = np.arange(3, 197)  # windows and the last value all lie before train_end
    before = forecast_baselines(series, origins, **kwargs)
    after = forecast_baselines(changed, origins, **kwargs)
    assert list(before) == ["mean", "last value", "seasonal naive", "linear AR(4)"]
    for name in before:
        np.testing.assert_array_equal(before[name], after[name])
    fit_before = fit_linear_ar(series, horizon=3, train_end=200, order=4)
    fit_after = fit_linear_ar(changed, horizon=3, train_end=200, order=4)
    assert fit_before is not None and fit_after is not None
    np.testing.assert_array_equal(fit_before.coef, fit_after.coef)
    np.testing.assert_array_equal(fit_before.intercept, fit_after.intercept)


def test_ar_order_is_lowered_on_short_training_data(rng: np.random.Generator) -> None:
    series = rng.standard_normal(20)
    # rows = 12 - 2 - p + 1 >= 2 (p + 1) holds up to p = 3
    out = forecast_baselines(series, np.array([15]), horizon=2, train_end=12, ar_order=12)
    assert "linear AR(3)" in out and out["linear AR(3)"].shape == (1, 2)
    short = forecast_baselines(series, np.array([15]), horizon=2, train_end=4, ar_order=12)
    assert not any(name.startswith("linear AR") for name in short)


def test_ar_on_constant_training_data_is_finite() -> None:
    out = forecast_baselines(np.full(50, 3.0), np.array([40]), horizon=2, train_end=40, ar_order=2)
    np.testing.assert_allclose(out["linear AR(2)"], [[3.0, 3.0]])


def test_forecast_baselines_rejects_bad_input() -> None:
    with pytest.raises(DataError, match=r"shape \(5, 2\)"):
        forecast_baselines(np.zeros((5, 2)), np.array([1]), horizon=1, train_end=3)
    with pytest.raises(DataError, match=r"origins from 0 to 9"):
        forecast_baselines(np.zeros(5), np.array([0, 9]), horizon=1, train_end=3)
    with pytest.raises(DataError, match="1-D integer array"):
        forecast_baselines(np.zeros(5), np.array([1.0]), horizon=1, train_end=3)
    with pytest.raises(ConfigError, match="train_end=6"):
        forecast_baselines(np.zeros(5), np.array([1]), horizon=1, train_end=6)
    with pytest.raises(ConfigError, match="horizon=0"):
        forecast_baselines(np.zeros(5), np.array([1]), horizon=0, train_end=3)


def test_sequence_baselines_shapes_and_values() -> None:
    targets = np.array([[[1.0], [2.0]], [[3.0], [6.0]]])  # (M=2, S=(2, 1))
    out = sequence_baselines(targets, np.array([[5.0], [7.0], [9.0]]), n=3)
    assert out["mean"].shape == out["last value"].shape == (3, 2, 1)
    np.testing.assert_array_equal(out["mean"][:, :, 0], [[2.0, 4.0]] * 3)
    np.testing.assert_array_equal(out["last value"][:, :, 0], [[5.0, 5.0], [7.0, 7.0], [9.0, 9.0]])
    out["mean"][0] = 0.0  # a real array, not a read-only broadcast view


def test_sequence_baselines_scalar_targets() -> None:
    out = sequence_baselines(np.array([1.0, 3.0]), np.array([4.0, 5.0]), n=2)
    np.testing.assert_array_equal(out["mean"], [2.0, 2.0])
    np.testing.assert_array_equal(out["last value"], [4.0, 5.0])


def test_sequence_baselines_rejects_bad_last_inputs() -> None:
    with pytest.raises(DataError, match=r"shape \(2, 3\); expected \(2,\) or \(2, 1\)"):
        sequence_baselines(np.zeros((4, 3)), np.zeros((2, 3)), n=2)


def test_docstring_examples() -> None:
    result = doctest.testmod(baselines, raise_on_error=False)
    assert result.attempted > 0 and result.failed == 0


def test_ar_order_and_ridge_are_chosen_on_validation_only(rng: np.random.Generator) -> None:
    # an AR(3) with a strong third lag: validation must prefer order >= 3 to AR(1)
    noise = rng.standard_normal(900)
    y = np.zeros(900)
    for t in range(3, 900):
        y[t] = 0.2 * y[t - 1] - 0.1 * y[t - 2] + 0.6 * y[t - 3] + noise[t]
    chosen = baselines.choose_ar(y, 1, train_end=600, val_end=750)
    assert chosen is not None and chosen.order >= 3
    errs = {}
    for order in (1, 2, 3, 4, 6):
        ar = fit_linear_ar(y, 1, 600, order)
        windows = np.lib.stride_tricks.sliding_window_view(y[600 - ar.order : 749], ar.order)
        pred = windows @ ar.coef[:, 0]
        errs[order] = float(np.mean((pred + ar.intercept[0] - y[600:750]) ** 2))
    ours = forecast_baselines(y, np.arange(599, 749), 1, 600, val_end=750)
    name = next(k for k in ours if k.startswith("linear AR"))
    mine = float(np.mean((ours[name][:, 0] - y[600:750]) ** 2))
    assert mine <= min(errs.values()) + 1e-9  # no order it could have taken does better
    # the test rows (past val_end) never change the choice
    changed = y.copy()
    changed[750:] = 1e6
    again = baselines.choose_ar(changed, 1, train_end=600, val_end=750)
    np.testing.assert_array_equal(again.coef, chosen.coef)
