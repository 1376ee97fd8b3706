"""The series a server tracks, and the file that keeps them across restarts.

``POST /update`` feeds a series' observations one by one to its own ``Run.stream()``, whose
hidden state (or window of recent values) carries the series forward; the server also keeps
the series' recent rows, which ``/forecast`` and ``/predict`` by series id continue from. A run
with future features takes their coming values with the observations (``Tracker.update``):
its stream keeps those of the rows ahead, and each tracked row keeps its own.

``RUN/serve_state.json`` holds every tracked series: how many values it has seen, its recent
rows and its stream's state, exactly (float32 tensors as JSON numbers round-trip bit for bit).
It is published atomically (temp file, fsync, rename, fsync of the folder, under the run
folder's lock), so a kill at any moment leaves the previous file or the new one. At start a
file that does not load -- not JSON, another format, written for other weights, a state of the
wrong shape -- is moved aside to ``serve_state.json.bad`` with a log line, and the server
starts with no series rather than not at all.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from rnnkit.data.clock import future_times, past_times
from rnnkit.errors import CheckpointError, DataError, RnnkitError, did_you_mean
from rnnkit.lock import writing
from rnnkit.persist import atomic_write_bytes, dumps, loads
from rnnkit.serving.inputs import UnknownSeries
from rnnkit.streaming import Stream

STATE_FILE = "serve_state.json"
STATE_FORMAT = 1
# adaptive intervals read the one-step errors of the last 200 rows (kinds.series
# volatility_now); keeping that many more than a forecast needs makes a forecast by series id
# equal the forecast from the series' whole history
VOLATILITY_ROWS = 200
MAX_SERIES = 1000  # series one server tracks; also bounds the state file's size
DTYPES = {"float32": (np.float32, torch.float32), "float64": (np.float64, torch.float64)}


@dataclass
class Tracked:
    stream: Stream
    recent: deque  # the last rows fed, (F,) float64 each
    seen: int  # values fed since the series was first updated
    dates: deque = field(default_factory=deque)  # a dated stream's time of each recent row


class Tracker:
    """Every tracked series of one run, by id. Not thread-safe: the server holds its lock.
    ``width``: the columns of a tracked row (the run's, then its ``future`` features' own
    values)."""

    def __init__(self, run: Any, width: int, need: int, panel: bool = False,
                 future: tuple[str, ...] = ()) -> None:
        self.run, self.width, self.panel, self.future = run, width, panel, future
        self.primed = need if panel else 0  # rows a series starts with, before any update
        self.keep = need + 1 + VOLATILITY_ROWS
        self.series: dict[str, Tracked] = {}
        self.changed = False  # updated since the state file was last written

    def _new(self, sid: str) -> Tracked:
        """A series seen for the first time. A panel's series starts from its last rows in
        the run (its stream is primed on them): only the run's own series have a scaling."""
        if not self.panel:
            return Tracked(self.run.stream(), deque(maxlen=self.keep), 0,
                           deque(maxlen=self.keep))
        try:
            stream = self.run.stream(series=sid)
        except DataError as exc:
            raise UnknownSeries(str(exc)) from None
        # its primer rows, as tracked rows: a panel's tail holds its calendar columns too
        return Tracked(stream, deque((r[: self.width] for r in stream.buffer),
                                     maxlen=self.keep), 0)

    def update(self, sid: str, rows: np.ndarray, future: dict[str, np.ndarray] | None = None
               ) -> tuple[int, np.ndarray]:
        """Feed ``rows`` (n, F) to series ``sid`` (created on first use), with ``future``,
        the future features' coming values (``split_future``); return how many values it has
        seen and the forecast of its next value (O,), NaN while warming up."""
        item = self.series.get(sid)
        if item is None:
            if len(self.series) >= MAX_SERIES:
                raise DataError(f"the server already tracks {MAX_SERIES} series, the most it "
                                f"keeps; update one of them or start a server per group.")
            item = self._new(sid)
        each = self.split_future(item.stream, len(rows), future)  # all checked before feeding
        nxt = np.full(1, np.nan)
        for row, ahead in zip(rows, each, strict=True):
            nxt = item.stream.update(row, future=ahead)
            # the row with its future features' own values, which a history of it must hold
            item.recent.append(row if len(row) == self.width else item.stream.row[: self.width])
            if not self.panel and getattr(item.stream, "at", None) is not None:
                item.dates.append(item.stream.at)  # (a panel's times come from its clock)
        item.seen += len(rows)
        self.series[sid] = item  # a new series exists once its stream took every value
        self.changed = True
        return item.seen, nxt

    def split_future(self, stream: Any, n: int, future: dict[str, np.ndarray] | None
                     ) -> list[dict[str, np.ndarray] | None]:
        """Each of ``n`` values' future values (``KnownStream.update``) from one request's:
        each future feature's values of the rows after the first value sent, through the
        ``lead`` rows after the last (n - 1 + lead), and on a series' first update the first
        value's own before them (n + lead)."""
        if not self.future:
            return [None] * n
        lead = stream.pipe.lead
        own = stream.future_rows - lead  # 1 when the stream lacks the first row's own values
        want = n - 1 + lead + own
        short = [c for c in self.future if future is not None and len(future[c]) != want]
        if future is None or short:
            rows = "row" if lead == 1 else f"{lead} rows"
            what = (f"the first value's own, then the {rows} after each" if own
                    else f"the {rows} after each value")
            got = ("future is missing" if future is None
                   else f"future[{short[0]!r}] has {len(future[short[0]])} value"
                   f"{'s' if len(future[short[0]]) != 1 else ''}")
            these = "this value needs" if n == 1 else f"these {n} values need"
            raise DataError(f"{got}; {these} {want} coming value{'s' if want > 1 else ''} of "
                            "each future feature "
                            f"({', '.join(self.future)}), in order: {what}.")
        return [{c: v[: lead + own] for c, v in future.items()}] + [
            {c: v[i + own : i + own + lead] for c, v in future.items()} for i in range(1, n)]

    def rows(self, sid: str) -> tuple[np.ndarray, int]:
        """(recent rows (n, F), values seen) of series ``sid``; a panel's series not fed yet
        has its rows in the run."""
        item = self.series.get(sid)
        if item is None and self.panel:
            item = self._new(sid)
        if item is None:
            raise UnknownSeries(f"series {sid!r} is not tracked{did_you_mean(sid, self.series)}"
                                "; feed it first with POST /update {\"series\": id, "
                                "\"values\": [...]}.")
        return np.array(item.recent), item.seen

    def dates(self, sid: str, rows: int) -> pd.DatetimeIndex | None:
        """The dates its stream gave a tracked series' last ``rows`` rows (a run with known
        covariates on a dated clock); None when its rows are not dated."""
        dates = self.series[sid].dates
        if len(dates) < rows:
            return None
        return pd.DatetimeIndex([pd.Timestamp(t) for t in dates][-rows:])

    def times(self, sid: str, rows: int, seen: int) -> np.ndarray | None:
        """The times of a panel series' last ``rows`` tracked rows: its rows in the run end at
        the run's last time of it, and each value fed since is one step of the panel's clock
        later. None when the panel has no time column."""
        clock = self.run.config["panel"]["clock"]
        if clock["kind"] == "row":
            return None
        i = [str(s) for s in self.run.config["panel"]["ids"]].index(sid)
        last = self.run.tail["last"][i : i + 1]
        fed = future_times(clock, last, seen)[0] if seen else last[:0]
        return np.concatenate([past_times(clock, last, self.keep)[0], fed])[-rows:]

    # --- to and from JSON ------------------------------------------------------------------
    def to_json(self) -> dict:
        return {sid: {"seen": t.seen, "recent": np.array(t.recent).tolist(),
                      "stream": {"state": encode(t.stream.state), "last": encode(t.stream.last),
                                 "buffer": [encode(b) for b in t.stream.buffer],
                                 "at": getattr(t.stream, "at", None),
                                 "ahead": encode(getattr(t.stream, "ahead", None))},
                      "dates": list(t.dates)}
                for sid, t in self.series.items()}

    def restore(self, data: Any) -> None:
        """Take the series of ``to_json``'s output; ValueError (or KeyError, TypeError) when
        any of them is not a state this run's streams can continue from."""
        if not isinstance(data, dict) or len(data) > MAX_SERIES:
            raise ValueError("series: expected an object of at most "
                             f"{MAX_SERIES} series")
        found = {}
        for sid, d in data.items():
            rows = np.asarray(d["recent"], dtype=np.float64)
            if rows.ndim != 2 or rows.shape[1] != self.width or not len(rows) \
                    or not np.isfinite(rows).all():
                raise ValueError(f"series {sid!r}: recent rows are not finite rows of "
                                 f"{self.width} values")
            seen = int(d["seen"])
            if seen + self.primed < len(rows):
                raise ValueError(f"series {sid!r}: seen={seen} is fewer than its rows")
            # a state of the wrong shape fails on this copy, now, not in a request later
            probe = self._probe(self._stream(sid, d["stream"]), rows[-1])
            if not (np.isnan(probe).all() or np.isfinite(probe).all()):
                raise ValueError(f"series {sid!r}: its state gives non-finite forecasts")
            dates = [pd.Timestamp(str(t)).isoformat() for t in d.get("dates", [])]
            dated = not self.panel and d["stream"].get("at") is not None  # (panel: its clock)
            if dated and len(dates) < min(len(rows), self.keep):
                raise ValueError(f"series {sid!r}: {len(dates)} dates for {len(rows)} rows")
            found[sid] = Tracked(self._stream(sid, d["stream"]),
                                 deque(rows[-self.keep:], maxlen=self.keep), seen,
                                 deque(dates[-self.keep:], maxlen=self.keep))
        self.series = found

    def _stream(self, sid: str, d: dict) -> Stream:
        try:
            stream = self._new(sid).stream
        except UnknownSeries as exc:
            raise ValueError(str(exc)) from None
        stream.state, stream.last = decode(d["state"]), decode(d["last"])
        buffered = [decode(b) for b in d["buffer"]]
        if len(buffered) > (stream.buffer.maxlen or 0):
            raise ValueError(f"a stream buffer of {len(buffered)} rows; this run keeps "
                             f"{stream.buffer.maxlen}")
        stream.buffer.clear()  # a panel series' stream starts primed: the file's rows replace it
        stream.buffer.extend(buffered)
        if d.get("at") is not None:  # a dated stream's clock: the time of its last row
            stream.at = pd.Timestamp(str(d["at"])).isoformat()
        ahead = decode(d.get("ahead"))
        if ahead is not None or self.future:  # the known values of the rows ahead
            shape = (stream.pipe.lead, len(self.future))
            if not self.future or ahead is None or np.shape(ahead) != shape:
                raise ValueError(f"known values ahead of shape {np.shape(ahead)}; this run "
                                 f"keeps {shape}")
            stream.ahead = ahead
        return stream

    def _probe(self, stream: Any, row: np.ndarray) -> np.ndarray:
        """One update of a restored stream (a copy): a state of the wrong shape fails now."""
        n = self.width - len(self.future)
        future = {c: np.zeros(stream.future_rows) for c in self.future} if self.future else None
        return stream.update(row[:n], future=future)


def encode(o: Any) -> Any:
    """A stream's state (tensors, arrays, tuples and lists of them, numbers) as JSON."""
    if o is None or (isinstance(o, int | float) and not isinstance(o, bool)):
        return o
    if isinstance(o, torch.Tensor):
        return {"tensor": o.detach().cpu().reshape(-1).tolist(), "shape": list(o.shape),
                "dtype": str(o.dtype).removeprefix("torch.")}
    if isinstance(o, np.ndarray):
        return {"array": o.reshape(-1).tolist(), "shape": list(o.shape), "dtype": str(o.dtype)}
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, tuple | list):
        return {"tuple" if isinstance(o, tuple) else "list": [encode(v) for v in o]}
    raise TypeError(f"cannot keep a stream state holding a {type(o).__name__}")


def decode(o: Any) -> Any:
    """``encode``'s inverse; ValueError on anything it would not have written."""
    if o is None or (isinstance(o, int | float) and not isinstance(o, bool)):
        return o
    if not isinstance(o, dict):
        raise ValueError(f"unexpected {type(o).__name__} in a stream state")
    if "tuple" in o or "list" in o:
        items = [decode(v) for v in o.get("tuple", o.get("list"))]
        return tuple(items) if "tuple" in o else items
    np_type, torch_type = DTYPES[o["dtype"]]
    values = np.asarray(o["tensor" if "tensor" in o else "array"], dtype=np_type)
    shape = [int(n) for n in o["shape"]]
    if values.ndim != 1 or int(np.prod(shape)) != values.size or not np.isfinite(values).all():
        raise ValueError(f"a state tensor of shape {shape} with {values.size} finite values")
    values = values.reshape(shape)
    return torch.tensor(values, dtype=torch_type) if "tensor" in o else values


def fingerprint(run: Any) -> str:
    """What a state file must have been written for: these weights and this data pipeline."""
    h = hashlib.sha256(json.dumps(run.config.get("pipeline"), sort_keys=True,
                                  default=str).encode())
    for name, t in run.model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


# --- the file -------------------------------------------------------------------------------
def save(tracker: Tracker, path: Path, mark: str) -> int:
    """Publish every tracked series at ``path`` atomically; returns how many. RunLocked when a
    fit is writing the run folder (the state stays in memory for the next try)."""
    data = dumps({"format_version": STATE_FORMAT, "fingerprint": mark,
                  "series": tracker.to_json()})
    with writing(path.parent):
        atomic_write_bytes(path, data)
    tracker.changed = False
    return len(tracker.series)


def load(tracker: Tracker, path: Path, mark: str) -> tuple[bool, str]:
    """Restore the series kept at ``path``; returns (False when a file was there but did not
    load, the line to log about it). A file that does not load is moved aside, never fatal."""
    _remove_leftovers(path)
    if not path.exists():
        return True, f"no {path.name} in {path.parent}: starting with no tracked series"
    try:
        data = loads(path)
        version = data.get("format_version") if isinstance(data, dict) else None
        if version != STATE_FORMAT:
            raise ValueError(f"format_version {version}, not {STATE_FORMAT}: not a state file "
                             "this release of rnnkit writes")
        if data.get("fingerprint") != mark:
            raise ValueError("written for other weights (the run was fitted again)")
        tracker.restore(data.get("series"))
    except (CheckpointError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        aside = path.with_name(path.name + ".bad")
        with contextlib.suppress(OSError):
            os.replace(path, aside)
        reason = str(exc).removeprefix(f"{path}: ").rstrip(".")
        return False, (f"ignored {path}: {reason}; moved it to {aside.name} and started with "
                       "no tracked series")
    return True, f"restored {len(tracker.series)} tracked series from {path}"


def _remove_leftovers(path: Path) -> None:
    """Temp files of writes a kill interrupted (never published, so never read)."""
    try:
        with writing(path.parent):
            for tmp in path.parent.glob(f".{path.name}.*.tmp"):
                with contextlib.suppress(OSError):
                    tmp.unlink()
    except (RnnkitError, OSError):
        pass  # another writer (or a read-only folder) is at work; its temp file is not a leftover
