"""Tests of rnnkit.data.stats on synthetic series and on the shipped real series."""

from __future__ import annotations

import doctest
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rnnkit.data import stats
from rnnkit.data.stats import autocorrelation, detect_period, trend_strength
from rnnkit.errors import DataError

DATA = Path(__file__).parent / "data"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="module")
def sunspots_train() -> np.ndarray:
    values = pd.read_csv(DATA / "sunspots_monthly.csv")["sunspot_number"].to_numpy(float)
    return values[: int(0.7 * values.size)]


@pytest.fixture(scope="module")
def co2() -> np.ndarray:
    return pd.read_csv(DATA / "co2_mauna_loa_weekly.csv")["co2_ppmv"].dropna().to_numpy(float)


def test_sine_period(rng: np.random.Generator) -> None:
    t = np.arange(1000)
    series = np.sin(2 * np.pi * t / 25) + 0.1 * rng.standard_normal(t.size)
    assert detect_period(series) in (24, 25, 26)


def test_sine_on_a_strong_linear_trend(rng: np.random.Generator) -> None:
    # Differencing would bury this season in noise; the fitted line removes the trend exactly.
    t = np.arange(2000)
    series = t / 10 + np.sin(2 * np.pi * t / 25) + 0.3 * rng.standard_normal(t.size)
    assert trend_strength(series) > 0.99
    assert detect_period(series) in (24, 25, 26)


def test_sine_on_a_curved_trend(rng: np.random.Generator) -> None:
    # The detrended residual is dominated by the curve; the first differences find the season.
    t = np.arange(2000)
    series = np.exp(t / 400) + 0.5 * np.sin(2 * np.pi * t / 25) + 0.05 * rng.standard_normal(2000)
    assert detect_period(series) in (24, 25, 26)


def test_sunspot_cycle(sunspots_train: np.ndarray) -> None:
    assert 120 <= detect_period(sunspots_train) <= 140  # about 11 years of months


def test_co2_year(co2: np.ndarray) -> None:
    assert detect_period(co2) in (51, 52, 53)


def test_white_noise_has_no_period(rng: np.random.Generator) -> None:
    assert detect_period(rng.standard_normal(2000)) is None


@pytest.mark.parametrize("seed", range(5))
def test_random_walk_has_no_period(seed: int) -> None:
    walk = np.random.default_rng(seed).standard_normal(2000).cumsum()
    assert detect_period(walk) is None


def test_constant_and_short_series_have_no_period() -> None:
    assert detect_period(np.full(100, 2.5)) is None
    assert detect_period(np.sin(np.arange(7.0))) is None


def test_max_lag_bounds_the_period() -> None:
    series = np.sin(2 * np.pi * np.arange(500) / 25)
    assert detect_period(series, max_lag=20) is None
    assert detect_period(series, max_lag=30) == 25


def test_detect_period_on_a_million_points(rng: np.random.Generator) -> None:
    # its speed (under 1 s) is measured by benchmarks/period.py, not asserted here
    t = np.arange(10**6)
    assert detect_period(rng.standard_normal(t.size)) is None
    assert detect_period(np.sin(2 * np.pi * t / 25) + 0.1 * rng.standard_normal(t.size)) in (
        24, 25, 26)


def test_autocorrelation_matches_the_direct_sum(rng: np.random.Generator) -> None:
    x = rng.standard_normal(50)
    c = x - x.mean()
    direct = np.array([c[: c.size - lag] @ c[lag:] for lag in range(11)]) / (c @ c)
    np.testing.assert_allclose(autocorrelation(x, 10), direct, atol=1e-12)
    assert autocorrelation(x, 100).shape == (50,)  # capped at n - 1
    np.testing.assert_array_equal(autocorrelation(np.ones(5), 2), [0.0, 0.0, 0.0])


def test_trend_strength_hand_values() -> None:
    assert trend_strength(np.arange(10.0)) == pytest.approx(1.0)
    # t - mean = [-1.5, -.5, .5, 1.5], slope 1/5, explained 0.04 * 5 = 0.2 of a total 1.0
    assert trend_strength(np.array([0.0, 1.0, 0.0, 1.0])) == pytest.approx(0.2)
    assert trend_strength(np.full(10, 4.0)) == 0.0
    assert trend_strength(np.array([1.0, 5.0])) == 0.0


def test_trend_strength_on_real_series(co2: np.ndarray, sunspots_train: np.ndarray) -> None:
    assert trend_strength(co2) > 0.9
    assert trend_strength(sunspots_train) < 0.2


def test_bad_input_is_rejected() -> None:
    with pytest.raises(DataError, match="non-finite value at row 2"):
        detect_period(np.array([1.0, 2.0, np.nan] + [0.0] * 10))
    with pytest.raises(DataError, match=r"shape \(3, 2\)"):
        trend_strength(np.zeros((3, 2)))


def test_docstring_examples() -> None:
    result = doctest.testmod(stats, raise_on_error=False)
    assert result.attempted > 0 and result.failed == 0
