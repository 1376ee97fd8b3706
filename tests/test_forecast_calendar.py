"""Issue 15, item 5: the forecast calendar follows the data's own calendar.

Trading days (weekdays, holidays missing) forecast trading days: the holidays the data skips
every year are learned from the data (``clock.learn_holidays``) and skipped, one-off closures
are not. Month, quarter and year ends stay ends, starts stay starts. An index with no regular
frequency is irregular: its forecasts are numbered steps after the last time, never dated by a
guess. Unit tests of ``rnnkit.data.clock`` on indexes, then one ``rnnkit.fit`` each.
"""

from __future__ import annotations

import datetime as dt
import doctest
import json

import holidays
import numpy as np
import pandas as pd
import pytest

import rnnkit
from rnnkit.data import clock
from rnnkit.data.clock import (
    closed_day,
    extend_index,
    future_times,
    index_info,
    learn_holidays,
    past_times,
    time_info,
)
from rnnkit.errors import CheckpointError

FIT = {"epochs": 1, "quiet": True}
STOCK = pd.bdate_range("2015-01-01", "2019-12-31")


def without(days: pd.DatetimeIndex, *month_days: tuple[int, int]) -> pd.DatetimeIndex:
    """``days`` less every (month, day) in ``month_days``."""
    drop = np.zeros(len(days), dtype=bool)
    for month, day in month_days:
        drop |= (days.month == month) & (days.day == day)
    return days[~drop]


def nyse(start: str, end: str) -> tuple[pd.DatetimeIndex, set[pd.Timestamp]]:
    """The NYSE's trading days from ``start`` to ``end`` and its closed weekdays (its holidays
    and its one-off closures: Hurricane Sandy 2012, a national day of mourning 2018)."""
    closed = {pd.Timestamp(d) for d in holidays.financial_holidays("NYSE", years=range(2009, 2022))}
    days = pd.bdate_range(start, end)
    return days[~days.isin(list(closed))], closed


def frame(index: pd.DatetimeIndex, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(len(index))
    return pd.DataFrame({"date": index, "y": np.sin(t / 5.0) + 0.1 * rng.standard_normal(len(t))})


# --- trading days ------------------------------------------------------------------------------
def test_a_stock_index_skips_new_year_and_christmas() -> None:
    days = without(STOCK, (1, 1), (12, 25))
    info = index_info(days)
    assert info["freq"] == "B" and info["holidays"] == ["01-01", "12-25"]
    future = extend_index(info, 10)
    assert future[0] == pd.Timestamp("2020-01-02")  # not 1 January, not a Saturday
    assert (future.day_of_week < 5).all() and pd.Timestamp("2020-01-01") not in future
    friday = extend_index(index_info(days[days <= "2019-12-27"]), 3)
    assert list(friday) == list(pd.to_datetime(["2019-12-30", "2019-12-31", "2020-01-02"]))


def test_the_nyse_calendar_is_learned_from_its_own_days() -> None:
    days, closed = nyse("2010-01-01", "2019-12-31")
    info = index_info(days)
    assert info["holidays"] == [
        "01-01", "01-01 Sun>Mon", "07-04", "07-04 Sat>Fri", "07-04 Sun>Mon", "12-25",
        "12-25 Sat>Fri", "12-25 Sun>Mon", "Feb Mon 3", "Jan Mon 3", "May Mon last",
        "Nov Thu 4", "Sep Mon 1", "Easter-2"]  # Sandy (10-29, 10-30) and 2018-12-05 are not
    year = pd.bdate_range("2020-01-01", "2020-12-31")
    expected = year[~year.isin(list(closed))]  # 3 July: 4 July 2020 is a Saturday
    pd.testing.assert_index_equal(extend_index(info, len(expected)), expected, check_names=False,
                                  check_freq=False)


def test_one_off_and_abandoned_closures_are_not_holidays() -> None:
    once = STOCK.delete(STOCK.get_indexer(pd.to_datetime(["2016-03-15", "2018-06-12"])))
    assert learn_holidays(once) == []
    twice_then_open = STOCK[~STOCK.isin(pd.to_datetime(["2016-05-10", "2017-05-10"]))]
    assert learn_holidays(twice_then_open) == []  # 10 May open in 2018 and 2019: not most


def test_a_holiday_introduced_late_is_learned() -> None:
    days = pd.bdate_range("2015-01-01", "2024-12-31")
    juneteenth = (days.month == 6) & (days.day == 19) & (days.year >= 2022)
    assert learn_holidays(days[~juneteenth]) == ["06-19"]


def test_holidays_travel_as_json_and_old_info_keeps_plain_business_days() -> None:
    info = index_info(without(STOCK, (1, 1), (12, 25)))
    again = json.loads(json.dumps(info))
    pd.testing.assert_index_equal(extend_index(again, 30), extend_index(info, 30))
    old = {k: v for k, v in info.items() if k != "holidays"}  # a run saved before this
    assert extend_index(old, 1)[0] == pd.Timestamp("2020-01-01")


def test_new_data_too_short_to_show_holidays_keeps_the_fitted_ones() -> None:
    fitted = index_info(without(STOCK, (1, 1), (12, 25)))
    recent = without(STOCK, (12, 25))[-30:]
    assert "holidays" not in index_info(recent)
    info = index_info(recent, holidays=fitted["holidays"])
    assert extend_index(info, 1)[0] == pd.Timestamp("2020-01-02")


def test_a_hand_edited_holiday_rule_is_refused_in_one_line() -> None:
    info = {"kind": "datetime", "last": "2019-12-31", "freq": "B", "holidays": ["Xmas"]}
    with pytest.raises(CheckpointError) as error:
        extend_index(info, 3)
    assert "'Xmas'" in str(error.value) and "fit the run again" in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(("rule", "year", "day"), [
    ("12-25", 2019, dt.date(2019, 12, 25)),
    ("12-25", 2021, None),  # a Saturday
    ("12-25 Sat>Fri", 2021, dt.date(2021, 12, 24)),
    ("12-25 Sat>Fri", 2019, None),
    ("01-01 Sun>Mon", 2017, dt.date(2017, 1, 2)),
    ("01-01 Sat>Mon", 2022, dt.date(2022, 1, 3)),
    ("02-29", 2019, None),
    ("Nov Thu 4", 2018, dt.date(2018, 11, 22)),
    ("May Mon last", 2021, dt.date(2021, 5, 31)),
    ("Easter-2", 2020, dt.date(2020, 4, 10)),
    ("Easter+1", 2024, dt.date(2024, 4, 1)),
])
def test_closed_day_reads_each_kind_of_rule(rule: str, year: int, day: dt.date | None) -> None:
    assert closed_day(rule, year) == day


# --- month, quarter and year ends and starts ---------------------------------------------------
@pytest.mark.parametrize("freq", ["ME", "MS", "BME", "BMS", "QE-DEC", "QS-JAN", "QE-FEB",
                                  "YE-DEC", "YS-JAN", "W-FRI"])
def test_anchored_frequencies_stay_anchored(freq: str) -> None:
    full = pd.date_range("2000-01-01", periods=40, freq=freq)
    for index in (full, full.delete([5, 17])):  # with missing periods too
        info = index_info(pd.DatetimeIndex(list(index)))  # no .freq carried over
        expected = pd.date_range(full[-1], periods=7, freq=freq)[1:]
        pd.testing.assert_index_equal(extend_index(info, 6), expected, check_names=False,
                                      check_freq=False)


def test_month_ends_continue_on_month_ends_through_february() -> None:
    index = pd.DatetimeIndex(["2019-10-31", "2019-11-30", "2019-12-31", "2020-01-31"])
    assert list(extend_index(index_info(index), 3).strftime("%Y-%m-%d")) == [
        "2020-02-29", "2020-03-31", "2020-04-30"]


# --- irregular ---------------------------------------------------------------------------------
def irregular_times(n: int, seed: int = 0) -> pd.DatetimeIndex:
    hours = np.cumsum(np.random.default_rng(seed).integers(1, 72, n))
    return pd.DatetimeIndex(pd.Timestamp("2020-01-01") + pd.to_timedelta(hours, unit="h"))


def test_an_irregular_index_is_numbered_not_dated() -> None:
    index = irregular_times(50).rename("date")
    info = index_info(index)
    assert info == {"kind": "irregular", "last": index[-1].isoformat(), "name": "date"}
    future = extend_index(info, 4)
    assert isinstance(future, pd.RangeIndex) and list(future) == [1, 2, 3, 4]
    assert future.name == f"step after {index[-1]}"


def test_old_irregular_info_with_a_median_step_is_not_continued_by_it() -> None:
    old = {"kind": "datetime", "last": "2020-05-01T00:00:00", "freq": None,
           "step": "1 days 02:00:00", "name": "date"}
    assert list(extend_index(old, 3)) == [1, 2, 3]
    assert index_info(pd.DatetimeIndex(["2020-01-01", "2020-01-09"]))["kind"] == "irregular"


# --- panels ------------------------------------------------------------------------------------
def test_panel_times_skip_the_holidays_forward_and_backward() -> None:
    a = without(STOCK, (1, 1), (12, 25))
    b = a[a >= "2019-01-01"][:-2]  # a shorter series ending on 2019-12-27
    times = np.concatenate([a.to_numpy(), b.to_numpy()])
    info = time_info(times, np.array([0, len(a), len(a) + len(b)]))
    assert info["holidays"] == ["01-01", "12-25"]
    last = np.array([a[-1], b[-1]], dtype="datetime64[ns]")
    ahead = future_times(info, last, 3)
    assert list(pd.DatetimeIndex(ahead[0]).strftime("%m-%d")) == ["01-02", "01-03", "01-06"]
    assert list(pd.DatetimeIndex(ahead[1]).strftime("%m-%d")) == ["12-30", "12-31", "01-02"]
    open_anyway = np.array(["2019-12-31", "2020-01-01"], dtype="datetime64[ns]")  # rows the
    ahead = future_times(info, open_anyway, 2)  # data has on a holiday stay, the steps skip it
    assert list(pd.DatetimeIndex(ahead[1]).strftime("%m-%d")) == ["01-02", "01-03"]
    back = past_times(info, np.array([np.datetime64("2020-01-02", "ns")]), 3)
    assert list(pd.DatetimeIndex(back[0]).strftime("%m-%d")) == ["12-30", "12-31", "01-02"]


def test_irregular_panels_are_numbered_both_ways() -> None:
    times = np.concatenate([irregular_times(30, 1), irregular_times(20, 2)]).astype("M8[ns]")
    info = time_info(times, np.array([0, 30, 50]))
    assert info == {"kind": "irregular"}
    assert future_times(info, times[[29, 49]], 3).tolist() == [[1, 2, 3], [1, 2, 3]]
    assert past_times(info, times[[29]], 3).tolist() == [[-2, -1, 0]]
    whole = np.array([1, 2, 4, 7, 8, 20, 21, 30])  # whole numbers with no common step
    assert time_info(whole, np.array([0, 8]))["kind"] == "irregular"
    assert time_info(np.array([2, 4, 6, 8]), np.array([0, 4])) == {"kind": "int", "step": 2}


def test_a_panel_series_ending_off_the_frequency_makes_it_irregular() -> None:
    starts = pd.date_range("2000-01-01", periods=24, freq="MS").to_numpy()
    ends = pd.date_range("2000-01-31", periods=12, freq="ME").to_numpy()
    info = time_info(np.concatenate([starts, ends]), np.array([0, 24, 36]))
    assert info["kind"] == "irregular"


# --- end to end --------------------------------------------------------------------------------
def test_fit_on_trading_days_forecasts_trading_days() -> None:
    days, _ = nyse("2017-01-01", "2019-12-31")
    forecast = rnnkit.fit(frame(days), target="y", **FIT).forecast(5)
    assert list(forecast.index.strftime("%Y-%m-%d")) == [
        "2020-01-02", "2020-01-03", "2020-01-06", "2020-01-07", "2020-01-08"]


def test_fit_on_month_ends_forecasts_month_ends() -> None:
    ends = pd.date_range("2000-01-31", periods=120, freq="ME")
    forecast = rnnkit.fit(frame(ends), target="y", guard=False, **FIT).forecast(5)
    pd.testing.assert_index_equal(forecast.index, pd.date_range("2010-01-31", periods=5,
                                                                freq="ME", name="date"),
                                  check_freq=False)


def test_fit_on_irregular_times_forecasts_numbered_steps() -> None:
    index = irregular_times(300)
    run = rnnkit.fit(frame(index), target="y", guard=False, **FIT)
    assert any("forecasts are numbered by steps after the last time" in n
               for n in run.config["notes"])
    forecast = run.forecast(5)
    assert list(forecast.index) == [1, 2, 3, 4, 5]
    assert forecast.index.name == f"step after {index[-1]}"


def test_clock_docstring_examples() -> None:
    assert doctest.testmod(clock, raise_on_error=True).attempted >= 2
