"""The guard (train/guard.py): simple forecasters folded into the model's own weights, chosen
on validation, so that the default fit is not worse than the best simple model.

The maps are checked against the forecasters they stand for, through the pipeline's own way
back to original units; the guard through real fits.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import rnnkit
from rnnkit.config import DataConfig, hidden_for
from rnnkit.data.read import read_table
from rnnkit.data.series import SeriesPipeline
from rnnkit.models import ets, linear_maps
from rnnkit.train import guard, rolling

DATA = Path(__file__).parent / "data"


def pipeline(values: np.ndarray, transform: str, horizon: int = 3, window: int = 12):
    table = read_table(values)
    pipe, table = SeriesPipeline.fit(table, DataConfig(window=window, horizon=horizon,
                                                       transform=transform))
    return pipe, pipe.encode(table)


def through_units(pipe, enc, m: linear_maps.LinearMap) -> tuple[np.ndarray, np.ndarray]:
    """The map's forecasts on the validation windows in original units, and the origins."""
    pairs = pipe.pairs(enc, "val")
    out = m.apply(pairs.inputs).reshape(len(pairs), pipe.horizon, 1)
    return pipe.to_units(out, enc, "val")[..., 0], np.asarray(pipe.origins("val", len(
        enc.dataset.values)))


@pytest.mark.parametrize("transform", ["none", "diff"])
def test_level_maps_forecast_what_they_stand_for(transform: str) -> None:
    rng = np.random.default_rng(0)
    y = 50 + np.cumsum(rng.normal(size=300)) + 3 * np.sin(np.arange(300) * 2 * np.pi / 6)
    pipe, enc = pipeline(y, transform)
    space = guard.space_of(pipe)
    assert space.diff == (transform == "diff")
    last, origins = through_units(pipe, enc, linear_maps.last_value(space, 0))
    np.testing.assert_allclose(last, np.repeat(y[origins][:, None], 3, axis=1), rtol=1e-6)
    naive, _ = through_units(pipe, enc, linear_maps.seasonal_naive(space, 0, 6))
    steps = origins[:, None] + np.arange(1, 4)[None, :] - 6
    np.testing.assert_allclose(naive, y[steps], rtol=1e-6)
    fit = ets.select(y[:210], None)
    n = linear_maps.levels_needed(space)
    weights = ets.window_weights(fit, n, 3)
    filt, _ = through_units(pipe, enc, linear_maps.level_filter(space, 0, weights, np.zeros(3)))
    levels = np.stack([y[o - n + 1 : o + 1] for o in origins])  # the levels the window covers
    np.testing.assert_allclose(filt, levels @ weights.T, rtol=1e-6)
    mean = linear_maps.mean_level(space, 0, 7.5)
    if transform == "diff":
        assert mean is None  # changes do not say how far the level is from the mean
    else:
        np.testing.assert_allclose(through_units(pipe, enc, mean)[0], 7.5, rtol=1e-6)


def test_folded_model_forecasts_the_chosen_candidate() -> None:
    rng = np.random.default_rng(1)
    y = 10 + np.cumsum(rng.normal(size=400))  # a random walk (differenced: no mean on the menu)
    run = rnnkit.fit(y, quiet=True, epochs=3, window=8)
    record = run.config["guard"]
    scores = record["val_rmse"]
    # 59 validation forecasts: chosen by recipe over the rolling-origin folds
    assert 1 < record["folds"] <= rolling.FOLDS
    assert record["recipe"] == min(record["fold_rmse"], key=record["fold_rmse"].get)
    assert {"network", "last value"} <= set(scores) and any(
        k.startswith("ETS(") for k in scores) and any(k.startswith("AR(") for k in scores)
    # the saved model itself now forecasts the chosen candidate: its validation RMSE is the
    # chosen one's, recomputed from run.predict through the public path
    n = len(y)
    pred = run.predict()
    origins = np.asarray(run.pipeline.origins("val", n))
    rows = pred.iloc[origins - (n - len(pred)) + 1]
    truth = y[origins + 1]
    assert np.sqrt(np.mean((rows.iloc[:, 0].to_numpy() - truth) ** 2)) == pytest.approx(
        scores[record["chosen"]], rel=0.02)


def test_rolling_cuts_end_before_the_validation_end() -> None:
    # the Nile: 100 rows, train ends at 70, validation at 85; each cut moves back 15 rows
    got = rolling.cuts(70, 85)
    assert [rows for rows, _ in got] == [70, 55, 40, 25]
    for rows, (a, b, c) in got:
        assert c == 0.0 and round(rows * a) + 15 == rows and round(rows * b) == 15
    assert rolling.cuts(20, 35) == [(20, (5 / 20, 15 / 20, 0.0))]  # no cut without rows
    assert rolling.wanted(15) and rolling.wanted(99) and not rolling.wanted(100)


def test_rolling_origin_choice_never_reads_the_test_part() -> None:
    rng = np.random.default_rng(4)
    y = 20 + np.cumsum(rng.normal(size=200)) + 2 * np.sin(np.arange(200) * 2 * np.pi / 4)
    wild = y.copy()
    wild[170:] = 1e4 * rng.normal(size=30)  # the test part (rows 170.. of 200) made absurd
    runs = [rnnkit.fit(v, quiet=True, epochs=5, seed=0) for v in (y, wild)]
    first, second = (r.config["guard"] for r in runs)
    assert 1 < first["folds"] <= rolling.FOLDS and first == second
    assert "rolling-origin validation folds" in first["note"]


def test_long_validation_part_chooses_on_it_alone() -> None:
    y = np.sin(np.arange(1000) * 0.3) + 0.1 * np.random.default_rng(5).normal(size=1000)
    record = rnnkit.fit(y, quiet=True, epochs=2).config["guard"]
    assert "folds" not in record and "fold_rmse" not in record
    assert record["chosen"] == min(record["val_rmse"], key=record["val_rmse"].get)


def test_no_guard_keeps_the_network(tmp_path: Path, cli) -> None:
    rng = np.random.default_rng(2)
    pd.DataFrame({"y": np.cumsum(rng.normal(size=300))}).to_csv(tmp_path / "d.csv", index=False)
    code, _, err = cli("fit", "d.csv", "--target", "y", "--epochs", "2", "--no-guard",
                       "--quiet", "--out", "run", cwd=tmp_path)
    assert code == 0, err
    assert "guard" not in rnnkit.load(tmp_path / "run").config
    run = rnnkit.fit(tmp_path / "d.csv", target="y", epochs=2, quiet=True)
    assert run.config["guard"]["chosen"] in run.config["guard"]["val_rmse"]


def test_learned_distributions_skip_the_guard() -> None:
    rng = np.random.default_rng(3)
    run = rnnkit.fit(np.cumsum(rng.normal(size=300)), quiet=True, epochs=2, loss="gaussian")
    assert run.config["guard"] == {
        "skipped": "loss=gaussian learns a distribution, not a point forecast to combine"}


def test_hidden_size_follows_the_training_windows() -> None:
    assert [hidden_for(w) for w in (10, 54, 96, 126, 200, 400, 5000)] == [4, 4, 8, 8, 16, 32,
                                                                          32]
    run = rnnkit.fit(DATA / "nile_yearly.csv", target="flow_1e8_m3", quiet=True, epochs=1)
    assert run.config["model"]["hidden_size"] == 4
    run = rnnkit.fit(DATA / "nile_yearly.csv", target="flow_1e8_m3", quiet=True, epochs=1,
                     hidden_size=16)  # the user's choice wins
    assert run.config["model"]["hidden_size"] == 16


SHORT = [("nile_yearly.csv", "flow_1e8_m3")] + [
    ("us_macro_quarterly.csv", c) for c in ("realgdp", "realcons", "realinv", "realgovt",
                                           "realdpi", "cpi", "m1", "tbilrate", "unemp", "pop",
                                           "infl", "realint")]


@pytest.mark.parametrize(("file", "column"), SHORT, ids=["nile", *[c for _, c in SHORT[1:]]])
def test_short_real_series_are_not_worse_than_the_best_simple_model(file: str, column: str
                                                                     ) -> None:
    # issue 13's bar on every short real series (the long ones: benchmarks/accuracy.py). The
    # Nile was the headline case: before the guard and the size rule the default fit's test
    # RMSE was 317.9 against 126.9 for ETS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 15 or 30 test points: known
        run = rnnkit.fit(DATA / file, target=column, quiet=True)
    base = {k: v["rmse"] for k, v in run.metrics["baselines"].items()}
    assert {"last value"} <= set(base) and any(k.startswith("ETS(") for k in base) and any(
        k.startswith("linear AR(") for k in base)
    assert 1 < run.config["guard"]["folds"] <= rolling.FOLDS
    assert run.metrics["model"]["rmse"] <= 1.02 * min(base.values()), (run.metrics["model"],
                                                                       base)


def test_long_series_window_is_the_order_validation_chose() -> None:
    # monthly sunspots: one season of the 127-month cycle would be the window; the ridge AR
    # scores best on validation with 32 past months, and 469 validation forecasts can say so
    sun = DATA / "sunspots_monthly.csv"
    run = rnnkit.fit(sun, target="sunspot_number", quiet=True, epochs=1)
    assert run.pipeline.period == 127 and run.pipeline.window == 32
    assert any(n.startswith("window 32, the order of the linear AR") and "was 127" in n
               for n in run.config["notes"])
    assert rnnkit.fit(sun, target="sunspot_number", quiet=True, epochs=1,
                      window=64).pipeline.window == 64  # the user's window wins
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nile = rnnkit.fit(DATA / "nile_yearly.csv", target="flow_1e8_m3", quiet=True, epochs=1)
    assert nile.pipeline.window == 16  # 15 validation forecasts: too few to choose on
    assert not any(n.startswith("window ") for n in nile.config["notes"])


def test_guarded_model_is_not_worse_than_its_least_squares_start_on_validation() -> None:
    import copy

    import torch

    from rnnkit.models.least_squares import least_squares_start

    rng = np.random.default_rng(6)
    y = np.zeros(1000)
    for t in range(2, 1000):
        y[t] = 0.6 * y[t - 1] - 0.3 * y[t - 2] + rng.normal()
    # a network knocked off its start by a learning rate far too high for it
    run = rnnkit.fit(y, quiet=True, epochs=3, lr=0.3, transform="none")
    record, pipe, enc = run.config["guard"], run.pipeline, run.data
    assert "folds" not in record  # 150 validation forecasts: chosen on them alone
    start = copy.deepcopy(run.model)
    with torch.no_grad():
        least_squares_start(start, pipe.pairs(enc, "train"))
        out = start(pipe.pairs(enc, "val").inputs)[0].double().numpy()
    origins = np.asarray(pipe.origins("val", len(y)))
    pred = pipe.to_units(out.reshape(len(origins), 1, 1), enc, "val")[:, 0, 0]
    start_rmse = float(np.sqrt(np.mean((pred - y[origins + 1]) ** 2)))
    assert record["val_rmse"][record["chosen"]] <= start_rmse * (1 + 1e-6)
