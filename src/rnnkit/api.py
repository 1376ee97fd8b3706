"""``rnnkit.fit``: from data to a trained, evaluated Run, in one call; ``resume`` continues
an interrupted one from its run folder.

read -> validate -> pairs/windows -> scale -> model -> train -> evaluate -> (save)
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from rnnkit import refits
from rnnkit.analysis import analyse
from rnnkit.config import (
    DataConfig,
    ModelConfig,
    TrainConfig,
    from_dict,
    split_options,
    to_dict,
)
from rnnkit.data.pipeline import Encoded, Pipeline
from rnnkit.errors import CheckpointError, ConfigError, DataError
from rnnkit.evaluate.findings.beside import Beside
from rnnkit.evaluate.findings.control import control_task
from rnnkit.kinds import KINDS, kind_of
from rnnkit.lock import run_lock
from rnnkit.models.ensemble import Members
from rnnkit.models.least_squares import least_squares_start, param_groups
from rnnkit.models.network import RecurrentNet
from rnnkit.persist import min_weight_bytes
from rnnkit.runs import Run
from rnnkit.train import budget, checkpoint, distributed, objectives
from rnnkit.train import resume as resume_rules
from rnnkit.train.callbacks import Callback
from rnnkit.train.guard import guard
from rnnkit.train.loop import train
from rnnkit.train.snapshot import Snapshot
from rnnkit.train.threads import thread_count, threads_for


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
        run = _fit_or_continue(data, target, features, time, out, callbacks, options)
    except BaseException:
        distributed.leave()
        raise
    distributed.leave(together=True)  # every rank ended well: leave the group at once
    return run


def _fit_or_continue(data: Any, target: Any, features: list[str] | None, time: str | None,
                     out: str | Path | None, callbacks: list[Callback] | None,
                     options: dict) -> Run:
    if out is not None and distributed.restarted() and resume_rules.resumable(out):
        # torchrun --max-restarts started this worker again: continue, do not start over
        return _resume_restarted(out, data, callbacks, options)
    if out is None or not distributed.main_process():
        # (other DDP processes write nothing; rank 0 holds the folder's lock)
        return _fit(data, target, features, time, out, callbacks, options, None)
    # run_lock removes the folders it created if they are still empty when it is released:
    # bad input is refused before anything is written, and leaves nothing behind
    with run_lock(out):
        if not distributed.restarted():
            resume_rules.refuse_unfinished(out)
        return _fit(data, target, features, time, out, callbacks, options, None)


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


@dataclass
class _Prepared:
    """The data side of a fit, the same for every kind: the data read and checked, its
    pipeline and the data in model units."""

    kind: str
    source: dict
    dcfg: DataConfig
    pipe: Pipeline
    data: Any
    encoded: Encoded
    notes: list[str] = field(default_factory=list)  # choices made here, for the fit's output


def _prepare(data: Any, target: Any, features: list[str] | None, time: str | None,
             d_opts: dict) -> _Prepared:
    """read -> validate -> pipeline fitted on the training part -> encoded, for any kind."""
    name = kind_of(data, d_opts)
    kind = KINDS[name]
    source: dict[str, Any] = {"kind": "inline"}
    if isinstance(data, str | Path):
        source = {"kind": "file", "path": str(Path(data).resolve())}
    dataset, learned, found = kind.read(data, target, features, time, d_opts)
    source.update(found)
    dcfg = DataConfig(**{**d_opts, **learned})
    pipe, dataset = kind.pipeline.fit(dataset, dcfg)
    return _Prepared(name, source, dcfg, pipe, dataset, pipe.encode(dataset))


def _objective(tcfg: TrainConfig, dcfg: DataConfig, mcfg: ModelConfig) -> str:
    """The training objective: the user's, or the one the problem shape calls for."""
    objective = tcfg.objective
    if objective == "auto":
        objective = {"window": "last", "seq2one": "last", "next": "teacher",
                     "continuation": "closed_loop"}[dcfg.shape]
    if objective == "closed_loop" and dcfg.shape != "continuation":
        raise ConfigError("objective='closed_loop' needs shape='continuation' with prompt_length.")
    if (objective == "last") != (mcfg.head == "last"):
        raise ConfigError(f"objective={objective!r} does not fit shape={dcfg.shape!r}.")
    if mcfg.loss != "mse" and dcfg.shape in ("seq2one", "continuation"):
        raise ConfigError(f"loss={mcfg.loss!r} learns a forecast distribution for series and "
                          f"panels; shape={dcfg.shape!r} (a sequence run) trains with mse.")
    return objective


def _model_options(options: dict) -> tuple[dict, dict, TrainConfig]:
    """(data options, model options, train config) of the flat options of ``fit``."""
    d_opts, m_opts, t_opts = split_options(options)
    for key in ("target", "features", "time"):
        d_opts.pop(key, None)
    for key in ("input_size", "output_size", "head", "categories", "embedding_sizes"):
        if key in m_opts:
            raise ConfigError(f"{key} is derived from the data; do not set it.")
    return d_opts, m_opts, TrainConfig(**t_opts)


def _fit(data: Any, target: Any, features: list[str] | None, time: str | None,
         out: str | Path | None, callbacks: list[Callback] | None, options: dict,
         plan: _Resume | None) -> Run:
    """The body of ``fit``; ``plan`` continues an interrupted run from its checkpoint."""
    d_opts, m_opts, tcfg = _model_options(options)
    prep = refits.validated_window(refits.validated_calendar(
        _prepare(data, target, features, time, d_opts), d_opts), d_opts)
    kind, pipe = KINDS[prep.kind], prep.pipe
    tcfg = budget.resolve(tcfg, len(pipe.pairs(prep.encoded, "train")))
    mcfg = ModelConfig(**{**kind.model_defaults(pipe), **m_opts,
                          **kind.model_shape(pipe, prep.data)})
    objective = _objective(tcfg, prep.dcfg, mcfg)
    if plan is not None:
        plan.check(mcfg, pipe.to_json())
    # one thread for a small model, also after training: plots, backtest and calibration of
    # such a model ran slower on two threads (1.3 against 0.9 s on the 5,000-row daily fit)
    with thread_count(threads_for(mcfg, tcfg.batch_size, tcfg.threads)):
        return _train(data, prep, mcfg, tcfg, objective, out, callbacks, options, plan)


def _train(data: Any, prep: _Prepared, mcfg: ModelConfig, tcfg: TrainConfig, objective: str,
           out: str | Path | None, callbacks: list[Callback] | None, options: dict,
           plan: _Resume | None) -> Run:
    """Train, evaluate and (with ``out``) save: the rest of ``_fit``, on its threads."""
    kind, pipe = KINDS[prep.kind], prep.pipe
    world = distributed.join(tcfg.device)
    distributed.autocast(world, tcfg.precision)  # refused here, before anything is written
    if world.distributed and objective == "closed_loop":
        raise ConfigError("objective='closed_loop' generates through the model's own loop, "
                          "which DDP does not wrap; train continuation runs in one process.")
    train_pairs = pipe.pairs(prep.encoded, "train")
    model, groups = _build(mcfg, tcfg, objective, train_pairs)  # on CPU, before any move
    encoded = prep.encoded.to(world.device)  # the whole buffer moves once; windows stay views
    model.to(world.device)
    if encoded is not prep.encoded:
        train_pairs = pipe.pairs(encoded, "train")
    val_pairs = pipe.pairs(encoded, "val")
    if tcfg.windows_per_epoch and len(val_pairs) > tcfg.windows_per_epoch:
        # an epoch sees a sample of the training windows; validating on all of a huge panel
        # would cost more than the epoch, so a fixed sample of as many is scored every epoch
        val_pairs = val_pairs.sample(tcfg.windows_per_epoch, tcfg.seed)
    loss = objectives.pick(objective, prep.dcfg.prompt_length, mcfg.loss, mcfg.quantiles,
                           mcfg.ensemble)
    record = None
    if out is not None and plan is None and world.main:
        record = _record(prep.source, data, options, mcfg, pipe.to_json())
    resumed = None if plan is None else plan.snapshot
    beside = _control_beside(prep, mcfg, tcfg, objective, out, world)
    try:
        with checkpoint.session(out, tcfg, record, resumed, writer=world.main) as ckpt:
            history = train(model, train_pairs, val_pairs, tcfg, loss, callbacks, groups, ckpt,
                            resumed, world)
        control = None if beside is None else beside.result()
    finally:
        if beside is not None:
            beside.stop()
    del train_pairs, val_pairs, encoded
    model.cpu().eval()  # results, files and later use are on CPU, whatever trained it
    config = _config(prep, mcfg, tcfg, objective, history, plan)
    if isinstance(model, Members):
        config["ensemble"] = model.scores(pipe.pairs(prep.encoded, "val"))
        model = model.collapse().eval()
    config["notes"] = [*config.get("notes", []), *prep.notes]
    if tcfg.guard and prep.kind == "series" and world.main:
        _, m_opts, asked = _model_options(options)
        config["guard"] = guard(model, pipe, prep.encoded, refits.earlier_cuts(
            prep, m_opts, asked, objective, _build))
        said = config["guard"].get("note")
        config["notes"] = [*config.get("notes", []), *([said] if said else [])]
    run = Run(model, pipe, config, history.records, prep.encoded, kind.tail(pipe, prep.data))
    run.control = control
    return _finish(run, out) if world.main else run  # only rank 0 evaluates and writes


def _control_beside(prep: _Prepared, mcfg: ModelConfig, tcfg: TrainConfig, objective: str,
                    out: str | Path | None, world: Any) -> Beside | None:
    """The doctor's shuffled-target control, started in a child process beside training when
    a core would otherwise idle (``evaluate/findings/beside.py``); None otherwise."""
    if out is None or not world.main or not Beside.wanted(world.device, world.distributed):
        return None
    pipe = prep.pipe
    task = control_task(replace(mcfg, ensemble=1), to_dict(tcfg), objective,
                        prep.dcfg.prompt_length, pipe.pairs(prep.encoded, "train"),
                        pipe.pairs(prep.encoded, "val"))
    return None if task is None else Beside(task)


def _build(mcfg: ModelConfig, tcfg: TrainConfig, objective: str, train_pairs: Any
           ) -> tuple[torch.nn.Module, list[dict] | None]:
    """The model to train and its optimiser groups: one network started at the least-squares
    linear AR, or ``mcfg.ensemble`` such members packed side by side."""
    if mcfg.ensemble > 1:
        if objective != "last" or mcfg.loss != "mse":
            raise ConfigError(f"ensemble={mcfg.ensemble} trains window forecasts with loss mse; "
                              f"this run has objective {objective!r} and loss {mcfg.loss!r}. "
                              "Drop --ensemble, or the other option.")
        members = Members(mcfg, tcfg.seed, train_pairs)
        return members, members.param_groups(tcfg.lr)
    torch.manual_seed(tcfg.seed)
    model = RecurrentNet(mcfg)
    started = least_squares_start(model, train_pairs)
    return model, param_groups(model, tcfg.lr) if started else None


def _config(prep: _Prepared, mcfg: ModelConfig, tcfg: TrainConfig, objective: str,
            history: Any, plan: _Resume | None) -> dict:
    """What config.json holds: every choice made, and what forecasts start from."""
    config = {
        "kind": prep.kind, "data": to_dict(prep.dcfg), "model": to_dict(mcfg),
        "train": to_dict(tcfg), "objective": objective, "pipeline": prep.pipe.to_json(),
        "source": prep.source,
        "training": {"best_epoch": history.best_epoch, "stop_reason": history.stop_reason,
                     "seconds": round(history.seconds, 3), "threads": torch.get_num_threads(),
                     "still_improving": history.still_improving},
    }
    if plan is not None:
        snap = plan.snapshot
        config["training"]["resumed_from"] = None if snap.source is None else snap.source.name
    config.update(KINDS[prep.kind].describe(prep.pipe, prep.data))
    return config


def _finish(run: Run, out: str | Path | None) -> Run:
    """Calibrate the intervals and evaluate; with a run folder, save there, then diagnose,
    plot and report into it."""
    run.calibrate()
    run.evaluate()
    if out is not None:
        run.save(out, plots=False)
        analyse(run, out)
        checkpoint.finish(out)  # the run folder now holds the final model
    return run


__all__ = ["fit", "resume"]
