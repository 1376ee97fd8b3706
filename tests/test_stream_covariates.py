"""Streaming runs whose inputs include covariates known ahead (issue 15): a series run's
future features and calendar, and one series of a panel with them (``KnownStream``).

Each update gives the observation and each future feature's values for the ``lead`` rows after
it (the first update also its own row's); the forecast it returns must equal ``Run.forecast``'s
one-step forecast from the same history with the same future values. The values are rounded
to float32 first, as the table a forecast reads holds them, so the two agree to the last bit
(or within 1e-6 where a per-step model's step and the full sequence sum differently).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import rnnkit
from rnnkit.errors import DataError
from tests.test_panel_covariates import promo_panel

NEW = 10  # observations streamed past the fitted data


def promo_days(n: int = 300, ahead: int = NEW + 3, seed: int = 1) -> pd.DataFrame:
    """Daily sales: level 20, +5 on planned promotion days (20% of days), noise; the first
    ``n`` rows are fitted, the rest streamed."""
    rng = np.random.default_rng(seed)
    promo = (rng.random(n + ahead) < 0.2).astype(float)
    y = (20 + 5 * promo + rng.normal(size=n + ahead)).astype(np.float32).astype(float)
    return pd.DataFrame({"ds": pd.date_range("2021-01-01", periods=n + ahead, freq="D"),
                         "y": y, "promo": promo})


def plan_for(new: pd.DataFrame, j: int, lead: int) -> dict[str, list[float]]:
    """What update j gives: the promo of the lead rows after it; the first, its own too."""
    return {"promo": new.promo[j + int(j > 0) : j + 1 + lead].tolist()}


@pytest.mark.parametrize("options", [
    {"calendar": "none"},
    {"calendar": "none", "transform": "diff", "horizon": 2},
    {"calendar": "weekday", "transform": "diff", "horizon": 2},
    {"calendar": "none", "shape": "next"},
    {"calendar": "none", "shape": "next", "transform": "diff"},
], ids=["window", "window-diff-h2", "window-diff-h2-calendar", "next", "next-diff"])
def test_a_stream_with_future_values_equals_the_forecast_of_the_same_history(options):
    df = promo_days()
    run = rnnkit.fit(df.iloc[:300], target="y", future_features=["promo"], window=6, epochs=2,
                     quiet=True, seed=0, **options)
    pipe, new = run.pipeline, df.iloc[300:].reset_index(drop=True)
    lead, need = pipe.lead, pipe.window + int(pipe.diff)
    stream, compared = run.stream(), 0
    for j in range(NEW):
        assert stream.future_rows == lead + int(j == 0)
        got = stream.update(new.y[j], future=plan_for(new, j, lead))
        # a window model waits for a window; a per-step one only for a change (diff)
        first = need - 1 if pipe.shape == "window" else int(pipe.diff)
        assert np.isnan(got).all() == (j < first)
        # a per-step model carries its state from the first row: the forecast from a history
        # of exactly one window is the one it must equal
        if j + 1 == need or (pipe.shape == "window" and j + 1 > need):
            expected = run.forecast(1, data=new.iloc[: j + 1],
                                    future=new[["ds", "promo"]].iloc[j + 1 : j + 1 + lead])
            assert float(got[0]) == pytest.approx(float(expected["y"].iloc[0]), abs=1e-6)
            compared += 1
    assert compared == (NEW - need + 1 if pipe.shape == "window" else 1)
    assert stream.at == "2021-11-06T00:00:00"  # ten days after the data's last, 2021-10-27


def test_a_planned_promotion_moves_the_streamed_forecast():
    df = promo_days()
    run = rnnkit.fit(df.iloc[:300], target="y", future_features=["promo"], calendar="none",
                     window=6, epochs=30, quiet=True, seed=0)
    stream, both = run.stream(), []
    for plan in (0.0, 1.0):  # the same history, tomorrow without and with a promotion
        stream.reset()
        for j in range(5):
            stream.update(20.0, future={"promo": [0.0, 0.0] if j == 0 else [0.0]})
        both.append(float(stream.update(20.0, future=pd.DataFrame({"promo": [plan]}))[0]))
    assert both[1] - both[0] > 2.5  # the lift is 5


def test_bad_future_values_are_refused_in_one_line_and_change_nothing():
    df = promo_days()
    run = rnnkit.fit(df.iloc[:300], target="y", future_features=["promo"], calendar="none",
                     horizon=2, window=4, epochs=1, quiet=True, seed=0)
    stream = run.stream()
    cases = [
        (None, r"future features \['promo'\]; pass update\(value, future=\{'promo': \[\.\.\.\]\}"
               r"\) with 3 values each: the observed row's own, then the 2 rows after it"),
        ({"promos": [1, 0, 0]}, r"future has no column 'promo', a future feature of the run; "
                                r"give 3 values each.*Did you mean 'promos'\?"),
        ({"promo": [1, 0]}, r"future\['promo'\] has 2 values; this update takes 3 values each"),
        ({"promo": [1, float("nan"), 0]}, r"future\['promo'\]\[1\] is nan; give a finite number"),
        ({"promo": [1, "yes", 0]}, r"future\['promo'\]\[1\] is 'yes', which is not a number"),
        ([1, 0, 0], r"future is a list; expected a mapping column -> values"),
    ]
    for future, needle in cases:
        with pytest.raises(DataError, match=needle) as info:
            stream.update(20.0, future=future)
        assert "\n" not in str(info.value)
    assert stream.future_rows == 3 and stream.row is None  # nothing was taken
    stream.update(20.0, future={"promo": np.array([1.0, 0.0, 0.0])})
    with pytest.raises(DataError, match=r"has 3 values; this update takes 2 values each: the "
                                        r"2 rows after it"):
        stream.update(20.0, future={"promo": [1, 0, 0]})
    stream.reset()  # a new sequence: its first update gives its own row's values again
    assert stream.future_rows == 3
    plain = rnnkit.fit(df.iloc[:300, :2], target="y", calendar="none", epochs=1, quiet=True)
    with pytest.raises(DataError, match="this run has no future features"):
        plain.stream().update(20.0, future={"promo": [1]})


@pytest.mark.parametrize("options", [
    {"future_features": ["promo"], "calendar": "none"},
    {"future_features": ["promo"], "calendar": "weekday", "transform": "diff", "horizon": 2},
    {"calendar": "weekday"},
], ids=["future", "future-calendar-diff-h2", "calendar"])
def test_a_panel_series_streams_from_its_end_like_forecasting_its_extended_table(options):
    data, plan = promo_panel(4, 120, NEW)
    data["y"] = data.y.astype(np.float32).astype(float)
    future = "future_features" in options
    run = rnnkit.fit(data if future else data.drop(columns="promo"), window=5, epochs=2,
                     quiet=True, seed=0, **options)
    lead, sid = run.pipeline.lead, "shop01"
    own = data[data.unique_id == sid] if future else data[data.unique_id == sid].iloc[:, :3]
    ahead = plan[plan.unique_id == sid].reset_index(drop=True)
    stream, rows = run.stream(series=sid), own
    for j, v in enumerate((own.y.iloc[-4:].to_numpy() * 1.02).astype(np.float32)):
        got = stream.update(float(v), future=plan_for(ahead, j, lead) if future else None)
        row = {"unique_id": [sid], "ds": [ahead.ds[j]], "y": [float(v)]}
        rows = pd.concat([rows, pd.DataFrame(row | ({"promo": [ahead.promo[j]]} if future
                                                    else {}))], ignore_index=True)
        expected = run.forecast(1, data=rows, future=ahead.iloc[j + 1 : j + 1 + lead]
                                if future else None)
        assert float(got[0]) == pytest.approx(float(expected["y"].iloc[0]), abs=1e-6)
    assert stream.at == "2021-05-04T00:00:00"  # four days after the series' last, 2021-04-30
