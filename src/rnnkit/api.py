"""``rnnkit.fit``: from data to a trained, evaluated Run, in one call.

read -> validate -> pairs/windows -> scale -> model -> train -> evaluate -> (save)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit.config import DataConfig, ModelConfig, TrainConfig, split_options, to_dict
from rnnkit.data.sequences import SequencePipeline, as_sequences, as_targets
from rnnkit.data.series import SeriesPipeline
from rnnkit.errors import ConfigError
from rnnkit.models.init import init_linear_path
from rnnkit.models.network import RecurrentNet
from rnnkit.runs import Run, index_info
from rnnkit.train import objectives
from rnnkit.train.callbacks import Callback
from rnnkit.train.loop import train

LINEAR_LR_SCALE = 0.1


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

    Example::

        run = rnnkit.fit("sunspots.csv", target="sunspot_number", epochs=5, quiet=True)
        run.forecast(12)
    """
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

    torch.manual_seed(tcfg.seed)
    model = RecurrentNet(mcfg)
    groups = None
    if init_linear_path(model, train_pairs):
        # The linear path starts at its least-squares optimum: Adam's unit-size steps would
        # only knock it off, so it moves slowly while the recurrent path learns the residual.
        lin = list(model.linear.parameters())
        rest = [p for p in model.parameters() if all(p is not q for q in lin)]
        groups = [{"params": rest}, {"params": lin, "lr": tcfg.lr * LINEAR_LR_SCALE}]
    loss = objectives.pick(objective, dcfg.prompt_length)
    history = train(model, train_pairs, val_pairs, tcfg, loss, callbacks, groups)
    model.eval()

    config = {
        "kind": kind, "data": to_dict(dcfg), "model": to_dict(mcfg), "train": to_dict(tcfg),
        "objective": objective, "pipeline": pipe.to_json(), "source": source,
        "training": {"best_epoch": history.best_epoch, "stop_reason": history.stop_reason,
                     "seconds": round(history.seconds, 3),
                     "still_improving": history.still_improving},
    }
    if kind == "series":
        need = pipe.window + int(pipe.diff)
        config["tail"] = {"values": kept["values"][-need:].astype(float).tolist(),
                          "index": index_info(kept["index"])}
        config["notes"] = kept["notes"]
    run = Run(model, pipe, config, history.records, data=kept)
    run.evaluate()
    if out is not None:
        run.save(out)
    return run


__all__ = ["fit"]
