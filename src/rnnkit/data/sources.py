"""Opening a source: a file (CSV, TSV, text, Parquet), a DataFrame, a Series, an array or a list
becomes cells per column (:class:`Raw`), before any column is chosen or converted.

Every failure to open or decode is a one-line :class:`~rnnkit.errors.DataError` naming the file
and, for text, the line. ``rnnkit.data.read`` chooses the columns and checks their values.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rnnkit.data.validate import Origin, check_names, parse_text
from rnnkit.errors import DataError


@dataclass
class Raw:
    """Cells as read, before any column is chosen or converted."""

    origin: Origin
    names: list[str]
    columns: dict[str, np.ndarray]
    index: pd.DatetimeIndex | None = None  # a DataFrame's own DatetimeIndex
    sniffed: bool = True  # False when the delimiter was a fallback guess

    @property
    def source(self) -> str:
        return self.origin.source


def load(source: object) -> Raw:
    """Turn any supported source into cells per column."""
    if isinstance(source, str | Path):
        return _load_path(source)
    if isinstance(source, pd.DataFrame):
        return _from_frame(source, "<DataFrame>")
    if isinstance(source, pd.Series):
        name = "value" if source.name is None else str(source.name)
        return _from_frame(source.to_frame(name), "<Series>")
    if isinstance(source, np.ndarray | list | tuple):
        label = "<array>" if isinstance(source, np.ndarray) else "<list>"
        try:
            array = source if isinstance(source, np.ndarray) else np.array(source, dtype=object)
        except ValueError:
            raise DataError(
                f"{label}: rows have different lengths; expected a flat list of numbers or a "
                f"list of equal-length rows."
            ) from None
        if array.ndim == 1:
            return _from_frame(pd.DataFrame({"value": array}), label)
        if array.ndim == 2:
            frame = pd.DataFrame({f"x{j}": array[:, j] for j in range(array.shape[1])})
            return _from_frame(frame, label)
        raise DataError(
            f"{label}: got {array.ndim} dimensions (shape {array.shape}); expected 1-D "
            f"(one column) or 2-D (rows x columns)."
        )
    raise DataError(
        f"cannot read a {type(source).__name__}; expected a file path, a pandas DataFrame or "
        f"Series, a numpy array or a list of numbers."
    )


def _from_frame(frame: pd.DataFrame, label: str) -> Raw:
    """Cells of an in-memory DataFrame; its DatetimeIndex (or PeriodIndex) is kept."""
    names = [str(name) for name in frame.columns]
    check_names(names, label)
    if not names:
        raise DataError(f"{label} has no columns; expected at least one column of numbers.")
    if len(frame) == 0:
        raise DataError(f"{label} has 0 data rows; expected at least one row of numbers.")
    columns = {name: _cells(frame.iloc[:, j]) for j, name in enumerate(names)}
    index = frame.index
    if isinstance(index, pd.PeriodIndex):
        index = index.to_timestamp()
    dates = index if isinstance(index, pd.DatetimeIndex) and not index.hasnans else None
    return Raw(Origin(label), names, columns, dates)


def _cells(column: pd.Series) -> np.ndarray:
    """A column as float64 (NaN = missing) when numeric or boolean dtype, else as object cells."""
    kind = pd.api.types
    if kind.is_bool_dtype(column.dtype) or (
        kind.is_numeric_dtype(column.dtype) and not kind.is_complex_dtype(column.dtype)
    ):
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    return column.to_numpy(dtype=object)


def _load_path(source: str | Path) -> Raw:
    """Read a CSV/TSV/text or Parquet file, turning every failure into a DataError."""
    display = str(source)
    path = Path(source)
    if path.is_dir():
        raise DataError(f"{display} is a directory, not a file; pass the path of a CSV file.")
    if not path.exists():
        raise DataError(f"file not found: {display}; check the path (relative to {Path.cwd()}).")
    if path.suffix.lower() in (".parquet", ".pq"):
        return _load_parquet(path, display)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(f"cannot read {display}: {error.strerror or error}.") from None
    delimiter = "\t" if path.suffix.lower() == ".tsv" else None
    names, columns, origin, sniffed = parse_text(_decode(data, display), display, delimiter)
    return Raw(origin, names, columns, sniffed=sniffed)


def _load_parquet(path: Path, display: str) -> Raw:
    if importlib.util.find_spec("pyarrow") is None:
        raise DataError(f"reading {display} needs pyarrow: pip install pyarrow")
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError, TypeError) as error:  # ArrowInvalid is a ValueError
        raise DataError(
            f"{display}: cannot read as Parquet ({type(error).__name__}: {error}); check that "
            f"it is a complete Parquet file."
        ) from None
    if len(frame) == 0:
        raise DataError(f"{display}: file has a header but 0 data rows; expected at least one.")
    return _from_frame(frame, display)


def _decode(data: bytes, display: str) -> str:
    """Return the file's text without a UTF-8 BOM; NUL bytes and bad encodings raise."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise DataError(f"{display}: file is UTF-16 encoded; save it as UTF-8 (CSV UTF-8).")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise DataError(
            f"{display}: line {_line_at(data, nul)} contains a NUL byte (\\x00); the file may be "
            f"binary or corrupted. Remove the NUL characters or re-export it as CSV text."
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataError(
            f"{display}: line {_line_at(data, error.start)} is not valid UTF-8 (byte "
            f"0x{data[error.start]:02x}); save the file as UTF-8."
        ) from None
    if not text.strip():
        raise DataError(f"{display}: file is empty; expected a header line and rows of numbers.")
    return text


def _line_at(data: bytes, offset: int) -> int:
    """1-based line number of byte ``offset``, counting \\n, \\r\\n and \\r endings."""
    head = data[:offset]
    return head.count(b"\n") + head.count(b"\r") - head.count(b"\r\n") + 1
