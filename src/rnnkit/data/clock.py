"""Time indexes: the frequency of a date column, and the times that come after its end.

Forecasts extend the data's own index, so the rules that describe an index (``index_info``,
``time_info``) and the ones that continue it (``extend_index``, ``future_times``) live together.
The frequency itself is inferred by ``timeline.frequency``, the rule the reader checks gaps
against: a trading-day series (weekdays, holidays missing) continues on weekdays.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rnnkit.data.timeline import frequency, infer_freq

__all__ = ["extend_index", "future_times", "index_info", "infer_freq", "past_times",
           "time_info"]


def index_info(index: pd.Index) -> dict:
    """How to extend ``index`` past its end (for forecasts)."""
    if isinstance(index, pd.DatetimeIndex) and len(index) >= 2:
        freq = frequency(index).freq  # business days too: forecasts continue on trading days
        step = None if freq else str(pd.Series(index).diff().median())
        return {"kind": "datetime", "last": index[-1].isoformat(), "freq": freq, "step": step,
                "name": index.name}
    return {"kind": "range", "last": int(len(index) - 1), "name": index.name}


def extend_index(info: dict, steps: int) -> pd.Index:
    """The ``steps`` index values after the end described by ``index_info`` (same name, so a
    forecast CSV has the same first column as the data and its predictions)."""
    name = info.get("name")
    if info.get("kind") == "datetime":
        last = pd.Timestamp(info["last"])
        if info.get("freq"):
            return pd.date_range(last, periods=steps + 1, freq=info["freq"], name=name)[1:]
        step = pd.Timedelta(info["step"])
        return pd.DatetimeIndex([last + step * (k + 1) for k in range(steps)], name=name)
    start = int(info.get("last", -1)) + 1
    return pd.RangeIndex(start, start + steps, name=name)


def time_info(times: np.ndarray | None, offsets: np.ndarray) -> dict:
    """How to step each series' time past its end: a pandas frequency, a step, or +1 rows.
    ``times`` holds every series' times one after another, series i at offsets[i]:offsets[i+1]
    (None when the panel has no time column); the longest series decides."""
    if times is None:
        return {"kind": "row", "step": 1}
    i = int(np.argmax(np.diff(offsets)))
    t = times[offsets[i] : offsets[i + 1]]
    if times.dtype.kind == "M":
        freq = frequency(pd.DatetimeIndex(t)).freq
        step = str(pd.Series(t).diff().median()) if len(t) >= 2 else "1D"
        return {"kind": "datetime", "freq": freq, "step": step}
    step = int(np.median(np.diff(t))) if len(t) >= 2 else 1
    return {"kind": "int", "step": max(step, 1)}


def future_times(info: dict, last: np.ndarray, steps: int) -> np.ndarray:
    """(S, steps) times after each series' last time ``last`` (S,)."""
    if info["kind"] == "datetime":
        lasts = pd.DatetimeIndex(last.astype("datetime64[ns]"))
        if info.get("freq"):
            return np.stack([pd.date_range(t, periods=steps + 1, freq=info["freq"])[1:]
                             .to_numpy() for t in lasts])
        step = pd.Timedelta(info["step"]).to_timedelta64()
        return (last.astype("datetime64[ns]")[:, None]
                + step * np.arange(1, steps + 1)[None, :])
    return last.astype(np.int64)[:, None] + int(info["step"]) * np.arange(1, steps + 1)[None, :]


def past_times(info: dict, last: np.ndarray, rows: int) -> np.ndarray:
    """(S, rows) times of the last ``rows`` rows of each series, ending at ``last`` (S,):
    ``future_times`` run backwards, by the same frequency or step."""
    if info["kind"] == "datetime" and info.get("freq"):
        lasts = pd.DatetimeIndex(last.astype("datetime64[ns]"))
        return np.stack([pd.date_range(end=t, periods=rows, freq=info["freq"]).to_numpy()
                         for t in lasts])
    back = np.arange(rows - 1, -1, -1)[None, :]
    if info["kind"] == "datetime":
        step = pd.Timedelta(info["step"]).to_timedelta64()
        return last.astype("datetime64[ns]")[:, None] - step * back
    return last.astype(np.int64)[:, None] - int(info["step"]) * back
