"""Tests of rnnkit.evaluate.metrics: values computed by hand on tiny inputs."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

from rnnkit.errors import ConfigError, DataError
from rnnkit.evaluate import metrics
from rnnkit.evaluate.metrics import METRICS, compute_metrics, mase_scale


def test_hand_computed_values() -> None:
    # e = [0, 0, 1]
    m = compute_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 4.0], mase_scale=0.5)
    assert list(m) == list(METRICS)
    assert m["mse"] == pytest.approx(1 / 3)
    assert m["rmse"] == pytest.approx(math.sqrt(1 / 3))
    assert m["mae"] == pytest.approx(1 / 3)
    assert m["mape"] == pytest.approx(100 * (1 / 3) / 3)  # only |e|/|y| = 1/3 is non-zero
    assert m["smape"] == pytest.approx(100 * (2 / 7) / 3)  # 2 * 1 / (3 + 4)
    assert m["mase"] == pytest.approx(2 / 3)  # (1/3) / 0.5
    assert all(type(v) is float for v in m.values())


def test_any_shape_is_flattened() -> None:
    flat = compute_metrics([1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 3.0, 2.0])
    square = compute_metrics([[1.0, 2.0], [3.0, 4.0]], [[2.0, 2.0], [3.0, 2.0]])
    assert flat == square
    assert flat["mse"] == pytest.approx(5 / 4)


def test_perfect_prediction_is_zero() -> None:
    y = np.array([0.0, 1.5, -2.0])
    m = compute_metrics(y, y, mase_scale=1.0)
    assert m == {"mse": 0.0, "rmse": 0.0, "mae": 0.0, "mape": 0.0, "smape": 0.0, "mase": 0.0}


def test_mape_skips_zero_targets_and_is_nan_without_any() -> None:
    assert compute_metrics([0.0, 2.0], [1.0, 3.0])["mape"] == pytest.approx(50.0)
    assert math.isnan(compute_metrics([0.0, 1e-9], [1.0, 1.0])["mape"])


def test_smape_counts_zero_over_zero_as_zero() -> None:
    # terms: 0/0 -> 0 and 2 * 1 / (1 + 2) = 2/3
    assert compute_metrics([0.0, 1.0], [0.0, 2.0])["smape"] == pytest.approx(100 * (2 / 3) / 2)


@pytest.mark.parametrize("scale", [None, 0.0, -1.0])
def test_mase_is_nan_without_a_positive_scale(scale: float | None) -> None:
    assert math.isnan(compute_metrics([1.0], [2.0], mase_scale=scale)["mase"])


def test_empty_input_gives_nan() -> None:
    assert all(math.isnan(v) for v in compute_metrics([], []).values())


def test_shape_mismatch_names_both_shapes() -> None:
    with pytest.raises(DataError, match=r"shape \(3,\) and y_pred of shape \(2, 2\)"):
        compute_metrics([1.0, 2.0, 3.0], np.zeros((2, 2)))


def test_mase_scale() -> None:
    assert mase_scale(np.array([1.0, 2.0, 4.0])) == pytest.approx(1.5)
    assert mase_scale(np.array([1.0, 2.0, 4.0, 8.0]), m=2) == pytest.approx(4.5)  # (3 + 6) / 2
    assert mase_scale(np.array([1.0, 2.0]), m=2) is None  # fewer than m + 1 points
    assert mase_scale(np.full(5, 3.0)) is None  # zero scale
    with pytest.raises(ConfigError, match="m=0"):
        mase_scale(np.arange(5.0), m=0)


def test_docstring_examples() -> None:
    result = doctest.testmod(metrics, raise_on_error=False)
    assert result.attempted > 0 and result.failed == 0
