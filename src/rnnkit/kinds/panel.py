"""The panel kind: one global model over the series of a long table, answering in long format.

Metrics pool the forecasts of every series' test part (in original units) next to baselines
computed per series; ``predict`` and ``forecast`` return long tables (id, time, target). A saved
panel run keeps its per-series scaling, static inputs and the tail of every series in
``panel.safetensors`` (the JSON config holds the ids and the encodings), so forecasts after
``rnnkit.load`` equal those before. Reading and matching data: ``panel_data``; forecasts past
the end and what their intervals need: ``panel_forecast``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from rnnkit.data.clock import time_info
from rnnkit.data.covariates import Known
from rnnkit.data.panel import PanelPipeline
from rnnkit.data.panel_table import Panel
from rnnkit.data.pipeline import Encoded, output_columns, output_values
from rnnkit.data.statics import Statics, embedding_size
from rnnkit.errors import CheckpointError, DataError, did_you_mean
from rnnkit.evaluate import adaptive, intervals, learned, panel_scores
from rnnkit.evaluate.adaptive import Adaptive
from rnnkit.evaluate.evaluation import Evaluation
from rnnkit.inference import SeriesOfPanel
from rnnkit.kinds import panel_data, panel_forecast
from rnnkit.kinds.panel_forecast import long_table, rolled, volatility_now
from rnnkit.kinds.panel_rows import forecasts, known_truth, split_pairs
from rnnkit.persist import load_weights, save_weights
from rnnkit.streaming import KnownStream, times_after

PANEL_FILE = "panel.safetensors"
KEPT_FORECASTS = 100_000  # forecasts kept in memory after evaluation, for the doctor
CALIBRATION_FORECASTS = 20_000  # validation forecasts an adaptive calibration keeps, at most
INTERVAL_FORECASTS = 100_000  # test forecasts whose intervals are scored, at most


class PanelKind:
    name = "panel"
    pipeline = PanelPipeline

    # --- fitting ---------------------------------------------------------------------------
    @staticmethod
    def read(data: Any, target: Any, features: list[str] | None, time: str | None,
             opts: dict) -> tuple[Panel, dict, dict]:
        return panel_data.read(data, target, features, time, opts)

    @staticmethod
    def model_defaults(pipe: PanelPipeline) -> dict:
        """Model options the user may override."""
        return {}

    @staticmethod
    def model_shape(pipe: PanelPipeline, data: Panel) -> dict:
        sizes = pipe.statics.sizes
        return {"input_size": pipe.width, "output_size": len(data.targets),
                "head": "last", "horizon": pipe.horizon, "window": pipe.window,
                "categories": sizes, "embedding_sizes": tuple(embedding_size(n) for n in sizes)}

    @staticmethod
    def describe(pipe: PanelPipeline, data: Panel) -> dict:
        clock = time_info(data.times if data.time_name else None, data.offsets)
        return {"panel": {"ids": data.ids, "id": data.id_name, "time": data.time_name,
                          "clock": clock}, "notes": data.notes}

    @staticmethod
    def tail(pipe: PanelPipeline, panel: Panel) -> dict[str, np.ndarray]:
        """The last window (+1 with diff) of rows of every series, and each series' last time."""
        return panel_data.tail_of(pipe, panel)

    # --- data of a fitted run --------------------------------------------------------------
    @staticmethod
    def attach(run: Any, data: Any, target: Any = None) -> tuple[Encoded, PanelPipeline]:
        """The panel to use, encoded, and the pipeline with its series' statistics in its
        order (new data may hold some of the training series, in any order)."""
        return panel_data.attach(run, data)

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
        # intervals of at most INTERVAL_FORECASTS forecasts (whole series, evenly spread): each
        # level's bounds and scores are several arrays of every scored forecast
        picked = _spread(series, INTERVAL_FORECASTS)
        keep = slice(None) if picked is None else np.isin(series, picked)
        found, _ = intervals.held_out(
            run.config, pred[keep], truth[keep], series[keep], pipe.scale[series[keep], :o],
            base["last value"][keep], lambda: _predicted(run, enc, split, picked))
        metrics.update(found)
        metrics["split"] = {
            "evaluated_on": split, "series": len(panel), "rows": len(panel.values),
            "forecasts_scored": len(pred), "horizon": h, "window": pipe.window,
            "diff": pipe.diff, "period": pipe.period,
            "scaling": f"{pipe.scaler}, per series (fit on each series' training rows)",
        }
        if picked is not None:  # say so when the intervals were scored on some series only
            metrics["split"]["intervals_scored"] = int(np.count_nonzero(keep))
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
    def forecast(cls, run: Any, steps: int, data: Any, future: Any = None) -> pd.DataFrame:
        """Continue every series ``steps`` rows past its end: a long table (id, time, target).
        ``future``: the coming values of the run's future features, a long table (id, time,
        columns) with a row per series and date ahead."""
        return panel_forecast.forecast(run, steps, data, future)

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
            found["rolled"] = None if pipe.features else rolled(run, levels)
        elif method == "adaptive":
            found["direct"], found["rolled"] = _adaptive(run, truth, pred, series, last, levels)
        return {k: None if c is None else c.to_json() for k, c in found.items()}

    @staticmethod
    def generate(run: Any, prompts: list[np.ndarray], steps: int) -> np.ndarray:
        raise DataError("a panel run continues its series with forecast(steps); generate is for "
                        "sequence runs.")

    @staticmethod
    def stream(run: Any, series: str | None = None) -> SeriesOfPanel | KnownStream:
        """A stream of the series ``series``, primed on its last rows in the fitted data; a
        run with known covariates takes the future features' values with each update."""
        ids = [str(i) for i in run.config["panel"]["ids"]]
        if series is None:
            raise DataError("a panel run streams one of its series at a time: "
                            "run.stream(series=id).")
        if str(series) not in ids:
            raise DataError(f"series {str(series)!r} was not in the training panel, so its "
                            "scaling is unknown; stream one of the run's series or fit again "
                            f"with it.{did_you_mean(str(series), ids)}")
        pipe: PanelPipeline = run.pipeline
        i = ids.index(str(series))
        primer = None if run.tail is None else run.tail["values"][i]
        if pipe.known.columns:  # the pipeline's own inputs join the leads and the statics
            clock = times_after(run.config["panel"]["clock"], panel=True)
            at = (None if clock is None or run.tail is None else
                  pd.Timestamp(run.tail["last"][i].astype("datetime64[ns]")).isoformat())
            return KnownStream(run.model, pipe, clock, at, series=i, primer=primer)
        model = run.model if pipe.static_rows is None else WithStatics(run.model,
                                                                       pipe.static_rows[i])
        return SeriesOfPanel(model, pipe, i, primer)

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
            known = len(Known.from_json(pj.get("known")).columns)
            s, f = int(pj["series"]), len(pj["targets"]) + len(pj["features"]) + known
            z = Statics.from_json(pj.get("statics")).width
            need = int(pj["window"]) + int(bool(pj["diff"]))
            if len(cfg["panel"]["ids"]) != s:
                raise CheckpointError(f"{folder / 'config.json'}: lists "
                                      f"{len(cfg['panel']['ids'])} series ids for {s} series.")
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{folder / 'config.json'}: invalid panel config ({exc})."
                                  ) from None
        expected = {"shift": torch.zeros(s, f, dtype=torch.float64),
                    "scale": torch.zeros(s, f, dtype=torch.float64),
                    "tail": torch.zeros(s, need, f), "last": torch.zeros(s, dtype=torch.int64),
                    **({"statics": torch.zeros(s, z)} if z else {})}
        t = load_weights(folder / PANEL_FILE, expected)
        pipe = PanelPipeline.from_json(pj, t)
        tail = {"values": t["tail"].numpy(), "last": t["last"].numpy()}
        if cfg["panel"]["clock"]["kind"] == "datetime":
            tail["last"] = tail["last"].astype("datetime64[ns]")
        return pipe, tail


def _adaptive(run: Any, truth: np.ndarray, pred: np.ndarray, series: np.ndarray,
              last: np.ndarray, levels: tuple[int, ...]) -> tuple[Adaptive | None,
                                                                 Adaptive | None]:
    """Adaptive calibrations pooled over the series' validation forecasts (of at most
    ``CALIBRATION_FORECASTS``, whole series evenly spread), each error divided by its own
    series' volatility; both know every series' volatility at its end."""
    pipe = run.pipeline
    scale = pipe.scale[series, :len(pipe.targets)]
    picked = _spread(series, CALIBRATION_FORECASTS)
    keep = slice(None) if picked is None else np.isin(series, picked)
    direct = adaptive.calibrate(truth[keep], pred[keep], levels, series[keep], scale[keep])
    if direct is None:
        return None, None
    direct.sigma = volatility_now(run.model, pipe, run.data, direct)
    sigma, _ = adaptive.volatility(truth[:, 0] - pred[:, 0], series,
                                   direct.start(scale[adaptive.first_rows(series)]))
    return direct, None if pipe.features else rolled(run, levels, (last, sigma, direct))


def _spread(series: np.ndarray, most: int) -> np.ndarray | None:
    """Series numbers, evenly spread over the panel, whose forecasts (rows of ``series``)
    are at most ``most`` (None: every series, when they are no more). An adaptive calibration
    keeps every score it rests on (in config.json: 750,000 of a 10,000-series panel held 160 MB
    as JSON lists), and 20,000 already pin its 95% quantile to 0.15 percentage points of
    coverage (the standard error of a proportion); an interval's coverage over 100,000 test
    forecasts is exact to 0.07 points."""
    if len(series) <= most:
        return None
    count = int(series.max()) + 1
    take = max(1, int(count * most / len(series)))
    return np.unique(np.linspace(0, count - 1, take).astype(np.int64))


def _predicted(run: Any, enc: Encoded, split: str, only: np.ndarray | None = None
               ) -> learned.Predicted:
    """The learned distributions of the forecasts of ``split`` of every series, or of the
    series numbered ``only``."""
    pipe = run.pipeline
    pairs = split_pairs(pipe, enc, split, only)
    series, last = pipe.origins(pairs.index, torch.arange(len(pairs)))  # type: ignore[arg-type]
    return learned.predicted(run.model, run.config, pairs, pipe.diff,
                             lambda r: pipe.to_levels(r, series, last, enc.dataset.values))


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



class WithStatics(nn.Module):
    """A panel model fed one series' windows (a stream): its static inputs (Z,) joined to
    every step, as the panel's windows have them."""

    def __init__(self, model: nn.Module, statics: np.ndarray) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("statics", torch.from_numpy(np.asarray(statics, np.float32)))

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> tuple:
        extra = self.statics.expand(*x.shape[:-1], -1)  # (B, T, Z)
        return self.model(torch.cat([x, extra], dim=-1), *args, **kwargs)
