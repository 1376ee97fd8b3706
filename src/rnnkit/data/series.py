"""The series pipeline: a table of rows over time -> scaled windows -> predictions in its units.

Rows are split by time (train / validation / test). A forecast from origin ``o`` (the last row
it sees) targets rows ``o+1 .. o+horizon`` and belongs to the split holding all of those rows.
With ``diff`` the targets become changes ``y[t] - y[t-1]`` (features stay levels) and the
predictions are integrated back from the last observed level, so trending series extrapolate.
Scalers are fit on the training rows only.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch

from rnnkit.config import DataConfig
from rnnkit.data.choices import default_window, differenced, wants_diff
from rnnkit.data.covariates import Known, leads
from rnnkit.data.pairs import Pairs, series_windows
from rnnkit.data.pipeline import Encoded, check_split
from rnnkit.data.read import Table
from rnnkit.data.scale import Scaler
from rnnkit.data.stats import detect_period, trend_strength
from rnnkit.errors import ConfigError, DataError, FewPointsWarning

# Period and trend are read from at most this many training rows (the most recent ones for the
# period, an even subsample for the trend): enough for any period up to 1000 steps, and the
# analysis stays a fixed cost on very long series.
ANALYSIS_ROWS = 200_000


def split_bounds(n: int | np.ndarray, fracs: tuple[float, float, float]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(train_end, val_end) of series of ``n`` rows (a number, or an array for a panel)."""
    a, b, _ = fracs
    rows = np.asarray(n, dtype=np.float64)
    return np.round(rows * a).astype(np.int64), np.round(rows * (a + b)).astype(np.int64)


def origin_span(split: str, n: int | np.ndarray, window: int, horizon: int, diff: bool,
                fracs: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """First and one-past-last origin (last input row) of the complete forecasts of ``split``
    in series of ``n`` rows: a forecast belongs to the split holding all its target rows."""
    rows = np.asarray(n, dtype=np.int64)
    train_end, val_end = split_bounds(rows, fracs)
    first = np.full_like(rows, window - 1 + int(diff))
    lo, hi = {
        "train": (first, train_end - horizon - 1),
        "val": (np.maximum(first, train_end - 1), val_end - horizon - 1),
        "test": (np.maximum(first, val_end - 1), rows - horizon - 1),
        "all": (first, rows - horizon - 1),
    }[split]
    return lo, np.maximum(lo, hi + 1)


# Fewer scored forecasts than this and the figures rest on few points (a FewPointsWarning): the
# error of a mean of n forecast errors shrinks only as 1/sqrt(n), and below about 30 points the
# small-sample corrections a comparison with the baselines needs (Student t instead of the
# normal) grow fast, so one lucky stretch can decide the verdict.
FEW_POINTS = 30
SEARCH_ROWS = 10_000_000  # rows_needed searches lengths up to this; beyond it, a bound


def split_text(fracs: tuple[float, float, float]) -> str:
    return "/".join(f"{f:g}" for f in fracs)


def needed_parts(fracs: tuple[float, float, float]) -> tuple[str, ...]:
    """The parts that must give a complete forecast: training, and validation (early stopping
    reads it) and test (the scores) unless their fraction is 0. One of those two must exist."""
    _, b, c = fracs
    if b <= 0 and c <= 0:
        raise ConfigError(f"split {split_text(fracs)} leaves no validation or test part to score "
                          "the model on; give one of them a fraction, e.g. --split 0.7,0.15,0.15.")
    return ("train",) + (("val",) if b > 0 else ()) + (("test",) if c > 0 else ())


def scored_part(fracs: tuple[float, float, float]) -> str:
    """The part the scores are measured on: test, or validation when the split has no test."""
    return "test" if fracs[2] > 0 else "val"


def short_series(n: int | np.ndarray, window: int, horizon: int, diff: bool,
                 fracs: tuple[float, float, float]) -> np.ndarray:
    """True where a series of ``n`` rows lacks a complete forecast in a part it needs."""
    short = np.zeros(np.shape(n), dtype=bool)
    for part in needed_parts(fracs):
        lo, stop = origin_span(part, n, window, horizon, diff, fracs)
        short |= stop <= lo
    return short


def rows_needed(window: int, horizon: int, diff: bool, fracs: tuple[float, float, float]
                ) -> int:
    """The fewest rows from which every longer series gives a complete forecast in each part
    it needs (rounding the split can make a shorter one pass too)."""
    a, b, c = fracs
    # from this length on every part holds enough rows (round() is off by at most 0.5)
    bound = max((window + horizon + int(diff) + 1) / a, (horizon + 1) / b if b > 0 else 0.0,
                (horizon + 1) / c if c > 0 else 0.0)
    if bound > SEARCH_ROWS:
        return math.ceil(bound)
    lengths = np.arange(1, math.ceil(bound) + 2)
    fails = np.flatnonzero(short_series(lengths, window, horizon, diff, fracs))
    return int(lengths[fails[-1]]) + 1 if fails.size else 1


def refuse_short(source: str, n: int, window: int, horizon: int, diff: bool,
                 fracs: tuple[float, float, float]) -> None:
    """DataError when a series of ``n`` rows cannot be trained and scored (one line: rows
    given, rows needed, the fix)."""
    if not short_series(n, window, horizon, diff, fracs):
        return
    parts = [{"train": "training", "val": "validation", "test": "test"}[p]
             for p in needed_parts(fracs)]
    raise DataError(
        f"{source}: the series has {n} rows, but window {window} + horizon {horizon}"
        f"{' + 1 (diff)' if diff else ''} needs at least {window + horizon + int(diff)} for one "
        f"forecast and {rows_needed(window, horizon, diff, fracs)} for a complete forecast in "
        f"each of the {', '.join(parts[:-1])} and {parts[-1]} parts (split {split_text(fracs)}); "
        "use a smaller --window, a different --split, or a longer series.")


def warn_few_points(source: str, scored: int, fracs: tuple[float, float, float],
                    what: str = "forecasts") -> None:
    """FewPointsWarning when the scored part holds fewer than FEW_POINTS forecasts."""
    if scored >= FEW_POINTS:
        return
    part = "test" if scored_part(fracs) == "test" else "validation"
    warnings.warn(FewPointsWarning(
        f"{source}: the {part} part gives only {scored} {what} (fewer than {FEW_POINTS}), so the "
        "scores and the verdict rest on few points; more data or a larger "
        f"{part} fraction (--split, now {split_text(fracs)}) gives firmer figures."), stacklevel=3)


@dataclass
class SeriesPipeline:
    """Everything needed to turn rows into pairs and predictions back into original units."""

    kind: ClassVar[str] = "series"
    targets: list[str]
    features: list[str]
    shape: str  # "window" or "next"
    window: int
    horizon: int
    warmup: int
    diff: bool
    period: int | None
    scaler: Scaler
    split_fracs: tuple[float, float, float]
    trend_r2: float
    train_rows: int = 0  # rows in the training split of the fitted table
    known: Known = field(default_factory=Known)  # covariates known ahead (data/covariates.py)

    @property
    def lead(self) -> int:
        """Rows ahead whose known covariates each input row carries: the rows one window
        forecasts (one for a per-step model)."""
        return self.horizon if self.shape == "window" else 1

    @property
    def width(self) -> int:
        """Model inputs per row: targets, past features, and each known covariate's leads."""
        return len(self.targets) + len(self.features) + len(self.known.columns) * self.lead

    @property
    def covariates(self) -> bool:
        """Whether the inputs hold more than the targets' own past."""
        return bool(self.features or self.known.columns)

    # --- building --------------------------------------------------------------------------
    @classmethod
    def fit(cls, data: Table, cfg: DataConfig) -> tuple[SeriesPipeline, Table]:
        """Choose window, transform and period from the training rows, then fit the scaler."""
        values, o, source = data.values, len(data.targets), data.source
        n = values.shape[0]
        train_end = round(n * cfg.split[0])
        head = values[max(0, train_end - ANALYSIS_ROWS) : train_end, 0].astype(np.float64)
        stride = max(1, train_end // ANALYSIS_ROWS)
        r2 = (max(trend_strength(values[:train_end:stride, j]) for j in range(o))
              if train_end > 2 else 0.0)
        diff = wants_diff(cfg.transform, r2)
        period = cfg.period if cfg.period is not None else detect_period(head)
        shift = int(diff)
        window = cfg.window
        if window is None:
            window = default_window(period, train_end, cfg.horizon, diff)
        # refused before anything is written; a warning when the scores rest on few points
        refuse_short(source, n, window, cfg.horizon, diff, cfg.split)
        pipe = cls(list(data.targets), list(data.features),
                   "next" if cfg.shape == "next" else "window", window, cfg.horizon,
                   min(cfg.warmup, window - 1), diff, period, Scaler("none", [], []),
                   tuple(cfg.split), r2, train_end, known_of(cfg))
        warn_few_points(source, len(pipe.origins(scored_part(cfg.split), n)), cfg.split)
        work = pipe.working(values)
        pipe.scaler = Scaler.fit(cfg.scaler, work[: train_end - shift])
        return pipe, data

    def working(self, values: np.ndarray) -> np.ndarray:
        """Rows in model space before scaling: target changes (with diff), features and the
        known covariates' leads. ``values`` (T, C), or (S, T, C) for several blocks of rows."""
        # float32 like the table: a float64 copy of a long series would double its memory
        v = np.asarray(values, dtype=np.float32)
        k = len(self.known.columns)
        if k:
            v = np.concatenate([v[..., : v.shape[-1] - k], leads(v[..., -k:], self.lead)],
                               axis=-1)
        return differenced(v, len(self.targets)) if self.diff else v

    def window_inputs(self, rows: np.ndarray, series: np.ndarray | None = None) -> np.ndarray:
        """Scaled inputs (S, window, F) of windows given as raw rows (S, need + L, C): each
        window's rows up to its origin (window, + 1 with diff), then the ``lead`` or more rows
        after it, whose known covariates the window's leads read. (``series``: for a panel's
        per-series scaling; one series here.)"""
        return self.scaler.transform(self.working(rows))[:, : self.window]

    def targets_back(self, raw: np.ndarray, series: np.ndarray | None = None) -> np.ndarray:
        """Scaled model outputs (S, H, O) -> working units (changes, with diff)."""
        return self.scaler.inverse(raw, slice(0, len(self.targets)))

    # --- origins and pairs -----------------------------------------------------------------
    def bounds(self, n: int) -> tuple[int, int]:
        """(train_end, val_end) row indices for a table of ``n`` rows."""
        train_end, val_end = split_bounds(n, self.split_fracs)
        return int(train_end), int(val_end)

    def origins(self, split: str, n: int) -> range:
        """Origins of every complete forecast in ``split`` (train, val, test or all), as a
        range (no index array: a long series has millions of origins)."""
        lo, stop = origin_span(split, n, self.window, self.horizon, self.diff, self.split_fracs)
        return range(int(lo), int(stop))

    def tensor(self, values: np.ndarray) -> torch.Tensor:
        """The scaled working series as one float32 tensor (rows, F); windows are views of it."""
        return torch.from_numpy(self.scaler.transform(self.working(values)))

    def encode(self, data: Table) -> Encoded:
        return Encoded(data, self.tensor(data.values))

    def pairs(self, encoded: Encoded, split: str) -> Pairs:
        """Windows of ``split`` over the encoded series (views of its buffer)."""
        return self.windows(encoded.buffer, self.origins(check_split(split),
                                                         len(encoded.dataset.values)))

    def to_units(self, outputs: np.ndarray, encoded: Encoded, split: str) -> np.ndarray:
        """Outputs (N, H, O) (or (N, T, O) per step for ``next``) of ``pairs(encoded, split)``
        -> forecasts of rows origin+1.. in original units."""
        values = encoded.dataset.values
        return self.forecast_units(outputs, values, np.asarray(self.origins(split, len(values))))

    def forecast_units(self, outputs: np.ndarray, values: np.ndarray, origins: np.ndarray
                       ) -> np.ndarray:
        """Outputs of the windows ending at ``origins`` of ``values`` in original units."""
        if self.shape == "next":
            outputs = outputs[:, -1:, :]  # the last step (primed on the window) predicts o+1
        return self.to_levels(outputs, values, origins)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {}

    def windows(self, data: torch.Tensor, origins: range | np.ndarray) -> Pairs:
        """Pairs for ``origins`` (original row indices) over ``tensor(values)``."""
        o = len(self.targets)
        d = int(self.diff)  # working-row index of each origin is origin - d
        w = (range(origins.start - d, origins.stop - d) if isinstance(origins, range)
             else np.asarray(origins) - d)
        if self.shape == "window":
            return series_windows(data, o, self.window, self.horizon, w)
        # next step: chunks of window + 1 rows; inputs are rows 0..W-1, targets rows 1..W
        chunks = data.unfold(0, self.window + 1, 1).permute(0, 2, 1)  # (M, W+1, F) view
        if isinstance(w, range):
            sel = chunks[w.start - self.window + 1 : w.stop - self.window + 1]
        else:
            sel = chunks[torch.as_tensor(w - self.window + 1, dtype=torch.int64)]
        mask = (torch.arange(self.window) >= self.warmup).expand(len(w), self.window)
        return Pairs(sel[:, :-1], sel[:, 1:, :o], mask)

    # --- back to original units ------------------------------------------------------------
    def to_levels(self, pred: np.ndarray, values: np.ndarray, origins: np.ndarray) -> np.ndarray:
        """Scaled model outputs (N, H, O) -> forecasts of rows origin+1.. in original units."""
        o = len(self.targets)
        out = self.scaler.inverse(pred, slice(0, o))
        if self.diff:
            idx = np.asarray(origins)
            base = np.asarray(values[idx, :o], dtype=np.float64)  # (N, O) last seen level
            out = base[:, None, :] + np.cumsum(out, axis=1)
        return out

    def min_rows(self) -> int:
        """Fewest rows a table must have to give one forecast."""
        return self.window + int(self.diff) + self.horizon

    def to_json(self) -> dict:
        return {
            "targets": self.targets,
            "features": self.features,
            "shape": self.shape,
            "window": self.window,
            "horizon": self.horizon,
            "warmup": self.warmup,
            "diff": self.diff,
            "period": self.period,
            "scaler": self.scaler.to_json(),
            "split": list(self.split_fracs),
            "trend_r2": self.trend_r2,
            "train_rows": self.train_rows,
            "known": self.known.to_json(),
        }

    @classmethod
    def from_json(cls, d: dict, tensors: dict[str, torch.Tensor] | None = None
                  ) -> SeriesPipeline:
        return cls(
            list(d["targets"]),
            list(d["features"]),
            str(d["shape"]),
            int(d["window"]),
            int(d["horizon"]),
            int(d["warmup"]),
            bool(d["diff"]),
            None if d["period"] is None else int(d["period"]),
            Scaler.from_json(d["scaler"]),
            tuple(float(s) for s in d["split"]),
            float(d["trend_r2"]),
            int(d.get("train_rows", 0)),
            Known.from_json(d.get("known")),
        )


def known_of(cfg: DataConfig) -> Known:
    """The known covariates a data config names (its calendar already resolved to names)."""
    names = cfg.calendar if isinstance(cfg.calendar, list | tuple) else ()
    return Known(tuple(cfg.future_features), tuple(names), cfg.holidays)
