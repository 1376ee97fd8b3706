"""seeded: continue a sequence from 5 seed values whose later part depends on them.

Five seeds uniform in [-1, 1], then ``x[i] = x[i-1] + 0.5 * x[4]`` (the 4th seed, 1-based) for
five more values. The model sees the seeds and generates the continuation step by step; it is
trained closed-loop (on its own fed-back predictions), which is how it is then used. Its MSE is
measured on the 100 test sequences, which neither training nor early stopping (the validation
sequences) saw. A model that only learned the mean scores about 1.3 here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

SEED = 11
N_TRAIN, N_VAL, N_TEST = 1000, 100, 100
PROMPT = 5
DEFAULTS = dict(shape="continuation", prompt_length=PROMPT, cell="lstm", hidden_size=64,
                epochs=150, batch_size=64, lr=5e-3, early_stopping=30)


def make(n: int, rng: np.random.Generator) -> np.ndarray:
    x = np.zeros((n, 2 * PROMPT))
    x[:, :PROMPT] = rng.uniform(-1, 1, (n, PROMPT))
    for i in range(PROMPT, 2 * PROMPT):
        x[:, i] = x[:, i - 1] + 0.5 * x[:, 3]
    return x


def _all(shuffled: bool = False) -> np.ndarray:
    data = make(N_TRAIN + N_VAL + N_TEST, np.random.default_rng(SEED))
    if shuffled:
        # a broken batching helper: each prompt paired with another sequence's continuation
        perm = np.random.default_rng(SEED + 1).permutation(len(data))
        data[:, PROMPT:] = data[perm, PROMPT:]
    return data


def data_for(run: Any) -> dict:
    from rnnkit.data.sequences import SequenceSet, as_sequences

    shuffled = bool(run.config.get("source", {}).get("shuffled"))
    return SequenceSet(as_sequences(_all(shuffled)))


def run(folder: Path, shuffle_targets: bool = False, **overrides: Any) -> dict:
    """shuffle_targets: pair every prompt with another sequence's continuation (the founding
    bug of a batching helper that ignored its arguments); the doctor must catch it."""
    import rnnkit
    from rnnkit.analysis import analyse

    data = _all(shuffle_targets)
    total = len(data)
    split = (N_TRAIN / total, N_VAL / total, N_TEST / total)
    fit = rnnkit.fit(data, **{**DEFAULTS, "split": split, **overrides})
    fit.config["source"] = {"kind": "demo", "name": "seeded", "shuffled": shuffle_targets}
    # scored on the 100 test sequences: early stopping chose the epoch on the validation ones
    test = data[N_TRAIN + N_VAL :]
    gen = fit.generate(test[:, :PROMPT], PROMPT)[..., 0]
    truth = test[:, PROMPT:]
    train_cont = data[:N_TRAIN, PROMPT:]
    extras = {
        "test_mse_generated": float(np.mean((gen - truth) ** 2)),
        "baseline_mse_mean": float(np.mean((train_cont.mean(axis=0) - truth) ** 2)),
        "baseline_mse_last_seed": float(np.mean((test[:, PROMPT - 1 : PROMPT] - truth) ** 2)),
        "n_train": N_TRAIN, "n_val": N_VAL, "n_test": N_TEST,
    }
    fit.extras = extras
    metrics = fit.evaluate()
    fit.save(folder, plots=False)
    analyse(fit, folder)  # diagnosis, plots and report, after the figures above
    text = "\n".join([
        fit.table(), "",
        f"test MSE of the 5 generated values: {extras['test_mse_generated']:.3g} "
        f"(predicting the mean: {extras['baseline_mse_mean']:.3g})",
    ])
    return {"run": fit, "metrics": metrics, "text": text}
