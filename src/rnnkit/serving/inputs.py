"""What a request may hold, checked before the model sees it, and answers turned into JSON.

A request body is a JSON object. Numbers come as JSON numbers only (a string, ``true`` or
``null`` in a history is refused, not coerced) and must be finite and within float32, as the
reader of a CSV demands; a history sent as columns goes through the same reader as a file
(``rnnkit.data.read``), so it is refused with the same messages. Every refusal is one of the
project's errors with a one-line message; ``status`` says which HTTP status it answers.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from rnnkit.data.pipeline import output_columns
from rnnkit.errors import ConfigError, DataError, RnnkitError, did_you_mean
from rnnkit.persist import json_ready

MAX_BODY = 1_000_000  # bytes of one request body
MAX_STEPS = 10_000  # forecast rows one request may ask for
MAX_ROWS = 200_000  # rows of one history
MAX_VALUES = 10_000  # observations one /update may feed
MAX_ID = 200  # characters of a series id
MAX_ANSWER_ROWS = 1_000_000  # rows of one panel forecast: series x steps
FLOAT32_MAX = float(np.finfo(np.float32).max)
EPOCH = pd.Timestamp("2000-01-01")  # the stand-in clock of rows sent without times


class Malformed(DataError):
    """The body is not JSON at all."""

    status = 400


class UnknownSeries(DataError):
    """A series id that no /update has fed."""

    status = 404


class TooLarge(DataError):
    """The body is over ``MAX_BODY`` bytes."""

    status = 413


def status_of(exc: RnnkitError) -> int:
    """The HTTP status of one of our errors: bad input 422 unless it says otherwise; anything
    that is not the request's fault (a failed write, a locked folder) 500."""
    if isinstance(exc, DataError | ConfigError):
        return int(getattr(exc, "status", 422))
    return 500


@dataclass(frozen=True)
class Layout:
    """How a run reads a history: its kind, its columns (targets, then features), the time
    column it was told to use (None: detected or absent), a panel's id and time columns, the
    rows a forecast needs (window, +1 when it differences), and its future features (whose
    values /update takes beside the observations)."""

    kind: str
    columns: list[str]
    targets: list[str]
    horizon: int
    time: str | None
    panel: tuple[str, str | None] | None
    need: int
    dated: bool = False  # the run reads calendar features: every row needs its real date
    future: tuple[str, ...] = ()
    index_name: str | None = None  # the data's time index, found without being named

    @property
    def tracked(self) -> list[str]:
        """The columns of a tracked series' rows: the run's, then its future features' own
        values (a history of the series must give both)."""
        return [*self.columns, *self.future]


def layout_of(run: Any) -> Layout:
    pipe, cfg = run.pipeline, run.config
    panel = cfg.get("panel")
    return Layout(kind=run.kind, columns=[*pipe.targets, *pipe.features],
                  targets=list(pipe.targets), horizon=int(pipe.horizon),
                  time=cfg.get("source", {}).get("time"),
                  panel=(panel["id"], panel["time"]) if panel else None,
                  need=int(pipe.window) + int(bool(pipe.diff)),
                  dated=bool(getattr(getattr(pipe, "known", None), "dated", False)),
                  future=tuple(getattr(getattr(pipe, "known", None), "future", ())),
                  index_name=cfg.get("tail", {}).get("index", {}).get("name"))


# --- the body -------------------------------------------------------------------------------
def parse_body(raw: bytes, fields: tuple[str, ...]) -> dict:
    """The JSON object of a body, holding only ``fields``."""
    try:
        obj = json.loads(raw.decode("utf-8")) if raw.strip() else None
    except UnicodeDecodeError:
        raise Malformed("request body is not UTF-8 text; send a JSON object.") from None
    except json.JSONDecodeError as exc:
        raise Malformed(f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}; "
                        "send a JSON object such as {\"steps\": 12}.") from None
    except RecursionError:
        raise Malformed("JSON nested too deeply; send a flat object of lists.") from None
    if obj is None:
        raise Malformed("empty request body; send a JSON object such as {\"steps\": 12}.")
    if not isinstance(obj, dict):
        raise DataError(f"request body is a JSON {_json_kind(obj)}; expected an object with "
                        f"the fields {', '.join(fields)}.")
    for key in obj:
        if key not in fields:
            raise DataError(f"unknown field {key!r}; expected {', '.join(fields)}."
                            f"{did_you_mean(key, fields)}")
    return obj


def shown(o: Any, limit: int = 40) -> str:
    """A value as the JSON the client sent, cut to about ``limit`` characters."""
    try:
        text = json.dumps(o, allow_nan=True)
    except (TypeError, ValueError):
        text = repr(o)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json_kind(o: Any) -> str:
    if isinstance(o, bool):
        return "boolean"
    if isinstance(o, int | float):
        return "number"
    return {str: "string", list: "list", dict: "object"}.get(type(o), "null")


def steps_of(body: dict) -> int:
    """``steps``: a whole number from 1 to MAX_STEPS (required)."""
    if "steps" not in body:
        raise DataError("steps is missing; say how many rows to forecast, e.g. {\"steps\": 12}.")
    sent = body["steps"]
    whole = isinstance(sent, int) or (isinstance(sent, float) and sent.is_integer())
    if isinstance(sent, bool) or not whole:
        raise DataError(f"steps={shown(sent)} is not a whole number; send e.g. "
                        "{\"steps\": 12}.")
    if sent < 1:
        raise DataError(f"steps={shown(sent)} must be at least 1.")
    if sent > MAX_STEPS:
        raise DataError(f"steps={shown(sent)} is more than {MAX_STEPS}, the most one request "
                        "may ask for; ask for fewer steps.")
    return int(sent)


def series_of(body: dict) -> str:
    """``series``: the id of a tracked series, a non-empty string of at most MAX_ID chars."""
    sid = body.get("series")
    if not isinstance(sid, str) or not sid or len(sid) > MAX_ID or not sid.isprintable():
        raise DataError(f"series={shown(sid)}: expected a series id, a non-empty string of at "
                        f"most {MAX_ID} printable characters.")
    return sid


def numbers(value: Any, name: str, columns: list[str], limit: int) -> np.ndarray:
    """A JSON list of numbers (a run of one column) or of rows of one number per column:
    (rows, len(columns)) float64, every value finite and within float32."""
    if not isinstance(value, list) or not value:
        raise DataError(f"{name} must be a non-empty list of numbers such as [1.5, 2.0, 3.25]"
                        f", got {shown(value) if not isinstance(value, list) else '[]'}.")
    if len(value) > limit:
        raise DataError(f"{name} has {len(value)} values, more than the {limit} one request "
                        "may send; send fewer.")
    width = len(columns)
    flat = width == 1 and not isinstance(value[0], list)
    rows = [[x] for x in value] if flat else value
    for i, row in enumerate(rows):
        where = f"{name}[{i}]"
        if not isinstance(row, list) or len(row) != width:
            names = ", ".join(repr(c) for c in columns)
            what = (f"a number (the run reads one column, {names})" if width == 1 else
                    f"a row of {width} numbers, one per column: {names}")
            raise DataError(f"{where} is {shown(row)}; expected {what}.")
        for j, x in enumerate(row):
            _check_number(x, where if flat else f"{where}[{j}]")
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), width)


def _check_number(x: Any, where: str) -> None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        raise DataError(f"{where} is {shown(x)}, which is not a number; expected numbers only.")
    if not math.isfinite(x):
        raise DataError(f"{where} is {shown(x)}; expected finite numbers (no NaN or "
                        "infinity).")
    if abs(x) > FLOAT32_MAX:
        raise DataError(f"{where} is {x}, which is beyond float32 range (|x| <= 3.4028235e38);"
                        " rescale the values before sending them.")


def history_frame(value: Any, layout: Layout) -> tuple[pd.DataFrame, bool]:
    """A history as the table the run reads, and whether its rows are numbered rather than
    dated: a list (of numbers, or of rows of the run's columns) or an object of equally long
    columns, e.g. a panel's unique_id, ds and y."""
    if isinstance(value, dict):
        return _columns_frame(value), False
    if layout.panel is not None:
        ident, time = layout.panel
        names = [ident, *([time] if time else []), *layout.columns]
        raise DataError("a panel run needs history as columns: {"
                        + ", ".join(f'"{c}": [...]' for c in names) + "}.")
    if layout.dated:
        time = layout.time or "date"
        raise DataError(f"this run reads calendar features of the dates, so a history needs "
                        f"its dates: send it as columns, {{\"{time}\": [...], "
                        + ", ".join(f'"{c}": [...]' for c in layout.columns) + "}.")
    return values_frame(numbers(value, "history", layout.columns, MAX_ROWS), layout), True


def future_frame(value: Any) -> pd.DataFrame:
    """The coming values of a run's future features: an object of equally long columns, the
    data's time column and each future feature (``--future`` as JSON)."""
    if not isinstance(value, dict):
        raise DataError(f"future is {shown(value)}; expected columns such as {{\"ds\": [...], "
                        "\"promo\": [...]}, one row per date ahead.")
    return _columns_frame(value, "future")


def update_future(value: Any, layout: Layout) -> dict[str, np.ndarray] | None:
    """/update's ``future``: each future feature's coming values, in order (the rows after
    the values sent: ``state.Tracker.update`` says how many), finite numbers."""
    if not layout.future:
        if value is not None:
            raise DataError("future: this run has no future features, so /update takes no "
                            "future values; leave it out.")
        return None
    if value is None:
        return None  # the tracker says how many values it needed
    if not isinstance(value, dict):
        raise DataError(f"future is {shown(value)}; expected an object of the future features' "
                        f"coming values, e.g. {{\"{layout.future[0]}\": [1, 0]}}.")
    for key in value:
        if key not in layout.future:
            raise DataError(f"future[{key!r}] is not a future feature of the run; send "
                            f"{', '.join(repr(c) for c in layout.future)} only (no times: the "
                            f"values follow the rows in order).{did_you_mean(key, layout.future)}")
    out = {}
    for name in layout.future:
        if name not in value:
            raise DataError(f"future has no {name!r}; send the coming values of every future "
                            f"feature: {', '.join(repr(c) for c in layout.future)}.")
        column = value[name]
        if not isinstance(column, list):
            raise DataError(f"future[{name!r}] is {shown(column)}; expected a list of numbers.")
        for i, x in enumerate(column):
            _check_number(x, f"future[{name!r}][{i}]")
        out[name] = np.asarray(column, dtype=np.float64)
    return out


def values_frame(rows: np.ndarray, layout: Layout, times: pd.DatetimeIndex | None = None,
                 columns: list[str] | None = None) -> pd.DataFrame:
    """Rows of the run's columns (n, F) as the table it reads, at ``times`` when they are
    known (a dated run's tracked series). ``columns``: the rows' names when they are not the
    run's columns (a tracked series' rows hold its future features too)."""
    frame = pd.DataFrame(rows, columns=columns or layout.columns)
    if times is not None:  # as the column the run reads its time from, else as the index
        if layout.time is not None:
            frame.insert(0, layout.time, times)
        else:  # named as the data's, by which a future table's dates are matched
            frame.index = times.rename(layout.index_name)
    elif layout.time is not None:
        # The run was told to read its time from a column these values came without. A
        # stand-in daily clock lets the reader take them; the answer numbers the rows instead
        # (row_numbers), so the stand-in dates are never shown.
        frame.insert(0, layout.time, pd.date_range(EPOCH, periods=len(rows), freq="D"))
    return frame


def series_frame(rows: np.ndarray, layout: Layout, sid: str, times: np.ndarray | None
                 ) -> pd.DataFrame:
    """Tracked rows (n, F + future features) of one series of a panel run, at ``times``
    (None: no time column), as the long table the run reads."""
    ident, time = layout.panel or ("unique_id", None)
    frame = pd.DataFrame(rows, columns=layout.tracked)
    if time is not None and times is not None:
        frame.insert(0, time, times)
    frame.insert(0, ident, sid)
    return frame


def row_numbers(index: pd.Index) -> list[int]:
    """The row numbers of ``values_frame``'s rows (and of the rows past its end)."""
    if isinstance(index, pd.DatetimeIndex):
        return [int(d) for d in (index - EPOCH) // pd.Timedelta(days=1)]
    return [int(i) for i in index]


def _columns_frame(value: dict, what: str = "history") -> pd.DataFrame:
    lengths = set()
    for name, column in value.items():
        if not isinstance(column, list):
            raise DataError(f"{what}[{name!r}] is {shown(column)}; expected a list (one value "
                            "per row).")
        lengths.add(len(column))
        for i, x in enumerate(column):
            if isinstance(x, str):
                continue  # ids and dates; a string in a value column is the reader's to refuse
            _check_number(x, f"{what}[{name!r}][{i}]")
    if len(lengths) > 1:
        sizes = ", ".join(f"{k} {len(v)}" for k, v in value.items())
        raise DataError(f"{what} columns differ in length ({sizes}); send one value per row "
                        "in every column.")
    if not value or lengths == {0}:
        raise DataError(f"{what} has no rows; send columns with one value per row.")
    return pd.DataFrame(value)


def reader_message(exc: DataError) -> DataError:
    """The reader's error about a history sent in the body, naming it as such."""
    return DataError(str(exc).replace("<DataFrame>", "history"))


# --- the answer -----------------------------------------------------------------------------
def frame_json(frame: pd.DataFrame, layout: Layout, point: str, horizon: int,
               numbered: bool = False, offset: int = 0) -> dict:
    """A forecast or prediction table as JSON columns: the index (or a panel's id and time),
    ``point`` and ``lo80``, ``hi80``, ... Each value is a number for one target and one step,
    else a list over targets, steps, or steps of targets. ``numbered``: the rows came without
    times, so the index gives row numbers, counted from ``offset``."""
    out: dict[str, Any] = {}
    if frame.attrs.get("long_format"):
        ident, time = frame.columns[0], frame.columns[1]
        out[str(ident)] = [str(s) for s in frame[ident]]
        out[str(time)] = plain_times(frame[time].to_numpy())
    else:
        index = frame.index
        out["index"] = ([i + offset for i in row_numbers(index)] if numbered
                        else plain_times(index.to_numpy()))
    points = output_columns(layout.targets, horizon)
    out[point] = _shaped(frame, points, horizon, len(layout.targets))
    first = f"{points[0]}_lo"
    levels = sorted(int(c[len(first):]) for c in frame.columns
                    if str(c).startswith(first) and c[len(first):].isdigit())
    for level in levels:
        for side in ("lo", "hi"):
            out[f"{side}{level}"] = _shaped(frame, [f"{c}_{side}{level}" for c in points],
                                            horizon, len(layout.targets))
    return out


def _shaped(frame: pd.DataFrame, columns: list[str], horizon: int, targets: int) -> list:
    values = frame[columns].to_numpy(dtype=np.float64).reshape(len(frame), horizon, targets)
    keep = [len(frame)] + [n for n in (horizon, targets) if n > 1]
    return json_ready(values.reshape(keep).tolist())


def plain_times(values: np.ndarray) -> list:
    """Times as ISO text (dates) or plain numbers (row steps)."""
    if np.issubdtype(values.dtype, np.datetime64):
        return [pd.Timestamp(v).isoformat() for v in values]
    return [v.item() if hasattr(v, "item") else v for v in values]


def dumps(o: Any) -> bytes:
    return json.dumps(json_ready(o), allow_nan=False, separators=(",", ":")).encode()
