"""PNG plots of a run: loss curves, test predictions vs truth, forecast, continuations.

Matplotlib runs headless (Agg). Every plot has a title, axis labels with units where known, a
legend, and for series the train/validation/test split marked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from rnnkit.persist import atomic_write_bytes


def _save(fig: Any, path: Path) -> Path:
    import io

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def loss_curves(history: list[dict], path: Path, best_epoch: int | None = None) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4))
    ep = [r["epoch"] for r in history]
    ax.plot(ep, [r["train_loss"] for r in history], label="train")
    val = [r["val_loss"] for r in history]
    if not all(np.isnan(v) for v in val):
        ax.plot(ep, val, label="validation")
    if best_epoch is not None:
        ax.axvline(best_epoch, color="grey", ls="--", lw=1, label=f"best epoch ({best_epoch})")
    ax.set_yscale("log")
    ax.set_xlabel("epoch (0 = before training)")
    ax.set_ylabel("loss (MSE on scaled data)")
    ax.set_title("Training and validation loss")
    ax.legend()
    return _save(fig, path)


def series_predictions(index: Any, values: np.ndarray, origins: np.ndarray, pred: np.ndarray,
                       baselines: dict[str, np.ndarray], bounds: tuple[int, int], name: str,
                       path: Path) -> Path:
    """Test split: truth, one-step-ahead model forecasts and the last-value baseline, with
    some history before it and the split boundaries marked."""
    train_end, val_end = bounds
    first = int(origins[0]) + 1
    lo = max(0, first - max(50, len(origins) // 3))
    x = np.asarray(index)
    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.plot(x[lo:], values[lo:, 0], color="black", lw=1, label=f"{name} (truth)")
    tx = x[origins + 1]
    if "last value" in baselines:
        ax.plot(tx, baselines["last value"][:, 0, 0], color="tab:orange", lw=0.8, alpha=0.7,
                label="last value baseline")
    ax.plot(tx, pred[:, 0, 0], color="tab:blue", lw=1.2, label="model, 1 step ahead")
    for b, lab in ((train_end, "validation starts"), (val_end, "test starts")):
        if lo < b < len(x):
            ax.axvline(x[b], color="grey", ls="--", lw=1)
            ax.annotate(lab, (x[b], ax.get_ylim()[1]), fontsize=8, va="top", ha="left")
    ax.set_title(f"{name}: test-split forecasts vs truth")
    ax.set_xlabel("time")
    ax.set_ylabel(name)
    ax.legend(loc="best", fontsize=8)
    return _save(fig, path)


def forecast(index: Any, values: np.ndarray, future_index: Any, future: np.ndarray, name: str,
             path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(10, 4.5))
    lo = max(0, len(values) - max(4 * len(future), 200))
    ax.plot(np.asarray(index)[lo:], values[lo:, 0], color="black", lw=1, label="history")
    ax.plot(np.asarray(future_index), future[:, 0], color="tab:red", lw=1.5,
            label=f"forecast ({len(future)} steps)")
    ax.set_title(f"{name}: forecast past the end of the data")
    ax.set_xlabel("time")
    ax.set_ylabel(name)
    ax.legend(fontsize=8)
    return _save(fig, path)


def continuations(truth: np.ndarray, pred: np.ndarray, prompt: np.ndarray, path: Path,
                  n: int = 6) -> Path:
    """True vs generated continuations of the first ``n`` sequences (prompt shown too)."""
    n = min(n, len(truth))
    cols = min(3, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    p = prompt.shape[1]
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.axis("off")
            continue
        ax.plot(range(p), prompt[k, :, 0], "o-", color="grey", label="prompt")
        steps = range(p, p + truth.shape[1])
        ax.plot(steps, truth[k, :, 0], "o-", color="black", label="true")
        ax.plot(steps, pred[k, :, 0], "x--", color="tab:blue", label="generated")
        ax.set_title(f"sequence {k}", fontsize=9)
        ax.set_xlabel("step")
        if k == 0:
            ax.legend(fontsize=7)
    fig.suptitle("Generated vs true continuations (held-out sequences)")
    return _save(fig, path)


def scatter(truth: np.ndarray, pred: np.ndarray, path: Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(5, 5))
    t, q = truth.ravel(), pred.ravel()
    ax.scatter(t, q, s=8, alpha=0.6)
    lim = [min(t.min(), q.min()), max(t.max(), q.max())]
    ax.plot(lim, lim, color="grey", ls="--", lw=1, label="perfect")
    ax.set_xlabel("true value")
    ax.set_ylabel("predicted value")
    ax.set_title(title)
    ax.legend()
    return _save(fig, path)


def save_run_plots(run: Any, folder: Path) -> list[Path]:
    """The standard plots of a run into ``folder``; returns the files written."""
    folder = Path(folder)
    out = []
    if run.history:
        out.append(loss_curves(run.history, folder / "loss.png",
                               run.config.get("training", {}).get("best_epoch")))
    ev = getattr(run, "_last_eval", None)
    if ev is None:
        return out
    if run.is_series:
        pipe = run.pipeline
        name = pipe.targets[0]
        values, index = ev["values"], ev["index"]
        out.append(series_predictions(index, values, ev["origins"], ev["pred"], ev["baselines"],
                                      pipe.bounds(len(values)), name, folder / "predictions.png"))
        if not pipe.features:
            steps = max(pipe.horizon, min(2 * (pipe.period or pipe.window), 500))
            fc = run.forecast(steps)
            out.append(forecast(index, values, fc.index, fc.to_numpy(), name,
                                folder / "forecast.png"))
    elif run.pipeline.shape == "seq2one":
        out.append(scatter(ev["truth"], ev["pred"], folder / "predictions.png",
                           "Held-out sequences: predicted vs true"))
    else:
        truth, pred = ev["truth"], ev["pred"]
        seqs = run._data["seqs"] if run._data else None
        if seqs is not None:
            parts = run.pipeline.split_indices(len(seqs))
            idx = parts["test"] if len(parts["test"]) else parts["val"]
            p = seqs[0].shape[0] - truth.shape[1]
            prompt = np.stack([seqs[i][:p] for i in idx[: len(truth)]])
            out.append(continuations(truth, pred, prompt, folder / "continuations.png"))
    return out


def priming(truth: np.ndarray, primed: np.ndarray, unprimed: np.ndarray, prime_len: int,
            path: Path, steps: int = 60) -> Path:
    """The first steps of a fresh sequence, predicted with and without priming."""
    steps = min(steps, len(truth))
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    t = np.arange(steps)
    ax.plot(t, truth[:steps], color="black", lw=1.5, label="truth")
    ax.plot(t, primed[:steps], "--", color="tab:blue", label=f"primed on {prime_len} values")
    ax.plot(t, unprimed[:steps], ":", color="tab:red", lw=2, label="zero state (unprimed)")
    ax.axvspan(0, prime_len, color="grey", alpha=0.15, label=f"first {prime_len} steps")
    ax.set_ylabel("value")
    ax.set_title("Next-step predictions at the start of an unseen range")
    ax.legend(fontsize=8)
    ax2.semilogy(t, (primed[:steps] - truth[:steps]) ** 2 + 1e-16, color="tab:blue",
                 label="primed")
    ax2.semilogy(t, (unprimed[:steps] - truth[:steps]) ** 2 + 1e-16, color="tab:red",
                 label="unprimed")
    ax2.set_xlabel("step into the test range")
    ax2.set_ylabel("squared error")
    ax2.legend(fontsize=8)
    return _save(fig, path)
