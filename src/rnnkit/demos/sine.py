"""sine: next-step prediction of sin, tested on a longer range never seen in training.

The first predictions of a fresh hidden state are poor until it has seen a few values
("priming"). The demo measures the error over the first steps with and without priming.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

DT = 0.1  # sampling step in radians: about 63 samples per period
TRAIN_POINTS = 2000
TEST_POINTS = 4000  # twice the training range, after it
PRIMING = 10
DEFAULTS = dict(shape="next", cell="rnn", activation="tanh", hidden_size=32, window=50,
                warmup=PRIMING, transform="none", epochs=100, batch_size=64, lr=3e-3,
                early_stopping=30, split=(0.8, 0.2, 0.0))


def series(start: int, n: int) -> np.ndarray:
    return np.sin(DT * np.arange(start, start + n))


def data_for(run: Any) -> Any:
    from rnnkit.data.read import read_table

    return read_table(series(0, TRAIN_POINTS))


def run(folder: Path, **overrides: Any) -> dict:
    import rnnkit
    from rnnkit import plots
    from rnnkit.analysis import analyse

    train = series(0, TRAIN_POINTS)
    opts = {**DEFAULTS, **overrides}
    fit = rnnkit.fit(train, **opts)
    fit.config["source"] = {"kind": "demo", "name": "sine"}
    test = series(TRAIN_POINTS, TEST_POINTS + 1)  # inputs t, targets t+1

    def predictions(prime: np.ndarray) -> np.ndarray:
        s = fit.stream()
        for v in prime:
            s.update(v)
        return np.array([s.update(v)[0] for v in test[:-1]])

    primed = predictions(series(TRAIN_POINTS - PRIMING, PRIMING))
    unprimed = predictions(np.array([]))
    truth = test[1:]
    def mse(pred: np.ndarray, part: slice = slice(None)) -> float:
        return float(np.mean((pred[part] - truth[part]) ** 2))

    first, rest = slice(0, PRIMING), slice(PRIMING, None)
    extras = {
        "test_mse": mse(primed),
        "test_mse_unprimed_first_steps": mse(unprimed, first),
        "test_mse_primed_first_steps": mse(primed, first),
        "test_mse_unprimed_after_priming_length": mse(unprimed, rest),
        "priming_length": PRIMING,
        "test_points": TEST_POINTS,
        "test_range": f"t = {TRAIN_POINTS * DT:g} .. {(TRAIN_POINTS + TEST_POINTS) * DT:g} rad "
                      f"(training: 0 .. {TRAIN_POINTS * DT:g})",
    }
    fit.extras = extras
    metrics = fit.evaluate()
    folder.mkdir(parents=True, exist_ok=True)  # the demo's plot first: the report embeds it
    plots.priming(truth, primed, unprimed, PRIMING, folder / "priming.png")
    fit.save(folder, plots=False)
    analyse(fit, folder)  # diagnosis, plots and report, after the figures above
    text = "\n".join([
        fit.table(), "",
        f"on a range twice as long as training, never seen (t = {TRAIN_POINTS * DT:g}.."
        f"{(TRAIN_POINTS + TEST_POINTS) * DT:g}):",
        f"  MSE primed on {PRIMING} values: {extras['test_mse']:.3g}",
        f"  MSE of the first {PRIMING} steps from a zero state (unprimed): "
        f"{extras['test_mse_unprimed_first_steps']:.3g}  vs primed: "
        f"{extras['test_mse_primed_first_steps']:.3g}",
    ])
    return {"run": fit, "metrics": metrics, "text": text}
