"""Calendar covariates (``rnnkit.data.calendar``): which features fit a frequency, their exact
values at known dates, public holidays, local time of timezone-aware indexes, and the one-line
errors of ``--calendar`` and ``--holidays``."""

from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest

from rnnkit.data import calendar
from rnnkit.data.calendar import (
    FEATURES,
    auto_features,
    columns,
    country,
    describe,
    encode,
    parse,
)
from rnnkit.data.timeline import frequency
from rnnkit.errors import ConfigError, DataError

ALL = list(FEATURES)
TRADING = pd.bdate_range("2024-01-01", periods=60).delete([5, 12, 13])  # holidays: not gaps
IRREGULAR = pd.DatetimeIndex(["2024-01-01", "2024-01-02 07:13", "2024-01-09", "2024-02-20",
                              "2024-02-21 23:00", "2024-06-01"])  # fmt: skip


def at(*stamps: str, tz: str | None = None) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(stamps, tz=tz)


def block(times: pd.DatetimeIndex, name: str, holidays: str | None = None) -> np.ndarray:
    """The columns of one feature, picked by their names from the full encoding."""
    full = encode(times, ALL, holidays)
    names = columns(ALL, holidays)
    keep = [i for i, column in enumerate(names) if column.startswith(f"cal_{name}")]
    return full[:, keep]


@pytest.mark.parametrize(("index", "expected"), [
    (pd.date_range("2024-01-01", periods=100, freq="h"), ["hour", "weekday"]),
    (pd.date_range("2024-01-01", periods=100, freq="15min"), ["hour", "weekday"]),
    (pd.date_range("2024-01-01", periods=100, freq="3h"), ["hour", "weekday"]),
    (pd.date_range("2024-03-25", periods=100, freq="h", tz="Europe/Berlin"), ["hour", "weekday"]),
    (pd.date_range("2024-01-01", periods=100, freq="D"), ["weekday", "dayofyear"]),
    (TRADING, ["weekday", "dayofyear"]),
    (pd.date_range("2024-01-07", periods=60, freq="W-SUN"), ["dayofyear"]),
    (pd.date_range("2024-01-01", periods=60, freq="7D"), ["dayofyear"]),
    (pd.date_range("2024-01-01", periods=30, freq="14D").delete([7]), ["dayofyear"]),
    (pd.date_range("2024-01-01", periods=30, freq="2D").delete([7]), ["weekday", "dayofyear"]),
    (pd.date_range("2024-01-01", periods=30, freq="36h"), []),
    (pd.date_range("2020-01-01", periods=36, freq="MS"), ["month"]),
    (pd.date_range("2020-01-31", periods=36, freq="ME"), ["month"]),
    (pd.date_range("2015-01-01", periods=24, freq="QS-JAN"), ["month"]),
    (pd.date_range("2015-03-31", periods=24, freq="QE-DEC"), ["month"]),
    (pd.date_range("2000-01-01", periods=20, freq="YS"), []),
    (pd.RangeIndex(50), []),
    (IRREGULAR, []),
], ids=["hourly", "15min", "3h", "hourly-tz", "daily", "business-gaps", "weekly", "7D",
        "14D-gap", "2D-gap", "36h",
        "monthly", "month-end", "quarterly", "quarter-end", "yearly", "range", "irregular"])
def test_auto_features_follow_the_frequency(index: pd.Index, expected: list[str]) -> None:
    assert auto_features(index) == expected


def test_business_days_with_holidays_are_business_days() -> None:
    assert pd.infer_freq(TRADING) is None  # pandas alone sees no frequency
    assert frequency(TRADING).freq == "B"
    assert auto_features(TRADING) == ["weekday", "dayofyear"]


def test_columns_in_order() -> None:
    assert columns(ALL, "US") == [
        "cal_hour_sin", "cal_hour_cos", *[f"cal_weekday_{d}" for d in range(7)],
        "cal_doy_sin", "cal_doy_cos", "cal_month_sin", "cal_month_cos", "cal_holiday"]
    assert columns(["month", "hour", "month"], None) == columns(["hour", "month"], None)
    assert columns([], None) == []


@pytest.mark.parametrize("names", [[], ["hour"], ["weekday"], ["dayofyear", "month"], ALL])
@pytest.mark.parametrize("holidays", [None, "US"])
def test_shape_and_dtype_match_columns(names: list[str], holidays: str | None) -> None:
    times = pd.date_range("2023-12-30", periods=72, freq="h")
    out = encode(times, names, holidays)
    assert out.dtype == np.float32
    assert out.shape == (72, len(columns(names, holidays)))
    assert np.isfinite(out).all()


def test_weekday_one_hot_monday_first() -> None:
    week = pd.date_range("2024-01-01", periods=7, freq="D")  # 2024-01-01 is a Monday
    np.testing.assert_array_equal(encode(week, ["weekday"], None), np.eye(7))
    year = pd.date_range("2024-01-01", periods=24 * 366, freq="h")
    onehot = encode(year, ["weekday"], None)
    np.testing.assert_array_equal(onehot.sum(axis=1), 1.0)
    assert set(np.unique(onehot)) == {0.0, 1.0}
    np.testing.assert_array_equal(onehot.argmax(axis=1), year.day_of_week)


def test_hour_angle() -> None:
    sin, cos = encode(at("2024-05-05 00:00", "2024-05-05 06:00", "2024-05-05 12:00",
                         "2024-05-05 18:00", "2024-05-05 06:30"), ["hour"], None).T
    np.testing.assert_allclose(sin[:4], [0, 1, 0, -1], atol=1e-6)
    np.testing.assert_allclose(cos[:4], [1, 0, -1, 0], atol=1e-6)
    angle = 2 * np.pi * 6.5 / 24
    np.testing.assert_allclose([sin[4], cos[4]], [np.sin(angle), np.cos(angle)], rtol=1e-6)


def test_day_of_year_uses_the_length_of_that_year() -> None:
    sin, cos = encode(at("2024-01-01", "2024-07-02", "2024-12-31", "2023-12-31", "2023-07-02"),
                      ["dayofyear"], None).T
    leap, common = 2 * np.pi * 365 / 366, 2 * np.pi * 364 / 365  # 2024 has 366 days
    half = 2 * np.pi * 182 / 365  # 2023-07-02 is day 183 of 365
    np.testing.assert_allclose(sin, [0, 0, np.sin(leap), np.sin(common), np.sin(half)],
                               atol=1e-6)  # 2024-07-02 is day 184: half of 366
    np.testing.assert_allclose(cos, [1, -1, np.cos(leap), np.cos(common), np.cos(half)],
                               atol=1e-6)


def test_cyclical_features_have_no_jump_at_new_year() -> None:
    times = at("2023-12-31", "2024-01-01", "2024-01-02")
    doy = encode(times, ["dayofyear"], None)
    step_over = np.linalg.norm(doy[1] - doy[0])
    step_within = np.linalg.norm(doy[2] - doy[1])
    assert step_over == pytest.approx(step_within, rel=0.01)
    month = encode(at("2023-12-01", "2024-01-01", "2024-02-01"), ["month"], None)
    assert np.linalg.norm(month[1] - month[0]) == pytest.approx(
        np.linalg.norm(month[2] - month[1]), rel=1e-5)


def test_month_angle() -> None:
    sin, cos = encode(at("2024-01-15", "2024-04-01", "2024-07-31", "2024-10-10"),
                      ["month"], None).T
    np.testing.assert_allclose(sin, [0, 1, 0, -1], atol=1e-6)
    np.testing.assert_allclose(cos, [1, 0, -1, 0], atol=1e-6)


def test_us_holidays() -> None:
    flags = block(at("2024-07-04", "2024-07-05", "2024-12-25", "2024-12-26", "2025-01-01"),
                  "holiday", "US")
    np.testing.assert_array_equal(flags[:, 0], [1, 0, 1, 0, 1])
    hours = pd.date_range("2024-07-03", periods=72, freq="h")
    flags = encode(hours, [], "US")[:, 0]
    np.testing.assert_array_equal(flags, np.repeat([0.0, 1.0, 0.0], 24))  # all of July 4


def test_holidays_of_the_country_asked() -> None:
    days = at("2024-07-04", "2024-12-26")  # Independence Day; Boxing Day
    np.testing.assert_array_equal(encode(days, [], "US")[:, 0], [1, 0])
    np.testing.assert_array_equal(encode(days, [], "gb")[:, 0], [0, 1])


def test_timezone_aware_index_uses_local_time() -> None:
    berlin = pd.date_range("2024-01-01 06:00", periods=3, freq="h", tz="Europe/Berlin")
    sin, cos = encode(berlin, ["hour"], None)[0]
    assert (sin, cos) == (pytest.approx(1.0, abs=1e-6), pytest.approx(0.0, abs=1e-6))
    utc = encode(berlin.tz_convert("UTC"), ["hour"], None)[0]  # 05:00 UTC
    np.testing.assert_allclose(utc, [np.sin(2 * np.pi * 5 / 24), np.cos(2 * np.pi * 5 / 24)],
                               rtol=1e-6)
    summer = encode(at("2024-07-01 06:00", tz="Europe/Berlin"), ["hour"], None)[0]
    np.testing.assert_allclose(summer, [1, 0], atol=1e-6)  # UTC+2 in summer: still hour 6
    late = at("2024-07-04 22:00", "2024-07-05 22:00", tz="America/New_York")
    np.testing.assert_array_equal(encode(late, ["weekday"], "US")[:, [3, 4, 7]],
                                  [[1, 0, 1], [0, 1, 0]])  # local Thursday July 4 (UTC: 5th)


def test_encode_needs_dates() -> None:
    with pytest.raises(ConfigError) as err:
        encode(pd.RangeIndex(10), ["weekday"], None)
    assert str(err.value) == ("calendar features need dates: the data has no time column; "
                              "use --time COLUMN or --calendar none")
    with pytest.raises(ConfigError, match="--time COLUMN or leave out --holidays"):
        encode(pd.RangeIndex(10), [], "US")
    assert encode(pd.RangeIndex(10), [], None).shape == (10, 0)


def test_encode_refuses_missing_times() -> None:
    with pytest.raises(DataError, match=r"1 time\(s\) are missing \(NaT\)"):
        encode(pd.DatetimeIndex(["2024-01-01", None]), ["month"], None)


def test_encode_refuses_unknown_or_unresolved_names() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'month'"):
        encode(pd.date_range("2024-01-01", periods=3), ["months"], None)
    with pytest.raises(ConfigError, match="resolve it with parse"):
        columns("auto", None)  # type: ignore[arg-type]


@pytest.mark.parametrize(("spec", "expected"), [
    (None, "auto"), ("auto", "auto"), ("NONE", "none"), ("none", "none"), ("", "none"),
    ([], "none"), (["none"], "none"), ("month,weekday", ["weekday", "month"]),
    (" Month , weekday, ", ["weekday", "month"]), (["hour", "hour", "dayofyear"],
                                                   ["hour", "dayofyear"]),
    (("month",), ["month"]), ("hour,weekday,dayofyear,month", ALL),
])
def test_parse(spec: object, expected: object) -> None:
    assert parse(spec) == expected  # type: ignore[arg-type]


def test_parse_errors_are_one_line_with_the_fix() -> None:
    with pytest.raises(ConfigError) as err:
        parse("wekday,month")
    assert "\n" not in str(err.value)
    assert str(err.value) == ("--calendar got unknown feature 'wekday'; expected 'auto', 'none' "
                              "or names from hour, weekday, dayofyear, month. Did you mean "
                              "'weekday'?")
    with pytest.raises(ConfigError) as err:
        parse(["hours"])
    assert str(err.value).endswith("Did you mean 'hour'?")
    with pytest.raises(ConfigError) as err:
        parse("xyz")
    assert "Did you mean" not in str(err.value)
    with pytest.raises(ConfigError, match="'auto' stands alone"):
        parse("auto,weekday")
    with pytest.raises(ConfigError, match="expected names as text"):
        parse([1, 2])  # type: ignore[list-item]


def test_country() -> None:
    assert country(None) is None
    assert country("us") == "US"
    assert country(" gb ") == "GB"
    assert country("DEU") == "DEU"


def test_country_errors_are_one_line_with_did_you_mean() -> None:
    with pytest.raises(ConfigError) as err:
        country("USS")
    message = str(err.value)
    assert message.startswith("--holidays got unknown country code 'USS'; expected an ISO ")
    assert message.endswith("Did you mean 'US'?")
    assert "\n" not in message
    with pytest.raises(ConfigError, match="Did you mean 'DE'"):
        country("Germany")
    with pytest.raises(ConfigError) as err:
        country("UNITED")
    assert "Did you mean" not in str(err.value)
    with pytest.raises(ConfigError, match="unknown country code 'ZZZ'"):
        encode(pd.date_range("2024-01-01", periods=3), [], "ZZZ")


def test_describe() -> None:
    assert describe(["dayofyear", "weekday"], "US") == (
        "weekday (one-hot), day of year (sine/cosine), public holidays (US)")
    assert describe(["hour"], None) == "hour of day (sine/cosine)"
    assert describe(["month"], None) == "month (sine/cosine)"
    assert describe([], None) == "none"
    assert describe([], "GB") == "public holidays (GB)"


def test_large_hourly_index_in_one_pass() -> None:
    times = pd.date_range("1990-01-01", periods=200_000, freq="h", tz="UTC")
    out = encode(times, ALL, "US")
    assert out.shape == (200_000, 14)
    sample = np.arange(0, 200_000, 9_973)
    np.testing.assert_array_equal(out[sample, 2:9].argmax(axis=1), times[sample].day_of_week)


def test_docstring_examples() -> None:
    assert doctest.testmod(calendar, raise_on_error=True).attempted >= 8
