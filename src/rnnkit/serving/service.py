"""What each endpoint does with a checked request, apart from HTTP.

One ``Service`` per run. Every model call and every change to the tracked series runs under
one lock, in ``torch.inference_mode``: the web server calls these methods from a pool of
threads, and neither a ``Stream`` nor the tracked series may be advanced by two requests at
once. A small recurrent model gains nothing from running requests side by side on the CPU
threads torch already uses, so the lock costs no throughput.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from rnnkit.errors import DataError, RnnkitError
from rnnkit.evaluate import intervals, learned
from rnnkit.persist import json_ready
from rnnkit.serving import state
from rnnkit.serving.inputs import (
    MAX_ANSWER_ROWS,
    MAX_STEPS,
    MAX_VALUES,
    frame_json,
    future_frame,
    history_frame,
    layout_of,
    numbers,
    reader_message,
    series_frame,
    series_of,
    steps_of,
    update_future,
    values_frame,
)

LOG = logging.getLogger("rnnkit.serve")
FIELDS = {"forecast": ("history", "series", "steps", "future"), "predict": ("history", "series"),
          "update": ("series", "values", "future")}


class Service:
    """A run answering requests; the tracked series kept at ``state_path`` (None: in memory
    only), written at most every ``save_every`` seconds of updates (None: only on close)."""

    def __init__(self, run: Any, state_path: Path | None, save_every: float | None) -> None:
        self.run, self.layout = run, layout_of(run)
        self.tracker = state.Tracker(run, len(self.layout.tracked), self.layout.need,
                                     panel=self.layout.panel is not None,
                                     future=self.layout.future)
        self.state_path, self.save_every = state_path, save_every
        self.mark = state.fingerprint(run)
        self.lock = threading.Lock()
        self.saved_at = time.monotonic()
        if state_path is not None:
            loaded, line = state.load(self.tracker, state_path, self.mark)
            LOG.log(logging.INFO if loaded else logging.WARNING, line)

    def call(self, work: Callable[[dict], dict], body: dict) -> dict:
        with self.lock, torch.inference_mode():
            return work(body)

    # --- endpoints -------------------------------------------------------------------------
    def forecast(self, body: dict) -> dict:
        steps = steps_of(body)
        frame, numbered, offset = self._history(body, required=False)
        self._check_rows(frame, steps)
        future = future_frame(body["future"]) if "future" in body else None
        try:
            out = self.run.forecast(steps, frame, future=future)
        except DataError as exc:
            raise reader_message(exc) from None
        return {"steps": steps, **frame_json(out, self.layout, "forecast", 1, numbered, offset)}

    def predict(self, body: dict) -> dict:
        frame, numbered, offset = self._history(body, required=True)
        try:
            out = self.run.predict(frame)
        except DataError as exc:
            raise reader_message(exc) from None
        return frame_json(out, self.layout, "prediction", self.layout.horizon, numbered, offset)

    def update(self, body: dict) -> dict:
        sid = series_of(body)
        if "values" not in body:
            raise DataError("values is missing; send {\"series\": id, \"values\": [...]}.")
        rows = numbers(body["values"], "values", self.layout.columns, MAX_VALUES)
        seen, nxt = self.tracker.update(sid, rows, update_future(body.get("future"),
                                                                 self.layout))
        if self.save_every is not None and time.monotonic() - self.saved_at >= self.save_every:
            self._save(final=False)
        return {"series": sid, "seen": seen,
                "next": json_ready(float(nxt[0]) if nxt.size == 1 else nxt.tolist())}

    def model_info(self, body: dict) -> dict:
        cfg, lay = self.run.config, self.layout
        levels = (learned.levels(cfg) if learned.is_learned(cfg) else intervals.levels_of(cfg))
        return json_ready({
            "kind": lay.kind, "targets": lay.targets, "features": lay.columns[len(lay.targets):],
            "future_features": list(lay.future),
            "window": int(self.run.pipeline.window), "horizon": lay.horizon,
            "diff": bool(self.run.pipeline.diff),
            "history_rows": {"forecast": lay.need, "predict": lay.need + 1},
            "levels": list(levels), "intervals": intervals.method_of(cfg) if levels else None,
            "max_steps": MAX_STEPS, "tracked_series": len(self.tracker.series),
            "config": cfg, "metrics": self.run.metrics or {}})

    def _check_rows(self, frame: pd.DataFrame | None, steps: int) -> None:
        """A panel forecast answers steps rows per series: refuse an answer too large to
        send before computing it."""
        if self.layout.panel is None:
            return
        ident = self.layout.panel[0]
        series = (len(self.run.config["panel"]["ids"]) if frame is None
                  else frame[ident].nunique() if ident in frame else 1)  # no ids: the reader's
        if series * steps > MAX_ANSWER_ROWS:
            raise DataError(f"{series} series x {steps} steps is more than the "
                            f"{MAX_ANSWER_ROWS:,} rows one answer may hold; ask for fewer "
                            "steps or send fewer series.")

    # --- state -----------------------------------------------------------------------------
    def close(self) -> None:
        """Write the tracked series, if any changed (the server is shutting down)."""
        with self.lock:
            if self.tracker.changed:
                self._save(final=True)

    def _save(self, final: bool) -> None:
        if self.state_path is None:
            return
        try:
            n = state.save(self.tracker, self.state_path, self.mark)
        except RnnkitError as exc:  # kept in memory; the next update or shutdown tries again
            LOG.warning(f"could not write {self.state_path.name}: {exc}")
        else:
            LOG.log(logging.INFO if final else logging.DEBUG,
                    f"saved {n} tracked series to {self.state_path}")
        self.saved_at = time.monotonic()

    def _history(self, body: dict, required: bool) -> tuple[pd.DataFrame | None, bool, int]:
        """(the table to use, whether its rows are numbered, the number of its first row)."""
        if "history" in body and "series" in body:
            raise DataError("send history or series, not both.")
        if "series" in body:
            sid = series_of(body)
            rows, seen = self.tracker.rows(sid)
            if self.layout.panel is not None:
                times = self.tracker.times(sid, len(rows), seen)
                return series_frame(rows, self.layout, sid, times), False, 0
            dates = self.tracker.dates(sid, len(rows))
            if dates is not None:  # its stream dated its rows, and the answer shows them
                return values_frame(rows, self.layout, dates, self.layout.tracked), False, 0
            return (values_frame(rows, self.layout, columns=self.layout.tracked), True,
                    seen - len(rows))
        if "history" in body:
            frame, numbered = history_frame(body["history"], self.layout)
            return frame, numbered, 0
        if required:
            raise DataError("history is missing; send {\"history\": [...]} or {\"series\": "
                            "id}.")
        return None, False, 0
