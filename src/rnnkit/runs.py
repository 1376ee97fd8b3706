"""A Run: a trained model with its data pipeline, history and metrics, saved as a folder.

``Run.predict``, ``forecast``, ``generate`` and ``stream`` all answer in original units;
``Run.save(path)`` writes ``model.safetensors``, ``config.json``, ``metrics.json``,
``history.csv`` and PNG plots; ``rnnkit.load(path)`` restores a run that predicts identically.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from rnnkit import __version__
from rnnkit.config import ModelConfig, from_dict
from rnnkit.data.clock import extend_index, index_info
from rnnkit.data.sequences import SequencePipeline, as_sequences, as_targets
from rnnkit.data.series import SeriesPipeline
from rnnkit.errors import CheckpointError, DataError
from rnnkit.evaluate import report
from rnnkit.evaluate.baselines import sequence_baselines
from rnnkit.inference import (
    Stream,
    forecast_future,
    generate,
    model_outputs,
    sequence_outputs,
    series_forecasts,
)
from rnnkit.lock import writing
from rnnkit.models.network import RecurrentNet
from rnnkit.persist import (
    check_header,
    load_weights,
    min_weight_bytes,
    read_json,
    save_weights,
    write_json,
)

FORMAT = 1


class Run:
    """A fitted model and everything needed to use it. Build with ``rnnkit.fit``; restore with
    ``rnnkit.load``."""

    def __init__(self, model: RecurrentNet, pipeline: SeriesPipeline | SequencePipeline,
                 config: dict, history: list[dict], data: dict | None = None) -> None:
        self.model = model
        self.pipeline = pipeline
        self.config = config
        self.history = history
        self.metrics: dict | None = None
        self.extras: dict[str, Any] = {}  # problem-specific figures (demos) kept in metrics.json
        self.findings: list | None = None  # the doctor's findings, once diagnosed
        self._data = data  # the fitted data, while in memory: {"values", "index"} or sequences

    # --- data --------------------------------------------------------------------------------
    @property
    def is_series(self) -> bool:
        return isinstance(self.pipeline, SeriesPipeline)

    def _table(self, data: Any) -> tuple[np.ndarray, pd.Index]:
        if data is None:
            if self._data is None or "values" not in self._data:
                raise DataError("no data: this run was loaded from disk without its data; pass "
                                "the data (a CSV path or DataFrame) explicitly.")
            return self._data["values"], self._data["index"]
        from rnnkit.data.read import read_table

        src = self.config.get("source", {})
        pipe = self.pipeline
        table = read_table(data, target=pipe.targets, features=pipe.features or None,
                           time=src.get("time"), fill=src.get("fill"))
        return table.values, table.index

    def _sequences(self, data: Any, target: Any = None) -> tuple[list[np.ndarray], Any]:
        if data is None:
            if self._data is None or "seqs" not in self._data:
                raise DataError("no data: this run was loaded without its sequences; pass them.")
            return self._data["seqs"], self._data.get("targets")
        seqs = as_sequences(data)
        tgt = None if target is None else as_targets(target, len(seqs))
        return seqs, tgt

    # --- evaluation --------------------------------------------------------------------------
    def evaluate(self, data: Any = None, target: Any = None) -> dict:
        """Metrics on the test split (validation when there is no test split), in original
        units, next to the baselines. Also stored as ``self.metrics``."""
        if self.is_series:
            metrics = self._evaluate_series(data)
        else:
            metrics = self._evaluate_sequences(data, target)
        metrics.update(self.extras)
        self.metrics = metrics
        return metrics

    def _evaluate_series(self, data: Any) -> dict:
        pipe: SeriesPipeline = self.pipeline  # type: ignore[assignment]
        values, index = self._table(data)
        n, o = len(values), len(pipe.targets)
        split = "test" if len(pipe.origins("test", n)) else "val"
        origins = np.asarray(pipe.origins(split, n))
        if len(origins) == 0:
            raise DataError(f"no complete forecast fits in the test or validation rows of {n} "
                            f"rows (window {pipe.window}, horizon {pipe.horizon}).")
        pred = series_forecasts(self.model, pipe, values, origins)
        truth = report.series_truth(values, origins, pipe.horizon, o)
        train_end, val_end = pipe.bounds(n)
        base = report.series_baselines(values, origins, pipe.horizon, o, train_end,
                                       pipe.period, pipe.window)
        metrics = report.score(truth, pred, base, report.series_scale(values, train_end, o))

        def span(a: int, b: int) -> list:
            return [str(index[a]), str(index[b - 1])] if b > a else []

        metrics["split"] = {
            "evaluated_on": split, "rows": n, "train": span(0, train_end),
            "val": span(train_end, val_end), "test": span(val_end, n),
            "forecasts_scored": len(origins), "horizon": pipe.horizon,
            "window": pipe.window, "diff": pipe.diff, "period": pipe.period,
        }
        self._last_eval = {"origins": origins, "pred": pred, "truth": truth, "baselines": base,
                           "index": index, "values": values}
        return metrics

    def _evaluate_sequences(self, data: Any, target: Any) -> dict:
        pipe: SequencePipeline = self.pipeline  # type: ignore[assignment]
        seqs, targets = self._sequences(data, target)
        parts = pipe.split_indices(len(seqs))
        split = "test" if len(parts["test"]) else "val"
        idx = parts[split] if data is None else parts["all"]
        sub = [seqs[i] for i in idx]
        tr = parts["train"] if data is None else np.arange(0)
        if pipe.shape == "seq2one":
            pred = sequence_outputs(self.model, pipe, sub)
            truth = targets[idx]
            train_t = targets[parts["train"]] if len(tr) else truth
            last = np.array([s[-1, :pipe.n_outputs] for s in sub])
        else:
            p = pipe.prompt_length if pipe.shape == "continuation" else max(pipe.warmup, 1)
            steps = len(sub[0]) - p
            pred = generate(self.model, pipe, [s[:p] for s in sub], steps)
            truth = np.stack([s[p:, : pipe.n_outputs] for s in sub])
            train_t = (np.stack([seqs[i][p:, : pipe.n_outputs] for i in tr]) if len(tr)
                       else truth)
            last = np.stack([s[p - 1, : pipe.n_outputs] for s in sub])
        base = sequence_baselines(train_t, last, len(sub))
        metrics = report.score(truth, pred, base)
        metrics["split"] = {"evaluated_on": split if data is None else "given data",
                            "sequences": len(seqs), "scored": len(sub),
                            "train": len(parts["train"]), "val": len(parts["val"]),
                            "test": len(parts["test"])}
        self._last_eval = {"pred": pred, "truth": truth, "baselines": base}
        return metrics

    def diagnose(self, data: Any = None, control: bool = True, target: Any = None) -> list:
        """Check the run against what a working model looks like: a list of findings (code,
        severity, message, evidence, fix), worst first, also kept in ``metrics["findings"]``.
        ``data`` (and ``target`` for seq2one) replace the fitted data; ``control`` trains a
        shuffled-target copy briefly (a fixed amount of work). See docs/diagnosis.md."""
        from rnnkit.evaluate import doctor

        self.findings = doctor.diagnose(self, data, target=target, control=control)
        if self.metrics is not None:
            self.metrics["findings"] = [f.to_json() for f in self.findings]
        return self.findings

    def table(self) -> str:
        """The metrics table (model vs baselines) with a one-line verdict."""
        return report.format_table(self.metrics or self.evaluate())

    # --- predictions -------------------------------------------------------------------------
    def predict(self, data: Any = None, target: Any = None) -> pd.DataFrame | np.ndarray:
        """One-step (horizon) predictions for every row that has a full window before it
        (series; a DataFrame indexed like the input), or one prediction per sequence."""
        if not self.is_series:
            seqs, _ = self._sequences(data, target)
            return sequence_outputs(self.model, self.pipeline, seqs)  # type: ignore[arg-type]
        pipe: SeriesPipeline = self.pipeline  # type: ignore[assignment]
        values, index = self._table(data)
        need = pipe.window + int(pipe.diff) + 1
        if len(values) < need:
            raise DataError(f"predict needs at least {need} rows (window {pipe.window}"
                            f"{' + 1 for diff' if pipe.diff else ''} + 1 to predict), got "
                            f"{len(values)}.")
        origins = np.arange(pipe.window - 1 + int(pipe.diff), len(values) - 1)
        padded = np.vstack([values, np.zeros((pipe.horizon, values.shape[1]))])
        pred = series_forecasts(self.model, pipe, padded, origins)  # (N, H, O)
        cols = [t if pipe.horizon == 1 else f"{t}_t+{k + 1}"
                for k in range(pipe.horizon) for t in pipe.targets]
        flat = pred.reshape(len(origins), -1)
        return pd.DataFrame(flat, index=index[origins + 1], columns=cols)

    def forecast(self, steps: int, data: Any = None) -> pd.DataFrame:
        """Continue the series past its end for ``steps`` rows (primes on the last window)."""
        if not self.is_series:
            raise DataError("forecast applies to series runs; use generate(prompt, steps).")
        pipe: SeriesPipeline = self.pipeline  # type: ignore[assignment]
        if data is None and self._data is None:
            hist = np.asarray(self.config["tail"]["values"], dtype=np.float64)
            info = self.config["tail"]["index"]
        else:
            values, index = self._table(data)
            hist, info = values, index_info(index)
        out = forecast_future(self.model, pipe, hist[:, : len(pipe.targets)] if not pipe.features
                              else hist, int(steps))
        return pd.DataFrame(out, index=extend_index(info, int(steps)), columns=pipe.targets)

    def generate(self, prompt: Any, steps: int) -> np.ndarray:
        """Prime on each prompt and generate ``steps`` values: (steps, O) for one prompt,
        (N, steps, O) for a list of prompts."""
        single = np.ndim(prompt) == 1 or (isinstance(prompt, list) and prompt and
                                           np.ndim(prompt[0]) == 0)
        prompts = as_sequences([prompt] if single else prompt, name="prompt")
        if self.is_series:
            pipe: SeriesPipeline = self.pipeline  # type: ignore[assignment]
            out = np.stack([forecast_future(self.model, pipe, p, int(steps)) for p in prompts])
        else:
            out = generate(self.model, self.pipeline, prompts, int(steps))  # type: ignore[arg-type]
        return out[0] if single else out

    def stream(self) -> Stream:
        """A streaming predictor: ``s.update(x)`` returns the forecast of the next value."""
        return Stream(self.model, self.pipeline)

    # --- persistence -------------------------------------------------------------------------
    def _start_folder(self, path: str | Path) -> tuple[Path, dict]:
        """Create the run folder, score the run if it was not, write the weights; returns the
        folder and the config to write (with format and library versions)."""
        folder = Path(path)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(f"cannot create run folder {folder}: {exc.strerror}.") from None
        if self.metrics is None:
            self.evaluate()
        cfg = dict(self.config)
        cfg["versions"] = {"rnnkit": __version__, "torch": torch.__version__,
                           "numpy": np.__version__, "pandas": pd.__version__}
        cfg["format"] = FORMAT
        save_weights(folder / "model.safetensors", self.model.state_dict(),
                     {"format": str(FORMAT), "rnnkit": __version__})
        return folder, cfg

    def save(self, path: str | Path, plots: bool = True) -> Path:
        """Write the run folder (weights, config, metrics, history, plots) and return it.
        Holds the folder's lock meanwhile: a fit writing there makes this a RunLocked error."""
        with writing(path):
            return self._save(path, plots)

    def _save(self, path: str | Path, plots: bool) -> Path:
        folder, cfg = self._start_folder(path)
        write_json(folder / "config.json", cfg)
        write_json(folder / "metrics.json", self.metrics)
        from rnnkit.persist import atomic_write_bytes

        atomic_write_bytes(folder / "history.csv", history_csv(self.history))
        # diagnosed once the weights are on disk, so a failing check never loses a fit
        if self.findings is None:
            self.diagnose()
        self.metrics["findings"] = [f.to_json() for f in self.findings or []]
        write_json(folder / "metrics.json", self.metrics)
        if plots:
            from rnnkit import plots as plotting
            from rnnkit.report import write_report

            plotting.save_run_plots(self, folder)
            write_report(self, folder)
        return folder


def history_csv(history: list[dict]) -> bytes:
    """The per-epoch records as CSV bytes (history.csv)."""
    buf = io.StringIO()
    if history:
        w = csv.DictWriter(buf, fieldnames=list(history[0]))
        w.writeheader()
        w.writerows(history)
    return buf.getvalue().encode()


def load(path: str | Path) -> Run:
    """Restore a run folder written by ``Run.save``. Refuses pickle files and malformed data."""
    folder = Path(path)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: not a run folder (no such directory).")
    cfg = read_json(folder / "config.json")
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
        raise CheckpointError(f"{folder / 'config.json'}: not an rnnkit run config (format "
                              f"{cfg.get('format') if isinstance(cfg, dict) else '?'}).")
    try:
        mcfg = from_dict(ModelConfig, cfg["model"])
        pipe_json = cfg["pipeline"]
        pipe = (None if cfg["kind"] == "panel" else SeriesPipeline.from_json(pipe_json)
                if cfg["kind"] == "series" else SequencePipeline.from_json(pipe_json))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{folder / 'config.json'}: invalid ({exc}).") from None
    weights = folder / "model.safetensors"
    if weights.is_file():
        check_header(weights)  # a pickle or a lying header is refused before anything else
    if weights.is_file() and weights.stat().st_size < min_weight_bytes(mcfg):
        # checked before the model is built: an edited config must not allocate a huge model
        raise CheckpointError(f"{folder / 'config.json'}: describes a model of at least "
                              f"{min_weight_bytes(mcfg)} bytes of weights, but {weights} has "
                              f"{weights.stat().st_size}; the files do not belong together.")
    model = RecurrentNet(mcfg)
    tensors = load_weights(weights, model.state_dict())
    model.load_state_dict(tensors)
    model.eval()
    history = []
    hist_file = folder / "history.csv"
    if hist_file.is_file():
        try:
            with open(hist_file, newline="", encoding="utf-8") as f:
                history = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
        except (UnicodeDecodeError, csv.Error, TypeError, ValueError):
            raise CheckpointError(f"{hist_file}: not the CSV of numbers rnnkit writes; the file "
                                  "is corrupt.") from None
    if pipe is None:
        from rnnkit.panels import load_panel

        run: Run = load_panel(folder, cfg, model, history)
    else:
        run = Run(model, pipe, cfg, history)
    metrics_file = folder / "metrics.json"
    if metrics_file.is_file():
        run.metrics = read_json(metrics_file)
    return run


__all__ = ["Run", "load", "model_outputs"]
