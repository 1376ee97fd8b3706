"""The panel kind: one global model over the series of a long table, answering in long format.

Metrics pool the forecasts of every series' test part (in original units) next to baselines
computed per series; ``predict`` and ``forecast`` return long tables (id, time, target). A saved
panel run keeps its per-series scaling and the tail of every series in ``panel.safetensors``
(the JSON config holds only the ids), so forecasts after ``rnnkit.load`` equal those before.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from rnnkit.data.clock import future_times, time_info
from rnnkit.data.panel import PanelPipeline
from rnnkit.data.pipeline import Encoded, output_columns, output_values
from rnnkit.data.read_panel import Panel, read_panel
from rnnkit.errors import CheckpointError, DataError, did_you_mean
from rnnkit.evaluate import adaptive, intervals, learned, panel_scores
from rnnkit.evaluate.adaptive import Adaptive
from rnnkit.evaluate.evaluation import Evaluation
from rnnkit.inference import SeriesOfPanel, rolling_forecast, sample_paths
from rnnkit.kinds.panel_rows import BATCH, forecasts, known_truth, split_pairs
from rnnkit.persist import load_weights, save_weights

PANEL_FILE = "panel.safetensors"
KEPT_FORECASTS = 100_000  # forecasts kept in memory after evaluation, for the doctor
ROLLED_STEPS = 100  # forecast steps calibrated through the autoregressive loop, at most
ROLLED_ORIGINS = 2000  # (series, validation origin) pairs they are calibrated from, at most


class PanelKind:
    name = "panel"
    pipeline = PanelPipeline

    # --- fitting ---------------------------------------------------------------------------
    @staticmethod
    def read(data: Any, target: Any, features: list[str] | None, time: str | None,
             opts: dict) -> tuple[Panel, dict, dict]:
        panel = read_panel(data, opts.get("id"), time, target, features, opts.get("fill"),
                           opts.get("duplicates"))
        learned = {"id": panel.id_name, "target": panel.targets, "features": panel.features,
                   "time": panel.time_name}
        source = {"target": panel.targets, "features": panel.features, "time": panel.time_name,
                  "id": panel.id_name, "fill": opts.get("fill"),
                  "duplicates": opts.get("duplicates"), "name": panel.source}
        return panel, learned, source

    @staticmethod
    def model_defaults(pipe: PanelPipeline) -> dict:
        """Model options the user may override."""
        return {}

    @staticmethod
    def model_shape(pipe: PanelPipeline, data: Panel) -> dict:
        return {"input_size": data.values.shape[1], "output_size": len(data.targets),
                "head": "last", "horizon": pipe.horizon, "window": pipe.window}

    @staticmethod
    def describe(pipe: PanelPipeline, data: Panel) -> dict:
        clock = time_info(data.times if data.time_name else None, data.offsets)
        return {"panel": {"ids": data.ids, "id": data.id_name, "time": data.time_name,
                          "clock": clock}, "notes": data.notes}

    @staticmethod
    def tail(pipe: PanelPipeline, panel: Panel) -> dict[str, np.ndarray]:
        """The last window (+1 with diff) of rows of every series, and each series' last time."""
        need = pipe.window + int(pipe.diff)
        ends = panel.offsets[1:]
        rows = ends[:, None] - need + np.arange(need)[None, :]
        return {"values": np.ascontiguousarray(panel.values[rows]),
                "last": panel.times[ends - 1].astype(np.int64)}

    # --- data of a fitted run --------------------------------------------------------------
    @staticmethod
    def attach(run: Any, data: Any, target: Any = None) -> tuple[Encoded, PanelPipeline]:
        """The panel to use, encoded, and the pipeline with its series' statistics in its
        order (new data may hold some of the training series, in any order)."""
        pipe: PanelPipeline = run.pipeline
        if data is None:
            if run.data is None:
                raise DataError("no data: this panel run was loaded from disk without its data; "
                                "pass the long table (a CSV path or DataFrame).")
            return run.data, pipe
        p = run.config["panel"]
        panel = read_panel(data, p["id"], p["time"], pipe.targets, pipe.features or None,
                           run.config["source"].get("fill"),
                           run.config["source"].get("duplicates"))
        pos = {s: i for i, s in enumerate(p["ids"])}
        unknown = [s for s in panel.ids if s not in pos]
        if unknown:
            raise DataError(f"{panel.source}: series {', '.join(unknown[:5])}"
                            f"{' and more' if len(unknown) > 5 else ''} were not in the training "
                            "panel, so their scaling is unknown; fit again with them.")
        rows = np.array([pos[s] for s in panel.ids])
        mine = dataclasses.replace(pipe, shift=pipe.shift[rows], scale=pipe.scale[rows])
        return mine.encode(panel), mine

    # --- evaluation ------------------------------------------------------------------------
    @classmethod
    def evaluate(cls, run: Any, data: Any, target: Any) -> tuple[dict, Evaluation]:
        """Pooled metrics over every series' test part (validation when no series has a test
        window), in original units, next to per-series baselines."""
        enc, pipe = cls.attach(run, data)
        panel: Panel = enc.dataset
        o, h = len(pipe.targets), pipe.horizon
        split = "test" if len(pipe.segments("test", panel.offsets)) else "val"
        pred, series, last = forecasts(run.model, pipe, enc, split)
        if len(pred) == 0:
            raise DataError("no series has a complete forecast in its test or validation rows.")
        truth = panel.values[last[:, None] + np.arange(1, h + 1)[None, :], :o].astype(np.float64)
        base = panel_scores.naive_baselines(pipe, panel, series, last)
        ar = panel_scores.pooled_ar(pipe, panel, pipe.pairs(enc, "train"),
                                    pipe.pairs(enc, split), series, last)
        if ar is not None:
            base[f"linear AR({pipe.window}), pooled"] = ar
        metrics = panel_scores.score(pipe, panel, truth, pred, base, series)
        found, _ = intervals.held_out(
            run.config, pred, truth, series, pipe.scale[series, :o], base["last value"],
            lambda: _predicted(run, enc, split))
        metrics.update(found)
        metrics["split"] = {
            "evaluated_on": split, "series": len(panel), "rows": len(panel.values),
            "forecasts_scored": len(pred), "horizon": h, "window": pipe.window,
            "diff": pipe.diff, "period": pipe.period,
            "scaling": f"{pipe.scaler}, per series (fit on each series' training rows)",
        }
        # the doctor's skill check reads these; an even sample keeps a huge panel's copy small
        keep = np.unique(np.linspace(0, len(pred) - 1, min(len(pred), KEPT_FORECASTS)).astype(int))
        kept = {k: np.ascontiguousarray(b[keep]) for k, b in base.items()}
        return metrics, Evaluation(split, pred[keep], truth[keep], kept)

    # --- predictions -----------------------------------------------------------------------
    @classmethod
    def predict(cls, run: Any, data: Any, target: Any) -> pd.DataFrame:
        """Forecasts of every row that has a full window before it, in long format: id, time
        and one column per target (``y_t+k`` for each step of a longer horizon)."""
        enc, pipe = cls.attach(run, data)
        pred, series, last = forecasts(run.model, pipe, enc, "all")
        bounds = intervals.with_truth(
            run.config, pred, known_truth(pipe, enc.dataset, series, last), series,
            pipe.scale[series, :len(pipe.targets)], lambda: _predicted(run, enc, "all"))
        return long_table(run.config["panel"], enc.dataset.ids, series,
                          enc.dataset.times[last + 1], output_values(pred, bounds),
                          output_columns(pipe.targets, pipe.horizon, tuple(bounds)))

    @classmethod
    def forecast(cls, run: Any, steps: int, data: Any) -> pd.DataFrame:
        """Continue every series ``steps`` rows past its end: a long table (id, time, target)."""
        pipe: PanelPipeline = run.pipeline
        if pipe.features:
            raise DataError(f"forecast past the end needs future values of the features "
                            f"{pipe.features}, which are not known; use predict with a table "
                            "that has them.")
        if steps < 1:
            raise DataError(f"steps={steps} must be at least 1.")
        ids = run.config["panel"]["ids"]
        cal = intervals.stored(run.config).get("rolled")
        sigma = None if cal is None else getattr(cal, "sigma", None)
        if data is not None:
            enc, pipe = cls.attach(run, data)
            tail, ids = cls.tail(pipe, enc.dataset), enc.dataset.ids
            if isinstance(cal, Adaptive):
                sigma = volatility_now(run.model, pipe, enc, cal)
        elif run.tail is None:
            raise DataError("no data: pass the long table to continue.")
        else:
            tail = run.tail
        o = len(pipe.targets)
        hist = tail["values"].astype(np.float64)[:, :, :o]
        future = rolling_forecast(run.model, hist, int(steps), window=pipe.window,
                                  diff=pipe.diff, shift=pipe.shift[:, :o],
                                  scale=pipe.scale[:, :o], batch=BATCH)  # (S, steps, O)
        s = len(hist)
        times = future_times(run.config["panel"]["clock"], tail["last"], int(steps))
        if learned.is_learned(run.config):
            found = learned.path_bounds(sample_paths(
                run.model, hist, int(steps), learned.path_count(s),
                learned.drawer(run.config, int(run.config["train"]["seed"])),
                window=pipe.window, diff=pipe.diff, shift=pipe.shift[:, :o],
                scale=pipe.scale[:, :o], batch=BATCH), learned.levels(run.config))
        else:
            found = {} if cal is None else intervals.ahead(cal, future, pipe.scale[:, :o], sigma)
        bounds = {k: (lo.reshape(s * steps, 1, o), hi.reshape(s * steps, 1, o))
                  for k, (lo, hi) in found.items()}
        return long_table(run.config["panel"], ids, np.repeat(np.arange(s), steps),
                          times.reshape(-1),
                          output_values(future.reshape(s * steps, 1, o), bounds),
                          output_columns(pipe.targets, 1, tuple(bounds)))

    # --- intervals -------------------------------------------------------------------------
    @staticmethod
    def calibrate(run: Any) -> dict | None:
        """Interval half-widths pooled over the series' validation parts, each residual in
        units of its series' scale: each step of the horizon, each step of a rolled forecast,
        and the naive last-value interval's."""
        levels = intervals.levels_of(run.config)
        if not levels or run.data is None:
            return None
        enc, pipe = run.data, run.pipeline
        o, h = len(pipe.targets), pipe.horizon
        pred, series, last = forecasts(run.model, pipe, enc, "val")
        if len(pred) == 0:
            return None
        values = enc.dataset.values
        truth = values[last[:, None] + np.arange(1, h + 1)[None, :], :o].astype(np.float64)
        scale = pipe.scale[series, :o]
        naive = np.repeat(values[last, None, :o].astype(np.float64), h, axis=1)
        found = {"naive": intervals.calibrate(truth, naive, levels, scale)}
        method = intervals.method_of(run.config)  # learned: the model gives the intervals
        if method == "split":
            found["direct"] = intervals.calibrate(truth, pred, levels, scale)
            found["rolled"] = None if pipe.features else _rolled(run, levels)
        elif method == "adaptive":
            found["direct"], found["rolled"] = _adaptive(run, truth, pred, series, last, levels)
        return {k: None if c is None else c.to_json() for k, c in found.items()}

    @staticmethod
    def generate(run: Any, prompts: list[np.ndarray], steps: int) -> np.ndarray:
        raise DataError("a panel run continues its series with forecast(steps); generate is for "
                        "sequence runs.")

    @staticmethod
    def stream(run: Any, series: str | None = None) -> SeriesOfPanel:
        """A stream of the series ``series``, primed on its last rows in the fitted data."""
        ids = [str(i) for i in run.config["panel"]["ids"]]
        if series is None:
            raise DataError("a panel run streams one of its series at a time: "
                            "run.stream(series=id).")
        if str(series) not in ids:
            raise DataError(f"series {str(series)!r} was not in the training panel, so its "
                            "scaling is unknown; stream one of the run's series or fit again "
                            f"with it.{did_you_mean(str(series), ids)}")
        i = ids.index(str(series))
        primer = None if run.tail is None else run.tail["values"][i]
        return SeriesOfPanel(run.model, run.pipeline, i, primer)

    # --- files -----------------------------------------------------------------------------
    @staticmethod
    def save(run: Any, folder: Path, fmt: int) -> None:
        """Per-series statistics and tails, in ``panel.safetensors``."""
        tail = run.tail or {}
        save_weights(folder / PANEL_FILE, {
            **run.pipeline.tensors(),
            "tail": torch.from_numpy(np.ascontiguousarray(tail["values"])),
            "last": torch.from_numpy(np.ascontiguousarray(tail["last"].astype(np.int64)))},
            {"format_version": str(fmt)})

    @staticmethod
    def load(folder: Path, cfg: dict) -> tuple[PanelPipeline, dict[str, np.ndarray]]:
        """The pipeline and tails from ``panel.safetensors``, checked against the config."""
        try:
            pj = cfg["pipeline"]
            s, f = int(pj["series"]), len(pj["targets"]) + len(pj["features"])
            need = int(pj["window"]) + int(bool(pj["diff"]))
            if len(cfg["panel"]["ids"]) != s:
                raise CheckpointError(f"{folder / 'config.json'}: lists "
                                      f"{len(cfg['panel']['ids'])} series ids for {s} series.")
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{folder / 'config.json'}: invalid panel config ({exc})."
                                  ) from None
        expected = {"shift": torch.zeros(s, f, dtype=torch.float64),
                    "scale": torch.zeros(s, f, dtype=torch.float64),
                    "tail": torch.zeros(s, need, f), "last": torch.zeros(s, dtype=torch.int64)}
        t = load_weights(folder / PANEL_FILE, expected)
        pipe = PanelPipeline.from_json(pj, t)
        tail = {"values": t["tail"].numpy(), "last": t["last"].numpy()}
        if cfg["panel"]["clock"]["kind"] == "datetime":
            tail["last"] = tail["last"].astype("datetime64[ns]")
        return pipe, tail


def _adaptive(run: Any, truth: np.ndarray, pred: np.ndarray, series: np.ndarray,
              last: np.ndarray, levels: tuple[int, ...]) -> tuple[Adaptive | None,
                                                                 Adaptive | None]:
    """Adaptive calibrations pooled over the series' validation forecasts, each error divided
    by its own series' volatility; both know every series' volatility at its end."""
    pipe = run.pipeline
    scale = pipe.scale[series, :len(pipe.targets)]
    direct = adaptive.calibrate(truth, pred, levels, series, scale)
    if direct is None:
        return None, None
    direct.sigma = volatility_now(run.model, pipe, run.data, direct)
    sigma, _ = adaptive.volatility(truth[:, 0] - pred[:, 0], series,
                                   direct.start(scale[adaptive.first_rows(series)]))
    return direct, None if pipe.features else _rolled(run, levels, (last, sigma, direct))


def _rolled(run: Any, levels: tuple[int, ...], studentise: tuple | None = None
            ) -> intervals.Calibration | Adaptive | None:
    """Half-widths of rolled forecasts from (series, origin) pairs drawn evenly from the
    validation parts, whose rolled steps stay inside them. ``studentise``: (buffer rows of the
    validation origins, the volatility before each, the direct adaptive calibration) divides
    each rolled error by its series' volatility at its origin."""
    pipe, panel = run.pipeline, run.data.dataset
    o, need = len(pipe.targets), pipe.window + int(pipe.diff)
    train_end, val_end = pipe.bounds(panel.lengths)
    first = np.maximum(train_end - 1, need - 1)
    steps = int(min(ROLLED_STEPS, max(pipe.horizon, int(np.median(val_end - first)) // 2)))
    counts = np.maximum(val_end - 1 - steps - first + 1, 0)
    if steps < 1 or counts.sum() == 0:
        return None
    pick = np.unique(np.linspace(0, counts.sum() - 1, min(ROLLED_ORIGINS, counts.sum())
                                 ).astype(np.int64))
    series = np.searchsorted(np.cumsum(counts), pick, side="right")
    local = first[series] + pick - (np.cumsum(counts) - counts)[series]
    rows = panel.offsets[series] + local  # buffer row of each origin
    hist = panel.values[rows[:, None] + np.arange(-need + 1, 1)[None, :], :o]
    pred = rolling_forecast(run.model, hist.astype(np.float64), steps, window=pipe.window,
                            diff=pipe.diff, shift=pipe.shift[series, :o],
                            scale=pipe.scale[series, :o], batch=BATCH)
    truth = panel.values[rows[:, None] + np.arange(1, steps + 1)[None, :], :o]
    if studentise is None:
        return intervals.calibrate(truth, pred, levels, pipe.scale[series, :o])
    return adaptive.rolled(truth, pred, levels, rows, studentise)


def _predicted(run: Any, enc: Encoded, split: str, only: np.ndarray | None = None
               ) -> learned.Predicted:
    """The learned distributions of the forecasts of ``split`` of every series, or of the
    series numbered ``only``."""
    pipe = run.pipeline
    pairs = split_pairs(pipe, enc, split, only)
    series, last = pipe.origins(pairs.index, torch.arange(len(pairs)))  # type: ignore[arg-type]
    return learned.predicted(run.model, run.config, pairs, pipe.diff,
                             lambda r: pipe.to_levels(r, series, last, enc.dataset.values))


def volatility_now(model: torch.nn.Module, pipe: PanelPipeline, enc: Encoded, cal: Adaptive
                   ) -> np.ndarray:
    """(S, O) each series' local volatility after its last row, from its one-step errors."""
    o, panel = len(pipe.targets), enc.dataset
    start = cal.start(pipe.scale[:, :o])
    pred, series, last = forecasts(model, pipe, enc, "all")
    if len(pred) == 0:
        return start
    truth = known_truth(pipe, panel, series, last)
    _, after = adaptive.volatility(truth[:, 0] - pred[:, 0], series,
                                   start[series[adaptive.first_rows(series)]])
    out = start.copy()
    out[series[adaptive.first_rows(series)]] = after
    return out


def long_table(info: dict, ids: list[str], series: np.ndarray, times: np.ndarray,
               values: np.ndarray, columns: list[str]) -> pd.DataFrame:
    """A long-format frame: id, time and the value columns."""
    frame = pd.DataFrame({info["id"]: np.asarray(ids, dtype=object)[series],
                          info["time"] or "step": times})
    for j, c in enumerate(columns):
        frame[c] = values[:, j]
    frame.attrs["long_format"] = True
    return frame


def plot_series(run: Any) -> list[dict]:
    """Four series spread over the panel: recent history, test truth, test forecasts."""
    enc, pipe = PanelKind.attach(run, None)
    panel: Panel = enc.dataset
    split = "test" if len(pipe.segments("test", panel.offsets)) else "val"
    picks = np.unique(np.linspace(0, len(panel) - 1, min(4, len(panel))).astype(int))
    pred, series, last = forecasts(run.model, pipe, enc, split, only=picks)
    bounds = intervals.with_truth(run.config, pred, known_truth(pipe, panel, series, last),
                                  series, pipe.scale[series, :len(pipe.targets)],
                                  lambda: _predicted(run, enc, split, picks))
    out = []
    for i in picks:
        a, b = int(panel.offsets[i]), int(panel.offsets[i + 1])
        mine = series == i
        start = max(a, int(last[mine].min()) + 1 - 3 * pipe.window) if mine.any() else a
        out.append({"id": panel.ids[i], "times": panel.times[start:b],
                    "values": panel.values[start:b, 0],
                    "pred_times": panel.times[last[mine] + 1], "pred": pred[mine, 0, 0],
                    "name": pipe.targets[0],
                    "bands": {lv: (lo[mine, 0, 0], hi[mine, 0, 0])
                              for lv, (lo, hi) in bounds.items()}})
    return out

