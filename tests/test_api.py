"""End-to-end tests of the Python API: ``rnnkit.fit`` -> Run -> metrics, predictions, save/load.

Training is tiny (a few epochs, a few hidden units): these tests check behaviour (units, index,
splits, baselines, persistence, determinism, error messages), not accuracy.
"""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import rnnkit
from rnnkit import persist
from rnnkit.errors import CheckpointError, ConfigError, DataError
from rnnkit.evaluate.scoring import verdict

METRIC_NAMES = {"mse", "rmse", "mae", "mape", "smape", "mase"}
PICKLE_SUFFIXES = {".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin"}
TINY = {"epochs": 2, "hidden_size": 4, "quiet": True}


def with_bands(column: str) -> list[str]:
    """A forecast column followed by its 80% and 95% interval bounds (docs/uncertainty.md)."""
    return [column, *(f"{column}_{side}{level}" for level in (80, 95) for side in ("lo", "hi"))]


def weights_equal(a: rnnkit.Run, b: rnnkit.Run) -> bool:
    sa, sb = a.model.state_dict(), b.model.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def sun_csv(data_dir: Path) -> Path:
    return data_dir / "sunspots_monthly.csv"


@pytest.fixture(scope="module")
def sun_raw(sun_csv: Path) -> pd.DataFrame:
    """The sunspot file as plain pandas reads it: the independent truth to compare with."""
    return pd.read_csv(sun_csv)


@pytest.fixture(scope="module")
def sun_run(sun_csv: Path) -> rnnkit.Run:
    return rnnkit.fit(sun_csv, target="sunspot_number", window=24, epochs=3, hidden_size=8,
                      quiet=True, seed=0)


@pytest.fixture(scope="module")
def nile_csv(data_dir: Path) -> Path:
    return data_dir / "nile_yearly.csv"


@pytest.fixture(scope="module")
def nile_run(nile_csv: Path) -> rnnkit.Run:
    return rnnkit.fit(nile_csv, target="flow_1e8_m3", window=12, seed=3, **TINY)


# --- metrics and baselines ---------------------------------------------------------------------
def test_metrics_have_model_baselines_and_split(sun_run: rnnkit.Run) -> None:
    m = sun_run.metrics
    assert m is not None
    assert {"model", "baselines", "split"} <= set(m)
    names = set(m["baselines"])
    assert {"mean", "last value", "seasonal naive"} <= names
    ar = [n for n in names if n.startswith("linear AR(")]
    assert len(ar) == 1  # order and ridge chosen on validation (tests/test_baselines.py)
    assert m["split"]["period"] is not None and m["split"]["period"] > 1  # the ~11-year cycle
    assert m["split"]["window"] == 24
    for name, row in [("model", m["model"]), *m["baselines"].items()]:
        assert set(row) == METRIC_NAMES, name
        assert all(math.isfinite(v) for v in row.values()), (name, row)
        assert math.isclose(row["rmse"], math.sqrt(row["mse"]), rel_tol=1e-12), name


def test_metrics_are_on_the_test_rows_in_original_units(sun_run: rnnkit.Run,
                                                        sun_raw: pd.DataFrame) -> None:
    """The 'last value' baseline recomputed by hand from the file: same rows, same units."""
    y = sun_raw["sunspot_number"].to_numpy(dtype=np.float64)
    n = len(y)
    val_end = round(n * 0.85)  # default split 0.7 / 0.15 / 0.15
    truth, last = y[val_end:], y[val_end - 1 : -1]
    split = sun_run.metrics["split"]
    assert split["evaluated_on"] == "test"
    assert split["rows"] == n
    assert split["forecasts_scored"] == len(truth)
    assert split["test"][0].startswith(sun_raw["month"][val_end])
    expected_rmse = math.sqrt(np.mean((truth - last) ** 2))
    got = sun_run.metrics["baselines"]["last value"]["rmse"]
    assert got == pytest.approx(expected_rmse, rel=1e-5)  # values are float32 on the way in


# --- predictions -------------------------------------------------------------------------------
def test_predict_original_units_and_input_index(sun_run: rnnkit.Run, sun_csv: Path,
                                                sun_raw: pd.DataFrame) -> None:
    pred = sun_run.predict(sun_csv)
    assert isinstance(pred, pd.DataFrame)
    assert isinstance(pred.index, pd.DatetimeIndex)
    # each forecast column with its 80 and 95 percent interval bounds (docs/uncertainty.md)
    assert list(pred.columns) == with_bands("sunspot_number")
    window = 24
    # the first prediction is for row `window`: the first row with a full window before it
    assert pred.index[0] == pd.Timestamp(sun_raw["month"][window])
    assert pred.index[-1] == pd.Timestamp(sun_raw["month"].iloc[-1])
    assert len(pred) == len(sun_raw) - window
    assert pred.index.is_monotonic_increasing and pred.index.is_unique
    truth = sun_raw["sunspot_number"].to_numpy()[window:]
    p = pred["sunspot_number"].to_numpy()
    assert np.isfinite(p).all()
    # original units, not the scaled ~N(0, 1) space: the same level and spread as the data
    assert abs(p.mean() - truth.mean()) < 0.25 * truth.std()
    assert 0.5 * truth.std() < p.std() < 1.5 * truth.std()
    assert np.corrcoef(p, truth)[0, 1] > 0.8  # one-step predictions track the series
    # no data argument: the fitted data, same answer
    again = sun_run.predict()
    assert again.index.equals(pred.index)
    assert np.array_equal(again.to_numpy(), pred.to_numpy())


def test_forecast_continues_the_monthly_index(sun_run: rnnkit.Run,
                                              sun_raw: pd.DataFrame) -> None:
    f = sun_run.forecast(12)
    assert list(f.columns) == with_bands("sunspot_number")
    expected = pd.date_range("2009-07-01", periods=12, freq="MS")
    assert list(f.index) == list(expected)  # right after the last row, 2009-06
    values = f["sunspot_number"].to_numpy()
    assert np.isfinite(values).all()
    y = sun_raw["sunspot_number"].to_numpy()
    assert abs(values[0] - y[-1]) < y.std()  # starts near the last observed level


def test_horizon_three_gives_one_column_per_step(sun_csv: Path, sun_raw: pd.DataFrame) -> None:
    run = rnnkit.fit(sun_csv, target="sunspot_number", window=12, horizon=3, hidden_size=8,
                     epochs=2, quiet=True)
    assert run.pipeline.horizon == 3
    pred = run.predict(sun_csv)
    cols = [f"sunspot_number_t+{k}" for k in (1, 2, 3)]
    assert list(pred.columns) == [f"{c}{b}" for c in cols
                                  for b in ("", "_lo80", "_hi80", "_lo95", "_hi95")]
    assert pred.index[0] == pd.Timestamp(sun_raw["month"][12])
    truth = sun_raw["sunspot_number"].to_numpy()[12:]
    assert np.corrcoef(pred[cols[0]].to_numpy(), truth)[0, 1] > 0.8  # t+1 is the row itself
    f = run.forecast(5)  # not a multiple of the horizon
    assert list(f.columns) == with_bands("sunspot_number")
    assert len(f) == 5 and np.isfinite(f.to_numpy()).all()
    assert f.index[0] == pd.Timestamp("2009-07-01")


# --- invariants: scaler on training rows, determinism -----------------------------------------
def test_scaler_is_fit_on_training_rows_only(nile_csv: Path) -> None:
    frame = pd.read_csv(nile_csv)
    n = len(frame)
    train_end, val_end = round(n * 0.7), round(n * 0.85)
    changed = frame.copy()
    changed.loc[val_end:, "flow_1e8_m3"] = changed.loc[val_end:, "flow_1e8_m3"] * 10 + 5000
    opts = {"target": "flow_1e8_m3", "window": 12, "transform": "none", "seed": 5, **TINY}
    a = rnnkit.fit(frame, **opts)
    b = rnnkit.fit(changed, **opts)
    assert a.pipeline.scaler == b.pipeline.scaler
    train = frame["flow_1e8_m3"].to_numpy(dtype=np.float64)[:train_end]
    assert a.pipeline.scaler.shift == pytest.approx([train.mean()])
    assert a.pipeline.scaler.scale == pytest.approx([train.std()])
    assert weights_equal(a, b)  # the test rows never reach training
    assert a.metrics["model"]["rmse"] != b.metrics["model"]["rmse"]  # ...but they are scored


def test_same_seed_gives_identical_predictions(nile_csv: Path, nile_run: rnnkit.Run) -> None:
    again = rnnkit.fit(nile_csv, target="flow_1e8_m3", window=12, seed=3, **TINY)
    assert weights_equal(nile_run, again)
    p1, p2 = nile_run.predict(nile_csv), again.predict(nile_csv)
    assert np.array_equal(p1.to_numpy(), p2.to_numpy())
    assert nile_run.metrics == again.metrics
    # another seed trains other weights; compared without the guard, which may pick the same
    # simple forecaster for both
    one, other = (rnnkit.fit(nile_csv, target="flow_1e8_m3", window=12, seed=seed, guard=False,
                             **TINY) for seed in (3, 4))
    assert not np.array_equal(other.predict(nile_csv).to_numpy(),
                              one.predict(nile_csv).to_numpy())


# --- transforms ---------------------------------------------------------------------------------
def test_diff_chosen_for_trending_co2_and_forecast_keeps_rising(data_dir: Path) -> None:
    csv = data_dir / "co2_mauna_loa_weekly.csv"
    run = rnnkit.fit(csv, target="co2_ppmv", fill="interpolate", window=12, epochs=3,
                     hidden_size=8, quiet=True)
    assert run.pipeline.diff is True
    assert run.pipeline.trend_r2 >= 0.5
    assert run.metrics["split"]["diff"] is True
    assert any("filled 59 missing values" in note for note in run.config["notes"])
    f = run.forecast(52)
    assert len(f) == 52 and np.isfinite(f.to_numpy()).all()
    assert f.index[0] == pd.Timestamp("2002-01-05")  # weekly, right after 2001-12-29
    assert (f.index[1:] - f.index[:-1] == pd.Timedelta(days=7)).all()
    last_year = run.data.dataset.values[-52:, 0]
    assert f["co2_ppmv"].mean() > last_year.mean()  # the trend continues upwards
    assert f["co2_ppmv"].mean() < last_year.mean() + 10  # ...at a believable rate (~1.5/yr)

    flat = rnnkit.fit(csv, target="co2_ppmv", fill="interpolate", window=12, transform="none",
                      **TINY)
    assert flat.pipeline.diff is False
    assert flat.metrics["split"]["diff"] is False
    g = flat.forecast(4)
    assert np.isfinite(g.to_numpy()).all() and 250 < g["co2_ppmv"].iloc[0] < 450


# --- save / load --------------------------------------------------------------------------------
def test_save_and_load_round_trip(sun_run: rnnkit.Run, sun_csv: Path, tmp_path: Path) -> None:
    folder = sun_run.save(tmp_path / "run")
    files = {p.name for p in folder.iterdir()}
    expected = {"model.safetensors", "config.json", "metrics.json", "history.csv", "loss.png",
                "predictions.png", "forecast.png"}
    assert expected <= files
    assert not [p for p in tmp_path.rglob("*") if p.suffix in PICKLE_SUFFIXES]
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]  # no torn temp files
    for png in ("loss.png", "predictions.png", "forecast.png"):
        assert (folder / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    config = json.loads((folder / "config.json").read_text())
    assert config["versions"] == {"rnnkit": rnnkit.__version__, "torch": torch.__version__,
                                  "numpy": np.__version__, "pandas": pd.__version__}
    assert config["data"]["window"] == config["pipeline"]["window"] == 24
    assert json.loads((folder / "metrics.json").read_text()) == sun_run.metrics

    loaded = rnnkit.load(folder)
    p1, p2 = sun_run.predict(sun_csv), loaded.predict(sun_csv)
    assert p1.index.equals(p2.index) and list(p1.columns) == list(p2.columns)
    assert np.array_equal(p1.to_numpy(), p2.to_numpy())
    f1, f2 = sun_run.forecast(12), loaded.forecast(12)  # loaded: from the saved tail
    assert f1.index.equals(f2.index)
    assert np.array_equal(f1.to_numpy(), f2.to_numpy())
    assert loaded.metrics == sun_run.metrics
    assert len(loaded.history) == len(sun_run.history)
    # published files are as readable as any new file (mkstemp alone would leave them 0600)
    probe = folder / "probe.txt"
    probe.write_text("x")
    for name in ("model.safetensors", "config.json", "metrics.json", "history.csv"):
        assert (folder / name).stat().st_mode & 0o777 == probe.stat().st_mode & 0o777, name


def test_header_length_that_looks_like_a_pickle_opcode_still_loads(tmp_path: Path) -> None:
    """A safetensors header of 640 bytes starts 80 02: pickle protocol 2's opening bytes."""
    from safetensors.torch import save

    tensors = {"w": torch.arange(4, dtype=torch.float32)}
    pads = [k for k in range(700) if save(tensors, {"pad": "x" * k})[:2] == b"\x80\x02"]
    assert pads, "no metadata padding gives a 640-byte header"
    path = tmp_path / "w.safetensors"
    persist.save_weights(path, tensors, {"pad": "x" * pads[0]})
    assert path.read_bytes()[:8] == (640).to_bytes(8, "little")
    loaded = persist.load_weights(path, tensors)
    assert torch.equal(loaded["w"], tensors["w"])
    # a real pickle under the same name is still refused, by name, without unpickling it
    path.write_bytes(pickle.dumps({"w": [0.0, 1.0, 2.0, 3.0]}, protocol=2))
    with pytest.raises(CheckpointError, match="pickle"):
        persist.load_weights(path, tensors)


# --- independent sequences ----------------------------------------------------------------------
def test_seq2one_adder_on_variable_length_sequences() -> None:
    rng = np.random.default_rng(0)
    seqs = [rng.integers(1, 11, int(rng.integers(2, 8))).astype(float) for _ in range(300)]
    sums = np.array([s.sum() for s in seqs])
    run = rnnkit.fit(seqs, target=sums, cell="rnn", activation="identity", hidden_size=1,
                     epochs=30, lr=3e-2, batch_size=32, scaler="none", quiet=True)
    assert run.pipeline.shape == "seq2one"
    pred = run.predict(seqs)  # one row per sequence: the prediction and its bounds
    assert isinstance(pred, pd.DataFrame) and pred.shape == (len(seqs), 5)
    assert list(pred.columns[:3]) == ["target", "target_lo80", "target_hi80"]
    m = run.metrics
    assert m["model"]["rmse"] < 0.2 * m["baselines"]["mean"]["rmse"]
    # a running sum extrapolates to unseen lengths and values
    out = run.predict([[5.0, 5.0], [10.0] * 9])["target"]
    assert out.shape == (2,)
    assert out.to_numpy() == pytest.approx([10, 90], abs=3)


def test_continuation_generate_shapes() -> None:
    x = np.random.default_rng(1).uniform(-1, 1, (60, 10))
    run = rnnkit.fit(x, prompt_length=5, epochs=2, hidden_size=8, quiet=True)
    assert run.pipeline.shape == "continuation"
    prompts = x[:, :5]
    out = run.generate(prompts, 5)
    assert out.shape == (60, 5, 1) and np.isfinite(out).all()
    one = run.generate([0.1, 0.5, -0.3, 0.9, 0.2], 5)
    assert one.shape == (5, 1)
    # the first prompt alone gives what it gave in the batch
    np.testing.assert_allclose(run.generate(list(prompts[0]), 5), out[0], rtol=1e-5, atol=1e-6)


# --- errors -------------------------------------------------------------------------------------
def test_unknown_option_suggests_the_right_name(nile_csv: Path) -> None:
    with pytest.raises(ConfigError, match="hidden_size") as info:
        rnnkit.fit(nile_csv, target="flow_1e8_m3", hiden_size=8)
    assert "hiden_size" in str(info.value)


def test_activation_on_lstm_is_refused(nile_csv: Path) -> None:
    with pytest.raises(ConfigError, match="activation") as info:
        rnnkit.fit(nile_csv, target="flow_1e8_m3", cell="lstm", activation="relu", **TINY)
    assert "rnn" in str(info.value)


def test_window_too_long_names_window_horizon_and_rows(nile_csv: Path) -> None:
    with pytest.raises(DataError) as info:
        rnnkit.fit(nile_csv, target="flow_1e8_m3", window=5000, horizon=2, **TINY)
    msg = str(info.value)
    assert "window 5000" in msg and "horizon 2" in msg
    assert "100 rows" in msg and "5002" in msg  # the actual length and the minimum


def test_predict_on_too_short_table_says_minimum_and_actual(nile_run: rnnkit.Run,
                                                            nile_csv: Path) -> None:
    frame = pd.read_csv(nile_csv)
    window = nile_run.pipeline.window
    need = window + int(nile_run.pipeline.diff) + 1
    with pytest.raises(DataError) as info:
        nile_run.predict(frame.iloc[: need - 1])
    msg = str(info.value)
    assert f"at least {need} rows" in msg and f"got {need - 1}" in msg
    ok = nile_run.predict(frame.iloc[:need])  # the minimum itself gives one prediction
    assert len(ok) == 1


# --- report -------------------------------------------------------------------------------------
def test_table_shows_model_baselines_and_verdict(sun_run: rnnkit.Run) -> None:
    table = sun_run.table()
    lines = table.splitlines()
    assert any(line.startswith("model ") for line in lines)
    assert any(line.startswith("last value ") for line in lines)
    assert any(line.startswith("linear AR(") for line in lines)
    sentence = verdict(sun_run.metrics)
    assert sentence and lines[-1] == sentence
    # 3 epochs from the least-squares start: a tie with the best linear AR (its order chosen
    # on validation; a match within 0.1%, or no significant difference at 5%), and clearly
    # better than repeating the last value
    test = sun_run.metrics["verdict"]
    name = test["baseline"]
    assert name.startswith("linear AR(") and test["test_points"] == 469
    assert test["p_value"] > 0.05 and test["p_values"]["last value"] < 0.01
    assert sentence.startswith((f"The model matches the '{name}' baseline on RMSE",
                                f"No significant difference between the model and the '{name}'"
                                " baseline on RMSE"))


@pytest.mark.parametrize("model, expected", [
    (9.0, "The model beats every baseline on RMSE (9 vs 10 for last value, 10.0% lower)."),
    (9.9995, "The model matches the 'last value' baseline on RMSE (9.999 vs 10, within 0.1%): it "
             "has learned no more than that baseline."),
    (10.2, "Warning: the model is no better than the 'last value' baseline on RMSE (10.2 vs 10)"),
])
def test_verdict_calls_a_difference_under_a_thousandth_a_tie(model: float, expected: str) -> None:
    # metrics without a "verdict" test, as an older metrics.json holds: the sentence of before
    metrics = {"model": {"rmse": model},
               "baselines": {"last value": {"rmse": 10.0}, "mean": {"rmse": 20.0}}}
    assert verdict(metrics).startswith(expected)
