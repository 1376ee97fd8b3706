"""The sequences kind: independent sequences (seq2one, next step, continuation from a prompt).

Sequences are split by their order; a held-out sequence is scored whole (seq2one: its one
target; next and continuation: the values generated after its prompt or warm-up).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.data.pipeline import Encoded
from rnnkit.data.sequences import SequencePipeline, SequenceSet, as_sequences, as_targets
from rnnkit.errors import DataError
from rnnkit.evaluate import scoring
from rnnkit.evaluate.baselines import sequence_baselines
from rnnkit.evaluate.evaluation import Evaluation
from rnnkit.inference import Stream, generate, sequence_outputs


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
        """The held-out sequences of the fitted data, or every sequence of ``data``."""
        enc, pipe = cls.attach(run, data, target)
        seqs, targets = enc.dataset.seqs, enc.dataset.targets
        parts = pipe.split_indices(len(seqs))
        split = "test" if len(parts["test"]) else "val"
        idx = parts[split] if data is None else parts["all"]
        sub = [seqs[i] for i in idx]
        tr = parts["train"] if data is None else np.arange(0)
        if pipe.shape == "seq2one":
            pred = sequence_outputs(run.model, pipe, sub)
            truth = targets[idx]
            train_t = targets[parts["train"]] if len(tr) else truth
            last = np.array([s[-1, :pipe.n_outputs] for s in sub])
        else:
            p = pipe.prompt_length if pipe.shape == "continuation" else max(pipe.warmup, 1)
            pred = generate(run.model, pipe, [s[:p] for s in sub], len(sub[0]) - p)
            truth = np.stack([s[p:, : pipe.n_outputs] for s in sub])
            train_t = (np.stack([seqs[i][p:, : pipe.n_outputs] for i in tr]) if len(tr)
                       else truth)
            last = np.stack([s[p - 1, : pipe.n_outputs] for s in sub])
        base = sequence_baselines(train_t, last, len(sub))
        metrics = scoring.score(truth, pred, base, horizon=1)  # sequences are independent
        metrics["split"] = {"evaluated_on": split if data is None else "given data",
                            "sequences": len(seqs), "scored": len(sub),
                            "train": len(parts["train"]), "val": len(parts["val"]),
                            "test": len(parts["test"])}
        scored = split if data is None else "given data"
        return metrics, Evaluation(scored, pred, truth, base, enc)

    # --- predictions -----------------------------------------------------------------------
    @classmethod
    def predict(cls, run: Any, data: Any, target: Any) -> np.ndarray:
        enc, pipe = cls.attach(run, data, target)
        return sequence_outputs(run.model, pipe, enc.dataset.seqs)

    @staticmethod
    def forecast(run: Any, steps: int, data: Any) -> Any:
        raise DataError("forecast applies to series runs; use generate(prompt, steps).")

    @staticmethod
    def generate(run: Any, prompts: list[np.ndarray], steps: int) -> np.ndarray:
        return generate(run.model, run.pipeline, prompts, int(steps))

    @staticmethod
    def stream(run: Any) -> Stream:
        return Stream(run.model, run.pipeline)

    @staticmethod
    def calibrate(run: Any) -> None:
        return None  # intervals for sequences are not built yet (docs/uncertainty.md)

    # --- files -----------------------------------------------------------------------------
    @staticmethod
    def save(run: Any, folder: Path, fmt: int) -> None:
        """Nothing beyond the common files: the pipeline is all JSON."""

    @staticmethod
    def load(folder: Path, cfg: dict) -> tuple[SequencePipeline, None]:
        return SequencePipeline.from_json(cfg["pipeline"]), None
