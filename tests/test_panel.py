"""Long-format panels: reading, windows that never cross series, per-series scaling, short
series, one global model, long-format predictions and forecasts, save/load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import rnnkit
from rnnkit.config import DataConfig
from rnnkit.data.pairs import Segments
from rnnkit.data.panel import PanelPipeline
from rnnkit.data.read_panel import read_panel
from rnnkit.errors import ConfigError, DataError
from rnnkit.evaluate.scoring import verdict
from tests.helpers_panel import make_panel, threshold_panel, write_panel

FAST = {"epochs": 3, "quiet": True, "hidden_size": 8, "early_stopping": 0}


def with_bands(column: str) -> list[str]:
    """A forecast column followed by its 80% and 95% interval bounds (docs/uncertainty.md)."""
    return [column, *(f"{column}_{side}{level}" for level in (80, 95) for side in ("lo", "hi"))]


# --- reading ---------------------------------------------------------------------------------
def test_rows_are_grouped_by_series_in_first_seen_order_and_sorted_by_time(tmp_path):
    df = make_panel(3, 20)
    shuffled = df.sample(frac=1.0, random_state=0)
    first_seen = list(dict.fromkeys(shuffled["unique_id"]))
    path = tmp_path / "p.csv"
    shuffled.to_csv(path, index=False)
    panel = read_panel(path)
    assert panel.ids == first_seen
    assert list(panel.offsets) == [0, 20, 40, 60]
    for i, sid in enumerate(panel.ids):
        rows = slice(panel.offsets[i], panel.offsets[i + 1])
        want = df[df.unique_id == sid].sort_values("ds")
        np.testing.assert_allclose(panel.values[rows, 0], want["y"].to_numpy(), rtol=1e-6)
        assert (np.diff(panel.times[rows]) > np.timedelta64(0)).all()
    assert (panel.id_name, panel.time_name, panel.targets) == ("unique_id", "ds", ["y"])


def test_named_columns_and_integer_times(tmp_path):
    df = pd.DataFrame({"shop": ["a"] * 5 + ["b"] * 5, "week": list(range(5)) * 2,
                       "sales": np.arange(10.0), "price": np.ones(10)})
    panel = read_panel(df, id_column="shop", time="week", target="sales", features=["price"])
    assert panel.ids == ["a", "b"] and panel.times.dtype == np.int64
    assert panel.values.shape == (10, 2) and panel.features == ["price"]


@pytest.mark.parametrize("edit, match", [
    (lambda d: d.rename(columns={"unique_id": "uid"}), r"column 'unique_id' not found.*uid"),
    (lambda d: pd.concat([d, d.iloc[[3]]]), r"series s0000 has two rows for time 2000-04-01.*"
                                             r"row 4 \(line 5\) and row 41 \(line 42\)"),
    (lambda d: d.assign(y=d["y"].astype(object).where(d.index != 7, "n/a?")),
     r"column 'y' row 8 \(line 9\) has 'n/a\?', which is not a number"),
    (lambda d: d.assign(y=d["y"].where(d.index != 7)),
     r"column 'y' has 1 missing value\(s\) \(row 8\); pass --fill ffill"),
    (lambda d: d.assign(ds=d["ds"].astype(str).where(d.index != 2, "someday")),
     r"time column 'ds' row 3 \(line 4\) has 'someday', which is not a date"),
    (lambda d: d.assign(y=d["y"].where(d.index != 5, np.inf)),
     r"column 'y' row 6 \(line 7\) is inf"),
])
def test_bad_panels_get_one_line_errors_naming_row_and_line(tmp_path, edit, match):
    path = tmp_path / "bad.csv"
    edit(make_panel(2, 20)).to_csv(path, index=False)
    with pytest.raises(DataError, match=match) as err:
        read_panel(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_missing_values_fill_within_their_own_series():
    df = make_panel(2, 10)
    df.loc[10, "y"] = np.nan  # the first row of series 2: ffill must not borrow from series 1
    with pytest.raises(DataError, match="s0001 starts with a missing value"):
        read_panel(df, fill="ffill")
    df.loc[10, "y"] = 5.0
    df.loc[12, "y"] = np.nan
    filled = read_panel(df, fill="ffill")
    assert filled.values[12, 0] == filled.values[11, 0]
    dropped = read_panel(df, fill="drop")
    assert list(dropped.lengths) == [10, 9]


# --- windows ---------------------------------------------------------------------------------
def test_segments_map_pair_numbers_like_an_explicit_index():
    starts, counts = np.array([0, 10, 50, 70]), np.array([3, 0, 5, 2])
    seg = Segments(starts, counts)
    explicit = np.concatenate([np.arange(s, s + c) for s, c in zip(starts, counts, strict=True)])
    k = torch.arange(len(seg))
    assert len(seg) == 10
    assert seg.rows(k).tolist() == explicit.tolist()
    assert seg.series(k).tolist() == [0, 0, 0, 2, 2, 2, 2, 2, 3, 3]


def test_windows_never_cross_a_series_boundary_and_targets_follow_inputs():
    # value = 1000 * series + time: a window's series and times are readable from its values
    n = [30, 17, 25]
    df = pd.DataFrame({"unique_id": np.repeat(["a", "b", "c"], n),
                       "ds": np.concatenate([np.arange(k) for k in n]),
                       "y": np.concatenate([1000.0 * i + np.arange(k) for i, k in enumerate(n)])})
    panel = read_panel(df)
    cfg = DataConfig(window=6, horizon=2, scaler="none", transform="none")
    pipe, panel = PanelPipeline.fit(panel, cfg)
    data = pipe.encode(panel)
    seen = 0
    for split in ("train", "val", "test"):
        pairs = pipe.pairs(data, split)
        batch = pairs.take(torch.arange(len(pairs)))
        seen += len(pairs)
        rows = torch.cat([batch.inputs[..., 0], batch.targets[..., 0]], dim=1).numpy()
        assert (np.floor(rows / 1000) == np.floor(rows[:, :1] / 1000)).all()  # one series
        assert (np.diff(rows % 1000, axis=1) == 1).all()  # consecutive times
    every = sum(k - 6 - 2 + 1 for k in n)  # all windows inside a series, none across
    assert len(pipe.segments("all", panel.offsets)) == every
    # a forecast belongs to the split holding all its targets: with horizon 2, the one that
    # straddles each of the two split boundaries of a series belongs to neither
    assert seen == every - 2 * len(n)


def test_each_series_is_scaled_by_its_own_training_rows():
    df = make_panel(2, 60)
    df.loc[df.unique_id == "s0001", "y"] *= 1e6
    panel = read_panel(df)
    pipe, panel = PanelPipeline.fit(panel, DataConfig(window=12, transform="none"))
    data = pipe.tensor(panel).numpy()
    train_end, _ = pipe.bounds(panel.lengths)
    for i in range(2):
        a = panel.offsets[i]
        part = data[a : a + train_end[i], 0]
        assert abs(part.mean()) < 1e-4 and abs(part.std() - 1) < 1e-4
    # the test rows do not move the statistics (no look-ahead)
    df2 = df.copy()
    df2.loc[df2.index[-5:], "y"] *= 100
    pipe2, _ = PanelPipeline.fit(read_panel(df2), DataConfig(window=12, transform="none"))
    np.testing.assert_array_equal(pipe.shift, pipe2.shift)
    np.testing.assert_array_equal(pipe.scale, pipe2.scale)


def test_short_series_are_listed_and_skipped_only_when_asked():
    df = pd.concat([make_panel(3, 40), make_panel(2, 10, seed=1).assign(
        unique_id=lambda d: d.unique_id.str.replace("s", "short"))])
    cfg = DataConfig(window=12)
    # 18 rows, not 13: a series must give a complete training, validation and test forecast
    with pytest.raises(DataError, match=r"2 of 5 series have fewer than 18 rows \(window 12 \+ "
                                        r"horizon 1, and a complete forecast in each part of "
                                        r"split 0\.7/0\.15/0\.15\): short0000, short0001; "
                                        r"pass --skip-short"):
        PanelPipeline.fit(read_panel(df), cfg)
    skip = DataConfig(window=12, skip_short=True)
    pipe, kept = PanelPipeline.fit(read_panel(df), skip)
    assert kept.ids == ["s0000", "s0001", "s0002"] and len(pipe.shift) == 3
    assert any("skipped 2 of 5 series" in note for note in kept.notes)
    with pytest.raises(DataError, match="no series is left"):
        PanelPipeline.fit(read_panel(make_panel(2, 10)), skip)


def test_panels_train_window_models_only():
    with pytest.raises(ConfigError, match=r"shape='next'.*use shape='window'"):
        rnnkit.fit(make_panel(2, 40), shape="next", **FAST)


# --- one global model ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def panel_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("panel")
    path = write_panel(folder / "panel.csv", 40, (60, 90))
    run = rnnkit.fit(path, out=folder / "run", window=12, epochs=15, quiet=True)
    return path, folder / "run", run


def test_a_global_model_beats_per_series_baselines_in_original_units(panel_run):
    _, _, run = panel_run
    m = run.metrics
    assert m["split"]["series"] == 40 and m["split"]["window"] == 12
    model = m["model"]["rmse"]
    assert all(model < b["rmse"] for b in m["baselines"].values()), m
    assert set(m["baselines"]) == {"mean", "last value", "seasonal naive",
                                   "linear AR(12), pooled"}
    # significantly better than every per-series baseline; the pooled linear AR it starts from
    # is a genuine tie (its lead is under 1%), so the verdict says no significant difference
    p = m["verdict"]["p_values"]
    assert max(p["mean"], p["last value"], p["seasonal naive"]) < 0.01, p
    assert m["verdict"]["baseline"] == "linear AR(12), pooled"
    assert verdict(m).startswith(("No significant difference between the model and the 'linear "
                                  "AR(12), pooled' baseline", "The model matches the 'linear "
                                  "AR(12), pooled' baseline")), verdict(m)
    _, folder, _ = panel_run
    names = {p.name for p in folder.iterdir()}
    assert {"panel.safetensors", "panel_series.png", "loss.png", "report.html"} <= names
    html = (folder / "report.html").read_text()
    assert "panel_series" in html and "per series" in html  # the plot and the split table


def test_predictions_and_forecasts_come_back_in_long_format(panel_run):
    path, _, run = panel_run
    pred = run.predict()
    assert list(pred.columns) == ["unique_id", "ds", *with_bands("y")]
    src = pd.read_csv(path, parse_dates=["ds"])
    merged = pred.merge(src, on=["unique_id", "ds"], suffixes=("_pred", ""))
    assert len(merged) == len(pred)  # every prediction names a real (series, time)
    rel = np.abs(merged.y_pred - merged.y) / merged.groupby("unique_id").y.transform("std")
    assert rel.median() < 0.5
    fc = run.forecast(4)
    assert list(fc.columns) == ["unique_id", "ds", *with_bands("y")] and len(fc) == 40 * 4
    last = src.groupby("unique_id").ds.max()
    first = fc.groupby("unique_id").ds.min()
    assert ((first - last[first.index]).dt.days.between(28, 31)).all()  # the next month


def test_a_loaded_panel_run_forecasts_identically_and_refuses_unknown_series(panel_run):
    path, folder, run = panel_run
    loaded = rnnkit.load(folder)
    pd.testing.assert_frame_equal(loaded.forecast(3), run.forecast(3))
    pd.testing.assert_frame_equal(loaded.predict(path), run.predict())
    assert loaded.evaluate(path)["model"]["rmse"] == pytest.approx(run.metrics["model"]["rmse"])
    from rnnkit.evaluate.backtest import backtest

    with pytest.raises(ConfigError, match="a panel run is already scored on every series"):
        backtest(loaded)
    other = make_panel(2, 80, seed=5).assign(unique_id=["x"] * 80 + ["s0001"] * 80)
    with pytest.raises(DataError, match="series x were not in the training panel"):
        loaded.predict(other)


def test_a_panel_series_streams_from_its_end_like_forecasting_the_extended_table(panel_run):
    path, folder, _ = panel_run
    run = rnnkit.load(folder)
    src = pd.read_csv(path, parse_dates=["ds"])
    own = src[src.unique_id == "s0003"]
    stream = run.stream(series="s0003")  # primed on the series' last rows in the run
    nexts, rows = [], own
    for v in own.y.iloc[-5:].to_numpy() * 1.01:
        nexts.append(float(stream.update(v)[0]))
        rows = pd.concat([rows, pd.DataFrame({"unique_id": ["s0003"], "y": [v], "ds": [
            rows.ds.max() + pd.offsets.MonthBegin()]})])
        assert nexts[-1] == pytest.approx(float(run.forecast(1, data=rows)["y"].iloc[0]),
                                          rel=1e-6)
    with pytest.raises(DataError, match=r"series 's0003x' was not in the training panel.*"
                                        r"Did you mean 's0003'"):
        run.stream(series="s0003x")
    with pytest.raises(DataError, match=r"run.stream\(series=id\)"):
        run.stream()


def test_twelve_real_macro_series_train_as_one_panel(data_dir, tmp_path):
    # the shipped US macro table (12 columns, 1959Q1..2009Q3) melted to long format: series
    # from percent rates to GDP in billions, with quarterly dates as text
    wide = pd.read_csv(data_dir / "us_macro_quarterly.csv")
    long = wide.melt(id_vars="quarter", var_name="unique_id", value_name="y")
    path = tmp_path / "macro_long.csv"
    long.rename(columns={"quarter": "ds"}).to_csv(path, index=False)
    run = rnnkit.fit(path, epochs=30, quiet=True)
    m = run.metrics
    assert m["split"]["series"] == 12 and run.pipeline.diff  # trending: changes are modelled
    # per-series scaling: the rates are not drowned by GDP; scale-free MASE beats last value
    assert m["model"]["mase"] < m["baselines"]["last value"]["mase"]
    # what the README says of this panel: significantly better than last value, and no
    # significant difference from the pooled linear AR it starts from
    assert m["verdict"]["p_values"]["last value"] < 0.01, m["verdict"]
    assert m["verdict"]["baseline"] == "linear AR(8), pooled"
    assert m["verdict"]["p_value"] > 0.2, m["verdict"]
    assert verdict(m).startswith("No significant difference between the model and the 'linear "
                                 "AR(8), pooled' baseline on RMSE")
    fc = run.forecast(2)
    assert fc["ds"].astype(str).unique().tolist() == ["2009-10-01", "2010-01-01"]


def test_wide_tables_with_several_targets_still_train_one_series_model(tmp_path):
    t = np.arange(120)
    df = pd.DataFrame({"a": np.sin(t / 5), "b": np.cos(t / 5)})
    run = rnnkit.fit(df, target=["a", "b"], **FAST)
    assert run.kind == "series" and run.pipeline.targets == ["a", "b"]


def test_windows_per_epoch_draws_that_many_windows_each_epoch():
    from rnnkit.train.callbacks import Callback

    class Steps(Callback):
        def __init__(self) -> None:
            self.sizes: list[int] = []

        def on_epoch_end(self, state) -> None:
            self.sizes.append(state.step)

    steps = Steps()
    run = rnnkit.fit(make_panel(20, 80), window=12, batch_size=32, windows_per_epoch=100,
                     callbacks=[steps], **FAST)
    assert steps.sizes[1:] == [3, 3, 3]  # ceil(100 / 32) steps, not all ~1000 windows
    again = rnnkit.fit(make_panel(20, 80), window=12, batch_size=32, windows_per_epoch=100,
                       **FAST)
    assert [r["val_loss"] for r in run.history] == [r["val_loss"] for r in again.history]
    for name, w in run.model.state_dict().items():  # the draws come from the seed
        assert torch.equal(w, again.model.state_dict()[name]), name


def test_an_interrupted_panel_fit_with_sampled_epochs_resumes_exactly(tmp_path):
    from helpers_faults import interrupted_run

    from rnnkit.api import resume

    path = write_panel(tmp_path / "p.csv", 12, (60, 80))
    opts = {**FAST, "window": 12, "batch_size": 16, "windows_per_epoch": 200,
            "checkpoint_every": 0}
    whole = rnnkit.fit(path, out=tmp_path / "whole", **opts)
    stopped = interrupted_run(path, tmp_path / "cut", "2:5", **opts)  # mid-epoch, mid-draw
    assert (stopped.epoch, stopped.step) == (2, 5)
    again = resume(tmp_path / "cut")
    for name, w in whole.model.state_dict().items():
        assert torch.equal(w, again.model.state_dict()[name]), name
    pd.testing.assert_frame_equal(again.forecast(2), whole.forecast(2))


def test_panel_features_and_longer_horizons():
    df = make_panel(8, 70)
    df["price"] = np.tile(np.linspace(1, 2, 70), 8)
    run = rnnkit.fit(df, features=["price"], window=12, horizon=3, **FAST)
    assert run.pipeline.features == ["price"] and run.metrics["split"]["horizon"] == 3
    pred = run.predict()
    assert list(pred.columns) == ["unique_id", "ds", *[f"y_t+{k}{b}" for k in (1, 2, 3)
                                                       for b in ("", "_lo80", "_hi80", "_lo95",
                                                                 "_hi95")]]
    # past-observed features: one round of the direct 3-step head, no further (issue 15)
    assert len(run.forecast(2)) == 8 * 2
    with pytest.raises(DataError, match=r"at most 3 steps ahead: its features \['price'\]"):
        run.forecast(4)
    plain = rnnkit.fit(df.drop(columns="price"), window=12, horizon=3, **FAST)
    fc = plain.forecast(7)  # three rounds of the 3-step horizon, cut to 7
    assert len(fc) == 8 * 7 and fc.groupby("unique_id").size().eq(7).all()


def test_a_thousand_series_train_as_one_model_from_the_cli(tmp_path, cli):
    # the acceptance run of the scale-out issue: 1,000 threshold-AR series of different
    # magnitudes, one global LSTM, from the command line
    path = tmp_path / "thousand.csv"
    threshold_panel(1000, (80, 120)).to_csv(path, index=False)
    code, out, err = cli("fit", path, "--out", tmp_path / "run", "--epochs", "4",
                         "--early-stopping", "0", "--batch-size", "256", "--quiet")
    assert code == 0, err
    assert "read 1000 series in long format" in out
    m = rnnkit.load(tmp_path / "run").metrics
    assert m["split"]["series"] == 1000
    ar = next(v for k, v in m["baselines"].items() if k.startswith("linear AR"))
    # regimes a linear map cannot follow: the recurrent model is clearly better (scale-free)
    assert m["model"]["mase"] < 0.85 * ar["mase"], (m["model"], ar)
    assert m["model"]["mase"] < min(b["mase"] for b in m["baselines"].values())


def test_panel_from_the_cli_writes_long_csvs(tmp_path, cli):
    path = write_panel(tmp_path / "shops.csv", 30, (50, 70))
    code, out, err = cli("fit", path, "--out", tmp_path / "run", "--window", "12",
                         "--epochs", "3", "--quiet")
    assert code == 0, err
    assert "read 30 series in long format" in out and "model" in out
    code, out, err = cli("forecast", tmp_path / "run", "--steps", "2", "--out",
                         tmp_path / "fc.csv")
    assert code == 0, err
    fc = pd.read_csv(tmp_path / "fc.csv")
    assert list(fc.columns) == ["unique_id", "ds", *with_bands("y")] and len(fc) == 60
    code, _, err = cli("fit", path, "--out", tmp_path / "r2", "--window", "60", "--quiet")
    assert code == 2 and "have fewer than 87 rows" in err and "--skip-short" in err
    assert not (tmp_path / "r2").exists()  # refused before anything was written
    for args, message in [(["--id", "shop"], "column 'shop' not found; available: [unique_id, "
                                              "ds, y]"),
                          (["--id", "y"], "the id, time, target and feature columns must all "
                                          "differ"),
                          (["--precision", "bf16"], "is autocast on CUDA"),
                          (["--device", "tpu"], "device='tpu' is not supported")]:
        code, _, err = cli("fit", path, "--out", tmp_path / "r3", "--quiet", *args)
        assert code == 2 and message in err and err.count("\n") == 1, err
        assert not (tmp_path / "r3").exists()
