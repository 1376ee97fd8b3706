"""The sequences kind: independent sequences (seq2one, next step, continuation from a prompt).

Sequences are split by their order; a held-out sequence is scored whole (seq2one: its one
target; next and continuation: the values generated after its prompt or warm-up). seq2one and
continuation runs carry split-conformal prediction intervals calibrated on the validation
sequences (``rnnkit.evaluate.sequence_intervals``); their predictions are tables with the bound
columns of series runs (``target_lo80``, ``value_t+2_hi95``, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rnnkit.data.pipeline import Encoded, output_columns, output_values
from rnnkit.data.sequences import SequencePipeline, SequenceSet, as_sequences, as_targets
from rnnkit.errors import DataError
from rnnkit.evaluate import intervals, scoring, sequence_intervals
from rnnkit.evaluate.baselines import sequence_baselines
from rnnkit.evaluate.evaluation import Evaluation
from rnnkit.inference import generate, sequence_outputs
from rnnkit.streaming import Stream


class SequenceKind:
    name = "sequences"
    pipeline = SequencePipeline

    # --- fitting ---------------------------------------------------------------------------
    @staticmethod
    def read(data: Any, target: Any, features: list[str] | None, time: str | None,
             opts: dict) -> tuple[SequenceSet, dict, dict]:
        seqs = as_sequences(data)
        shape = opts.get("shape") or ("seq2one" if target is not None else "continuation"
                                      if opts.get("prompt_length") else "next")
        targets = as_targets(target, len(seqs)) if shape == "seq2one" else None
        return SequenceSet(seqs, targets), {"shape": shape}, {}

    @staticmethod
    def model_defaults(pipe: SequencePipeline) -> dict:
        """Model options the user may override."""
        return {"linear_path": pipe.shape != "seq2one"}

    @staticmethod
    def model_shape(pipe: SequencePipeline, data: SequenceSet) -> dict:
        head = "last" if pipe.shape == "seq2one" else "step"
        return {"input_size": pipe.n_features,
                "output_size": pipe.n_outputs, "head": head, "horizon": 1, "window": None}

    @staticmethod
    def describe(pipe: SequencePipeline, data: SequenceSet) -> dict:
        return {}

    @staticmethod
    def tail(pipe: SequencePipeline, data: Any) -> None:
        return None  # sequences are continued from prompts, not from a tail

    # --- data of a fitted run --------------------------------------------------------------
    @staticmethod
    def attach(run: Any, data: Any, target: Any = None) -> tuple[Encoded, SequencePipeline]:
        if data is None:
            if run.data is None:
                raise DataError("no data: this run was loaded without its sequences; pass them.")
            return run.data, run.pipeline
        seqs = as_sequences(data)
        tgt = None if target is None else as_targets(target, len(seqs))
        return run.pipeline.encode(SequenceSet(seqs, tgt)), run.pipeline

    # --- evaluation ------------------------------------------------------------------------
    @classmethod
    def evaluate(cls, run: Any, data: Any, target: Any) -> tuple[dict, Evaluation]:
        """The held-out sequences of the fitted data, or every sequence of ``data``; with the
        run's intervals, their coverage next to the naive (training-mean) interval's."""
        enc, pipe = cls.attach(run, data, target)
        seqs, targets = enc.dataset.seqs, enc.dataset.targets
        parts = pipe.split_indices(len(seqs))
        split = "test" if len(parts["test"]) else "val"
        idx = parts[split] if data is None else parts["all"]
        tr = parts["train"] if data is None else np.arange(0)
        pred, truth, base = held_out(run.model, pipe, seqs, targets, idx, tr)
        metrics = scoring.score(truth, pred, base, horizon=1)  # sequences are independent
        bounds = sequence_intervals.bounds(run.config, pred)
        if bounds:
            metrics["intervals"] = sequence_intervals.score(
                truth, bounds, base[sequence_intervals.NAIVE], run.config)
        metrics["split"] = {"evaluated_on": split if data is None else "given data",
                            "sequences": len(seqs), "scored": len(idx),
                            "train": len(parts["train"]), "val": len(parts["val"]),
                            "test": len(parts["test"])}
        scored = split if data is None else "given data"
        return metrics, Evaluation(scored, pred, truth, base, enc, None, bounds)

    # --- predictions -----------------------------------------------------------------------
    @classmethod
    def predict(cls, run: Any, data: Any, target: Any) -> pd.DataFrame | np.ndarray:
        """seq2one: a table of one row per sequence, ``target`` (``target1``, ... for several)
        and its bounds; continuation: each sequence continued from its prompt for the rest of
        its length, ``value_t+1``, ``value_t+1_lo80``, ... (step-major, as a series' horizon).
        next: per-step predictions (N, T, O), without intervals."""
        enc, pipe = cls.attach(run, data, target)
        seqs = enc.dataset.seqs
        if pipe.shape == "next":
            return sequence_outputs(run.model, pipe, seqs)
        pred = (sequence_outputs(run.model, pipe, seqs) if pipe.shape == "seq2one"
                else continuations(run.model, pipe, seqs))
        steps = sequence_intervals.as_steps(pred)  # (N, steps, O); seq2one: one step
        bounds = sequence_intervals.bounds(run.config, steps)
        return pd.DataFrame(output_values(steps, bounds),
                            index=pd.RangeIndex(len(seqs), name="sequence"),
                            columns=output_columns(output_names(pipe), steps.shape[1],
                                                   tuple(bounds)))

    @staticmethod
    def forecast(run: Any, steps: int, data: Any) -> Any:
        raise DataError("forecast applies to series runs; use generate(prompt, steps).")

    @staticmethod
    def generate(run: Any, prompts: list[np.ndarray], steps: int) -> np.ndarray:
        return generate(run.model, run.pipeline, prompts, int(steps))

    @staticmethod
    def stream(run: Any) -> Stream:
        return Stream(run.model, run.pipeline)

    # --- intervals -------------------------------------------------------------------------
    @staticmethod
    def calibrate(run: Any) -> dict | None:
        """Split-conformal half-widths from the validation sequences (seq2one: per target;
        continuation: per step and target) and the naive training-mean interval's. None for
        next-step runs, without levels or without validation sequences."""
        levels, pipe = intervals.levels_of(run.config), run.pipeline
        if not levels or run.data is None or pipe.shape == "next":
            return None
        seqs, targets = run.data.dataset.seqs, run.data.dataset.targets
        parts = pipe.split_indices(len(seqs))
        if len(parts["val"]) == 0:
            return None
        pred, truth, base = held_out(run.model, pipe, seqs, targets, parts["val"],
                                     parts["train"])
        return sequence_intervals.calibrate(truth, pred, base[sequence_intervals.NAIVE], levels)

    # --- files -----------------------------------------------------------------------------
    @staticmethod
    def save(run: Any, folder: Path, fmt: int) -> None:
        """Nothing beyond the common files: the pipeline is all JSON."""

    @staticmethod
    def load(folder: Path, cfg: dict) -> tuple[SequencePipeline, None]:
        return SequencePipeline.from_json(cfg["pipeline"]), None


def held_out(model: Any, pipe: SequencePipeline, seqs: list[np.ndarray],
             targets: np.ndarray | None, idx: np.ndarray, train: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The model's forecasts of sequences ``idx``, their truth and the baselines' forecasts
    (from the training sequences ``train``; from the truth itself when none are given):
    seq2one (N, O); next and continuation: the values after the prompt or warm-up (N, T, O)."""
    sub = [seqs[i] for i in idx]
    if pipe.shape == "seq2one":
        pred = sequence_outputs(model, pipe, sub)
        truth = targets[idx]
        train_t = targets[train] if len(train) else truth
        last = np.array([s[-1, : pipe.n_outputs] for s in sub])
    else:
        p = pipe.prompt_length if pipe.shape == "continuation" else max(pipe.warmup, 1)
        pred = generate(model, pipe, [s[:p] for s in sub], len(sub[0]) - p)
        truth = np.stack([s[p:, : pipe.n_outputs] for s in sub])
        train_t = (np.stack([seqs[i][p:, : pipe.n_outputs] for i in train]) if len(train)
                   else truth)
        last = np.stack([s[p - 1, : pipe.n_outputs] for s in sub])
    return pred, truth, sequence_baselines(train_t, last, len(sub))


def continuations(model: Any, pipe: SequencePipeline, seqs: list[np.ndarray]) -> np.ndarray:
    """(N, steps, O): each sequence continued from its first ``prompt_length`` values for the
    rest of its length, as evaluation scores it."""
    p, lengths = pipe.prompt_length, sorted({len(s) for s in seqs})
    if len(lengths) > 1:
        raise DataError(f"continuation: predict continues every sequence for the rest of its "
                        f"length, so they must have one length; got lengths {lengths[:5]}. Give "
                        "sequences of one length, or use generate(prompts, steps).")
    if lengths[0] <= p:
        raise DataError(f"continuation: sequences of {lengths[0]} values hold nothing after the "
                        f"prompt of {p}; give whole sequences (prompt and continuation), or use "
                        "generate(prompts, steps) to continue prompts alone.")
    return generate(model, pipe, [s[:p] for s in seqs], lengths[0] - p)


def output_names(pipe: SequencePipeline) -> list[str]:
    """Column names of a sequence run's outputs: seq2one ``target`` (``target1``, ``target2``,
    ... for several), continuation ``value`` (likewise), as an unnamed series' ``value``."""
    base = "target" if pipe.shape == "seq2one" else "value"
    n = pipe.n_outputs
    return [base] if n == 1 else [f"{base}{i + 1}" for i in range(n)]
