"""Property test of read_table (RELIABILITY.md row 13): any CSV text gives a finite float32
table of shape (n, 1) with n >= 1, or our DataError; never another exception."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.data.read import Table, read_table
from rnnkit.errors import DataError

TRICKY = [
    "nan", "NaN", "-nan", "inf", "-Infinity", "1e400", "3e39", "-1e308", "3.4028235e38", "NA",
    "null", "#N/A", "None", "", " ", "1,5", "1;5", '"', '""', '"2"', '"a,b"', "\t", "|", "\x00",
    "０", "٣", "1_000", "0x10", "1e-50", "True", "2020-01-01", "1959Q1", "31/12/2020",
]  # fmt: skip
# Surrogates are allowed: written with 'surrogatepass' they become invalid UTF-8 on disk.
TEXT = st.text(st.characters(codec=None), max_size=6)

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(width=32).map(str),
    st.integers(-(10**40), 10**40).map(str),
)
cells = st.one_of(
    numbers, numbers, numbers, numbers, st.sampled_from(TRICKY), TEXT, TEXT.map(lambda t: f'"{t}"')
)
names = st.one_of(st.sampled_from(["y", "value", "date", "x y", "ü", "時間", ""]), TEXT)


@st.composite
def csv_texts(draw: st.DrawFn) -> tuple[str, str]:
    """Return (CSV text, first column name) with random header, cells and line endings."""
    header = draw(st.lists(names, min_size=1, max_size=3, unique=draw(st.booleans())))
    delimiter = draw(st.sampled_from([",", ",", ";", "\t"]))
    exact = st.just(len(header))
    width = exact  # half the files are well-formed, the rest may have ragged rows
    if draw(st.booleans()):
        width = st.one_of(exact, exact, st.integers(max(1, len(header) - 1), len(header) + 1))
    row = width.flatmap(lambda n: st.lists(cells, min_size=n, max_size=n))
    rows = draw(st.lists(row, max_size=8))
    eol = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    lines = [delimiter.join(header)] + [delimiter.join(row) for row in rows]
    bom = draw(st.sampled_from(["", "\ufeff"]))
    return bom + eol.join(lines) + draw(st.sampled_from(["", eol, eol * 2])), header[0]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(csv_texts(), st.sampled_from([None, "ffill", "interpolate", "drop"]))
def test_reader_returns_finite_table_or_data_error(case: tuple[str, str], fill: str | None) -> None:
    text, target = case
    with tempfile.TemporaryDirectory() as folder:  # tmp_path is shared across examples
        path = Path(folder) / "fuzz.csv"
        path.write_bytes(text.encode("utf-8", errors="surrogatepass"))
        try:
            table = read_table(path, target=target, fill=fill)
        except DataError as error:
            assert str(error) and "\n" not in str(error)
            return
    assert isinstance(table, Table)
    assert isinstance(table.values, np.ndarray) and table.values.dtype == np.float32
    assert table.values.ndim == 2 and table.values.shape[1] == 1 and table.values.shape[0] >= 1
    assert np.isfinite(table.values).all()
    assert len(table.index) == table.values.shape[0]


# --- long-format panels ------------------------------------------------------------------------
ids = st.one_of(st.sampled_from(["a", "b", "c", "", "NA", '"a"', "1", "1.0"]), TEXT)
times = st.one_of(st.integers(-3, 30).map(str), st.sampled_from(
    ["2020-01-01", "2020-02-01", "2020-01-01 10:00", "1959Q1", "1959Q2", "1871", "", "never",
     "31/12/2020", "NaT"]), TEXT)


@st.composite
def panel_texts(draw: st.DrawFn) -> str:
    """CSV text of a long table unique_id, ds, y with random ids, times and cells."""
    delimiter = draw(st.sampled_from([",", ",", ";"]))
    rows = draw(st.lists(st.tuples(ids, times, cells), min_size=0, max_size=12))
    if draw(st.booleans()):  # a well-formed block: one series, increasing integer times
        n = draw(st.integers(1, 6))
        rows += [("z", str(t), str(float(t))) for t in range(n)]
    lines = [delimiter.join(["unique_id", "ds", "y"])] + [delimiter.join(r) for r in rows]
    return "\n".join(lines) + "\n"


@settings(max_examples=200, deadline=None, derandomize=True)
@given(panel_texts(), st.sampled_from([None, "ffill", "drop"]))
def test_panel_reader_returns_a_valid_panel_or_data_error(text: str, fill: str | None) -> None:
    from rnnkit.data.read_panel import Panel, read_panel

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "panel.csv"
        path.write_bytes(text.encode("utf-8", errors="surrogatepass"))
        try:
            panel = read_panel(path, fill=fill)
        except DataError as error:
            assert str(error) and "\n" not in str(error)
            return
    assert isinstance(panel, Panel) and panel.values.dtype == np.float32
    assert np.isfinite(panel.values).all() and len(panel.values) >= 1
    assert panel.offsets[0] == 0 and panel.offsets[-1] == len(panel.values)
    assert (np.diff(panel.offsets) > 0).all() and len(panel.ids) == len(panel.offsets) - 1
    assert len(set(panel.ids)) == len(panel.ids)
    for a, b in zip(panel.offsets[:-1], panel.offsets[1:], strict=True):
        steps = np.diff(panel.times[a:b])
        assert (steps > np.zeros_like(steps)).all()  # time rises within each series
