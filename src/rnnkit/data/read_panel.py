"""Read a long-format panel: many series in one table, one row per (series, time).

The forecasting ecosystem's convention (NeuralForecast, statsforecast) is the columns
``unique_id, ds, y``; those are the defaults here when present. ``read_panel`` returns a
:class:`Panel` whose rows are sorted by series (in order of first appearance) and then by time,
in one C-contiguous float32 buffer with ``offsets`` marking where each series starts. Every
problem is a one-line DataError naming the source, column, row and the fix.
"""

from __future__ import annotations

import csv
import importlib.util
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from rnnkit.data.compact import Column, KnownColumns
from rnnkit.data.dates import parse_dates
from rnnkit.data.panel_table import Panel
from rnnkit.data.panel_time import (
    CHUNK,
    PANEL_FILLS,
    Identity,
    Rows,
    in_order,
    on_frequency,
    one_row_per_time,
    row_at,
)
from rnnkit.data.statics import StaticColumns, read_statics
from rnnkit.data.validate import row_list, show, sniff
from rnnkit.errors import DataError, did_you_mean

ID, TIME, TARGET = "unique_id", "ds", "y"
SNIFF_LINES = 100  # lines the delimiter is guessed from


def columns_of(source: object) -> list[str] | None:
    """Column names of a file or DataFrame (the header only), None for other sources."""
    if isinstance(source, pd.DataFrame):
        return [str(c) for c in source.columns]
    if not isinstance(source, str | Path):
        return None
    path = Path(source)
    if not path.is_file():
        return None
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            if importlib.util.find_spec("pyarrow") is None:
                return None
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        head, delimiter = _head(path)
    except (OSError, ValueError):
        return None  # the series reader reports unreadable files properly
    return [c.strip() for c in next(csv.reader([head], delimiter=delimiter), [])]


def is_panel(source: object, id_column: str | None) -> bool:
    """Long format: an id column was named, or the source has the conventional ``unique_id``."""
    if id_column is not None:
        return True
    names = columns_of(source)
    return bool(names) and ID in names


def _head(path: Path) -> tuple[str, str]:
    """(header line, delimiter) of a text table, sniffed as the series reader does it."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
        lines = [line for _, line in zip(range(SNIFF_LINES), f, strict=False)]
    head = lines[0] if lines else ""
    return head, "\t" if path.suffix.lower() == ".tsv" else sniff("".join(lines))[0]


def _frame(source: object) -> tuple[pd.DataFrame, str, int]:
    """(frame, display name, file lines before data row 1) of a path or DataFrame."""
    if isinstance(source, pd.DataFrame):
        return source.reset_index(drop=True), "<DataFrame>", -1
    if not isinstance(source, str | Path):
        raise DataError(f"a panel (long format) is read from a CSV/Parquet file or a DataFrame, "
                        f"not a {type(source).__name__}.")
    display, path = str(source), Path(source)
    if not path.is_file():
        raise DataError(f"file not found: {display}; check the path (relative to {Path.cwd()}).")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path), display, -1
        frame = pd.read_csv(path, sep=_head(path)[1], encoding="utf-8-sig",
                            skipinitialspace=True, low_memory=False)
    except UnicodeDecodeError as exc:
        raise DataError(f"{display}: not valid UTF-8 (byte 0x{exc.object[exc.start]:02x}); save "
                        "the file as UTF-8.") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, OSError) as exc:
        text = " ".join(str(exc).split())
        raise DataError(f"{display}: cannot be read as a CSV table ({text}); check that every "
                        "line has the header's number of fields.") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame, display, 1


def _pick(names: list[str], name: str, role: str, source: str) -> str:
    if name in names:
        return name
    raise DataError(f"{source}: column '{name}' not found; available: [{', '.join(names)}]"
                    f"{did_you_mean(name, names) or '.'} Pass one of these names as --{role}.")


def _numbers(frame: pd.DataFrame, name: str, source: str, header: int) -> np.ndarray:
    """A column as float64; a cell that is not a number is an error naming its row."""
    col = frame[name]
    if col.dtype == np.float64:
        return col.to_numpy(copy=False)  # NaN is already NaN: no copy of a long column
    if pd.api.types.is_bool_dtype(col.dtype) or (
            pd.api.types.is_numeric_dtype(col.dtype)
            and not pd.api.types.is_complex_dtype(col.dtype)):
        return col.to_numpy(dtype=np.float64, na_value=np.nan)
    num = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.flatnonzero(np.isnan(num) & col.notna().to_numpy())
    if len(bad):
        i = int(bad[0])
        raise DataError(f"{source}: column '{name}' {row_at(source, header, i)} has "
                        f"{show(col.iloc[i])}, which is not a number; fix the cell (or choose "
                        "another --target).")
    return num


def _finite32(col: np.ndarray, name: str, source: str, header: int) -> np.ndarray:
    """A float64 column checked for infinity and for values float32 cannot hold (NaN is left
    for the missing-value rules)."""
    for a in range(0, len(col), CHUNK):
        part = col[a : a + CHUNK]
        bad = np.flatnonzero(np.abs(part) > np.finfo(np.float32).max)
        if len(bad):
            i = a + int(bad[0])
            what = (f"is {col[i]}; infinity cannot be learned" if np.isinf(col[i]) else
                    f"has {col[i]:g}, beyond the float32 range rnnkit trains in; rescale the "
                    "column (e.g. to thousands)")
            raise DataError(f"{source}: column '{name}' {row_at(source, header, i)} {what}. "
                            "Fix the cell.")
    return col


def _times(frame: pd.DataFrame, name: str, source: str, header: int) -> np.ndarray:
    """Time of every row: int64 for whole numbers (steps, years), else datetime64[ns]."""
    col = frame[name]
    if col.isna().any():
        i = int(np.flatnonzero(col.isna().to_numpy())[0])
        raise DataError(f"{source}: time column '{name}' {row_at(source, header, i)} is empty; "
                        "every row needs its time.")
    if pd.api.types.is_integer_dtype(col.dtype):
        return col.to_numpy(dtype=np.int64)
    if pd.api.types.is_datetime64_any_dtype(col.dtype):
        return col.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]") if getattr(
            col.dt, "tz", None) else col.to_numpy(dtype="datetime64[ns]")
    # every series repeats the same dates: parse each distinct text once, with the reader's
    # rules (years, 1959Q1 quarters, formats inferred from the first cell, ISO 8601)
    codes, uniques = pd.factorize(col, sort=False)
    parsed, bad = parse_dates(np.asarray(uniques, dtype=object))
    if parsed is None:
        i = int(np.flatnonzero(codes == bad)[0])
        raise DataError(f"{source}: time column '{name}' {row_at(source, header, i)} has "
                        f"{show(col.iloc[i])}, which is not a date or a whole number; fix the "
                        "cell or pass another --time column.")
    return parsed.to_numpy(dtype="datetime64[ns]")[codes]


def read_panel(source: object, id_column: str | None = None, time: str | None = None,
               target: str | Sequence[str] | None = None,
               features: str | Sequence[str] | None = None, fill: str | None = None,
               duplicates: str | None = None, static: Sequence[str] | None = None,
               known: Sequence[str] | None = None) -> Panel:
    """Read a long table: ``id_column`` names the series, ``time`` orders rows within each.

    Defaults: ``unique_id``, ``ds`` (when present; else rows keep their order within each
    series) and ``y`` (when present; else the only other numeric column). ``fill``: None
    (missing values are an error), ``ffill`` (within each series) or ``drop``. The time rules of
    docs/dates.md hold per series: rows are sorted, a repeated (series, time) is refused unless
    ``duplicates`` is ``first``, ``last`` or ``mean``, and periods missing from the panel's
    frequency are missing values (``ffill`` inserts and carries over them; ``drop`` leaves them
    out). ``static``: columns with one value per series (``data/statics.py``), read once per
    series. ``known``: the columns known ahead (after the features), each stored compactly
    (``data/compact.py``) as the panel's ``known_values``, not in its ``values``.
    """
    frame, src, header = _frame(source)
    if len(frame) == 0:
        raise DataError(f"{src}: 0 data rows; expected one row per series and time.")
    feats = [features] if isinstance(features, str) else list(features or [])
    later = [str(c) for c in known or ()]
    id_name, time_name, chosen, n_targets = _columns(frame, src, id_column, time, target,
                                                     [*feats, *later])
    codes, uniques = _series_codes(frame[id_name], id_name, src, header)
    statics = None
    if static:
        roles = {id_name: "the id", time_name: "the time column",
                 **{c: "a target" for c in chosen[:n_targets]},
                 **{c: "a feature" for c in chosen[n_targets:]}}
        names = [_static_name(frame, c, src, roles) for c in static]
        statics = read_statics(frame, names, codes, len(uniques), (src, header), uniques)
    times = (_times(frame, time_name, src, header) if time_name
             else np.arange(len(frame), dtype=np.int64))
    n_values = len(chosen) - len(later)
    values, coded = _read_values(frame, chosen, n_values, (src, header), duplicates)
    data = Rows(values, codes, times, Identity(), uniques, src, header)
    del values, frame  # only ``data`` holds the rows from here (a CSV's frame is freed)
    notes: list[str] = []
    in_order(data, notes)
    one_row_per_time(data, duplicates, notes)
    if time_name:
        on_frequency(data, fill, notes)
    _fill_missing(data, chosen, fill, notes)
    if coded is not None and not isinstance(data.rows, Identity):
        coded = coded.recoded(data.rows)  # the source rows kept, sorted, inserted
    panel = _assemble(data, id_name, time_name, chosen[:n_values], n_targets, notes, statics)
    return _split_known(panel, later, coded)


def _read_values(frame: pd.DataFrame, chosen: list[str], n_values: int,
                 at: tuple[str, int], duplicates: str | None
                 ) -> tuple[np.ndarray, KnownColumns | None]:
    """``(values, coded)``: the targets and features as one (rows, n_values) float32 block
    and the known columns after them each coded as it is read, one column at a time; so a
    panel's known columns are never all held as float32 together. When a known column has a
    missing value, or ``duplicates`` merges rows into new values (``last`` takes a later row's
    values, ``mean`` averages), the missing-value and duplicate rules must see those columns
    too: then ``values`` holds every column and ``coded`` is None."""
    values = _block(frame, chosen[:n_values], at)
    if n_values == len(chosen):
        return values, None
    coded = (None if duplicates in ("last", "mean") else
             _coded(frame, chosen[n_values:], *at))
    if coded is None:
        values = np.concatenate([values, _block(frame, chosen[n_values:], at)], axis=1)
    return values, coded


def _block(frame: pd.DataFrame, names: list[str], at: tuple[str, int]) -> np.ndarray:
    """(rows, len(names)) float32: the columns ``names``, each checked in turn."""
    values = np.empty((len(frame), len(names)), dtype=np.float32)
    for j, c in enumerate(names):
        values[:, j] = _finite32(_numbers(frame, c, *at), c, *at)
    return values


def _coded(frame: pd.DataFrame, names: list[str], src: str, header: int
           ) -> KnownColumns | None:
    """The columns ``names`` checked and coded one by one; None at the first with a missing
    value (the caller reads them with the values). A bad cell raises the reader's error, after
    the targets' and features' (checked first, as they are read first)."""
    columns: tuple[Column, ...] = ()
    for c in names:
        col = _finite32(_numbers(frame, c, src, header), c, src, header)
        col = col.astype(np.float32)  # the float32 a (rows, columns) block would hold
        if any(np.isnan(col[a : a + CHUNK]).any() for a in range(0, len(col), CHUNK)):
            return None
        # a (rows, 1) view, coded in place; the raw column is freed with the next one read
        columns += KnownColumns.of(col[:, None]).columns
    return KnownColumns(columns)


def _split_known(panel: Panel, later: list[str], coded: KnownColumns | None) -> Panel:
    """``panel`` with the known columns ``later`` as its ``known_values``: ``coded`` when they
    were coded as read, else the last columns of its values, split off and coded now."""
    if not later:
        return panel
    if coded is None:
        base = panel.values.shape[1] - len(later)
        coded = KnownColumns.of(panel.values[:, base:])
        panel = replace(panel, values=np.ascontiguousarray(panel.values[:, :base]))
    return replace(panel, known=list(later), known_values=coded)


def _static_name(frame: pd.DataFrame, name: str, src: str, roles: dict) -> str:
    """A static column, checked to exist and to have no other role."""
    name = _pick(list(frame.columns), str(name), "static", src)
    if name in roles:
        raise DataError(f"{src}: column '{name}' is given as a static (one value per series) "
                        f"and is also {roles[name]}; give it once, in the role it has.")
    return name


def _columns(frame: pd.DataFrame, src: str, id_column: str | None, time: str | None,
             target: str | Sequence[str] | None, features: str | Sequence[str] | None
             ) -> tuple[str, str | None, list[str], int]:
    """``(id, time or None, targets + features, number of targets)``, checked."""
    names = list(frame.columns)
    id_name = _pick(names, id_column or ID, "id", src)
    time_name = (_pick(names, time, "time", src) if time
                 else TIME if TIME in names and id_name != TIME else None)
    feats = [features] if isinstance(features, str) else list(features or [])
    if target is None:
        if TARGET in names:
            tgts = [TARGET]
        else:
            rest = [c for c in names if c not in (id_name, time_name, *feats)
                    and pd.api.types.is_numeric_dtype(frame[c].dtype)]
            if len(rest) != 1:
                raise DataError(f"{src}: cannot tell which column to predict among "
                                f"[{', '.join(rest) or 'no numeric columns'}]; pass --target.")
            tgts = rest
    else:
        tgts = [target] if isinstance(target, str) else list(target)
    chosen = [_pick(names, c, "target" if c in tgts else "features", src) for c in tgts + feats]
    if len(set(chosen)) < len(chosen) or {id_name, time_name} & set(chosen):
        raise DataError(f"{src}: the id, time, target and feature columns must all differ "
                        f"(got id '{id_name}', time '{time_name}', columns {chosen}).")
    return id_name, time_name, chosen, len(tgts)


def _series_codes(ids: pd.Series, id_name: str, src: str, header: int
                  ) -> tuple[np.ndarray, pd.Index]:
    """``(code of every row's series, the ids in order of first appearance)``."""
    if ids.isna().any():
        i = int(np.flatnonzero(ids.isna().to_numpy())[0])
        raise DataError(f"{src}: id column '{id_name}' {row_at(src, header, i)} is empty; every "
                        "row needs the id of its series.")
    if isinstance(ids.dtype, pd.CategoricalDtype):
        # the codes are already there (no 8-byte-per-row factorize); series keep the
        # categories' order, unused categories are dropped at assembly
        codes, uniques = ids.array.codes, ids.cat.categories  # a view
        if codes.itemsize < 4:  # int8/int16 codes of few categories: room for the count
            codes = codes.astype(np.int32)
        return codes, uniques
    codes, uniques = pd.factorize(ids, sort=False)
    return codes.astype(np.int32 if len(uniques) < 2**31 else np.int64, copy=False), uniques


def _fill_missing(data: Rows, chosen: list[str], fill: str | None, notes: list[str]) -> None:
    """Refuse missing cells, or fill them within their series (``ffill``) or drop their rows."""
    # checked in chunks first: a (rows, columns) mask only when some cell is missing
    if not any(np.isnan(data.values[a : a + CHUNK]).any()
               for a in range(0, len(data.values), CHUNK)):
        return
    missing = np.isnan(data.values)
    bad = np.flatnonzero(missing.any(axis=1))
    if fill is None:
        c = int(np.flatnonzero(missing[bad[0]])[0])
        rows = bad if isinstance(data.rows, Identity) else data.rows[bad]
        raise DataError(f"{data.src}: column '{chosen[c]}' has {len(bad)} missing value(s) "
                        f"({row_list(np.sort(rows))}); pass --fill ffill (carry the last value "
                        "forward within its series) or --fill drop.")
    if fill not in PANEL_FILLS:
        raise DataError(f"{data.src}: --fill {fill} is not available for panels; use "
                        f"{' or '.join(PANEL_FILLS)}.")
    if fill == "ffill":
        filled = pd.DataFrame(data.values).groupby(data.codes).ffill().to_numpy()
        still = np.isnan(filled).any(axis=1)
        if still.any():
            r = int(np.flatnonzero(still)[0])
            raise DataError(f"{data.src}: series {data.series(r)} starts with a missing value "
                            f"({data.where(r)}), which ffill cannot fill; pass --fill drop.")
        data.values = filled
        notes.append(f"filled {len(bad)} rows with missing values from the previous row "
                     "of their series")
    else:
        data.take(~missing.any(axis=1))
        notes.append(f"dropped {len(bad)} rows with missing values")


def _assemble(data: Rows, id_name: str, time_name: str | None, chosen: list[str],
              n_targets: int, notes: list[str], statics: StaticColumns | None) -> Panel:
    # rows are grouped by code now: where each code starts (bincount would first copy the
    # codes to 8 bytes per row)
    codes = data.codes
    starts = np.searchsorted(codes, np.arange(len(data.uniques) + 1, dtype=codes.dtype))
    counts = np.diff(starts)
    present = counts > 0
    offsets = np.concatenate([[0], np.cumsum(counts[present])]).astype(np.int64)
    ids_text = [str(u) for u, p in zip(data.uniques, present, strict=True) if p]
    notes.insert(0, f"read {len(ids_text)} series in long format (id '{id_name}'"
                 + (f", time '{time_name}'" if time_name else "") + f", {len(data.values)} rows)")
    out = np.ascontiguousarray(data.values, dtype=np.float32)
    return Panel(out, offsets, ids_text, data.times, id_name, time_name, chosen[:n_targets],
                 chosen[n_targets:], data.src, notes,
                 static=None if statics is None else statics.subset(present))


