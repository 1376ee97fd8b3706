"""adder: the sum of 2-7 integers in 1..10, by a vanilla RNN with identity activation.

A running sum is ``h_t = h_{t-1} + x_t``: exactly an identity-activation RNN with one unit, so
it extrapolates to larger numbers, longer sequences and negatives. With tanh the state is
squashed into (-1, 1) and the largest output is bounded; the demo shows it in figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

SEED = 7
N = 1000
EXAMPLES = ([1, -2, 30], [5, 5], [10, 10, 10, 10, 10, 10, 10], [-3, 4, -5, 6])
DEFAULTS = dict(cell="rnn", activation="identity", hidden_size=1, epochs=400, batch_size=32,
                lr=1e-2, early_stopping=40, scaler="none")


def make(n: int, rng: np.random.Generator, scale: float = 1.0) -> tuple[list, np.ndarray]:
    seqs = [rng.integers(1, 11, size=int(rng.integers(2, 8))).astype(float) * scale
            for _ in range(n)]
    return seqs, np.array([s.sum() for s in seqs])


def data_for(run: Any) -> dict:
    seqs, y = make(N, np.random.default_rng(SEED))
    from rnnkit.data.sequences import SequenceSet, as_sequences, as_targets

    return SequenceSet(as_sequences(seqs), as_targets(y, len(seqs)))


def tanh_explanation(fit: Any, doubled_truth: np.ndarray) -> tuple[dict, str]:
    """Figures and one sentence on why a tanh state cannot hold a sum."""
    import torch

    from rnnkit.data.pairs import pad_sequences

    head = fit.model.head
    w = head.weight.detach().double().numpy()
    b = float(head.bias.detach().double().numpy()[0])
    scaler = fit.pipeline.y_scaler
    reach = float(np.abs(w).sum() + b)  # |h| <= 1: the largest the head can output (scaled)
    top = float(scaler.inverse(np.array([[reach]]))[0, 0])
    seqs = [np.asarray(s, dtype=np.float32)[:, None] for s in doubled_truth["seqs"]]
    x, _ = pad_sequences([fit.pipeline.inputs_to_model(s) for s in seqs])
    with torch.inference_mode():
        out, _ = fit.model.encoder(x)
    lengths = np.array([len(s) for s in seqs])
    real = np.arange(x.shape[1])[None, :] < lengths[:, None]
    pinned = float((out.abs().numpy()[real] > 0.99).mean())
    figures = {"tanh_max_output": top, "doubled_max_sum": float(doubled_truth["y"].max()),
               "tanh_fraction_of_states_saturated": pinned}
    sentence = (f"tanh squashes the running sum into (-1, 1): this model can never output more "
                f"than {top:.1f}, but the doubled sums reach {figures['doubled_max_sum']:.0f} "
                f"({100 * pinned:.0f}% of hidden states are pinned at ±1) -- a sum needs an "
                "unbounded activation: use --activation identity.")
    return figures, sentence


def run(folder: Path, **overrides: Any) -> dict:
    import rnnkit
    from rnnkit import plots
    from rnnkit.analysis import analyse

    rng = np.random.default_rng(SEED)
    seqs, y = make(N, rng)
    opts = {**DEFAULTS, **overrides}
    fit = rnnkit.fit(seqs, target=y, **opts)
    fit.config["source"] = {"kind": "demo", "name": "adder"}
    dseqs, dy = make(500, np.random.default_rng(SEED + 1), scale=2.0)
    dpred = fit.predict(dseqs)["target"].to_numpy()
    ex = fit.predict([np.array(e, dtype=float) for e in EXAMPLES])["target"].to_numpy()
    extras: dict[str, Any] = {
        "test_mae": float(np.mean(np.abs(dpred - dy))),
        "test_set": "500 fresh sequences of 2-7 integers in 1..10, every value doubled",
        "test_max_abs_error": float(np.max(np.abs(dpred - dy))),
        "examples": [{"input": list(e), "predicted": float(p), "true": float(sum(e))}
                     for e, p in zip(EXAMPLES, ex, strict=True)],
        "activation": fit.config["model"]["activation"],
    }
    lines = [f"doubled test set (values 2..20, sums up to {dy.max():.0f}; training sums "
             f"<= {y.max():.0f}): MAE {extras['test_mae']:.3g}"]
    lines += [f"  {e['input']} -> {e['predicted']:.4f} (true {e['true']:g})"
              for e in extras["examples"]]
    if str(fit.config["model"]["activation"]).lower() == "tanh":
        figures, sentence = tanh_explanation(fit, {"seqs": dseqs, "y": dy})
        extras.update(figures)
        extras["explanation"] = sentence
        lines.append(sentence)
    fit.extras = extras
    metrics = fit.evaluate()
    folder.mkdir(parents=True, exist_ok=True)  # the demo's plot first: the report embeds it
    plots.scatter(dy, dpred, folder / "doubled_test.png",
                  f"Doubled test set ({extras['activation']}): predicted vs true sum")
    fit.save(folder, plots=False)
    analyse(fit, folder)  # diagnosis, plots and report, after the figures above
    return {"run": fit, "metrics": metrics, "text": fit.table() + "\n\n" + "\n".join(lines)}
