"""Covariates in their roles (issue 15): calendar features from the dates, future-known columns
read from a future table at forecast time, past-observed features forecast by a direct head.

The effects are known by construction: a weekend lift that a window too short to see a week
can only learn from the calendar, and a promotion lift of known size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import rnnkit
from rnnkit.data.covariates import leads
from rnnkit.errors import ConfigError, DataError

WEEKEND_LIFT = 4.0
PROMO_LIFT = 5.0


def ar1(n: int, rng: np.random.Generator, phi: float) -> np.ndarray:
    e = np.zeros(n)
    for t in range(1, n):
        e[t] = phi * e[t - 1] + rng.normal()
    return e


def weekend_series(n: int = 730, seed: int = 0) -> pd.DataFrame:
    """Daily: level 10, +4 on Saturdays and Sundays, AR(1) noise."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2020-01-01", periods=n, freq="D")
    return pd.DataFrame({"ds": ds, "y": 10 + WEEKEND_LIFT * (ds.day_of_week >= 5)
                         + ar1(n, rng, 0.5)})


def promo_series(n: int = 800, ahead: int = 60, seed: int = 1) -> tuple[pd.DataFrame,
                                                                        pd.DataFrame]:
    """Daily sales: level 20, +5 on planned promotion days (15% of days), AR(1) noise; and
    the plan of the ``ahead`` days after the data."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2021-01-01", periods=n + ahead, freq="D")
    promo = (rng.random(n + ahead) < 0.15).astype(float)
    y = 20 + PROMO_LIFT * promo + ar1(n + ahead, rng, 0.6)
    return (pd.DataFrame({"ds": ds[:n], "y": y[:n], "promo": promo[:n]}),
            pd.DataFrame({"ds": ds[n:], "promo": promo[n:]}))


@pytest.fixture(scope="module")
def promo_run() -> tuple[rnnkit.Run, pd.DataFrame, pd.DataFrame]:
    data, plan = promo_series()
    run = rnnkit.fit(data, target="y", future_features=["promo"], calendar="none",
                     quiet=True, seed=0)
    return run, data, plan


# --- the lead rule ------------------------------------------------------------------------------
def test_each_row_carries_the_known_values_of_the_rows_it_forecasts():
    block = np.arange(10, dtype=np.float32).reshape(5, 2)  # rows 0..4 of two covariates
    got = leads(block, 2)
    np.testing.assert_array_equal(got[0], [2, 3, 4, 5])  # rows 1 and 2
    np.testing.assert_array_equal(got[3, :2], [8, 9])  # row 4
    assert np.isnan(got[3, 2:]).all() and np.isnan(got[4]).all()  # past the end: unknown


# --- calendar -----------------------------------------------------------------------------------
def test_a_weekend_effect_a_short_window_cannot_see_is_learned_from_the_calendar():
    df = weekend_series()
    with_cal = rnnkit.fit(df, target="y", window=3, quiet=True, seed=0)
    without = rnnkit.fit(df, target="y", window=3, quiet=True, seed=0, calendar="none")
    assert with_cal.pipeline.known.calendar == ("weekday", "dayofyear")
    assert any(n.startswith("calendar features kept: weekday (one-hot), day of year")
               for n in with_cal.config["notes"])  # both cycles are longer than 3 days
    a, b = with_cal.metrics["model"]["rmse"], without.metrics["model"]["rmse"]
    assert a <= 0.8 * b, (a, b)  # at least 20% lower test RMSE
    fc = with_cal.forecast(14)  # the calendar of future dates is generated
    weekend = fc.index.day_of_week >= 5
    assert fc["y"][weekend].mean() - fc["y"][~weekend].mean() == pytest.approx(
        WEEKEND_LIFT, rel=0.25)


def test_calendar_features_are_judged_by_whether_the_window_sees_their_cycle():
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"ds": pd.date_range("2020-01-01", periods=600, freq="D"),
                       "y": 5 + ar1(600, rng, 0.7)})
    run = rnnkit.fit(df, target="y", window=14, quiet=True, seed=0, epochs=3)
    # no calendar effect at all: the weekday (a cycle the 14-day window sees) must help to
    # stay and does not; the day of year (a cycle no window sees) stays unless it hurts
    assert run.pipeline.known.calendar == ("dayofyear",)
    notes = " ".join(run.config["notes"])
    assert "calendar features left out: weekday (one-hot) (their cycle fits in the window" in notes
    assert ("calendar features kept: day of year (sine/cosine) (their cycle is longer than the "
            "window") in notes
    asked = rnnkit.fit(df, target="y", quiet=True, seed=0, epochs=3, calendar="weekday")
    assert asked.pipeline.known.calendar == ("weekday",)  # what the user names is kept


def test_a_saved_calendar_run_forecasts_the_same_without_its_data(tmp_path: Path):
    run = rnnkit.fit(weekend_series(400), target="y", window=3, quiet=True, seed=0, epochs=3,
                     calendar="weekday", holidays="US", out=tmp_path / "run")
    loaded = rnnkit.load(tmp_path / "run")
    assert loaded.pipeline.known == run.pipeline.known
    assert loaded.pipeline.known.columns[-1] == "cal_holiday"
    pd.testing.assert_frame_equal(loaded.forecast(10), run.forecast(10))
    html = (tmp_path / "run" / "report.html").read_text()
    assert "<td>calendar features</td><td>weekday</td>" in html
    assert "<td>public holidays</td><td>US</td>" in html


def test_calendar_options_are_checked_in_one_line():
    df = weekend_series(200)
    with pytest.raises(ConfigError, match="Did you mean 'weekday'"):
        rnnkit.fit(df, target="y", calendar="wekday", quiet=True, epochs=1)
    with pytest.raises(ConfigError, match="--holidays"):
        rnnkit.fit(df, target="y", holidays="XX", quiet=True, epochs=1)
    plain = pd.DataFrame({"y": df["y"].to_numpy()})
    with pytest.raises(ConfigError, match="calendar features need dates"):
        rnnkit.fit(plain, target="y", calendar="weekday", quiet=True, epochs=1)
    assert rnnkit.fit(plain, target="y", quiet=True, epochs=1).pipeline.known.columns == []


# --- future-known covariates -------------------------------------------------------------------
def test_a_planned_promotion_lifts_the_forecast_by_its_known_size(promo_run):
    run, _, plan = promo_run
    fc = run.forecast(60, future=plan)
    on = plan["promo"].to_numpy() == 1
    lift = fc["y"][on].mean() - fc["y"][~on].mean()
    assert lift == pytest.approx(PROMO_LIFT, rel=0.25), lift
    # the univariate baselines are scored beside it: what the promotion adds shows
    base = min(b["rmse"] for b in run.metrics["baselines"].values())
    assert run.metrics["model"]["rmse"] < 0.7 * base


def test_the_future_table_is_aligned_by_date_not_by_row_order(promo_run):
    run, _, plan = promo_run
    shuffled = plan.sample(frac=1.0, random_state=0)
    pd.testing.assert_frame_equal(run.forecast(20, future=shuffled), run.forecast(20, future=plan))


def test_forecasting_without_the_needed_future_values_is_refused(promo_run):
    run, _, plan = promo_run
    with pytest.raises(DataError, match=r"future features \['promo'\] for 5 rows from "
                                        r"2023-03-12; pass them with --future"):
        run.forecast(5)
    with pytest.raises(DataError, match="no row for date 2023-03-22"):
        run.forecast(11, future=plan.head(10))


@pytest.mark.parametrize(("edit", "needle"), [
    ("missing_column", "no column 'promo'"),
    ("missing_date", "no row for date 2023-03-13"),
    ("duplicated_date", "date 2023-03-13 appears more than once"),
    ("nan", "column 'promo' has no value for date 2023-03-14"),
    ("text", "column 'promo' has 'yes' for date 2023-03-12, which is not a number"),
    ("no_time", "no time column 'ds'"),
])
def test_a_bad_future_file_stops_the_forecast_with_exit_2_and_one_line(
        promo_run, tmp_path: Path, cli, edit: str, needle: str):
    run, _, plan = promo_run
    run.save(tmp_path / "run", plots=False)
    bad = plan.copy()
    if edit == "missing_column":
        bad = bad.rename(columns={"promo": "promotion"})
    elif edit == "missing_date":
        bad = bad.drop(index=bad.index[1])
    elif edit == "duplicated_date":
        bad = pd.concat([bad.iloc[:2], bad.iloc[1:]])
    elif edit == "nan":
        bad["promo"] = bad["promo"].astype(object)
        bad.iloc[2, 1] = None
    elif edit == "text":
        bad["promo"] = bad["promo"].astype(object)
        bad.iloc[0, 1] = "yes"
    elif edit == "no_time":
        bad = bad.drop(columns="ds")
    bad.to_csv(tmp_path / "plan.csv", index=False)
    code, out, err = cli("forecast", tmp_path / "run", "--steps", "5", "--future",
                         tmp_path / "plan.csv")
    assert code == 2 and err.count("\n") == 1 and needle in err, err
    assert "Traceback" not in err and out == ""


def test_the_cli_fits_with_future_features_and_forecasts_from_a_future_file(tmp_path: Path, cli):
    data, plan = promo_series(500, 10)
    data.to_csv(tmp_path / "sales.csv", index=False)
    plan.to_csv(tmp_path / "plan.csv", index=False)
    code, _, err = cli("fit", "sales.csv", "--target", "y", "--future-features", "promo",
                         "--calendar", "none", "--epochs", "3", "--quiet", "--out", "run",
                         cwd=tmp_path)
    assert code == 0, err
    code, _, err = cli("forecast", "run", "--steps", "10", "--future", "plan.csv", "--out",
                         "fc.csv", "--plot", "fc.png", cwd=tmp_path)
    assert code == 0, err
    # the plot: the run's kept last rows, the forecast, the plan under it
    assert "wrote the plot to fc.png" in err and (tmp_path / "fc.png").stat().st_size > 10_000
    fc = pd.read_csv(tmp_path / "fc.csv", parse_dates=["ds"])
    assert fc["ds"].tolist() == plan["ds"].tolist()
    expected = rnnkit.load(tmp_path / "run").forecast(10, future=plan)
    np.testing.assert_allclose(fc["y"], expected["y"], rtol=1e-6)
    code, _, err = cli("forecast", "run", "--steps", "10", cwd=tmp_path)
    assert code == 2 and err.count("\n") == 1 and "--future CSV" in err


# --- past-observed covariates ------------------------------------------------------------------
def test_past_features_forecast_up_to_the_horizon_on_the_real_macro_data(data_dir: Path):
    run = rnnkit.fit(data_dir / "us_macro_quarterly.csv", target="realgdp",
                     features=["realcons", "realinv", "unemp"], horizon=4, quiet=True,
                     seed=0, epochs=20)
    fc = run.forecast(4)  # four quarters ahead, no future values of the features needed
    assert len(fc) == 4 and str(fc.index[0].date()) == "2009-10-01"
    assert np.isfinite(fc["realgdp"]).all()
    last = pd.read_csv(data_dir / "us_macro_quarterly.csv")["realgdp"].iloc[-1]
    assert (abs(fc["realgdp"] / last - 1) < 0.1).all()  # a year of GDP moves a few percent
    with pytest.raises(DataError, match=r"at most 4 steps ahead: its features \['realcons', "
                                        r"'realinv', 'unemp'\] are known only up to the last row"):
        run.forecast(5)


def test_a_feature_cannot_be_both_past_and_future():
    data, _ = promo_series(200, 1)
    with pytest.raises(ConfigError, match="'promo' is given both as a feature"):
        rnnkit.fit(data, target="y", features=["promo"], future_features=["promo"], quiet=True)


# --- the doctor --------------------------------------------------------------------------------
def test_the_doctor_shuffles_each_covariate_and_names_the_ones_that_matter(tmp_path: Path):
    data, _ = promo_series()
    data["noise"] = np.random.default_rng(5).normal(size=len(data))
    run = rnnkit.fit(data, target="y", future_features=["promo"], features=["noise"],
                     calendar="none", horizon=2, quiet=True, seed=0)
    found = {f.code: f for f in run.diagnose(control=False)}
    rise = found["covariates"].evidence
    assert rise["rise_promo"] > 1.0  # the promotion carries most of the signal
    assert abs(rise["rise_noise"]) < 0.01
    assert "noise adds almost nothing" in found["idle-covariate"].message
    assert "promo" not in found["idle-covariate"].message
    # the plot draws each covariate under the target, ranked by these shuffles, in the report
    folder = run.save(tmp_path / "run")
    assert (folder / "covariates.png").stat().st_size > 10_000
    html = (folder / "report.html").read_text()
    assert 'alt="covariates"' in html and "when each one is shuffled" in html


# --- streaming ---------------------------------------------------------------------------------
@pytest.mark.parametrize("transform", ["none", "diff"])
def test_a_window_stream_dates_each_value_and_equals_forecasting_the_extended_data(transform):
    df = weekend_series(300)
    run = rnnkit.fit(df, target="y", window=3, calendar="weekday", transform=transform,
                     epochs=2, quiet=True, seed=0)
    stream, rows = run.stream(), df
    for v in [11.0, 14.5, 13.9, 10.2, 9.8, 10.4]:
        got = stream.update(v)
        rows = pd.concat([rows, pd.DataFrame({"ds": [rows.ds.max() + pd.Timedelta(days=1)],
                                              "y": [v]})], ignore_index=True)
        if len(rows) - len(df) >= run.pipeline.window + int(run.pipeline.diff):
            expected = run.forecast(1, data=rows.iloc[len(df):])["y"].iloc[0]
            # the table holds float32 rows, the stream the float64 values it was given
            assert float(got[0]) == pytest.approx(float(expected), rel=1e-6)
    assert stream.at == "2020-11-01T00:00:00"  # six days after the data's last, 2020-10-26


@pytest.mark.parametrize("transform", ["none", "diff"])
def test_a_per_step_stream_carries_its_state_like_the_model_over_the_whole_sequence(transform):
    df = weekend_series(300)
    run = rnnkit.fit(df, target="y", window=7, calendar="weekday", shape="next",
                     transform=transform, epochs=2, quiet=True, seed=0)
    pipe = run.pipeline
    new = pd.DataFrame({"ds": pd.date_range("2020-10-27", periods=13, freq="D"),
                        "y": 10 + np.arange(13) % 5})  # the 13th day gives the 12th its lead
    stream = run.stream()
    got = np.array([stream.update(v)[0] for v in new["y"][:12]])
    # the same rows (dated, with their calendar and the next day's) through the model at once
    rows = run.pipeline.working(rnnkit_rows(run, new))
    x = torch.from_numpy(pipe.scaler.transform(rows[: 12 - int(pipe.diff)]))[None]
    y = pipe.scaler.inverse(run.model(x)[0].detach().numpy()[0], slice(0, 1))[:, 0]
    expected = new["y"].to_numpy()[int(pipe.diff):12] + y if pipe.diff else y
    np.testing.assert_allclose(got[int(pipe.diff):], expected, rtol=1e-5)
    assert np.isnan(got[0]) == bool(pipe.diff)


def rnnkit_rows(run: rnnkit.Run, frame: pd.DataFrame) -> np.ndarray:
    """The table rows (target, weekday one-hot) of ``frame`` as the run reads them."""
    from rnnkit.data import covariates
    from rnnkit.data.read import read_table

    return covariates.attach(read_table(frame, target="y"), run.pipeline.known).values
