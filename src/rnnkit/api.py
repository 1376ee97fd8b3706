"""``rnnkit.fit``: from data to a trained, evaluated Run, in one call; ``resume`` continues
an interrupted one from its run folder.

read -> validate -> pairs/windows -> scale -> model -> train -> evaluate -> (save)
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from rnnkit.config import (
    DataConfig,
    ModelConfig,
    TrainConfig,
    from_dict,
    split_options,
    to_dict,
)
from rnnkit.data.clock import index_info, time_info
from rnnkit.data.panel import is_panel, read_panel
from rnnkit.data.sequences import SequencePipeline, as_sequences, as_targets
from rnnkit.data.series import SeriesPipeline
from rnnkit.errors import CheckpointError, ConfigError, DataError
from rnnkit.lock import run_lock
from rnnkit.models.init import prepare
from rnnkit.models.network import RecurrentNet
from rnnkit.persist import min_weight_bytes
from rnnkit.runs import Run
from rnnkit.train import checkpoint, distributed, objectives
from rnnkit.train import resume as resume_rules
from rnnkit.train.callbacks import Callback
from rnnkit.train.loop import train
from rnnkit.train.snapshot import Snapshot


def _is_sequence_data(data: Any, target: Any, shape: str | None,
                      prompt_length: int | None = None) -> bool:
    if shape in ("seq2one", "continuation"):
        return True
    if shape in ("window",):
        return False
    if prompt_length and isinstance(data, np.ndarray) and data.ndim == 2:
        # A prompt length only has a meaning for independent sequences (continuation), so an
        # (N, T) array given with one is N sequences, not a table of T columns.
        return True
    if isinstance(data, list | tuple) and data and all(
            isinstance(s, list | tuple | np.ndarray) for s in data):
        return True
    return isinstance(data, np.ndarray) and data.ndim == 3


def fit(data: Any, target: Any = None, *, features: list[str] | None = None,
        time: str | None = None, out: str | Path | None = None,
        callbacks: list[Callback] | None = None, **options: Any) -> Run:
    """Train a recurrent model on ``data`` and return the evaluated Run.

    data: a CSV/Parquet path, DataFrame, Series or array (a series, one row per time step), or
        a list of sequences / an (N, T[, F]) array of independent sequences.
    target: column name(s) of a series; for sequences, an array of one target per sequence
        (``shape='seq2one'``), or None (``next`` / ``continuation``).
    options: any field of DataConfig, ModelConfig or TrainConfig by name, e.g. ``cell='gru'``,
        ``hidden_size=64``, ``window=48``, ``horizon=6``, ``epochs=100``, ``seed=1``.

    out: the run folder. Given it, fit holds the folder's lock (one writer), records how to
        resume in ``out/checkpoints/run.json``, saves checkpoints while training
        (``checkpoint_every``; always on SIGINT/SIGTERM, then raises ``Interrupted``) and writes
        the run there at the end. See docs/reliability.md.

    Example::

        run = rnnkit.fit("sunspots.csv", target="sunspot_number", epochs=5, quiet=True)
        run.forecast(12)
    """
    try:
        if out is not None and distributed.restarted() and resume_rules.resumable(out):
            # torchrun --max-restarts started this worker again: continue, do not start over
            return _resume_restarted(out, data, callbacks, options)
        if out is None or not distributed.main_process():
            # (other DDP processes write nothing; rank 0 holds the folder's lock)
            return _fit(data, target, features, time, out, callbacks, options, None)
        # run_lock removes the folders it created if they are still empty when it is
        # released: bad input is refused before anything is written, and leaves nothing behind
        with run_lock(out):
            if not distributed.restarted():
                resume_rules.refuse_unfinished(out)
            return _fit(data, target, features, time, out, callbacks, options, None)
    finally:
        distributed.leave()


def _resume_restarted(out: str | Path, data: Any, callbacks: list[Callback] | None,
                      options: dict) -> Run:
    kept = {k: v for k, v in options.items() if k in RESUME_OPTIONS}
    return resume(out, data if isinstance(data, str | Path) else None, callbacks=callbacks,
                  **kept)


# what may differ on resume: none of these changes the training itself
RESUME_OPTIONS = ("quiet", "checkpoint_every", "keep_checkpoints", "device")


@dataclass
class _Resume:
    """An interrupted run to continue: its record (run.json) and newest complete checkpoint."""

    run: Path
    record: dict
    snapshot: Snapshot

    def check(self, mcfg: ModelConfig, pipeline: dict) -> None:
        """The data and options must rebuild exactly the model and pipeline that were saved."""
        if (checkpoint.dumps(to_dict(mcfg)) != checkpoint.dumps(self.record["model"])
                or checkpoint.dumps(pipeline) != checkpoint.dumps(self.record["pipeline"])):
            raise CheckpointError(
                f"{self.run}: the data and options no longer give the model and pipeline this "
                "run was trained with (was rnnkit upgraded?); start a new run instead.")


def resume(run: str | Path, data: Any = None, target: Any = None, *,
           callbacks: list[Callback] | None = None, **overrides: Any) -> Run:
    """Continue an interrupted ``fit(..., out=run)`` from its newest complete checkpoint.

    The result equals the uninterrupted fit (bit for bit on CPU). The data file is re-read from
    the path in ``run/checkpoints/run.json`` (or ``data``, if it moved) and must be the same
    bytes (size and sha256); in-memory data must be given again as ``data``/``target``. Only
    ``quiet``, ``checkpoint_every`` and ``keep_checkpoints`` may change. A newer checkpoint that
    is not complete is skipped with a CheckpointWarning naming it and the one used.

    Example::

        run = rnnkit.api.resume("runs/sun")   # same as: rnnkit fit --resume runs/sun
    """
    unknown = sorted(set(overrides) - set(RESUME_OPTIONS))
    if unknown:
        raise ConfigError(f"resume continues with the run's own options; {unknown} cannot "
                          f"change (only {', '.join(RESUME_OPTIONS)} can).")
    folder = Path(run)
    # first: another process may be writing the record right now (DDP ranks other than 0 only
    # read, while rank 0 holds the lock)
    with run_lock(folder) if distributed.main_process() else contextlib.nullcontext():
        path = folder / checkpoint.FOLDER / checkpoint.RECORD
        if not path.is_file():
            done = (folder / "model.safetensors").is_file()
            raise CheckpointError(
                f"{folder}: nothing to resume ("
                + ("the run finished: its model is saved" if done else
                   f"no {checkpoint.FOLDER}/{checkpoint.RECORD}")
                + f"); to train again: rnnkit fit DATA --out {folder}.")
        record = checkpoint.loads(path)
        try:
            if record.get("kind") != "rnnkit-run-record" or record.get("format") != 1:
                raise CheckpointError(f"{path}: not an rnnkit run record.")
            mcfg = from_dict(ModelConfig, record["model"])
            options = {**record["options"], **overrides}
        except (AttributeError, KeyError, TypeError, ConfigError) as exc:
            raise CheckpointError(f"{path}: invalid ({exc}).") from None
        snap, skipped = checkpoint.latest_complete(folder)
        if snap is None:
            why = f" ({skipped[0][1]})" if skipped else ""
            raise CheckpointError(f"{folder}: no complete checkpoint to resume from{why}; start "
                                  f"the run again with rnnkit fit DATA --out {folder}.")
        if distributed.main_process():
            resume_rules.set_aside_skipped(folder, snap, skipped)
        stored = sum(t.numel() * t.element_size() for k, t in snap.tensors.items()
                     if k.startswith("model."))
        if min_weight_bytes(mcfg) > stored:
            # before anything is built: an edited run.json must not allocate a huge model
            raise CheckpointError(f"{path}: the model it describes needs at least "
                                  f"{min_weight_bytes(mcfg)} bytes of weights; {snap.source} "
                                  f"holds {stored}. The files do not belong together.")
        data, target, features, time = _resume_source(folder, record["source"], data, target)
        return _fit(data, target, features, time, folder, callbacks, options,
                    _Resume(folder, record, snap))


def _resume_source(run: Path, src: dict, data: Any, target: Any) -> tuple:
    """(data, target, features, time) of the run's data, checked to be unchanged."""
    if src.get("kind") != "file":
        if data is None:
            raise DataError(f"{run} was fitted on in-memory data; pass the same data (and "
                            "target) again: rnnkit.api.resume(run, data=..., target=...).")
        return data, target if target is not None else src.get("target"), src.get(
            "features") or None, src.get("time")
    path = Path(data if data is not None else src["path"])
    if not path.is_file():
        raise DataError(f"{path}: the data file of run {run} is not there; if it moved, pass "
                        f"its new path: rnnkit fit NEW_PATH --resume {run}.")
    if resume_rules.fingerprint(path) != src["fingerprint"]:
        raise DataError(f"{path} is not the file run {run} was trained on (its size or sha256 "
                        "differs from the record); resuming on other data would not continue "
                        "the same training. Restore the file, or start a new run.")
    return str(path), src["target"], src["features"] or None, src["time"]


def _record(source: dict, data: Any, options: dict, mcfg: ModelConfig, pipeline: dict) -> dict:
    """run.json: everything resume needs to rebuild this fit and check it is the same."""
    src = {k: source.get(k) for k in ("kind", "path", "target", "features", "time", "id")}
    if source["kind"] == "file":
        src["fingerprint"] = resume_rules.fingerprint(Path(data))
    return {"format": 1, "kind": "rnnkit-run-record", "source": src, "options": options,
            "model": to_dict(mcfg), "pipeline": pipeline}


def _fit(data: Any, target: Any, features: list[str] | None, time: str | None,
         out: str | Path | None, callbacks: list[Callback] | None, options: dict,
         plan: _Resume | None) -> Run:
    """The body of ``fit``; ``plan`` continues an interrupted run from its checkpoint."""
    d_opts, m_opts, t_opts = split_options(options)
    for key in ("target", "features", "time"):
        d_opts.pop(key, None)
    m_opts.pop("window", None)
    m_opts.pop("horizon", None)
    for key in ("input_size", "output_size", "head"):
        if key in m_opts:
            raise ConfigError(f"{key} is derived from the data; do not set it.")
    tcfg = TrainConfig(**t_opts)
    source: dict[str, Any] = {"kind": "inline"}
    if isinstance(data, str | Path):
        source = {"kind": "file", "path": str(Path(data).resolve())}

    if _is_sequence_data(data, target, d_opts.get("shape"), d_opts.get("prompt_length")):
        seqs = as_sequences(data)
        if "shape" not in d_opts:
            d_opts["shape"] = ("seq2one" if target is not None
                               else "continuation" if d_opts.get("prompt_length") else "next")
        dcfg = DataConfig(**d_opts)
        targets = as_targets(target, len(seqs)) if dcfg.shape == "seq2one" else None
        pipe: SeriesPipeline | SequencePipeline = SequencePipeline.fit(seqs, targets, dcfg)
        parts = pipe.split_indices(len(seqs))
        train_pairs = pipe.pairs(seqs, targets, parts["train"])
        val_pairs = pipe.pairs(seqs, targets, parts["val"])
        head = "last" if dcfg.shape == "seq2one" else "step"
        mcfg = ModelConfig(**{"linear_path": head == "step", **m_opts, "input_size":
                              pipe.n_features, "output_size": pipe.n_outputs, "head": head,
                              "horizon": 1, "window": None})
        kept = {"seqs": seqs, "targets": targets}
        kind = "sequences"
    elif isinstance(data, str | Path | pd.DataFrame) and is_panel(data, d_opts.get("id")):
        from rnnkit.data.panel_windows import PanelPipeline

        panel = read_panel(data, d_opts.get("id"), time, target, features, d_opts.get("fill"))
        source.update({"target": panel.targets, "features": panel.features,
                       "time": panel.time_name, "id": panel.id_name,
                       "fill": d_opts.get("fill"), "name": panel.source})
        dcfg = DataConfig(**{**d_opts, "id": panel.id_name, "target": panel.targets,
                             "features": panel.features, "time": panel.time_name})
        pipe, panel = PanelPipeline.fit(panel, dcfg, dcfg.skip_short)
        tensor = pipe.tensor(panel)
        train_pairs = pipe.pairs(tensor, pipe.segments("train", panel.offsets))
        val_pairs = pipe.pairs(tensor, pipe.segments("val", panel.offsets))
        mcfg = ModelConfig(**{**m_opts, "input_size": panel.values.shape[1],
                              "output_size": len(panel.targets), "head": "last",
                              "horizon": pipe.horizon, "window": pipe.window})
        kept = {"panel": panel}
        kind = "panel"
    else:
        from rnnkit.data.read import read_table

        table = read_table(data, target=target, features=features, time=time,
                           fill=d_opts.get("fill"))
        source.update({"target": table.targets, "features": table.features,
                       "time": time, "fill": d_opts.get("fill"), "name": table.source})
        dcfg = DataConfig(**{**d_opts, "target": table.targets, "features": table.features,
                             "time": time})
        pipe = SeriesPipeline.fit(table.values, table.targets, table.features, dcfg,
                                  source=table.source)
        n = len(table.values)
        tensor = pipe.tensor(table.values)
        train_pairs = pipe.pairs(tensor, pipe.origins("train", n))
        val_pairs = pipe.pairs(tensor, pipe.origins("val", n))
        head = "last" if pipe.shape == "window" else "step"
        mcfg = ModelConfig(**{**m_opts, "input_size": table.values.shape[1],
                              "output_size": len(table.targets), "head": head,
                              "horizon": pipe.horizon if head == "last" else 1,
                              "window": pipe.window})
        kept = {"values": table.values, "index": table.index, "notes": table.notes}
        kind = "series"

    objective = tcfg.objective
    if objective == "auto":
        objective = {"window": "last", "seq2one": "last", "next": "teacher",
                     "continuation": "closed_loop"}[dcfg.shape]
    if objective == "closed_loop" and dcfg.shape != "continuation":
        raise ConfigError("objective='closed_loop' needs shape='continuation' with prompt_length.")
    if (objective == "last") != (mcfg.head == "last"):
        raise ConfigError(f"objective={objective!r} does not fit shape={dcfg.shape!r}.")

    if plan is not None:
        plan.check(mcfg, pipe.to_json())
    world = distributed.join(tcfg.device)
    distributed.autocast(world, tcfg.precision)  # refused here, before anything is written
    if world.distributed and objective == "closed_loop":
        raise ConfigError("objective='closed_loop' generates through the model's own loop, "
                          "which DDP does not wrap; train continuation runs in one process.")
    torch.manual_seed(tcfg.seed)
    model = RecurrentNet(mcfg)
    groups = prepare(model, train_pairs, tcfg.lr)  # on CPU: the least-squares start
    if world.device.type != "cpu":
        # the whole data buffer moves once; windows are views of it there too
        model.to(world.device)
        if kind == "sequences":
            train_pairs, val_pairs = train_pairs.to(world.device), val_pairs.to(world.device)
        else:
            tensor = tensor.to(world.device)
            if kind == "panel":
                train_pairs = pipe.pairs(tensor, train_pairs.index)
                val_pairs = pipe.pairs(tensor, val_pairs.index)
            else:
                train_pairs = pipe.pairs(tensor, pipe.origins("train", n))
                val_pairs = pipe.pairs(tensor, pipe.origins("val", n))
    if tcfg.windows_per_epoch and len(val_pairs) > tcfg.windows_per_epoch:
        # an epoch sees a sample of the training windows; validating on all of a huge panel
        # would cost more than the epoch, so a fixed sample of as many is scored every epoch
        val_pairs = val_pairs.sample(tcfg.windows_per_epoch, tcfg.seed)
    loss = objectives.pick(objective, dcfg.prompt_length)
    record = None
    if out is not None and plan is None and world.main:
        record = _record(source, data, options, mcfg, pipe.to_json())
    resumed = None if plan is None else plan.snapshot
    with checkpoint.session(out, tcfg, record, resumed, writer=world.main) as ckpt:
        history = train(model, train_pairs, val_pairs, tcfg, loss, callbacks, groups, ckpt,
                        resumed, world)
    model.cpu().eval()  # results, files and later use are on CPU, whatever trained it
    if not world.main:
        out = None  # only rank 0 evaluates and writes the run

    config = {
        "kind": kind, "data": to_dict(dcfg), "model": to_dict(mcfg), "train": to_dict(tcfg),
        "objective": objective, "pipeline": pipe.to_json(), "source": source,
        "training": {"best_epoch": history.best_epoch, "stop_reason": history.stop_reason,
                     "seconds": round(history.seconds, 3),
                     "still_improving": history.still_improving},
    }
    if plan is not None:
        snap = plan.snapshot
        config["training"]["resumed_from"] = None if snap.source is None else snap.source.name
    if kind == "panel":
        from rnnkit.panels import PanelRun

        config["panel"] = {"ids": panel.ids, "id": panel.id_name, "time": panel.time_name,
                           "clock": time_info(panel.times if panel.time_name else None,
                                            panel.offsets)}
        config["notes"] = panel.notes
        run: Run = PanelRun(model, pipe, config, history.records, data=kept)
        run._tensor = tensor.cpu()  # type: ignore[attr-defined]
        del train_pairs, val_pairs, tensor
        return _finish(run, out, world.main)
    if kind == "series":
        need = pipe.window + int(pipe.diff)
        config["tail"] = {"values": kept["values"][-need:].astype(float).tolist(),
                          "index": index_info(kept["index"])}
        config["notes"] = kept["notes"]
    return _finish(Run(model, pipe, config, history.records, data=kept), out, world.main)


def _finish(run: Run, out: str | Path | None, main: bool = True) -> Run:
    """Evaluate, and save into the run folder when there is one (rank 0 only, under DDP)."""
    if not main:
        return run
    run.evaluate()
    if out is not None:
        run.save(out)
        checkpoint.finish(out)  # the run folder now holds the final model
    return run


__all__ = ["fit", "resume"]
