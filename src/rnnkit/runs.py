"""A Run: a trained model with its data pipeline, history and metrics, saved as a folder.

One Run type serves series, sequences and panels; what differs by kind (reading new data,
scoring, the shape of predictions, extra files) lives in ``rnnkit.kinds``, picked once from
``config["kind"]``. ``Run.predict``, ``forecast``, ``generate`` and ``stream`` all answer in
original units. ``Run.save(path)`` only writes (``model.safetensors``, ``config.json``,
``metrics.json``, ``history.csv``); diagnosis, plots and the report are steps of their own
(``rnnkit.analysis``). ``rnnkit.load(path)`` restores a run that predicts identically.
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
from rnnkit.data.pipeline import Encoded, Pipeline
from rnnkit.data.sequences import as_sequences
from rnnkit.errors import CheckpointError, ConfigError, DataError
from rnnkit.evaluate import intervals, learned, scoring
from rnnkit.evaluate.evaluation import Evaluation
from rnnkit.kinds import KINDS
from rnnkit.lock import writing
from rnnkit.models.network import RecurrentNet
from rnnkit.persist import (
    atomic_write_bytes,
    check_header,
    load_weights,
    min_weight_bytes,
    read_json,
    save_weights,
    write_json,
)
from rnnkit.run_format import FORMAT_VERSION, VERSION_KEY, migrate
from rnnkit.streaming import Stream


class Run:
    """A fitted model and everything needed to use it. Build with ``rnnkit.fit``; restore with
    ``rnnkit.load``.

    Public parts: ``model``, ``pipeline``, ``config`` (what config.json holds), ``history``
    (per-epoch records), ``kind`` (series, sequences or panel), ``data`` (the fitted data in
    model units, an ``Encoded``; None for a run loaded without it), ``tail`` (a panel's last
    rows per series, for forecasts), ``metrics``, ``evaluation`` (the forecasts the metrics were
    computed from), ``findings`` (the doctor's), ``extras`` (a problem's own figures).
    """

    def __init__(self, model: RecurrentNet, pipeline: Pipeline, config: dict,
                 history: list[dict], data: Encoded | None = None,
                 tail: dict[str, np.ndarray] | None = None) -> None:
        self.model = model
        self.pipeline: Any = pipeline
        self.config = config
        self.history = history
        self.kind: str = str(config.get("kind", "series"))
        self.data = data
        self.tail = tail
        self.metrics: dict | None = None
        self.evaluation: Evaluation | None = None
        self.extras: dict[str, Any] = {}  # problem-specific figures (demos) kept in metrics.json
        self.findings: list | None = None  # the doctor's findings, once diagnosed
        # the shuffled-target control's (validation loss, epochs), when it trained beside the
        # fit (evaluate/findings/control.py); None: the doctor trains it when asked
        self.control: tuple[float, int] | None = None

    @property
    def behaviour(self) -> Any:
        """The kind's rules (``rnnkit.kinds``) that this run follows."""
        return KINDS[self.kind]

    # --- data --------------------------------------------------------------------------------
    def attach(self, data: Any, target: Any = None) -> Encoded:
        """Make ``data`` (read with the run's own options) the run's data, as if it had been
        fitted on it: same splits, same scaling. Returns it encoded."""
        encoded, _ = self.behaviour.attach(self, data, target)
        self.data, self.evaluation = encoded, None
        return encoded

    # --- evaluation --------------------------------------------------------------------------
    def evaluate(self, data: Any = None, target: Any = None) -> dict:
        """Metrics on the test split (validation when there is no test split), in original
        units, next to the baselines. Also stored as ``self.metrics``; the forecasts they were
        computed from are kept as ``self.evaluation``."""
        metrics, self.evaluation = self.behaviour.evaluate(self, data, target)
        metrics.update(self.extras)
        self.metrics = metrics
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

    def calibrate(self) -> dict | None:
        """Calibrate the prediction intervals (``config["data"]["levels"]``) on the fitted
        data's validation part; ``fit`` does this. Kept in ``config["intervals"]``, so a saved
        run gives the same intervals after ``rnnkit.load``."""
        found = self.behaviour.calibrate(self)
        self.config.pop("intervals", None)
        if found:
            self.config["intervals"] = {"method": intervals.method_of(self.config),
                                        **found}
        return found

    def table(self) -> str:
        """The metrics table (model vs baselines) with a one-line verdict, and the coverage of
        the prediction intervals."""
        metrics = self.metrics or self.evaluate()
        text = scoring.format_table(metrics)
        lines = "\n".join(x for x in (learned.format_scores(metrics),
                                      intervals.format_intervals(metrics)) if x)
        if not lines:
            return text
        # the interval rows belong to the table: above its closing verdict sentence
        table, _, sentence = text.rpartition("\n")
        return f"{table}\n{lines}\n{sentence}" if table else f"{lines}\n{sentence}"

    # --- predictions -------------------------------------------------------------------------
    def predict(self, data: Any = None, target: Any = None) -> pd.DataFrame | np.ndarray:
        """One-step (horizon) predictions for every row that has a full window before it
        (series: a DataFrame indexed like the input; panel: a long table), or one row per
        sequence (seq2one and continuation: a DataFrame with the bounds; next: an array)."""
        return self.behaviour.predict(self, data, target)

    def forecast(self, steps: int, data: Any = None, future: Any = None) -> pd.DataFrame:
        """Continue the series past its end for ``steps`` rows (primes on the last window).
        ``future``: the coming values of a run's future features (a DataFrame or CSV/Parquet
        path with the data's time column), one row per date ahead; calendar features are
        generated from the dates."""
        if future is not None and self.kind == "sequences":
            raise ConfigError("future: a sequence run has no future features; leave it out.")
        return (self.behaviour.forecast(self, steps, data, future) if future is not None
                else self.behaviour.forecast(self, steps, data))

    def generate(self, prompt: Any, steps: int) -> np.ndarray:
        """Prime on each prompt and generate ``steps`` values: (steps, O) for one prompt,
        (N, steps, O) for a list of prompts."""
        single = np.ndim(prompt) == 1 or (isinstance(prompt, list) and prompt and
                                           np.ndim(prompt[0]) == 0)
        prompts = as_sequences([prompt] if single else prompt, name="prompt")
        out = self.behaviour.generate(self, prompts, int(steps))
        return out[0] if single else out

    def stream(self, series: str | None = None) -> Stream:
        """A streaming predictor: ``s.update(x)`` returns the forecast of the next value. A
        panel run streams one of its series, named by ``series`` and primed on its last rows."""
        if self.kind == "panel":
            return self.behaviour.stream(self, series)
        if series is not None:
            raise ConfigError(f"stream(series={series!r}): a {self.kind} run streams its data "
                              "without a series id; call stream().")
        return self.behaviour.stream(self)

    def export(self, path: str | Path, format: str = "onnx", steps: int = 12,
               stateful: bool = False) -> Path:
        """Write the forecasting loop (or, ``stateful``, one streaming step) as an ONNX graph
        that onnxruntime runs without rnnkit; see ``rnnkit/export.py`` and docs/deploy.md."""
        if format != "onnx":
            raise ConfigError(f"export: format={format!r} is not supported; use onnx.")
        from rnnkit.export import export_onnx

        return export_onnx(self, path, steps=steps, stateful=stateful)

    # --- persistence -------------------------------------------------------------------------
    def save(self, path: str | Path, plots: bool = True) -> Path:
        """Write the run folder (weights, config, metrics, history; a panel's per-series
        statistics; with ``plots``, the plots and report.html of what the run holds) and
        return it; scores the run first if it was not. Saving diagnoses nothing and runs no
        backtest: those are steps of their own (``run.diagnose()``,
        ``rnnkit.analysis.analyse(run, folder)``, which ``fit`` calls). Holds the folder's
        lock meanwhile: a fit writing there makes this a RunLocked error."""
        with writing(path):
            folder = _make_folder(path)
            if self.metrics is None:
                self.evaluate()
            cfg = {**self.config, "versions": versions(), VERSION_KEY: FORMAT_VERSION}
            save_weights(folder / "model.safetensors", self.model.state_dict(),
                         {VERSION_KEY: str(FORMAT_VERSION), "rnnkit": __version__})
            self.behaviour.save(self, folder, FORMAT_VERSION)
            write_json(folder / "config.json", cfg)
            self.save_metrics(folder)
            atomic_write_bytes(folder / "history.csv", history_csv(self.history))
            if plots:
                from rnnkit.analysis import figures

                figures(self, folder)
        return folder

    def save_metrics(self, folder: str | Path) -> None:
        """(Re)write metrics.json, with the findings once the run is diagnosed."""
        metrics = dict(self.metrics or {})
        if self.findings is not None:
            metrics["findings"] = [f.to_json() for f in self.findings]
        write_json(Path(folder) / "metrics.json", metrics)


def _make_folder(path: str | Path) -> Path:
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create run folder {folder}: {exc.strerror}.") from None
    return folder


def versions() -> dict[str, str]:
    """The library versions a run folder records."""
    return {"rnnkit": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "pandas": pd.__version__}


def history_csv(history: list[dict]) -> bytes:
    """The per-epoch records as CSV bytes (history.csv)."""
    buf = io.StringIO()
    if history:
        w = csv.DictWriter(buf, fieldnames=list(history[0]))
        w.writeheader()
        w.writerows(history)
    return buf.getvalue().encode()


def load(path: str | Path) -> Run:
    """Restore a run folder written by ``Run.save`` of this release or any earlier one (its
    config migrated in memory, ``rnnkit.run_format``; the folder is only read). Refuses pickle
    files, malformed data and folders of a newer format_version."""
    folder = Path(path)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: not a run folder (no such directory).")
    cfg = read_json(folder / "config.json")
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{folder / 'config.json'}: not an rnnkit run config (a JSON "
                              f"{type(cfg).__name__}, not an object); pass a folder written by "
                              "rnnkit fit or Run.save.")
    cfg = migrate(cfg, folder / "config.json")
    try:
        mcfg = from_dict(ModelConfig, cfg["model"])
        kind = KINDS[cfg["kind"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{folder / 'config.json'}: invalid ({exc}).") from None
    model = _load_model(folder, mcfg)
    try:
        pipe, tail = kind.load(folder, cfg)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{folder / 'config.json'}: invalid ({exc}).") from None
    run = Run(model, pipe, cfg, _load_history(folder / "history.csv"), None, tail)
    metrics_file = folder / "metrics.json"
    if metrics_file.is_file():
        run.metrics = read_json(metrics_file)
    return run


def _load_model(folder: Path, mcfg: ModelConfig) -> RecurrentNet:
    weights = folder / "model.safetensors"
    if weights.is_file():
        check_header(weights)  # a pickle or a lying header is refused before anything else
    if weights.is_file() and weights.stat().st_size < min_weight_bytes(mcfg):
        # checked before the model is built: an edited config must not allocate a huge model
        raise CheckpointError(f"{folder / 'config.json'}: describes a model of at least "
                              f"{min_weight_bytes(mcfg)} bytes of weights, but {weights} has "
                              f"{weights.stat().st_size}; the files do not belong together.")
    model = RecurrentNet(mcfg)
    model.load_state_dict(load_weights(weights, model.state_dict()))
    model.eval()
    return model


def _load_history(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
    except (UnicodeDecodeError, csv.Error, TypeError, ValueError):
        raise CheckpointError(f"{path}: not the CSV of numbers rnnkit writes; the file is "
                              "corrupt.") from None


__all__ = ["Run", "load"]
