"""Issue 11, RELIABILITY.md rows 25-28: the time column is the truth.

A daily CSV of 300 rows with a ``date`` column, changed in one way at a time: shuffled or
descending rows are sorted (bit-identical weights to the sorted file), a repeated date and a
30-day hole are refused in one line unless ``--duplicates``/``--fill`` say what to do, trading
days (weekdays with holidays missing) are not gaps and forecast on weekdays, and day-first dates
are dates. Each case runs through ``rnnkit.fit`` and through the CLI as a subprocess; panels
follow the same rules per series. The fuzz test permutes, duplicates and drops rows.
"""

from __future__ import annotations

import doctest
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import rnnkit
from rnnkit.data import timeline
from rnnkit.data.clock import extend_index, index_info
from rnnkit.data.read import read_table
from rnnkit.data.read_panel import read_panel
from rnnkit.data.timeline import frequency
from rnnkit.errors import DataError

Cli = Callable[..., tuple[int, str, str]]  # the `cli` fixture of conftest.py

FAST = {"epochs": 3, "hidden_size": 8, "window": 7, "early_stopping": 0, "quiet": True}
CLI_FAST = ("--epochs", "3", "--hidden-size", "8", "--window", "7", "--early-stopping", "0",
            "--quiet")
DAYS = pd.date_range("2020-01-01", periods=300, freq="D")
HOLE = slice(100, 130)  # rows 101-130: 2020-04-10 .. 2020-05-09


def daily(dates: pd.DatetimeIndex = DAYS, fmt: str = "%Y-%m-%d") -> pd.DataFrame:
    t = np.arange(len(dates))
    return pd.DataFrame({"date": dates.strftime(fmt), "y": np.sin(t / 7.0) + 0.01 * t})


def write(frame: pd.DataFrame, folder: Path, name: str) -> Path:
    path = folder / name
    frame.to_csv(path, index=False)
    return path


def one_line_error(source: object, **kwargs: object) -> str:
    with pytest.raises(DataError) as info:
        read_table(source, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def assert_clean_error(rc: int, err: str, *needles: str) -> None:
    """Exit 2, one line on stderr, no traceback, mentioning every needle."""
    assert rc == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnnkit: error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, err)


def same_weights(a: rnnkit.Run, b: rnnkit.Run) -> bool:
    sa, sb = a.model.state_dict(), b.model.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The 300-day file and its variants, written once for the module."""
    folder = tmp_path_factory.mktemp("dates")
    base = daily()
    trading = pd.bdate_range("2020-01-01", periods=300).delete([10, 50, 51, 120, 200])
    return {
        "sorted": write(base, folder, "sorted.csv"),
        "shuffled": write(base.sample(frac=1.0, random_state=0), folder, "shuffled.csv"),
        "descending": write(base.iloc[::-1], folder, "descending.csv"),
        "repeated": write(pd.concat([base.iloc[:101], base.iloc[[60]], base.iloc[101:]]),
                          folder, "repeated.csv"),
        "hole": write(base.drop(index=range(HOLE.start, HOLE.stop)), folder, "hole.csv"),
        "trading": write(daily(trading), folder, "trading.csv"),
        "dayfirst": write(daily(fmt="%d/%m/%Y"), folder, "dayfirst.csv"),
    }


# --- 1. order ----------------------------------------------------------------------------------
def test_shuffled_and_descending_fit_bit_identical_to_sorted(files: dict[str, Path]) -> None:
    reference = rnnkit.fit(files["sorted"], **FAST)
    assert not any("sorted by" in note for note in reference.config["notes"])
    for name in ("shuffled", "descending"):
        run = rnnkit.fit(files[name], **FAST)
        assert same_weights(run, reference), name
        assert ("rows were not in time order: sorted by column 'date' (300 of 300 rows moved)"
                in run.config["notes"]), run.config["notes"]


def test_cli_shuffled_and_descending_save_the_sorted_files_weights(
        cli: Cli, files: dict[str, Path], tmp_path: Path) -> None:
    weights = {}
    for name in ("sorted", "shuffled", "descending"):
        rc, out, err = cli("fit", files[name], *CLI_FAST, "--out", tmp_path / name)
        assert rc == 0, err
        weights[name] = (tmp_path / name / "model.safetensors").read_bytes()
        notes = json.loads((tmp_path / name / "config.json").read_text())["notes"]
        moved = any("rows were not in time order" in note for note in notes)
        assert moved == (name != "sorted"), notes  # the saved run records the sort
        assert ("rows were not in time order" in out) == (name != "sorted")
    assert weights["shuffled"] == weights["sorted"] == weights["descending"]


# --- 2. duplicates -----------------------------------------------------------------------------
def test_repeated_date_is_refused_naming_it_and_both_rows(files: dict[str, Path]) -> None:
    message = one_line_error(files["repeated"])
    for part in ("'date'", "2020-03-01 more than once", "row 61 (line 62)", "row 102 (line 103)",
                 "--duplicates first|last|mean"):
        assert part in message, (part, message)
    with pytest.raises(DataError, match="2020-03-01 more than once"):
        rnnkit.fit(files["repeated"], **FAST)


def test_duplicates_policies_combine_rows(tmp_path: Path) -> None:
    path = write(pd.DataFrame({"date": ["2020-01-01", "2020-01-02", "2020-01-02", "2020-01-03"],
                               "y": [1.0, 2.0, 4.0, 5.0]}), tmp_path, "d.csv")
    expected = {"first": 2.0, "last": 4.0, "mean": 3.0}
    for how, value in expected.items():
        table = read_table(path, duplicates=how)
        assert table.values[:, 0].tolist() == [1.0, value, 5.0]
        assert any(f"--duplicates {how}" in note for note in table.notes)
    with pytest.raises(rnnkit.errors.ConfigError, match="Did you mean 'first'"):
        read_table(path, duplicates="frist")


def test_cli_repeated_date_exits_2_in_one_line_and_mean_proceeds(
        cli: Cli, files: dict[str, Path], tmp_path: Path) -> None:
    rc, _, err = cli("fit", files["repeated"], *CLI_FAST, "--out", tmp_path / "r")
    assert_clean_error(rc, err, "repeated.csv", "2020-03-01", "row 61 (line 62)",
                       "row 102 (line 103)")
    assert not (tmp_path / "r").exists()
    rc, out, err = cli("fit", files["repeated"], *CLI_FAST, "--duplicates", "mean",
                       "--out", tmp_path / "m")
    assert rc == 0, err
    assert "--duplicates mean" in out


# --- 3. gaps -----------------------------------------------------------------------------------
def test_thirty_day_hole_is_refused_then_reindexed_by_fill(files: dict[str, Path]) -> None:
    message = one_line_error(files["hole"])
    for part in ("30 missing period(s)", "'D' (daily)", "2020-04-10 to 2020-05-09",
                 "row 100 (line 101)", "--fill interpolate|ffill|drop"):
        assert part in message, (part, message)
    table = read_table(files["hole"], fill="interpolate")
    pd.testing.assert_index_equal(table.index, DAYS.rename("date"), exact=False,
                                  check_freq=False)
    y = daily()["y"].to_numpy()
    gap = np.interp(np.arange(99, 131), [99, 130], y[[99, 130]])
    np.testing.assert_allclose(table.values[99:131, 0], gap, rtol=1e-6)
    dropped = read_table(files["hole"], fill="drop")
    assert len(dropped.index) == 270
    assert any("left out by --fill drop" in note for note in dropped.notes)
    with pytest.raises(DataError, match="30 missing period"):
        rnnkit.fit(files["hole"], **FAST)
    run = rnnkit.fit(files["hole"], fill="interpolate", **FAST)
    assert any("inserted as missing values" in note for note in run.config["notes"])
    assert run.forecast(1).index[0] == pd.Timestamp("2020-10-27")


def test_cli_hole_exits_2_without_fill_and_trains_with_interpolate(
        cli: Cli, files: dict[str, Path], tmp_path: Path) -> None:
    rc, _, err = cli("fit", files["hole"], *CLI_FAST, "--out", tmp_path / "h")
    assert_clean_error(rc, err, "hole.csv", "30 missing period(s)", "2020-04-10 to 2020-05-09",
                       "--fill")
    rc, out, err = cli("fit", files["hole"], *CLI_FAST, "--fill", "interpolate",
                       "--out", tmp_path / "h")
    assert rc == 0, err
    assert "filled 30 missing values in column 'y' by linear interpolation" in out
    tail = json.loads((tmp_path / "h" / "config.json").read_text())["tail"]
    assert tail["index"]["freq"] == "D"


def test_irregular_times_are_noted_and_train_on_positions(tmp_path: Path) -> None:
    rows = np.sort(np.random.default_rng(0).choice(300, 100, replace=False))
    table = read_table(write(daily().iloc[rows], tmp_path, "irregular.csv"))
    assert len(table.values) == 100
    assert any("irregular, so training runs on row positions" in n for n in table.notes)


# --- trading days ------------------------------------------------------------------------------
def test_trading_days_are_not_gaps_and_forecast_weekdays(files: dict[str, Path]) -> None:
    table = read_table(files["trading"])
    assert len(table.values) == 295
    assert not any("missing period" in note for note in table.notes)
    assert any("5 missing weekday(s) are taken as holidays" in n for n in table.notes)
    assert frequency(table.index).freq == "B"
    future = extend_index(index_info(table.index), 10)
    assert (future.day_of_week < 5).all() and future[0] > table.index[-1]
    run = rnnkit.fit(files["trading"], **FAST)
    forecast = run.forecast(10)
    assert (forecast.index.day_of_week < 5).all()
    assert forecast.index[0] == table.index[-1] + pd.offsets.BDay(1)


def test_cli_trading_days_forecast_weekdays(cli: Cli, files: dict[str, Path],
                                            tmp_path: Path) -> None:
    rc, out, err = cli("fit", files["trading"], *CLI_FAST, "--out", tmp_path / "t")
    assert rc == 0, err
    assert "missing period" not in out + err
    rc, _, err = cli("forecast", tmp_path / "t", "--steps", "10", "--out", tmp_path / "f.csv")
    assert rc == 0, err
    dates = pd.DatetimeIndex(pd.read_csv(tmp_path / "f.csv").iloc[:, 0])
    assert len(dates) == 10 and (dates.day_of_week < 5).all()


def test_frequency_docstring_example() -> None:
    assert doctest.testmod(timeline, raise_on_error=True).attempted >= 1


# --- 4. dates ----------------------------------------------------------------------------------
def test_day_first_dates_are_the_time_index(files: dict[str, Path]) -> None:
    table = read_table(files["dayfirst"])
    pd.testing.assert_index_equal(table.index, DAYS.rename("date"), exact=False,
                                  check_freq=False)
    assert "used column 'date' as time index (2020-01-01 to 2020-10-26)" in table.notes
    reference = rnnkit.fit(files["sorted"], **FAST)
    assert same_weights(rnnkit.fit(files["dayfirst"], **FAST), reference)


def test_cli_day_first_dates_are_the_time_index(cli: Cli, files: dict[str, Path],
                                               tmp_path: Path) -> None:
    rc, out, err = cli("fit", files["dayfirst"], *CLI_FAST, "--out", tmp_path / "d")
    assert rc == 0, err
    assert "used column 'date' as time index (2020-01-01 to 2020-10-26)" in out


@pytest.mark.parametrize(("cells", "expected"), [
    (["13/01/2020", "14/01/2020", "15/01/2020"], "2020-01-13"),  # day first, decided at once
    (["01/12/2020", "01/13/2020", "01/14/2020"], "2020-01-12"),  # month first, by row 2
    (["2020-01-02", "2020-01-03", "2020-01-04"], "2020-01-02"),  # ISO is never swapped
])
def test_day_or_month_first_is_decided_by_the_data(tmp_path: Path, cells: list[str],
                                                   expected: str) -> None:
    table = read_table(write(pd.DataFrame({"date": cells, "y": [1.0, 2.0, 3.0]}), tmp_path,
                             "d.csv"))
    assert table.index[0] == pd.Timestamp(expected)


def test_undecidable_day_month_reads_month_first_with_a_note(tmp_path: Path) -> None:
    table = read_table(write(pd.DataFrame({"date": ["01/02/2020", "01/03/2020", "01/04/2020"],
                                           "y": [1.0, 2.0, 3.0]}), tmp_path, "d.csv"))
    assert table.index[0] == pd.Timestamp("2020-01-02")
    assert any("read month first" in note for note in table.notes)


# --- 5. panels ---------------------------------------------------------------------------------
def long_panel() -> pd.DataFrame:
    days = pd.date_range("2020-01-01", periods=40, freq="D")
    return pd.DataFrame({"unique_id": np.repeat(["a", "b"], 40), "ds": np.tile(days, 2),
                         "y": np.arange(80.0)})


def test_panel_gap_is_refused_per_series_then_filled(tmp_path: Path) -> None:
    path = write(long_panel().drop(index=range(50, 55)), tmp_path, "p.csv")
    with pytest.raises(DataError) as info:
        read_panel(path)
    message = str(info.value)
    for part in ("5 missing period(s)", "series b", "2020-01-11 to 2020-01-15", "--fill ffill"):
        assert part in message, (part, message)
    panel = read_panel(path, fill="ffill")
    assert list(panel.offsets) == [0, 40, 80]
    assert panel.values[50:55, 0].tolist() == [49.0] * 5  # the last value carried over the gap
    assert list(read_panel(path, fill="drop").offsets) == [0, 40, 75]


def test_panel_repeated_time_is_refused_or_combined(tmp_path: Path) -> None:
    frame = long_panel()
    path = write(pd.concat([frame, frame.iloc[[45]].assign(y=100.0)]), tmp_path, "p.csv")
    with pytest.raises(DataError, match=r"series b has two rows for time 2020-01-06 "
                                        r"\(row 46 \(line 47\) and row 81 \(line 82\)\)"):
        read_panel(path)
    panel = read_panel(path, duplicates="mean")
    assert panel.values[45, 0] == (45.0 + 100.0) / 2 and len(panel.values) == 80


def test_panel_trading_days_are_not_gaps(tmp_path: Path) -> None:
    days = pd.bdate_range("2020-01-01", periods=60).delete([10, 30])
    frame = pd.DataFrame({"unique_id": np.repeat(["a", "b"], 58), "ds": np.tile(days, 2),
                          "y": np.arange(116.0)})
    panel = read_panel(write(frame, tmp_path, "p.csv"))
    assert list(panel.offsets) == [0, 58, 116]


# --- fuzz: permute, duplicate and drop rows -----------------------------------------------------
BASE = pd.DataFrame({"date": pd.date_range("2021-03-01", periods=30).strftime("%Y-%m-%d"),
                     "y": 2.0 * np.arange(30) + 1.0})  # linear: interpolation restores it


@st.composite
def edited_rows(draw: st.DrawFn) -> list[int]:
    """Rows of BASE, permuted, some repeated and up to 8 dropped."""
    dropped = draw(st.sets(st.integers(0, 29), max_size=8))
    kept = [r for r in range(30) if r not in dropped]
    repeated = draw(st.lists(st.sampled_from(kept), max_size=3))
    return draw(st.permutations(kept + repeated))


@settings(max_examples=80, deadline=None, derandomize=True)
@given(edited_rows(), st.sampled_from([None, "interpolate", "drop"]),
       st.sampled_from([None, "first", "mean"]))
def test_edited_rows_give_the_sorted_result_or_one_line_refusal(
        rows: list[int], fill: str | None, duplicates: str | None) -> None:
    with tempfile.TemporaryDirectory() as folder:  # tmp_path is shared across examples
        path = write(BASE.iloc[rows], Path(folder), "fuzz.csv")
        try:
            table = read_table(path, fill=fill, duplicates=duplicates)
        except DataError as error:
            message = str(error)
            assert message and "\n" not in message
            repeated = len(set(rows)) < len(rows)
            assert ("more than once" in message) == (repeated and duplicates is None), message
            return
    distinct = sorted(set(rows))
    assert duplicates is not None or len(distinct) == len(rows)  # a repeat is never silent
    span = list(range(distinct[0], distinct[-1] + 1))
    holes = len(span) > len(distinct)
    assert not holes or fill is not None  # a missing period is never silent
    expected = span if fill == "interpolate" else distinct
    np.testing.assert_array_equal(table.values[:, 0], BASE["y"].to_numpy()[expected])
    assert list(table.index) == list(pd.DatetimeIndex(BASE["date"].iloc[expected]))
