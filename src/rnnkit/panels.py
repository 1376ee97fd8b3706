"""A panel run: one global model over many series, answering in long format.

``PanelRun`` is the Run of a long-format fit (``unique_id, ds, y``). Metrics pool the forecasts
of every series' test part (in original units) next to baselines computed per series;
``predict`` and ``forecast`` return long tables (id, time, target). A saved panel run keeps its
per-series scaling and the tail of every series in ``panel.safetensors`` (the JSON config holds
only the ids), so forecasts after ``rnnkit.load`` equal those before.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from rnnkit.data.clock import future_times
from rnnkit.data.pairs import Pairs, Segments
from rnnkit.data.panel import Panel, read_panel
from rnnkit.data.panel_windows import PanelPipeline
from rnnkit.errors import CheckpointError, DataError
from rnnkit.evaluate import panel_scores
from rnnkit.inference import model_outputs
from rnnkit.models.network import RecurrentNet
from rnnkit.persist import load_weights, save_weights
from rnnkit.runs import Run

PANEL_FILE = "panel.safetensors"
BATCH = 4096
KEPT_FORECASTS = 100_000  # forecasts kept in memory after evaluation, for the doctor


class PanelRun(Run):
    """A global model over a panel. Build with ``rnnkit.fit(long_table)``; restore with
    ``rnnkit.load``."""

    is_panel = True

    def __init__(self, model: RecurrentNet, pipeline: PanelPipeline, config: dict,
                 history: list[dict], data: dict | None = None,
                 tail: dict[str, np.ndarray] | None = None) -> None:
        super().__init__(model, pipeline, config, history, data)  # type: ignore[arg-type]
        self.ids: list[str] = list(config["panel"]["ids"])
        self._tensor: torch.Tensor | None = None  # the scaled buffer of the fitted panel
        self._tail = tail  # {"values": (S, need, F) float32, "last": (S,) int64/ns}
        if tail is None and data is not None:
            self._tail = _tail_of(data["panel"], pipeline)

    @property
    def is_series(self) -> bool:
        return False

    # --- data --------------------------------------------------------------------------------
    def _data_panel(self) -> Panel | None:
        return None if self._data is None else self._data["panel"]

    def _panel(self, data: Any) -> tuple[Panel, PanelPipeline]:
        """The panel to use and the pipeline with its series' statistics in its order."""
        pipe: PanelPipeline = self.pipeline  # type: ignore[assignment]
        if data is None:
            if self._data is None:
                raise DataError("no data: this panel run was loaded from disk without its data; "
                                "pass the long table (a CSV path or DataFrame).")
            return self._data["panel"], pipe
        p = self.config["panel"]
        panel = read_panel(data, p["id"], p["time"], pipe.targets, pipe.features or None,
                           self.config["source"].get("fill"))
        pos = {s: i for i, s in enumerate(self.ids)}
        unknown = [s for s in panel.ids if s not in pos]
        if unknown:
            raise DataError(f"{panel.source}: series {', '.join(unknown[:5])}"
                            f"{' and more' if len(unknown) > 5 else ''} were not in the training "
                            "panel, so their scaling is unknown; fit again with them.")
        rows = np.array([pos[s] for s in panel.ids])
        return panel, dataclasses.replace(pipe, shift=pipe.shift[rows], scale=pipe.scale[rows])

    def _pairs(self, pipe: PanelPipeline, panel: Panel, split: str,
               only: np.ndarray | None = None) -> Pairs:
        """Scaled windows of ``split`` of every series, or of the series numbered ``only``."""
        # the fitted panel's scaled buffer is kept from training: a second one would double
        # the largest array of a big panel
        data = (self._tensor if self._tensor is not None and panel is self._data_panel()
                else pipe.tensor(panel))
        index = pipe.segments(split, panel.offsets)
        if only is not None:
            counts = np.zeros(len(index.counts), dtype=np.int64)
            counts[only] = index.counts.numpy()[only]
            index = Segments(index.starts.numpy(), counts)
        return pipe.pairs(data, index)

    def _forecasts(self, pipe: PanelPipeline, panel: Panel, split: str,
                   only: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(predictions (N, H, O) in original units, series (N,), last input rows (N,)) of
        every series, or of the series numbered ``only``."""
        pairs = self._pairs(pipe, panel, split, only)
        raw = model_outputs(self.model, pairs, batch=BATCH)
        series, last = pipe.origins(pairs.index, torch.arange(len(pairs)))  # type: ignore[arg-type]
        return pipe.to_levels(raw, series, last, panel.values), series, last

    # --- evaluation --------------------------------------------------------------------------
    def evaluate(self, data: Any = None, target: Any = None) -> dict:
        """Pooled metrics over every series' test part (validation when no series has a test
        window), in original units, next to per-series baselines."""
        panel, pipe = self._panel(data)
        o, h = len(pipe.targets), pipe.horizon
        split = "test" if len(pipe.segments("test", panel.offsets)) else "val"
        pred, series, last = self._forecasts(pipe, panel, split)
        if len(pred) == 0:
            raise DataError("no series has a complete forecast in its test or validation rows.")
        truth = panel.values[last[:, None] + np.arange(1, h + 1)[None, :], :o].astype(np.float64)
        base = panel_scores.naive_baselines(pipe, panel, series, last)
        ar = panel_scores.pooled_ar(pipe, panel, self._pairs(pipe, panel, "train"),
                                    self._pairs(pipe, panel, split), series, last)
        if ar is not None:
            base[f"linear AR({pipe.window}), pooled"] = ar
        metrics = panel_scores.score(pipe, panel, truth, pred, base, series)
        metrics["split"] = {
            "evaluated_on": split, "series": len(panel), "rows": len(panel.values),
            "forecasts_scored": len(pred), "horizon": h, "window": pipe.window,
            "diff": pipe.diff, "period": pipe.period,
            "scaling": f"{pipe.scaler}, per series (fit on each series' training rows)",
        }
        metrics.update(self.extras)
        # the doctor's skill check reads these; an even sample keeps a huge panel's copy small
        keep = np.unique(np.linspace(0, len(pred) - 1, min(len(pred), KEPT_FORECASTS)).astype(int))
        self._last_eval = {"pred": pred[keep], "truth": truth[keep],
                           "baselines": {k: np.ascontiguousarray(b[keep]) for k, b in base.items()}}
        self.metrics = metrics
        return metrics

    def diagnose(self, data: Any = None, control: bool = True, target: Any = None) -> list:
        """The checks that apply to a pooled panel: skill against the baselines and the training
        history (the per-series data checks are for single-series runs)."""
        from rnnkit.evaluate.findings.base import Finding, Subject
        from rnnkit.evaluate.findings.history import check_history
        from rnnkit.evaluate.findings.skill import check_skill

        if data is not None or self.metrics is None:
            self.evaluate(data)
        subject = Subject(self, self.metrics)
        found = check_skill(subject) + check_history(subject)
        order = {"error": 0, "warning": 1, "info": 2}
        self.findings = sorted(found, key=lambda f: order[f.severity])
        if not any(f.code == "no-data" for f in self.findings):
            self.findings.append(Finding(
                "panel", "info", f"a global model over {len(self.ids)} series: skill and history "
                "were checked; the data and state checks look at one series at a time.", {},
                "fit one series alone to run those checks on it."))
        if self.metrics is not None:
            self.metrics["findings"] = [f.to_json() for f in self.findings]
        return self.findings

    # --- predictions -------------------------------------------------------------------------
    def _long(self, panel: Panel, series: np.ndarray, times: np.ndarray, values: np.ndarray,
              columns: list[str]) -> pd.DataFrame:
        ids = np.asarray(panel.ids if panel is not None else self.ids, dtype=object)
        p = self.config["panel"]
        frame = pd.DataFrame({p["id"]: ids[series], p["time"] or "step": times})
        for j, c in enumerate(columns):
            frame[c] = values[:, j]
        frame.attrs["long_format"] = True
        return frame

    def predict(self, data: Any = None, target: Any = None) -> pd.DataFrame:
        """Forecasts of every row that has a full window before it, in long format: id, time
        and one column per target (``y_t+k`` for each step of a longer horizon)."""
        panel, pipe = self._panel(data)
        pred, series, last = self._forecasts(pipe, panel, "all")
        cols = [t if pipe.horizon == 1 else f"{t}_t+{k + 1}"
                for k in range(pipe.horizon) for t in pipe.targets]
        return self._long(panel, series, panel.times[last + 1], pred.reshape(len(pred), -1),
                          cols)

    def forecast(self, steps: int, data: Any = None) -> pd.DataFrame:
        """Continue every series ``steps`` rows past its end: a long table (id, time, target)."""
        pipe: PanelPipeline = self.pipeline  # type: ignore[assignment]
        if pipe.features:
            raise DataError(f"forecast past the end needs future values of the features "
                            f"{pipe.features}, which are not known; use predict with a table "
                            "that has them.")
        if steps < 1:
            raise DataError(f"steps={steps} must be at least 1.")
        if data is not None:
            panel, pipe = self._panel(data)
            tail = _tail_of(panel, pipe)
        else:
            if self._tail is None:
                raise DataError("no data: pass the long table to continue.")
            panel, tail = None, self._tail
        hist = tail["values"].astype(np.float64)[:, :, : len(pipe.targets)]
        future = _roll(self.model, pipe, hist, int(steps))  # (S, steps, O)
        s = len(hist)
        times = future_times(self.config["panel"]["clock"], tail["last"], int(steps))
        series = np.repeat(np.arange(s), steps)
        return self._long(panel, series, times.reshape(-1), future.reshape(s * steps, -1),
                          list(pipe.targets))

    def generate(self, prompt: Any, steps: int) -> np.ndarray:
        raise DataError("a panel run continues its series with forecast(steps); generate is for "
                        "sequence runs.")

    def stream(self) -> Any:
        raise DataError("streaming takes one series; fit that series alone to stream it.")

    # --- persistence -------------------------------------------------------------------------
    def _save(self, path: str | Path, plots: bool) -> Path:
        """The run folder of a panel: weights, config (ids included), per-series statistics and
        tails (``panel.safetensors``), metrics, history and the loss plot."""
        from rnnkit.persist import atomic_write_bytes, write_json
        from rnnkit.runs import FORMAT, history_csv

        folder, cfg = self._start_folder(path)
        pipe: PanelPipeline = self.pipeline  # type: ignore[assignment]
        tail = self._tail or {}
        save_weights(folder / PANEL_FILE, {
            "shift": torch.from_numpy(pipe.shift), "scale": torch.from_numpy(pipe.scale),
            "tail": torch.from_numpy(np.ascontiguousarray(tail["values"])),
            "last": torch.from_numpy(np.ascontiguousarray(tail["last"].astype(np.int64)))},
            {"format": str(FORMAT)})
        write_json(folder / "config.json", cfg)
        if self.findings is None:
            self.diagnose()
        write_json(folder / "metrics.json", self.metrics)
        atomic_write_bytes(folder / "history.csv", history_csv(self.history))
        if plots:
            from rnnkit import plots as plotting
            from rnnkit.report import write_report

            t = self.config.get("training", {})
            if self.history:
                plotting.loss_curves(self.history, folder / "loss.png", t.get("best_epoch"),
                                     t.get("stop_reason"))
            if self._data is not None:
                plotting.panel_series(self._plot_series(), folder / "panel_series.png")
            write_report(self, folder)
        return folder

    def _plot_series(self) -> list[dict]:
        """Four series spread over the panel: recent history, test truth, test forecasts."""
        panel, pipe = self._panel(None)
        split = "test" if len(pipe.segments("test", panel.offsets)) else "val"
        picks = np.unique(np.linspace(0, len(panel) - 1, min(4, len(panel))).astype(int))
        pred, series, last = self._forecasts(pipe, panel, split, only=picks)
        out = []
        for i in picks:
            a, b = int(panel.offsets[i]), int(panel.offsets[i + 1])
            mine = series == i
            start = max(a, int(last[mine].min()) + 1 - 3 * pipe.window) if mine.any() else a
            out.append({"id": panel.ids[i], "times": panel.times[start:b],
                        "values": panel.values[start:b, 0],
                        "pred_times": panel.times[last[mine] + 1], "pred": pred[mine, 0, 0],
                        "name": pipe.targets[0]})
        return out


def _tail_of(panel: Panel, pipe: PanelPipeline) -> dict[str, np.ndarray]:
    """The last window (+1 with diff) of rows of every series, and each series' last time."""
    need = pipe.window + int(pipe.diff)
    ends = panel.offsets[1:]
    rows = ends[:, None] - need + np.arange(need)[None, :]
    return {"values": np.ascontiguousarray(panel.values[rows]),
            "last": panel.times[ends - 1].astype(np.int64)}


@torch.inference_mode()
def _roll(model: RecurrentNet, pipe: PanelPipeline, hist: np.ndarray, steps: int) -> np.ndarray:
    """Forecast every series ``steps`` rows ahead from its last rows ``hist`` (S, need, O),
    all series in one batch per horizon: each round forecasts ``horizon`` rows and appends."""
    model.eval()
    o, w = len(pipe.targets), pipe.window
    out: list[np.ndarray] = []
    done = 0
    while done < steps:
        x = np.diff(hist[:, -(w + 1):], axis=1) if pipe.diff else hist[:, -w:]
        x = (x - pipe.shift[:, None, :o]) / pipe.scale[:, None, :o]
        xt = torch.from_numpy(x.astype(np.float32))
        raw = np.concatenate([model(xt[s : s + BATCH])[0].numpy() for s in range(0, len(xt),
                                                                                 BATCH)])
        pred = raw.astype(np.float64) * pipe.scale[:, None, :o] + pipe.shift[:, None, :o]
        if pipe.diff:
            pred = hist[:, -1:, :] + np.cumsum(pred, axis=1)
        out.append(pred)
        hist = np.concatenate([hist, pred], axis=1)
        done += pred.shape[1]
    return np.concatenate(out, axis=1)[:, :steps]


def load_panel(folder: Path, cfg: dict, model: RecurrentNet, history: list[dict]) -> PanelRun:
    """The panel part of ``rnnkit.load``: statistics and tails from ``panel.safetensors``,
    checked against the config before use."""
    try:
        pj = cfg["pipeline"]
        s, f = int(pj["series"]), len(pj["targets"]) + len(pj["features"])
        need = int(pj["window"]) + int(bool(pj["diff"]))
        if len(cfg["panel"]["ids"]) != s:
            raise CheckpointError(f"{folder / 'config.json'}: lists {len(cfg['panel']['ids'])} "
                                  f"series ids for {s} series.")
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{folder / 'config.json'}: invalid panel config ({exc}).") from None
    expected = {"shift": torch.zeros(s, f, dtype=torch.float64),
                "scale": torch.zeros(s, f, dtype=torch.float64),
                "tail": torch.zeros(s, need, f), "last": torch.zeros(s, dtype=torch.int64)}
    t = load_weights(folder / PANEL_FILE, expected)
    pipe = PanelPipeline.from_json(pj, t["shift"].numpy(), t["scale"].numpy())
    tail = {"values": t["tail"].numpy(), "last": t["last"].numpy()}
    if cfg["panel"]["clock"]["kind"] == "datetime":
        tail["last"] = tail["last"].astype("datetime64[ns]")
    return PanelRun(model, pipe, cfg, history, None, tail)
