"""The series kind: one table of rows over time, forecast by windows (or step by step).

Everything a Run does that depends on its data being one series: re-reading new data with the
run's own options, scoring the test rows next to the baselines, one-step predictions indexed
like the input, forecasts past the end (from the saved tail when the data is not at hand).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rnnkit.config import hidden_for
from rnnkit.data import covariates
from rnnkit.data.clock import extend_index, index_info
from rnnkit.data.pipeline import Encoded, output_columns, output_values
from rnnkit.data.read import Table, read_table
from rnnkit.data.series import SeriesPipeline
from rnnkit.errors import ConfigError, DataError
from rnnkit.evaluate import adaptive, intervals, learned, scoring
from rnnkit.evaluate.adaptive import Adaptive
from rnnkit.evaluate.evaluation import Evaluation
from rnnkit.inference import (
    ahead_rows,
    covariate_rolling,
    forecast_future,
    model_outputs,
    rolled_from,
    sample_paths,
    series_forecasts,
)
from rnnkit.streaming import KnownStream, Stream, times_after

ROLLED_STEPS = 100  # forecast steps calibrated through the autoregressive loop, at most
ROLLED_ORIGINS = 200  # validation origins they are calibrated from, at most


class SeriesKind:
    name = "series"
    pipeline = SeriesPipeline

    # --- fitting ---------------------------------------------------------------------------
    @staticmethod
    def read(data: Any, target: Any, features: list[str] | None, time: str | None,
             opts: dict) -> tuple[Table, dict, dict]:
        """(table, what the data config learns from it, the source record)."""
        table = read_table(data, target=target,
                           features=covariates.columns_to_read(features, opts) or None,
                           time=time, fill=opts.get("fill"), duplicates=opts.get("duplicates"))
        known = covariates.resolve(opts, table.index)
        table = covariates.attach(table, known)
        learned = {"target": table.targets, "features": table.features, "time": time,
                   "future_features": list(known.future), "calendar": list(known.calendar),
                   "holidays": known.holidays}
        source = {"target": table.targets, "features": table.features, "time": time,
                  "fill": opts.get("fill"), "duplicates": opts.get("duplicates"),
                  "name": table.source}
        return table, learned, source

    @staticmethod
    def model_defaults(pipe: SeriesPipeline) -> dict:
        """Model options the user may override: the hidden size follows the training windows."""
        windows = pipe.train_rows - pipe.window - pipe.horizon - int(pipe.diff) + 1
        return {"hidden_size": hidden_for(windows)}

    @staticmethod
    def model_shape(pipe: SeriesPipeline, data: Table) -> dict:
        head = "last" if pipe.shape == "window" else "step"
        return {"input_size": pipe.width, "output_size": len(data.targets),
                "head": head, "horizon": pipe.horizon if head == "last" else 1,
                "window": pipe.window}

    @staticmethod
    def describe(pipe: SeriesPipeline, data: Table) -> dict:
        """What config.json keeps of the data: the tail forecasts start from, and notes."""
        need = pipe.window + int(pipe.diff)
        return {"tail": {"values": data.values[-need:].astype(float).tolist(),
                         "index": index_info(data.index)}, "notes": data.notes}

    @staticmethod
    def tail(pipe: SeriesPipeline, data: Any) -> None:
        return None  # the rows forecasts start from are in config.json (describe)

    # --- data of a fitted run --------------------------------------------------------------
    @staticmethod
    def attach(run: Any, data: Any, target: Any = None) -> tuple[Encoded, SeriesPipeline]:
        """``data`` read with the run's options and encoded (the fitted data when None)."""
        if data is None:
            if run.data is None:
                raise DataError("no data: this run was loaded from disk without its data; pass "
                                "the data (a CSV path or DataFrame) explicitly.")
            return run.data, run.pipeline
        src, pipe = run.config.get("source", {}), run.pipeline
        table = read_table(data, target=pipe.targets,
                           features=[*pipe.features, *pipe.known.future] or None,
                           time=src.get("time"), fill=src.get("fill"),
                           duplicates=src.get("duplicates"))
        return pipe.encode(covariates.attach(table, pipe.known)), pipe

    # --- evaluation ------------------------------------------------------------------------
    @classmethod
    def evaluate(cls, run: Any, data: Any, target: Any) -> tuple[dict, Evaluation]:
        enc, pipe = cls.attach(run, data)
        values, index = enc.dataset.values, enc.dataset.index
        n, o = len(values), len(pipe.targets)
        split = "test" if len(pipe.origins("test", n)) else "val"
        origins = np.asarray(pipe.origins(split, n))
        if len(origins) == 0:
            raise DataError(f"no complete forecast fits in the test or validation rows of {n} "
                            f"rows (window {pipe.window}, horizon {pipe.horizon}).")
        pred = pipe.to_units(model_outputs(run.model, pipe.pairs(enc, split)), enc, split)
        truth = scoring.series_truth(values, origins, pipe.horizon, o)
        train_end, val_end = pipe.bounds(n)
        base = scoring.series_baselines(values, origins, pipe.horizon, o, train_end,
                                       pipe.period, pipe.window, val_end)
        metrics = scoring.score(truth, pred, base, scoring.series_scale(values, train_end, o))
        found, bounds = intervals.held_out(
            run.config, pred, truth, np.zeros(len(pred), int), _scale_rows(pipe, len(pred)),
            last_values(values, origins, pipe.horizon, o),
            lambda: learned.predicted(run.model, run.config, pipe.pairs(enc, split), pipe.diff,
                                      lambda r: pipe.to_units(r, enc, split)))
        metrics.update(found)
        def span(a: int, b: int) -> list:
            return [str(index[a]), str(index[b - 1])] if b > a else []

        metrics["split"] = {
            "evaluated_on": split, "rows": n, "train": span(0, train_end),
            "val": span(train_end, val_end), "test": span(val_end, n),
            "forecasts_scored": len(origins), "horizon": pipe.horizon,
            "window": pipe.window, "diff": pipe.diff, "period": pipe.period,
        }
        return metrics, Evaluation(split, pred, truth, base, enc, origins, bounds)

    # --- predictions -----------------------------------------------------------------------
    @classmethod
    def predict(cls, run: Any, data: Any, target: Any) -> pd.DataFrame:
        enc, pipe = cls.attach(run, data)
        values, index = enc.dataset.values, enc.dataset.index
        need = pipe.window + int(pipe.diff) + 1
        if len(values) < need:
            raise DataError(f"predict needs at least {need} rows (window {pipe.window}"
                            f"{' + 1 for diff' if pipe.diff else ''} + 1 to predict), got "
                            f"{len(values)}.")
        origins = np.arange(pipe.window - 1 + int(pipe.diff), last_origin(pipe, len(values)))
        padded = np.vstack([values, np.zeros((pipe.horizon, values.shape[1]))])
        pred = series_forecasts(run.model, pipe, padded, origins)  # (N, H, O)
        bounds = intervals.with_truth(
            run.config, pred, _known_truth(values, origins, pipe.horizon, len(pipe.targets)),
            np.zeros(len(pred), int), _scale_rows(pipe, len(pred)),
            lambda: learned.predicted(run.model, run.config,
                                      pipe.windows(pipe.tensor(padded), origins), pipe.diff,
                                      lambda r: pipe.forecast_units(r, padded, origins)))
        return pd.DataFrame(output_values(pred, bounds), index=index[origins + 1],
                            columns=output_columns(pipe.targets, pipe.horizon, tuple(bounds)))

    @classmethod
    def forecast(cls, run: Any, steps: int, data: Any, future: Any = None) -> pd.DataFrame:
        pipe: SeriesPipeline = run.pipeline
        found = intervals.stored(run.config)
        # with past features a forecast is one round of the direct head: its own calibration
        cal = found.get("direct" if pipe.features else "rolled")
        sigma = None if cal is None else getattr(cal, "sigma", None)
        if data is None and run.data is None:
            hist = np.asarray(run.config["tail"]["values"], dtype=np.float64)
            info = run.config["tail"]["index"]
        else:
            enc, _ = cls.attach(run, data)
            # the holidays learned from the fitted data: new data may be too short to show them
            hist, info = enc.dataset.values, index_info(
                enc.dataset.index, run.config["tail"]["index"].get("holidays"))
            if data is not None and isinstance(cal, Adaptive):
                sigma = volatility_now(run.model, pipe, hist, cal)
        hist = hist[:, : len(pipe.targets)] if not pipe.covariates else hist
        ahead = known_ahead(pipe, info, int(steps), future)
        out = forecast_future(run.model, pipe, hist, int(steps), ahead)
        if learned.is_learned(run.config):
            bounds = _path_bounds(run, hist, int(steps), ahead)
        else:
            bounds = {} if cal is None else {k: (lo[0], hi[0]) for k, (lo, hi) in
                                             intervals.ahead(cal, out[None], _scale_rows(pipe, 1),
                                                             sigma).items()}
        return pd.DataFrame(output_values(out[:, None], bounds),
                            index=extend_index(info, int(steps)),
                            columns=output_columns(pipe.targets, 1, tuple(bounds)))

    # --- intervals -------------------------------------------------------------------------
    @staticmethod
    def calibrate(run: Any) -> dict | None:
        """Interval half-widths from the validation part: each step of the horizon (predict),
        each step of a forecast rolled past the end, and the naive last-value interval's."""
        levels = intervals.levels_of(run.config)
        if not levels or run.data is None:
            return None
        enc, pipe = run.data, run.pipeline
        values, o = enc.dataset.values, len(pipe.targets)
        origins = np.asarray(pipe.origins("val", len(values)))
        if len(origins) == 0:
            return None
        pred = pipe.to_units(model_outputs(run.model, pipe.pairs(enc, "val")), enc, "val")
        truth = scoring.series_truth(values, origins, pipe.horizon, o)
        naive = intervals.calibrate(truth, last_values(values, origins, pipe.horizon, o), levels)
        method = intervals.method_of(run.config)
        if method.startswith("learned"):  # the intervals come from the model itself
            found = {"naive": naive}
        elif method == "split":
            found = {"direct": intervals.calibrate(truth, pred, levels), "naive": naive,
                     "rolled": None if pipe.features else _rolled(run, levels)}
        else:
            direct, rolled = _adaptive(run, truth, pred, origins, levels)
            found = {"direct": direct, "naive": naive, "rolled": rolled}
        return {k: None if c is None else c.to_json() for k, c in found.items()}

    @staticmethod
    def generate(run: Any, prompts: list[np.ndarray], steps: int) -> np.ndarray:
        if run.pipeline.covariates:
            raise DataError("generate continues bare values; this run also reads covariates, "
                            "so continue its data with forecast(steps, future=...).")
        return np.stack([forecast_future(run.model, run.pipeline, p, int(steps))
                         for p in prompts])

    @staticmethod
    def stream(run: Any) -> Stream | KnownStream:
        """A stream that starts with no rows (a window model answers NaN until a window
        arrived), dated from the fitted data's end; a run with known covariates takes the
        future features' values with each update (``KnownStream``)."""
        if run.pipeline.known.columns:
            info = run.config["tail"]["index"]
            clock = times_after(info)
            return KnownStream(run.model, run.pipeline, clock,
                               None if clock is None else str(info["last"]))
        return Stream(run.model, run.pipeline)

    # --- files -----------------------------------------------------------------------------
    @staticmethod
    def save(run: Any, folder: Path, fmt: int) -> None:
        """Nothing beyond the common files: the pipeline is all JSON."""

    @staticmethod
    def load(folder: Path, cfg: dict) -> tuple[SeriesPipeline, None]:
        return SeriesPipeline.from_json(cfg["pipeline"]), None


def last_values(values: np.ndarray, origins: np.ndarray, horizon: int, o: int) -> np.ndarray:
    """The naive forecasts (N, H, O): each origin's last value, repeated over the horizon."""
    last = np.asarray(values[origins, :o], dtype=np.float64)
    return np.repeat(last[:, None, :], horizon, axis=1)


def _adaptive(run: Any, truth: np.ndarray, pred: np.ndarray, origins: np.ndarray,
              levels: tuple[int, ...]) -> tuple[Adaptive | None, Adaptive | None]:
    """Adaptive calibrations of the direct and the rolled forecasts from the validation
    forecasts ``pred`` made at ``origins``, each knowing the volatility at the data's end."""
    pipe, values = run.pipeline, run.data.dataset.values
    zero, scale = np.zeros(len(pred), int), _scale_rows(pipe, len(pred))
    direct = adaptive.calibrate(truth, pred, levels, zero, scale)
    if direct is None:
        return None, None
    direct.sigma = volatility_now(run.model, pipe, values, direct)
    sigma, _ = adaptive.volatility(truth[:, 0] - pred[:, 0], zero, direct.start(scale[:1]))
    return direct, None if pipe.features else _rolled(run, levels, (origins, sigma, direct))


def last_origin(pipe: SeriesPipeline, n: int) -> int:
    """One past the last origin of ``n`` rows with a next row to score and, with known
    covariates, their values for every row its window's leads read."""
    return n - (pipe.lead if pipe.known.columns else 1)


def known_ahead(pipe: SeriesPipeline, info: dict, steps: int, future: Any) -> np.ndarray | None:
    """(rows, K) the known covariates of the rows a forecast of ``steps`` reads after the
    data's end (``info``), or None for a run without them."""
    if not pipe.known.columns:
        if future is not None:
            raise ConfigError("future: this run has no future features, so a forecast needs "
                              "no future values; leave --future out.")
        return None
    return covariates.future_rows(pipe.known, future, extend_index(
        info, covariates.rows_ahead(steps, pipe.lead)))


def _rolled(run: Any, levels: tuple[int, ...], studentise: tuple | None = None
            ) -> intervals.Calibration | Adaptive | None:
    """Half-widths of forecasts rolled through the model's own outputs, calibrated on origins
    of the validation part whose rolled steps stay inside it (never the test part).
    ``studentise``: (validation origins, the volatility before each, the direct adaptive
    calibration) divides each rolled error by the volatility at its origin."""
    pipe, values = run.pipeline, run.data.dataset.values
    o, need = len(pipe.targets), pipe.window + int(pipe.diff)
    train_end, val_end = pipe.bounds(len(values))
    first = max(train_end - 1, need - 1)
    steps = min(ROLLED_STEPS, max(pipe.horizon, (val_end - 1 - first) // 2))
    # origins whose steps all lie in the validation rows (and the rows their leads read)
    last = min(val_end - 1 - steps, len(values) - 1 - covariates.rows_ahead(steps, pipe.lead))
    if steps < 1 or last < first:
        return None
    origins = np.unique(np.linspace(first, last, min(ROLLED_ORIGINS, last - first + 1)
                                    ).astype(int))
    pred = rolled_from(run.model, pipe, values, origins, steps)
    truth = values[origins[:, None] + np.arange(1, steps + 1)[None, :], :o]
    if studentise is None:
        return intervals.calibrate(truth, pred, levels)
    return adaptive.rolled(truth, pred, levels, origins, studentise)


def _path_bounds(run: Any, hist: np.ndarray, steps: int, ahead: np.ndarray | None) -> dict:
    """{level: (lo, hi)} (steps, O) of a learned run's forecast, from sample paths."""
    pipe, o = run.pipeline, len(run.pipeline.targets)
    draw = learned.drawer(run.config, int(run.config["train"]["seed"]))
    if pipe.covariates:
        rows = ahead_rows(pipe, np.asarray(hist, dtype=np.float64), steps, ahead)
        count = learned.path_count(1)
        paths = covariate_rolling(run.model, pipe, np.repeat(rows[None], count, axis=0), steps,
                                  draw)[None]
    else:
        paths = sample_paths(run.model, np.asarray(hist, dtype=np.float64)[None], steps,
                             learned.path_count(1), draw, window=pipe.window, diff=pipe.diff,
                             shift=np.asarray(pipe.scaler.shift[:o]),
                             scale=np.asarray(pipe.scaler.scale[:o]),
                             last_step=pipe.shape == "next", read_as=np.float32)
    return {k: (lo[0], hi[0]) for k, (lo, hi) in
            learned.path_bounds(paths, learned.levels(run.config)).items()}


def _scale_rows(pipe: SeriesPipeline, n: int) -> np.ndarray:
    """(n, O) the targets' data scale, repeated for n rows."""
    scale = np.asarray(pipe.scaler.scale[: len(pipe.targets)], dtype=np.float64)
    return np.repeat(scale[None], n, axis=0)


def _known_truth(values: np.ndarray, origins: np.ndarray, horizon: int, o: int) -> np.ndarray:
    """(N, H, O) the rows after each origin, NaN past the end of ``values``."""
    rows = origins[:, None] + np.arange(1, horizon + 1)[None, :]
    inside = rows < len(values)
    truth = np.asarray(values[np.minimum(rows, len(values) - 1), :o], dtype=np.float64)
    return np.where(inside[:, :, None], truth, np.nan)


def volatility_now(model: Any, pipe: SeriesPipeline, values: np.ndarray, cal: Adaptive,
                   rows: int = 200) -> np.ndarray:
    """(1, O) the local volatility after the last row of ``values``, from the one-step errors
    of the last ``rows`` rows (the volatility forgets faster than that)."""
    o, need = len(pipe.targets), pipe.window + int(pipe.diff)
    end = last_origin(pipe, len(values))
    origins = np.arange(max(need - 1, end - rows), end)
    start = cal.start(_scale_rows(pipe, 1))
    if len(origins) == 0:
        return start
    padded = np.vstack([values, np.zeros((pipe.horizon, values.shape[1]))])
    pred = series_forecasts(model, pipe, padded, origins)[:, 0]
    err = np.asarray(values[origins + 1, :o], dtype=np.float64) - pred
    return adaptive.volatility(err, np.zeros(len(err), int), start)[1]
