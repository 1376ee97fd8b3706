"""``rnnkit tune`` and ``rnnkit.tune``: search the model's hyperparameters with Optuna.

Each trial is an ordinary ``rnnkit.fit`` without a run folder, scored by its best validation
loss (the test part stays untouched for the final report). A TPE sampler proposes, a median
pruner stops trials whose per-epoch validation loss lags the others. The study lives in SQLite
inside the output folder, so running the same command again continues it.

Why here, in ``cli``: the module is the tune command and its library function in one place, and
it sits in the last layer of the data flow (it only calls ``fit`` and ``load``). Optuna, torch
and pandas load inside the functions, so ``rnnkit --help`` stays instant and works without the
``tune`` extra.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any

from rnnkit.cli import tune_report

if TYPE_CHECKING:
    from rnnkit.runs import Run
    from rnnkit.train.callbacks import Callback

STUDY_NAME = "rnnkit-tune"  # fixed, so the same command finds its study again
WARMUP_EPOCHS = 3  # epochs every trial runs before the pruner may stop it
CELLS = ("rnn", "lstm", "gru")
WINDOWS = (6, 12, 24, 48)
# the ranges searched; ``tune(space=...)`` narrows any of them (tests keep models tiny)
SPACE: dict[str, tuple] = {
    "cell": CELLS,
    "hidden_size": (8, 128),  # log scale
    "num_layers": (1, 3),
    "window": WINDOWS,
    "lr": (1e-4, 3e-2),  # log scale
    "dropout": (0.0, 0.5),  # only drawn with num_layers >= 2: one layer refuses dropout
    "weight_decay": (1e-8, 1e-2),  # log scale: small values matter as much as large ones
}


@dataclass
class TuneResult:
    """What ``tune`` returns: the best run (also saved in ``folder/best``) and the study."""

    best: Run
    best_value: float
    best_params: dict[str, Any]
    best_trial: int
    counts: dict[str, int]  # trials in the study by state: COMPLETE, PRUNED, FAIL, ...
    folder: Path
    storage: str
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """A few lines: best value and params, and where everything is."""
        counts = ", ".join(f"{n} {s.lower()}" for s, n in sorted(self.counts.items()))
        params = " ".join(f"{k}={_short(v)}" for k, v in sorted(self.best_params.items()))
        f = self.folder
        return "\n".join([
            *self.notes,
            f"trials in the study: {sum(self.counts.values())} ({counts})",
            f"best trial {self.best_trial}: validation loss {self.best_value:.6g}",
            f"best params: {params}",
            f"best run: {f / 'best'} (rnnkit evaluate {f / 'best'})",
            f"trials: {f / 'trials.csv'}; plots: {f / 'history.png'}, {f / 'importances.png'}",
            f"study: {self.storage} (run the same command again to add trials)",
        ])


def _short(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def tune(data: Any, target: Any = None, *, trials: int, out: str | Path,
         features: list[str] | None = None, time: str | None = None,
         max_seconds: float | None = None, jobs: int = 1, storage: str | None = None,
         space: dict[str, tuple] | None = None, startup_trials: int = 5,
         quiet: bool = False, **options: Any) -> TuneResult:
    """Search cell, hidden_size, num_layers, window, lr, dropout and weight_decay with Optuna.

    data, target, features, time, options: as for ``rnnkit.fit``; options the user gives
        (``epochs=30``, ``cell='gru'``...) stay fixed in every trial and leave the search.
    trials: trials to add to the study (``max_seconds`` may stop it sooner).
    out: folder holding ``study.db`` (continued when it exists), ``best/`` (an ordinary run
        folder), ``trials.csv``, ``history.png`` and ``importances.png``.
    jobs: trials run in parallel threads; torch then gets ``cpus // jobs`` threads.
    storage: an Optuna storage URL shared by several machines instead of ``out/study.db``.
    space: narrower ranges by name, e.g. ``{"hidden_size": (4, 16)}``.
    startup_trials: completed trials before the median pruner starts pruning.

    Example::

        result = rnnkit.tune("sun.csv", target="sunspot_number", trials=20, out="tuned",
                             epochs=30)
        result.best.forecast(12)

    Ctrl-C keeps every finished trial: the table and plots are written for them, then
    KeyboardInterrupt propagates.
    """
    folder = Path(out)
    spec = _Spec(data, target, features, time, {**options, "quiet": True},
                 {**SPACE, **(space or {})}, "")
    spec.kind = _check(spec, trials, jobs, folder)  # every refusal comes before any trial
    optuna = _optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial is ours
    folder.mkdir(parents=True, exist_ok=True)
    url = storage or f"sqlite:///{(folder / 'study.db').resolve()}"
    study = _study(url, options.get("seed", 0), startup_trials)
    import torch

    from rnnkit.errors import RnnkitError

    threads = torch.get_num_threads()
    if jobs > 1 and "threads" not in options:
        # trials share the process: each fit's thread policy must leave the others' cores
        spec.options["threads"] = max(1, len(os.sched_getaffinity(0)) // jobs)
    try:
        study.optimize(lambda trial: _objective(trial, spec), n_trials=trials,
                       timeout=max_seconds, n_jobs=jobs, catch=(RnnkitError,),
                       callbacks=[] if quiet else [_progress])
    except KeyboardInterrupt:
        tune_report.write(study, folder)  # what finished is in the database already
        raise
    finally:
        torch.set_num_threads(threads)  # the caller's setting, for whatever it runs next
    notes = tune_report.write(study, folder)
    return _best(study, spec, folder, url, notes)


def _optuna() -> Any:
    """Optuna, or a one-line error saying how to get it (it is an optional extra)."""
    try:
        import optuna
    except ImportError:
        from rnnkit.errors import ConfigError

        raise ConfigError("tuning needs Optuna, which is not installed; install it with "
                          "pip install 'rnnkit[tune]'.") from None
    return optuna


@dataclass
class _Spec:
    """The fixed part of every trial: data, the user's options, the space left to search."""

    data: Any
    target: Any
    features: list[str] | None
    time: str | None
    options: dict[str, Any]
    space: dict[str, tuple]
    kind: str


def _check(spec: _Spec, trials: int, jobs: int, folder: Path) -> str:
    """Refuse bad counts, a file as folder and bad data the way ``fit`` does; return the kind."""
    from rnnkit.config import DataConfig, ModelConfig, TrainConfig, split_options
    from rnnkit.errors import ConfigError
    from rnnkit.kinds import KINDS, kind_of

    for name, value in (("trials", trials), ("jobs", jobs)):
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"--{name} {value}: expected a whole number >= 1, e.g. "
                              f"--{name} {20 if name == 'trials' else 2}.")
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--out {folder} is a file; tune writes a folder (study.db, best/, "
                          "trials.csv, plots): give a folder path.")
    d_opts, m_opts, t_opts = split_options(spec.options)  # unknown names are refused here
    TrainConfig(**t_opts)
    # the fixed model options, with stand-ins for what the data and the search decide
    ModelConfig(**{"window": 12, "num_layers": _min_layers(spec), **m_opts})
    kind = kind_of(spec.data, d_opts)
    # the cheapest full check of the data: read, validate and fit the pipeline once, no model
    dataset, learned, _ = KINDS[kind].read(spec.data, spec.target, spec.features, spec.time,
                                          d_opts)
    KINDS[kind].pipeline.fit(dataset, DataConfig(**{**d_opts, **learned}))
    return kind


def _study(url: str, seed: int, startup_trials: int) -> Any:
    import optuna

    # no pruning on the first epochs: epoch 0 is the untrained model, and early losses rank
    # trials by their start more than by where they end
    pruner = optuna.pruners.MedianPruner(n_startup_trials=startup_trials,
                                         n_warmup_steps=WARMUP_EPOCHS)
    study = optuna.create_study(study_name=STUDY_NAME, storage=url, load_if_exists=True,
                                direction="minimize", pruner=pruner)
    # seeded, and offset by the trials already there: a continued study with the same seed
    # would otherwise draw its random start-up trials again, the same as the first run's
    study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials))
    return study


def _min_layers(spec: _Spec) -> int:
    """A dropout the user fixed acts between layers: then every trial needs two or more."""
    return 2 if spec.options.get("dropout") else 1


def suggest(trial: Any, spec: _Spec) -> dict[str, Any]:
    """One point of the search space; options the user fixed are not searched."""
    s, fixed = spec.space, spec.options
    params: dict[str, Any] = {}
    if "cell" not in fixed:
        params["cell"] = trial.suggest_categorical("cell", list(s["cell"]))
    if "hidden_size" not in fixed:
        params["hidden_size"] = trial.suggest_int("hidden_size", *s["hidden_size"], log=True)
    if "num_layers" not in fixed:
        low, high = s["num_layers"]
        params["num_layers"] = trial.suggest_int("num_layers", max(low, _min_layers(spec)),
                                                 max(high, _min_layers(spec)))
    if "window" not in fixed and spec.kind != "sequences":  # sequences have no window
        params["window"] = trial.suggest_categorical("window", list(s["window"]))
    if "lr" not in fixed:
        params["lr"] = trial.suggest_float("lr", *s["lr"], log=True)
    layers = params.get("num_layers", fixed.get("num_layers", 1))
    if "dropout" not in fixed and layers >= 2:
        params["dropout"] = trial.suggest_float("dropout", *s["dropout"])
    if "weight_decay" not in fixed:
        params["weight_decay"] = trial.suggest_float("weight_decay", *s["weight_decay"],
                                                     log=True)
    return params


def pruning_callback(trial: Any) -> Callback:
    """A Callback reporting each epoch's validation loss to ``trial``; when the pruner says
    so it stops the fit (a flag, as early stopping does) and sets ``pruned``."""
    from rnnkit.train.callbacks import Callback, LoopState

    class Pruning(Callback):
        pruned = False

        def on_epoch_end(self, state: LoopState) -> None:
            trial.report(float(state.records[-1]["val_loss"]), state.epoch)
            if trial.should_prune():
                self.pruned, state.stop = True, True
                state.stop_reason = "pruned by the tuner"

    return Pruning()


def _objective(trial: Any, spec: _Spec) -> float:
    """Fit with the trial's params, no run folder; the score is the best validation loss."""
    import optuna

    from rnnkit.api import fit

    params = suggest(trial, spec)
    report = pruning_callback(trial)
    started = perf_counter()
    run = fit(spec.data, target=spec.target, features=spec.features, time=spec.time,
              callbacks=[report], **{**spec.options, **params})
    trial.set_user_attr("seconds", round(perf_counter() - started, 3))
    if getattr(report, "pruned", False):
        raise optuna.TrialPruned(f"pruned at epoch {len(run.history) - 1}")
    return min(float(r["val_loss"]) for r in run.history)


def _progress(study: Any, trial: Any) -> None:
    value = "" if trial.value is None else f" validation loss {trial.value:.6g}"
    params = " ".join(f"{k}={_short(v)}" for k, v in sorted(trial.params.items()))
    print(f"trial {trial.number} {trial.state.name.lower()}{value} ({params})", file=sys.stderr,
          flush=True)


def _best(study: Any, spec: _Spec, folder: Path, url: str, notes: list[str]) -> TuneResult:
    """Refit the best trial into ``folder/best`` (same seed and options: the same model)."""
    import shutil

    import optuna

    from rnnkit.api import fit
    from rnnkit.errors import TrainingError

    states = [t.state.name for t in study.trials]
    if "COMPLETE" not in states:
        raise TrainingError(f"no trial completed ({len(states)} in the study); see the trial "
                            f"lines above, then run the same command again.")
    best = study.best_trial
    staging = folder / "best.new"  # the old best stays whole until the new one is saved
    shutil.rmtree(staging, ignore_errors=True)
    options = {**spec.options, **best.params, "quiet": True}
    fit(spec.data, target=spec.target, features=spec.features, time=spec.time, out=staging,
        **options)
    shutil.rmtree(folder / "best", ignore_errors=True)
    staging.rename(folder / "best")
    from rnnkit.runs import load

    counts = {s.name: states.count(s.name) for s in optuna.trial.TrialState
              if s.name in states}
    return TuneResult(load(folder / "best"), float(best.value), dict(best.params),
                      best.number, counts, folder, url, notes)


# --- the command ---------------------------------------------------------------------------

def add_tune(sub: Any, command: Any) -> None:
    """Register ``rnnkit tune``; ``command`` makes a subparser the way main.py does."""
    from rnnkit.cli.options import add_training_options

    c = command(sub, "tune", "Search hyperparameters with Optuna (needs the tune extra: "
                "pip install 'rnnkit[tune]'); the best run is saved in OUT/best.")
    c.conflict_handler = "resolve"  # tune's --max-seconds bounds the search, not one fit
    c.add_argument("data", help="CSV or Parquet file")
    c.add_argument("--target", help="column(s) to predict, comma-separated")
    c.add_argument("--features", help="extra input columns, comma-separated")
    c.add_argument("--time", help="time column (default: detected)")
    add_training_options(c)
    g = c.add_argument_group("search (see docs/tuning.md)")
    g.add_argument("--trials", type=int, required=True, metavar="N",
                   help="trials to add to the study")
    g.add_argument("--max-seconds", dest="study_seconds", type=float, default=None,
                   metavar="S", help="stop starting trials after this many seconds")
    g.add_argument("--jobs", type=int, default=1, metavar="J",
                   help="trials in parallel threads (default 1)")
    g.add_argument("--storage", default=None, metavar="URL", help="Optuna storage URL shared "
                   "by several machines (default sqlite:///DIR/study.db)")
    g.add_argument("--out", required=True, metavar="DIR",
                   help="folder for the study, best/, trials.csv and the plots")
    c.set_defaults(func=cmd_tune)


def cmd_tune(args: argparse.Namespace) -> int:
    from rnnkit.cli.options import collect

    _optuna()  # without the extra, say so before reading anything
    target = args.target.split(",") if args.target and "," in args.target else args.target
    options = collect(args)
    options.pop("quiet", None)
    try:
        result = tune(args.data, target=target, trials=args.trials, out=args.out,
                      features=args.features.split(",") if args.features else None,
                      time=args.time, max_seconds=args.study_seconds, jobs=args.jobs,
                      storage=args.storage, quiet=args.quiet, **options)
    except KeyboardInterrupt:
        print(f"rnnkit: interrupted; finished trials are kept in the study, with "
              f"{args.out}/trials.csv: run the same command to continue", file=sys.stderr)
        return 130
    print(result.summary())
    return 0
