"""The panel pipeline: many series in one buffer -> windows that never cross a series boundary.

Each series is split by time on its own (the first 70% of its rows train, and so on), scaled by
statistics of its own training rows (so series of any magnitude train together), and cut into
windows ``window -> horizon`` exactly as a single series is. The working buffer has one row per
data row (with ``diff``, a series' first row is an unused zero), so a window's rows are data rows.
Windows are rows of one strided view; a :class:`~rnnkit.data.pairs.Segments` index names the
ones of a split, so no window is copied and no per-window array exists.

Covariates (``data/covariates.py`` for the roles): past features are buffer columns like the
targets; covariates known ahead stay raw in the panel's values and static inputs stay one row
per series, both joined to each window when its batch is gathered (``data/panel_join.py``), so
the buffer never holds a lead or a static per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch

from rnnkit.config import DataConfig
from rnnkit.data.choices import default_window, differenced, wants_diff
from rnnkit.data.covariates import Known
from rnnkit.data.pairs import Pairs, Segments
from rnnkit.data.panel_join import PanelJoin, numpy_inputs
from rnnkit.data.panel_table import Panel
from rnnkit.data.pipeline import Encoded, check_split
from rnnkit.data.scale import Scaler
from rnnkit.data.series import (
    known_of,
    origin_span,
    rows_needed,
    scored_part,
    short_series,
    split_bounds,
    split_text,
    warn_few_points,
)
from rnnkit.data.statics import Statics
from rnnkit.data.stats import detect_period, trend_strength
from rnnkit.errors import ConfigError, DataError

ANALYSIS_SERIES = 64  # period and trend are read from this many series, evenly spaced
SHOWN_IDS = 10


@dataclass
class PanelPipeline:
    """Window, horizon, transform and per-series scaling of a global model over a panel."""

    kind: ClassVar[str] = "panel"
    targets: list[str]
    features: list[str]
    window: int
    horizon: int
    diff: bool
    period: int | None
    scaler: str
    split_fracs: tuple[float, float, float]
    trend_r2: float
    shift: np.ndarray  # (S, F) float64: per-series centre, in working units
    scale: np.ndarray  # (S, F) float64: per-series spread (1 where a series is flat)
    shape: str = "window"
    warmup: int = 0
    known: Known = field(default_factory=Known)  # covariates known ahead: the last columns
    statics: Statics = field(default_factory=Statics)  # how static columns become inputs
    static_rows: np.ndarray | None = None  # (S, Z) float32 static inputs of every series

    @property
    def lead(self) -> int:
        """Rows ahead whose known covariates each input row carries: the horizon."""
        return self.horizon

    @property
    def base(self) -> int:
        """Columns of the scaled buffer: targets and past features."""
        return len(self.targets) + len(self.features)

    @property
    def width(self) -> int:
        """Model inputs per step: targets, past features, each known covariate's leads and
        the static inputs."""
        return self.base + len(self.known.columns) * self.lead + self.statics.width

    @property
    def covariates(self) -> bool:
        """Whether the inputs hold more than the targets' own past."""
        return bool(self.features or self.known.columns or self.statics)

    # --- building --------------------------------------------------------------------------
    @classmethod
    def choose(cls, panel: Panel, cfg: DataConfig) -> tuple[int, bool, int | None, float]:
        """(window, diff, period, trend R^2) read from the training rows of a few series."""
        if cfg.shape != "window":
            raise ConfigError(f"shape={cfg.shape!r}: a panel trains one window model across its "
                              "series; use shape='window' (the default).")
        lengths = panel.lengths
        pick = np.unique(np.linspace(0, len(lengths) - 1, min(len(lengths), ANALYSIS_SERIES)
                                     ).astype(int))
        r2s, periods = [], []
        for i in pick:
            n_train = round(int(lengths[i]) * cfg.split[0])
            if n_train < 4:
                continue
            y = panel.values[panel.offsets[i] : panel.offsets[i] + n_train, 0].astype(np.float64)
            r2s.append(trend_strength(y))
            periods.append(detect_period(y))
        r2 = float(np.median(r2s)) if r2s else 0.0
        diff = wants_diff(cfg.transform, r2)
        found = [p for p in periods if p]
        period = cfg.period if cfg.period is not None else (
            int(np.bincount(found).argmax()) if found else None)
        window = cfg.window
        if window is None:
            typical = round(float(np.median(lengths)) * cfg.split[0])
            window = default_window(period, typical, cfg.horizon, diff)
        return window, diff, period, r2

    @classmethod
    def fit(cls, data: Panel, cfg: DataConfig) -> tuple[PanelPipeline, Panel]:
        """Choose window and transform, drop (or refuse) short series, fit per-series scaling.
        Returns the pipeline and the panel it was fitted on (short series removed)."""
        window, diff, period, r2 = cls.choose(data, cfg)
        panel = _without_short(data, window, cfg.horizon, diff, cfg)
        known = known_of(cfg)
        if list(panel.known) != known.columns:
            raise ConfigError(f"internal: the panel's known columns {panel.known} are not the "
                              f"config's {known.columns}; read it with PanelKind.read.")
        statics = Statics.fit(panel.static)
        pipe = cls(list(panel.targets), list(panel.features), window, cfg.horizon, diff, period,
                   cfg.scaler, tuple(cfg.split), r2,
                   np.zeros((len(panel), panel.width)),
                   np.ones((len(panel), panel.width)), known=known, statics=statics,
                   static_rows=statics.encode(panel.static, panel.source, panel.ids)
                   if statics else None)
        if len(pipe.segments("train", panel.offsets)) == 0:
            raise DataError(f"{panel.source}: no series has a complete training window "
                            f"(window {window} + horizon {cfg.horizon}); use a smaller --window "
                            "or a larger training fraction.")
        # pooled over the series, as the panel is scored
        warn_few_points(panel.source, len(pipe.segments(scored_part(cfg.split), panel.offsets)),
                        cfg.split, f"forecasts over {len(panel)} series")
        train_end, _ = pipe.bounds(panel.lengths)
        o = len(panel.targets)
        for i, (a, n_tr) in enumerate(zip(panel.offsets[:-1], train_end, strict=True)):
            rows = panel.rows_of(slice(a, a + max(int(n_tr), 2)))  # known columns too
            if diff:  # working rows of this series only: no copy of the whole buffer
                rows = differenced(rows, o)
            fitted = Scaler.fit(cfg.scaler, rows)  # the single-series scaler, per series
            pipe.shift[i], pipe.scale[i] = fitted.shift, fitted.scale
        return pipe, panel

    def working(self, panel: Panel) -> np.ndarray:
        """Rows before scaling: target changes (with diff; 0 at each series' first row) and
        features as they are (not the known block). float32, one row per data row."""
        work = np.array(panel.values[:, : self.base], dtype=np.float32)
        if self.diff:
            o = len(self.targets)
            work[1:, :o] = panel.values[1:, :o] - panel.values[:-1, :o]
            work[panel.offsets[:-1], :o] = 0.0
        return work

    def tensor(self, panel: Panel) -> torch.Tensor:
        """The scaled working buffer (rows, targets + features), each series by its own
        statistics."""
        work, f = self.working(panel), self.base
        for i, (a, b) in enumerate(zip(panel.offsets[:-1], panel.offsets[1:], strict=True)):
            work[a:b] = (work[a:b] - self.shift[i, :f]) / self.scale[i, :f]
        return torch.from_numpy(work)

    def join(self, encoded: Encoded) -> PanelJoin | None:
        """What windows over ``encoded`` read besides its buffer: the known covariates'
        leads and the static inputs (None when the run has neither)."""
        panel: Panel = encoded.dataset
        if not (self.known.columns or self.statics):
            return None
        dev = encoded.buffer.device
        out = PanelJoin(torch.as_tensor(panel.offsets, device=dev), self.window, self.lead)
        if self.known.columns:
            out.known = panel.known_values.tensors(dev)  # CPU: shared, not copied
            out.shift = torch.from_numpy(self.shift[:, self.base :]).to(dev)
            out.scale = torch.from_numpy(self.scale[:, self.base :]).to(dev)
        if self.statics:
            out.statics = torch.from_numpy(self.static_rows).to(dev)
        return out

    def window_inputs(self, rows: np.ndarray, series: np.ndarray | None = None) -> np.ndarray:
        """Scaled inputs (S, window, F) of windows given as raw rows (S, need + L, C) of the
        series ``series`` (S,): each window's rows up to its origin (window, + 1 with diff),
        then the ``lead`` or more rows after it, whose known covariates the leads read."""
        o, w, d, lead = len(self.targets), self.window, int(self.diff), self.lead
        x = np.asarray(rows, dtype=np.float32)  # as the panel holds its values
        work = x[:, d : d + w, : self.base].copy()
        if self.diff:  # float32 changes, as ``working`` computes them
            work[..., :o] = x[:, 1 : w + 1, :o] - x[:, :w, :o]
        known = x[:, d + 1 : d + w + lead, self.base :] if self.known.columns else None
        statics = None if self.static_rows is None else self.static_rows[series]
        return numpy_inputs(work, known, lead, (self.shift[series], self.scale[series]),
                            statics)

    def targets_back(self, raw: np.ndarray, series: np.ndarray | None = None) -> np.ndarray:
        """Scaled model outputs (S, H, O) of the series ``series`` -> working units."""
        o = len(self.targets)
        return raw * self.scale[series, None, :o] + self.shift[series, None, :o]

    # --- windows ---------------------------------------------------------------------------
    def bounds(self, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per series (train_end, val_end) local row indices."""
        return split_bounds(lengths, self.split_fracs)

    def local_origins(self, split: str, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per series, the first and one-past-last local origin of ``split``'s forecasts
        (the single-series rules, applied to every series at once)."""
        return origin_span(split, lengths, self.window, self.horizon, self.diff,
                           self.split_fracs)

    def segments(self, split: str, offsets: np.ndarray) -> Segments:
        """The windows of ``split`` as runs of window start rows in the buffer."""
        lo, stop = self.local_origins(split, np.diff(offsets))
        return Segments(offsets[:-1] + lo - self.window + 1, stop - lo)

    def encode(self, data: Panel) -> Encoded:
        return Encoded(data, self.tensor(data))

    def pairs(self, encoded: Encoded, split: str) -> Pairs:
        """Windows of ``split`` of every series (views of the encoded buffer)."""
        return self.windows(encoded.buffer,
                            self.segments(check_split(split), encoded.dataset.offsets),
                            self.join(encoded))

    def to_units(self, outputs: np.ndarray, encoded: Encoded, split: str) -> np.ndarray:
        index = self.segments(split, encoded.dataset.offsets)
        series, last = self.origins(index, torch.arange(len(index)))
        return self.to_levels(outputs, series, last, encoded.dataset.values)

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {"shift": torch.from_numpy(self.shift), "scale": torch.from_numpy(self.scale)}
        if self.static_rows is not None:
            out["statics"] = torch.from_numpy(np.ascontiguousarray(self.static_rows))
        return out

    def windows(self, data: torch.Tensor, index: Segments, join: PanelJoin | None = None
                ) -> Pairs:
        """Windows named by ``index`` over the scaled buffer ``data`` (views, no copies);
        ``join`` adds the covariates a batch gathers besides them."""
        o = len(self.targets)
        w, h = self.window, self.horizon
        inputs = data.unfold(0, w, 1).permute(0, 2, 1)  # row s: data rows s .. s+w-1
        # row s: the h target rows after the window that starts at s (none when the data is
        # a single window: "all" then forecasts past its end, where no target is known)
        targets = (data[w:, :o].unfold(0, h, 1).permute(0, 2, 1) if len(data) >= w + h
                   else data.new_zeros(0, h, o))
        return Pairs(inputs, targets, index=index, join=join)

    def origins(self, index: Segments, k: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(series number, buffer row of the last input) of pair numbers ``k``."""
        return (index.series(k).numpy(), (index.rows(k) + self.window - 1).numpy())

    # --- back to original units ------------------------------------------------------------
    def to_levels(self, pred: np.ndarray, series: np.ndarray, last_rows: np.ndarray,
                  values: np.ndarray) -> np.ndarray:
        """Scaled outputs (N, H, O) of windows ending at buffer rows ``last_rows`` of series
        ``series`` -> forecasts in original units."""
        o = len(self.targets)
        out = pred * self.scale[series, None, :o] + self.shift[series, None, :o]
        if self.diff:
            base = np.asarray(values[last_rows, :o], dtype=np.float64)
            out = base[:, None, :] + np.cumsum(out, axis=1)
        return out

    def to_json(self) -> dict:
        """Everything but the per-series statistics (those go in safetensors)."""
        return {"kind": "panel", "targets": self.targets, "features": self.features,
                "shape": self.shape, "window": self.window, "horizon": self.horizon,
                "warmup": self.warmup, "diff": self.diff, "period": self.period,
                "scaler": self.scaler, "split": list(self.split_fracs),
                "trend_r2": self.trend_r2, "series": len(self.shift),
                "known": self.known.to_json(), "statics": self.statics.to_json()}

    @classmethod
    def from_json(cls, d: dict, tensors: dict[str, torch.Tensor] | None = None
                  ) -> PanelPipeline:
        if tensors is None:
            raise DataError("a panel pipeline needs its per-series statistics (shift, scale).")
        shift, scale = tensors["shift"].numpy(), tensors["scale"].numpy()
        if len(shift) != int(d["series"]) or shift.shape != scale.shape:
            raise DataError(f"per-series statistics for {len(shift)} series do not match the "
                            f"{d['series']} the pipeline was fitted on.")
        statics = Statics.from_json(d.get("statics"))
        rows = tensors.get("statics") if statics else None
        return cls(list(d["targets"]), list(d["features"]), int(d["window"]),
                   int(d["horizon"]), bool(d["diff"]),
                   None if d["period"] is None else int(d["period"]), str(d["scaler"]),
                   tuple(float(s) for s in d["split"]), float(d["trend_r2"]),
                   np.asarray(shift, dtype=np.float64), np.asarray(scale, dtype=np.float64),
                   known=Known.from_json(d.get("known")), statics=statics,
                   static_rows=None if rows is None else rows.numpy())


def _without_short(panel: Panel, window: int, horizon: int, diff: bool, cfg: DataConfig
                   ) -> Panel:
    """The panel without series too short to give a complete training, validation and test
    forecast (the single-series rule; with --skip-short), else refused."""
    short = short_series(panel.lengths, window, horizon, diff, cfg.split)
    if not short.any():
        return panel
    ids = [panel.ids[i] for i in np.flatnonzero(short)]
    shown = ", ".join(ids[:SHOWN_IDS]) + (f" and {len(ids) - SHOWN_IDS} more"
                                          if len(ids) > SHOWN_IDS else "")
    what = (f"{len(ids)} of {len(panel)} series have fewer than "
            f"{rows_needed(window, horizon, diff, cfg.split)} rows (window {window} + horizon "
            f"{horizon}{' + 1 for diff' if diff else ''}, and a complete forecast in each part "
            f"of split {split_text(cfg.split)}): {shown}")
    if not cfg.skip_short:
        raise DataError(f"{panel.source}: {what}; pass --skip-short to train without them, a "
                        "smaller --window, or a different --split.")
    if short.all():
        raise DataError(f"{panel.source}: {what}: no series is left; use a smaller --window or "
                        "a different --split.")
    panel = panel.subset(~short)
    panel.notes.append(f"skipped {what}")
    return panel
