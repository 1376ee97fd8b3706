"""Covariates of panels (issue 15 for long tables): future-known columns read from a long future
table aligned by series and date, calendar features from each row's time, past features up to
the horizon, and static columns (one value per series; text embedded by the network).

The effects are known by construction: a promotion lift of known size, a weekend lift a window
of three days cannot see, and two regions whose series move by different rules that one window
value cannot tell apart.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from test_covariates import ar1

import rnnkit
from rnnkit.data import compact as compact_module
from rnnkit.data.compact import Column, KnownColumns, compact
from rnnkit.errors import DataError

PROMO_LIFT = 0.3  # a promotion day sells 30% more than the series' level
WEEKEND_LIFT = 0.3


def promo_panel(series: int = 12, n: int = 240, ahead: int = 30, seed: int = 0
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Daily sales of ``series`` shops at levels 10..1000: the level, +30% on planned promotion
    days (15% of days), AR(1) noise; and the plan of the ``ahead`` days after the data."""
    rng = np.random.default_rng(seed)
    data, plan = [], []
    for i in range(series):
        ds = pd.date_range("2021-01-01", periods=n + ahead, freq="D")
        promo = (rng.random(n + ahead) < 0.15).astype(float)
        level = 10 ** rng.uniform(1, 3)
        y = level * (1 + PROMO_LIFT * promo + 0.05 * ar1(n + ahead, rng, 0.6))
        sid = f"shop{i:02d}"
        data.append(pd.DataFrame({"unique_id": sid, "ds": ds[:n], "y": y[:n],
                                  "promo": promo[:n]}))
        plan.append(pd.DataFrame({"unique_id": sid, "ds": ds[n:], "promo": promo[n:]}))
    return pd.concat(data, ignore_index=True), pd.concat(plan, ignore_index=True)


def region_panel(series: int = 40, n: int = 200, seed: int = 0) -> pd.DataFrame:
    """Series at levels 10..1000 whose changes follow their region's rule: in the north each
    deviation persists (AR(1), phi 0.8), in the south it flips sign (phi -0.6). One value of a
    series does not say which; its static region does."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(series):
        region = "north" if i % 2 == 0 else "south"
        level = 10 ** rng.uniform(1, 3)
        x = ar1(n, rng, 0.8 if region == "north" else -0.6)
        frames.append(pd.DataFrame({"unique_id": f"s{i:02d}", "y": level * (1 + 0.1 * x),
                                    "ds": pd.date_range("2020-01-01", periods=n, freq="D"),
                                    "region": region, "size": round(level)}))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def promo_run(tmp_path_factory) -> tuple[rnnkit.Run, pd.DataFrame, pd.DataFrame, Path]:
    data, plan = promo_panel()
    run = rnnkit.fit(data, future_features=["promo"], calendar="none", quiet=True, seed=0,
                     epochs=15)
    folder = run.save(tmp_path_factory.mktemp("promo") / "run", plots=False)
    return run, data, plan, folder


# --- future-known covariates -------------------------------------------------------------------
def test_a_planned_promotion_lifts_every_shop_by_its_known_share(promo_run):
    run, data, plan, _ = promo_run
    fc = run.forecast(30, future=plan)
    assert len(fc) == 12 * 30 and list(fc.columns[:3]) == ["unique_id", "ds", "y"]
    both = fc.merge(plan, on=["unique_id", "ds"])
    level = data.groupby("unique_id").y.median()
    both["share"] = both.y / both.unique_id.map(level)
    by = both.groupby(["unique_id", "promo"]).share.mean().unstack()
    lift = float((by[1.0] - by[0.0]).mean())
    assert lift == pytest.approx(PROMO_LIFT, rel=0.25), lift


def test_the_future_table_is_matched_by_series_and_date_not_by_row_order(promo_run):
    run, _, plan, _ = promo_run
    shuffled = plan.sample(frac=1.0, random_state=0)
    pd.testing.assert_frame_equal(run.forecast(10, future=shuffled),
                                  run.forecast(10, future=plan))


def test_a_forecast_from_the_last_row_equals_the_prediction_there(promo_run):
    # the windows of training (joined per batch) and of forecasts (rolled) read the same inputs
    run, data, _, _ = promo_run
    last = data.groupby("unique_id").tail(1)
    fc = run.forecast(1, data=data.drop(index=last.index), future=last.drop(columns="y"))
    pred = run.predict().groupby("unique_id").tail(1)
    np.testing.assert_allclose(fc["y"].to_numpy(), pred["y"].to_numpy(), rtol=1e-5)


@pytest.mark.parametrize(("edit", "needle"), [
    ("no_file", "file not found"),
    ("missing_column", "no column 'promo', a future feature of the run"),
    ("missing_date", "no row for series shop01 at date 2021-08-30"),
    ("duplicated_date", "series shop00 has more than one row for date 2021-08-30"),
    ("nan", "column 'promo' has no value for series shop02 at date 2021-08-31"),
    ("text", "column 'promo' has 'yes' for series shop00 at date 2021-08-29, which is not a"),
])
def test_a_bad_future_table_stops_the_forecast_with_exit_2_and_one_line(
        promo_run, tmp_path: Path, cli, edit: str, needle: str):
    _, _, plan, folder = promo_run
    bad = plan.copy()
    shop = bad.unique_id.to_numpy()
    if edit == "missing_column":
        bad = bad.rename(columns={"promo": "promotion"})
    elif edit == "missing_date":
        bad = bad.drop(index=bad.index[(shop == "shop01")][1])
    elif edit == "duplicated_date":
        bad = pd.concat([bad.iloc[:2], bad.iloc[1:]])
    elif edit in ("nan", "text"):
        bad["promo"] = bad["promo"].astype(object)
        row = bad.index[(shop == "shop02")][2] if edit == "nan" else bad.index[0]
        bad.loc[row, "promo"] = None if edit == "nan" else "yes"
    path = tmp_path / "plan.csv"
    if edit != "no_file":
        bad.to_csv(path, index=False)
    code, out, err = cli("forecast", folder, "--steps", "5", "--future", path)
    assert code == 2 and err.count("\n") == 1 and needle in err, err
    assert "Traceback" not in err and out == ""


def test_the_cli_fits_a_panel_with_covariates_and_forecasts_from_a_future_file(tmp_path, cli):
    data, plan = promo_panel(4, 120, 6)
    data["region"] = data.unique_id.map({"shop00": "north", "shop01": "south",
                                         "shop02": "north", "shop03": "south"})
    data.to_csv(tmp_path / "sales.csv", index=False)
    plan.to_csv(tmp_path / "plan.csv", index=False)
    code, _, err = cli("fit", "sales.csv", "--future-features", "promo", "--static", "region",
                       "--calendar", "none", "--epochs", "2", "--quiet", "--out", "run",
                       cwd=tmp_path)
    assert code == 0, err
    code, _, err = cli("forecast", "run", "--steps", "6", "--future", "plan.csv", "--out",
                       "fc.csv", cwd=tmp_path)
    assert code == 0, err
    fc = pd.read_csv(tmp_path / "fc.csv", parse_dates=["ds"])
    expected = rnnkit.load(tmp_path / "run").forecast(6, future=plan)
    assert fc[["unique_id", "ds"]].astype(str).equals(expected[["unique_id", "ds"]].astype(str))
    np.testing.assert_allclose(fc["y"], expected["y"], rtol=1e-6)


def test_forecasting_without_the_plan_says_what_it_needs(promo_run):
    run = promo_run[0]
    with pytest.raises(DataError, match=r"future features \['promo'\] for 5 rows of each of "
                                        r"the 12 series from 2021-08-29; pass them with --future"):
        run.forecast(5)
    # a stream of the series asks for the plan with each update (tests/test_stream_covariates)
    with pytest.raises(DataError, match=r"this run reads the coming values of its future "
                                        r"features \['promo'\]; pass update\(value, future="):
        run.stream(series="shop00").update(30.0)


# --- calendar ----------------------------------------------------------------------------------
def test_a_weekend_lift_a_short_window_cannot_see_is_learned_from_the_dates():
    rng = np.random.default_rng(1)
    frames = []
    for i in range(8):
        ds = pd.date_range("2021-01-01", periods=300, freq="D")
        level = 10 ** rng.uniform(1, 2)
        y = level * (1 + WEEKEND_LIFT * (ds.day_of_week >= 5) + 0.05 * ar1(300, rng, 0.5))
        frames.append(pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": y}))
    df = pd.concat(frames, ignore_index=True)
    run = rnnkit.fit(df, window=3, quiet=True, seed=0, epochs=15)
    # auto: the weekday (a cycle the window cannot hold) stays unless it hurts, and helps here
    assert run.pipeline.known.calendar == ("weekday", "dayofyear")
    assert any(n.startswith("calendar features kept: weekday") for n in run.config["notes"]), (
        run.config["notes"])
    fc = run.forecast(14)
    fc["share"] = fc.y / fc.unique_id.map(df.groupby("unique_id").y.median())
    weekend = pd.DatetimeIndex(fc.ds).day_of_week >= 5
    lift = fc.share[weekend].mean() - fc.share[~weekend].mean()
    assert lift == pytest.approx(WEEKEND_LIFT, rel=0.25), lift


# --- past-observed features --------------------------------------------------------------------
def test_past_features_forecast_up_to_the_horizon_and_say_why_not_further():
    rng = np.random.default_rng(2)
    df = region_panel(6, 80).drop(columns=["region", "size"])
    df["price"] = rng.random(len(df))
    run = rnnkit.fit(df, features=["price"], calendar="none", horizon=3, quiet=True, seed=0,
                     epochs=2)
    fc = run.forecast(3)  # a direct 3-step head: no future prices needed
    assert len(fc) == 6 * 3 and np.isfinite(fc["y"]).all()
    with pytest.raises(DataError, match=r"at most 3 steps ahead: its features \['price'\] are "
                                        "known only up to the last row"):
        run.forecast(4)


# --- static covariates -------------------------------------------------------------------------
def test_a_categorical_static_tells_the_global_model_each_series_rule():
    df = region_panel()
    opts = {"calendar": "none", "window": 1, "transform": "none", "quiet": True, "seed": 0,
            "epochs": 20, "hidden_size": 8}
    blind = rnnkit.fit(df.drop(columns=["region", "size"]), **opts)
    told = rnnkit.fit(df, static=["region", "size"], **opts)
    assert told.model.cfg.categories == (2,) and told.model.cfg.embedding_sizes == (1,)
    assert told.pipeline.statics.numeric == ("size",)
    a, b = told.metrics["model"]["mase"], blind.metrics["model"]["mase"]
    assert a < 0.8 * b, (a, b)  # at least 20% lower scale-free error


@pytest.mark.parametrize(("edit", "needle"), [
    ("changes", "static column 'region' is not constant within series s01: it has 'north' and "
                "'south'"),
    ("missing", "static column 'size' has no value for series s00 (row 3)"),
    ("feature", "column 'size' is given as a static (one value per series) and as a feature"),
])
def test_static_columns_are_checked_in_one_line(edit: str, needle: str):
    df = region_panel(4, 60)
    features = None
    if edit == "changes":
        df.loc[df.index[(df.unique_id == "s01").to_numpy()][5], "region"] = "north"
    elif edit == "missing":
        df["size"] = df["size"].astype(float)
        df.loc[2, "size"] = np.nan
    else:
        features = ["size"]
    with pytest.raises(DataError) as caught:
        rnnkit.fit(df, static=["region", "size"], features=features, quiet=True, epochs=1)
    assert needle in str(caught.value) and "\n" not in str(caught.value), caught.value


def test_a_saved_run_with_every_covariate_forecasts_the_same_and_refuses_new_categories(
        tmp_path: Path):
    df = region_panel(8, 120)
    rng = np.random.default_rng(3)
    df["promo"] = (rng.random(len(df)) < 0.2).astype(float)
    run = rnnkit.fit(df, static=["region", "size"], future_features=["promo"],
                     calendar="weekday", horizon=2, quiet=True, seed=0, epochs=2)
    loaded = rnnkit.load(run.save(tmp_path / "run", plots=False))
    ahead = pd.DataFrame({"unique_id": np.repeat(sorted(df.unique_id.unique()), 6),
                          "ds": np.tile(pd.date_range("2020-04-30", periods=6), 8),
                          "promo": np.tile([0.0, 1.0, 0.0, 0.0, 1.0, 0.0], 8)})
    fc = run.forecast(6, future=ahead)
    pd.testing.assert_frame_equal(loaded.forecast(6, future=ahead), fc)
    pd.testing.assert_frame_equal(loaded.predict(df), run.predict())
    # new data without its static columns: each series keeps the run's own
    bare = df.drop(columns=["region", "size"])
    pd.testing.assert_frame_equal(loaded.forecast(6, data=bare, future=ahead), fc)
    with pytest.raises(DataError, match=r"static column 'region' has category 'nord' \(series "
                                        r"s00\), which the run was not trained on; known "
                                        r"categories: north, south\. .*Did you mean 'north'\?"):
        loaded.predict(df.assign(region=df.region.replace("north", "nord")))


def test_a_panel_series_with_statics_streams_like_forecasting_its_extended_table():
    df = region_panel(6, 80)
    run = rnnkit.fit(df, static=["region"], calendar="none", window=5, quiet=True, seed=0,
                     epochs=2)
    own = df[df.unique_id == "s03"]
    stream, rows = run.stream(series="s03"), own
    for v in own.y.iloc[-3:].to_numpy() * 1.01:
        got = float(stream.update(v)[0])
        rows = pd.concat([rows, pd.DataFrame({"unique_id": ["s03"], "y": [v], "ds": [
            rows.ds.max() + pd.Timedelta(days=1)], "region": ["south"]})])
        assert got == pytest.approx(float(run.forecast(1, data=rows)["y"].iloc[0]), rel=1e-6)


def test_learned_intervals_come_from_sample_paths_through_the_covariates():
    df = region_panel(6, 100)
    run = rnnkit.fit(df, static=["region"], calendar="weekday", loss="gaussian", window=5,
                     quiet=True, seed=0, epochs=2)
    fc = run.forecast(4)
    assert len(fc) == 6 * 4
    assert (fc["y_lo80"] < fc["y"]).all() and (fc["y"] < fc["y_hi80"]).all()
    assert (fc["y_lo95"] < fc["y_lo80"]).all() and (fc["y_hi80"] < fc["y_hi95"]).all()


def test_a_panel_with_only_a_categorical_static_exports_its_stateful_step(tmp_path):
    import json

    import onnx
    import onnxruntime as ort

    from rnnkit.export import export_onnx

    df = region_panel(8, 120)
    run = rnnkit.fit(df, static=["region"], calendar="none", window=12, epochs=1, quiet=True,
                     seed=0)
    path = export_onnx(run, tmp_path / "p.onnx", stateful=True)  # was refused before
    meta = {p.key: p.value for p in onnx.load(path).metadata_props}
    own, need = json.loads(meta["series"])["s01"], run.pipeline.window + int(run.pipeline.diff)
    feed = {"x": np.array([[50.0]]), "seen": np.array([need]),
            "buffer": df.loc[df.unique_id == "s01", "y"].to_numpy()[None, -need:, None],
            **{k: np.array([own[k]]) for k in ("shift", "scale", "static")}}
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert json.loads(meta["inputs"])[-1] == "static" and own["static"] == [1.0]  # south
    y = sess.run(["y"], feed)[0][0]
    np.testing.assert_allclose(y, run.stream(series="s01").update(50.0), rtol=1e-5)


# --- compact storage of the known covariates ---------------------------------------------------
def test_known_columns_are_stored_in_fewer_bytes_and_decode_to_the_very_same_floats():
    rng = np.random.default_rng(0)
    n = 50_000
    flag = (rng.random(n) < 0.1).astype(np.float32)
    prices = rng.choice(np.arange(99, 2000, 10) / 100, n).astype(np.float32)  # 191 levels
    levels = rng.integers(0, 20_000, n).astype(np.float32) / 7  # 20,000 levels
    zeros = np.array([0.0, -0.0, 1.5] * 10, dtype=np.float32)  # -0.0 is not 0.0 bitwise
    many = rng.normal(size=n).astype(np.float32)
    originals = [flag, prices, levels, many]
    block = KnownColumns.of(np.stack(originals, axis=1))
    assert [c.data.dtype for c in block.columns] == [np.uint8, np.uint8, np.int16, np.float32]
    assert [c.data.nbytes for c in block.columns] == [n, n, 2 * n, 4 * n]  # 4 * n each before
    rows = rng.integers(0, n, (7, 5))
    assert block.take(rows).tobytes() == np.stack(originals, axis=-1)[rows].tobytes()
    assert block.take(slice(None)).tobytes() == np.stack(originals, axis=-1).tobytes()
    assert compact(zeros)[:].tobytes() == zeros.tobytes()
    starts = [0, 9, 400]  # what a batch of windows reads: (B, K, 6) rows from each start
    spans = block.tensors(torch.device("cpu")).spans(torch.tensor(starts), 6)
    want = np.stack([np.stack([c[s : s + 6] for c in originals]) for s in starts])
    assert spans.numpy().tobytes() == want.tobytes()


def test_a_fit_with_coded_known_columns_equals_one_with_them_stored_plainly(monkeypatch):
    data, plan = promo_panel(series=6, n=120, ahead=8)
    data["price"] = np.random.default_rng(1).choice([1.49, 1.99, 2.49], len(data))
    plan["price"] = 1.99
    opts = dict(future_features=["promo", "price"], calendar="weekday", horizon=2, window=10,
                epochs=2, quiet=True, seed=0)
    coded = rnnkit.fit(data, **opts)
    assert {c.data.dtype for c in coded.data.dataset.known_values.columns} == {np.dtype("uint8")}
    monkeypatch.setattr(compact_module, "compact",
                        lambda v: Column(np.ascontiguousarray(v, dtype=np.float32)))
    plain = rnnkit.fit(data, **opts)
    assert {c.lookup is None for c in plain.data.dataset.known_values.columns} == {True}
    for a, b in zip(coded.model.parameters(), plain.model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert coded.metrics["model"] == plain.metrics["model"]
    pd.testing.assert_frame_equal(coded.forecast(8, future=plan), plain.forecast(8, future=plan))
    pd.testing.assert_frame_equal(coded.predict(), plain.predict())


def _awkward_panel() -> pd.DataFrame:
    """Three series of daily rows in shuffled order, a repeated date with other known values,
    a gap of two days, and a known price level (9.5) that only a row with a missing target has."""
    rng = np.random.default_rng(3)
    days = pd.date_range("2024-01-01", periods=30, freq="D")
    df = pd.DataFrame({"unique_id": np.repeat(["a", "b", "c"], 30), "ds": np.tile(days, 3),
                       "y": rng.normal(10, 1, 90), "past": rng.normal(size=90),
                       "promo": rng.integers(0, 2, 90).astype(float),
                       "price": rng.choice([1.49, 1.99, -0.0, 0.0], 90),
                       "level": rng.normal(size=90)})
    df.loc[5, ["y", "price"]] = [np.nan, 9.5]
    df = df.drop(index=[40, 41])  # a gap in series b
    repeat = df.iloc[[70]].assign(promo=1 - df.promo.iloc[70], price=2.49, y=0.0)
    return pd.concat([df, repeat]).sample(frac=1, random_state=0).reset_index(drop=True)


@pytest.mark.parametrize("fill", ["ffill", "drop"])
@pytest.mark.parametrize("duplicates", ["first", "last", "mean"])
@pytest.mark.parametrize("missing_known", [False, True])
def test_known_columns_coded_as_read_equal_coding_them_after_the_row_rules(
        fill, duplicates, missing_known):
    from rnnkit.data.read_panel import read_panel

    df = _awkward_panel()
    if missing_known:
        df.loc[7, "level"] = np.nan  # a known cell the fill rules must see
    known = ["promo", "price", "level"]
    got = read_panel(df, features=["past"], fill=fill, duplicates=duplicates, known=known)
    whole = read_panel(df, features=["past", *known], fill=fill, duplicates=duplicates)
    want = KnownColumns.of(whole.values[:, 2:])
    assert got.values.tobytes() == np.ascontiguousarray(whole.values[:, :2]).tobytes()
    assert (got.features, got.known, got.notes) == (["past"], known, whole.notes)
    assert got.times.tobytes() == whole.times.tobytes() and got.ids == whole.ids
    for a, b in zip(got.known_values.columns, want.columns, strict=True):
        assert a.data.dtype == b.data.dtype and a.data.tobytes() == b.data.tobytes()
        assert (a.lookup is None) == (b.lookup is None)
        assert a.lookup is None or a.lookup.tobytes() == b.lookup.tobytes()


@pytest.mark.parametrize(("column", "cell", "message"), [
    ("promo", "yes", r"<DataFrame>: column 'promo' row \d+ has 'yes', which is not a number"),
    ("price", np.inf, r"<DataFrame>: column 'price' row \d+ is inf; infinity cannot"),
    ("level", np.nan, r"<DataFrame>: column 'level' has 1 missing value\(s\) \(row \d+\)"),
])
def test_a_bad_known_cell_is_the_same_one_line_error_as_before(column, cell, message):
    from rnnkit.data.read_panel import read_panel

    # without its dates (no gap or repeat to report first) and with every target
    df = _awkward_panel().drop(columns="ds").astype({column: object, "past": object})
    df["y"] = df["y"].fillna(0.0)
    df.loc[df.index[-1], column] = cell
    df.loc[df.index[-2], "past"] = "?"  # read first: its error comes first, as it did
    with pytest.raises(DataError, match="column 'past'"):
        read_panel(df, features=["past"], known=["promo", "price", "level"])
    df.loc[df.index[-2], "past"] = 0.0
    for features, known in ((["past", "promo", "price", "level"], None),
                            (["past"], ["promo", "price", "level"])):
        with pytest.raises(DataError, match=message):
            read_panel(df, features=features, known=known)
