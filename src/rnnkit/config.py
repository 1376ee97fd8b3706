"""Configuration as small dataclasses, one per concern, each checking itself.

The effective configuration of a fit is written into the run folder (``config.json``) and is
everything needed to rebuild the model and its data pipeline. Option names are the same in
Python and on the command line (``hidden_size`` <-> ``--hidden-size``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from rnnkit.errors import ConfigError, did_you_mean

CELLS = ("rnn", "lstm", "gru")
SHAPES = ("window", "next", "seq2one", "continuation")
SCALERS = ("standard", "minmax", "none")
TRANSFORMS = ("auto", "diff", "none")
INTERVALS = ("adaptive", "split")
LOSSES = ("mse", "gaussian", "student_t", "pinball")
FILLS = ("ffill", "interpolate", "drop")
DUPLICATES = ("first", "last", "mean")
OBJECTIVES = ("auto", "teacher", "last", "closed_loop")
PRECISIONS = ("fp32", "bf16", "fp16")


def hidden_for(windows: int) -> int:
    """The default hidden size for ``windows`` training windows: about one unit per 12
    windows, a power of two from 4 to 32. Measured on the 100-year Nile series (54 training
    windows): at 32 units (4,500 parameters) the network drifts to predictions far outside its
    inputs on the test years; at 4 it does not."""
    size = 4
    while size < 32 and size * 2 * 12 <= windows:
        size *= 2
    return size


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(
            f"{name}={value!r} is not supported; expected one of {', '.join(choices)}."
            + did_you_mean(str(value), choices)
        )


def _positive(name: str, value: Any, *, allow_none: bool = False, zero: bool = False) -> None:
    if value is None and allow_none:
        return
    low = 0 if zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name}={value!r} must be an integer >= {low}.")


@dataclass
class DataConfig:
    """How the data becomes input/target pairs.

    shape: ``window`` (W past values -> next ``horizon`` values, for series), ``next`` (every
    step predicts the next one, first ``warmup`` steps unscored), ``seq2one`` (a variable-length
    sequence -> one value), ``continuation`` (``prompt_length`` seeds -> the rest, generated).
    ``window=None`` picks the window from the detected period; ``transform='auto'`` uses ``diff``
    when the training part has a strong linear trend.
    """

    shape: str = "window"
    target: list[str] = field(default_factory=list)
    features: list[str] = field(default_factory=list)
    time: str | None = None
    fill: str | None = None
    duplicates: str | None = None  # rows sharing a time: None refuses; first, last or mean
    window: int | None = None
    horizon: int = 1
    warmup: int = 0
    prompt_length: int = 0
    scaler: str = "standard"
    transform: str = "auto"
    period: int | None = None
    split: tuple[float, float, float] = (0.70, 0.15, 0.15)
    id: str | None = None  # long format: the column naming each row's series
    skip_short: bool = False  # long format: drop series too short for one window
    # prediction intervals, in percent; () for none. intervals: ``adaptive`` (studentised by
    # the local volatility, level steered online) or ``split`` (fixed split conformal)
    levels: tuple[int, ...] = (80, 95)
    intervals: str = "adaptive"
    # covariates (data/covariates.py): columns known ahead, and calendar features of the
    # dates: "auto" (those that fit the frequency, kept when they help on validation), "none"
    # or a list of names; holidays: a country code for a public-holiday flag
    future_features: list[str] = field(default_factory=list)
    calendar: str | list[str] = "auto"
    holidays: str | None = None
    # long format: columns constant within each series (store size, region); a text column
    # is categorical and embedded
    static: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.levels = interval_levels(self.levels)
        _choice("shape", self.shape, SHAPES)
        _choice("scaler", self.scaler, SCALERS)
        _choice("intervals", self.intervals, INTERVALS)
        _choice("transform", self.transform, TRANSFORMS)
        if self.fill is not None:
            _choice("fill", self.fill, FILLS)
        if self.duplicates is not None:
            _choice("duplicates", self.duplicates, DUPLICATES)
        _positive("window", self.window, allow_none=True)
        _positive("horizon", self.horizon)
        _positive("warmup", self.warmup, zero=True)
        _positive("prompt_length", self.prompt_length, zero=True)
        if self.period is not None:
            _positive("period", self.period)
        self.split = tuple(float(s) for s in self.split)  # type: ignore[assignment]
        bad_sum = abs(sum(self.split) - 1) > 1e-6
        if len(self.split) != 3 or any(s < 0 for s in self.split) or bad_sum:
            raise ConfigError(
                f"split={self.split!r} must be three non-negative fractions (train, validation, "
                "test) that add up to 1, for example 0.7,0.15,0.15."
            )
        if self.split[0] <= 0:
            raise ConfigError("split: the training fraction must be above 0.")


def _numbers(value: Any, name: str, example: str) -> list[float]:
    """Numbers from ``a,b,c``, ``none``, a number or a sequence of numbers."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        return []
    items = value.split(",") if isinstance(value, str) else (
        [value] if isinstance(value, int | float) else list(value))
    out = []
    for item in items:
        try:
            out.append(float(item))
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: {item!r} is not a number; give {example}.") from None
    return out


def interval_levels(value: Any) -> tuple[int, ...]:
    """Levels from ``80,95``, ``none``, a number or a sequence of numbers (whole percents)."""
    levels = set()
    for level in _numbers(value, "levels", "whole percents such as 80,95, or none"):
        if not 0 < level < 100 or level != int(level):
            raise ConfigError(f"levels: {level:g} must be a whole percent between 1 and 99, "
                              "for example 80,95.")
        levels.add(int(level))
    return tuple(sorted(levels))


@dataclass
class ModelConfig:
    """The network: a recurrent encoder and a linear head, plus an optional linear path.

    cell: rnn, lstm or gru. activation (rnn only): tanh, relu, identity or any elementwise
    function of ``torch`` / ``torch.nn.functional`` by name (softplus, sigmoid, gelu, ...).
    head: ``step`` (one output per time step) or ``last`` (``horizon`` outputs from the last
    real step). linear_path adds a linear map of the inputs beside the recurrent path (the
    window for ``last`` heads, the current input for ``step`` heads).

    loss: ``mse`` (a point forecast), ``gaussian`` or ``student_t`` (a head for the scale, and
    the degrees of freedom, trained by negative log-likelihood), ``pinball`` (the
    ``quantiles``, trained by the pinball loss; giving quantiles implies it). See
    ``rnnkit.models.distributions``.

    ensemble: K members of ``hidden_size`` units each, differently initialised, trained side by
    side in one pass (``rnnkit.models.ensemble``); the saved model averages them, as one network
    of ``units`` = K x hidden_size units whose members never read each other's.
    """

    cell: str = "lstm"
    activation: str = "tanh"
    hidden_size: int = 32
    num_layers: int = 1
    dropout: float = 0.0
    input_size: int = 1
    output_size: int = 1
    head: str = "last"
    horizon: int = 1
    window: int | None = None
    linear_path: bool = True
    loss: str = "mse"
    quantiles: tuple[float, ...] = ()
    ensemble: int = 1
    # a panel's categorical static columns (data/statics.py): the last len(categories) inputs
    # of every step are their codes, each embedded in embedding_sizes[j] numbers
    categories: tuple[int, ...] = ()
    embedding_sizes: tuple[int, ...] = ()

    @property
    def units(self) -> int:
        """Recurrent units of the whole network: every member's together."""
        return self.hidden_size * self.ensemble

    def __post_init__(self) -> None:
        _choice("cell", self.cell, CELLS)
        _positive("ensemble", self.ensemble)
        if self.ensemble > 64:
            raise ConfigError(f"ensemble={self.ensemble} is too many members; use <= 64.")
        self._check_loss()
        _choice("head", self.head, ("step", "last"))
        _positive("hidden_size", self.hidden_size)
        if self.hidden_size > 65536:
            raise ConfigError(f"hidden_size={self.hidden_size} is absurdly large; use <= 65536.")
        _positive("num_layers", self.num_layers)
        if self.num_layers > 64:
            raise ConfigError(f"num_layers={self.num_layers} is absurdly large; use <= 64.")
        _positive("input_size", self.input_size)
        _positive("output_size", self.output_size)
        _positive("horizon", self.horizon)
        if not isinstance(self.dropout, int | float) or not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout={self.dropout!r} must be a number in [0, 1).")
        if self.dropout > 0 and self.num_layers == 1:
            raise ConfigError(
                f"dropout={self.dropout} acts between recurrent layers, and num_layers=1 has "
                "none; set num_layers >= 2 or dropout=0."
            )
        if self.cell != "rnn" and self.activation != "tanh":
            raise ConfigError(
                f"activation={self.activation!r} applies to cell='rnn' only; {self.cell} has "
                "fixed gate activations. Use cell='rnn' or drop the activation option."
            )
        if self.linear_path and self.head == "last" and not self.window:
            raise ConfigError("linear_path with head='last' needs the window length.")

    def _check_loss(self) -> None:
        self.quantiles = quantile_levels(self.quantiles)
        if self.quantiles and self.loss == "mse":
            self.loss = "pinball"
        _choice("loss", self.loss, LOSSES)
        if self.loss == "pinball" and not self.quantiles:
            raise ConfigError("loss='pinball' needs quantiles, for example --quantiles "
                              "0.1,0.5,0.9.")
        if self.quantiles and self.loss != "pinball":
            raise ConfigError(f"quantiles are learned by loss='pinball', not loss={self.loss!r}; "
                              "drop one of the two options.")


def quantile_levels(value: Any) -> tuple[float, ...]:
    """Quantiles from ``0.1,0.5,0.9``, a number or a sequence of numbers, each in (0, 1)."""
    out = set()
    for q in _numbers(value, "quantiles", "probabilities such as 0.1,0.5,0.9"):
        if not 0 < q < 1:
            raise ConfigError(f"quantiles: {q:g} must be a probability strictly between 0 "
                              "and 1, for example 0.1,0.5,0.9.")
        out.add(round(q, 6))
    return tuple(sorted(out))


@dataclass
class TrainConfig:
    """How the model is trained.

    epochs bounds the training; early_stopping is the patience in epochs on the validation
    loss (0 turns it off); the best weights are restored at the end. lr_patience epochs without
    improvement halve the learning rate. Left None, the three follow the optimizer steps an
    epoch takes (``train/budget.py``): 10 to 200 epochs, patience 5 to 20. objective ``auto``
    picks teacher-forced per-step loss for ``next``, last-step loss for ``window``/``seq2one``
    and closed-loop generation for ``continuation``.

    checkpoint_every (only when the fit has a run folder, ``out``): save the full training
    state every N epochs into ``RUN/checkpoints``; None (default) saves every epoch once
    training has run for a minute, 0 only when interrupted. keep_checkpoints: how many are kept.

    windows_per_epoch: train each epoch on this many windows drawn afresh (without
    replacement) from all of them, for panels too large to sweep every epoch. device: ``auto``
    (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``. precision: ``fp32``, or ``bf16`` /
    ``fp16`` autocast on CUDA. Under DDP (``torchrun``), batch_size is the global batch, split
    over the processes, so a run means the same training at any process count.
    """

    epochs: int | None = None
    batch_size: int = 64
    lr: float = 3e-3
    seed: int = 0
    early_stopping: int | None = None
    lr_patience: int | None = None
    clip: float | None = 1.0
    weight_decay: float = 0.0
    objective: str = "auto"
    quiet: bool = False
    max_seconds: float | None = None
    checkpoint_every: int | None = None
    keep_checkpoints: int = 3
    windows_per_epoch: int | None = None
    device: str = "auto"
    precision: str = "fp32"
    # after training, keep the network or the simple forecaster (or combination) that scores
    # best on validation (train/guard.py); False keeps the network as trained
    guard: bool = True
    # intra-op CPU threads; None: one for small models, every core for large ones
    # (train/threads.py)
    threads: int | None = None

    def __post_init__(self) -> None:
        _positive("epochs", self.epochs, allow_none=True)
        _positive("threads", self.threads, allow_none=True)
        _positive("windows_per_epoch", self.windows_per_epoch, allow_none=True)
        _choice("precision", self.precision, PRECISIONS)
        if not isinstance(self.device, str) or not (
                self.device in ("auto", "cpu", "cuda") or (
                    self.device.startswith("cuda:") and self.device[5:].isdigit())):
            raise ConfigError(f"device={self.device!r} is not supported; expected auto, cpu, "
                              "cuda or cuda:N (N a GPU number).")
        _positive("batch_size", self.batch_size)
        _positive("early_stopping", self.early_stopping, zero=True, allow_none=True)
        _positive("lr_patience", self.lr_patience, zero=True, allow_none=True)
        _positive("seed", self.seed, zero=True)
        _choice("objective", self.objective, OBJECTIVES)
        _positive("checkpoint_every", self.checkpoint_every, allow_none=True, zero=True)
        _positive("keep_checkpoints", self.keep_checkpoints)
        # No upper bound: a learning rate too high for the data is caught within one step by
        # the loop's divergence check, which names the fix (RELIABILITY.md row 21).
        if (isinstance(self.lr, bool) or not isinstance(self.lr, int | float)
                or not 0 < self.lr < math.inf):
            raise ConfigError(f"lr={self.lr!r} must be a positive finite number; try 1e-3.")
        if self.clip is not None and not self.clip > 0:
            raise ConfigError(f"clip={self.clip!r} must be positive, or None for no clipping.")


def to_dict(obj: Any) -> dict[str, Any]:
    """JSON-ready dict of a config dataclass."""
    out = asdict(obj)
    for k, v in out.items():
        if isinstance(v, tuple):
            out[k] = list(v)
    return out


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a config dataclass from ``to_dict`` output, refusing unknown keys."""
    if not isinstance(data, dict):
        raise ConfigError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}.")
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown option(s) {unknown}.")
    kwargs = dict(data)
    if "split" in kwargs and isinstance(kwargs["split"], list):
        kwargs["split"] = tuple(kwargs["split"])
    return cls(**kwargs)


def split_options(options: dict[str, Any]) -> tuple[dict, dict, dict]:
    """Route flat user options (``fit(..., hidden_size=64)``) to data, model and train configs.

    ``window`` and ``horizon`` are options of the data: the model's copies are derived from the
    fitted pipeline (which may choose the window), so they are routed to DataConfig only."""
    groups: tuple[dict, dict, dict] = ({}, {}, {})
    owners = [{f.name for f in fields(c)} for c in (DataConfig, ModelConfig, TrainConfig)]
    every = set().union(*owners)
    for key, value in options.items():
        owner = next((i for i, names in enumerate(owners) if key in names), None)
        if owner is None:
            raise ConfigError(f"unknown option {key!r}." + did_you_mean(key, sorted(every)))
        groups[owner][key] = value
    return groups
