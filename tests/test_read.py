"""Tests of rnnkit.data.read: every RELIABILITY.md input fault (rows 1-13) and the shipped data."""

from __future__ import annotations

import doctest
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rnnkit.data import read as read_module
from rnnkit.data.read import Table, read_table
from rnnkit.errors import ConfigError, DataError

DATA = Path(__file__).parent / "data"


def write(tmp_path: Path, content: str | bytes, name: str = "d.csv") -> Path:
    """Write ``content`` byte-exactly (str as UTF-8 without newline translation)."""
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def error_of(source: object, **kwargs: object) -> str:
    """Return the message of the DataError that ``read_table`` must raise (one line)."""
    with pytest.raises(DataError) as info:
        read_table(source, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert info.value.__cause__ is None or info.value.__suppress_context__
    return message


def check_table(table: Table, rows: int, columns: int) -> None:
    assert isinstance(table.values, np.ndarray)
    assert table.values.dtype == np.float32
    assert table.values.shape == (rows, columns)
    assert table.values.flags["C_CONTIGUOUS"]
    assert np.isfinite(table.values).all()
    assert len(table.index) == rows


# --- files that cannot be read --------------------------------------------------------------


def test_missing_file_names_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    assert f"file not found: {path}" in error_of(path)
    assert "file not found: nope/x.csv" in error_of("nope/x.csv")


def test_directory_is_a_clear_error(tmp_path: Path) -> None:
    assert "is a directory" in error_of(tmp_path)


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b"\r\n\r\n", b"\xef\xbb\xbf"])
def test_empty_or_blank_file(tmp_path: Path, content: bytes) -> None:
    message = error_of(write(tmp_path, content))
    assert "file is empty" in message
    assert "d.csv" in message


@pytest.mark.parametrize("content", ["y\n", "date,y\r\n\r\n", "y"])
def test_header_only(tmp_path: Path, content: str) -> None:
    assert "header but 0 data rows" in error_of(write(tmp_path, content), target="y")


# --- bad cells ------------------------------------------------------------------------------


def test_non_numeric_cell_names_file_column_row_value(tmp_path: Path) -> None:
    path = write(tmp_path, "t,y\n1,2.0\n2,abc\n3,4\n")
    message = error_of(path, target="y")
    for part in (str(path), "'y'", "row 2", "line 3", "'abc'"):
        assert part in message


def test_non_numeric_feature_is_found_too(tmp_path: Path) -> None:
    path = write(tmp_path, "y,f\n1,2\n2,x7\n")
    message = error_of(path, target="y", features=["f"])
    assert "'f'" in message and "row 2" in message and "'x7'" in message


def test_bad_string_deep_in_big_file(tmp_path: Path) -> None:
    values = [f"{i % 97}.5" for i in range(300_000)]
    values[249_999] = "oops"
    path = write(tmp_path, "i,y\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values)))
    message = error_of(path, target="y")
    assert "row 250000 " in message and "line 250001" in message and "'oops'" in message


@pytest.mark.parametrize(
    "cell", ["", "NaN", "nan", "NA", "N/A", "null", "NULL", "#N/A", "None", "-nan", "  "]
)
def test_missing_values_need_fill(tmp_path: Path, cell: str) -> None:
    path = write(tmp_path, f"y\n1\n2\n{cell}\n4\n" if cell else "t,y\n1,1\n2,2\n3,\n4,4\n")
    message = error_of(path, target="y")
    assert "missing value" in message and "'y'" in message and "row 3" in message
    assert "--fill ffill|interpolate|drop" in message


def test_blank_line_in_one_column_file_is_a_missing_cell(tmp_path: Path) -> None:
    path = write(tmp_path, "y\n1\n\n3\n\n\n")  # trailing blank lines are not rows
    assert "1 missing value(s) at row 2;" in error_of(path)
    table = read_table(path, fill="interpolate")
    assert table.values[:, 0].tolist() == [1.0, 2.0, 3.0]
    assert table.notes == ["filled 1 missing values in column 'y' by linear interpolation (row 2)"]


def test_blank_lines_between_rows_of_a_wide_file_are_skipped(tmp_path: Path) -> None:
    table = read_table(write(tmp_path, "\na,b\n\n1,2\n\n3,4\n"), target="b", features="a")
    assert table.values.tolist() == [[2.0, 1.0], [4.0, 3.0]]
    assert "row 2 (line 5)" in error_of(write(tmp_path, "a,b\n\n1,2\n\n3,x\n"), target="b")


def test_missing_rows_listed_then_counted(tmp_path: Path) -> None:
    lines = "".join("\n" if i % 2 else f"{i}\n" for i in range(40))
    message = error_of(write(tmp_path, "y\n" + lines + "99\n"))
    assert "20 missing value(s) at rows 2, 4, 6, 8, 10, 12, 14, 16, 18, 20 and 10 more" in message


@pytest.mark.parametrize("cell", ["inf", "-inf", "Infinity", "-Infinity", "1e400", "-1e999"])
def test_infinity_is_rejected_even_with_fill(tmp_path: Path, cell: str) -> None:
    path = write(tmp_path, f"t,y\n1,1\n2,{cell}\n3,3\n")
    for fill in (None, "ffill", "interpolate", "drop"):
        message = error_of(path, target="y", fill=fill)
        assert "contains infinity" in message and "'y'" in message and "row 2" in message


@pytest.mark.parametrize("cell", ["3e39", "-1e308", "3.5e38"])
def test_beyond_float32_is_rejected(tmp_path: Path, cell: str) -> None:
    message = error_of(write(tmp_path, f"y\n1\n{cell}\n"), fill="drop")
    assert "beyond float32" in message and "'y'" in message and "row 2" in message
    assert repr(cell) in message


def test_float32_max_itself_is_accepted(tmp_path: Path) -> None:
    table = read_table(write(tmp_path, "y\n3.4028235e38\n-3.4028235e38\n"))
    check_table(table, 2, 1)


# --- fill policies --------------------------------------------------------------------------


def test_fill_policies(tmp_path: Path) -> None:
    path = write(tmp_path, "y,f\n,1\n2,\n,3\n4,4\n,5\n")
    ffill = read_table(path, target="y", features=["f"], fill="ffill")
    assert ffill.values.tolist() == [[2, 1], [2, 3], [4, 4], [4, 5]]
    assert any("dropped the first 1 rows" in note for note in ffill.notes)
    assert any("filled 2 missing values in column 'y' by forward fill" in n for n in ffill.notes)
    interp = read_table(path, target="y", features=["f"], fill="interpolate")
    assert interp.values.tolist() == [[2, 1], [2, 2], [3, 3], [4, 4], [4, 5]]
    assert any("filled 3 missing values in column 'y'" in note for note in interp.notes)
    drop = read_table(path, target="y", features=["f"], fill="drop")
    assert drop.values.tolist() == [[4, 4]]
    assert list(drop.index) == [0]
    assert any("dropped 4 rows" in note for note in drop.notes)


def test_fill_drop_leaving_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, "y,f\n,1\n2,\n")
    message = error_of(path, target="y", features=["f"], fill="drop")
    assert "no data rows left after dropping missing values" in message


def test_fill_with_all_missing_column(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, "t,y\n1,\n2,NA\n"), target="y", fill="interpolate")
    assert "only missing values" in message and "'y'" in message


def test_fill_only_touches_selected_columns(tmp_path: Path) -> None:
    table = read_table(write(tmp_path, "y,other\n1,\n2,\n"), target="y")
    check_table(table, 2, 1)


def test_unknown_fill_is_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Did you mean 'ffill'"):
        read_table(write(tmp_path, "y\n1\n"), fill="fill")


# --- delimiters, encodings, line endings ----------------------------------------------------


def test_semicolon_file_is_sniffed(tmp_path: Path) -> None:
    path = write(tmp_path, "date;y;f\n2020-01-01;1.5;2\n2020-01-02;3;4\n")
    table = read_table(path, target="y", features=["f"])
    assert table.values.tolist() == [[1.5, 2.0], [3.0, 4.0]]
    assert isinstance(table.index, pd.DatetimeIndex)


@pytest.mark.parametrize("delimiter", ["\t", "|"])
def test_other_delimiters_are_sniffed(tmp_path: Path, delimiter: str) -> None:
    path = write(tmp_path, f"a{delimiter}b\n1{delimiter}2\n3{delimiter}4\n", "d.txt")
    check_table(read_table(path, target="b"), 2, 1)


def test_tsv_is_tab_separated(tmp_path: Path) -> None:
    table = read_table(write(tmp_path, "a\tb\n1\t2\n", "d.tsv"), target="b")
    assert table.values.tolist() == [[2.0]]


def test_decimal_comma_hint(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, "date;y\n2020-01-01;1,5\n"), target="y")
    assert "'1,5'" in message and "decimal comma" in message


def test_delimiter_hint_when_sniffing_fails(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, "a;b\n1\n2\n"), target="b")
    assert "column 'b' not found" in message and "available: [a;b]" in message
    assert "may use ';' as delimiter" in message


def test_bom_and_crlf_match_plain_file(tmp_path: Path) -> None:
    plain = "date,y\n2020-01-01,1\n2020-01-02,\n2020-01-03,3\n"
    expected = read_table(write(tmp_path, plain, "plain.csv"), fill="interpolate")
    variants = {
        "bom.csv": b"\xef\xbb\xbf" + plain.encode(),
        "crlf.csv": plain.replace("\n", "\r\n").encode(),
        "both.csv": b"\xef\xbb\xbf" + plain.replace("\n", "\r\n").encode(),
        "cr.csv": plain.replace("\n", "\r").encode(),
    }
    for name, content in variants.items():
        table = read_table(write(tmp_path, content, name), fill="interpolate")
        assert table.targets == expected.targets == ["y"]
        np.testing.assert_array_equal(table.values, expected.values)
        pd.testing.assert_index_equal(table.index, expected.index)
        assert [n.replace(name, "plain.csv") for n in table.notes] == expected.notes


# --- column names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "missing", "suggestion"),
    [
        ({"target": "valeu"}, "valeu", "value"),
        ({"target": "value", "features": ["tmep"]}, "tmep", "temp"),
        ({"target": "value", "time": "dat"}, "dat", "date"),
        ({"target": "VALUE"}, "VALUE", "value"),
    ],
)
def test_missing_column_lists_available_and_suggests(
    tmp_path: Path, kwargs: dict, missing: str, suggestion: str
) -> None:
    path = write(tmp_path, "date,value,temp\n2020-01-01,1,2\n")
    message = error_of(path, **kwargs)
    assert f"column '{missing}' not found in {path}; available: [date, value, temp]" in message
    assert f"[date, value, temp] Did you mean '{suggestion}'?" in message


def test_duplicate_column_names(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, "a,b,a\n1,2,3\n"), target="b")
    assert "duplicate column name 'a'" in message


def test_target_needed_when_several_numeric_columns(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, "date,a,b,label\n2020-01-01,1,2,x\n"))
    assert "2 numeric columns [a, b]" in message and "--target" in message
    assert "target=" in message


def test_target_guessed_when_one_numeric_column(tmp_path: Path) -> None:
    table = read_table(write(tmp_path, "name,y\nx,1\nz,2\n"))
    assert table.targets == ["y"] and table.features == []
    assert isinstance(table.index, pd.RangeIndex)


# --- structure: ragged rows, NUL, invalid UTF-8 --------------------------------------------


def test_ragged_row_names_line(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, "a,b\n1,2\n3,4,5\n"), target="b")
    assert "d.csv" in message and "line 3" in message and "3 fields but the header has 2" in message


def test_short_row_names_line(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, "a,b\n1,2\n\n3\n"), target="b")
    assert "line 4 (row 2) has 1 fields" in message


def test_nul_byte_is_never_silent(tmp_path: Path) -> None:
    for content in (b"y\n1\n\x00\n3\n", b"y\n1\n2\x00\n", b"y\x00\n1\n"):
        message = error_of(write(tmp_path, content))
        assert "NUL byte" in message and "d.csv" in message and "line " in message
    assert "line 3" in error_of(write(tmp_path, b"y\r\n1\r\n\x00\r\n"))


def test_invalid_utf8_names_line(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, b"name,y\nok,1\n\xff\xfe,2\n"), target="y")
    assert "line 3" in message and "not valid UTF-8" in message and "d.csv" in message


def test_utf16_file_is_explained(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, "y\n1\n".encode("utf-16")))
    assert "UTF-16" in message


# --- time column ----------------------------------------------------------------------------


def test_explicit_time_column_unparsable(tmp_path: Path) -> None:
    path = write(tmp_path, "when,y\n2020-01-01,1\nsoon,2\n")
    message = error_of(path, target="y", time="when")
    for part in (str(path), "'when'", "row 2", "line 3", "'soon'"):
        assert part in message


def test_auto_time_unparsable_falls_back_to_rows(tmp_path: Path) -> None:
    table = read_table(write(tmp_path, "date,y\nfoo,1\nbar,2\n"), target="y")
    assert isinstance(table.index, pd.RangeIndex)
    assert any("not used as time index" in note for note in table.notes)


def test_auto_time_by_values_not_name(tmp_path: Path) -> None:
    table = read_table(write(tmp_path, "stamp,y\n2020-01-01 10:00,1\n2020-01-01 11:00,2\n"))
    assert list(table.index) == list(pd.to_datetime(["2020-01-01 10:00", "2020-01-01 11:00"]))
    assert table.index.name == "stamp"


def test_day_first_is_decided_by_a_day_above_12(tmp_path: Path) -> None:
    # issue 11: '13/02/2020' can only be day-first, so the whole column is read day-first
    table = read_table(write(tmp_path, "date,y\n01/02/2020,1\n13/02/2020,2\n"))
    assert list(table.index) == list(pd.to_datetime(["2020-02-01", "2020-02-13"]))


def test_day_month_contradiction_names_the_first_bad_cell(tmp_path: Path) -> None:
    path = write(tmp_path, "date,y\n01/02/2020,1\n13/02/2020,2\n02/14/2020,3\n")
    assert isinstance(read_table(path).index, pd.RangeIndex)
    message = error_of(path, time="date")
    assert "row 3" in message and "'02/14/2020'" in message


def test_iso_dates_of_mixed_precision(tmp_path: Path) -> None:
    table = read_table(write(tmp_path, "date,y\n2020-01-01,1\n2020-01-01 10:30,2\n"))
    assert table.index[1] == pd.Timestamp("2020-01-01 10:30")


def test_first_column_as_target_is_not_time(tmp_path: Path) -> None:
    table = read_table(write(tmp_path, "year,y\n1990,1\n1991,2\n"), target="year")
    assert isinstance(table.index, pd.RangeIndex)
    assert table.values[:, 0].tolist() == [1990.0, 1991.0]


# --- in-memory sources ----------------------------------------------------------------------


def test_dataframe_checks_name_columns_and_rows() -> None:
    frame = pd.DataFrame({"y": [1.0, np.nan, 3.0], "s": ["1", "x", "3"]})
    message = error_of(frame, target="y")
    assert "<DataFrame>" in message and "'y'" in message and "row 2" in message
    message = error_of(frame, target="s")
    assert "'s'" in message and "row 2" in message and "'x'" in message
    assert "infinity" in error_of(pd.DataFrame({"y": [1.0, np.inf]}))


def test_dataframe_explicit_datetime_column() -> None:
    frame = pd.DataFrame({"y": [1.0, 2.0], "at": pd.to_datetime(["2021-05-01", "2021-05-02"])})
    table = read_table(frame, target="y", time="at")
    assert list(table.index) == list(frame["at"]) and table.index.name == "at"
    frame.loc[1, "at"] = pd.NaT
    message = error_of(frame, target="y", time="at")
    assert "time column 'at' row 2" in message and "NaT" in message


def test_dataframe_object_strings_and_index() -> None:
    index = pd.date_range("2020-01-01", periods=3, freq="D")
    frame = pd.DataFrame({"y": ["1.5", "2", " 3 "], "b": [True, False, True]}, index=index)
    table = read_table(frame, target="y", features=["b"])
    assert table.values.tolist() == [[1.5, 1.0], [2.0, 0.0], [3.0, 1.0]]
    pd.testing.assert_index_equal(table.index, index)
    assert table.source == "<DataFrame>"


def test_series_array_and_list_sources() -> None:
    series = read_table(pd.Series([1, 2, 3], name="load"))
    assert series.targets == ["load"] and series.source == "<Series>"
    assert read_table(pd.Series([1.0, 2.0])).targets == ["value"]
    array = read_table(np.arange(6, dtype=np.int64).reshape(3, 2), target="x1", features=["x0"])
    assert array.values.tolist() == [[1, 0], [3, 2], [5, 4]] and array.source == "<array>"
    check_table(read_table([1, 2.5, 3]), 3, 1)
    assert read_table([1, 2.5, 3]).source == "<list>"


@pytest.mark.parametrize(
    ("source", "part"),
    [
        (np.array([1.0, np.nan]), "row 2"),
        (np.array([[1.0], [np.inf]]), "infinity"),
        ([1, "abc"], "'abc'"),
        ([1, None, 3], "missing value"),
        ([1, True], "True"),
        (np.zeros((2, 2, 2)), "3 dimensions"),
        ([], "0 data rows"),
        ({"a": 1}, "cannot read a dict"),
        ([1e39], "beyond float32"),
        ([10**400], "beyond float32"),
    ],
)
def test_in_memory_sources_are_checked(source: object, part: str) -> None:
    message = error_of(source)
    assert part in message
    assert message.startswith(("<array>", "<list>", "cannot read"))


def test_numeric_dataframe_columns_need_target() -> None:
    message = error_of(pd.DataFrame({"a": [1, 2], "b": [3, 4]}))
    assert "2 numeric columns [a, b]" in message


def test_non_string_column_names() -> None:
    table = read_table(pd.DataFrame({0: [1.0, 2.0], 1: [3.0, 4.0]}), target=0, features=[1])
    assert table.columns == ["0", "1"] and table.values.tolist() == [[1, 3], [2, 4]]


def test_control_characters_stay_on_one_line(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, "y\n1\n"), target="a\rb")
    assert "'a\\rb'" in message


# --- parquet --------------------------------------------------------------------------------


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is None, reason="needs pyarrow")
def test_parquet_round_trip(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"date": pd.date_range("2021-01-01", periods=4, freq="MS"), "y": [1.0, 2.0, 3.0, 4.0]}
    )
    path = tmp_path / "d.parquet"
    frame.to_parquet(path)
    table = read_table(path)
    assert table.values[:, 0].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert list(table.index) == list(frame["date"]) and table.source == str(path)
    assert "cannot read as Parquet" in error_of(write(tmp_path, "not parquet", "bad.pq"))


def test_parquet_without_pyarrow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert "pip install pyarrow" in error_of(write(tmp_path, b"PAR1", "d.parquet"))


# --- the shipped real series ----------------------------------------------------------------


def test_sunspots_monthly() -> None:
    table = read_table(DATA / "sunspots_monthly.csv")
    check_table(table, 3126, 1)
    assert table.targets == ["sunspot_number"]
    assert isinstance(table.index, pd.DatetimeIndex)
    assert table.index[0] == pd.Timestamp("1749-01-01")
    assert table.index[1] == pd.Timestamp("1749-02-01")


def test_co2_missing_without_fill() -> None:
    message = error_of(DATA / "co2_mauna_loa_weekly.csv")
    assert "'co2_ppmv' has 59 missing value(s) at rows 7, 10, 11" in message
    assert "and 49 more" in message


@pytest.mark.parametrize(("fill", "rows"), [("ffill", 2284), ("interpolate", 2284), ("drop", 2225)])
def test_co2_fill_policies(fill: str, rows: int) -> None:
    table = read_table(DATA / "co2_mauna_loa_weekly.csv", fill=fill)
    check_table(table, rows, 1)
    assert isinstance(table.index, pd.DatetimeIndex)
    assert any(" 59 " in note for note in table.notes)


def test_nile_yearly() -> None:
    table = read_table(DATA / "nile_yearly.csv")
    check_table(table, 100, 1)
    assert table.index[0] == pd.Timestamp("1871-01-01")
    assert table.index[-1] == pd.Timestamp("1970-01-01")


def test_macro_quarterly() -> None:
    table = read_table(DATA / "us_macro_quarterly.csv", target="realgdp", features=["cpi", "unemp"])
    check_table(table, 203, 3)
    assert table.columns == ["realgdp", "cpi", "unemp"]
    assert table.index[1] == pd.Timestamp("1959-04-01")
    assert table.values[0].tolist() == pytest.approx([2710.349, 28.98, 5.8])


def test_docstring_example() -> None:
    assert doctest.testmod(read_module, raise_on_error=True).attempted >= 1
