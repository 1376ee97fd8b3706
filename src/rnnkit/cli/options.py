"""Training options shared by ``fit`` and ``demo``: one name in Python and on the CLI
(``hidden_size`` <-> ``--hidden-size``). No torch import here: ``--help`` stays instant."""

from __future__ import annotations

import argparse
from typing import Any


def _split(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected three fractions like 0.7,0.15,0.15, got "
                                         f"{text!r}") from None


def _int_or_none(text: str) -> int | None:
    return None if text.lower() in ("none", "auto") else int(text)


# name, type, help. Defaults live in the config dataclasses; None here means "not given".
OPTIONS: list[tuple[str, Any, str]] = [
    ("cell", str, "rnn, lstm or gru (default lstm)"),
    ("activation", str, "rnn only: tanh, relu, identity, softplus, ... (default tanh)"),
    ("hidden_size", int, "hidden units per layer (default: series 4 to 32 by training windows, "
     "else 32)"),
    ("num_layers", int, "stacked recurrent layers (default 1)"),
    ("ensemble", int, "train K differently initialised networks side by side in one pass and "
     "average them (default 1; see docs/performance.md)"),
    ("dropout", float, "dropout between layers, needs num_layers >= 2 (default 0)"),
    ("window", _int_or_none, "input window length (default: from the detected period)"),
    ("horizon", int, "values forecast per window (default 1)"),
    ("shape", str, "window, next, seq2one or continuation (default window for series)"),
    ("warmup", int, "next-step shape: unscored priming steps (default 0)"),
    ("scaler", str, "standard, minmax or none (default standard)"),
    ("transform", str, "auto, diff or none: diff predicts changes (default auto)"),
    ("period", int, "seasonal period (default: detected from the autocorrelation)"),
    ("split", _split, "train,validation,test fractions by time (default 0.7,0.15,0.15)"),
    ("epochs", int, "maximum epochs (default: 5,000 optimizer steps, 10 to 200 "
     "epochs)"),
    ("batch_size", int, "batch size (default 64)"),
    ("lr", float, "Adam learning rate (default 3e-3)"),
    ("seed", int, "random seed; same seed gives identical weights on CPU (default 0)"),
    ("early_stopping", int, "patience in epochs on validation loss; 0 = off (default: "
     "1,000 steps, 5 to 20 epochs)"),
    ("lr_patience", int, "epochs without improvement before halving lr (default: 2/5 "
     "of the patience)"),
    ("clip", float, "gradient-norm clipping (default 1.0)"),
    ("objective", str, "auto, teacher, last or closed_loop (default auto)"),
    ("loss", str, "mse (a point forecast; default), gaussian or student_t (also learn a "
     "distribution, whose quantiles give the intervals; see docs/uncertainty.md)"),
    ("quantiles", str, "learn these quantiles with the pinball loss, e.g. 0.1,0.5,0.9 (the "
     "intervals come from them)"),
    ("max_seconds", float, "stop training after this many seconds"),
    ("windows_per_epoch", int, "train each epoch on this many windows drawn afresh from all "
     "(for very large panels; default all)"),
    ("device", str, "auto, cpu, cuda or cuda:N (default auto: CUDA when available)"),
    ("threads", int, "CPU threads (default: 1 for small models, all cores for large ones; "
     "see docs/performance.md)"),
    ("precision", str, "fp32, or bf16/fp16 autocast on CUDA (default fp32)"),
]


def add_training_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model and training options")
    for name, typ, help_text in OPTIONS:
        g.add_argument("--" + name.replace("_", "-"), dest=name, type=typ, default=None,
                       help=help_text)
    g.add_argument("--no-linear-path", dest="linear_path", action="store_false", default=None,
                   help="drop the linear path beside the recurrent one")
    g.add_argument("--no-guard", dest="guard", action="store_false", default=None,
                   help="keep the network as trained, even where a simple forecaster (ETS, "
                   "AR, last value...) or a combination scores better on validation")
    g.add_argument("--fill", choices=["ffill", "interpolate", "drop"], default=None,
                   help="how to fill missing values (default: refuse them)")
    g.add_argument("--duplicates", choices=["first", "last", "mean"], default=None,
                   help="how to combine rows with the same time (default: refuse them; "
                   "see docs/dates.md)")
    g.add_argument("--levels", default=None, metavar="L1,L2",
                   help="prediction interval levels in percent (default 80,95; none: no "
                   "intervals; see docs/uncertainty.md)")
    g.add_argument("--intervals", choices=["adaptive", "split"], default=None,
                   help="adaptive (default): scaled by the recent volatility and steered by "
                   "recent misses; split: one fixed split-conformal width per step")
    g.add_argument("--quiet", action="store_true", help="no progress bar")


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def add_covariate_options(p: argparse.ArgumentParser) -> None:
    """``fit`` only: covariates and their roles (see docs/covariates.md)."""
    g = p.add_argument_group("covariates (see docs/covariates.md)")
    g.add_argument("--future-features", dest="future_features", type=_names, default=None,
                   metavar="A,B", help="columns whose coming values are known (promotions, "
                   "planned prices); forecast then reads them from --future")
    g.add_argument("--calendar", default=None, metavar="auto|none|LIST",
                   help="calendar features of the dates: auto (default: those that fit the "
                   "frequency, kept when they help on validation), none, or a list of hour, "
                   "weekday, dayofyear, month")
    g.add_argument("--holidays", default=None, metavar="CC", help="add a public-holiday flag "
                   "for this country code (e.g. US, GB, DE)")
    g.add_argument("--static", dest="static", type=_names, default=None, metavar="A,B",
                   help="long format: columns constant within each series (store size, "
                   "region); text columns are categorical and embedded")


def add_panel_options(p: argparse.ArgumentParser) -> None:
    """``fit`` only: long-format panels and multi-process training (see docs/scaling.md)."""
    g = p.add_argument_group("panels and scale-out (see docs/scaling.md)")
    g.add_argument("--id", dest="id", default=None, help="long format: the column naming each "
                   "row's series (default unique_id, when the file has it)")
    g.add_argument("--skip-short", dest="skip_short", action="store_true", default=None,
                   help="long format: train without series too short for one window (they "
                   "are listed) instead of stopping")
    g.add_argument("--nproc", type=int, default=None, metavar="N", help="train with N "
                   "processes (PyTorch DDP, launched through torchrun)")
    g.add_argument("--max-restarts", dest="max_restarts", type=int, default=None, metavar="K",
                   help="with --nproc: restart the workers up to K times after a failure, "
                   "resuming from the last checkpoint (default 0)")


def add_checkpoint_options(p: argparse.ArgumentParser) -> None:
    """``fit`` only: checkpoints while training, and resuming an interrupted run."""
    g = p.add_argument_group("checkpoints (see docs/reliability.md)")
    g.add_argument("--checkpoint-every", dest="checkpoint_every", type=int, metavar="N",
                   default=None, help="save the training state every N epochs into "
                   "RUN/checkpoints (default: every epoch once training has run a minute; "
                   "0: only when interrupted by Ctrl-C or SIGTERM)")
    g.add_argument("--keep-checkpoints", dest="keep_checkpoints", type=int, metavar="K",
                   default=None, help="checkpoints kept on disk (default 3)")
    g.add_argument("--resume", metavar="RUN", default=None,
                   help="continue the interrupted run in folder RUN from its latest complete "
                   "checkpoint, with its own data and options")


def collect(args: argparse.Namespace) -> dict[str, Any]:
    """The options the user actually gave, by their Python names."""
    names = [o[0] for o in OPTIONS] + ["linear_path", "guard", "fill", "duplicates", "levels",
                                       "intervals", "checkpoint_every", "keep_checkpoints",
                                       "id", "skip_short", "future_features", "calendar",
                                       "holidays", "static"]
    out = {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
    if getattr(args, "quiet", False):
        out["quiet"] = True
    return out
